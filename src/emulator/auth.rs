//! The signature check the emulator applies to every call.
//!
//! In order, the first that applies answers the call:
//!
//! | condition | code |
//! | --- | --- |
//! | no `Authorization` header, or an empty one | 4 |
//! | not base64, too short, not UTF-8, a field missing or not a number | 5 |
//! | `e` not later than `t`, or `e - t` over three months ([`MAX_SIGNATURE_VALIDITY_SECS`]) | 5 |
//! | appid in the signature differs from the served appid or the body's `appid` | 6 |
//! | `e` not later than now (expired) | 9 |
//! | SecretId not among the accepted credentials | 11 |
//! | HMAC does not verify with that SecretId's key | 14 |
//!
//! A validity over three months is refused as malformed (5) rather than expired
//! (9): the signature could never have been valid, so re-signing the same way
//! would not help, and 9 is the code a client answers by re-signing.

use crate::limits::MAX_SIGNATURE_VALIDITY_SECS;
use crate::service::codes::code;
use crate::service::sign::{parse, Credentials};

/// Checks an `Authorization` value for a call whose body names `body_appid`.
pub fn check(
    authorization: Option<&str>,
    served_appid: &str,
    body_appid: Option<&str>,
    credentials: &[Credentials],
    now: u64,
) -> Result<(), i64> {
    let authorization = authorization.unwrap_or("").trim();
    if authorization.is_empty() {
        return Err(code::SIGNATURE_EMPTY);
    }
    let signature = parse(authorization).map_err(|_| code::SIGNATURE_MALFORMED)?;
    let f = &signature.fields;
    if f.expires <= f.now || f.expires - f.now > MAX_SIGNATURE_VALIDITY_SECS {
        return Err(code::SIGNATURE_MALFORMED);
    }
    if f.appid != served_appid || body_appid.is_some_and(|a| a != f.appid) {
        return Err(code::APPID_MISMATCH);
    }
    if f.expires <= now {
        return Err(code::SIGNATURE_EXPIRED);
    }
    let credential = credentials
        .iter()
        .find(|c| c.secret_id() == f.secret_id)
        .ok_or(code::SECRET_ID_UNKNOWN)?;
    if !signature.verify(credential.secret_key()) {
        return Err(code::SIGNATURE_WRONG);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sign::{sign, SignatureFields};

    const NOW: u64 = 1_800_000_000;

    fn fields(appid: &str, secret_id: &str, now: u64, expires: u64) -> SignatureFields {
        SignatureFields {
            appid: appid.into(),
            bucket: String::new(),
            secret_id: secret_id.into(),
            expires,
            now,
            rand: 42,
            fileid: String::new(),
        }
    }

    fn creds() -> Vec<Credentials> {
        vec![
            Credentials::new("AKIDone", "key-one"),
            Credentials::new("AKIDtwo", "key-two"),
        ]
    }

    fn check_with(sig: &str, body_appid: Option<&str>) -> Result<(), i64> {
        check(Some(sig), "1250000000", body_appid, &creds(), NOW)
    }

    #[test]
    fn a_good_signature_passes_with_any_accepted_credential() {
        for (id, key) in [("AKIDone", "key-one"), ("AKIDtwo", "key-two")] {
            let sig = sign(&fields("1250000000", id, NOW, NOW + 60), key);
            assert_eq!(check_with(&sig, Some("1250000000")), Ok(()));
            assert_eq!(check_with(&sig, None), Ok(()));
        }
    }

    #[test]
    fn each_defect_has_its_code() {
        let good = |f: SignatureFields| sign(&f, "key-one");
        assert_eq!(check(None, "1250000000", None, &creds(), NOW), Err(4));
        assert_eq!(check_with("  ", None), Err(4));
        assert_eq!(check_with("!!notbase64!!", None), Err(5));
        assert_eq!(check_with("aGVsbG8=", None), Err(5));
        let backwards = good(fields("1250000000", "AKIDone", NOW, NOW - 1));
        assert_eq!(check_with(&backwards, None), Err(5));
        let too_long = good(fields(
            "1250000000",
            "AKIDone",
            NOW,
            NOW + MAX_SIGNATURE_VALIDITY_SECS + 1,
        ));
        assert_eq!(check_with(&too_long, None), Err(5));
        let three_months = good(fields(
            "1250000000",
            "AKIDone",
            NOW,
            NOW + MAX_SIGNATURE_VALIDITY_SECS,
        ));
        assert_eq!(check_with(&three_months, None), Ok(()));
        let other_app = good(fields("1250000001", "AKIDone", NOW, NOW + 60));
        assert_eq!(check_with(&other_app, None), Err(6));
        let ok = good(fields("1250000000", "AKIDone", NOW, NOW + 60));
        assert_eq!(check_with(&ok, Some("1250000001")), Err(6));
        let expired = good(fields("1250000000", "AKIDone", NOW - 120, NOW));
        assert_eq!(check_with(&expired, None), Err(9));
        let unknown = good(fields("1250000000", "AKIDthree", NOW, NOW + 60));
        assert_eq!(check_with(&unknown, None), Err(11));
        let wrong_key = sign(&fields("1250000000", "AKIDone", NOW, NOW + 60), "key-two");
        assert_eq!(check_with(&wrong_key, None), Err(14));
    }
}
