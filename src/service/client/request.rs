//! The body of a request: its fields and photos, as JSON (no photos, or photo URLs)
//! or as `multipart/form-data` (local photos).

use super::{CallError, Client};
use crate::model::ImageRef;
use crate::service::api::Call;
use crate::service::multipart::MultipartBuilder;
use std::path::PathBuf;
use std::sync::Arc;

/// A photo as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageBody {
    /// A local file, streamed from disk as a multipart part.
    File(PathBuf),
    /// Bytes the tool produced (e.g. a re-encoded photo), sent as a multipart part.
    Bytes { filename: String, bytes: Arc<[u8]> },
    /// An http(s) URL the service downloads, sent in a JSON body.
    Url(String),
}

impl ImageBody {
    fn url(&self) -> Option<&str> {
        match self {
            ImageBody::Url(u) => Some(u),
            _ => None,
        }
    }
}

impl From<ImageRef> for ImageBody {
    fn from(image: ImageRef) -> ImageBody {
        match image {
            ImageRef::File(p) => ImageBody::File(p),
            ImageRef::Url(u) => ImageBody::Url(u),
        }
    }
}

/// A field of a request body.
pub(super) enum Value<'a> {
    Text(&'a str),
    List(Vec<&'a str>),
}

/// The images of a request: `image`/`url` (newperson) or `images[i]`/`urls` (addface).
pub(super) enum Images<'a> {
    None,
    One(&'a ImageBody),
    Many(&'a [ImageBody]),
}

pub(super) struct Request<'a> {
    pub(super) call: Call,
    fields: Vec<(&'static str, Value<'a>)>,
    pub(super) images: Images<'a>,
}

impl<'a> Request<'a> {
    pub(super) fn new(call: Call) -> Self {
        Request {
            call,
            fields: Vec::new(),
            images: Images::None,
        }
    }

    pub(super) fn text(mut self, name: &'static str, value: &'a str) -> Self {
        self.fields.push((name, Value::Text(value)));
        self
    }

    pub(super) fn opt_text(self, name: &'static str, value: Option<&'a str>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    pub(super) fn list<S: AsRef<str>>(mut self, name: &'static str, values: &'a [S]) -> Self {
        let values = values.iter().map(AsRef::as_ref).collect();
        self.fields.push((name, Value::List(values)));
        self
    }
}

/// A body ready to send.
pub(super) enum Body {
    Json(Vec<u8>),
    Multipart(crate::service::multipart::Multipart),
}

impl Client {
    pub(super) fn body(&self, req: &Request<'_>) -> Result<Body, CallError> {
        let images: &[ImageBody] = match &req.images {
            Images::None => &[],
            Images::One(i) => std::slice::from_ref(*i),
            Images::Many(i) => i,
        };
        let urls = images.iter().filter(|i| i.url().is_some()).count();
        if urls == images.len() {
            Ok(Body::Json(self.json_body(req)))
        } else if urls == 0 {
            self.multipart_body(req)
        } else {
            Err(CallError::Request {
                call: req.call,
                reason: format!(
                    "{urls} of {} photos are URLs and the others local; one request sends \
                     either local photos or URLs",
                    images.len()
                ),
            })
        }
    }

    fn json_body(&self, req: &Request<'_>) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        map.insert("appid".into(), self.inner.appid.as_str().into());
        map.insert("bucket".into(), self.inner.bucket.as_str().into());
        for (name, value) in &req.fields {
            let value = match value {
                Value::Text(t) => serde_json::Value::from(*t),
                Value::List(l) => serde_json::Value::from(l.clone()),
            };
            map.insert((*name).into(), value);
        }
        match &req.images {
            Images::None => {}
            Images::One(i) => {
                map.insert("url".into(), i.url().unwrap_or_default().into());
            }
            Images::Many(images) => {
                let urls: Vec<&str> = images.iter().filter_map(ImageBody::url).collect();
                map.insert("urls".into(), urls.into());
            }
        }
        serde_json::to_vec(&map).expect("a JSON map serializes")
    }

    fn multipart_body(&self, req: &Request<'_>) -> Result<Body, CallError> {
        let mut b = MultipartBuilder::new();
        b.text("appid", &self.inner.appid)
            .text("bucket", &self.inner.bucket);
        for (name, value) in &req.fields {
            match value {
                Value::Text(t) => {
                    b.text(name, t);
                }
                Value::List(l) => {
                    for (i, v) in l.iter().enumerate() {
                        b.text(&format!("{name}[{i}]"), v);
                    }
                }
            }
        }
        let mut add = |name: String, image: &ImageBody| -> Result<(), CallError> {
            match image {
                ImageBody::File(path) => {
                    b.file(&name, path).map_err(|source| CallError::Image {
                        call: req.call,
                        path: path.clone(),
                        source,
                    })?;
                }
                ImageBody::Bytes { filename, bytes } => {
                    b.bytes(&name, filename, bytes.clone());
                }
                ImageBody::Url(_) => unreachable!("checked: no URL in a multipart request"),
            }
            Ok(())
        };
        match &req.images {
            Images::None => {}
            Images::One(i) => add("image".into(), i)?,
            Images::Many(images) => {
                for (i, image) in images.iter().enumerate() {
                    add(format!("images[{i}]"), image)?;
                }
            }
        }
        Ok(Body::Multipart(b.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupId, PersonId};
    use crate::service::codes::{self, Class};
    use std::path::Path;

    use crate::service::client::tests::config;

    #[test]
    fn mixed_chunks_are_refused_before_sending() {
        let client = Client::new(config()).unwrap();
        let person = PersonId::new("p1").unwrap();
        let err = client
            .add_faces(
                &person,
                &[
                    ImageBody::Url("http://127.0.0.1/a.jpg".into()),
                    ImageBody::File("/tmp/b.jpg".into()),
                ],
                None,
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                CallError::Request {
                    call: Call::AddFace,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.class(), Class::Request);
        assert!(
            err.to_string().starts_with("addface: request not sent"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_photo_is_an_image_error_naming_the_file() {
        let client = Client::new(config()).unwrap();
        let person = PersonId::new("p1").unwrap();
        let err = client
            .add_faces(
                &person,
                &[ImageBody::File("/nonexistent/x.jpg".into())],
                None,
            )
            .unwrap_err();
        assert_eq!(err.class(), Class::Outcome(codes::Outcome::Unreadable));
        assert_eq!(err.call(), Call::AddFace);
        let (path, _) = err.unreadable_photo().expect("names the photo");
        assert_eq!(path, Path::new("/nonexistent/x.jpg"));
        assert!(err.to_string().contains("/nonexistent/x.jpg"), "{err}");
    }

    #[test]
    fn json_bodies_carry_appid_bucket_and_plain_arrays() {
        let client = Client::new(config()).unwrap();
        let groups = [GroupId::new("g1").unwrap(), GroupId::new("g2").unwrap()];
        let person = PersonId::new("p1").unwrap();
        let image = ImageBody::Url("http://127.0.0.1/a.jpg".into());
        let req = Request {
            images: Images::One(&image),
            ..Request::new(Call::NewPerson)
                .list("group_ids", &groups)
                .text("person_id", person.as_str())
        };
        let Body::Json(bytes) = client.body(&req).unwrap() else {
            panic!("URL photos travel as JSON")
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "appid": "1250000000", "bucket": "", "group_ids": ["g1", "g2"],
                "person_id": "p1", "url": "http://127.0.0.1/a.jpg"
            })
        );
    }
}
