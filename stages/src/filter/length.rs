//! `filter.length`: document size bounds in characters, words and lines.
//!
//! The cheapest useful filter: drops empty shells and runaway pages before costlier stages run.

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{count, Declare, Declared, Sig, I64};
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
    chars: Sig<I64>,
    words: Sig<I64>,
    lines: Sig<I64>,
    declared: Declared,
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
    let mut d = Declare::new(args.name);
    let chars = d.signal::<I64>("chars", "characters of text");
    let words = d.signal::<I64>("words", "alphanumeric word tokens");
    let lines = d.signal::<I64>("lines", "non-empty lines");
    d.min(chars, count(cfg.min_chars), "min_chars", "too_short");
    d.max(chars, count(cfg.max_chars), "max_chars", "too_long");
    d.min(words, count(cfg.min_words), "min_words", "too_few_words");
    d.max(words, count(cfg.max_words), "max_words", "too_many_words");
    d.min(lines, count(cfg.min_lines), "min_lines", "too_few_lines");
    Ok(Built::Map(Box::new(Length {
        name: args.name.to_string(),
        chars,
        words,
        lines,
        declared: d.finish(),
    })))
}

impl Stage for Length {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let chars = doc.text().chars().count() as i64;
        let words = doc.words().iter().filter(|w| w.is_alnum()).count() as i64;
        let lines = doc.line_strs().filter(|l| !l.trim().is_empty()).count() as i64;
        self.chars.set(&mut doc.signals, chars);
        self.words.set(&mut doc.signals, words);
        self.lines.set(&mut doc.signals, lines);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    #[test]
    fn counts_and_judges() {
        let s = kit::map(&DEF, DEF.example);
        let mut d = Document::new("a", "Hello, world!\n\nTwo words here.");
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.i64("length.words"), Some(5));
        assert_eq!(d.signals.i64("length.lines"), Some(2));
        assert_eq!(s.judge(&d.signals), Outcome::Drop("too_few_words"));
        let s = kit::map(&DEF, "min_words = 5");
        assert_eq!(s.judge(&d.signals), Outcome::Keep);
    }

    #[test]
    fn bad_config_names_key() {
        assert_eq!(
            kit::build_err(&DEF, "min_words = 10\nmax_words = 5").key,
            "max_words"
        );
        assert_eq!(kit::build_err(&DEF, "min_wrds = 10").key, "min_wrds");
    }
}
