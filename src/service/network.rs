//! The way to the service: which certificates to trust and which proxy to go through.
//!
//! # Trust
//!
//! The client trusts the Mozilla root certificates bundled with the program
//! (`webpki-roots`) plus, if the operator names one, a PEM file of further CA
//! certificates (`--ca-cert`, `FACEENROLL_CA_CERT`, `ca_cert` in `[service]`, or
//! `SSL_CERT_FILE` as OpenSSL and curl read it). The bundled roots make the same
//! binary trust the same authorities on every machine, including the slim
//! containers cron jobs run in, which often have no system store at all; a company
//! CA is then one file the operator names rather than a property of the host.
//!
//! # Proxies
//!
//! [`proxy_for`] reads the proxy variables as curl does: `https_proxy` /
//! `HTTPS_PROXY` for an `https://` endpoint, `http_proxy` / `HTTP_PROXY` for an
//! `http://` one, `all_proxy` / `ALL_PROXY` for either, the lower-case spelling
//! first, an empty value counting as unset; and `no_proxy` / `NO_PROXY` to go
//! direct ([`no_proxy_matches`]). Proxies are spoken to in plain HTTP; an
//! `https://` endpoint goes through an HTTP `CONNECT` tunnel, so the proxy sees
//! the host name, never the requests or the signature. An `http://` endpoint's
//! requests are handed to the proxy to forward, each with the URL's credentials in
//! `Proxy-Authorization` (the HTTP agent would send them on a `CONNECT` only).
//!
//! # Connections
//!
//! The client opens its TLS sessions itself (`Connector`), and through a proxy
//! its tunnels too: the HTTP agent is told the proxy's address as the endpoint's,
//! and the connector sends `CONNECT` on that connection before the handshake. The
//! requests inside the tunnel then carry the path alone, as curl sends them and as
//! every server reads them (the agent's own proxy support would send the whole URL
//! inside the tunnel too). A failure on the way is wrapped in a [`ConnectError`]
//! so that the client classes it by what it is, not by its text.

use crate::service::client::{ConfigError, Endpoint};
use base64::Engine as _;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The variable that names a PEM file of CA certificates, as OpenSSL and curl read it.
pub const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// A proxy URL: `http://[user[:password]@]host[:port]`. Its credentials are kept
/// for the proxy and never shown: [`fmt::Display`] leaves them out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    credentials: Option<String>,
}

impl ProxyUrl {
    /// Parses a proxy URL as curl does: no scheme means `http://`, no port means
    /// 1080. Only plain-HTTP proxies are spoken to.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let rest = match text.find("://") {
            Some(i) => {
                let scheme = &text[..i];
                if !scheme.eq_ignore_ascii_case("http") {
                    return Err(format!(
                        "its scheme {scheme}:// is not supported; use an http:// proxy"
                    ));
                }
                &text[i + 3..]
            }
            None => text,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (credentials, hostport) = match authority.rfind('@') {
            Some(i) => (Some(authority[..i].to_owned()), &authority[i + 1..]),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let end = v6.find(']').ok_or("unclosed '[' in its host")?;
            (&v6[..end], v6[end + 1..].strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("it has no host".into());
        }
        let port = match port {
            None | Some("") => 1080,
            Some(p) => p
                .parse()
                .map_err(|_| "its port is not a number".to_owned())?,
        };
        Ok(ProxyUrl {
            host: host.to_ascii_lowercase(),
            port,
            credentials,
        })
    }

    /// Whether the URL carries a user name (and password) for the proxy.
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// `host:port`, as a resolver takes it.
    fn netloc(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Proxy-Authorization` value for the URL's credentials, percent-decoded.
    fn authorization(&self) -> Option<String> {
        let credentials = self.credentials.as_deref()?;
        let decoded = percent_decode(credentials);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(decoded)
        ))
    }

    /// The proxy as the HTTP agent takes it (for plain-http endpoints, whose
    /// requests a proxy forwards). The agent uses the credentials only for a
    /// `CONNECT`, so [`through_proxy`] adds them to each forwarded request.
    pub(crate) fn to_agent_proxy(&self) -> Result<ureq::Proxy, String> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let url = match &self.credentials {
            Some(c) => format!("http://{c}@{host}:{}", self.port),
            None => format!("http://{host}:{}", self.port),
        };
        ureq::Proxy::new(url).map_err(|e| e.to_string())
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self}")?;
        if self.has_credentials() {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

/// The proxy in effect for an endpoint and the variable that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyChoice {
    pub url: ProxyUrl,
    pub variable: &'static str,
}

impl fmt::Display for ProxyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {}", self.url, self.variable)?;
        if self.url.has_credentials() {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

/// The proxy to reach `endpoint` through, read from the proxy variables `env`
/// gives as curl reads them (see the module documentation); `None` to go direct.
pub fn proxy_for(
    endpoint: &Endpoint,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ProxyChoice>, ConfigError> {
    let set = |name: &'static str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let named = if endpoint.https {
        set("https_proxy").or_else(|| set("HTTPS_PROXY"))
    } else {
        set("http_proxy").or_else(|| set("HTTP_PROXY"))
    }
    .or_else(|| set("all_proxy"))
    .or_else(|| set("ALL_PROXY"));
    let Some((variable, value)) = named else {
        return Ok(None);
    };
    let no_proxy = set("no_proxy").or_else(|| set("NO_PROXY"));
    if no_proxy.is_some_and(|(_, list)| no_proxy_matches(&list, &endpoint.host)) {
        return Ok(None);
    }
    let url = ProxyUrl::parse(&value).map_err(|reason| ConfigError::Proxy { variable, reason })?;
    Ok(Some(ProxyChoice { url, variable }))
}

/// Whether a `NO_PROXY` list names `host`, by curl's rules: entries separated by
/// commas (or spaces); `*` alone matches every host; a host name matches an entry
/// equal to it or a domain it is in (`example.com` and `.example.com` both match
/// `api.example.com`); an IP address matches an equal entry or a CIDR range
/// (`10.0.0.0/8`). Case and a trailing dot do not matter.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip = host.parse::<IpAddr>().ok();
    let entries = list
        .split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for entry in entries {
        if entry == "*" {
            return true;
        }
        let entry = entry.to_ascii_lowercase();
        let entry = entry
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.');
        if let Some(ip) = host_ip {
            if ip_matches(ip, entry) {
                return true;
            }
            continue;
        }
        let domain = entry
            .strip_prefix("*.")
            .or_else(|| entry.strip_prefix('.'))
            .unwrap_or(entry);
        if domain.is_empty() {
            continue;
        }
        if host == domain
            || (host.len() > domain.len()
                && host.ends_with(domain)
                && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
        {
            return true;
        }
    }
    false
}

/// Whether `ip` is the address `entry` names, or in the range `entry/bits`.
fn ip_matches(ip: IpAddr, entry: &str) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(bits) => (a, Some(bits)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// `%XX` escapes decoded, as in the user and password of a URL.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Why a connection to the service could not be set up, beyond the TCP connect.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The proxy answered the `CONNECT` with another status than 200.
    #[error("the proxy answered the tunnel request with {status_line:?}")]
    TunnelRefused { status: u16, status_line: String },
    /// The proxy connection failed before the tunnel opened (timeout, reset).
    #[error("opening the tunnel: {0}")]
    TunnelIo(#[source] io::Error),
    /// The TLS handshake with the service failed.
    #[error("TLS handshake: {0}")]
    Handshake(#[source] io::Error),
}

impl ConnectError {
    fn into_agent_error(self) -> ureq::Error {
        io::Error::other(self).into()
    }
}

/// Opens the client's TLS sessions, through a `CONNECT` tunnel when a proxy is set.
pub(crate) struct Connector {
    tls: Arc<rustls::ClientConfig>,
    tunnel: Option<Tunnel>,
}

/// Where a tunnel goes and how the proxy is asked for it.
struct Tunnel {
    /// The endpoint's port; the host is the name the agent connects to.
    port: u16,
    authorization: Option<String>,
}

impl Connector {
    /// A connector trusting `tls`; with `proxy`, tunnelling to port `port` of the
    /// host the agent names.
    pub(crate) fn new(
        tls: Arc<rustls::ClientConfig>,
        proxy: Option<&ProxyUrl>,
        port: u16,
    ) -> Connector {
        Connector {
            tls,
            tunnel: proxy.map(|p| Tunnel {
                port,
                authorization: p.authorization(),
            }),
        }
    }
}

impl Tunnel {
    /// Asks the proxy on `io` for a tunnel to `host` and reads its answer.
    fn open(&self, host: &str, io: &mut dyn ureq::ReadWrite) -> Result<(), ConnectError> {
        let mut request = format!(
            "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {agent}\r\n",
            port = self.port,
            agent = concat!("faceenroll/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(auth) = &self.authorization {
            request.push_str("Proxy-Authorization: ");
            request.push_str(auth);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        io.write_all(request.as_bytes())
            .and_then(|()| io.flush())
            .map_err(ConnectError::TunnelIo)?;
        // Read the answer's head byte by byte: what follows it belongs to the TLS
        // session and must stay unread.
        let mut reader = io::BufReader::with_capacity(1, io);
        let mut status_line = String::new();
        reader
            .read_line(&mut status_line)
            .map_err(ConnectError::TunnelIo)?;
        loop {
            let mut line = String::new();
            let n = reader
                .read_line(&mut line)
                .map_err(ConnectError::TunnelIo)?;
            if n == 0 {
                return Err(ConnectError::TunnelIo(io::ErrorKind::UnexpectedEof.into()));
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let status_line = status_line.trim_end().to_owned();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err(ConnectError::TunnelRefused {
                status,
                status_line,
            });
        }
        Ok(())
    }
}

impl ureq::TlsConnector for Connector {
    fn connect(
        &self,
        dns_name: &str,
        mut io: Box<dyn ureq::ReadWrite>,
    ) -> Result<Box<dyn ureq::ReadWrite>, ureq::Error> {
        if let Some(tunnel) = &self.tunnel {
            tunnel
                .open(dns_name, io.as_mut())
                .map_err(ConnectError::into_agent_error)?;
        }
        let host = dns_name.trim_start_matches('[').trim_end_matches(']');
        let handshake = |e: io::Error| ConnectError::Handshake(e).into_agent_error();
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| handshake(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
        let mut session = rustls::ClientConnection::new(Arc::clone(&self.tls), name)
            .map_err(|e| handshake(io::Error::other(e)))?;
        session.complete_io(&mut io).map_err(handshake)?;
        Ok(Box::new(TlsStream(rustls::StreamOwned::new(session, io))))
    }
}

/// A TLS session over the agent's connection.
struct TlsStream(rustls::StreamOwned<rustls::ClientConnection, Box<dyn ureq::ReadWrite>>);

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsStream")
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ureq::ReadWrite for TlsStream {
    fn socket(&self) -> Option<&TcpStream> {
        self.0.get_ref().socket()
    }
}

/// `agent` reaching `endpoint` with TLS settings `tls`, through `proxy` if one is
/// given: an https endpoint through a tunnel the connector opens, a plain http one by
/// handing the requests to the proxy to forward. The service's client and the
/// monitoring pings go out this one way.
pub(crate) fn through_proxy(
    mut agent: ureq::AgentBuilder,
    endpoint: &Endpoint,
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<&ProxyUrl>,
) -> Result<ureq::AgentBuilder, ConfigError> {
    let port = endpoint
        .port
        .unwrap_or(if endpoint.https { 443 } else { 80 });
    agent = agent.tls_connector(Arc::new(Connector::new(
        tls,
        proxy.filter(|_| endpoint.https),
        port,
    )));
    Ok(match proxy {
        Some(proxy) if endpoint.https => agent.resolver(ToProxy(proxy.clone())),
        Some(proxy) => {
            let agent =
                agent.proxy(
                    proxy
                        .to_agent_proxy()
                        .map_err(|reason| ConfigError::Proxy {
                            variable: "the proxy setting",
                            reason,
                        })?,
                );
            // The agent sends the URL's credentials on a CONNECT only; a forwarded
            // request carries them itself, or the proxy answers 407 to every call.
            match proxy.authorization() {
                Some(value) => agent.middleware(ProxyAuthorization(value)),
                None => agent,
            }
        }
        None => agent,
    })
}

/// Adds the proxy's `Proxy-Authorization` to every request the proxy forwards
/// (plain-http endpoints).
struct ProxyAuthorization(String);

impl ureq::Middleware for ProxyAuthorization {
    fn handle(
        &self,
        request: ureq::Request,
        next: ureq::MiddlewareNext<'_>,
    ) -> Result<ureq::Response, ureq::Error> {
        next.handle(request.set("Proxy-Authorization", &self.0))
    }
}

/// Resolves every name to the proxy's addresses: the agent then connects to the
/// proxy, and [`Connector`] opens the tunnel on that connection.
pub(crate) struct ToProxy(pub(crate) ProxyUrl);

impl ureq::Resolver for ToProxy {
    fn resolve(&self, _netloc: &str) -> io::Result<Vec<SocketAddr>> {
        Ok(self.0.netloc().to_socket_addrs()?.collect())
    }
}

/// The TLS settings of the client: the bundled Mozilla roots plus the CA
/// certificates of `ca_file`, if given.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            roots.add(cert).map_err(|e| ca_error(path, e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file; a file with none is refused.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ca_error(path, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(ca_error(
            path,
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(certs)
}

fn ca_error(path: &Path, reason: String) -> ConfigError {
    ConfigError::CaCert {
        path: PathBuf::from(path),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env as env;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    fn chosen(url: &str, pairs: &[(&str, &str)]) -> Option<String> {
        proxy_for(&endpoint(url), &env(pairs))
            .unwrap()
            .map(|c| format!("{} {}", c.variable, c.url))
    }

    #[test]
    fn the_scheme_of_the_endpoint_picks_the_variable() {
        let all = [
            ("HTTPS_PROXY", "http://secure:3128"),
            ("HTTP_PROXY", "http://plain:3128"),
            ("ALL_PROXY", "http://any:3128"),
        ];
        assert_eq!(
            chosen("https://api.example.com", &all).as_deref(),
            Some("HTTPS_PROXY http://secure:3128")
        );
        assert_eq!(
            chosen("http://api.example.com", &all).as_deref(),
            Some("HTTP_PROXY http://plain:3128")
        );
        assert_eq!(
            chosen("https://api.example.com", &all[1..]).as_deref(),
            Some("ALL_PROXY http://any:3128"),
            "HTTP_PROXY is not used for https"
        );
        assert_eq!(chosen("https://api.example.com", &[]), None);
    }

    #[test]
    fn lower_case_wins_and_empty_is_unset() {
        let pairs = [
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
        ];
        assert_eq!(
            chosen("https://h", &pairs).as_deref(),
            Some("https_proxy http://lower:1")
        );
        let pairs = [("https_proxy", ""), ("HTTPS_PROXY", "http://upper:2")];
        assert_eq!(
            chosen("https://h", &pairs).as_deref(),
            Some("HTTPS_PROXY http://upper:2")
        );
        assert_eq!(chosen("https://h", &[("HTTPS_PROXY", "  ")]), None);
    }

    #[test]
    fn no_proxy_sends_named_hosts_direct() {
        let pairs = [
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("NO_PROXY", "internal.example, 127.0.0.1"),
        ];
        assert_eq!(chosen("https://api.internal.example", &pairs), None);
        assert_eq!(chosen("https://127.0.0.1:8443", &pairs), None);
        assert!(chosen("https://api.example.com", &pairs).is_some());
        let lower = [
            ("HTTPS_PROXY", "http://proxy:3128"),
            ("no_proxy", "*"),
            ("NO_PROXY", "nothing"),
        ];
        assert_eq!(chosen("https://anything.example", &lower), None);
    }

    #[test]
    fn no_proxy_rules_are_curls() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything.example", true),
            ("example.com", "example.com", true),
            ("example.com", "api.example.com", true),
            (".example.com", "api.example.com", true),
            (".example.com", "example.com", true),
            ("*.example.com", "api.example.com", true),
            ("example.com", "badexample.com", false),
            ("example.com", "example.com.evil", false),
            ("Example.COM.", "API.example.com.", true),
            ("a.com,b.com", "x.b.com", true),
            ("a.com b.com", "b.com", true),
            ("", "example.com", false),
            ("*.", "example.com", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("10.0.0.0/8", "10.20.30.40", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("0.0.0.0/0", "192.0.2.1", true),
            ("::1", "::1", true),
            ("[::1]", "[::1]", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("127.0.0.1", "localhost", false),
            ("localhost", "127.0.0.1", false),
            ("10.0.0.0/x", "10.0.0.1", false),
        ];
        for (list, host, expected) in cases {
            assert_eq!(
                no_proxy_matches(list, host),
                *expected,
                "NO_PROXY={list:?} host {host:?}"
            );
        }
    }

    #[test]
    fn proxy_urls_are_parsed_as_curl_does() {
        let p = ProxyUrl::parse("proxy.corp:8080").unwrap();
        assert_eq!(p.to_string(), "http://proxy.corp:8080");
        assert_eq!(
            ProxyUrl::parse("http://Proxy.Corp").unwrap().to_string(),
            "http://proxy.corp:1080"
        );
        assert_eq!(
            ProxyUrl::parse("http://[::1]:3128/").unwrap().to_string(),
            "http://[::1]:3128"
        );
        for bad in [
            "socks5://p:1080",
            "https://p:443",
            "http://:3128",
            "http://p:x",
        ] {
            assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_credentials_are_never_shown() {
        let pairs = [("HTTPS_PROXY", "http://alice:s3cret-pw@proxy:3128")];
        let choice = proxy_for(&endpoint("https://h"), &env(&pairs))
            .unwrap()
            .unwrap();
        assert!(choice.url.has_credentials());
        for shown in [
            choice.to_string(),
            format!("{choice:?}"),
            choice.url.to_string(),
        ] {
            assert!(!shown.contains("s3cret-pw"), "{shown}");
            assert!(!shown.contains("alice"), "{shown}");
        }
        assert_eq!(
            choice.to_string(),
            "http://proxy:3128 (from HTTPS_PROXY, with credentials)"
        );
        assert!(choice.url.to_agent_proxy().is_ok());
    }

    #[test]
    fn a_bad_proxy_names_its_variable() {
        let err =
            proxy_for(&endpoint("https://h"), &env(&[("ALL_PROXY", "socks5://p")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ALL_PROXY"), "{text}");
        assert!(text.contains("socks5"), "{text}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = tls_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = tls_config(Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        assert!(tls_config(None).is_ok());
    }
}
