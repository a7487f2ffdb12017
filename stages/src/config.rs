//! Stage configuration: what a registry entry receives, and the errors it returns.
//!
//! Each stage owns a config struct (`#[serde(deny_unknown_fields)]`, field docs are the user
//! reference) parsed from its `[stages.NAME]` section by [`StageArgs::parse`], which reports the
//! exact key of a type error. Validation returns a [`ConfigError`] naming the key; the engine
//! prefixes the section path and adds the file and line before exiting with code 2.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A configuration mistake: the key (dotted path, relative to the section) and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why a stage is being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// To process documents: load every resource.
    Run,
    /// Only to re-judge stored signals (`curate mix`, `curate check`): heavy resources such as
    /// models may be skipped, thresholds must be validated.
    Select,
}

/// What a registry entry receives to build a stage.
pub struct StageArgs<'a> {
    /// Instance name: the `NAME` of `[stages.NAME]`.
    pub name: &'a str,
    /// The section, without the keys the engine owns (`type`, `mode`).
    pub table: &'a toml::Table,
    /// Folder of the config file: relative resource paths resolve against it.
    pub base_dir: &'a Path,
    pub purpose: Purpose,
    /// The pipeline seed.
    pub seed: u64,
}

impl StageArgs<'_> {
    /// Parses the section into the stage's config struct, naming the offending key on error.
    ///
    /// Under [`crate::describe::capture`] it records what `T` accepts instead, and stops the
    /// build.
    pub fn parse<T: DeserializeOwned + std::fmt::Debug>(&self) -> Result<T, ConfigError> {
        if crate::describe::describing() {
            crate::describe::record::<T>();
            return Err(ConfigError::new("", "config described, not parsed"));
        }
        parse_table(self.table)
    }

    /// Resolves a resource path against the config folder and checks that it exists.
    pub fn resolve_path(&self, key: &str, path: &str) -> Result<PathBuf, ConfigError> {
        let p = Path::new(path);
        let full = if p.is_absolute() || path.starts_with("s3://") {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        };
        if !path.starts_with("s3://") && !full.exists() {
            return Err(ConfigError::new(
                key,
                format!("file not found: {}", full.display()),
            ));
        }
        Ok(full)
    }
}

/// Deserializes a TOML table into `T`, reporting the dotted key of the first error.
pub fn parse_table<T: DeserializeOwned>(table: &toml::Table) -> Result<T, ConfigError> {
    let value = toml::Value::Table(table.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names unknown fields in the message; put the offending key in the path.
        let key = match (path.as_str(), unknown_field(&inner)) {
            (".", Some(f)) | ("", Some(f)) => f,
            (p, Some(f)) if !p.ends_with(&f) => format!("{p}.{f}"),
            (".", _) => String::new(),
            (p, _) => p.to_string(),
        };
        ConfigError::new(key, inner.trim().to_string())
    })
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Checks `lo <= v <= hi`.
pub fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), ConfigError> {
    // Written so that NaN (which compares false to everything) is out of range too.
    if !(v >= lo && v <= hi) {
        return Err(ConfigError::new(
            key,
            format!("{v} is out of range: expected {lo}..={hi}"),
        ));
    }
    Ok(())
}

/// Checks that a fraction lies in `0..=1`.
pub fn check_fraction(key: &str, v: f64) -> Result<(), ConfigError> {
    check_range(key, v, 0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct C {
        min_words: u64,
        #[serde(default)]
        inner: Option<Inner>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        frac: f64,
    }

    fn t(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse_table::<C>(&t("min_words = 'ten'")).unwrap_err();
        assert_eq!(e.key, "min_words");
        let e = parse_table::<C>(&t("min_words = 1\nmax = 2")).unwrap_err();
        assert_eq!(e.key, "max");
        let e = parse_table::<C>(&t("min_words = 1\n[inner]\nfrac = 'x'")).unwrap_err();
        assert_eq!(e.key, "inner.frac");
        let e = parse_table::<C>(&t("")).unwrap_err();
        assert!(e.message.contains("min_words"), "{e}");
        assert!(check_fraction("f", 1.4).is_err());
        assert!(check_fraction("f", f64::NAN).is_err());
    }
}
