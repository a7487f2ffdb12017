//! `filter.line_length`: drops pages with a runaway line (minified code, base64 blobs, text
//! pasted without line breaks), measured in characters.
//!
//! The whole stage is its declaration: one signal, one rule (see [`crate::declare`]).

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{count, Declare, Declared, Sig, I64};
use crate::stage::{Built, Outcome, Stage, StageDef};
use crate::Document;

/// `[stages.line_length]`: the longest line a page may have.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineLengthConfig {
    /// Maximum characters in one line (`\n`-separated, line break excluded).
    pub max_line_chars: Option<u64>,
}

pub static DEF: StageDef = StageDef {
    kind: "filter.line_length",
    about: "Maximum line length in characters",
    example: "max_line_chars = 1000",
    build,
};

pub struct LineLength {
    name: String,
    longest: Sig<I64>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: LineLengthConfig = args.parse()?;
    if cfg.max_line_chars == Some(0) {
        return Err(ConfigError::new("max_line_chars", "must be at least 1"));
    }
    let mut d = Declare::new(args.name);
    let longest = d.signal::<I64>("max_line_chars", "characters in the longest line");
    d.max(
        longest,
        count(cfg.max_line_chars),
        "max_line_chars",
        "line_too_long",
    );
    Ok(Built::Map(Box::new(LineLength {
        name: args.name.to_string(),
        longest,
        declared: d.finish(),
    })))
}

impl Stage for LineLength {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let longest = doc.text().split('\n').map(|l| l.chars().count()).max();
        self.longest
            .set(&mut doc.signals, longest.unwrap_or(0) as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    #[test]
    fn the_longest_line_decides() {
        let s = kit::map(&DEF, "max_line_chars = 5");
        let mut d = Document::new("a", "short\nnaïve!\n");
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.i64("line_length.max_line_chars"), Some(6));
        assert_eq!(s.judge(&d.signals), Outcome::Drop("line_too_long"));
        assert_eq!(kit::map(&DEF, "").judge(&d.signals), Outcome::Keep);
        assert_eq!(
            kit::build_err(&DEF, "max_line_chars = 0").key,
            "max_line_chars"
        );
        assert_eq!(kit::build_err(&DEF, "max_line = 5").key, "max_line");
    }
}
