//! A `multipart/form-data` body parser (RFC 7578), just what the emulator needs.
//!
//! Parts are read by their `name`; whether a part carries a `filename` does not
//! matter, because the service's official SDK sends every field, text included, as
//! a part with a filename. The parser borrows part contents from the body, so a
//! 6 MB upload is not copied while it is split.
//!
//! # Why not a multipart crate
//!
//! The well-kept parser, `multer`, reads an async stream and needs an async
//! runtime; the emulator serves each connection on a thread of its own with the
//! whole body already in memory, and its strict probes ([`super::probe`]) check
//! every part as sent (its name, `images[0]` included, and whether it has a
//! filename). Splitting a body in memory at its boundary is the short part kept
//! here, and it borrows where a crate would copy.

use thiserror::Error;

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The `name` of its `Content-Disposition`.
    pub name: String,
    /// The `filename` of its `Content-Disposition`, when it has one.
    pub filename: Option<String>,
    /// Its `Content-Type`, when it has one.
    pub content_type: Option<String>,
    /// Its content, exactly as sent.
    pub data: &'a [u8],
}

/// Why a multipart body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    #[error("the Content-Type has no boundary parameter")]
    NoBoundary,
    #[error("the body does not start with the boundary")]
    NoOpeningBoundary,
    #[error("part {0} has no end of headers")]
    UnterminatedHeaders(usize),
    #[error("part {0} is not closed by a boundary")]
    UnterminatedPart(usize),
    #[error("part {0} has no Content-Disposition with a name")]
    NoName(usize),
    #[error("part {0} has a header that is not UTF-8")]
    BadHeader(usize),
}

/// The `boundary` parameter of a `multipart/form-data` Content-Type value.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    split_params(content_type)
        .into_iter()
        .skip(1)
        .find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| unquote(value.trim()))
        })
        .filter(|b| !b.is_empty())
        .ok_or(MultipartError::NoBoundary)
}

/// Splits `body` into its parts.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let dash_boundary = format!("--{boundary}");
    let delimiter = format!("\r\n--{boundary}");
    // The first boundary may follow a preamble, or open the body directly.
    let mut pos = if body.starts_with(dash_boundary.as_bytes()) {
        dash_boundary.len()
    } else {
        find(body, delimiter.as_bytes(), 0).ok_or(MultipartError::NoOpeningBoundary)?
            + delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        // After a boundary: "--" closes the body, otherwise CRLF opens a part.
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let index = parts.len();
        let after_padding = skip_transport_padding(body, pos);
        if !body[after_padding..].starts_with(b"\r\n") {
            return Err(MultipartError::UnterminatedPart(index));
        }
        let head_start = after_padding + 2;
        let head_end = if body[head_start..].starts_with(b"\r\n") {
            head_start - 2 // a part without headers
        } else {
            find(body, b"\r\n\r\n", head_start).ok_or(MultipartError::UnterminatedHeaders(index))?
        };
        let head = std::str::from_utf8(&body[head_start..head_end.max(head_start)])
            .map_err(|_| MultipartError::BadHeader(index))?;
        let data_start = head_end + 4;
        let data_end = find(body, delimiter.as_bytes(), data_start)
            .ok_or(MultipartError::UnterminatedPart(index))?;
        parts.push(part(index, head, &body[data_start..data_end])?);
        pos = data_end + delimiter.len();
    }
}

fn skip_transport_padding(body: &[u8], mut pos: usize) -> usize {
    while matches!(body.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    pos
}

fn part<'a>(index: usize, head: &str, data: &'a [u8]) -> Result<Part<'a>, MultipartError> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            for param in split_params(value).into_iter().skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(unquote(v.trim())),
                    "filename" => filename = Some(unquote(v.trim())),
                    _ => {}
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    Ok(Part {
        name: name.ok_or(MultipartError::NoName(index))?,
        filename,
        content_type,
        data,
    })
}

/// Splits a header value at the semicolons that are not inside quotes.
fn split_params(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => value.to_owned(),
    }
}

/// The first position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut pos = from;
    while pos + needle.len() <= haystack.len() {
        let offset = haystack[pos..=haystack.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        pos += offset;
        if &haystack[pos..pos + needle.len()] == needle {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, Option<&str>, &[u8])], boundary: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, filename, data) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match filename {
                Some(f) => out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn reads_parts_by_name_with_or_without_filename() {
        let image = b"\xff\xd8\xff\r\n--not-the-boundary\r\n\x00binary";
        let b = body(
            &[
                ("appid", Some("appid"), b"1250000000"),
                ("group_ids[0]", None, b"staff"),
                ("images[0]", Some("photos%2Fa.jpg"), image),
            ],
            "xYzZY",
        );
        let parts = parse(&b, "xYzZY").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "appid");
        assert_eq!(parts[0].filename.as_deref(), Some("appid"));
        assert_eq!(parts[0].data, b"1250000000");
        assert_eq!(parts[1].name, "group_ids[0]");
        assert_eq!(parts[1].filename, None);
        assert_eq!(parts[1].data, b"staff");
        assert_eq!(parts[2].filename.as_deref(), Some("photos%2Fa.jpg"));
        assert_eq!(parts[2].data, image);
    }

    #[test]
    fn empty_parts_and_preamble() {
        let mut b = b"preamble text".to_vec();
        b.extend_from_slice(b"\r\n");
        b.extend(body(
            &[("bucket", Some("bucket"), b""), ("image", None, b"")],
            "b",
        ));
        let parts = parse(&b, "b").unwrap();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.data.is_empty()));
    }

    #[test]
    fn boundary_from_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc123").unwrap(),
            "abc123"
        );
        assert_eq!(
            boundary("multipart/form-data; charset=utf-8; Boundary=\"a b;c\"").unwrap(),
            "a b;c"
        );
        assert_eq!(
            boundary("multipart/form-data"),
            Err(MultipartError::NoBoundary)
        );
    }

    #[test]
    fn quoted_names_with_semicolons_and_escapes() {
        let b = b"--q\r\nContent-Disposition: form-data; name=\"a;b\"; filename=\"x\\\"y.jpg\"\r\nContent-Type: image/jpeg\r\n\r\ndata\r\n--q--";
        let parts = parse(b, "q").unwrap();
        assert_eq!(parts[0].name, "a;b");
        assert_eq!(parts[0].filename.as_deref(), Some("x\"y.jpg"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/jpeg"));
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let b = body(&[("appid", None, b"1")], "b");
        let cut = &b[..b.len() - 10];
        assert_eq!(parse(cut, "b"), Err(MultipartError::UnterminatedPart(0)));
        assert_eq!(
            parse(b"no boundary here", "b"),
            Err(MultipartError::NoOpeningBoundary)
        );
        let no_name = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--";
        assert_eq!(parse(no_name, "b"), Err(MultipartError::NoName(0)));
    }

    #[test]
    fn find_locates_needles() {
        assert_eq!(find(b"abcabd", b"abd", 0), Some(3));
        assert_eq!(find(b"abcabd", b"abd", 4), None);
        assert_eq!(find(b"ab", b"abc", 0), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parts_round_trip(
                parts in proptest::collection::vec(
                    ("[a-z_]{1,12}(\\[[0-9]{1,2}\\])?", proptest::option::of("[a-zA-Z0-9%._-]{1,20}"), proptest::collection::vec(any::<u8>(), 0..300)),
                    0..8,
                )
            ) {
                let boundary = "----proptestBoundary9f8e7d6c5b4a";
                let refs: Vec<(&str, Option<&str>, &[u8])> = parts
                    .iter()
                    .map(|(n, f, d)| (n.as_str(), f.as_deref(), d.as_slice()))
                    .collect();
                let b = body(&refs, boundary);
                let parsed = parse(&b, boundary).unwrap();
                prop_assert_eq!(parsed.len(), parts.len());
                for (got, (name, filename, data)) in parsed.iter().zip(&parts) {
                    prop_assert_eq!(&got.name, name);
                    prop_assert_eq!(&got.filename, filename);
                    prop_assert_eq!(got.data, data.as_slice());
                }
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                let _ = parse(&bytes, "b");
            }
        }
    }
}
