//! Where the service settings come from, resolved once into the client's
//! [`ClientConfig`].
//!
//! Each setting is taken from the first source that has it:
//!
//! 1. command-line flags ([`ServiceArgs`], flattened into every command that calls
//!    the service);
//! 2. the environment (`FACEENROLL_ENDPOINT`, `FACEENROLL_APPID`, `FACEENROLL_BUCKET`);
//! 3. the config file given with `--config`, table `[service]`;
//! 4. the defaults (the public endpoint, an empty bucket, the client's timeouts).
//!
//! The CA file falls back on `SSL_CERT_FILE` after these, as OpenSSL and curl read
//! it; the proxy comes only from the environment's proxy variables, read as curl
//! reads them ([`crate::service::network`]).
//!
//! Credentials are the exception: they never come from a flag, only from
//! `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY` or from the config file, and a
//! config file that holds a secret is refused unless only its owner can read it.
//!
//! The file is TOML. Other tables (`[enroll]`, ...) belong to other parts of the
//! program, which read them from the same [`ConfigFile`] with
//! [`ConfigFile::section`]:
//!
//! ```toml
//! [service]
//! endpoint = "https://recognition.image.myqcloud.com"
//! appid = "1250000000"
//! bucket = ""
//! secret_id = "AKID..."
//! secret_key = "..."
//! connect_timeout_secs = 10
//! read_timeout_secs = 60
//! signature_validity_secs = 14400
//! allow_insecure_http = false
//! ca_cert = "/etc/ssl/company-ca.pem"
//! ```

use crate::service::client::{
    ClientConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_READ_TIMEOUT,
    DEFAULT_SIGNATURE_VALIDITY,
};
use crate::service::client::{ConfigError, Endpoint};
use crate::service::network::{self, ProxyChoice, SSL_CERT_FILE_ENV};
use crate::service::sign::Credentials;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable that holds the SecretId.
pub const SECRET_ID_ENV: &str = "TENCENTCLOUD_SECRET_ID";
/// The environment variable that holds the SecretKey.
pub const SECRET_KEY_ENV: &str = "TENCENTCLOUD_SECRET_KEY";
/// The environment variable that names the endpoint.
pub const ENDPOINT_ENV: &str = "FACEENROLL_ENDPOINT";
/// The environment variable that names the AppID.
pub const APPID_ENV: &str = "FACEENROLL_APPID";
/// The environment variable that names the bucket.
pub const BUCKET_ENV: &str = "FACEENROLL_BUCKET";
/// The environment variable that names a PEM file of CA certificates to trust.
pub const CA_CERT_ENV: &str = "FACEENROLL_CA_CERT";

/// The flags every command that calls the service takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServiceArgs {
    #[arg(
        long,
        value_name = "URL",
        help = "The service endpoint [env: FACEENROLL_ENDPOINT] [default: \
                https://recognition.image.myqcloud.com]"
    )]
    pub endpoint: Option<String>,
    /// The AppID [env: FACEENROLL_APPID].
    #[arg(long)]
    pub appid: Option<String>,
    /// The bucket (legacy, usually empty) [env: FACEENROLL_BUCKET].
    #[arg(long)]
    pub bucket: Option<String>,
    #[arg(
        long,
        value_name = "PATH",
        env = "FACEENROLL_CONFIG",
        hide_env_values = true,
        help = "A TOML config file; its [service] table may hold the settings above and the \
                credentials (then it must be readable by its owner only)"
    )]
    pub config: Option<PathBuf>,
    /// Accept a plain http:// endpoint that is not on this machine (the signature
    /// then travels in clear text).
    #[arg(long)]
    pub insecure_http: bool,
    /// Seconds to wait for a connection [default: 10].
    #[arg(
        long,
        value_name = "SECS",
        env = "FACEENROLL_CONNECT_TIMEOUT",
        hide_env_values = true
    )]
    pub connect_timeout: Option<u64>,
    /// Seconds to wait for an answer [default: 60].
    #[arg(
        long,
        value_name = "SECS",
        env = "FACEENROLL_READ_TIMEOUT",
        hide_env_values = true
    )]
    pub read_timeout: Option<u64>,
    /// Seconds each signature is valid, at most three months [default: 14400].
    #[arg(
        long,
        value_name = "SECS",
        env = "FACEENROLL_SIGNATURE_VALIDITY",
        hide_env_values = true
    )]
    pub signature_validity: Option<u64>,
    /// A PEM file of CA certificates to trust besides the bundled Mozilla roots, e.g.
    /// a company CA [env: FACEENROLL_CA_CERT, then SSL_CERT_FILE].
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// The `[service]` table of the config file; also the form `--print-config` prints
/// the resolved service settings in ([`resolved_section`]), without the credentials.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A string, or a number as AppIDs are often written.
    #[serde(
        default,
        deserialize_with = "string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub appid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing)]
    pub secret_id: Option<String>,
    #[serde(skip_serializing)]
    pub secret_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_validity_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_insecure_http: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(Option::<Either>::deserialize(d)?.map(|v| match v {
        Either::Text(t) => t,
        Either::Number(n) => n.to_string(),
    }))
}

impl std::fmt::Debug for ServiceSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSection")
            .field("endpoint", &self.endpoint)
            .field("appid", &self.appid)
            .field("bucket", &self.bucket)
            .field("secret_id", &self.secret_id.as_ref().map(|_| ".."))
            .field("secret_key", &self.secret_key.as_ref().map(|_| ".."))
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("read_timeout_secs", &self.read_timeout_secs)
            .field("signature_validity_secs", &self.signature_validity_secs)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

impl ServiceSection {
    fn holds_secret(&self) -> bool {
        self.secret_id.is_some() || self.secret_key.is_some()
    }
}

/// Why the configuration could not be resolved. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {} is not valid TOML: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("config file {}, table [{table}]: {message}", path.display())]
    Section {
        path: PathBuf,
        table: String,
        message: String,
    },
    #[error(
        "config file {} holds credentials but its mode is {mode:04o}, readable by group or \
         others; run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "no AppID: pass --appid, set {APPID_ENV}, or set appid in the [service] table of the \
         config file"
    )]
    NoAppid,
    #[error(
        "no credentials: set {SECRET_ID_ENV} and {SECRET_KEY_ENV}, or secret_id and secret_key \
         in the [service] table of a config file readable only by its owner"
    )]
    NoCredentials,
    #[error("{set} is set but {unset} is not; set both")]
    HalfCredentials {
        set: &'static str,
        unset: &'static str,
    },
    #[error("the config file sets {set} but not {unset}; set both")]
    HalfFileCredentials {
        set: &'static str,
        unset: &'static str,
    },
    #[error(transparent)]
    Network(#[from] ConfigError),
}

/// A loaded config file: its `[service]` table and the whole document for the other
/// tables.
#[derive(Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub service: ServiceSection,
    raw: toml::Table,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl ConfigFile {
    /// Reads and checks a config file: valid TOML, a well-formed `[service]` table,
    /// and, if it holds credentials, readable by its owner only.
    pub fn load(path: &Path) -> Result<ConfigFile, ResolveError> {
        let text = std::fs::read_to_string(path).map_err(|source| ResolveError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = ConfigFile::parse(path, &text)?;
        if file.service.holds_secret() {
            check_private(path)?;
        }
        Ok(file)
    }

    /// Parses config text (no permission check).
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ResolveError> {
        let raw: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ResolveError::Parse {
                path: path.to_owned(),
                message: e.message().to_owned(),
            })?;
        let mut file = ConfigFile {
            path: path.to_owned(),
            service: ServiceSection::default(),
            raw,
        };
        file.service = file.section("service")?.unwrap_or_default();
        Ok(file)
    }

    /// Reads table `name` into `T`, if the file has it.
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ResolveError> {
        let Some(value) = self.raw.get(name) else {
            return Ok(None);
        };
        value
            .clone()
            .try_into()
            .map(Some)
            .map_err(|e: toml::de::Error| ResolveError::Section {
                path: self.path.clone(),
                table: name.to_owned(),
                message: e.message().to_owned(),
            })
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ResolveError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| ResolveError::Read {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ResolveError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), ResolveError> {
    Ok(())
}

/// The way to the service: the endpoint, the CA file and the proxy in effect. They
/// need no account, so `--print-config` can show them.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub endpoint: String,
    pub ca_cert: Option<PathBuf>,
    pub proxy: Option<ProxyChoice>,
}

impl NetworkSettings {
    /// Resolves them: flags > environment > file > defaults; the CA file then
    /// `SSL_CERT_FILE`; the proxy from the proxy variables for this endpoint.
    pub fn resolve(
        args: &ServiceArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&ConfigFile>,
    ) -> Result<NetworkSettings, ResolveError> {
        let section = file.map(|f| &f.service);
        let endpoint = args
            .endpoint
            .clone()
            .or_else(|| env(ENDPOINT_ENV))
            .or_else(|| section.and_then(|s| s.endpoint.clone()))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let ca_cert = args
            .ca_cert
            .clone()
            .or_else(|| env(CA_CERT_ENV).map(PathBuf::from))
            .or_else(|| section.and_then(|s| s.ca_cert.clone()))
            .or_else(|| env(SSL_CERT_FILE_ENV).map(PathBuf::from));
        // A malformed endpoint is reported by the client, with its reason.
        let proxy = match Endpoint::parse(&endpoint) {
            Ok(parsed) => network::proxy_for(&parsed, env)?,
            Err(_) => None,
        };
        Ok(NetworkSettings {
            endpoint,
            ca_cert,
            proxy,
        })
    }

    /// The settings as comment lines, for `--print-config`; proxy credentials are
    /// left out.
    pub fn comment(&self) -> String {
        let ca = self
            .ca_cert
            .as_ref()
            .map_or("none (the bundled Mozilla roots only)".to_owned(), |p| {
                p.display().to_string()
            });
        let proxy = self
            .proxy
            .as_ref()
            .map_or("none (direct)".to_owned(), ProxyChoice::to_string);
        format!(
            "# endpoint: {}\n# CA certificates: {ca}\n# proxy: {proxy}\n",
            self.endpoint
        )
    }
}

/// Resolves the client configuration from the flags, the process environment and
/// the config file the flags name.
pub fn client_config_from_args(args: &ServiceArgs) -> Result<ClientConfig, ResolveError> {
    let file = args.config.as_deref().map(ConfigFile::load).transpose()?;
    // An empty variable counts as unset.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    client_config(args, &env, file.as_ref())
}

/// The service settings resolved from given sources, flags > environment > file >
/// defaults, every key filled except the AppID when none is given. The credentials
/// are left out: this is what `--print-config` prints as the `[service]` table.
pub fn resolved_section(
    args: &ServiceArgs,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<ServiceSection, ResolveError> {
    let empty = ServiceSection::default();
    let section = file.map_or(&empty, |f| &f.service);
    let pick = |flag: &Option<String>, var: &str, from_file: &Option<String>| {
        flag.clone()
            .or_else(|| env(var))
            .or_else(|| from_file.clone())
    };
    let network = NetworkSettings::resolve(args, env, file)?;
    let secs = |flag: Option<u64>, from_file: Option<u64>, default: Duration| {
        Some(flag.or(from_file).unwrap_or(default.as_secs()))
    };
    Ok(ServiceSection {
        endpoint: Some(network.endpoint),
        appid: pick(&args.appid, APPID_ENV, &section.appid).filter(|a| !a.is_empty()),
        bucket: Some(pick(&args.bucket, BUCKET_ENV, &section.bucket).unwrap_or_default()),
        secret_id: None,
        secret_key: None,
        connect_timeout_secs: secs(
            args.connect_timeout,
            section.connect_timeout_secs,
            DEFAULT_CONNECT_TIMEOUT,
        ),
        read_timeout_secs: secs(
            args.read_timeout,
            section.read_timeout_secs,
            DEFAULT_READ_TIMEOUT,
        ),
        signature_validity_secs: secs(
            args.signature_validity,
            section.signature_validity_secs,
            DEFAULT_SIGNATURE_VALIDITY,
        ),
        allow_insecure_http: Some(
            args.insecure_http || section.allow_insecure_http.unwrap_or(false),
        ),
        ca_cert: network.ca_cert,
    })
}

/// Resolves the client configuration from given sources: the settings of
/// [`resolved_section`], an AppID, and the credentials from the environment or the
/// file. The settings are the fields of [`ClientConfig`]; nothing is kept twice.
pub fn client_config(
    args: &ServiceArgs,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<ClientConfig, ResolveError> {
    let resolved = resolved_section(args, env, file)?;
    let appid = resolved.appid.ok_or(ResolveError::NoAppid)?;
    let empty = ServiceSection::default();
    let credentials = resolve_credentials(env, file.map_or(&empty, |f| &f.service))?;
    let proxy = NetworkSettings::resolve(args, env, file)?.proxy;
    // Every value is filled by `resolved_section`; the defaults are not reached.
    let secs = |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_secs);
    Ok(ClientConfig {
        endpoint: resolved
            .endpoint
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        appid,
        bucket: resolved.bucket.unwrap_or_default(),
        credentials,
        connect_timeout: secs(resolved.connect_timeout_secs, DEFAULT_CONNECT_TIMEOUT),
        read_timeout: secs(resolved.read_timeout_secs, DEFAULT_READ_TIMEOUT),
        signature_validity: secs(resolved.signature_validity_secs, DEFAULT_SIGNATURE_VALIDITY),
        allow_insecure_http: resolved.allow_insecure_http.unwrap_or(false),
        ca_cert: resolved.ca_cert,
        proxy: proxy.map(|p| p.url),
    })
}

/// Credentials from the environment (both variables) or else the file (both keys).
fn resolve_credentials(
    env: &dyn Fn(&str) -> Option<String>,
    section: &ServiceSection,
) -> Result<Credentials, ResolveError> {
    let id = env(SECRET_ID_ENV).filter(|v| !v.is_empty());
    let key = env(SECRET_KEY_ENV).filter(|v| !v.is_empty());
    match (id, key) {
        (Some(id), Some(key)) => return Ok(Credentials::new(id, key)),
        (Some(_), None) => {
            return Err(ResolveError::HalfCredentials {
                set: SECRET_ID_ENV,
                unset: SECRET_KEY_ENV,
            })
        }
        (None, Some(_)) => {
            return Err(ResolveError::HalfCredentials {
                set: SECRET_KEY_ENV,
                unset: SECRET_ID_ENV,
            })
        }
        (None, None) => {}
    }
    match (&section.secret_id, &section.secret_key) {
        (Some(id), Some(key)) if !id.is_empty() && !key.is_empty() => {
            Ok(Credentials::new(id.clone(), key.clone()))
        }
        (Some(_), None) => Err(ResolveError::HalfFileCredentials {
            set: "secret_id",
            unset: "secret_key",
        }),
        (None, Some(_)) => Err(ResolveError::HalfFileCredentials {
            set: "secret_key",
            unset: "secret_id",
        }),
        _ => Err(ResolveError::NoCredentials),
    }
}

/// An environment of the given variables only, for tests of settings resolution.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::test_env as env;
    use super::*;

    const CREDS: &[(&str, &str)] = &[(SECRET_ID_ENV, "AKIDenv"), (SECRET_KEY_ENV, "keyenv")];

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/etc/faceenroll.toml"), text).unwrap()
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let f = file(
            "[service]\nendpoint = \"https://file.example\"\nappid = \"file-app\"\n\
             bucket = \"file-bucket\"\nread_timeout_secs = 5\n",
        );
        let mut e = CREDS.to_vec();
        // File only.
        let o = client_config(&ServiceArgs::default(), &env(&e), Some(&f)).unwrap();
        assert_eq!(o.endpoint, "https://file.example");
        assert_eq!(o.appid, "file-app");
        assert_eq!(o.bucket, "file-bucket");
        assert_eq!(o.read_timeout, Duration::from_secs(5));
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        // Environment over file.
        e.push((ENDPOINT_ENV, "https://env.example"));
        e.push((APPID_ENV, "env-app"));
        let o = client_config(&ServiceArgs::default(), &env(&e), Some(&f)).unwrap();
        assert_eq!(o.endpoint, "https://env.example");
        assert_eq!(o.appid, "env-app");
        assert_eq!(o.bucket, "file-bucket");
        // Flags over environment.
        let args = ServiceArgs {
            endpoint: Some("https://flag.example".into()),
            bucket: Some("flag-bucket".into()),
            read_timeout: Some(7),
            ..ServiceArgs::default()
        };
        let o = client_config(&args, &env(&e), Some(&f)).unwrap();
        assert_eq!(o.endpoint, "https://flag.example");
        assert_eq!(o.appid, "env-app");
        assert_eq!(o.bucket, "flag-bucket");
        assert_eq!(o.read_timeout, Duration::from_secs(7));
        // Defaults with no file.
        let args = ServiceArgs {
            appid: Some("a".into()),
            ..ServiceArgs::default()
        };
        let o = client_config(&args, &env(CREDS), None).unwrap();
        assert_eq!(o.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(o.bucket, "");
        assert_eq!(o.signature_validity, DEFAULT_SIGNATURE_VALIDITY);
        assert!(!o.allow_insecure_http);
    }

    #[test]
    fn credentials_come_from_the_environment_first_then_the_file() {
        let f =
            file("[service]\nappid = \"a\"\nsecret_id = \"AKIDfile\"\nsecret_key = \"keyfile\"\n");
        let o = client_config(&ServiceArgs::default(), &env(CREDS), Some(&f)).unwrap();
        assert_eq!(o.credentials.secret_id(), "AKIDenv");
        assert_eq!(o.credentials.secret_key(), "keyenv");
        let o = client_config(&ServiceArgs::default(), &env(&[]), Some(&f)).unwrap();
        assert_eq!(o.credentials.secret_id(), "AKIDfile");
        assert_eq!(o.credentials.secret_key(), "keyfile");
    }

    #[test]
    fn missing_or_half_credentials_are_refused_by_name() {
        let args = ServiceArgs {
            appid: Some("a".into()),
            ..ServiceArgs::default()
        };
        let err = client_config(&args, &env(&[]), None).unwrap_err();
        assert!(matches!(err, ResolveError::NoCredentials));
        assert!(err.to_string().contains(SECRET_ID_ENV));
        let err = client_config(&args, &env(&[(SECRET_ID_ENV, "x")]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TENCENTCLOUD_SECRET_ID is set but TENCENTCLOUD_SECRET_KEY is not; set both"
        );
        let f = file("[service]\nsecret_key = \"k\"\n");
        let err = client_config(&args, &env(&[]), Some(&f)).unwrap_err();
        assert!(
            matches!(err, ResolveError::HalfFileCredentials { .. }),
            "{err}"
        );
    }

    #[test]
    fn an_appid_may_be_written_as_a_number() {
        let f = file("[service]\nappid = 1250000000\n");
        assert_eq!(f.service.appid.as_deref(), Some("1250000000"));
        let err =
            ConfigFile::parse(Path::new("/x/c.toml"), "[service]\nappid = true\n").unwrap_err();
        assert!(err.to_string().contains("/x/c.toml"), "{err}");
    }

    #[test]
    fn the_ca_file_comes_from_flag_env_file_then_ssl_cert_file() {
        let f = file("[service]\nappid = \"a\"\nca_cert = \"/file/ca.pem\"\n");
        let flag = ServiceArgs {
            ca_cert: Some("/flag/ca.pem".into()),
            ..ServiceArgs::default()
        };
        let all = [
            (CA_CERT_ENV, "/env/ca.pem"),
            (SSL_CERT_FILE_ENV, "/ssl/ca.pem"),
        ];
        let ca = |args: &ServiceArgs, pairs: &[(&str, &str)], f: Option<&ConfigFile>| {
            NetworkSettings::resolve(args, &env(pairs), f)
                .unwrap()
                .ca_cert
                .map(|p| p.display().to_string())
        };
        let none = ServiceArgs::default();
        assert_eq!(ca(&flag, &all, Some(&f)).as_deref(), Some("/flag/ca.pem"));
        assert_eq!(ca(&none, &all, Some(&f)).as_deref(), Some("/env/ca.pem"));
        assert_eq!(
            ca(&none, &all[1..], Some(&f)).as_deref(),
            Some("/file/ca.pem")
        );
        assert_eq!(ca(&none, &all[1..], None).as_deref(), Some("/ssl/ca.pem"));
        assert_eq!(ca(&none, &[], None), None);
        let mut pairs = CREDS.to_vec();
        pairs.push(all[0]);
        let o = client_config(&none, &env(&pairs), Some(&f)).unwrap();
        assert_eq!(o.ca_cert.as_deref(), Some(Path::new("/env/ca.pem")));
    }

    #[test]
    fn the_proxy_follows_the_endpoint_and_is_shown_without_credentials() {
        let proxied = [
            ("HTTPS_PROXY", "http://bob:hunter2@proxy.corp:3128"),
            ("NO_PROXY", ".internal"),
        ];
        let args = |endpoint: &str| ServiceArgs {
            endpoint: Some(endpoint.into()),
            ..ServiceArgs::default()
        };
        let n = NetworkSettings::resolve(&args("https://api.example.com"), &env(&proxied), None)
            .unwrap();
        let comment = n.comment();
        assert!(
            comment
                .contains("# proxy: http://proxy.corp:3128 (from HTTPS_PROXY, with credentials)"),
            "{comment}"
        );
        assert!(
            !comment.contains("hunter2") && !comment.contains("bob"),
            "{comment}"
        );
        let n =
            NetworkSettings::resolve(&args("https://svc.internal"), &env(&proxied), None).unwrap();
        assert!(n.proxy.is_none());
        assert!(n.comment().contains("# proxy: none (direct)"));
        let err = NetworkSettings::resolve(
            &args("https://api.example.com"),
            &env(&[("HTTPS_PROXY", "socks5://p:1080")]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("HTTPS_PROXY"), "{err}");
    }

    #[test]
    fn an_appid_is_required() {
        let err = client_config(&ServiceArgs::default(), &env(CREDS), None).unwrap_err();
        assert!(matches!(err, ResolveError::NoAppid));
        assert!(err.to_string().contains("--appid"));
    }

    #[test]
    fn insecure_http_from_flag_or_file() {
        let args = ServiceArgs {
            appid: Some("a".into()),
            insecure_http: true,
            ..ServiceArgs::default()
        };
        assert!(
            client_config(&args, &env(CREDS), None)
                .unwrap()
                .allow_insecure_http
        );
        let f = file("[service]\nappid = \"a\"\nallow_insecure_http = true\n");
        let o = client_config(&ServiceArgs::default(), &env(CREDS), Some(&f)).unwrap();
        assert!(o.allow_insecure_http);
    }

    #[test]
    fn unknown_keys_and_bad_toml_name_the_file() {
        let err =
            ConfigFile::parse(Path::new("/x/c.toml"), "[service]\nendpont = \"x\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/x/c.toml") && msg.contains("endpont"),
            "{msg}"
        );
        let err = ConfigFile::parse(Path::new("/x/c.toml"), "[service\n").unwrap_err();
        assert!(err.to_string().contains("/x/c.toml"), "{err}");
    }

    #[test]
    fn debug_output_hides_file_secrets() {
        let f = file("[service]\nsecret_id = \"AKIDfile\"\nsecret_key = \"keyfile\"\n");
        let shown = format!("{f:?}");
        assert!(
            !shown.contains("keyfile") && !shown.contains("AKIDfile"),
            "{shown}"
        );
    }

    #[test]
    fn other_tables_are_left_to_their_readers() {
        #[derive(Deserialize)]
        struct Enroll {
            workers: u32,
        }
        let f = file("[service]\nappid = \"a\"\n\n[enroll]\nworkers = 8\n");
        assert_eq!(f.service.appid.as_deref(), Some("a"));
        let enroll: Enroll = f.section("enroll").unwrap().unwrap();
        assert_eq!(enroll.workers, 8);
        assert!(f.section::<Enroll>("absent").unwrap().is_none());
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_secrets_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faceenroll.toml");
        std::fs::write(
            &path,
            "[service]\nappid = \"a\"\nsecret_id = \"AKIDfile\"\nsecret_key = \"keyfile\"\n",
        )
        .unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = ConfigFile::load(&path).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, ResolveError::Permissions { .. }), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("{mode:04o}")), "{msg}");
            assert!(!msg.contains("keyfile"), "{msg}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = ConfigFile::load(&path).unwrap();
        assert_eq!(f.service.secret_key.as_deref(), Some("keyfile"));

        // Without secrets, a readable file is fine.
        std::fs::write(&path, "[service]\nappid = \"a\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ConfigFile::load(&path).is_ok());
    }
}
