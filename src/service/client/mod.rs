//! The blocking client of the person API: one typed method per call.
//!
//! A [`Client`] is cheap to clone and safe to share between threads: all clones use
//! one [`ureq::Agent`] (so one pool of keep-alive connections) and one renewing
//! [`Signer`]. Each method builds one request, sends it, and returns the call's `data`
//! ([`crate::service::api`]) or a [`CallError`] that names the call and says, through
//! [`CallError::class`], what the caller should do about it.
//!
//! # Encodings
//!
//! Calls without images, and calls whose images are URLs, send a JSON body (URLs in
//! `url` / `urls`). Calls with local photos send `multipart/form-data`, streaming
//! each file from disk ([`crate::service::multipart`]). One `addface` chunk is all
//! local or all URLs; a mix is refused before anything is sent. Every body carries
//! `appid` and `bucket`, as the official SDK sends them.
//!
//! # What the client retries, and what it does not
//!
//! The client retries one thing only: a call answered 9 (signature expired) or 13
//! (replay) is sent once more with a fresh signature, because the cure is local and
//! immediate. If the second answer is still 9 or 13, the error is returned and its
//! class is [`Class::Fatal`]: the clock or the credentials are wrong and every later
//! call would fail the same way. Everything else (rate limits, transient codes,
//! transport failures) is returned to the caller, whose pacer and retry policy
//! decide.
//!
//! [`Class::Fatal`]: crate::service::codes::Class::Fatal
//!
//! # Lost answers
//!
//! When the connection fails after the request was sent — reset, closed, or the
//! answer did not come before the read timeout — the service may well have done the
//! work: a person created, faces added. Such errors are [`TransportKind::ConnectionLost`]
//! or [`TransportKind::Timeout`], and [`CallError::outcome_unknown`] is true for them.
//! The caller must find out (e.g. `getinfo`) before sending a non-idempotent call
//! again, or accept a duplicate refusal (-1302, -1312) as the sign of a lost success.
//! A failure to connect ([`TransportKind::Connect`]) means nothing was sent.
//!
//! # A refused connection
//!
//! Before the service has answered any call of this client, a refused connection
//! means nothing listens at the endpoint as configured: it is
//! [`Unreachable::Refused`], and the job stops at once. After an answer, it is most
//! likely the service restarting: it is [`TransportKind::Connect`], retried, and the
//! job's limit of unanswered time decides when it has lasted too long.

mod answer;
mod config;
mod error;
mod groups;
mod persons;
mod request;
mod transport;

pub use config::{
    check_endpoint, ClientConfig, ConfigError, Endpoint, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT,
    DEFAULT_READ_TIMEOUT, DEFAULT_SIGNATURE_VALIDITY,
};
pub use error::{CallError, Heard, TransportKind, Unreachable, HANDSHAKE_FAILURES_UNREACHABLE};
pub use request::ImageBody;

use crate::service::api::Call;
use crate::service::network::{self, ProxyUrl};
use crate::service::signer::Signer;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

/// Calls by call and class label of their answer.
#[derive(Default)]
struct CallTally(std::sync::Mutex<BTreeMap<(Call, &'static str), u64>>);

/// The blocking client. Clones share one connection pool and one signature.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    agent: ureq::Agent,
    base: String,
    /// The proxy calls go through, for messages (no credentials).
    proxy: Option<ProxyUrl>,
    /// TLS handshakes failed in a row, with no answer since.
    handshake_failures: AtomicU32,
    /// Whether the service has answered any call: a refusal after that is a
    /// restart, retried, not a wrong address.
    answered: AtomicBool,
    /// Calls sent, by call and by the class of their answer.
    tally: CallTally,
    appid: String,
    bucket: String,
    signer: Signer,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.base)
            .field("appid", &self.inner.appid)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`; refuses a bad endpoint, plain http to a non-loopback
    /// host (unless allowed), an empty AppID or credentials, and a signature
    /// validity outside the contract.
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        let endpoint = check_endpoint(&config.endpoint, config.allow_insecure_http)?;
        if config.appid.is_empty() {
            return Err(ConfigError::EmptyAppid);
        }
        if config.credentials.secret_id().is_empty() || config.credentials.secret_key().is_empty() {
            return Err(ConfigError::EmptyCredentials);
        }
        if config.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout { what: "connect" });
        }
        if config.read_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout { what: "read" });
        }
        let signer = Signer::new(
            &config.appid,
            &config.bucket,
            config.credentials,
            config.signature_validity,
        )?;
        let tls = network::tls_config(config.ca_cert.as_deref())?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.read_timeout)
            .timeout_write(config.read_timeout)
            .redirects(0)
            .max_idle_connections_per_host(256)
            .max_idle_connections(256)
            .user_agent(concat!("faceenroll/", env!("CARGO_PKG_VERSION")));
        let agent = network::through_proxy(agent, &endpoint, tls, config.proxy.as_ref())?;
        Ok(Client {
            inner: Arc::new(Inner {
                agent: agent.build(),
                base: endpoint.base(),
                proxy: config.proxy,
                handshake_failures: AtomicU32::new(0),
                answered: AtomicBool::new(false),
                tally: CallTally::default(),
                appid: config.appid,
                bucket: config.bucket,
                signer,
            }),
        })
    }

    /// The base URL calls go to, for messages and logs.
    pub fn endpoint(&self) -> &str {
        &self.inner.base
    }

    /// The AppID calls are made for.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// The bucket calls name (legacy; usually empty).
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// Calls sent by this client and its clones so far, by call and class of answer.
    pub fn calls_by_class(&self) -> BTreeMap<(Call, &'static str), u64> {
        self.inner.tally.0.lock().expect("call tally lock").clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::sign::Credentials;
    use crate::service::signer::ValidityError;
    use std::time::Duration;

    #[test]
    fn the_client_is_shared_between_threads() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<Client>();
    }

    /// A configuration for the client's unit tests: a loopback port nothing answers.
    pub(crate) fn config() -> ClientConfig {
        ClientConfig::new(
            "http://127.0.0.1:9",
            "1250000000",
            "",
            Credentials::new("AKIDexample", "secretkey"),
        )
    }

    #[test]
    fn client_config_is_checked() {
        assert!(Client::new(config()).is_ok());
        let mut c = config();
        c.appid.clear();
        assert_eq!(Client::new(c).unwrap_err(), ConfigError::EmptyAppid);
        let mut c = config();
        c.credentials = Credentials::new("AKID", "");
        assert_eq!(Client::new(c).unwrap_err(), ConfigError::EmptyCredentials);
        let mut c = config();
        c.signature_validity = Duration::from_secs(crate::limits::MAX_SIGNATURE_VALIDITY_SECS + 1);
        assert!(matches!(
            Client::new(c).unwrap_err(),
            ConfigError::Validity(ValidityError::TooLong { .. })
        ));
        let mut c = config();
        c.endpoint = "http://example.com".into();
        assert!(matches!(
            Client::new(c).unwrap_err(),
            ConfigError::InsecureHttp { .. }
        ));
    }
}
