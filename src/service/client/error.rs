//! What can go wrong with a call, and what the caller should do about it.

use crate::service::api::Call;
use crate::service::codes::{self, Class, Described};
use crate::service::network::ConnectError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

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
    /// The proxy asks for credentials it was not given, or refused them (407 to
    /// a tunnel's `CONNECT` or to a forwarded plain-http call).
    ProxyAuth,
    /// No call had an answer for the job's whole limit of unanswered time
    /// (`--unanswered-limit`): the service (or the way to it) is down or hung.
    NoAnswer,
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
                "put the proxy's right user and password in its URL (HTTP_PROXY, HTTPS_PROXY \
                 or ALL_PROXY: http://user:password@host:port, with '@', ':' and '%' in them \
                 written %40, %3A and %25)"
            }
            Unreachable::NoAnswer => {
                "check that the service, and the proxy on the way if there is one, is up and \
                 answering (--unanswered-limit SECS waits longer for one that is down)"
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
            Unreachable::NoAnswer => "it answered no call for the unanswered limit",
        })
    }
}

/// Whether a failed call heard from the service ([`CallError::heard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Something answered.
    Answer,
    /// Nothing answered: the call adds to the service's silence.
    Nothing,
    /// The call was not sent.
    NotSent,
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
    /// Not sent because the job was asked to stop before the call's turn came:
    /// nothing reached the service, and the call's photos stay for the next run.
    #[error("{}: not sent: the job is stopping", call.name())]
    Stopped { call: Call },
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
            // A front proxy's "too many requests", in place of code 15: the pacer
            // slows down for it as for 15.
            CallError::Transport {
                kind: TransportKind::HttpStatus(429),
                ..
            } => codes::class(codes::code::RATE_LIMITED),
            CallError::Transport { .. } => Class::Transient,
            // One photo of the request, named in the error, cannot be read: not the
            // service's answer, and no reason to refuse the others of its call.
            CallError::Image { .. } => Class::Outcome(codes::Outcome::Unreadable),
            CallError::Request { .. } => Class::Request,
            // For now: the next run sends it.
            CallError::Stopped { .. } => Class::Transient,
        }
    }

    /// The service's code, for service errors.
    pub fn code(&self) -> Option<i64> {
        match self {
            CallError::Service { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The local photo that could not be read, and why, for an [`CallError::Image`].
    pub fn unreadable_photo(&self) -> Option<(&Path, &io::Error)> {
        match self {
            CallError::Image { path, source, .. } => Some((path, source)),
            _ => None,
        }
    }

    /// The call that failed.
    pub fn call(&self) -> Call {
        match self {
            CallError::Service { call, .. }
            | CallError::Transport { call, .. }
            | CallError::Image { call, .. }
            | CallError::Request { call, .. }
            | CallError::Stopped { call } => *call,
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

    /// Whether the service was heard: an answer came (any code, any HTTP status, even
    /// one that is not the contract's), none came (a timeout, a connection that
    /// could not be made or broke, a refusal), or no call was sent at all.
    pub fn heard(&self) -> Heard {
        match self {
            CallError::Service { .. } => Heard::Answer,
            CallError::Transport { kind, .. } => match kind {
                TransportKind::HttpStatus(_) | TransportKind::BadAnswer => Heard::Answer,
                TransportKind::Connect
                | TransportKind::Timeout
                | TransportKind::ConnectionLost
                | TransportKind::Unreachable(Unreachable::Refused | Unreachable::NoAnswer) => {
                    Heard::Nothing
                }
                // A certificate, a name, a proxy's refusal: something answered, and
                // the job stops for it anyway.
                TransportKind::Unreachable(_) => Heard::Answer,
            },
            CallError::Image { .. } | CallError::Request { .. } | CallError::Stopped { .. } => {
                Heard::NotSent
            }
        }
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

pub(super) fn io_kind(e: &io::Error) -> TransportKind {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportKind::Timeout,
        _ => TransportKind::ConnectionLost,
    }
}

/// A transport failure as [`classify`] sees it.
pub(super) enum Failure {
    Kind(TransportKind),
    /// A TLS handshake failed for a reason that is not the certificate: unreachable
    /// only when it repeats.
    Handshake,
}

pub(super) fn classify(t: &ureq::Transport) -> Failure {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let status = |status| CallError::Transport {
            call: Call::AddFace,
            kind: TransportKind::HttpStatus(status),
            detail: String::new(),
        };
        assert_eq!(status(429).class(), Class::RateLimited);
        assert_eq!(
            status(413).class(),
            Class::Outcome(codes::Outcome::TooLarge)
        );
        assert_eq!(status(502).class(), Class::Transient);
    }
}
