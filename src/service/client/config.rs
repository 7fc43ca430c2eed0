//! Where the service is and how to reach it: [`ClientConfig`] and its checks.

use crate::service::network::ProxyUrl;
use crate::service::sign::Credentials;
use crate::service::signer::ValidityError;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

/// The service's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://recognition.image.myqcloud.com";
/// How long one signature is valid by default: four hours.
pub const DEFAULT_SIGNATURE_VALIDITY: Duration = Duration::from_secs(4 * 3600);
/// How long to wait for a connection by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the answer (between bytes read) by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// environment: [`crate::service::network::proxy_for`] resolves the variables.
    pub proxy: Option<ProxyUrl>,
}

impl ClientConfig {
    /// The endpoint as the client calls it (scheme and host in lower case, no
    /// trailing `/`), or why it is refused.
    pub fn base_url(&self) -> Result<String, ConfigError> {
        check_endpoint(&self.endpoint, self.allow_insecure_http).map(|e| e.base())
    }

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
            // A password in it is never shown.
            endpoint: crate::redact::url_shown(endpoint),
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
    pub(super) fn base(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            assert!(
                err.to_string().contains(&crate::redact::url_shown(bad)),
                "{err}"
            );
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }
}
