//! `filter.fineweb`: FineWeb's line-structure rules (Penedo et al. 2024, as datatrove's
//! `FineWebQualityFilter` implements them).
//!
//! Over the non-blank `\n`-separated lines:
//! - `line_punct_ratio`: lines ending in a sentence-terminal character (`Sentence_Terminal`:
//!   `.`, `?`, `!`, `。`, `।`, ...), at least `line_punct_thr`;
//! - `short_line_ratio`: lines of at most `short_line_length` characters, at most
//!   `short_line_thr`;
//! - `char_dup_ratio`: characters of lines that repeat an earlier line, over the characters of
//!   the text without its newlines, at most `char_duplicates_ratio`;
//! - `newline_ratio`: newlines per word (shared word view), at most `new_line_ratio`.
//!
//! With `per_language = true`, a page is judged by its language's row of the per-language
//! table ([`crate::lang_rules`]): its short-line length and its punctuated-line, short-line and
//! newline thresholds; `rules` says which row (`neutral`: a language without one, not judged
//! by those three rules; `en` and pages without a `lang` keep the configured numbers).

use serde::Deserialize;

use crate::config::{check_fraction, ConfigError, StageArgs};
use crate::declare::{Bound, Declare, Declared, Sig, Str, F64, I64};
use crate::filter::gopher_repetition::find_duplicates;
use crate::lang_rules::{LangOverrides, LangTable, Scope};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::text::{chars, count_chars};
use crate::Document;

/// `[stages.fineweb]`: FineWeb's thresholds; defaults as in datatrove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineWebConfig {
    /// Minimum fraction of lines ending in terminal punctuation.
    pub line_punct_thr: f64,
    /// Do not apply `line_punct_thr` when no line at all ends in punctuation.
    pub line_punct_exclude_zero: bool,
    /// Maximum fraction of short lines.
    pub short_line_thr: f64,
    /// A line of at most this many characters is short.
    pub short_line_length: u64,
    /// Maximum fraction of characters in duplicated lines.
    pub char_duplicates_ratio: f64,
    /// Maximum newlines per word.
    pub new_line_ratio: f64,
    /// Judge each language by its row of the per-language table (`rules` signal).
    pub per_language: bool,
    /// Per-language overrides of the table: `[stages.NAME.lang.de]` `new_line_ratio = 0.4`.
    pub lang: LangOverrides,
}

impl Default for FineWebConfig {
    fn default() -> Self {
        FineWebConfig {
            line_punct_thr: 0.12,
            line_punct_exclude_zero: false,
            short_line_thr: 0.67,
            short_line_length: 30,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
            per_language: false,
            lang: LangOverrides::new(),
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "filter.fineweb",
    about: "FineWeb line rules: punctuated lines, short lines, duplicated line characters, newlines per word",
    example: "line_punct_thr = 0.12\nshort_line_thr = 0.67\nchar_duplicates_ratio = 0.01\nnew_line_ratio = 0.3",
    build,
};

pub struct FineWeb {
    name: String,
    /// The per-language table with this stage's `lang` overrides applied.
    table: LangTable,
    cfg: FineWebConfig,
    sig_lines: Sig<I64>,
    sig_punct: Sig<F64>,
    sig_short: Sig<F64>,
    sig_dup: Sig<F64>,
    sig_newline: Sig<F64>,
    sig_rules: Option<Sig<Str>>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: FineWebConfig = args.parse()?;
    let table = crate::lang_rules::stage_table(cfg.per_language, &cfg.lang)?;
    check_fraction("line_punct_thr", cfg.line_punct_thr)?;
    check_fraction("short_line_thr", cfg.short_line_thr)?;
    check_fraction("char_duplicates_ratio", cfg.char_duplicates_ratio)?;
    if cfg.new_line_ratio.is_nan() || cfg.new_line_ratio < 0.0 {
        return Err(ConfigError::new("new_line_ratio", "must be a number >= 0"));
    }
    let mut d = Declare::new(args.name);
    let lines = d.signal::<I64>("lines", "non-blank lines");
    let punct = d.signal::<F64>(
        "line_punct_ratio",
        "fraction of lines ending in terminal punctuation",
    );
    let short = d.signal::<F64>("short_line_ratio", "fraction of short lines");
    let dup = d.signal::<F64>(
        "char_dup_ratio",
        "characters in repeated lines / characters without newlines",
    );
    let newline = d.signal::<F64>("newline_ratio", "newlines per word");
    d.fixed(lines, Bound::Min, 1.0, "empty");
    d.min(
        punct,
        Some(cfg.line_punct_thr),
        "line_punct_thr",
        "line_punct_ratio",
    )
    .zero_keeps(cfg.line_punct_exclude_zero);
    d.max(
        short,
        Some(cfg.short_line_thr),
        "short_line_thr",
        "short_line_ratio",
    );
    d.max(
        dup,
        Some(cfg.char_duplicates_ratio),
        "char_duplicates_ratio",
        "char_dup_ratio",
    );
    d.max(
        newline,
        Some(cfg.new_line_ratio),
        "new_line_ratio",
        "list_ratio",
    );
    let rules = cfg.per_language.then(|| {
        d.signal(
            "rules",
            "the per-language row that judged the page (neutral: none)",
        )
    });
    if let Some(rules) = rules {
        d.per_language(rules, table.limits());
    }
    Ok(Built::Map(Box::new(FineWeb {
        name: args.name.to_string(),
        table,
        cfg,
        sig_lines: lines,
        sig_punct: punct,
        sig_short: short,
        sig_dup: dup,
        sig_newline: newline,
        sig_rules: rules,
        declared: d.finish(),
    })))
}

/// FineWeb's measures of one document; `lines` is the number of non-blank lines.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LineStats {
    pub lines: usize,
    pub line_punct_ratio: f64,
    pub short_line_ratio: f64,
    pub char_dup_ratio: f64,
    pub newline_ratio: f64,
}

pub fn measure(doc: &Document, short_line_length: u64) -> LineStats {
    let text = doc.text();
    let lines = || text.split('\n').filter(|l| !chars::strip(l).is_empty());
    let mut st = LineStats::default();
    let (mut n, mut punct, mut short) = (0usize, 0usize, 0usize);
    for l in lines() {
        n += 1;
        punct += l.chars().next_back().is_some_and(chars::is_sterm) as usize;
        // Most lines are long: count characters only when the byte length leaves doubt.
        short += (l.len() as u64 <= short_line_length || count_chars(l) as u64 <= short_line_length)
            as usize;
    }
    st.lines = n;
    if n == 0 {
        return st;
    }
    st.line_punct_ratio = punct as f64 / n as f64;
    st.short_line_ratio = short as f64 / n as f64;
    let newlines = memchr::memchr_iter(b'\n', text.as_bytes()).count();
    let (_, dup_chars) = find_duplicates(lines());
    let non_newline = doc.char_count() - newlines;
    st.char_dup_ratio = dup_chars as f64 / non_newline.max(1) as f64;
    st.newline_ratio = newlines as f64 / doc.words().len().max(1) as f64;
    st
}

impl Stage for FineWeb {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let scope = if self.cfg.per_language {
            self.table.scope(doc.lang())
        } else {
            Scope::Configured(crate::lang_rules::DEFAULT)
        };
        let short_line_length = match scope {
            Scope::Lang(row) => row
                .get("short_line_length")
                .map_or(self.cfg.short_line_length, |v| v as u64),
            _ => self.cfg.short_line_length,
        };
        let st = measure(doc, short_line_length);
        let s = &mut doc.signals;
        if let Some(rules) = self.sig_rules {
            rules.set(s, scope.label());
        }
        self.sig_lines.set(s, st.lines as i64);
        self.sig_punct.set(s, st.line_punct_ratio);
        self.sig_short.set(s, st.short_line_ratio);
        self.sig_dup.set(s, st.char_dup_ratio);
        self.sig_newline.set(s, st.newline_ratio);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    #[test]
    fn prose_passes_and_menus_fail() {
        let s = kit::stage(&DEF, "fw", DEF.example).unwrap();
        let mut d = Document::new(
            "p",
            "The lighthouse stood on the cliff for two hundred years before the storm.\n\
             Its keepers wrote every ship that passed into a leather book, now in the museum.\n\
             Visitors can read it on weekdays; the pages are fragile and kept behind glass.",
        );
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Keep, "{:?}", d.signals);
        assert_eq!(d.signals.f64("fw.line_punct_ratio"), Some(1.0));
        let mut d = Document::new(
            "m",
            "Home\nAbout us\nProducts\nContact\nLogin\nHome\nShop now.",
        );
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("short_line_ratio"));
        assert!((d.signals.f64("fw.line_punct_ratio").unwrap() - 1.0 / 7.0).abs() < 1e-12);
        let mut d = Document::new("e", " \n\n");
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("empty"));
    }

    #[test]
    fn duplicated_lines_and_newlines() {
        let line = "A line that repeats itself word for word, again and again.";
        let text = format!("{line}\n{line}\nSomething else entirely, with a period.");
        let d = Document::new("d", text.clone());
        let st = measure(&d, 30);
        let want = line.chars().count() as f64 / (text.chars().count() - 2) as f64;
        assert!((st.char_dup_ratio - want).abs() < 1e-12);
        assert!((st.newline_ratio - 2.0 / d.words().len() as f64).abs() < 1e-12);
    }

    #[test]
    fn bad_config_names_key() {
        let e = kit::stage(&DEF, "fw", "short_line_thr = 3").err().unwrap();
        assert_eq!(e.key, "short_line_thr");
        let e = kit::stage(&DEF, "fw", "short_lines = 3").err().unwrap();
        assert_eq!(e.key, "short_lines");
    }
}
