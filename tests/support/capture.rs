//! A capture server: answers every `POST /face/<name>` with a canned success and
//! records the raw request, so a test can compare what the client put on the wire
//! with a request written by hand from the contract. It shares no code with the
//! client or the emulator: its HTTP and multipart reading are its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    /// Header names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The parts of a multipart body, sorted by name; panics if it is not one.
    pub fn parts(&self) -> Vec<CapturedPart> {
        let content_type = self.header("content-type").expect("a Content-Type");
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap_or_else(|| panic!("not multipart: {content_type}"));
        let delimiter = format!("--{boundary}");
        let body = &self.body[..];
        let closing = format!("{delimiter}--\r\n");
        assert!(
            body.ends_with(closing.as_bytes()),
            "the body does not end with the closing boundary"
        );
        assert!(body.starts_with(delimiter.as_bytes()));
        let mut parts = Vec::new();
        let mut rest = &body[delimiter.len()..body.len() - closing.len()];
        // Each part: CRLF, headers, CRLF CRLF, content, CRLF, delimiter.
        while !rest.is_empty() {
            assert!(rest.starts_with(b"\r\n"), "a part does not open with CRLF");
            let end = find(rest, delimiter.as_bytes()).unwrap_or(rest.len());
            let part = &rest[2..end];
            rest = &rest[(end + delimiter.len()).min(rest.len())..];
            let split = find(part, b"\r\n\r\n").expect("a part's headers end");
            let head = std::str::from_utf8(&part[..split]).unwrap();
            let data = part[split + 4..]
                .strip_suffix(b"\r\n")
                .expect("a part's content ends with CRLF");
            let mut captured = CapturedPart {
                name: String::new(),
                filename: None,
                content_type: None,
                data: data.to_vec(),
            };
            for line in head.split("\r\n") {
                let (name, value) = line.split_once(": ").unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-disposition" => {
                        assert!(value.starts_with("form-data; "), "{value}");
                        captured.name = quoted(value, "name").expect("a part name");
                        captured.filename = quoted(value, "filename");
                    }
                    "content-type" => captured.content_type = Some(value.to_owned()),
                    other => panic!("unexpected part header {other}"),
                }
            }
            parts.push(captured);
        }
        parts.sort_by(|a, b| a.name.cmp(&b.name));
        parts
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedPart {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl CapturedPart {
    /// A text part as a client writes it: no filename, no content type.
    pub fn text(name: &str, value: &str) -> CapturedPart {
        CapturedPart {
            name: name.into(),
            filename: None,
            content_type: None,
            data: value.as_bytes().to_vec(),
        }
    }

    /// An image part: its filename, its content type and its exact bytes.
    pub fn image(name: &str, filename: &str, content_type: &str, data: &[u8]) -> CapturedPart {
        CapturedPart {
            name: name.into(),
            filename: Some(filename.into()),
            content_type: Some(content_type.into()),
            data: data.to_vec(),
        }
    }
}

fn quoted(header: &str, key: &str) -> Option<String> {
    let start = header.find(&format!("; {key}=\""))? + key.len() + 4;
    let len = header[start..].find('"')?;
    Some(header[start..start + len].to_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The server. Dropping it leaves its thread waiting on a port nobody calls.
pub struct CaptureServer {
    pub endpoint: String,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl CaptureServer {
    pub fn start() -> CaptureServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                serve(stream, &sink);
            }
        });
        CaptureServer { endpoint, requests }
    }

    /// Takes the requests recorded since the last call.
    pub fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }

    /// Takes the one request recorded since the last call.
    pub fn only(&self) -> Captured {
        let mut all = self.take();
        assert_eq!(all.len(), 1, "{all:?}");
        all.pop().unwrap()
    }
}

/// Reads one request, records it, then answers: recorded before the client can see
/// the answer, so a test that looks right after the call finds it.
fn serve(stream: TcpStream, sink: &Mutex<Vec<Captured>>) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse().expect("a numeric Content-Length"))
        .expect("every request carries a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let answer = canned(path.strip_prefix("/face/").unwrap_or(""));
    sink.lock().unwrap().push(Captured {
        method,
        path,
        headers,
        body,
    });
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{answer}",
        answer.len()
    );
    Some(())
}

/// A success answer of each call, with every field of its `data` in the contract.
fn canned(call: &str) -> String {
    let data = match call {
        "newperson" => {
            r#"{"person_id":"p","suc_group":1,"suc_face":1,"face_id":"1","group_ids":["g"],"session_id":""}"#
        }
        "delperson" => r#"{"person_id":"p","deleted":1,"session_id":""}"#,
        "addface" => r#"{"added":1,"face_ids":["1"],"ret_codes":[0],"session_id":""}"#,
        "delface" => r#"{"deleted":1,"face_ids":["1"],"session_id":""}"#,
        "setinfo" => r#"{"person_id":"p","session_id":""}"#,
        "getinfo" => {
            r#"{"person_id":"p","person_name":"","face_ids":[],"group_ids":[],"tag":"","session_id":""}"#
        }
        "getgroupids" => r#"{"group_ids":[]}"#,
        "getpersonids" => r#"{"person_ids":[]}"#,
        "getfaceids" => r#"{"face_ids":[]}"#,
        "getfaceinfo" => {
            r#"{"face_info":{"face_id":"1","x":0,"y":0,"width":1.0,"height":1.0,"gender":0,"age":0,"expression":0,"glass":false,"pitch":0,"yaw":0,"roll":0}}"#
        }
        "addgroupids" => r#"{"person_id":"p","added":1,"group_ids":["g"],"session_id":""}"#,
        "delgroupids" => r#"{"person_id":"p","deleted":1,"group_ids":[],"session_id":""}"#,
        _ => "{}",
    };
    format!(r#"{{"code":0,"message":"OK","data":{data}}}"#)
}
