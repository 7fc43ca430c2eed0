//! Settings that let a test examine a client through the emulator: a strict reading
//! of request bodies, a reading of the service that keeps duplicate faces, and a
//! hook that watches (or holds) each call at three moments.
//!
//! All are off in [`Probes::default`]; operators' rehearsals never need them.
//!
//! # The strict reading ([`check_body`])
//!
//! The emulator by default reads bodies leniently, as a forgiving service might: a
//! text where a list is expected is a list of one, a number is its decimal text. A
//! client that leans on that leniency may fail on the real service, so with
//! [`Probes::strict`] a body the contract does not allow is refused with 21:
//!
//! - a Content-Type other than `application/json` or `multipart/form-data`;
//! - a field the call does not take (each call takes `appid`, `bucket`,
//!   `session_id` and the fields of its row in the contract's table of calls);
//! - in JSON: a text field that is not a JSON string, a list field (`group_ids`,
//!   `face_ids`, `urls`) that is not an array of strings, or image bytes (`image`,
//!   `images`), which only multipart carries;
//! - in multipart: a list field not spelled `name[0]`, `name[1]`, ... with indexes
//!   from 0 without a gap, a text field spelled with an index or sent twice, or a
//!   URL (`url`, `urls`), which only JSON carries;
//! - `url` or `image` outside `newperson`, `urls` or `images[i]` outside `addface`.

use super::multipart;
use crate::service::api::Call;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The settings tests use to examine a client.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Refuse with 21 any body the contract does not allow ([`check_body`]).
    pub strict: bool,
    /// Add a face even when the person holds one of the same bytes (never -1312):
    /// a reading outside the contract, so that a face sent twice shows up twice.
    pub accept_duplicates: bool,
    /// Called at each [`Moment`] of every call of `/face/`.
    pub hook: Option<CallHook>,
}

/// A moment in the life of one call, as a [`CallHook`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The request was read; nothing was done yet.
    Received,
    /// The rules were applied (the state changed, if the call changes it); the
    /// answer, with this code, is not sent yet.
    Done { code: i64 },
    /// The answer was written to the connection.
    Answered,
}

/// A function called at each [`Moment`] of each call, on the connection's thread.
/// It may block: the call waits, so a test can hold a call at a moment of its
/// choosing (e.g. kill the client while the work is done and the answer not sent).
#[derive(Clone)]
pub struct CallHook(pub Arc<dyn Fn(Call, Moment) + Send + Sync>);

impl CallHook {
    pub fn new(f: impl Fn(Call, Moment) + Send + Sync + 'static) -> CallHook {
        CallHook(Arc::new(f))
    }

    pub(super) fn at(&self, call: Call, moment: Moment) {
        (self.0)(call, moment)
    }
}

impl fmt::Debug for CallHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallHook")
    }
}

/// How a field is spelled in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    List,
    /// `url` (JSON) or `image` (multipart) of newperson.
    OneImage,
    /// `urls` (JSON) or `images[i]` (multipart) of addface.
    Images,
}

/// The fields a call takes besides `appid`, `bucket` and `session_id`, from the
/// contract's table of calls.
fn fields(call: Call) -> &'static [(&'static str, Kind)] {
    use Kind::*;
    match call {
        Call::NewPerson => &[
            ("group_ids", List),
            ("person_id", Text),
            ("person_name", Text),
            ("tag", Text),
            ("image", OneImage),
            ("url", OneImage),
        ],
        Call::DelPerson | Call::GetInfo | Call::GetFaceIds => &[("person_id", Text)],
        Call::AddFace => &[
            ("person_id", Text),
            ("tag", Text),
            ("images", Images),
            ("urls", Images),
        ],
        Call::DelFace => &[("person_id", Text), ("face_ids", List)],
        Call::SetInfo => &[("person_id", Text), ("person_name", Text), ("tag", Text)],
        Call::GetGroupIds => &[],
        Call::GetPersonIds => &[("group_id", Text)],
        Call::GetFaceInfo => &[("face_id", Text)],
        Call::AddGroupIds | Call::DelGroupIds => &[("person_id", Text), ("group_ids", List)],
    }
}

fn kind(call: Call, name: &str) -> Option<Kind> {
    match name {
        "appid" | "bucket" | "session_id" => Some(Kind::Text),
        _ => fields(call)
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, kind)| *kind),
    }
}

/// Checks a body against the contract's spelling of `call`; the error says what
/// the contract does not allow.
pub fn check_body(call: Call, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => check_json(call, body),
        Some("multipart/form-data") => {
            let boundary =
                multipart::boundary(content_type.unwrap_or("")).map_err(|e| e.to_string())?;
            let parts = multipart::parse(body, &boundary).map_err(|e| e.to_string())?;
            check_parts(call, &parts)
        }
        other => Err(format!(
            "Content-Type {other:?} is neither application/json nor multipart/form-data"
        )),
    }
}

fn check_json(call: Call, body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let map = value.as_object().ok_or("the body is not a JSON object")?;
    for (name, value) in map {
        let strings = |v: &serde_json::Value| {
            v.as_array()
                .is_some_and(|items| items.iter().all(serde_json::Value::is_string))
        };
        let fits = match kind(call, name) {
            None => return Err(format!("{} takes no field {name:?}", call.name())),
            Some(Kind::Text) => value.is_string(),
            Some(Kind::List) => strings(value),
            Some(Kind::OneImage) => name == "url" && value.is_string(),
            Some(Kind::Images) => name == "urls" && strings(value),
        };
        if !fits {
            return Err(format!(
                "{}: {name:?} is {value} in JSON, which the contract does not spell so",
                call.name()
            ));
        }
    }
    Ok(())
}

fn check_parts(call: Call, parts: &[multipart::Part<'_>]) -> Result<(), String> {
    let mut texts = BTreeSet::new();
    let mut lists: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for part in parts {
        let (base, index) = match part.name.split_once('[') {
            Some((base, rest)) => {
                let index = rest
                    .strip_suffix(']')
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| format!("part name {:?} has a bad index", part.name))?;
                (base, Some(index))
            }
            None => (part.name.as_str(), None),
        };
        let fits = match (kind(call, base), index) {
            (None, _) => return Err(format!("{} takes no field {base:?}", call.name())),
            (Some(Kind::Text), None) => texts.insert(base),
            (Some(Kind::OneImage), None) => base == "image" && texts.insert(base),
            (Some(Kind::List), Some(i)) => {
                lists.entry(base).or_default().push(i);
                true
            }
            (Some(Kind::Images), Some(i)) if base == "images" => {
                lists.entry(base).or_default().push(i);
                true
            }
            _ => false,
        };
        if !fits {
            return Err(format!(
                "{}: multipart part {:?} is not spelled as the contract spells it",
                call.name(),
                part.name
            ));
        }
    }
    for (base, mut indexes) in lists {
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(want, &got)| want != got) {
            return Err(format!(
                "{}: the indexes of {base:?} are {indexes:?}, not 0, 1, 2, ...",
                call.name()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(call: Call, body: &str) -> Result<(), String> {
        check_body(call, Some("application/json"), body.as_bytes())
    }

    fn multipart(call: Call, names: &[&str]) -> Result<(), String> {
        let mut body = String::new();
        for name in names {
            body.push_str(&format!(
                "--b\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nv\r\n"
            ));
        }
        body.push_str("--b--\r\n");
        check_body(
            call,
            Some("multipart/form-data; boundary=b"),
            body.as_bytes(),
        )
    }

    #[test]
    fn json_spelled_as_the_contract_is_taken() {
        let body = r#"{"appid":"1","bucket":"","group_ids":["g"],"person_id":"p",
                       "person_name":"n","tag":"t","url":"http://h/x.jpg"}"#;
        assert_eq!(json(Call::NewPerson, body), Ok(()));
        assert_eq!(
            json(
                Call::AddFace,
                r#"{"appid":"1","person_id":"p","urls":["u"]}"#
            ),
            Ok(())
        );
        assert_eq!(
            json(
                Call::AddGroupIds,
                r#"{"appid":"1","person_id":"p","group_ids":["a","b"],"session_id":"s"}"#
            ),
            Ok(())
        );
        assert_eq!(
            json(Call::GetGroupIds, r#"{"appid":"1","bucket":""}"#),
            Ok(())
        );
    }

    #[test]
    fn json_the_contract_does_not_allow_is_refused() {
        // A text where the contract says array, and the other way round.
        assert!(json(Call::NewPerson, r#"{"appid":"1","group_ids":"g"}"#).is_err());
        assert!(json(Call::DelFace, r#"{"appid":"1","face_ids":"1"}"#).is_err());
        assert!(json(Call::AddFace, r#"{"appid":"1","urls":"u"}"#).is_err());
        assert!(json(Call::GetInfo, r#"{"appid":"1","person_id":["p"]}"#).is_err());
        // A number where the contract says string.
        assert!(json(Call::GetInfo, r#"{"appid":1}"#).is_err());
        // A field the call does not take, or an image in the wrong call.
        assert!(json(Call::GetInfo, r#"{"appid":"1","group_ids":["g"]}"#).is_err());
        assert!(json(Call::AddFace, r#"{"appid":"1","url":"u"}"#).is_err());
        assert!(json(Call::NewPerson, r#"{"appid":"1","urls":["u"]}"#).is_err());
        assert!(json(Call::NewPerson, r#"{"appid":"1","image":"AAAA"}"#).is_err());
        assert!(check_body(Call::GetInfo, None, br#"{"appid":"1"}"#).is_err());
        assert!(check_body(Call::GetInfo, Some("text/plain"), br#"{"appid":"1"}"#).is_err());
    }

    #[test]
    fn multipart_spelled_as_the_contract_is_taken() {
        let newperson = [
            "appid",
            "bucket",
            "group_ids[0]",
            "group_ids[1]",
            "person_id",
        ];
        assert_eq!(multipart(Call::NewPerson, &newperson), Ok(()));
        assert_eq!(multipart(Call::NewPerson, &["appid", "image"]), Ok(()));
        let addface = ["appid", "person_id", "images[1]", "images[0]", "tag"];
        assert_eq!(multipart(Call::AddFace, &addface), Ok(()));
    }

    #[test]
    fn multipart_the_contract_does_not_allow_is_refused() {
        // A bare list name, a gap in the indexes, an indexed text field, a repeat.
        assert!(multipart(Call::NewPerson, &["appid", "group_ids"]).is_err());
        assert!(multipart(Call::NewPerson, &["appid", "group_ids[1]"]).is_err());
        assert!(multipart(Call::NewPerson, &["appid", "person_id[0]"]).is_err());
        assert!(multipart(Call::GetInfo, &["appid", "person_id", "person_id"]).is_err());
        // Images in the wrong call or spelling; URLs in multipart.
        assert!(multipart(Call::AddFace, &["appid", "image"]).is_err());
        assert!(multipart(Call::AddFace, &["appid", "images"]).is_err());
        assert!(multipart(Call::NewPerson, &["appid", "images[0]"]).is_err());
        assert!(multipart(Call::NewPerson, &["appid", "url"]).is_err());
        assert!(multipart(Call::AddFace, &["appid", "urls[0]"]).is_err());
        assert!(multipart(Call::GetInfo, &["appid", "person_name"]).is_err());
    }
}
