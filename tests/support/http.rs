//! The emulator's integration tests' own small HTTP/1.1 client (so tests control
//! keep-alive, framing and signatures byte for byte), request builders in both body
//! encodings and a loopback file server for URL images.
#![allow(dead_code)]

use faceenroll::emulator;
use faceenroll::service::api::Call;
use faceenroll::service::sign::{sign, SignatureFields};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const APPID: &str = emulator::REHEARSAL_APPID;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signature with the given fields, signed with `key`.
pub fn signature(appid: &str, secret_id: &str, key: &str, now: u64, expires: u64) -> String {
    sign(
        &SignatureFields {
            appid: appid.into(),
            bucket: String::new(),
            secret_id: secret_id.into(),
            expires,
            now,
            rand: 1234,
            fileid: String::new(),
        },
        key,
    )
}

/// A valid signature with the rehearsal credentials, for ten minutes.
pub fn good_signature() -> String {
    let now = unix_now();
    signature(
        APPID,
        emulator::REHEARSAL_SECRET_ID,
        emulator::REHEARSAL_SECRET_KEY,
        now,
        now + 600,
    )
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "answer is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One keep-alive connection.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect to the emulator");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Connection {
            reader: BufReader::new(stream),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one answer; an error if the emulator closed the connection instead.
    pub fn read_answer(&mut self) -> io::Result<HttpAnswer> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed without an answer",
            ));
        }
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("answers carry a Content-Length");
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(HttpAnswer {
            status,
            headers,
            body,
        })
    }

    /// Sends a request and reads its answer.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpAnswer> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: recognition.image.myqcloud.com\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut all = head.into_bytes();
        all.extend_from_slice(body);
        self.send_raw(&all)?;
        self.read_answer()
    }

    /// A signed call with a prepared body.
    pub fn call(&mut self, call: Call, body: &RequestBody) -> io::Result<HttpAnswer> {
        let auth = good_signature();
        self.call_signed(call, body, Some(&auth))
    }

    pub fn call_signed(
        &mut self,
        call: Call,
        body: &RequestBody,
        authorization: Option<&str>,
    ) -> io::Result<HttpAnswer> {
        let mut headers = vec![("Content-Type", body.content_type.as_str())];
        if let Some(auth) = authorization {
            headers.push(("Authorization", auth));
        }
        self.request("POST", &call.path(), &headers, &body.bytes)
    }
}

/// A request body and its Content-Type.
#[derive(Debug, Clone)]
pub struct RequestBody {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A JSON body; `appid` and `bucket` are added as the SDK does.
pub fn json_body(mut fields: Value) -> RequestBody {
    let map = fields.as_object_mut().expect("an object");
    map.entry("appid").or_insert(Value::from(APPID));
    map.entry("bucket").or_insert(Value::from(""));
    RequestBody {
        content_type: "application/json".into(),
        bytes: serde_json::to_vec(&fields).unwrap(),
    }
}

/// A field of a multipart body.
pub enum Field<'a> {
    Text(&'a str, &'a str),
    List(&'a str, &'a [&'a str]),
    File(&'a str, &'a [u8]),
}

/// A multipart body as the official SDK sends it: `appid` and `bucket` first, every
/// part with a filename, lists spelled `name[i]`, image parts without a type.
pub fn multipart_body(fields: &[Field<'_>]) -> RequestBody {
    let boundary = "emuTestBoundary7MA4YWxkTrZu0gW";
    let mut out = Vec::new();
    let mut part = |name: &str, filename: &str, data: &[u8]| {
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    };
    part("appid", "appid", APPID.as_bytes());
    part("bucket", "bucket", b"");
    for field in fields {
        match field {
            Field::Text(name, value) => part(name, name, value.as_bytes()),
            Field::List(name, values) => {
                for (i, value) in values.iter().enumerate() {
                    let indexed = format!("{name}[{i}]");
                    part(&indexed, &indexed, value.as_bytes());
                }
            }
            Field::File(name, data) => part(name, "photos%2Fimg.jpg", data),
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    RequestBody {
        content_type: format!("multipart/form-data; boundary={boundary}"),
        bytes: out,
    }
}

/// A newperson body in multipart, one image.
pub fn new_person_body(person_id: &str, groups: &[&str], image: &[u8]) -> RequestBody {
    multipart_body(&[
        Field::Text("person_id", person_id),
        Field::List("group_ids", groups),
        Field::File("image", image),
    ])
}

/// A loopback HTTP server of fixed files, for URL images (answers 404 otherwise).
pub struct FileServer {
    pub addr: SocketAddr,
}

impl FileServer {
    pub fn start(files: Vec<(&str, Vec<u8>)>) -> FileServer {
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(
            files
                .into_iter()
                .map(|(name, bytes)| (format!("/{name}"), bytes))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let files = Arc::clone(&files);
                std::thread::spawn(move || serve_file(stream, &files));
            }
        });
        FileServer { addr }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

fn serve_file(stream: TcpStream, files: &HashMap<String, Vec<u8>>) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = match files.get(path) {
        Some(bytes) => ("200 OK", bytes.as_slice()),
        None => ("404 Not Found", b"not found".as_slice()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    let _ = reader.get_mut().write_all(&out);
}

/// The keys of an answer's `data`, sorted.
pub fn data_keys(answer: &Value) -> Vec<String> {
    let mut keys: Vec<String> = answer["data"]
        .as_object()
        .expect("data is an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Asserts an error answer: the code, a message, and `data` `{}`.
#[track_caller]
pub fn assert_error(answer: &Value, code: i64) {
    assert_eq!(answer["code"], code, "answer: {answer}");
    assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(answer["data"], serde_json::json!({}), "answer: {answer}");
}
