//! A call's parameters, read the same way from either body encoding.
//!
//! - `application/json` (also assumed when there is no Content-Type): an object
//!   whose strings are text fields, arrays of strings are lists (`group_ids`,
//!   `face_ids`, `urls`); numbers are read as their decimal text (an `appid` sent
//!   as a number).
//! - `multipart/form-data`: every part is read by its name, with or without a
//!   filename. `name[i]` parts make the list `name`, in index order. `image` and
//!   `images[i]` are image bytes; every other part is UTF-8 text.
//!
//! A body that cannot be read (bad JSON, not an object, broken multipart, a text
//! part that is not UTF-8, an unsupported Content-Type) is refused with 21
//! (invalid parameter); a missing required field is refused later, with -1301.

use super::multipart;
use crate::service::api::Call;
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a body could not be read; answered with 21.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    #[error("body is not a JSON object: {0}")]
    Json(String),
    #[error("multipart body: {0}")]
    Multipart(#[from] multipart::MultipartError),
    #[error("multipart part {0:?} is not UTF-8 text")]
    NotText(String),
    #[error("field {0:?} has a type the contract does not use")]
    BadType(String),
    #[error("Content-Type {0:?} is neither JSON nor multipart/form-data")]
    ContentType(String),
}

/// A text field or a list of text fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    List(Vec<String>),
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Bytes(Vec<u8>),
    Url(String),
}

/// A call's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    fields: BTreeMap<String, Field>,
    image: Option<Vec<u8>>,
    images: Vec<Vec<u8>>,
}

impl Params {
    /// Reads a body according to its Content-Type.
    pub fn from_body(content_type: Option<&str>, body: &[u8]) -> Result<Params, BodyError> {
        let media = content_type
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match media.as_str() {
            "multipart/form-data" => {
                let boundary = multipart::boundary(content_type.unwrap_or(""))?;
                Params::from_parts(&multipart::parse(body, &boundary)?)
            }
            "" | "application/json" | "text/json" | "text/plain" => Params::from_json(body),
            other => Err(BodyError::ContentType(other.to_owned())),
        }
    }

    pub fn from_json(body: &[u8]) -> Result<Params, BodyError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
        let serde_json::Value::Object(map) = value else {
            return Err(BodyError::Json("the top level is not an object".into()));
        };
        let mut params = Params::default();
        for (key, value) in map {
            let field = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Array(items) => Field::List(
                    items
                        .into_iter()
                        .map(|item| scalar(item).ok_or_else(|| BodyError::BadType(key.clone())))
                        .collect::<Result<_, _>>()?,
                ),
                other => Field::Text(scalar(other).ok_or_else(|| BodyError::BadType(key.clone()))?),
            };
            params.fields.insert(key, field);
        }
        Ok(params)
    }

    pub fn from_parts(parts: &[multipart::Part<'_>]) -> Result<Params, BodyError> {
        let mut params = Params::default();
        let mut lists: BTreeMap<String, BTreeMap<usize, String>> = BTreeMap::new();
        let mut images = BTreeMap::new();
        for part in parts {
            if part.name == "image" {
                params.image = Some(part.data.to_vec());
                continue;
            }
            if let Some((base, index)) = indexed(&part.name) {
                if base == "images" {
                    images.insert(index, part.data.to_vec());
                    continue;
                }
                let text = text(part)?;
                lists
                    .entry(base.to_owned())
                    .or_default()
                    .insert(index, text);
                continue;
            }
            params
                .fields
                .insert(part.name.clone(), Field::Text(text(part)?));
        }
        for (base, items) in lists {
            params
                .fields
                .insert(base, Field::List(items.into_values().collect()));
        }
        params.images = images.into_values().collect();
        Ok(params)
    }

    /// A text field; a one-element list is read as its element.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.fields.get(name)? {
            Field::Text(t) => Some(t),
            Field::List(items) if items.len() == 1 => Some(&items[0]),
            Field::List(_) => None,
        }
    }

    /// A list field; a text field is read as a list of one.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        match self.fields.get(name)? {
            Field::Text(t) => Some(vec![t.clone()]),
            Field::List(items) => Some(items.clone()),
        }
    }

    /// The images of a call, where they come from, or `None` if the call carries
    /// none. `newperson` reads `url`, else `image`; `addface` reads `urls`, else
    /// `images[i]`: a URL wins over bytes. Other calls carry no image.
    pub fn image_sources(&self, call: Call) -> Option<Vec<ImageSource>> {
        match call {
            Call::NewPerson => match self.text("url").filter(|u| !u.is_empty()) {
                Some(url) => Some(vec![ImageSource::Url(url.to_owned())]),
                None => self.image.clone().map(|b| vec![ImageSource::Bytes(b)]),
            },
            Call::AddFace => match self.list("urls").filter(|u| !u.is_empty()) {
                Some(urls) => Some(urls.into_iter().map(ImageSource::Url).collect()),
                None if self.images.is_empty() => None,
                None => Some(
                    self.images
                        .iter()
                        .cloned()
                        .map(ImageSource::Bytes)
                        .collect(),
                ),
            },
            _ => None,
        }
    }
}

fn scalar(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn text(part: &multipart::Part<'_>) -> Result<String, BodyError> {
    String::from_utf8(part.data.to_vec()).map_err(|_| BodyError::NotText(part.name.clone()))
}

/// `group_ids[3]` → `("group_ids", 3)`.
fn indexed(name: &str) -> Option<(&str, usize)> {
    let (base, rest) = name.split_once('[')?;
    let index = rest.strip_suffix(']')?.parse().ok()?;
    Some((base, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use multipart::Part;

    fn part<'a>(name: &str, data: &'a [u8]) -> Part<'a> {
        Part {
            name: name.into(),
            filename: Some(name.into()),
            content_type: None,
            data,
        }
    }

    #[test]
    fn json_and_multipart_read_the_same() {
        let json = Params::from_json(
            br#"{"appid":1250000000,"bucket":"","person_id":"p","group_ids":["b","a"]}"#,
        )
        .unwrap();
        let multi = Params::from_parts(&[
            part("appid", b"1250000000"),
            part("bucket", b""),
            part("person_id", b"p"),
            part("group_ids[1]", b"a"),
            part("group_ids[0]", b"b"),
        ])
        .unwrap();
        assert_eq!(json, multi);
        assert_eq!(json.text("appid"), Some("1250000000"));
        assert_eq!(json.list("group_ids").unwrap(), ["b", "a"]);
        assert_eq!(json.text("missing"), None);
    }

    #[test]
    fn urls_win_over_image_bytes() {
        let both = Params::from_parts(&[
            part("url", b"http://127.0.0.1/x.jpg"),
            part("image", b"\xff\xd8"),
        ])
        .unwrap();
        assert_eq!(
            both.image_sources(Call::NewPerson).unwrap(),
            [ImageSource::Url("http://127.0.0.1/x.jpg".into())]
        );
        let bytes =
            Params::from_parts(&[part("images[1]", b"B"), part("images[0]", b"A")]).unwrap();
        assert_eq!(
            bytes.image_sources(Call::AddFace).unwrap(),
            [
                ImageSource::Bytes(b"A".to_vec()),
                ImageSource::Bytes(b"B".to_vec())
            ]
        );
        let json = Params::from_json(br#"{"urls":["u1","u2"]}"#).unwrap();
        assert_eq!(json.image_sources(Call::AddFace).unwrap().len(), 2);
        assert_eq!(Params::default().image_sources(Call::NewPerson), None);
        assert_eq!(Params::default().image_sources(Call::AddFace), None);
    }

    #[test]
    fn unreadable_bodies_are_errors() {
        assert!(matches!(Params::from_json(b"{"), Err(BodyError::Json(_))));
        assert!(matches!(Params::from_json(b"[1]"), Err(BodyError::Json(_))));
        assert!(matches!(
            Params::from_json(br#"{"group_ids":[{"a":1}]}"#),
            Err(BodyError::BadType(_))
        ));
        assert!(matches!(
            Params::from_parts(&[part("person_id", b"\xff\xfe")]),
            Err(BodyError::NotText(_))
        ));
        assert!(matches!(
            Params::from_body(Some("application/xml"), b"<a/>"),
            Err(BodyError::ContentType(_))
        ));
        assert!(matches!(
            Params::from_body(Some("multipart/form-data"), b""),
            Err(BodyError::Multipart(_))
        ));
    }
}
