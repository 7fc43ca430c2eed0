//! The wire shapes of the contract: call names and the `data` of each answer.
//!
//! Both sides of the wire read these types: the client deserializes answers into
//! them and the emulator serializes its answers from them, so a field name or type
//! is written once. Field names and types follow `shared/spec/API.md` exactly.

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
    pub code: i64,
    pub message: String,
    pub data: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPersonData {
    pub person_id: String,
    pub suc_group: i64,
    pub suc_face: i64,
    pub face_id: String,
    pub group_ids: Vec<String>,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelPersonData {
    pub person_id: String,
    pub deleted: i64,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddFaceData {
    pub added: i64,
    pub face_ids: Vec<String>,
    pub ret_codes: Vec<i64>,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelFaceData {
    pub deleted: i64,
    pub face_ids: Vec<String>,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetInfoData {
    pub person_id: String,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetInfoData {
    pub person_id: String,
    pub person_name: String,
    pub face_ids: Vec<String>,
    pub group_ids: Vec<String>,
    pub tag: String,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupIdsData {
    pub group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonIdsData {
    pub person_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceIdsData {
    pub face_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceInfoData {
    pub face_info: FaceInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaceInfo {
    pub face_id: String,
    pub x: i64,
    pub y: i64,
    pub width: f64,
    pub height: f64,
    pub gender: i64,
    pub age: i64,
    pub expression: i64,
    pub glass: bool,
    pub pitch: i64,
    pub yaw: i64,
    pub roll: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddGroupIdsData {
    pub person_id: String,
    pub added: i64,
    pub group_ids: Vec<String>,
    pub session_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelGroupIdsData {
    pub person_id: String,
    pub deleted: i64,
    pub group_ids: Vec<String>,
    pub session_id: String,
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
}
