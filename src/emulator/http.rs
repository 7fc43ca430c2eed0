//! Just enough HTTP/1.1 for the emulator: request heads read with `httparse`,
//! bodies framed by `Content-Length` or `Transfer-Encoding: chunked`, keep-alive,
//! `Expect: 100-continue`, and answers framed by `Content-Length`.
//!
//! A body over the limit is never held in memory: once past the limit, the rest is
//! read and thrown away (up to [`DISCARD_CAP`] bytes, so the client, which sends its
//! whole body before reading, still receives the answer); past that cap the
//! connection is closed after the answer.
//!
//! # Why not a server crate
//!
//! The request head is parsed by `httparse`; what is written here is the framing
//! around it. A server crate such as `tiny_http` was weighed and
//! left, because the emulator's faults need the socket itself:
//! - a dropped call closes the connection after reading the request and a lost
//!   answer closes it after the work, with no byte written; `tiny_http` answers a
//!   request dropped without a response with a 500 of its own;
//! - a held call ([`super::probe::CallHook`]) stops between reading and answering
//!   for as long as a test wants, on the connection's own thread;
//! - an over-limit body is read and thrown away up to [`DISCARD_CAP`] and answered
//!   with code 23 or HTTP 413 as the contract in use says, and `Expect:
//!   100-continue` is answered (or not) by the same rules, where a crate decides
//!   both itself;
//! - HTTPS runs the same code over a `rustls` stream built from the emulator's own
//!   `rustls::ServerConfig` ([`super::tls_config`]), where `tiny_http` brings TLS
//!   through a feature of its own with its own `rustls` version.
//!
//! Any of these could be forced through a crate only by reaching around it, which
//! would leave more code here, not less.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Longest request head accepted.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How many bytes of an over-limit body are read and discarded before giving up.
pub const DISCARD_CAP: u64 = 64 * 1024 * 1024;
/// How long a request may stall part-way before the connection is closed.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
/// How long a keep-alive connection may stay idle between requests.
pub const IDLE_LIMIT: Duration = Duration::from_secs(120);

/// A request's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Complete(Vec<u8>),
    /// Over the limit; `drained` tells whether the rest was read (and thrown
    /// away), so the connection can serve another request.
    TooLarge {
        drained: bool,
    },
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to keep the connection open.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match self.version {
            0 => connection.is_some_and(|c| c.contains("keep-alive")),
            _ => !connection.is_some_and(|c| c.contains("close")),
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed the connection, or it stayed idle too long, or the
    /// server is stopping: close quietly.
    Closed,
    /// The request is not valid HTTP: answer 400 and close.
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A connection's read side with its buffer of bytes read ahead.
pub struct Conn<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Conn<S> {
    pub fn new(stream: S) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer. A read timeout is retried until
    /// `stopping()` or until the connection stalls past `limit`.
    fn fill(&mut self, stopping: &dyn Fn() -> bool, limit: Duration) -> Result<(), ReadError> {
        let start = Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stopping() || start.elapsed() > limit {
                        return Err(ReadError::Closed);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ReadError::Closed)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the next request; bodies over `max_body` bytes are not kept.
    pub fn read_request(
        &mut self,
        max_body: u64,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Request, ReadError> {
        let (head_len, method, path, version, headers) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut slots);
            match req.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let headers = req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).trim().to_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (
                        n,
                        req.method.unwrap_or("").to_owned(),
                        req.path.unwrap_or("").to_owned(),
                        req.version.unwrap_or(1),
                        headers,
                    );
                }
                Ok(httparse::Status::Partial) => {
                    if self.buf.len() > MAX_HEAD_BYTES {
                        return Err(ReadError::Malformed("request head too long".into()));
                    }
                    let limit = if self.buf.is_empty() {
                        IDLE_LIMIT
                    } else {
                        STALL_LIMIT
                    };
                    self.fill(stopping, limit)?;
                }
                Err(e) => return Err(ReadError::Malformed(format!("bad request head: {e}"))),
            }
        };
        self.buf.drain(..head_len);
        let mut request = Request {
            method,
            path,
            version,
            headers,
            body: Body::Complete(Vec::new()),
        };
        if request
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let chunked = request
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        request.body = if chunked {
            self.read_chunked(max_body, stopping)?
        } else {
            let length = match request.header("content-length") {
                None => 0,
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| ReadError::Malformed(format!("bad Content-Length {v:?}")))?,
            };
            if length > max_body {
                Body::TooLarge {
                    drained: self.discard(length, stopping)?,
                }
            } else {
                Body::Complete(self.take(length as usize, stopping)?)
            }
        };
        Ok(request)
    }

    fn take(&mut self, n: usize, stopping: &dyn Fn() -> bool) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill(stopping, STALL_LIMIT)?;
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Reads and drops `n` bytes, if there are at most [`DISCARD_CAP`].
    fn discard(&mut self, n: u64, stopping: &dyn Fn() -> bool) -> Result<bool, ReadError> {
        if n > DISCARD_CAP {
            return Ok(false);
        }
        let mut left = n;
        loop {
            let here = (self.buf.len() as u64).min(left);
            self.buf.drain(..here as usize);
            left -= here;
            if left == 0 {
                return Ok(true);
            }
            self.fill(stopping, STALL_LIMIT)?;
        }
    }

    fn line(&mut self, stopping: &dyn Fn() -> bool) -> Result<String, ReadError> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Err(ReadError::Malformed("chunk header too long".into()));
            }
            self.fill(stopping, STALL_LIMIT)?;
        }
    }

    fn read_chunked(
        &mut self,
        max_body: u64,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Body, ReadError> {
        let mut body = Vec::new();
        let mut total: u64 = 0;
        let mut too_large = false;
        loop {
            let line = self.line(stopping)?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                break;
            }
            total = total.saturating_add(size);
            if total > max_body && !too_large {
                too_large = true;
                body = Vec::new();
            }
            if too_large {
                if total > DISCARD_CAP {
                    return Ok(Body::TooLarge { drained: false });
                }
                self.discard(size, stopping)?;
            } else {
                body.extend(self.take(size as usize, stopping)?);
            }
            if !self.line(stopping)?.is_empty() {
                return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
            }
        }
        // Trailers, up to the empty line.
        while !self.line(stopping)?.is_empty() {}
        Ok(if too_large {
            Body::TooLarge { drained: true }
        } else {
            Body::Complete(body)
        })
    }
}

/// Writes one answer, framed by Content-Length.
pub fn write_response(
    out: &mut impl Write,
    status: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut all = Vec::with_capacity(head.len() + body.len());
    all.extend_from_slice(head.as_bytes());
    all.extend_from_slice(body);
    out.write_all(&all)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A stream that reads from a fixed input and records what is written.
    struct Mock {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // Hand out a few bytes at a time, to exercise partial reads.
            let n = buf.len().min(7);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for Mock {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn conn(input: &[u8]) -> Conn<Mock> {
        Conn::new(Mock {
            input: Cursor::new(input.to_vec()),
            output: Vec::new(),
        })
    }

    const NEVER: &dyn Fn() -> bool = &|| false;

    #[test]
    fn reads_keep_alive_requests_in_sequence() {
        let mut c = conn(
            b"POST /face/getinfo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\nGET /c HTTP/1.0\r\n\r\n",
        );
        let a = c.read_request(100, NEVER).unwrap();
        assert_eq!(
            (a.method.as_str(), a.path.as_str()),
            ("POST", "/face/getinfo")
        );
        assert_eq!(a.body, Body::Complete(b"hello".to_vec()));
        assert_eq!(a.header("host"), Some("x"));
        assert!(a.keep_alive());
        let b = c.read_request(100, NEVER).unwrap();
        assert_eq!(b.body, Body::Complete(b"abcde".to_vec()));
        let g = c.read_request(100, NEVER).unwrap();
        assert_eq!(g.path, "/c");
        assert!(!g.keep_alive());
        assert!(matches!(c.read_request(100, NEVER), Err(ReadError::Closed)));
    }

    #[test]
    fn bodies_over_the_limit_are_drained_not_kept() {
        let mut input = b"POST /a HTTP/1.1\r\nContent-Length: 20\r\n\r\n".to_vec();
        input.extend([b'x'; 20]);
        input.extend(b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n");
        input.extend(b"POST /c HTTP/1.1\r\nContent-Length: 2\r\n\r\nok");
        let mut c = conn(&input);
        assert_eq!(
            c.read_request(10, NEVER).unwrap().body,
            Body::TooLarge { drained: true }
        );
        assert_eq!(
            c.read_request(10, NEVER).unwrap().body,
            Body::TooLarge { drained: true }
        );
        assert_eq!(
            c.read_request(10, NEVER).unwrap().body,
            Body::Complete(b"ok".to_vec())
        );
        let mut huge = conn(
            format!(
                "POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                DISCARD_CAP + 1
            )
            .as_bytes(),
        );
        assert_eq!(
            huge.read_request(10, NEVER).unwrap().body,
            Body::TooLarge { drained: false }
        );
    }

    #[test]
    fn expect_continue_is_answered() {
        let mut c = conn(b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz");
        c.read_request(10, NEVER).unwrap();
        assert_eq!(c.stream.output, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn malformed_requests_are_reported() {
        let mut c = conn(b"\x00\x01 nonsense\r\n\r\n");
        assert!(matches!(
            c.read_request(10, NEVER),
            Err(ReadError::Malformed(_))
        ));
        let mut c = conn(b"POST /a HTTP/1.1\r\nContent-Length: abc\r\n\r\n");
        assert!(matches!(
            c.read_request(10, NEVER),
            Err(ReadError::Malformed(_))
        ));
        let mut c = conn(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        assert!(matches!(
            c.read_request(10, NEVER),
            Err(ReadError::Malformed(_))
        ));
        let mut c = conn(b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort");
        assert!(matches!(c.read_request(100, NEVER), Err(ReadError::Closed)));
    }

    #[test]
    fn responses_carry_their_length() {
        let mut out = Vec::new();
        write_response(&mut out, 200, "OK", "application/json", b"{}", true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Connection: keep-alive\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let mut c = conn(&bytes);
                for _ in 0..4 {
                    if c.read_request(64, NEVER).is_err() {
                        break;
                    }
                }
            }

            #[test]
            fn chunked_bodies_decode_whatever_the_chunking(
                body in proptest::collection::vec(any::<u8>(), 0..500),
                sizes in proptest::collection::vec(1usize..50, 1..20),
            ) {
                let mut raw = b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let mut rest = body.as_slice();
                let mut i = 0;
                while !rest.is_empty() {
                    let n = sizes[i % sizes.len()].min(rest.len());
                    raw.extend(format!("{n:X}\r\n").as_bytes());
                    raw.extend(&rest[..n]);
                    raw.extend(b"\r\n");
                    rest = &rest[n..];
                    i += 1;
                }
                raw.extend(b"0\r\n\r\n");
                let request = conn(&raw).read_request(10_000, NEVER).unwrap();
                prop_assert_eq!(request.body, Body::Complete(body));
            }
        }
    }
}
