//! The wire shapes of the contract: call names and the `data` of each answer.
//!
//! Both sides of the wire read these types: the client deserializes answers into
//! them and the emulator serializes its answers from them, so a field name or type
//! is written once. Field names and types follow `shared/spec/API.md` exactly.
//!
//! The emulator writes every field as the contract gives it; the client reads them
//! leniently ([`lenient`]), since a service is not known to write them all alike: a
//! field missing or `null` reads as empty, a number written as a string (or an id
//! written as a number) reads as meant. What the job relies on is checked where it
//! is used (a face id the answer left empty, an image without a code): the engine
//! then treats the photo as in doubt, never as refused.

use serde::{Deserialize, Serialize};

/// The twelve calls of the person API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Call {
    NewPerson,
    DelPerson,
    AddFace,
    DelFace,
    SetInfo,
    GetInfo,
    GetGroupIds,
    GetPersonIds,
    GetFaceIds,
    GetFaceInfo,
    AddGroupIds,
    DelGroupIds,
}

impl Call {
    pub const ALL: [Call; 12] = [
        Call::NewPerson,
        Call::DelPerson,
        Call::AddFace,
        Call::DelFace,
        Call::SetInfo,
        Call::GetInfo,
        Call::GetGroupIds,
        Call::GetPersonIds,
        Call::GetFaceIds,
        Call::GetFaceInfo,
        Call::AddGroupIds,
        Call::DelGroupIds,
    ];

    /// The call's name as it appears in the path, `newperson`.
    pub fn name(self) -> &'static str {
        match self {
            Call::NewPerson => "newperson",
            Call::DelPerson => "delperson",
            Call::AddFace => "addface",
            Call::DelFace => "delface",
            Call::SetInfo => "setinfo",
            Call::GetInfo => "getinfo",
            Call::GetGroupIds => "getgroupids",
            Call::GetPersonIds => "getpersonids",
            Call::GetFaceIds => "getfaceids",
            Call::GetFaceInfo => "getfaceinfo",
            Call::AddGroupIds => "addgroupids",
            Call::DelGroupIds => "delgroupids",
        }
    }

    /// The request path, `/face/newperson`.
    pub fn path(self) -> String {
        format!("/face/{}", self.name())
    }

    /// The call named by a request path, if any.
    pub fn from_path(path: &str) -> Option<Call> {
        let name = path.strip_prefix("/face/")?;
        Call::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// Every answer: `{"code": int, "message": str, "data": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    #[serde(deserialize_with = "lenient::int")]
    pub code: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    pub message: String,
    #[serde(
        default,
        deserialize_with = "lenient::or_default",
        bound(deserialize = "T: Deserialize<'de> + Default")
    )]
    pub data: T,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPersonData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::int")]
    pub suc_group: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub suc_face: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    pub face_id: String,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub group_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelPersonData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::int")]
    pub deleted: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFaceData {
    #[serde(default, deserialize_with = "lenient::int")]
    pub added: i64,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub face_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::ints")]
    pub ret_codes: Vec<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelFaceData {
    #[serde(default, deserialize_with = "lenient::int")]
    pub deleted: i64,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub face_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetInfoData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetInfoData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_name: String,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub face_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub group_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub tag: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIdsData {
    #[serde(default, deserialize_with = "lenient::strings")]
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonIdsData {
    #[serde(default, deserialize_with = "lenient::strings")]
    pub person_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceIdsData {
    #[serde(default, deserialize_with = "lenient::strings")]
    pub face_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaceInfoData {
    pub face_info: FaceInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaceInfo {
    #[serde(default, deserialize_with = "lenient::string")]
    pub face_id: String,
    #[serde(default, deserialize_with = "lenient::int")]
    pub x: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub y: i64,
    #[serde(default, deserialize_with = "lenient::float")]
    pub width: f64,
    #[serde(default, deserialize_with = "lenient::float")]
    pub height: f64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub gender: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub age: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub expression: i64,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub glass: bool,
    #[serde(default, deserialize_with = "lenient::int")]
    pub pitch: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub yaw: i64,
    #[serde(default, deserialize_with = "lenient::int")]
    pub roll: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddGroupIdsData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::int")]
    pub added: i64,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub group_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelGroupIdsData {
    #[serde(default, deserialize_with = "lenient::string")]
    pub person_id: String,
    #[serde(default, deserialize_with = "lenient::int")]
    pub deleted: i64,
    #[serde(default, deserialize_with = "lenient::strings")]
    pub group_ids: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub session_id: String,
}

/// Readers of answer fields that take what a service may write for them. Each is
/// for `#[serde(default, deserialize_with = ...)]`: a missing field is its
/// `Default`, and so is `null`.
pub mod lenient {
    use serde::de::{Deserialize, Deserializer, Error as _};
    use serde_json::Value;

    /// A string; a number (an id written as a number) as its decimal text.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        text(Value::deserialize(d)?).map_err(D::Error::custom)
    }

    /// An integer; a string holding one, or a float with no fraction.
    pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        integer(Value::deserialize(d)?).map_err(D::Error::custom)
    }

    /// A number; a string holding one.
    pub fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(0.0),
            Value::Number(n) => n.as_f64().ok_or_else(|| D::Error::custom("not a number")),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| D::Error::custom(format!("expected a number, found {s:?}"))),
            other => Err(D::Error::custom(format!(
                "expected a number, found {other}"
            ))),
        }
    }

    /// A boolean; 0 or 1, and the strings "true", "false", "0" and "1".
    pub fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            Value::String(s) if matches!(s.trim(), "true" | "1") => Ok(true),
            Value::String(s) if matches!(s.trim(), "false" | "0") => Ok(false),
            other => Err(D::Error::custom(format!(
                "expected a boolean, found {other}"
            ))),
        }
    }

    /// A list of strings (numbers read as their text).
    pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        list(Value::deserialize(d)?, text).map_err(D::Error::custom)
    }

    /// A list of integers (strings holding them read as meant).
    pub fn ints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        list(Value::deserialize(d)?, integer).map_err(D::Error::custom)
    }

    /// Any value; `null` as its default.
    pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    fn text(value: Value) -> Result<String, String> {
        match value {
            Value::Null => Ok(String::new()),
            Value::String(s) => Ok(s),
            Value::Number(n) => Ok(n.to_string()),
            other => Err(format!("expected a string, found {other}")),
        }
    }

    fn integer(value: Value) -> Result<i64, String> {
        let from_float = |f: f64| (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64);
        match &value {
            Value::Null => Some(0),
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(from_float)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("expected an integer, found {value}"))
    }

    fn list<T>(value: Value, item: fn(Value) -> Result<T, String>) -> Result<Vec<T>, String> {
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items.into_iter().map(item).collect(),
            other => Err(format!("expected a list, found {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_the_contracts() {
        // Every call is `POST /face/<name>`, with the names of the contract's table.
        let contract = [
            "/face/newperson",
            "/face/delperson",
            "/face/addface",
            "/face/delface",
            "/face/setinfo",
            "/face/getinfo",
            "/face/getgroupids",
            "/face/getpersonids",
            "/face/getfaceids",
            "/face/getfaceinfo",
            "/face/addgroupids",
            "/face/delgroupids",
        ];
        let paths: Vec<String> = Call::ALL.iter().map(|c| c.path()).collect();
        assert_eq!(paths, contract);
        for (call, path) in Call::ALL.into_iter().zip(contract) {
            assert_eq!(Call::from_path(path), Some(call));
        }
        assert_eq!(Call::from_path("/face/unknown"), None);
        assert_eq!(Call::from_path("/newperson"), None);
    }

    #[test]
    fn answers_are_read_as_meant_whatever_their_spelling() {
        // Missing fields, nulls, numbers as strings and ids as numbers.
        let body = r#"{"code": "0", "data": {"face_ids": [1840000000000000001, "18"],
            "ret_codes": ["0", -1312], "added": 1.0, "session_id": null}}"#;
        let answer: Envelope<AddFaceData> = serde_json::from_str(body).unwrap();
        assert_eq!(answer.code, 0);
        assert_eq!(answer.message, "");
        assert_eq!(
            answer.data,
            AddFaceData {
                added: 1,
                face_ids: vec!["1840000000000000001".into(), "18".into()],
                ret_codes: vec![0, -1312],
                session_id: String::new(),
            }
        );
        let body = r#"{"code": 0, "message": "OK", "data": {"person_id": "p1",
            "person_name": null, "face_ids": null, "group_ids": ["g1"]}}"#;
        let info: Envelope<GetInfoData> = serde_json::from_str(body).unwrap();
        assert_eq!(info.data.person_name, "");
        assert_eq!(info.data.tag, "");
        assert!(info.data.face_ids.is_empty());
        assert_eq!(info.data.group_ids, ["g1"]);
        let body = r#"{"code": 0, "message": "OK", "data": null}"#;
        let set: Envelope<SetInfoData> = serde_json::from_str(body).unwrap();
        assert_eq!(set.data, SetInfoData::default());
        let body = r#"{"code": 0, "message": "OK"}"#;
        let set: Envelope<DelPersonData> = serde_json::from_str(body).unwrap();
        assert_eq!(set.data, DelPersonData::default());
    }

    #[test]
    fn a_field_of_the_wrong_kind_is_still_refused() {
        let body = r#"{"code": 0, "data": {"ret_codes": "0,0", "face_ids": []}}"#;
        assert!(serde_json::from_str::<Envelope<AddFaceData>>(body).is_err());
        let body = r#"{"code": "OK", "data": {}}"#;
        assert!(serde_json::from_str::<Envelope<AddFaceData>>(body).is_err());
        let body = r#"{"code": 0, "data": {"face_ids": [{"id": 1}]}}"#;
        assert!(serde_json::from_str::<Envelope<FaceIdsData>>(body).is_err());
    }
}
