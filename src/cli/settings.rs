//! Where the settings of `enroll` and `plan` come from, and the one way they are
//! layered: a flag wins over the environment, which wins over the `[enroll]` table of
//! the config file, which wins over the default.
//!
//! - Valued flags (`--workers N`) read their `FACEENROLL_*` variable through clap
//!   (`env = ...` on the flag), so the flag's value already holds "flag, else
//!   environment"; [`Layers::value`] adds the file and the default.
//! - Switches (`--no-resize`) cannot carry a value, so their variable is read here:
//!   [`Layers::switch`] takes the flag, `FACEENROLL_<NAME>=true|false`, the file, then
//!   `false`.
//! - [`EnrollSection`] is the file's table, and also the form `--print-config` prints
//!   the resolved settings in, so what is printed reads back as a config file.
//!
//! Adding a setting: its flag (with `env = "FACEENROLL_<NAME>"` unless it is a switch)
//! in the `Args` struct of its command, its key in [`EnrollSection`], its field in the
//! resolved settings struct, and one line in that struct's `resolve` calling
//! [`Layers::value`] or [`Layers::switch`]; `--print-config` then needs the key in
//! `to_section`.

use crate::config::ConfigFile;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `[enroll]` table of the config file: the same settings as the flags, under
/// their flag names with `_` for `-` (`groups` for the repeatable `--group`). It is
/// also the form `--print-config` prints the resolved settings in.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_symlinks: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_content_check: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_resize: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_failed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_empty: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator_state: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qps: Option<u32>,
    /// `"I/N"`, as `--shard`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_max_wait: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_photo_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_edge: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jpeg_quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary_json: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_progress: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_interval: Option<u64>,
}

/// The config file `--config` names, if any, and its `[enroll]` table (empty when
/// there is no file or no table).
pub fn load(config: Option<&Path>) -> anyhow::Result<(Option<ConfigFile>, EnrollSection)> {
    let file = config.map(ConfigFile::load).transpose()?;
    let section = match &file {
        Some(f) => f.section("enroll")?.unwrap_or_default(),
        None => EnrollSection::default(),
    };
    Ok((file, section))
}

/// The layers under the flags: the environment and the file's `[enroll]` table.
pub struct Layers<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub file: &'a EnrollSection,
}

impl Layers<'_> {
    /// A valued setting: the flag (which clap filled from the environment when the
    /// flag was absent), else the file, else the default.
    pub fn value<T>(&self, flag: Option<T>, file: Option<T>, default: T) -> T {
        flag.or(file).unwrap_or(default)
    }

    /// A switch: set by its flag, else `var` (`true`/`1`/`yes`/`on` or
    /// `false`/`0`/`no`/`off`; empty counts as unset), else the file, else off.
    pub fn switch(&self, flag: bool, var: &str, file: Option<bool>) -> anyhow::Result<bool> {
        if flag {
            return Ok(true);
        }
        Ok(self.env_bool(var)?.or(file).unwrap_or(false))
    }

    /// A comma-separated list: the repeated flag, else `var`, else the file.
    pub fn list(&self, flag: &[String], var: &str, file: Option<&Vec<String>>) -> Vec<String> {
        if !flag.is_empty() {
            return flag.to_vec();
        }
        if let Some(list) = (self.env)(var).filter(|v| !v.is_empty()) {
            return list
                .split(',')
                .map(|g| g.trim().to_owned())
                .filter(|g| !g.is_empty())
                .collect();
        }
        file.cloned().unwrap_or_default()
    }

    fn env_bool(&self, name: &str) -> anyhow::Result<Option<bool>> {
        let Some(value) = (self.env)(name).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => anyhow::bail!("{name}={value:?}: expected true or false"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_switch_is_flag_then_environment_then_file_then_off() {
        let file = EnrollSection::default();
        let env = |name: &str| (name == "ON").then(|| "yes".to_owned());
        let layers = Layers {
            env: &env,
            file: &file,
        };
        assert!(layers.switch(true, "UNSET", Some(false)).unwrap());
        assert!(layers.switch(false, "ON", Some(false)).unwrap());
        assert!(layers.switch(false, "UNSET", Some(true)).unwrap());
        assert!(!layers.switch(false, "UNSET", None).unwrap());
        let bad = |_: &str| Some("maybe".to_owned());
        let layers = Layers {
            env: &bad,
            file: &file,
        };
        let err = layers.switch(false, "FACEENROLL_X", None).unwrap_err();
        assert!(err.to_string().contains("FACEENROLL_X"), "{err}");
    }
}
