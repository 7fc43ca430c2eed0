//! Every setting of the program, declared once, in the tables at the end of this
//! file, and layered by one mechanism: a flag wins over the environment, which wins
//! over the config file, which wins over the default. The settings of `enroll` and
//! `plan` live in the file's `[enroll]` table, those of the service in `[service]`.
//!
//! One entry of a table gives a setting's help and clap attributes, its name, its
//! flag type, its key in the file when that differs from its name, its variable,
//! its default and the range its values must lie in:
//!
//! ```text
//! /// Longest edge in pixels of a photo sent [default: 1264].
//! #[arg(long, value_name = "PX")]
//! max_edge: Option<u32>, env "FACEENROLL_MAX_EDGE", default DEFAULT_MAX_EDGE, range 1..;
//! ```
//!
//! From the tables `settings!` makes:
//!
//! - the flags (`PlanArgs`, `JobArgs`, `RunArgs`, `ServiceArgs`: clap structs that the
//!   commands flatten; clap types stay in `cli/`);
//! - the file's tables ([`EnrollSection`], [`ServiceSection`]), which are also the
//!   form `--print-config` prints the resolved settings in, so that what is printed
//!   reads back as a config file;
//! - the resolved settings (`PlanSettings`, `JobSettings`, `RunSettings`,
//!   `ServiceSettings`), their
//!   `resolve`, and their `write_to` that fills the file's table.
//!
//! The flag type says how a setting layers ([`Layered`]): `Option<T>` is a valued
//! setting (`--workers 4`, `FACEENROLL_WORKERS=4`, `workers = 4`), `bool` a switch
//! (`--no-resize`, `FACEENROLL_NO_RESIZE=true|false|1|0|yes|no|on|off`,
//! `no_resize = true`), `Vec<String>` a list (`--group a --group b`,
//! `FACEENROLL_GROUPS=a,b`, `groups = ["a", "b"]`). An empty variable counts as
//! unset. A value out of its range is refused naming where it came from: the flag
//! (`--max-edge 0`), the variable (`FACEENROLL_MAX_EDGE=0`) or the file's key
//! (`[enroll] max_edge = 0`). With a default the resolved field has the value's type;
//! without one it is an `Option`. What follows from several settings (the worker
//! count from `--workers` and `--max-workers`, the rate from `--qps` and `--shard`,
//! the credentials, the CA file's fallback on `SSL_CERT_FILE`) is worked out where
//! it is used, from the resolved settings.
//!
//! The environment is read here rather than by clap (`env = ...`), so that a bad
//! value names its variable, and `--help` shows the variable without the `[env: X=]`
//! of an unset one: the table adds `[env: ...]` to each flag's help.
//!
//! Why a table and not `figment` (serde providers for flags, environment and file):
//! switches and lists take forms in the environment that a serde provider does not
//! read (`yes`/`on`, comma-separated), the messages here name the exact flag,
//! variable or key, as scripts and tests rely on, the file keeps
//! `deny_unknown_fields` and its own key names, and clap keeps parsing and
//! documenting the flags; a macro of about a hundred lines does this without a new
//! dependency.
//!
//! Adding a setting: one entry in its table (documentation ending with `[default:
//! ...]` when the default is worth saying, `#[arg(long, ...)]`, `name: Option<T>` /
//! `bool` / `Vec<String>`, then `key`, `env`, `default`, `range` as it needs), then
//! read the resolved field where it is used. A new type of value implements
//! [`SettingValue`]. A flag that is meant for one run and never a standing setting
//! (`--new-source`) goes in the group's `flag_only` block: it is read neither from
//! the environment nor from the file.

use crate::config::{ConfigFile, Secret, APPID_ENV};
use crate::deletion::mirror::{MaxDelete, DEFAULT_MAX_DELETE};
use crate::engine::retry::RetryPolicy;
use crate::engine::silence::DEFAULT_UNANSWERED_LIMIT;
use crate::engine::MAX_WORKERS;
use crate::limits::MAX_REQUEST_BYTES;
use crate::normalize::{
    DEFAULT_JPEG_QUALITY, DEFAULT_MAX_BYTES, DEFAULT_MAX_EDGE, DEFAULT_MAX_FILE_BYTES,
};
use crate::service::client::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_READ_TIMEOUT, DEFAULT_SIGNATURE_VALIDITY,
};
use crate::shard::Shard;
use crate::source::Layout;
use crate::store::DEFAULT_STATE_DIR;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::{Debug, Display};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

/// The config file `--config` (or `FACEENROLL_CONFIG` in `env`) names, if any, and
/// its `[enroll]` table (empty when there is no file or no table).
pub fn load(
    config: Option<&Path>,
    env: Env,
) -> anyhow::Result<(Option<ConfigFile>, EnrollSection)> {
    let file = crate::config::config_path(config, env)
        .as_deref()
        .map(ConfigFile::load)
        .transpose()?;
    let section = match &file {
        Some(f) => f.section(EnrollSection::TABLE)?.unwrap_or_default(),
        None => EnrollSection::default(),
    };
    Ok((file, section))
}

/// The environment as a function, so tests can give their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A type of value a valued setting holds: how it is read from a variable, how the
/// file writes it.
pub trait SettingValue: Sized {
    /// The form of the value in the config file.
    type File: Serialize + DeserializeOwned + Clone + Debug + PartialEq;
    /// The value from a variable's text.
    fn parse(text: &str) -> Result<Self, String>;
    /// The value from the file's form.
    fn from_file(file: Self::File) -> Result<Self, String>;
    /// The file's form of the value.
    fn to_file(&self) -> Self::File;
}

macro_rules! plain_values {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            type File = $t;
            fn parse(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e| format!("{e}"))
            }
            fn from_file(file: $t) -> Result<Self, String> {
                Ok(file)
            }
            fn to_file(&self) -> $t {
                self.clone()
            }
        }
    )*};
}
plain_values!(u8, u32, u64, usize, PathBuf);

/// Text; the file may write it as a number, as AppIDs often are (`appid =
/// 1250000000`).
impl SettingValue for String {
    type File = TextOrNumber;
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn from_file(file: TextOrNumber) -> Result<Self, String> {
        Ok(match file {
            TextOrNumber::Text(text) => text,
            TextOrNumber::Number(n) => n.to_string(),
        })
    }
    fn to_file(&self) -> TextOrNumber {
        TextOrNumber::Text(self.clone())
    }
}

/// An AppID: the account's number, digits only (`1250000000`). A letter in it
/// (`125000000O`) is refused where it is given, naming the flag, variable or key,
/// rather than sent to be refused by the service. Empty counts as none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppId(String);

impl AppId {
    /// The AppID as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for AppId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<AppId> for String {
    fn from(id: AppId) -> String {
        id.0
    }
}

impl std::str::FromStr for AppId {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.chars().all(|c| c.is_ascii_digit()) {
            Ok(AppId(text.to_owned()))
        } else {
            Err(format!(
                "an AppID is digits only (as 1250000000), got {text:?}"
            ))
        }
    }
}

impl SettingValue for AppId {
    type File = TextOrNumber;
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn from_file(file: TextOrNumber) -> Result<Self, String> {
        String::from_file(file)?.parse()
    }
    fn to_file(&self) -> TextOrNumber {
        TextOrNumber::Text(self.0.clone())
    }
}

/// How the file writes a text setting: a string, or a number.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TextOrNumber {
    Text(String),
    Number(u64),
}

impl SettingValue for Layout {
    type File = String;
    fn parse(text: &str) -> Result<Self, String> {
        <Layout as clap::ValueEnum>::from_str(text.trim(), false)
            .map_err(|_| "expected \"person\" or \"group/person\"".to_owned())
    }
    fn from_file(file: String) -> Result<Self, String> {
        Self::parse(&file)
    }
    fn to_file(&self) -> String {
        <Layout as clap::ValueEnum>::to_possible_value(self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }
}

/// `"I/N"`, as `--shard`.
impl SettingValue for Shard {
    type File = String;
    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e| format!("{e}"))
    }
    fn from_file(file: String) -> Result<Self, String> {
        Self::parse(&file)
    }
    fn to_file(&self) -> String {
        self.to_string()
    }
}

/// `"N"` or `"N%"`, as `--max-delete`.
impl SettingValue for MaxDelete {
    type File = TextOrNumber;
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn from_file(file: TextOrNumber) -> Result<Self, String> {
        match file {
            TextOrNumber::Text(text) => text.parse(),
            TextOrNumber::Number(n) => Ok(MaxDelete::Count(n)),
        }
    }
    fn to_file(&self) -> TextOrNumber {
        TextOrNumber::Text(self.to_string())
    }
}

/// How a flag's type layers: what it holds when given, how a variable and the file
/// give it.
pub trait Layered {
    /// The resolved value.
    type Value;
    /// The form of the value in the config file.
    type File: Serialize + DeserializeOwned + Clone + Debug + PartialEq;
    /// The value the flag gives, if it was given.
    fn given(&self) -> Option<Self::Value>;
    /// The value from a variable's text.
    fn parse(text: &str) -> Result<Self::Value, String>;
    /// The value from the file's form.
    fn from_file(file: Self::File) -> Result<Self::Value, String>;
    /// The file's form of the value.
    fn to_file(value: &Self::Value) -> Self::File;
}

/// A valued setting.
impl<T: SettingValue + Clone> Layered for Option<T> {
    type Value = T;
    type File = T::File;
    fn given(&self) -> Option<T> {
        self.clone()
    }
    fn parse(text: &str) -> Result<T, String> {
        T::parse(text)
    }
    fn from_file(file: T::File) -> Result<T, String> {
        T::from_file(file)
    }
    fn to_file(value: &T) -> T::File {
        value.to_file()
    }
}

/// A switch: the flag only turns it on; the variable and the file say either.
impl Layered for bool {
    type Value = bool;
    type File = bool;
    fn given(&self) -> Option<bool> {
        self.then_some(true)
    }
    fn parse(text: &str) -> Result<bool, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        }
    }
    fn from_file(file: bool) -> Result<bool, String> {
        Ok(file)
    }
    fn to_file(value: &bool) -> bool {
        *value
    }
}

/// A list: the flag repeated, the variable comma-separated, an array in the file.
impl Layered for Vec<String> {
    type Value = Vec<String>;
    type File = Vec<String>;
    fn given(&self) -> Option<Vec<String>> {
        (!self.is_empty()).then(|| self.clone())
    }
    fn parse(text: &str) -> Result<Vec<String>, String> {
        Ok(text
            .split(',')
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect())
    }
    fn from_file(file: Vec<String>) -> Result<Vec<String>, String> {
        Ok(file)
    }
    fn to_file(value: &Vec<String>) -> Vec<String> {
        value.clone()
    }
}

/// One setting's names: its field in the flags struct `F` (whose long flag is looked
/// up from clap), its table and key in the file, and its variable if it has one.
pub struct Names<F> {
    pub field: &'static str,
    pub table: &'static str,
    pub key: &'static str,
    pub env: Option<&'static str>,
    pub flags: std::marker::PhantomData<F>,
}

impl<F: clap::Args> Names<F> {
    /// The setting's flag as the user types it (`--group` for the key `groups`).
    pub fn flag(&self) -> String {
        let command = F::augment_args(clap::Command::new("faceenroll"));
        let long = command
            .get_arguments()
            .find(|a| a.get_id() == self.field)
            .and_then(|a| a.get_long())
            .map(str::to_owned);
        format!("--{}", long.unwrap_or_else(|| self.field.replace('_', "-")))
    }

    /// The first layer that gives the setting: the flag, the variable, the file.
    /// Each value is checked, and refused naming where it came from.
    pub fn layer<L: Layered>(
        &self,
        flag: &L,
        env: Env,
        file: Option<&L::File>,
        check: impl Fn(&L::Value) -> Result<(), String>,
    ) -> Result<Option<L::Value>, SettingError> {
        let refused = |origin: Origin, why: String, range: bool| SettingError {
            origin,
            why,
            flag: range.then(|| self.flag()),
        };
        if let Some(value) = flag.given() {
            let origin = || Origin::Flag {
                flag: self.flag(),
                value: shown(&L::to_file(&value)),
            };
            check(&value).map_err(|why| refused(origin(), why, false))?;
            return Ok(Some(value));
        }
        let var = self.env.and_then(|name| Some((name, env(name)?)));
        if let Some((name, text)) = var.filter(|(_, text)| !text.is_empty()) {
            let origin = || Origin::Variable {
                name,
                text: text.clone(),
            };
            let value = L::parse(&text).map_err(|why| refused(origin(), why, false))?;
            check(&value).map_err(|why| refused(origin(), why, true))?;
            return Ok(Some(value));
        }
        if let Some(given) = file {
            let origin = || Origin::File {
                table: self.table,
                key: self.key,
                value: shown(given),
            };
            let value = L::from_file(given.clone()).map_err(|why| refused(origin(), why, false))?;
            check(&value).map_err(|why| refused(origin(), why, true))?;
            return Ok(Some(value));
        }
        Ok(None)
    }
}

/// A setting's value refused: where it came from, why, and the flag it sets when
/// the value came from elsewhere and was out of its range.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {why}{}", flag.as_ref().map(|f| format!(" ({f})")).unwrap_or_default())]
pub struct SettingError {
    pub origin: Origin,
    pub why: String,
    pub flag: Option<String>,
}

/// Where a setting's value came from, as the user wrote it.
#[derive(Debug)]
pub enum Origin {
    /// `--max-edge 0`
    Flag { flag: String, value: String },
    /// `FACEENROLL_MAX_EDGE=0`; text with a space or a quote in it is quoted.
    Variable { name: &'static str, text: String },
    /// `[enroll] max_edge = 0`
    File {
        table: &'static str,
        key: &'static str,
        value: String,
    },
}

impl Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag { flag, value } => write!(f, "{flag} {value}"),
            // As a shell would take it back: quoted only when it has to be.
            Origin::Variable { name, text }
                if !text.is_empty()
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._/:,@+-".contains(c)) =>
            {
                write!(f, "{name}={text}")
            }
            Origin::Variable { name, text } => write!(f, "{name}={text:?}"),
            Origin::File { table, key, value } => write!(f, "[{table}] {key} = {value}"),
        }
    }
}

/// A value as the config file writes it (`0`, `"flat"`).
fn shown(value: &impl Serialize) -> String {
    toml::Value::try_from(value).map_or_else(|_| "?".to_owned(), |v| v.to_string())
}

/// Whether `value` lies in `range`, and if not, what it must be.
pub fn in_range<T: PartialOrd + Display>(
    value: &T,
    range: impl RangeBounds<T>,
) -> Result<(), String> {
    if range.contains(value) {
        return Ok(());
    }
    Err(match (range.start_bound(), range.end_bound()) {
        (Bound::Included(lo), Bound::Included(hi)) => format!("must be between {lo} and {hi}"),
        (Bound::Included(lo), _) => format!("must be at least {lo}"),
        (_, Bound::Included(hi)) => format!("must be at most {hi}"),
        _ => "out of range".to_owned(),
    })
}

/// A flag's help: its documentation, then its variable, if it has one.
pub fn help(doc: &[&str], env: Option<&str>, hint: &str) -> String {
    let mut text = String::new();
    for line in doc.iter().map(|l| l.trim()) {
        if line.is_empty() {
            text.push_str("\n\n");
        } else {
            if !(text.is_empty() || text.ends_with('\n')) {
                text.push(' ');
            }
            text.push_str(line);
        }
    }
    let text = text.strip_suffix('.').unwrap_or(&text);
    match env {
        Some(name) => format!("{text} [env: {name}{hint}]"),
        None => text.to_owned(),
    }
}

/// The resolved type of a setting: the value's type with a default, else an
/// `Option` of it.
macro_rules! resolved_type {
    ($t:ty) => { Option<$t> };
    ($t:ty, $default:expr) => { $t };
}

/// A layered value, with the default filled in when there is one.
macro_rules! or_default {
    ($found:expr) => {
        $found
    };
    ($found:expr, $default:expr) => {
        $found.unwrap_or_else(|| $default)
    };
}

/// A resolved value in the file's form.
macro_rules! file_form {
    ($l:ty, $value:expr) => {
        $value.as_ref().map(<$l as Layered>::to_file)
    };
    ($l:ty, $value:expr, $default:expr) => {
        Some(<$l as Layered>::to_file($value))
    };
}

/// The check of a setting's range, if it has one.
macro_rules! range_check {
    () => {
        |_: &_| Ok(())
    };
    ($range:expr) => {
        |value: &_| in_range(value, $range)
    };
}

/// What `--help` adds after a setting's variable, by the flag's type.
macro_rules! env_hint {
    (bool) => {
        "=true"
    };
    (Vec) => {
        ", comma separated"
    };
    ($other:ident) => {
        ""
    };
}

/// A setting's variable, if it has one.
macro_rules! variable {
    () => {
        None
    };
    ($env:expr) => {
        Some($env)
    };
}

/// A setting's key in the file: given, else its name.
macro_rules! key_name {
    ($name:ident) => {
        stringify!($name)
    };
    ($name:ident, $key:literal) => {
        $key
    };
}

/// Makes the file's table, and for each group of settings its flags, its resolved
/// form, `resolve` and `write_to`, from the table of settings.
macro_rules! settings {
    (
        $(#[$section_attr:meta])*
        section $section:ident in $table:literal {
            $( $(#[$file_attr:meta])* $file_only:ident: $file_ty:ty, )*
        }
        $(
            $(#[$flags_attr:meta])*
            flags $flags:ident;
            $(#[$values_attr:meta])*
            resolved $values:ident {
                $(
                    $(#[doc = $doc:literal])*
                    #[arg($($arg:tt)*)]
                    $name:ident: $fty:ident $(<$inner:ty>)? $(, key $key:literal)?
                        $(, env $env:expr)? $(, default $default:expr)?
                        $(, range $range:expr)?;
                )*
                flag_only {
                    $( $(#[$once_attr:meta])* $once:ident: $once_ty:ty, )*
                }
            }
        )*
    ) => {
        $(#[$section_attr])*
        #[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $section {
            $($(
                #[serde(default, skip_serializing_if = "Option::is_none")]
                $(#[serde(rename = $key)])?
                pub $name: Option<<$fty $(<$inner>)? as Layered>::File>,
            )*)*
            $( $(#[$file_attr])* pub $file_only: $file_ty, )*
        }

        impl $section {
            /// The name of the table in the config file.
            pub const TABLE: &'static str = $table;
        }

        $(
            $(#[$flags_attr])*
            #[derive(Debug, Clone, Default, clap::Args)]
            pub struct $flags {
                $(
                    #[arg($($arg)*, help = help(&[$($doc),*], variable!($($env)?), env_hint!($fty)))]
                    pub $name: $fty $(<$inner>)?,
                )*
                $( $(#[$once_attr])* pub $once: $once_ty, )*
            }

            $(#[$values_attr])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $values {
                $( #[doc = concat!("`--", stringify!($once), "`, a flag only.")]
                   pub $once: $once_ty, )*
                $(
                    #[doc = concat!("`", stringify!($name), "`, resolved.")]
                    pub $name: resolved_type!(
                        <$fty $(<$inner>)? as Layered>::Value $(, $default)?
                    ),
                )*
            }

            impl $values {
                /// Resolves the settings: flag > environment > the file's table >
                /// default, each value checked.
                pub fn resolve(flags: &$flags, env: Env, file: &$section) -> anyhow::Result<Self> {
                    Ok($values {
                        $( $once: flags.$once.clone(), )*
                        $(
                            $name: {
                                let names = Names::<$flags> {
                                    field: stringify!($name),
                                    table: $table,
                                    key: key_name!($name $(, $key)?),
                                    env: variable!($($env)?),
                                    flags: std::marker::PhantomData,
                                };
                                let found = names.layer(
                                    &flags.$name,
                                    env,
                                    file.$name.as_ref(),
                                    range_check!($($range)?),
                                )?;
                                or_default!(found $(, $default)?)
                            },
                        )*
                    })
                }

                /// Writes the settings into the file's table, under their keys.
                pub fn write_to(&self, section: &mut $section) {
                    $(
                        section.$name = file_form!(
                            $fty $(<$inner>)?, &self.$name $(, $default)?
                        );
                    )*
                }
            }
        )*
    };
}

settings! {
    /// The `[enroll]` table of the config file: the same settings as the flags, under
    /// their flag names with `_` for `-` (`groups` for the repeatable `--group`). It is
    /// also the form `--print-config` prints the resolved settings in.
    section EnrollSection in "enroll" {}

    /// What to plan and how: the flags shared by `plan` and `enroll`. Values left
    /// unset here are taken from the environment or the config file
    /// ([`PlanSettings`] is the resolved form), by `plan` and `enroll` alike.
    flags PlanArgs;
    /// The planning settings once flags, environment, file and defaults are
    /// resolved. `plan` and `enroll` both resolve them, so `plan` prints the plan
    /// `enroll --dry-run` would.
    resolved PlanSettings {
        /// Put every person of a directory tree in this group (repeatable, or a comma
        /// list: --group staff,lab is --group staff --group lab; a tree needs at least
        /// one unless --layout group/person).
        #[arg(long = "group", value_name = "GROUP_ID", value_delimiter = ',')]
        groups: Vec<String>, env "FACEENROLL_GROUPS", default Vec::new();
        /// How a directory tree is laid out: person (ROOT/PERSON_ID/PHOTO) or
        /// group/person (ROOT/GROUP_ID/PERSON_ID/PHOTO) [default: person].
        #[arg(long, value_enum)]
        layout: Option<Layout>, env "FACEENROLL_LAYOUT", default Layout::default();
        /// Follow symbolic links in a directory tree (loops are detected and
        /// reported).
        #[arg(long)]
        follow_symlinks: bool, env "FACEENROLL_FOLLOW_SYMLINKS", default false;
        /// Do not read the photo files: record paths only (no existence, image or
        /// duplicate check). For very large archives known to be sound.
        #[arg(long)]
        no_content_check: bool, env "FACEENROLL_NO_CONTENT_CHECK", default false;
        /// Do not re-encode photos too large for one request: fail them instead.
        #[arg(long)]
        no_resize: bool, env "FACEENROLL_NO_RESIZE", default false;
        /// The request body limit to cut calls to, in bytes [default: 1500000].
        #[arg(long, value_name = "BYTES")]
        max_request_bytes: Option<u64>, env "FACEENROLL_MAX_REQUEST_BYTES",
            default MAX_REQUEST_BYTES;
        /// Plan again photos the service refused for good in an earlier run.
        #[arg(long)]
        retry_failed: bool, env "FACEENROLL_RETRY_FAILED", default false;
        /// A source without a photo is a job with nothing to do, not an error (without
        /// it, an empty tree, e.g. an unmounted share, or a manifest with no row for a
        /// job that holds nothing yet, stops the job with exit 2).
        #[arg(long)]
        allow_empty: bool, env "FACEENROLL_ALLOW_EMPTY", default false;
        /// Take only shard I of N of the persons (0 <= I < N), to split one job over N
        /// machines or processes, each with its own --state: a person's shard is a
        /// stable hash of its id, so all its calls are made by one shard, run after
        /// run. The account's rate is shared: each shard paces at --qps / N unless
        /// --qps is given.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>, env "FACEENROLL_SHARD", default Shard::WHOLE;
        /// After the adds, delete from the service what left the source, within the
        /// job's reach: a person the job created that the source no longer lists
        /// (read just before, as rollback does), the job's faces and groups of a
        /// person that existed before, the face of a photo no longer listed or
        /// replaced in place (a photo over the 20 then takes its room in the same
        /// run), a group the job added that the person's row no longer gives (never
        /// its last group: kept, said, exit 1). Nothing the job did not add is
        /// touched. Nothing is deleted after a source error or from an empty source.
        /// Also makes the deletions `verify --repair` queued; a run without --mirror
        /// leaves them queued. With `plan` and `--dry-run`: list the deletions.
        #[arg(long)]
        mirror: bool, env "FACEENROLL_MIRROR", default false;
        /// With --mirror: the most one run takes off the service, for persons,
        /// faces and groups of persons each on its own: a count of each (N) or a
        /// share of what the job holds of each (N%) [default: 10%]. A person's
        /// deletion counts as a person and as each of its faces: a job of 100
        /// persons holding 900 faces may lose 10 persons and 90 faces a night; 30
        /// persons gone (270 faces) are held. Over it, nothing is deleted, the adds
        /// still happen, and enroll exits with 4.
        #[arg(long, value_name = "N|N%")]
        max_delete: Option<MaxDelete>, env "FACEENROLL_MAX_DELETE", default DEFAULT_MAX_DELETE;
        /// Largest photo sent as is, in bytes; larger ones are re-encoded [default:
        /// 300000, so that four photos fit one request at the documented 1.5 MB].
        #[arg(long, value_name = "BYTES")]
        max_photo_bytes: Option<u64>, env "FACEENROLL_MAX_PHOTO_BYTES",
            default DEFAULT_MAX_BYTES, range 1..;
        /// Largest photo file read, in bytes: a larger file (a video, a disk image, a
        /// sparse file) fails as unusable input from its size, never read; a file
        /// growing past it while read fails too [default: 67108864, 64 MiB].
        #[arg(long, value_name = "BYTES")]
        max_file_bytes: Option<u64>, env "FACEENROLL_MAX_FILE_BYTES",
            default DEFAULT_MAX_FILE_BYTES, range 1..;
        /// Longest edge in pixels of a photo sent; larger ones are scaled down
        /// [default: 1264, what the default --max-photo-bytes holds as a JPEG].
        #[arg(long, value_name = "PX")]
        max_edge: Option<u32>, env "FACEENROLL_MAX_EDGE", default DEFAULT_MAX_EDGE, range 1..;
        /// JPEG quality of re-encoded photos, 1-100 [default: 85].
        #[arg(long, value_name = "Q")]
        jpeg_quality: Option<u8>, env "FACEENROLL_JPEG_QUALITY",
            default DEFAULT_JPEG_QUALITY, range 1..=100;
        /// Look for faces in each photo on this machine and send a photo whose
        /// largest face is found with confidence, and is clearly the largest, as a
        /// crop around that face (the report says how many were found), so that 20
        /// photos fit a call instead of about 4. Any other photo (no face, the largest
        /// one unsure, two of similar size) is sent whole, as without this flag, and
        /// the service takes its largest face. With `plan`, count the photos by what
        /// is sent.
        #[arg(long)]
        crop_faces: bool, env "FACEENROLL_CROP_FACES", default false;
        /// Skip, without a call, a photo in which no face at all is found on this
        /// machine. The local detector misses faces the service would find (profiles,
        /// small or tilted faces): such photos are then skipped, not enrolled.
        #[arg(long)]
        skip_faceless: bool, env "FACEENROLL_SKIP_FACELESS", default false;
        flag_only {
            /// The photos: a directory tree (ROOT/PERSON_ID/PHOTO) or a CSV manifest
            /// (a file ending in .csv, with columns person_id, image, group_ids and
            /// optionally person_name, tag).
            #[arg(value_name = "SOURCE")]
            source: PathBuf,
            /// Let a source that shares no photo with the job's earlier sources join
            /// the job (without it, such a source is refused: probably a wrong --state).
            #[arg(long)]
            new_source: bool,
            /// Plan again photos an earlier run skipped because the service said their
            /// person was full (faces may have been deleted since); the person's face
            /// count is read from the service before they are sent.
            #[arg(long)]
            recheck_full: bool,
        }
    }

    /// The job a command works on and its pace against the service: the flags of
    /// `enroll`, `verify` and `rollback`.
    flags JobArgs;
    /// The job's state directory and pace, resolved.
    resolved JobSettings {
        /// The job's state directory: progress database, report, lock [default:
        /// ./faceenroll-state].
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>, env "FACEENROLL_STATE", default PathBuf::from(DEFAULT_STATE_DIR);
        /// Calls per second in all, the service's cap [default: 50]; 0 is unlimited.
        /// With `enroll --shard I/N` and no --qps, each shard paces at 50 / N (at least
        /// 1), so N shards together keep to the account's cap; a finished shard's share
        /// is not lent to the others. For more shards than that serves well, give
        /// --qps.
        #[arg(long, value_name = "N")]
        qps: Option<u32>, env "FACEENROLL_QPS";
        flag_only {}
    }

    /// How `enroll` runs: its flags that neither `plan` nor `verify` take.
    flags RunArgs;
    /// How `enroll` runs, resolved.
    resolved RunSettings {
        /// Rehearse against an emulator started in this process (no account needed).
        #[arg(long)]
        emulator: bool, env "FACEENROLL_EMULATOR", default false;
        /// With --emulator: keep the emulated account in this JSON file, so a rehearsal
        /// can be run again against the same account (e.g. to watch a resume).
        #[arg(long, value_name = "FILE")]
        emulator_state: Option<PathBuf>, env "FACEENROLL_EMULATOR_STATE";
        /// A fixed number of workers, each enrolling one person at a time with one
        /// call in flight [default: as many as the service's latency and the rate
        /// need, up to --max-workers].
        #[arg(long, value_name = "N")]
        workers: Option<usize>, env "FACEENROLL_WORKERS", range 1..=MAX_WORKERS;
        /// The most workers (calls in flight) the job starts as it measures the
        /// service's latency [default: 128, enough for 50 calls/s at 2 s per call].
        #[arg(long, value_name = "N")]
        max_workers: Option<usize>, env "FACEENROLL_MAX_WORKERS", range 1..=MAX_WORKERS;
        /// Attempts of one call before its photos count as failed for this run
        /// [default: 6].
        #[arg(long, value_name = "N")]
        retry_attempts: Option<u32>, env "FACEENROLL_RETRY_ATTEMPTS",
            default RetryPolicy::default().max_attempts, range 1..;
        /// Seconds one call may spend waiting between its attempts [default: 60].
        #[arg(long, value_name = "SECS")]
        retry_max_wait: Option<u64>, env "FACEENROLL_RETRY_MAX_WAIT",
            default RetryPolicy::default().max_total_wait.as_secs();
        /// Seconds the service may go without answering any call (timeouts, refused
        /// or hung connections, a proxy's tunnel that never opens) before the job stops
        /// with exit 3, every photo not done left for the next run; any answer starts
        /// the count again. Shorter silences (a service restarting) are ridden through,
        /// calls sent again with backoff [default: 300].
        #[arg(long, value_name = "SECS")]
        unanswered_limit: Option<u64>, env "FACEENROLL_UNANSWERED_LIMIT",
            default DEFAULT_UNANSWERED_LIMIT.as_secs(), range 1..;
        /// Write the report here [default: report.csv in the state directory].
        #[arg(long, value_name = "PATH")]
        report: Option<PathBuf>, env "FACEENROLL_REPORT";
        /// Write the run's figures here in the Prometheus text format (for
        /// node_exporter's textfile collector), at every progress interval and at the
        /// end.
        #[arg(long, value_name = "PATH")]
        metrics_file: Option<PathBuf>, env "FACEENROLL_METRICS_FILE";
        /// Write the summary here as JSON at the end of the run (a run that stops
        /// before it, exit 2 or 3, writes only how it ended and its exit code). Like
        /// --report and --metrics-file, checked for writing before the first call.
        #[arg(long, value_name = "PATH")]
        summary_json: Option<PathBuf>, env "FACEENROLL_SUMMARY_JSON";
        /// Ping this monitoring URL when the run starts (URL/start) and ends
        /// (URL/EXIT_CODE), as healthchecks.io takes them; through the same proxy and
        /// CA file as the service. A monitor that is down or slow (5 s) costs a
        /// warning, never the job; a ping carries no credential.
        #[arg(long, value_name = "URL")]
        ping_url: Option<String>, env "FACEENROLL_PING_URL";
        /// Count photos that failed for good in earlier runs (and are not retried)
        /// in the exit code: without it, a run with nothing new exits 0 and counts
        /// them in the summary only (`failed_earlier`); with it, they exit 1 every
        /// run, as new failures do.
        #[arg(long)]
        strict: bool, env "FACEENROLL_STRICT", default false;
        /// No progress bars, even at a terminal.
        #[arg(long)]
        no_progress: bool, env "FACEENROLL_NO_PROGRESS", default false;
        /// Seconds between progress log lines when stderr is not a terminal
        /// [default: 60].
        #[arg(long, value_name = "SECS")]
        progress_interval: Option<u64>, env "FACEENROLL_PROGRESS_INTERVAL",
            default 60, range 1..;
        flag_only {}
    }
}

settings! {
    /// The `[service]` table of the config file: the service settings under their
    /// keys, and the credentials. It is also the form `--print-config` prints the
    /// resolved service settings in, never with the credentials.
    section ServiceSection in "service" {
        /// Read from the file only, never printed.
        #[serde(default, skip_serializing)]
        secret_id: Option<Secret>,
        /// Read from the file only, never printed.
        #[serde(default, skip_serializing)]
        secret_key: Option<Secret>,
    }

    /// The flags every command that calls the service takes.
    flags ServiceArgs;
    /// The service settings once flags, environment, file and defaults are resolved;
    /// the credentials and the proxy are read apart ([`crate::config`]).
    resolved ServiceSettings {
        /// The service endpoint [default: https://recognition.image.myqcloud.com].
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>, env "FACEENROLL_ENDPOINT", default DEFAULT_ENDPOINT.to_owned();
        /// The AppID.
        #[arg(long)]
        appid: Option<AppId>, env APPID_ENV;
        /// The bucket (legacy, usually empty).
        #[arg(long)]
        bucket: Option<String>, env "FACEENROLL_BUCKET", default String::new();
        /// Accept a plain http:// endpoint that is not on this machine (the signature
        /// then travels in clear text).
        #[arg(long)]
        insecure_http: bool, key "allow_insecure_http", default false;
        /// Seconds to wait for a connection [default: 10].
        #[arg(long, value_name = "SECS")]
        connect_timeout: Option<u64>, key "connect_timeout_secs",
            env "FACEENROLL_CONNECT_TIMEOUT", default DEFAULT_CONNECT_TIMEOUT.as_secs();
        /// Seconds to wait for an answer [default: 60].
        #[arg(long, value_name = "SECS")]
        read_timeout: Option<u64>, key "read_timeout_secs",
            env "FACEENROLL_READ_TIMEOUT", default DEFAULT_READ_TIMEOUT.as_secs();
        /// Seconds each signature is valid, at most three months [default: 14400].
        #[arg(long, value_name = "SECS")]
        signature_validity: Option<u64>, key "signature_validity_secs",
            env "FACEENROLL_SIGNATURE_VALIDITY", default DEFAULT_SIGNATURE_VALIDITY.as_secs();
        /// A PEM file of CA certificates to trust besides the bundled Mozilla roots,
        /// e.g. a company CA [default: the file SSL_CERT_FILE names, if set].
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>, env "FACEENROLL_CA_CERT";
        flag_only {
            #[arg(
                long,
                value_name = "PATH",
                help = "A TOML config file; its [service] table may hold the settings above and \
                        the credentials (then it must be readable by its owner only) \
                        [env: FACEENROLL_CONFIG]"
            )]
            config: Option<PathBuf>,
        }
    }
}

impl PlanSettings {
    /// Resolves the planning settings as [`PlanSettings::resolve`] does, and refuses
    /// a combination that would be ignored: `--max-delete` (or its variable) without
    /// `--mirror`, which deletes nothing to limit. The config file's key is left
    /// alone: `--print-config` writes every key, and one file may serve a nightly
    /// mirror and runs without it.
    pub fn resolve_checked(
        flags: &PlanArgs,
        env: Env,
        file: &EnrollSection,
    ) -> anyhow::Result<PlanSettings> {
        let settings = PlanSettings::resolve(flags, env, file)?;
        if !settings.mirror {
            let given = if flags.max_delete.is_some() {
                Some("--max-delete")
            } else if env("FACEENROLL_MAX_DELETE").is_some_and(|v| !v.is_empty()) {
                Some("FACEENROLL_MAX_DELETE")
            } else {
                None
            };
            if let Some(given) = given {
                anyhow::bail!(
                    "{given} is set without --mirror: it limits the deletions of a run with \
                     --mirror (FACEENROLL_MIRROR, [enroll] mirror), and a run without it \
                     deletes nothing; add --mirror, or leave {given} out"
                );
            }
        }
        Ok(settings)
    }
}

impl ServiceSettings {
    /// Resolves the service settings from the flags, `env` and the `[service]` table
    /// of `file`, if there is one.
    pub fn from_sources(
        args: &ServiceArgs,
        env: Env,
        file: Option<&ConfigFile>,
    ) -> anyhow::Result<ServiceSettings> {
        let empty = ServiceSection::default();
        ServiceSettings::resolve(args, env, file.map_or(&empty, |f| &f.service))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env;

    fn names(key: &'static str, env: &'static str) -> Names<PlanArgs> {
        Names {
            field: key,
            table: EnrollSection::TABLE,
            key,
            env: Some(env),
            flags: std::marker::PhantomData,
        }
    }

    #[test]
    fn a_switch_is_flag_then_environment_then_file_then_unset() {
        let on = test_env(&[("ON", "yes")]);
        let unset = test_env(&[]);
        let none = |_: &_| Ok(());
        let layer = |flag: bool, env: Env, file: Option<bool>| {
            names("no_resize", "ON")
                .layer(&flag, env, file.as_ref(), none)
                .unwrap()
        };
        assert_eq!(layer(true, &unset, Some(false)), Some(true));
        assert_eq!(layer(false, &on, Some(false)), Some(true));
        assert_eq!(layer(false, &unset, Some(true)), Some(true));
        assert_eq!(layer(false, &unset, None), None);
        let off = test_env(&[("ON", "off")]);
        assert_eq!(layer(false, &off, Some(true)), Some(false));
        let bad = test_env(&[("FACEENROLL_X", "maybe")]);
        let err = names("no_resize", "FACEENROLL_X")
            .layer(&false, &bad, None, none)
            .unwrap_err();
        assert!(err.to_string().contains("FACEENROLL_X"), "{err}");
    }

    #[test]
    fn a_value_out_of_range_is_refused_naming_its_source() {
        let check = |v: &u32| in_range(v, 1..);
        let zero = test_env(&[("FACEENROLL_MAX_EDGE", "0")]);
        let unset = test_env(&[]);
        let max_edge = names("max_edge", "FACEENROLL_MAX_EDGE");
        let err = |flag: Option<u32>, env: Env, file: Option<u32>| {
            max_edge
                .layer(&flag, env, file.as_ref(), check)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(Some(0), &unset, None),
            "--max-edge 0: must be at least 1"
        );
        assert_eq!(
            err(None, &zero, Some(5)),
            "FACEENROLL_MAX_EDGE=0: must be at least 1 (--max-edge)"
        );
        assert_eq!(
            err(None, &unset, Some(0)),
            "[enroll] max_edge = 0: must be at least 1 (--max-edge)"
        );
        let junk = test_env(&[("FACEENROLL_MAX_EDGE", "big")]);
        assert!(err(None, &junk, None).starts_with("FACEENROLL_MAX_EDGE=big: "));
        let junk = test_env(&[("FACEENROLL_MAX_EDGE", "1 2")]);
        assert!(err(None, &junk, None).starts_with("FACEENROLL_MAX_EDGE=\"1 2\": "));
        assert_eq!(
            in_range(&101u8, 1..=100).unwrap_err(),
            "must be between 1 and 100"
        );
    }

    #[test]
    fn a_list_splits_its_variable_on_commas() {
        let env = test_env(&[("FACEENROLL_GROUPS", " a, b,,c ")]);
        let groups = names("groups", "FACEENROLL_GROUPS");
        let none = |_: &_| Ok(());
        let got = groups.layer(&Vec::new(), &env, None, none).unwrap();
        assert_eq!(got.unwrap(), ["a", "b", "c"]);
        assert_eq!(groups.flag(), "--group");
    }

    #[test]
    fn every_key_of_the_file_is_a_setting_and_prints_back() {
        let text = "[enroll]\nlayout = \"group/person\"\nshard = \"1/3\"\nworkers = 2\n\
                    groups = [\"a\"]\nno_resize = true\n";
        let file = ConfigFile::parse(Path::new("/etc/fe.toml"), text).unwrap();
        let section: EnrollSection = file.section(EnrollSection::TABLE).unwrap().unwrap();
        let mut printed = EnrollSection::default();
        let args = <PlanArgs as clap::FromArgMatches>::from_arg_matches(
            &<PlanArgs as clap::Args>::augment_args(clap::Command::new("t"))
                .try_get_matches_from(["t", "src"])
                .unwrap(),
        )
        .unwrap();
        let plan = PlanSettings::resolve(&args, &test_env(&[]), &section).unwrap();
        assert_eq!(plan.layout, Layout::GroupPerson);
        assert_eq!(plan.shard.to_string(), "1/3");
        plan.write_to(&mut printed);
        assert_eq!(printed.layout.as_deref(), Some("group/person"));
        assert_eq!(printed.shard.as_deref(), Some("1/3"));
        assert_eq!(printed.groups, Some(vec!["a".to_owned()]));
        assert_eq!(printed.no_resize, Some(true));
        assert_eq!(printed.workers, None, "not a planning setting");
    }
}
