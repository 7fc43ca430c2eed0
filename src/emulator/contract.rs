//! The readings of the contract the emulator plays, where the contract is silent or
//! ambiguous (`shared/spec/API.md`, "Points the contract leaves open").
//!
//! The real service takes one reading of each point, and nobody here can ask it
//! which. A client must reach the same final state under every reading, so the
//! emulator can play each of them and the tests run the job under each:
//!
//! - **-1309 on `addface`** ([`FullReading`]): uncertain. The contract says a person
//!   holds at most 20 faces and that -1309 means "too many faces"; it does not say
//!   whether an `addface` that would pass 20 is refused whole or image by image.
//! - **The request body limit** ([`Contract::max_request_bytes`]): the service's
//!   overview says 1.5 MB, without saying whether MB is 10^6 or 2^20 bytes or
//!   whether the multipart envelope counts. The emulator counts the whole body
//!   (`Content-Length`), envelope included, against the limit it is given; the
//!   default is [`MAX_REQUEST_BYTES`]. Whether the refusal is code 23 in a 200
//!   answer or a bare HTTP 413 from a front proxy is uncertain too ([`TooLarge`]).
//! - **An `addface` that added nothing** ([`EmptyAnswer`]): uncertain whether the
//!   answer's code is 0 with every image's code in `ret_codes`, or the code of a
//!   refused image (with `ret_codes` still filled).
//! - **A duplicate sent to a full person** ([`DuplicateWhenFull`]): uncertain whether
//!   the service checks the duplicate (-1312) or the face limit (-1309) first for an
//!   image whose face the person already holds once it holds 20 faces.
//! - **How answers are spelled** ([`Spelling`]): the contract's table names every
//!   field of every answer; it does not say that a service writes each one, nor
//!   that numbers are JSON numbers. The sparse spelling leaves out what is empty and
//!   writes numbers as strings and face ids as numbers.
//! - **A person's last group** ([`LastGroup`]): uncertain whether `delgroupids` may
//!   take away every group a person is in, leaving it in no group, or is refused.
//!   When refused, the contract names no code: the emulator answers 21 (invalid
//!   parameter), its own choice, and removes nothing.
//! - **`delface` of a face already gone** ([`FaceGone`]): uncertain whether the
//!   answer is -1305 or code 0 with `deleted` 0.
//! - **How the rate is counted** ([`RateReading`]): the contract says 50 calls per
//!   second and code 15 past it, not whether the second is any window of one
//!   second (sliding) or a calendar second (fixed). Nor when a call "arrives": a
//!   threaded service stamps it when a thread reads it, a few milliseconds late and
//!   not the same few for every call ([`Contract::arrival_jitter_ms`]). See
//!   [`super::rate`].
//! - **Persons per group, groups per AppID**: documented (20 000 and 5 000); tests
//!   lower them to reach them.
//!
//! An account can also be prepared with persons and faces, as another tool or the
//! application would have left it ([`Prepared`]): they are created by plain
//! `newperson`/`addface` calls through [`super::rules::apply`] before the emulator
//! serves, never by the job.

use crate::limits::{MAX_GROUPS_PER_APPID, MAX_PERSONS_PER_GROUP, MAX_REQUEST_BYTES};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How an `addface` that would pass the per-person face limit is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullReading {
    /// Image by image: `code` 0, `ret_codes[i]` -1309 for the images past the limit.
    #[default]
    PerImage,
    /// The whole call: when the person's faces plus the images sent would pass the
    /// limit, the answer's `code` is -1309 and nothing is added.
    WholeCall,
}

impl FromStr for FullReading {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-image" => Ok(FullReading::PerImage),
            "whole-call" => Ok(FullReading::WholeCall),
            other => Err(format!("{other:?} is not per-image or whole-call")),
        }
    }
}

/// How a request body over the limit is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TooLarge {
    /// HTTP 200 with `code` 23.
    #[default]
    Code23,
    /// HTTP 413 with no contract answer, as a proxy in front of the service would.
    Http413,
}

impl FromStr for TooLarge {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "code-23" | "23" => Ok(TooLarge::Code23),
            "http-413" | "413" => Ok(TooLarge::Http413),
            other => Err(format!("{other:?} is not code-23 or http-413")),
        }
    }
}

/// How an `addface` in which no image was added is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyAnswer {
    /// `code` 0; every image's code is in `ret_codes`.
    #[default]
    Ok,
    /// `code` is the first image's refusal code; `ret_codes` is still filled.
    FirstCode,
}

impl FromStr for EmptyAnswer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(EmptyAnswer::Ok),
            "first-code" => Ok(EmptyAnswer::FirstCode),
            other => Err(format!("{other:?} is not ok or first-code")),
        }
    }
}

/// The three readings as their flags spell them (`per-image`, `code-23`, `ok`), for
/// what the emulator prints: never the Rust names (`PerImage`, `Code23`).
impl std::fmt::Display for FullReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FullReading::PerImage => "per-image",
            FullReading::WholeCall => "whole-call",
        })
    }
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TooLarge::Code23 => "code-23",
            TooLarge::Http413 => "http-413",
        })
    }
}

impl std::fmt::Display for EmptyAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EmptyAnswer::Ok => "ok",
            EmptyAnswer::FirstCode => "first-code",
        })
    }
}

/// How an `addface` image is answered when its face is already the person's and
/// the person already holds the limit of faces: both refusals apply, and the
/// contract does not say which is checked first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicateWhenFull {
    /// -1312: the duplicate check comes first.
    #[default]
    Duplicate,
    /// -1309: the face limit is checked first, so the answer does not tell that the
    /// person already holds the face.
    Full,
}

impl FromStr for DuplicateWhenFull {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "duplicate" | "-1312" => Ok(DuplicateWhenFull::Duplicate),
            "full" | "-1309" => Ok(DuplicateWhenFull::Full),
            other => Err(format!("{other:?} is not duplicate or full")),
        }
    }
}

/// How the emulator writes its answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spelling {
    /// Every field the contract's table names, with its type.
    #[default]
    Full,
    /// As a service may write them: `code` and counts as strings, face ids as
    /// numbers, `message` "OK" and `session_id` left out, empty strings and lists
    /// written `null`, and no `data` in an answer refusing the call.
    Sparse,
}

impl FromStr for Spelling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Spelling::Full),
            "sparse" => Ok(Spelling::Sparse),
            other => Err(format!("{other:?} is not full or sparse")),
        }
    }
}

impl Spelling {
    /// An answer as the contract spells it (`body`), spelled this way.
    pub fn spell(self, body: String) -> String {
        match self {
            Spelling::Full => body,
            Spelling::Sparse => match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(mut answer) => {
                    sparse(&mut answer);
                    answer.to_string()
                }
                Err(_) => body,
            },
        }
    }
}

/// Rewrites a contract answer in the sparse spelling, in place.
fn sparse(answer: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(top) = answer else { return };
    let refused = top
        .get("code")
        .and_then(Value::as_i64)
        .is_some_and(|c| c != 0);
    if let Some(code) = top.get_mut("code") {
        *code = Value::String(code.to_string());
    }
    if top.get("message").and_then(Value::as_str) == Some("OK") {
        top.remove("message");
    }
    let empty = top
        .get("data")
        .and_then(Value::as_object)
        .is_some_and(|d| d.is_empty());
    if refused && empty {
        top.remove("data");
    }
    let Some(Value::Object(data)) = top.get_mut("data") else {
        return;
    };
    data.remove("session_id");
    for (name, value) in data.iter_mut() {
        let face_id = |id: &Value| match id.as_str().map(str::parse::<u64>) {
            Some(Ok(n)) => Value::from(n),
            _ => id.clone(),
        };
        *value = match &*value {
            Value::String(s) if s.is_empty() => Value::Null,
            Value::Array(a) if a.is_empty() => Value::Null,
            Value::Number(n) => Value::String(n.to_string()),
            Value::String(_) if name == "face_id" => face_id(value),
            Value::Array(items) if name == "face_ids" => items.iter().map(face_id).collect(),
            Value::Array(items) if name == "ret_codes" => {
                items.iter().map(|c| Value::String(c.to_string())).collect()
            }
            other => other.clone(),
        };
    }
}

/// How a `delgroupids` that would leave the person in no group is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LastGroup {
    /// Done: the person is left in no group.
    #[default]
    Allowed,
    /// Refused with [`LAST_GROUP_REFUSED`], nothing removed.
    Refused,
}

/// The code the emulator refuses a person's last group with, under
/// [`LastGroup::Refused`]: the contract names none, so this is the emulator's
/// choice (21, invalid parameter), one a client cannot tell from other refusals.
pub const LAST_GROUP_REFUSED: i64 = crate::service::codes::code::INVALID_PARAMETER;

impl FromStr for LastGroup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allowed" | "allow" => Ok(LastGroup::Allowed),
            "refused" | "refuse" => Ok(LastGroup::Refused),
            other => Err(format!("{other:?} is not allowed or refused")),
        }
    }
}

/// How a `delface` none of whose faces the person holds is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaceGone {
    /// -1305 (face does not exist).
    #[default]
    FaceMissing,
    /// Code 0 with `deleted` 0.
    DeletedZero,
}

impl FromStr for FaceGone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "face-missing" | "-1305" => Ok(FaceGone::FaceMissing),
            "deleted-zero" | "0" => Ok(FaceGone::DeletedZero),
            other => Err(format!("{other:?} is not face-missing or deleted-zero")),
        }
    }
}

/// A person the account holds before the emulator serves: `faces` distinct faces
/// (generated pictures, none equal to a photo of a job), in `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepared {
    pub person: String,
    pub group: String,
    pub faces: usize,
}

impl FromStr for Prepared {
    type Err = String;
    /// `PERSON:GROUP:FACES`, e.g. `pre:staff:18`.
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [person, group, faces] = parts[..] else {
            return Err(format!("{s:?} is not PERSON:GROUP:FACES"));
        };
        let faces = faces
            .parse()
            .map_err(|_| format!("{faces:?} in {s:?} is not a face count"))?;
        Ok(Prepared {
            person: person.to_owned(),
            group: group.to_owned(),
            faces,
        })
    }
}

/// How the service counts its calls per second (the window behind code 15).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateReading {
    /// At most `qps` calls whose arrivals fall in any one-second window.
    #[default]
    Sliding,
    /// At most `qps` calls in each calendar second.
    Fixed,
}

impl FromStr for RateReading {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sliding" => Ok(RateReading::Sliding),
            "fixed" => Ok(RateReading::Fixed),
            other => Err(format!("{other:?} is not sliding or fixed")),
        }
    }
}

/// The largest arrival jitter the emulator plays, in milliseconds.
pub const MAX_ARRIVAL_JITTER_MS: u64 = 100;

/// The readings and limits the emulator plays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub full: FullReading,
    /// Request bodies over this many bytes (the whole body) are refused.
    pub max_request_bytes: u64,
    pub too_large: TooLarge,
    pub empty_answer: EmptyAnswer,
    /// A duplicate sent to a full person: -1312 or -1309.
    #[serde(default)]
    pub duplicate_when_full: DuplicateWhenFull,
    /// How answers are written.
    #[serde(default)]
    pub spelling: Spelling,
    /// A `delgroupids` that would leave the person in no group: done or refused.
    #[serde(default)]
    pub last_group: LastGroup,
    /// A `delface` of faces the person no longer holds: -1305 or `deleted` 0.
    #[serde(default)]
    pub face_gone: FaceGone,
    /// A group holds at most this many persons (-1310 past it).
    pub max_persons_per_group: usize,
    /// The account holds at most this many groups (-1311 past it).
    pub max_groups: usize,
    /// Persons created before serving, by plain calls.
    pub prepared: Vec<Prepared>,
    /// How calls are counted against the rate: any window of a second, or
    /// calendar seconds.
    #[serde(default)]
    pub rate_window: RateReading,
    /// Each call is stamped for the rate this many milliseconds after it arrived at
    /// most (a random shift per call, from the emulator's seeded RNG; at most
    /// [`MAX_ARRIVAL_JITTER_MS`]); 0 stamps it when it is read.
    #[serde(default)]
    pub arrival_jitter_ms: u64,
}

impl Default for Contract {
    fn default() -> Self {
        Contract {
            full: FullReading::default(),
            max_request_bytes: MAX_REQUEST_BYTES,
            too_large: TooLarge::default(),
            empty_answer: EmptyAnswer::default(),
            duplicate_when_full: DuplicateWhenFull::default(),
            spelling: Spelling::default(),
            last_group: LastGroup::default(),
            face_gone: FaceGone::default(),
            max_persons_per_group: MAX_PERSONS_PER_GROUP,
            max_groups: MAX_GROUPS_PER_APPID,
            prepared: Vec::new(),
            rate_window: RateReading::default(),
            arrival_jitter_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_parse_from_their_flag_values() {
        assert_eq!("whole-call".parse(), Ok(FullReading::WholeCall));
        assert_eq!("per-image".parse(), Ok(FullReading::PerImage));
        for reading in [FullReading::PerImage, FullReading::WholeCall] {
            assert_eq!(reading.to_string().parse(), Ok(reading));
        }
        for how in [TooLarge::Code23, TooLarge::Http413] {
            assert_eq!(how.to_string().parse(), Ok(how));
        }
        for how in [EmptyAnswer::Ok, EmptyAnswer::FirstCode] {
            assert_eq!(how.to_string().parse(), Ok(how));
        }
        assert!("both".parse::<FullReading>().is_err());
        assert_eq!("413".parse(), Ok(TooLarge::Http413));
        assert_eq!("first-code".parse(), Ok(EmptyAnswer::FirstCode));
        assert_eq!("full".parse(), Ok(DuplicateWhenFull::Full));
        assert_eq!("sparse".parse(), Ok(Spelling::Sparse));
        assert_eq!("duplicate".parse(), Ok(DuplicateWhenFull::Duplicate));
        assert!("either".parse::<DuplicateWhenFull>().is_err());
        assert_eq!("refused".parse(), Ok(LastGroup::Refused));
        assert_eq!("allowed".parse(), Ok(LastGroup::Allowed));
        assert!("maybe".parse::<LastGroup>().is_err());
        assert_eq!("deleted-zero".parse(), Ok(FaceGone::DeletedZero));
        assert_eq!("-1305".parse(), Ok(FaceGone::FaceMissing));
        assert!("gone".parse::<FaceGone>().is_err());
        assert_eq!(
            "pre:staff:18".parse(),
            Ok(Prepared {
                person: "pre".into(),
                group: "staff".into(),
                faces: 18
            })
        );
        assert!("pre:18".parse::<Prepared>().is_err());
        assert!("pre:g:x".parse::<Prepared>().is_err());
    }

    #[test]
    fn the_sparse_spelling_leaves_out_the_empty_and_writes_numbers_otherwise() {
        let addface = r#"{"code":0,"message":"OK","data":{"added":1,"face_ids":["1840000000000000001"],"ret_codes":[0,-1312],"session_id":""}}"#;
        let spelled: serde_json::Value =
            serde_json::from_str(&Spelling::Sparse.spell(addface.to_owned())).unwrap();
        assert_eq!(
            spelled,
            serde_json::json!({"code": "0", "data": {"added": "1",
                "face_ids": [1840000000000000001u64], "ret_codes": ["0", "-1312"]}})
        );
        let getinfo = r#"{"code":0,"message":"OK","data":{"person_id":"p1","person_name":"","face_ids":[],"group_ids":["g"],"tag":"","session_id":""}}"#;
        let spelled: serde_json::Value =
            serde_json::from_str(&Spelling::Sparse.spell(getinfo.to_owned())).unwrap();
        assert_eq!(
            spelled,
            serde_json::json!({"code": "0", "data": {"person_id": "p1", "person_name": null,
                "face_ids": null, "group_ids": ["g"], "tag": null}})
        );
        let refused = r#"{"code":-1303,"message":"person does not exist","data":{}}"#;
        assert_eq!(
            Spelling::Sparse.spell(refused.to_owned()),
            r#"{"code":"-1303","message":"person does not exist"}"#
        );
        assert_eq!(Spelling::Full.spell(refused.to_owned()), refused);
    }
}
