//! The service's multi-use signature (the `Authorization` header).
//!
//! ```text
//! original = "a=" appid "&b=" bucket "&k=" secret_id "&e=" expire "&t=" now "&r=" rand "&f="
//! sign     = base64( hmac_sha1(secret_key, original) ++ original )
//! ```
//!
//! Building and parsing are pure functions so that the client (which signs), the
//! emulator (which verifies) and the `sign` command share one implementation, and the
//! contract's test vector is checked byte for byte below.
//!
//! The secret key lives only inside [`Credentials`], whose `Debug` output hides it,
//! so a credential cannot leak into a log line or an error message by accident.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;

type HmacSha1 = Hmac<Sha1>;

/// A SecretId and SecretKey pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secret_id: String,
    secret_key: String,
}

impl Credentials {
    pub fn new(secret_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
        }
    }

    /// The SecretId. It is an identifier rather than a secret, but the program still
    /// keeps it out of logs and reports.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The SecretKey, for signing and verifying only.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// The fields a signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFields {
    pub appid: String,
    pub bucket: String,
    pub secret_id: String,
    /// Unix time at which the signature stops being valid.
    pub expires: u64,
    /// Unix time at which it was made.
    pub now: u64,
    /// A random unsigned integer of at most 10 digits.
    pub rand: u64,
    /// The file id: empty for the person API.
    pub fileid: String,
}

impl SignatureFields {
    /// The `original` string of the contract.
    pub fn original(&self) -> String {
        format!(
            "a={}&b={}&k={}&e={}&t={}&r={}&f={}",
            self.appid, self.bucket, self.secret_id, self.expires, self.now, self.rand, self.fileid
        )
    }
}

/// Builds the `Authorization` value for `fields`, signed with `secret_key`.
pub fn sign(fields: &SignatureFields, secret_key: &str) -> String {
    let original = fields.original();
    let mut out = hmac_sha1(secret_key, original.as_bytes()).to_vec();
    out.extend_from_slice(original.as_bytes());
    BASE64.encode(out)
}

fn hmac_sha1(key: &str, message: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Why an `Authorization` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("signature is empty")]
    Empty,
    #[error("signature is not valid base64")]
    NotBase64,
    #[error("signature is too short to hold an HMAC")]
    TooShort,
    #[error("signature's original string is not UTF-8")]
    NotUtf8,
    #[error("signature's original string lacks field `{0}`")]
    MissingField(&'static str),
    #[error("signature's field `{0}` is not a number")]
    BadNumber(&'static str),
}

/// A signature taken apart: the HMAC it carries and the fields it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub mac: [u8; 20],
    pub fields: SignatureFields,
    original: String,
}

impl ParsedSignature {
    /// Whether the carried HMAC is the HMAC of the original string under `secret_key`.
    pub fn verify(&self, secret_key: &str) -> bool {
        let mut mac =
            HmacSha1::new_from_slice(secret_key.as_bytes()).expect("HMAC accepts any key length");
        mac.update(self.original.as_bytes());
        mac.verify_slice(&self.mac).is_ok()
    }
}

/// Takes an `Authorization` value apart without checking it.
pub fn parse(authorization: &str) -> Result<ParsedSignature, ParseError> {
    let authorization = authorization.trim();
    if authorization.is_empty() {
        return Err(ParseError::Empty);
    }
    let raw = BASE64
        .decode(authorization)
        .map_err(|_| ParseError::NotBase64)?;
    if raw.len() <= 20 {
        return Err(ParseError::TooShort);
    }
    let (mac, original) = raw.split_at(20);
    let original = String::from_utf8(original.to_vec()).map_err(|_| ParseError::NotUtf8)?;
    let field = |name: &'static str| -> Result<String, ParseError> {
        original
            .split('&')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .map(str::to_owned)
            .ok_or(ParseError::MissingField(name))
    };
    let number = |name: &'static str| -> Result<u64, ParseError> {
        field(name)?
            .parse()
            .map_err(|_| ParseError::BadNumber(name))
    };
    let fields = SignatureFields {
        appid: field("a")?,
        bucket: field("b")?,
        secret_id: field("k")?,
        expires: number("e")?,
        now: number("t")?,
        rand: number("r")?,
        fileid: field("f").unwrap_or_default(),
    };
    Ok(ParsedSignature {
        mac: mac.try_into().expect("split at 20"),
        fields,
        original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_fields() -> SignatureFields {
        SignatureFields {
            appid: "1250000000".into(),
            bucket: String::new(),
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3gnPhESA".into(),
            expires: 1_700_003_600,
            now: 1_700_000_000,
            rand: 123_456_789,
            fileid: String::new(),
        }
    }

    const VECTOR: &str = "mvXo+YwKuuQsfjF1aeApEykoaUdhPTEyNTAwMDAwMDAmYj0maz1BS0lEejhrcmJzSjV5S0JaUXBuNzRXRmttTFB4M2duUGhFU0EmZT0xNzAwMDAzNjAwJnQ9MTcwMDAwMDAwMCZyPTEyMzQ1Njc4OSZmPQ==";

    #[test]
    fn reproduces_the_contract_test_vector() {
        assert_eq!(
            sign(&vector_fields(), "Gu5t9xGARNpq86cd98joQYCN3Cozk1qA"),
            VECTOR
        );
    }

    #[test]
    fn parses_and_verifies_the_test_vector() {
        let parsed = parse(VECTOR).unwrap();
        assert_eq!(parsed.fields, vector_fields());
        assert!(parsed.verify("Gu5t9xGARNpq86cd98joQYCN3Cozk1qA"));
        assert!(!parsed.verify("another key"));
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(parse(""), Err(ParseError::Empty));
        assert_eq!(parse("%%%"), Err(ParseError::NotBase64));
        assert_eq!(parse(&BASE64.encode([0u8; 10])), Err(ParseError::TooShort));
        let no_fields = BASE64.encode([b'x'; 30]);
        assert_eq!(parse(&no_fields), Err(ParseError::MissingField("a")));
    }

    #[test]
    fn credentials_debug_hides_the_key() {
        let c = Credentials::new("AKIDexample", "topsecretkey");
        let shown = format!("{c:?}");
        assert!(!shown.contains("topsecretkey") && !shown.contains("AKIDexample"));
    }
}
