//! `filter.length`: document size bounds in characters, words and lines.
//!
//! The cheapest useful filter: drops empty shells and runaway pages before costlier stages run.

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::signals::{SignalSpec, SignalType, Signals};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// `[stages.length]`: bounds on document size (each optional).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LengthConfig {
    /// Minimum characters.
    pub min_chars: Option<u64>,
    /// Maximum characters.
    pub max_chars: Option<u64>,
    /// Minimum words (Unicode word tokens with a letter or digit).
    pub min_words: Option<u64>,
    /// Maximum words.
    pub max_words: Option<u64>,
    /// Minimum non-empty lines.
    pub min_lines: Option<u64>,
}

pub struct Length {
    name: String,
    cfg: LengthConfig,
    sig_chars: String,
    sig_words: String,
    sig_lines: String,
}

pub static DEF: StageDef = StageDef {
    kind: "filter.length",
    about: "Document size bounds in characters, words and lines",
    example: "min_words = 50\nmax_chars = 1000000",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: LengthConfig = args.parse()?;
    for (lo, hi, key) in [
        (cfg.min_chars, cfg.max_chars, "max_chars"),
        (cfg.min_words, cfg.max_words, "max_words"),
    ] {
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if hi < lo {
                return Err(ConfigError::new(
                    key,
                    format!("{hi} is below the minimum {lo}"),
                ));
            }
        }
    }
    let n = args.name;
    Ok(Built::Map(Box::new(Length {
        name: n.to_string(),
        cfg,
        sig_chars: format!("{n}.chars"),
        sig_words: format!("{n}.words"),
        sig_lines: format!("{n}.lines"),
    })))
}

impl Stage for Length {
    fn name(&self) -> &str {
        &self.name
    }

    fn signals(&self) -> Vec<SignalSpec> {
        vec![
            SignalSpec::new(
                self.sig_chars.clone(),
                SignalType::I64,
                "characters of text",
            ),
            SignalSpec::new(
                self.sig_words.clone(),
                SignalType::I64,
                "alphanumeric word tokens",
            ),
            SignalSpec::new(self.sig_lines.clone(), SignalType::I64, "non-empty lines"),
        ]
    }

    fn reasons(&self) -> Vec<&'static str> {
        vec![
            "too_short",
            "too_long",
            "too_few_words",
            "too_many_words",
            "too_few_lines",
        ]
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let chars = doc.text().chars().count() as i64;
        let words = doc.words().iter().filter(|w| w.is_alnum()).count() as i64;
        let lines = doc.line_strs().filter(|l| !l.trim().is_empty()).count() as i64;
        doc.signals.set_i64(self.sig_chars.clone(), chars);
        doc.signals.set_i64(self.sig_words.clone(), words);
        doc.signals.set_i64(self.sig_lines.clone(), lines);
        Outcome::Keep
    }

    fn thresholds(&self) -> Vec<(String, f64)> {
        let c = &self.cfg;
        let mut t = Vec::new();
        for (sig, v) in [
            (&self.sig_chars, c.min_chars),
            (&self.sig_chars, c.max_chars),
            (&self.sig_words, c.min_words),
            (&self.sig_words, c.max_words),
            (&self.sig_lines, c.min_lines),
        ] {
            if let Some(v) = v {
                t.push((sig.clone(), v as f64));
            }
        }
        t
    }

    fn judge(&self, s: &Signals) -> Outcome {
        let get = |k: &str| s.i64(k).unwrap_or(0) as u64;
        let (c, w, l) = (
            get(&self.sig_chars),
            get(&self.sig_words),
            get(&self.sig_lines),
        );
        let c_ = &self.cfg;
        if c_.min_chars.is_some_and(|m| c < m) {
            Outcome::Drop("too_short")
        } else if c_.max_chars.is_some_and(|m| c > m) {
            Outcome::Drop("too_long")
        } else if c_.min_words.is_some_and(|m| w < m) {
            Outcome::Drop("too_few_words")
        } else if c_.max_words.is_some_and(|m| w > m) {
            Outcome::Drop("too_many_words")
        } else if c_.min_lines.is_some_and(|m| l < m) {
            Outcome::Drop("too_few_lines")
        } else {
            Outcome::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Purpose;

    fn stage(toml: &str) -> Box<dyn Stage> {
        let t: toml::Table = toml.parse().unwrap();
        let args = StageArgs {
            name: "length",
            table: &t,
            base_dir: std::path::Path::new("."),
            purpose: Purpose::Run,
            seed: 0,
        };
        match build(&args) {
            Ok(Built::Map(s)) => s,
            _ => panic!("build failed"),
        }
    }

    #[test]
    fn counts_and_judges() {
        let s = stage(DEF.example);
        let mut d = Document::new("a", "Hello, world!\n\nTwo words here.");
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.i64("length.words"), Some(5));
        assert_eq!(d.signals.i64("length.lines"), Some(2));
        assert_eq!(s.judge(&d.signals), Outcome::Drop("too_few_words"));
        let s = stage("min_words = 5");
        assert_eq!(s.judge(&d.signals), Outcome::Keep);
    }

    #[test]
    fn bad_config_names_key() {
        let t: toml::Table = "min_words = 10\nmax_words = 5".parse().unwrap();
        let args = StageArgs {
            name: "length",
            table: &t,
            base_dir: std::path::Path::new("."),
            purpose: Purpose::Run,
            seed: 0,
        };
        assert_eq!(build(&args).err().unwrap().key, "max_words");
        let t: toml::Table = "min_wrds = 10".parse().unwrap();
        let args = StageArgs {
            name: "length",
            table: &t,
            base_dir: std::path::Path::new("."),
            purpose: Purpose::Run,
            seed: 0,
        };
        assert_eq!(build(&args).err().unwrap().key, "min_wrds");
    }
}
