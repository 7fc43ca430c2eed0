//! The one multi-use signature every call of a run carries, renewed before it expires.
//!
//! The service accepts a multi-use signature for as long as its expiry time allows
//! (at most three months, [`MAX_SIGNATURE_VALIDITY_SECS`]). Signing every request
//! anew, as the official SDKs do, costs an HMAC and a random number per call and
//! nothing else; sharing one signature costs nothing per call, so the client builds
//! one and shares it between all calls and threads.
//!
//! A [`Signer`] renews its signature when less than a quarter of its validity is left,
//! so a signature in flight is never close to its expiry even when the service's
//! clock runs a little ahead of ours. When the service still refuses a signature as
//! expired (9) or replayed (13), the client asks for a fresh one with
//! [`Signer::renew_after_refusal`]; many threads refused at once share one renewal.
//!
//! The signature is a secret: it is handed out as an [`Authorization`] whose `Debug`
//! hides the value, and it never appears in an error message or a log line.

use crate::limits::MAX_SIGNATURE_VALIDITY_SECS;
use crate::service::sign::{sign, Credentials, SignatureFields};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The source of the current unix time, injectable so tests can move time.
pub trait Clock: Send + Sync {
    /// Seconds since the unix epoch.
    fn now_unix(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// An `Authorization` header value. Its `Debug` does not show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization(Arc<str>);

impl Authorization {
    /// The header value, to be put on the wire and nowhere else.
    pub fn header_value(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorization(..)")
    }
}

/// Why a signature validity is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidityError {
    #[error("signature validity must be at least one second")]
    TooShort,
    #[error(
        "signature validity of {secs} s is over the service's maximum of {max} s (three months)"
    )]
    TooLong { secs: u64, max: u64 },
}

/// Checks a signature validity against the contract and returns it in whole seconds.
pub fn check_validity(validity: Duration) -> Result<u64, ValidityError> {
    let secs = validity.as_secs();
    if secs == 0 {
        return Err(ValidityError::TooShort);
    }
    if secs > MAX_SIGNATURE_VALIDITY_SECS {
        return Err(ValidityError::TooLong {
            secs,
            max: MAX_SIGNATURE_VALIDITY_SECS,
        });
    }
    Ok(secs)
}

struct Current {
    value: Authorization,
    made: u64,
    expires: u64,
}

/// Builds, shares and renews the signature of one AppID, bucket and credential pair.
pub struct Signer {
    appid: String,
    bucket: String,
    credentials: Credentials,
    validity_secs: u64,
    clock: Arc<dyn Clock>,
    current: Mutex<Option<Current>>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("appid", &self.appid)
            .field("bucket", &self.bucket)
            .field("validity_secs", &self.validity_secs)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer on the system clock.
    pub fn new(
        appid: &str,
        bucket: &str,
        credentials: Credentials,
        validity: Duration,
    ) -> Result<Signer, ValidityError> {
        Signer::with_clock(appid, bucket, credentials, validity, Arc::new(SystemClock))
    }

    /// A signer reading the time from `clock`.
    pub fn with_clock(
        appid: &str,
        bucket: &str,
        credentials: Credentials,
        validity: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Signer, ValidityError> {
        Ok(Signer {
            appid: appid.to_owned(),
            bucket: bucket.to_owned(),
            credentials,
            validity_secs: check_validity(validity)?,
            clock,
            current: Mutex::new(None),
        })
    }

    /// The signature to send now: the shared one, or a new one if it has less than a
    /// quarter of its validity left (or the clock went back before it was made).
    pub fn authorization(&self) -> Authorization {
        let now = self.clock.now_unix();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match &*current {
            Some(c) if !self.needs_renewal(c, now) => c.value.clone(),
            _ => self.renew(&mut current, now),
        }
    }

    /// A fresh signature after the service refused `refused` as expired or replayed.
    ///
    /// If another thread already replaced `refused`, its replacement is returned, so
    /// that a burst of refusals makes one new signature rather than one per thread.
    pub fn renew_after_refusal(&self, refused: &Authorization) -> Authorization {
        let now = self.clock.now_unix();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match &*current {
            Some(c) if c.value != *refused && !self.needs_renewal(c, now) => c.value.clone(),
            _ => self.renew(&mut current, now),
        }
    }

    /// The expiry time (unix seconds) of the shared signature, if one was made.
    pub fn expires(&self) -> Option<u64> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|c| c.expires)
    }

    fn needs_renewal(&self, c: &Current, now: u64) -> bool {
        // Renew once less than a quarter of the validity is left.
        let renew_at = c.made + self.validity_secs - self.validity_secs / 4;
        now >= renew_at || now < c.made
    }

    fn renew(&self, slot: &mut Option<Current>, now: u64) -> Authorization {
        let expires = now + self.validity_secs;
        let fields = SignatureFields {
            appid: self.appid.clone(),
            bucket: self.bucket.clone(),
            secret_id: self.credentials.secret_id().to_owned(),
            expires,
            now,
            rand: fastrand::u64(0..10_000_000_000),
            fileid: String::new(),
        };
        let value = Authorization(sign(&fields, self.credentials.secret_key()).into());
        tracing::debug!(expires, "made a new signature");
        *slot = Some(Current {
            value: value.clone(),
            made: now,
            expires,
        });
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::sign::parse;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct ManualClock(AtomicU64);

    impl Clock for ManualClock {
        fn now_unix(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn signer(validity_secs: u64) -> (Signer, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock(AtomicU64::new(1_700_000_000)));
        let signer = Signer::with_clock(
            "1250000000",
            "",
            Credentials::new("AKIDexample", "secretkey"),
            Duration::from_secs(validity_secs),
            clock.clone(),
        )
        .unwrap();
        (signer, clock)
    }

    #[test]
    fn signature_carries_the_validity_and_verifies() {
        let (signer, _) = signer(4 * 3600);
        let auth = signer.authorization();
        let parsed = parse(auth.header_value()).unwrap();
        assert_eq!(parsed.fields.appid, "1250000000");
        assert_eq!(parsed.fields.secret_id, "AKIDexample");
        assert_eq!(parsed.fields.now, 1_700_000_000);
        assert_eq!(parsed.fields.expires, 1_700_000_000 + 4 * 3600);
        assert!(parsed.fields.rand < 10_000_000_000);
        assert!(parsed.verify("secretkey"));
        assert_eq!(signer.expires(), Some(1_700_000_000 + 4 * 3600));
    }

    #[test]
    fn one_signature_is_shared_until_a_quarter_of_its_validity_is_left() {
        let (signer, clock) = signer(4000);
        let first = signer.authorization();
        // 2999 s later 1001 s of 4000 are left: more than a quarter, still shared.
        clock.0.store(1_700_000_000 + 2999, Ordering::SeqCst);
        assert_eq!(signer.authorization(), first);
        // At 3000 s, exactly a quarter is left: renewed.
        clock.0.store(1_700_000_000 + 3000, Ordering::SeqCst);
        let second = signer.authorization();
        assert_ne!(second, first);
        let parsed = parse(second.header_value()).unwrap();
        assert_eq!(parsed.fields.now, 1_700_003_000);
        assert_eq!(parsed.fields.expires, 1_700_007_000);
        // And the new one is shared in turn.
        clock.0.store(1_700_000_000 + 3001, Ordering::SeqCst);
        assert_eq!(signer.authorization(), second);
    }

    #[test]
    fn a_clock_that_goes_back_gets_a_new_signature() {
        let (signer, clock) = signer(4000);
        let first = signer.authorization();
        clock.0.store(1_700_000_000 - 10, Ordering::SeqCst);
        let second = signer.authorization();
        assert_ne!(second, first);
        assert_eq!(
            parse(second.header_value()).unwrap().fields.now,
            1_699_999_990
        );
    }

    #[test]
    fn a_refusal_renews_once_for_all_threads() {
        let (signer, _) = signer(4000);
        let refused = signer.authorization();
        let fresh = signer.renew_after_refusal(&refused);
        assert_ne!(fresh, refused, "a refused signature is replaced");
        // A second thread refused with the same old signature gets the same new one.
        assert_eq!(signer.renew_after_refusal(&refused), fresh);
        assert_eq!(signer.authorization(), fresh);
        // The new one refused in turn is replaced again.
        assert_ne!(signer.renew_after_refusal(&fresh), fresh);
    }

    #[test]
    fn validity_is_bounded_by_the_contract() {
        assert_eq!(check_validity(Duration::from_secs(3600)), Ok(3600));
        assert_eq!(
            check_validity(Duration::from_millis(500)),
            Err(ValidityError::TooShort)
        );
        assert_eq!(
            check_validity(Duration::from_secs(MAX_SIGNATURE_VALIDITY_SECS)),
            Ok(MAX_SIGNATURE_VALIDITY_SECS)
        );
        assert!(matches!(
            check_validity(Duration::from_secs(MAX_SIGNATURE_VALIDITY_SECS + 1)),
            Err(ValidityError::TooLong { .. })
        ));
    }

    #[test]
    fn debug_output_hides_the_signature() {
        let (signer, _) = signer(4000);
        let auth = signer.authorization();
        assert!(!format!("{auth:?}").contains(auth.header_value()));
        assert!(!format!("{signer:?}").contains("secretkey"));
    }
}
