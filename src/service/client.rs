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
//! # Lost answers
//!
//! When the connection fails after the request was sent — reset, closed, or the
//! answer did not come before the read timeout — the service may well have done the
//! work: a person created, faces added. Such errors are [`TransportKind::ConnectionLost`]
//! or [`TransportKind::Timeout`], and [`CallError::outcome_unknown`] is true for them.
//! The caller must find out (e.g. `getinfo`) before sending a non-idempotent call
//! again, or accept a duplicate refusal (-1302, -1312) as the sign of a lost success.
//! A failure to connect ([`TransportKind::Connect`]) means nothing was sent.

use crate::limits::MAX_IMAGES_PER_ADDFACE;
use crate::model::{GroupId, ImageRef, PersonId};
use crate::service::api::{
    AddFaceData, AddGroupIdsData, Call, DelFaceData, DelGroupIdsData, DelPersonData, Envelope,
    FaceIdsData, FaceInfoData, GetInfoData, GroupIdsData, NewPersonData, PersonIdsData,
    SetInfoData,
};
use crate::service::codes::{self, code, Class, Described};
use crate::service::multipart::MultipartBuilder;
use crate::service::network::{self, ConnectError, ProxyUrl};
use crate::service::sign::Credentials;
use crate::service::signer::{Authorization, Signer, ValidityError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The service's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://recognition.image.myqcloud.com";
/// How long one signature is valid by default: four hours.
pub const DEFAULT_SIGNATURE_VALIDITY: Duration = Duration::from_secs(4 * 3600);
/// How long to wait for a connection by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer (between bytes read) by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer body read; id lists of large groups stay well below.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

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

/// Everything the client needs to reach the service.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://host[:port][/prefix]`; `http://` only for loopback hosts or with
    /// `allow_insecure_http`.
    pub endpoint: String,
    pub appid: String,
    /// Legacy; usually empty.
    pub bucket: String,
    pub credentials: Credentials,
    /// How long each shared signature is valid (at most three months).
    pub signature_validity: Duration,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Accept `http://` to hosts other than loopback (the credentials' signature then
    /// travels in clear text).
    pub allow_insecure_http: bool,
    /// A PEM file of CA certificates trusted besides the bundled roots.
    pub ca_cert: Option<PathBuf>,
    /// The HTTP proxy to go through; `None` goes direct. The client reads no
    /// environment: [`network::proxy_for`] resolves the variables.
    pub proxy: Option<ProxyUrl>,
}

impl ClientConfig {
    /// A configuration with the default validity and timeouts, HTTPS only.
    pub fn new(endpoint: &str, appid: &str, bucket: &str, credentials: Credentials) -> Self {
        ClientConfig {
            endpoint: endpoint.to_owned(),
            appid: appid.to_owned(),
            bucket: bucket.to_owned(),
            credentials,
            signature_validity: DEFAULT_SIGNATURE_VALIDITY,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            allow_insecure_http: false,
            ca_cert: None,
            proxy: None,
        }
    }
}

/// Why a client configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("endpoint {endpoint:?} is not a valid http(s) URL: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error(
        "endpoint {endpoint:?} uses plain http to a host that is not loopback; the signature \
         would travel in clear text. Use https, or pass --insecure-http (allow_insecure_http = \
         true in the config file) to accept it"
    )]
    InsecureHttp { endpoint: String },
    #[error("the AppID is empty")]
    EmptyAppid,
    #[error("the SecretId or SecretKey is empty")]
    EmptyCredentials,
    #[error(transparent)]
    Validity(#[from] ValidityError),
    #[error("{what} timeout must be longer than zero")]
    ZeroTimeout { what: &'static str },
    #[error("CA certificate file {}: {reason}", path.display())]
    CaCert { path: PathBuf, reason: String },
    #[error("proxy from {variable}: {reason}")]
    Proxy {
        variable: &'static str,
        reason: String,
    },
}

/// An endpoint taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: Option<u16>,
    /// Path prefix without a trailing slash (usually empty).
    pub prefix: String,
}

impl Endpoint {
    /// Parses `http(s)://host[:port][/prefix]`; no user info, query or fragment.
    pub fn parse(endpoint: &str) -> Result<Endpoint, ConfigError> {
        let bad = |reason: &str| ConfigError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason: reason.to_owned(),
        };
        let (https, rest) = if let Some(rest) = strip_prefix_ci(endpoint, "https://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix_ci(endpoint, "http://") {
            (false, rest)
        } else {
            return Err(bad("it must start with https:// or http://"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("it may not have a query or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("it may not carry a user name or password"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or_else(|| bad("unclosed '[' in host"))?;
            let host = &v6[..end];
            host.parse::<Ipv6Addr>()
                .map_err(|_| bad("bad IPv6 address"))?;
            (host, &v6[end + 1..])
        } else {
            match authority.find(':') {
                Some(i) => (&authority[..i], &authority[i..]),
                None => (authority, ""),
            }
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        let port = match port {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| bad("bad port"))?,
            ),
        };
        Ok(Endpoint {
            https,
            host: host.to_ascii_lowercase(),
            port,
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// Whether the host is this machine: 127.0.0.0/8, ::1 or localhost.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_end_matches('.');
        host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The base URL calls are appended to.
    fn base(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => format!("{scheme}://{host}:{p}{}", self.prefix),
            None => format!("{scheme}://{host}{}", self.prefix),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Checks an endpoint against the http-vs-loopback rule and returns it parsed.
pub fn check_endpoint(endpoint: &str, allow_insecure_http: bool) -> Result<Endpoint, ConfigError> {
    let parsed = Endpoint::parse(endpoint)?;
    if !parsed.https && !parsed.is_loopback() && !allow_insecure_http {
        return Err(ConfigError::InsecureHttp {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(parsed)
}

/// What went wrong on the way to or from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made this time (connect timeout, a TLS handshake
    /// broken off): nothing was sent.
    Connect,
    /// The service cannot be reached as configured, and every later call would fail
    /// the same way: nothing was sent. Its class is [`Class::Fatal`].
    Unreachable(Unreachable),
    /// Connected and sent, but no answer within the read timeout: the outcome is
    /// unknown.
    Timeout,
    /// The connection broke (reset, closed) before the whole answer arrived: the
    /// outcome is unknown.
    ConnectionLost,
    /// The server answered with an HTTP status other than 200 and no contract answer.
    HttpStatus(u16),
    /// The answer is not the contract's JSON.
    BadAnswer,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportKind::Connect => f.write_str("could not connect"),
            TransportKind::Unreachable(why) => {
                write!(f, "the service could not be reached: {why}")
            }
            TransportKind::Timeout => {
                f.write_str("no answer before the read timeout (the call may have been done)")
            }
            TransportKind::ConnectionLost => f.write_str(
                "connection lost before the answer arrived (the call may have been done)",
            ),
            TransportKind::HttpStatus(s) => write!(f, "HTTP status {s}"),
            TransportKind::BadAnswer => f.write_str("the answer is not the contract's JSON"),
        }
    }
}

/// Why the service cannot be reached as configured. Each is a fact of the network
/// or the settings, not of a photo: the job stops at the first one, with every
/// photo left for the next run, rather than retrying each person in vain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// The host name does not resolve.
    NameNotResolved,
    /// Nothing listens at the address: the connection was refused.
    Refused,
    /// The certificate is not signed by a trusted authority.
    UntrustedCertificate,
    /// The certificate does not name the endpoint's host.
    CertificateNameMismatch,
    /// The certificate is expired, not yet valid, revoked or malformed.
    BadCertificate,
    /// TLS handshakes failed on [`HANDSHAKE_FAILURES_UNREACHABLE`] calls in a row:
    /// e.g. `https://` to a port that speaks plain http.
    TlsHandshake,
    /// The proxy refused to open a tunnel to the service.
    ProxyRefused,
    /// The proxy asks for credentials it was not given, or refused them.
    ProxyAuth,
}

/// TLS handshakes failing on this many calls in a row, with no answer between them,
/// mean the endpoint does not speak TLS as configured. Fewer may be a server's
/// passing trouble and are retried.
pub const HANDSHAKE_FAILURES_UNREACHABLE: u32 = 3;

impl Unreachable {
    /// What the operator should do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            Unreachable::NameNotResolved => {
                "check the endpoint's host name (--endpoint) and the machine's DNS, or the proxy \
                 (HTTPS_PROXY, NO_PROXY)"
            }
            Unreachable::Refused => {
                "check the endpoint's host and port (--endpoint) and that the service or proxy \
                 is running there"
            }
            Unreachable::UntrustedCertificate => {
                "if the service or a proxy on the way uses a company CA, name the CA's PEM file \
                 with --ca-cert FILE (or FACEENROLL_CA_CERT, ca_cert in [service], SSL_CERT_FILE)"
            }
            Unreachable::CertificateNameMismatch => {
                "use the host name the service's certificate is issued for in --endpoint"
            }
            Unreachable::BadCertificate => {
                "check the service's certificate and this machine's clock"
            }
            Unreachable::TlsHandshake => {
                "check that the endpoint speaks https at that port (or use http:// for a local \
                 emulator)"
            }
            Unreachable::ProxyRefused => {
                "check the proxy (HTTPS_PROXY) allows tunnels to the endpoint, or name the host \
                 in NO_PROXY to go direct"
            }
            Unreachable::ProxyAuth => {
                "put the proxy's user and password in its URL (http://user:password@host:port)"
            }
        }
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unreachable::NameNotResolved => "the host name does not resolve",
            Unreachable::Refused => "the connection was refused",
            Unreachable::UntrustedCertificate => "its certificate is not trusted",
            Unreachable::CertificateNameMismatch => {
                "its certificate is not valid for the endpoint's host name"
            }
            Unreachable::BadCertificate => "its certificate is not valid",
            Unreachable::TlsHandshake => "TLS handshakes fail on every call",
            Unreachable::ProxyRefused => "the proxy refused the tunnel",
            Unreachable::ProxyAuth => "the proxy refused its credentials",
        })
    }
}

/// A call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The service answered a non-zero code.
    #[error("{}: the service answered {}: {message}", call.name(), Described(*code))]
    Service {
        call: Call,
        code: i64,
        message: String,
    },
    /// The request or its answer was lost on the way.
    #[error("{}: {kind}: {detail}", call.name())]
    Transport {
        call: Call,
        kind: TransportKind,
        detail: String,
    },
    /// A local photo could not be read.
    #[error("{}: cannot read photo {}: {source}", call.name(), path.display())]
    Image {
        call: Call,
        path: PathBuf,
        source: io::Error,
    },
    /// Refused before sending: the request itself is wrong.
    #[error("{}: request not sent: {reason}", call.name())]
    Request { call: Call, reason: String },
}

impl CallError {
    /// What the caller should do about this error. Service codes are classed by the
    /// one code table ([`codes::class`]).
    pub fn class(&self) -> Class {
        match self {
            CallError::Service { code, .. } => codes::class(*code),
            CallError::Transport {
                kind: TransportKind::Unreachable(_),
                ..
            } => Class::Fatal,
            // A front proxy's refusal of the body's size, in place of code 23.
            CallError::Transport {
                kind: TransportKind::HttpStatus(413),
                ..
            } => Class::Outcome(codes::Outcome::TooLarge),
            CallError::Transport { .. } => Class::Transient,
            CallError::Image { .. } => Class::Permanent,
            CallError::Request { .. } => Class::Request,
        }
    }

    /// The service's code, for service errors.
    pub fn code(&self) -> Option<i64> {
        match self {
            CallError::Service { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The call that failed.
    pub fn call(&self) -> Call {
        match self {
            CallError::Service { call, .. }
            | CallError::Transport { call, .. }
            | CallError::Image { call, .. }
            | CallError::Request { call, .. } => *call,
        }
    }

    /// The transport failure, if this is one.
    pub fn transport_kind(&self) -> Option<TransportKind> {
        match self {
            CallError::Transport { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Whether the service may have done the work although no answer says so: the
    /// request was sent and its answer lost (see the module documentation).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            CallError::Transport { kind, .. }
                if !matches!(kind, TransportKind::Connect | TransportKind::Unreachable(_))
        )
    }

    /// What the operator should do about an error that stops the job.
    pub fn remedy(&self) -> &'static str {
        match self {
            CallError::Transport {
                kind: TransportKind::Unreachable(why),
                ..
            } => why.remedy(),
            _ => "fix the account or credentials",
        }
    }
}

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

/// A field of a request body.
enum Value<'a> {
    Text(&'a str),
    List(Vec<&'a str>),
}

/// The images of a request: `image`/`url` (newperson) or `images[i]`/`urls` (addface).
enum Images<'a> {
    None,
    One(&'a ImageBody),
    Many(&'a [ImageBody]),
}

struct Request<'a> {
    call: Call,
    fields: Vec<(&'static str, Value<'a>)>,
    images: Images<'a>,
}

impl<'a> Request<'a> {
    fn new(call: Call) -> Self {
        Request {
            call,
            fields: Vec::new(),
            images: Images::None,
        }
    }

    fn text(mut self, name: &'static str, value: &'a str) -> Self {
        self.fields.push((name, Value::Text(value)));
        self
    }

    fn opt_text(self, name: &'static str, value: Option<&'a str>) -> Self {
        match value {
            Some(v) => self.text(name, v),
            None => self,
        }
    }

    fn list<S: AsRef<str>>(mut self, name: &'static str, values: &'a [S]) -> Self {
        let values = values.iter().map(AsRef::as_ref).collect();
        self.fields.push((name, Value::List(values)));
        self
    }
}

/// A body ready to send.
enum Body {
    Json(Vec<u8>),
    Multipart(crate::service::multipart::Multipart),
}

/// The part of an answer every answer has.
#[derive(Deserialize)]
struct Head {
    code: i64,
    #[serde(default)]
    message: String,
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
        let mut agent = ureq::AgentBuilder::new()
            .timeout_connect(config.connect_timeout)
            .timeout_read(config.read_timeout)
            .timeout_write(config.read_timeout)
            .redirects(0)
            .max_idle_connections_per_host(256)
            .max_idle_connections(256)
            .user_agent(concat!("faceenroll/", env!("CARGO_PKG_VERSION")));
        // An https endpoint is reached through a tunnel the connector opens; plain
        // http requests are handed to the proxy to forward.
        let port = endpoint
            .port
            .unwrap_or(if endpoint.https { 443 } else { 80 });
        agent = agent.tls_connector(Arc::new(network::Connector::new(
            tls,
            config.proxy.as_ref().filter(|_| endpoint.https),
            port,
        )));
        match &config.proxy {
            Some(proxy) if endpoint.https => {
                agent = agent.resolver(network::ToProxy(proxy.clone()))
            }
            Some(proxy) => {
                agent =
                    agent.proxy(
                        proxy
                            .to_agent_proxy()
                            .map_err(|reason| ConfigError::Proxy {
                                variable: "the proxy setting",
                                reason,
                            })?,
                    )
            }
            None => {}
        }
        Ok(Client {
            inner: Arc::new(Inner {
                agent: agent.build(),
                base: endpoint.base(),
                proxy: config.proxy,
                handshake_failures: AtomicU32::new(0),
                tally: CallTally::default(),
                appid: config.appid,
                bucket: config.bucket,
                signer,
            }),
        })
    }

    /// Creates a person in `groups` with its first photo.
    pub fn new_person(
        &self,
        person: &PersonId,
        groups: &[GroupId],
        image: &ImageBody,
        name: Option<&str>,
        tag: Option<&str>,
    ) -> Result<NewPersonData, CallError> {
        let mut req = Request::new(Call::NewPerson)
            .list("group_ids", groups)
            .text("person_id", person.as_str())
            .opt_text("person_name", name)
            .opt_text("tag", tag);
        req.images = Images::One(image);
        self.send(req)
    }

    /// Adds photos to a person: all local files/bytes, or all URLs, at most
    /// [`MAX_IMAGES_PER_ADDFACE`].
    pub fn add_faces(
        &self,
        person: &PersonId,
        images: &[ImageBody],
        tag: Option<&str>,
    ) -> Result<AddFaceData, CallError> {
        let refuse = |reason: String| CallError::Request {
            call: Call::AddFace,
            reason,
        };
        if images.is_empty() {
            return Err(refuse("no photos to add".into()));
        }
        if images.len() > MAX_IMAGES_PER_ADDFACE {
            return Err(refuse(format!(
                "{} photos in one call, over the limit of {MAX_IMAGES_PER_ADDFACE}",
                images.len()
            )));
        }
        let mut req = Request::new(Call::AddFace)
            .text("person_id", person.as_str())
            .opt_text("tag", tag);
        req.images = Images::Many(images);
        self.send(req)
    }

    /// A person's name, tag, faces and groups.
    pub fn get_info(&self, person: &PersonId) -> Result<GetInfoData, CallError> {
        self.send(Request::new(Call::GetInfo).text("person_id", person.as_str()))
    }

    /// Sets a person's name and/or tag; a `None` field is left as it is.
    pub fn set_info(
        &self,
        person: &PersonId,
        name: Option<&str>,
        tag: Option<&str>,
    ) -> Result<SetInfoData, CallError> {
        self.send(
            Request::new(Call::SetInfo)
                .text("person_id", person.as_str())
                .opt_text("person_name", name)
                .opt_text("tag", tag),
        )
    }

    /// Puts a person in more groups (created on first use).
    pub fn add_group_ids(
        &self,
        person: &PersonId,
        groups: &[GroupId],
    ) -> Result<AddGroupIdsData, CallError> {
        self.send(
            Request::new(Call::AddGroupIds)
                .text("person_id", person.as_str())
                .list("group_ids", groups),
        )
    }

    /// Takes a person out of groups.
    pub fn del_group_ids(
        &self,
        person: &PersonId,
        groups: &[GroupId],
    ) -> Result<DelGroupIdsData, CallError> {
        self.send(
            Request::new(Call::DelGroupIds)
                .text("person_id", person.as_str())
                .list("group_ids", groups),
        )
    }

    /// Deletes a person and all its faces.
    pub fn del_person(&self, person: &PersonId) -> Result<DelPersonData, CallError> {
        self.send(Request::new(Call::DelPerson).text("person_id", person.as_str()))
    }

    /// Deletes faces of a person; faces it does not hold are ignored.
    pub fn del_faces(
        &self,
        person: &PersonId,
        face_ids: &[String],
    ) -> Result<DelFaceData, CallError> {
        self.send(
            Request::new(Call::DelFace)
                .text("person_id", person.as_str())
                .list("face_ids", face_ids),
        )
    }

    /// The groups of the AppID.
    pub fn get_group_ids(&self) -> Result<GroupIdsData, CallError> {
        self.send(Request::new(Call::GetGroupIds))
    }

    /// The persons of a group.
    pub fn get_person_ids(&self, group: &GroupId) -> Result<PersonIdsData, CallError> {
        self.send(Request::new(Call::GetPersonIds).text("group_id", group.as_str()))
    }

    /// The faces of a person.
    pub fn get_face_ids(&self, person: &PersonId) -> Result<FaceIdsData, CallError> {
        self.send(Request::new(Call::GetFaceIds).text("person_id", person.as_str()))
    }

    /// What the service knows of a face.
    pub fn get_face_info(&self, face_id: &str) -> Result<FaceInfoData, CallError> {
        self.send(Request::new(Call::GetFaceInfo).text("face_id", face_id))
    }

    /// The base URL calls go to, for messages and logs.
    pub fn endpoint(&self) -> &str {
        &self.inner.base
    }

    /// Calls sent by this client and its clones so far, by call and class of answer.
    pub fn calls_by_class(&self) -> BTreeMap<(Call, &'static str), u64> {
        self.inner.tally.0.lock().expect("call tally lock").clone()
    }

    /// Sends a request, counting it by the class of its answer.
    fn send<T: DeserializeOwned>(&self, req: Request<'_>) -> Result<T, CallError> {
        let call = req.call;
        let result = self.send_signed(req);
        let class = match &result {
            Ok(_) => Class::Ok,
            Err(e) => e.class(),
        };
        *self
            .inner
            .tally
            .0
            .lock()
            .expect("call tally lock")
            .entry((call, class.label()))
            .or_default() += 1;
        result
    }

    /// Sends a request, re-signing once on 9 or 13.
    fn send_signed<T: DeserializeOwned>(&self, req: Request<'_>) -> Result<T, CallError> {
        let auth = self.inner.signer.authorization();
        match self.attempt(&req, &auth) {
            Err(CallError::Service { code: c, .. })
                if c == code::SIGNATURE_EXPIRED || c == code::REPLAY =>
            {
                tracing::debug!(call = req.call.name(), code = c, "re-signing once");
                let fresh = self.inner.signer.renew_after_refusal(&auth);
                self.attempt(&req, &fresh)
            }
            other => other,
        }
    }

    fn attempt<T: DeserializeOwned>(
        &self,
        req: &Request<'_>,
        auth: &Authorization,
    ) -> Result<T, CallError> {
        let call = req.call;
        let body = self.body(req)?;
        let url = format!("{}{}", self.inner.base, call.path());
        let request = self
            .inner
            .agent
            .post(&url)
            .set("Authorization", auth.header_value());
        let result = match body {
            Body::Json(bytes) => request
                .set("Content-Type", "application/json")
                .send_bytes(&bytes),
            Body::Multipart(mp) => {
                let fault = mp.fault.clone();
                let result = request
                    .set("Content-Type", &mp.content_type)
                    .set("Content-Length", &mp.content_length.to_string())
                    .send(mp.reader);
                if result.is_err() {
                    if let Some(f) = fault.take() {
                        return Err(CallError::Image {
                            call,
                            path: f.path,
                            source: f.error,
                        });
                    }
                }
                result
            }
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(call, &t)),
        };
        self.inner.handshake_failures.store(0, Ordering::Relaxed);
        let status = response.status();
        let mut bytes = Vec::new();
        if let Err(e) = response
            .into_reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut bytes)
        {
            return Err(CallError::Transport {
                call,
                kind: io_kind(&e),
                detail: format!("reading the answer: {e}"),
            });
        }
        let head = serde_json::from_slice::<Head>(&bytes);
        match head {
            // An addface that added nothing may answer a refused image's code with
            // every image's code still in `ret_codes` (API.md, points left open):
            // the images' outcomes are the answer, as with code 0.
            Ok(head) if head.code != code::OK && call == Call::AddFace => {
                match carries_ret_codes::<T>(&bytes) {
                    Some(data) => Ok(data),
                    None => Err(CallError::Service {
                        call,
                        code: head.code,
                        message: head.message,
                    }),
                }
            }
            Ok(head) if head.code != code::OK => Err(CallError::Service {
                call,
                code: head.code,
                message: head.message,
            }),
            _ if status != 200 => Err(CallError::Transport {
                call,
                kind: TransportKind::HttpStatus(status),
                detail: snippet(&bytes),
            }),
            Ok(_) => serde_json::from_slice::<Envelope<T>>(&bytes)
                .map(|e| e.data)
                .map_err(|e| CallError::Transport {
                    call,
                    kind: TransportKind::BadAnswer,
                    detail: format!("code 0 but its data does not fit: {e}"),
                }),
            Err(e) => Err(CallError::Transport {
                call,
                kind: TransportKind::BadAnswer,
                detail: format!("{e}: {}", snippet(&bytes)),
            }),
        }
    }

    /// Classes a failure of the transport, once, where it is made: what can be
    /// retried, what means the service cannot be reached as configured
    /// ([`TransportKind::Unreachable`]), and what lost an answer.
    fn transport_error(&self, call: Call, t: &ureq::Transport) -> CallError {
        let source = std::error::Error::source(t);
        // A failure of the tunnel or the handshake says what it is by itself; the
        // agent's kind ("Network Error") would only blur it.
        let ours = source
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(|e| e.get_ref())
            .is_some_and(|e| e.is::<ConnectError>());
        let mut detail = if ours {
            String::new()
        } else {
            t.kind().to_string()
        };
        if let Some(m) = t.message() {
            detail.push_str(": ");
            detail.push_str(m);
        }
        if let Some(s) = source {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&s.to_string());
        }
        let kind = match classify(t) {
            Failure::Kind(kind) => kind,
            Failure::Handshake => {
                let failures = self
                    .inner
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if failures >= HANDSHAKE_FAILURES_UNREACHABLE {
                    TransportKind::Unreachable(Unreachable::TlsHandshake)
                } else {
                    TransportKind::Connect
                }
            }
        };
        if let TransportKind::Unreachable(_) = kind {
            let via = match &self.inner.proxy {
                Some(p) => format!(" through the proxy {p}"),
                None => String::new(),
            };
            detail = format!("{}{via}: {detail}", self.inner.base);
        }
        CallError::Transport { call, kind, detail }
    }

    fn body(&self, req: &Request<'_>) -> Result<Body, CallError> {
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

fn io_kind(e: &io::Error) -> TransportKind {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportKind::Timeout,
        _ => TransportKind::ConnectionLost,
    }
}

/// A transport failure as [`classify`] sees it.
enum Failure {
    Kind(TransportKind),
    /// A TLS handshake failed for a reason that is not the certificate: unreachable
    /// only when it repeats.
    Handshake,
}

fn classify(t: &ureq::Transport) -> Failure {
    let io = std::error::Error::source(t).and_then(|s| s.downcast_ref::<io::Error>());
    let io_kind = io.map(io::Error::kind);
    let unreachable = |why| Failure::Kind(TransportKind::Unreachable(why));
    let timed_out = |kind| matches!(kind, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock);
    let connect = io
        .and_then(|e| e.get_ref())
        .and_then(|e| e.downcast_ref::<ConnectError>());
    match connect {
        Some(ConnectError::TunnelRefused { status, .. }) => {
            return match status {
                401 | 407 => unreachable(Unreachable::ProxyAuth),
                _ => unreachable(Unreachable::ProxyRefused),
            }
        }
        // Nothing reached the service: retried like a connect timeout.
        Some(ConnectError::TunnelIo(_)) => return Failure::Kind(TransportKind::Connect),
        Some(ConnectError::Handshake(e)) => {
            let tls = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            return match tls {
                Some(rustls::Error::InvalidCertificate(c)) => unreachable(certificate(c)),
                None if timed_out(e.kind()) => Failure::Kind(TransportKind::Connect),
                _ => Failure::Handshake,
            };
        }
        None => {}
    }
    match t.kind() {
        ureq::ErrorKind::Dns => unreachable(Unreachable::NameNotResolved),
        ureq::ErrorKind::ProxyConnect => unreachable(Unreachable::ProxyRefused),
        ureq::ErrorKind::ProxyUnauthorized => unreachable(Unreachable::ProxyAuth),
        ureq::ErrorKind::ConnectionFailed if io_kind == Some(io::ErrorKind::ConnectionRefused) => {
            unreachable(Unreachable::Refused)
        }
        ureq::ErrorKind::ConnectionFailed
        | ureq::ErrorKind::InvalidUrl
        | ureq::ErrorKind::UnknownScheme
        | ureq::ErrorKind::InsecureRequestHttpsOnly
        | ureq::ErrorKind::InvalidProxyUrl => Failure::Kind(TransportKind::Connect),
        ureq::ErrorKind::Io => match io_kind {
            Some(kind) if timed_out(kind) => Failure::Kind(TransportKind::Timeout),
            _ => Failure::Kind(TransportKind::ConnectionLost),
        },
        ureq::ErrorKind::BadStatus
        | ureq::ErrorKind::BadHeader
        | ureq::ErrorKind::TooManyRedirects
        | ureq::ErrorKind::HTTP => Failure::Kind(TransportKind::BadAnswer),
    }
}

/// Which fault of a certificate stops the job.
fn certificate(e: &rustls::CertificateError) -> Unreachable {
    use rustls::CertificateError as C;
    match e {
        C::UnknownIssuer | C::BadSignature | C::UnhandledCriticalExtension => {
            Unreachable::UntrustedCertificate
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            Unreachable::CertificateNameMismatch
        }
        _ => Unreachable::BadCertificate,
    }
}

/// The data of an answer whose `ret_codes` lists at least one image's outcome.
fn carries_ret_codes<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let envelope: Envelope<serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    let filled = envelope
        .data
        .get("ret_codes")
        .and_then(|c| c.as_array())
        .is_some_and(|c| !c.is_empty());
    if !filled {
        return None;
    }
    serde_json::from_value(envelope.data).ok()
}

/// The start of an answer body, for messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let text = text.trim();
    if text.is_empty() {
        "empty body".into()
    } else {
        format!("body starts {text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_shared_between_threads() {
        fn send_sync<T: Send + Sync + Clone + 'static>() {}
        send_sync::<Client>();
    }

    #[test]
    fn https_is_accepted_everywhere() {
        let e = check_endpoint("https://recognition.image.myqcloud.com", false).unwrap();
        assert!(e.https);
        assert_eq!(e.base(), "https://recognition.image.myqcloud.com");
        let e = check_endpoint("HTTPS://Example.com:8443/prefix/", false).unwrap();
        assert_eq!(e.base(), "https://example.com:8443/prefix");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.3.4.5",
            "http://localhost:1234",
            "http://LOCALHOST",
            "http://[::1]:9000",
        ] {
            let e = check_endpoint(ok, false).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert!(e.is_loopback(), "{ok}");
        }
        assert_eq!(
            check_endpoint("http://[::1]:9000", false).unwrap().base(),
            "http://[::1]:9000"
        );
        for refused in [
            "http://recognition.image.myqcloud.com",
            "http://10.0.0.1:80",
            "http://128.0.0.1",
            "http://localhost.example.com",
            "http://[::2]",
        ] {
            let err = check_endpoint(refused, false).unwrap_err();
            assert!(matches!(err, ConfigError::InsecureHttp { .. }), "{refused}");
            assert!(err.to_string().contains("--insecure-http"), "{err}");
            // An explicit opt-in accepts it.
            assert!(check_endpoint(refused, true).is_ok(), "{refused}");
        }
    }

    #[test]
    fn malformed_endpoints_are_refused_with_a_reason() {
        for bad in [
            "ftp://x",
            "recognition.image.myqcloud.com",
            "https://",
            "https://host:notaport",
            "https://host:99999",
            "https://user:pw@host",
            "https://host/?q=1",
            "https://[::1",
        ] {
            let err = check_endpoint(bad, true).unwrap_err();
            assert!(
                matches!(err, ConfigError::BadEndpoint { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    fn config() -> ClientConfig {
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
        assert_eq!(err.class(), Class::Permanent);
        assert_eq!(err.call(), Call::AddFace);
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

    #[test]
    fn classes_come_from_the_code_table() {
        let service = |code| CallError::Service {
            call: Call::GetInfo,
            code,
            message: String::new(),
        };
        assert_eq!(service(15).class(), Class::RateLimited);
        assert_eq!(service(9).class(), Class::Fatal);
        assert_eq!(service(-4242).class(), Class::Unknown);
        assert_eq!(service(-1101).code(), Some(-1101));
        let lost = CallError::Transport {
            call: Call::NewPerson,
            kind: TransportKind::ConnectionLost,
            detail: String::new(),
        };
        assert_eq!(lost.class(), Class::Transient);
        assert!(lost.outcome_unknown());
        let refused = CallError::Transport {
            call: Call::NewPerson,
            kind: TransportKind::Connect,
            detail: String::new(),
        };
        assert!(!refused.outcome_unknown());
        assert_eq!(refused.code(), None);
    }
}
