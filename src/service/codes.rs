//! The service's answer codes: what each means and what the caller does about it.
//!
//! This is the only place in the program that knows code numbers. The engine asks
//! [`Class`] of a code and acts on the class; it never matches on a number.
//!
//! # Why each code is in its class
//!
//! - **Transient** codes describe the service's own trouble (its authentication
//!   backend 107/108, an internal error 213, feature storage -1200) or a download the
//!   service made on our behalf (-1308/-1403). Nothing about the request is wrong, so
//!   the same request is sent again later, after a backoff.
//! - **RateLimited** (15) is transient too, but it is the service telling the caller
//!   to slow down, so the shared pacer lowers the rate before the retry.
//! - **Fatal** codes describe the account, the credentials or the signature. Every
//!   later call would be refused in the same way, so the whole job stops and asks the
//!   operator to fix the configuration. 9 (expired) and 13 (replay) are fatal only
//!   after the client has re-signed once; the client handles that step.
//!   The client gives this class to transport failures too when they mean the
//!   service cannot be reached as configured (an untrusted certificate, a refused
//!   connection or tunnel, a name that does not resolve):
//!   [`Unreachable`](crate::service::client::Unreachable).
//! - **Permanent** codes describe one photo that the service will never accept as it
//!   is (no face, undecodable, empty, not an image). The photo is failed with its
//!   reason and is sent again only when the operator asks. -1310/-1311 (a group
//!   holds 20 000 persons, the AppID 5 000 groups) are permanent for the person that
//!   would pass them: persons of other groups can still be enrolled, so the job goes on.
//! - **Outcome** codes are answers with a meaning of their own that the engine
//!   handles step by step (person exists, person missing, person full, duplicate,
//!   request body too large). 23 is an outcome, not a refusal of the photos: the
//!   limit is not known for sure (see `limits::MAX_REQUEST_BYTES`), so the engine
//!   splits the chunk and learns the limit from it.
//! - **Request** codes (21, -1301, -1304, -1305, -1306, -1307, -1313) say the request
//!   itself was wrong for the item it names. The planner validates ids so they should
//!   not occur; when they do, the item is failed with the code, like a permanent one,
//!   but the message says the request was refused rather than the photo.
//! - Unknown codes are classed **Unknown**: the item is failed (not retried forever)
//!   and reported with its number, so an operator sees it and a re-run can retry it.

use std::fmt;

/// What the caller should do about an answer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Code 0.
    Ok,
    /// Retry the same request later, with backoff.
    Transient,
    /// The service asks to slow down: lower the shared rate, then retry.
    RateLimited,
    /// Every later call would fail the same way: stop the job.
    Fatal,
    /// This photo will never be accepted as it is.
    Permanent,
    /// The request was refused for the item it names (bad parameter).
    Request,
    /// An answer with its own meaning, handled by the engine.
    Outcome(Outcome),
    /// A code the contract does not list.
    Unknown,
}

impl Class {
    /// The class as one lower-case word, the label metrics and reports use.
    pub fn label(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Transient => "transient",
            Class::RateLimited => "rate_limited",
            Class::Fatal => "fatal",
            Class::Permanent => "permanent",
            Class::Request => "request",
            Class::Outcome(_) => "outcome",
            Class::Unknown => "unknown",
        }
    }
}

/// Answers that are not errors of the request but facts about the service's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// -1302: the person already exists.
    PersonExists,
    /// -1303: the person does not exist.
    PersonMissing,
    /// -1309: the person already holds the maximum number of faces.
    PersonFull,
    /// -1312: the person already has this face.
    DuplicateFace,
    /// 23 (or HTTP 413): the request body is over the service's limit.
    TooLarge,
    /// No code: a local photo of the request could not be read when the request was
    /// built or streamed (deleted, its permission taken away, an I/O error since it
    /// was planned). Nothing reached the service; that photo alone cannot be sent.
    Unreadable,
}

/// Whether `code` refuses one image for what it is or where it is (no face,
/// undecodable, empty, not an image, a download that failed), rather than the call,
/// the person or the account: another photo of the same person may still go.
pub fn about_the_image(code: i64) -> bool {
    matches!(code, -1109..=-1101 | -1200 | -1300 | -1308 | -1400 | -1403)
}

/// One row of the code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub code: i64,
    pub meaning: &'static str,
    pub class: Class,
}

/// Every code of the contract, its meaning in English and its class.
pub const TABLE: &[CodeInfo] = &[
    row(0, "success", Class::Ok),
    row(
        3,
        "bad request (account abnormal, e.g. suspended for arrears)",
        Class::Fatal,
    ),
    row(4, "signature empty", Class::Fatal),
    row(5, "signature malformed", Class::Fatal),
    row(
        6,
        "AppID or bucket in the signature do not match the request",
        Class::Fatal,
    ),
    row(9, "signature expired", Class::Fatal),
    row(10, "AppID does not exist", Class::Fatal),
    row(11, "SecretId does not exist", Class::Fatal),
    row(12, "AppID and SecretId do not match", Class::Fatal),
    row(13, "replay attack (signature reused)", Class::Fatal),
    row(14, "signature check failed", Class::Fatal),
    row(15, "too frequent: rate limited", Class::RateLimited),
    row(16, "bucket does not exist", Class::Fatal),
    row(21, "invalid parameter", Class::Request),
    row(
        23,
        "request body too large",
        Class::Outcome(Outcome::TooLarge),
    ),
    row(24, "this API is being retired", Class::Fatal),
    row(107, "authentication service unavailable", Class::Transient),
    row(108, "authentication service unavailable", Class::Transient),
    row(213, "internal error of the service", Class::Transient),
    row(
        -1101,
        "face detection failed: no face found",
        Class::Permanent,
    ),
    row(-1102, "image decode failed", Class::Permanent),
    row(-1103, "feature processing failed", Class::Permanent),
    row(
        -1104,
        "extracting the face contour failed",
        Class::Permanent,
    ),
    row(-1105, "extracting gender failed", Class::Permanent),
    row(-1106, "extracting expression failed", Class::Permanent),
    row(-1107, "extracting age failed", Class::Permanent),
    row(-1108, "extracting pose failed", Class::Permanent),
    row(-1109, "extracting glasses failed", Class::Permanent),
    row(-1200, "feature storage error", Class::Transient),
    row(-1300, "image empty", Class::Permanent),
    row(-1301, "parameter empty", Class::Request),
    row(
        -1302,
        "person already exists",
        Class::Outcome(Outcome::PersonExists),
    ),
    row(
        -1303,
        "person does not exist",
        Class::Outcome(Outcome::PersonMissing),
    ),
    row(-1304, "parameter too long", Class::Request),
    row(-1305, "face does not exist", Class::Request),
    row(-1306, "group does not exist", Class::Request),
    row(-1307, "group list does not exist", Class::Request),
    row(
        -1308,
        "downloading the image from the url failed",
        Class::Transient,
    ),
    row(
        -1309,
        "too many faces: the person is full",
        Class::Outcome(Outcome::PersonFull),
    ),
    row(-1310, "too many persons in the group", Class::Permanent),
    row(-1311, "too many groups in the AppID", Class::Permanent),
    row(
        -1312,
        "a face with 99% or more similarity is already in the person",
        Class::Outcome(Outcome::DuplicateFace),
    ),
    row(
        -1313,
        "illegal parameter (space, slash, tab or newline)",
        Class::Request,
    ),
    row(-1400, "illegal image format", Class::Permanent),
    row(-1403, "image download failed", Class::Transient),
];

const fn row(code: i64, meaning: &'static str, class: Class) -> CodeInfo {
    CodeInfo {
        code,
        meaning,
        class,
    }
}

/// Named codes, for the places (the emulator, the engine's tests) that produce them.
pub mod code {
    pub const OK: i64 = 0;
    pub const SIGNATURE_EMPTY: i64 = 4;
    pub const SIGNATURE_MALFORMED: i64 = 5;
    pub const APPID_MISMATCH: i64 = 6;
    pub const SIGNATURE_EXPIRED: i64 = 9;
    pub const SECRET_ID_UNKNOWN: i64 = 11;
    pub const REPLAY: i64 = 13;
    pub const SIGNATURE_WRONG: i64 = 14;
    pub const RATE_LIMITED: i64 = 15;
    pub const INVALID_PARAMETER: i64 = 21;
    pub const BODY_TOO_LARGE: i64 = 23;
    pub const INTERNAL_ERROR: i64 = 213;
    pub const NO_FACE: i64 = -1101;
    pub const DECODE_FAILED: i64 = -1102;
    pub const FEATURE_STORAGE: i64 = -1200;
    pub const IMAGE_EMPTY: i64 = -1300;
    pub const PARAMETER_EMPTY: i64 = -1301;
    pub const PERSON_EXISTS: i64 = -1302;
    pub const PERSON_MISSING: i64 = -1303;
    pub const PARAMETER_TOO_LONG: i64 = -1304;
    pub const FACE_MISSING: i64 = -1305;
    pub const GROUP_MISSING: i64 = -1306;
    pub const GROUP_LIST_MISSING: i64 = -1307;
    pub const URL_DOWNLOAD_FAILED: i64 = -1308;
    pub const PERSON_FULL: i64 = -1309;
    pub const TOO_MANY_PERSONS: i64 = -1310;
    pub const TOO_MANY_GROUPS: i64 = -1311;
    pub const DUPLICATE_FACE: i64 = -1312;
    pub const ILLEGAL_PARAMETER: i64 = -1313;
    pub const ILLEGAL_IMAGE: i64 = -1400;
}

/// The row of a code, if the contract lists it.
pub fn lookup(code: i64) -> Option<&'static CodeInfo> {
    TABLE.iter().find(|row| row.code == code)
}

/// The class of a code; codes the contract does not list are [`Class::Unknown`].
pub fn class(code: i64) -> Class {
    lookup(code).map_or(Class::Unknown, |row| row.class)
}

/// The meaning of a code in English, or a phrase naming it as unknown.
pub fn meaning(code: i64) -> &'static str {
    lookup(code).map_or("code not listed in the service contract", |row| row.meaning)
}

/// A code with its meaning, for messages: `-1101 (face detection failed: ...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Described(pub i64);

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, meaning(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_appears_once() {
        let mut codes: Vec<i64> = TABLE.iter().map(|r| r.code).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len(), "a code is listed twice");
    }

    #[test]
    fn classes_follow_the_retry_policy() {
        for c in [107, 108, 213, -1200, -1308, -1403] {
            assert_eq!(class(c), Class::Transient, "{c}");
        }
        assert_eq!(class(15), Class::RateLimited);
        for c in [3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 16, 24] {
            assert_eq!(class(c), Class::Fatal, "{c}");
        }
        for c in [
            -1101, -1102, -1103, -1104, -1105, -1106, -1107, -1108, -1109, -1300, -1400, -1310,
            -1311,
        ] {
            assert_eq!(class(c), Class::Permanent, "{c}");
        }
        assert_eq!(class(-1302), Class::Outcome(Outcome::PersonExists));
        assert_eq!(class(-1303), Class::Outcome(Outcome::PersonMissing));
        assert_eq!(class(-1309), Class::Outcome(Outcome::PersonFull));
        assert_eq!(class(-1312), Class::Outcome(Outcome::DuplicateFace));
        assert_eq!(class(23), Class::Outcome(Outcome::TooLarge));
        for c in [-1101, -1109, -1200, -1300, -1308, -1400, -1403] {
            assert!(about_the_image(c), "{c}");
        }
        for c in [213, 15, -1302, -1309, -1310, -1311, -1313, 23] {
            assert!(!about_the_image(c), "{c}");
        }
        assert_eq!(class(0), Class::Ok);
    }

    #[test]
    fn unknown_codes_are_reported_with_their_number() {
        assert_eq!(class(-4242), Class::Unknown);
        assert_eq!(
            Described(-4242).to_string(),
            "-4242 (code not listed in the service contract)"
        );
        assert_eq!(
            Described(-1101).to_string(),
            "-1101 (face detection failed: no face found)"
        );
    }
}
