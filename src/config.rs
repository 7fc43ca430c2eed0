//! Where the service settings come from, resolved once into the client's
//! [`ClientConfig`], and the config file they and the other settings are read from.
//!
//! Each setting is taken from the first source that has it: a command-line flag
//! (`ServiceArgs`, flattened into every command that calls the service), the
//! environment (`FACEENROLL_ENDPOINT`, `FACEENROLL_APPID`, ...), the config file
//! given with `--config`, table `[service]`, then the default (the public endpoint,
//! an empty bucket, the client's timeouts). The settings are declared, with their
//! flags, variables, keys and defaults, in the table of [`crate::cli::settings`],
//! which also layers them ([`ServiceSettings`]); this module adds what is not a
//! setting of the table:
//!
//! - the CA file falls back on `SSL_CERT_FILE` after these, as OpenSSL and curl read
//!   it; the proxy comes only from the environment's proxy variables, read as curl
//!   reads them ([`crate::service::network`]);
//! - credentials never come from a flag, only from `TENCENTCLOUD_SECRET_ID` /
//!   `TENCENTCLOUD_SECRET_KEY` or from the config file, and a config file that holds
//!   a secret is refused unless only its owner can read it.
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

use crate::cli::settings::{EnrollSection, ServiceArgs, ServiceSection, ServiceSettings};
use crate::service::client::ClientConfig;
use crate::service::client::{ConfigError, Endpoint};
use crate::service::network::{self, ProxyChoice, SSL_CERT_FILE_ENV};
use crate::service::sign::Credentials;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable that holds the SecretId.
pub const SECRET_ID_ENV: &str = "TENCENTCLOUD_SECRET_ID";
/// The environment variable that holds the SecretKey.
pub const SECRET_KEY_ENV: &str = "TENCENTCLOUD_SECRET_KEY";
/// The environment variable that names the AppID.
pub const APPID_ENV: &str = "FACEENROLL_APPID";
/// The variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "FACEENROLL_CONFIG";

/// A credential read from the config file: never shown by `Debug`, never written
/// back.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for signing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
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
    #[error("config file {}{at}: [{table}] {key}: {message}", path.display())]
    Value {
        path: PathBuf,
        at: String,
        table: String,
        key: String,
        message: String,
    },
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
    /// A table the program does not read, or a key outside any table: the file would
    /// otherwise be taken as written while the setting is ignored.
    #[error(
        "config file {}{}: {message}",
        path.display(),
        line.map(|l| format!(", line {l}")).unwrap_or_default()
    )]
    Unknown {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error(transparent)]
    Network(#[from] ConfigError),
}

/// The tables of the config file, each read by its part of the program.
const TABLES: [&str; 2] = [ServiceSection::TABLE, EnrollSection::TABLE];

/// Refuses what the file holds beside its tables: a table of another name (a
/// misspelled `[servce]`) or a key outside any table (`state = ...` above the first
/// table). Both would be ignored, and the job would run with its defaults.
fn check_top_level(path: &Path, text: &str, raw: &toml::Table) -> Result<(), ResolveError> {
    let tables = || TABLES.map(|t| format!("[{t}]")).join(" and ");
    for (name, value) in raw {
        let known = TABLES.contains(&name.as_str());
        // `[[name]]` makes an array of tables.
        let is_table = match value {
            toml::Value::Table(_) => true,
            toml::Value::Array(items) => line_of(text, |l| table_header_names(l, name))
                .is_some_and(|_| items.iter().all(toml::Value::is_table)),
            _ => false,
        };
        let message = match value {
            toml::Value::Table(_) if known => continue,
            _ if known => format!("{name} must be a table, [{name}]"),
            _ if is_table => {
                let close = TABLES
                    .iter()
                    .find(|t| edit_distance(t, name) <= 2)
                    .map(|t| format!(" (did you mean [{t}]?)"))
                    .unwrap_or_default();
                let line = line_of(text, |l| table_header_names(l, name));
                return Err(ResolveError::Unknown {
                    path: path.to_owned(),
                    line,
                    message: format!(
                        "unknown table [{name}]{close}; the file's tables are {}",
                        tables()
                    ),
                });
            }
            _ => {
                // Name the table the key belongs in, when one takes it.
                let one = toml::Table::from_iter([(name.clone(), value.clone())]);
                let home = if toml::Value::Table(one.clone())
                    .try_into::<EnrollSection>()
                    .is_ok()
                {
                    format!("; it belongs in [{}]", EnrollSection::TABLE)
                } else if toml::Value::Table(one).try_into::<ServiceSection>().is_ok() {
                    format!("; it belongs in [{}]", ServiceSection::TABLE)
                } else {
                    format!("; settings go in {}", tables())
                };
                format!("the key {name} is outside any table{home}")
            }
        };
        let line = line_of(text, |l| key_names(l, name));
        return Err(ResolveError::Unknown {
            path: path.to_owned(),
            line,
            message,
        });
    }
    Ok(())
}

/// The number (from 1) of the first line of `text` that `matches`, for a message.
fn line_of(text: &str, matches: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines().position(|l| matches(l.trim())).map(|i| i + 1)
}

/// Whether a line is a header of table `name` (`[name]`, `[[name]]`, `[name.sub]`).
fn table_header_names(line: &str, name: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let rest = rest.trim_start_matches('[').trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    rest.strip_prefix(name)
        .is_some_and(|after| after.trim_start().starts_with([']', '.', '"']))
}

/// Whether a line sets key `name` (`name = ...`, `name.sub = ...`).
fn key_names(line: &str, name: &str) -> bool {
    let line = line.strip_prefix('"').unwrap_or(line);
    line.strip_prefix(name)
        .is_some_and(|after| after.trim_start().starts_with(['=', '.', '"']))
}

/// The Levenshtein distance between two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A loaded config file: its `[service]` table and the whole document for the other
/// tables.
#[derive(Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub service: ServiceSection,
    raw: toml::Table,
    /// The file's text, to name the line of a bad value.
    text: String,
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
        if file.service.secret_id.is_some() || file.service.secret_key.is_some() {
            check_private(path)?;
        }
        Ok(file)
    }

    /// Parses config text (no permission check). A table other than `[service]` and
    /// `[enroll]`, or a key outside any table, is refused naming it and its line.
    pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ResolveError> {
        let raw: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ResolveError::Parse {
                path: path.to_owned(),
                message: e.message().to_owned(),
            })?;
        check_top_level(path, text, &raw)?;
        let mut file = ConfigFile {
            path: path.to_owned(),
            service: ServiceSection::default(),
            raw,
            text: text.to_owned(),
        };
        file.service = file.section(ServiceSection::TABLE)?.unwrap_or_default();
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
            .map_err(|e: toml::de::Error| self.section_error::<T>(name, value, &e))
    }

    /// A table that does not read as `T`, said in words: the first key whose value
    /// alone does not read (each key is optional), its line, and what was expected,
    /// rather than serde's `invalid type: string "four", expected usize`.
    fn section_error<T: DeserializeOwned>(
        &self,
        name: &str,
        value: &toml::Value,
        error: &toml::de::Error,
    ) -> ResolveError {
        let bad = value.as_table().and_then(|table| {
            table.iter().find_map(|(key, v)| {
                let alone: toml::Table = [(key.clone(), v.clone())].into_iter().collect();
                toml::Value::Table(alone)
                    .try_into::<T>()
                    .err()
                    .map(|e| (key.clone(), e))
            })
        });
        let Some((key, e)) = bad else {
            return ResolveError::Section {
                path: self.path.clone(),
                table: name.to_owned(),
                message: error.message().to_owned(),
            };
        };
        let line = key_line(&self.text, name, &key);
        let at = line.map_or_else(String::new, |l| format!(", line {l}"));
        ResolveError::Value {
            path: self.path.clone(),
            at,
            table: name.to_owned(),
            key,
            message: plain_serde_message(e.message()),
        }
    }
}

/// The line (from 1) of `key = ...` in table `[table]` of a config text.
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let header = format!("[{table}]");
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line.split('#').next().map(str::trim) == Some(header.as_str());
        } else if inside
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// serde's message about one value in words: "expected a whole number, got
/// \"four\"" for "invalid type: string \"four\", expected usize".
fn plain_serde_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let Some((got, expected)) = rest.split_once(", expected ") else {
        return message.to_owned();
    };
    let expected = match expected {
        "usize" | "u8" | "u16" | "u32" | "u64" => "a whole number",
        "a boolean" => "true or false",
        "a string" => "text in quotes",
        "a sequence" => "a list",
        other => other,
    };
    let got = got
        .strip_prefix("string ")
        .or_else(|| got.strip_prefix("integer "))
        .or_else(|| got.strip_prefix("floating point "))
        .or_else(|| got.strip_prefix("boolean "))
        .unwrap_or(got)
        .trim_matches('`');
    format!("expected {expected}, got {got}")
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
    /// Takes the endpoint and the CA file from the resolved settings, the CA file
    /// then from `SSL_CERT_FILE`, and the proxy from the proxy variables for this
    /// endpoint.
    pub fn resolve(
        settings: &ServiceSettings,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<NetworkSettings, ResolveError> {
        let endpoint = settings.endpoint.clone();
        let ca_cert = settings
            .ca_cert
            .clone()
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
            crate::redact::url_shown(&self.endpoint)
        )
    }
}

/// The config file to read: the one `--config` names, else the one [`CONFIG_ENV`]
/// names (an empty variable counts as unset).
pub fn config_path(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| env(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Resolves the client configuration from the flags, the process environment and
/// the config file the flags name.
pub fn client_config_from_args(args: &ServiceArgs) -> anyhow::Result<ClientConfig> {
    // An empty variable counts as unset.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let file = config_path(args.config.as_deref(), &env)
        .as_deref()
        .map(ConfigFile::load)
        .transpose()?;
    let settings = ServiceSettings::from_sources(args, &env, file.as_ref())?;
    Ok(client_config(&settings, &env, file.as_ref())?)
}

/// The resolved service settings as a `[service]` table, as `--print-config` prints
/// them: every key filled except the AppID when none is given, the CA file as the
/// client will read it, and never the credentials.
pub fn printed_section(settings: &ServiceSettings, network: &NetworkSettings) -> ServiceSection {
    let mut section = ServiceSection::default();
    settings.write_to(&mut section);
    if settings.appid.as_deref() == Some("") {
        section.appid = None;
    }
    section.ca_cert = network.ca_cert.clone();
    if let Some(crate::cli::settings::TextOrNumber::Text(endpoint)) = &mut section.endpoint {
        *endpoint = crate::redact::url_shown(endpoint);
    }
    section
}

/// The client configuration: the resolved settings, an AppID, the CA file and the
/// proxy ([`NetworkSettings`]), and the credentials from the environment or the
/// file. The settings are the fields of [`ClientConfig`]; nothing is kept twice.
pub fn client_config(
    settings: &ServiceSettings,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<ClientConfig, ResolveError> {
    let appid = settings
        .appid
        .clone()
        .filter(|a| !a.is_empty())
        .map(String::from)
        .ok_or(ResolveError::NoAppid)?;
    let empty = ServiceSection::default();
    let credentials = resolve_credentials(env, file.map_or(&empty, |f| &f.service))?;
    let network = NetworkSettings::resolve(settings, env)?;
    Ok(ClientConfig {
        endpoint: network.endpoint,
        appid,
        bucket: settings.bucket.clone(),
        credentials,
        connect_timeout: Duration::from_secs(settings.connect_timeout),
        read_timeout: Duration::from_secs(settings.read_timeout),
        signature_validity: Duration::from_secs(settings.signature_validity),
        allow_insecure_http: settings.insecure_http,
        ca_cert: network.ca_cert,
        proxy: network.proxy.map(|p| p.url),
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
        (Some(id), Some(key)) if !id.0.is_empty() && !key.0.is_empty() => {
            Ok(Credentials::new(id.0.clone(), key.0.clone()))
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
    use crate::service::client::{
        DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_SIGNATURE_VALIDITY,
    };
    const ENDPOINT_ENV: &str = "FACEENROLL_ENDPOINT";
    const CA_CERT_ENV: &str = "FACEENROLL_CA_CERT";

    /// The client configuration from flags, environment and file, as a command
    /// resolves it.
    fn client_config(
        args: &ServiceArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&ConfigFile>,
    ) -> Result<ClientConfig, ResolveError> {
        let settings = ServiceSettings::from_sources(args, env, file).unwrap();
        super::client_config(&settings, env, file)
    }

    fn network(
        args: &ServiceArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&ConfigFile>,
    ) -> Result<NetworkSettings, ResolveError> {
        let settings = ServiceSettings::from_sources(args, env, file).unwrap();
        NetworkSettings::resolve(&settings, env)
    }

    fn appid(file: &ConfigFile) -> Option<String> {
        ServiceSettings::from_sources(&ServiceArgs::default(), &env(&[]), Some(file))
            .unwrap()
            .appid
            .map(String::from)
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(Path::new("/etc/faceenroll.toml"), text).unwrap()
    }

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let f = file(
            "[service]\nendpoint = \"https://file.example\"\nappid = \"1111\"\n\
             bucket = \"file-bucket\"\nread_timeout_secs = 5\n",
        );
        let mut e = CREDS.to_vec();
        // File only.
        let o = client_config(&ServiceArgs::default(), &env(&e), Some(&f)).unwrap();
        assert_eq!(o.endpoint, "https://file.example");
        assert_eq!(o.appid, "1111");
        assert_eq!(o.bucket, "file-bucket");
        assert_eq!(o.read_timeout, Duration::from_secs(5));
        assert_eq!(o.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        // Environment over file.
        e.push((ENDPOINT_ENV, "https://env.example"));
        e.push((APPID_ENV, "2222"));
        let o = client_config(&ServiceArgs::default(), &env(&e), Some(&f)).unwrap();
        assert_eq!(o.endpoint, "https://env.example");
        assert_eq!(o.appid, "2222");
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
        assert_eq!(o.appid, "2222");
        assert_eq!(o.bucket, "flag-bucket");
        assert_eq!(o.read_timeout, Duration::from_secs(7));
        // Defaults with no file.
        let args = ServiceArgs {
            appid: Some("1".parse().unwrap()),
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
            file("[service]\nappid = \"1\"\nsecret_id = \"AKIDfile\"\nsecret_key = \"keyfile\"\n");
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
            appid: Some("1".parse().unwrap()),
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
    fn a_value_of_the_wrong_type_is_said_in_words_with_its_line() {
        let text = "[service]\nappid = 1\n\n[enroll]\nno_resize = true\nworkers = \"four\"\n";
        let f = file(text);
        let err = f
            .section::<crate::cli::settings::EnrollSection>("enroll")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config file /etc/faceenroll.toml, line 6: [enroll] workers: expected a whole \
             number, got \"four\""
        );
    }

    #[test]
    fn an_appid_may_be_written_as_a_number() {
        let f = file("[service]\nappid = 1250000000\n");
        assert_eq!(appid(&f).as_deref(), Some("1250000000"));
        let err =
            ConfigFile::parse(Path::new("/x/c.toml"), "[service]\nappid = true\n").unwrap_err();
        assert!(err.to_string().contains("/x/c.toml"), "{err}");
    }

    #[test]
    fn the_ca_file_comes_from_flag_env_file_then_ssl_cert_file() {
        let f = file("[service]\nappid = \"1\"\nca_cert = \"/file/ca.pem\"\n");
        let flag = ServiceArgs {
            ca_cert: Some("/flag/ca.pem".into()),
            ..ServiceArgs::default()
        };
        let all = [
            (CA_CERT_ENV, "/env/ca.pem"),
            (SSL_CERT_FILE_ENV, "/ssl/ca.pem"),
        ];
        let ca = |args: &ServiceArgs, pairs: &[(&str, &str)], f: Option<&ConfigFile>| {
            network(args, &env(pairs), f)
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
        let n = network(&args("https://api.example.com"), &env(&proxied), None).unwrap();
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
        let n = network(&args("https://svc.internal"), &env(&proxied), None).unwrap();
        assert!(n.proxy.is_none());
        assert!(n.comment().contains("# proxy: none (direct)"));
        let err = network(
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
            appid: Some("1".parse().unwrap()),
            insecure_http: true,
            ..ServiceArgs::default()
        };
        assert!(
            client_config(&args, &env(CREDS), None)
                .unwrap()
                .allow_insecure_http
        );
        let f = file("[service]\nappid = \"1\"\nallow_insecure_http = true\n");
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
        let f = file("[service]\nappid = \"1\"\n\n[enroll]\nworkers = 8\n");
        assert_eq!(appid(&f).as_deref(), Some("1"));
        let enroll: Enroll = f.section("enroll").unwrap().unwrap();
        assert_eq!(enroll.workers, 8);
        assert!(f.section::<Enroll>("absent").unwrap().is_none());
    }

    #[test]
    fn an_unknown_table_or_a_key_outside_any_table_is_refused_with_its_line() {
        let refused = |text: &str| {
            ConfigFile::parse(Path::new("/etc/fe.toml"), text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused("[enroll]\nworkers = 2\n\n[servce]\nappid = \"1\"\n"),
            "config file /etc/fe.toml, line 4: unknown table [servce] (did you mean \
             [service]?); the file's tables are [service] and [enroll]"
        );
        assert_eq!(
            refused("# nightly\nstate = \"/srv/x\"\n[enroll]\nworkers = 2\n"),
            "config file /etc/fe.toml, line 2: the key state is outside any table; it \
             belongs in [enroll]"
        );
        assert!(refused("appid = 125\n")
            .contains("line 1: the key appid is outside any table; it belongs in [service]"));
        assert!(refused("colour = \"red\"\n").contains("settings go in [service] and [enroll]"));
        assert!(refused("[[jobs]]\nx = 1\n").contains("line 1: unknown table [jobs];"));
        assert!(refused("[mirror.target]\nx = 1\n").contains("line 1: unknown table [mirror]"));
        assert!(refused("enroll = 3\n").contains("line 1: enroll must be a table, [enroll]"));
        // The file's own tables, in any order, and an empty file are taken.
        for text in ["", "[enroll]\n[service]\n", "[service]\nappid = \"1\"\n"] {
            ConfigFile::parse(Path::new("/etc/fe.toml"), text).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_secrets_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faceenroll.toml");
        std::fs::write(
            &path,
            "[service]\nappid = \"1\"\nsecret_id = \"AKIDfile\"\nsecret_key = \"keyfile\"\n",
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
        assert_eq!(
            f.service.secret_key.as_ref().map(Secret::expose),
            Some("keyfile")
        );

        // Without secrets, a readable file is fine.
        std::fs::write(&path, "[service]\nappid = \"1\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ConfigFile::load(&path).is_ok());
    }
}
