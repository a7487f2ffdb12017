//! `filter.gopher_quality`: Gopher's quality rules (Rae et al. 2021, section A.1.1).
//!
//! Measures over the shared word view (tokens, punctuation included) and the text:
//! - `word_count`: words that are not pure symbols (a token made only of Gopher's symbol
//!   characters, [`crate::text::chars::GOPHER_SYMBOL`], is not a word);
//! - `mean_word_length`: their mean length in characters;
//! - `hash_ratio`, `ellipsis_ratio`: occurrences of `#`, and of `...` or `…`, per token;
//! - `bullet_lines_ratio`: lines (Python's `splitlines`) starting with `•` or `-` after
//!   leading whitespace; `ellipsis_lines_ratio`: lines ending with `...` or `…`;
//! - `alpha_words_ratio`: tokens holding a letter, over all tokens;
//! - `stop_words`: how many distinct stop words occur (exact, case-sensitive match).
//!
//! Stop words are per language (the `lang` signal); English gets Gopher's eight
//! (`the be to of and that have with`), other languages what `lang_stop_words` gives them, or
//! `stop_words` when not listed.
//!
//! With `per_language = true`, a page is judged by its language's row of the per-language
//! table ([`crate::lang_rules`]): its stop words (unless `lang_stop_words` lists the language)
//! and its word-count, word-length, letter and stop-word thresholds; `rules` says which row
//! (`neutral`: a language without one, not judged by those rules; `en` and pages without a
//! `lang` keep the configured numbers).

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::config::{check_fraction, ConfigError, StageArgs};
use crate::declare::{count, Declare, Declared, Sig, Str, F64, I64};
use crate::lang_rules::{LangOverrides, LangTable, Scope};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// Gopher's English stop words.
pub const GOPHER_STOP_WORDS: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];

/// `[stages.gopher_quality]`: Gopher's quality thresholds (each optional; defaults are the
/// paper's, as in datatrove).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherQualityConfig {
    /// Minimum number of words (non-symbol tokens).
    pub min_doc_words: Option<u64>,
    /// Maximum number of words.
    pub max_doc_words: Option<u64>,
    /// Minimum mean word length in characters.
    pub min_avg_word_length: Option<f64>,
    /// Maximum mean word length in characters.
    pub max_avg_word_length: Option<f64>,
    /// Maximum ratio of `#`, and separately of ellipses, to tokens.
    pub max_symbol_word_ratio: Option<f64>,
    /// Maximum fraction of lines starting with a bullet (`•` or `-`).
    pub max_bullet_lines_ratio: Option<f64>,
    /// Maximum fraction of lines ending with an ellipsis.
    pub max_ellipsis_lines_ratio: Option<f64>,
    /// Minimum fraction of tokens holding a letter.
    pub min_alpha_words_ratio: Option<f64>,
    /// Minimum number of distinct stop words present.
    pub min_stop_words: Option<u64>,
    /// Stop words for languages not in `lang_stop_words` (default: Gopher's English eight).
    pub stop_words: Option<Vec<String>>,
    /// Stop words per language code (`lang` signal), e.g. `de = ["der", "die", "und"]`.
    pub lang_stop_words: BTreeMap<String, Vec<String>>,
    /// Judge each language by its row of the per-language table (`rules` signal).
    pub per_language: bool,
    /// Per-language overrides of the table: `[stages.NAME.lang.de]` `min_stop_words = 1`.
    pub lang: LangOverrides,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        GopherQualityConfig {
            min_doc_words: Some(50),
            max_doc_words: Some(100_000),
            min_avg_word_length: Some(3.0),
            max_avg_word_length: Some(10.0),
            max_symbol_word_ratio: Some(0.1),
            max_bullet_lines_ratio: Some(0.9),
            max_ellipsis_lines_ratio: Some(0.3),
            min_alpha_words_ratio: Some(0.8),
            min_stop_words: Some(2),
            stop_words: None,
            lang_stop_words: BTreeMap::new(),
            per_language: false,
            lang: LangOverrides::new(),
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "filter.gopher_quality",
    about: "Gopher quality rules: word count and length, symbols, bullets, ellipses, letters, stop words",
    example: "min_doc_words = 50\nmax_doc_words = 100000\nmin_stop_words = 2\n[lang_stop_words]\nde = [\"der\", \"die\", \"und\", \"in\", \"zu\", \"den\", \"das\", \"nicht\"]",
    build,
};

/// The stage's signal handles.
struct Sigs {
    word_count: Sig<I64>,
    mean_word_length: Sig<F64>,
    hash_ratio: Sig<F64>,
    ellipsis_ratio: Sig<F64>,
    bullet_lines_ratio: Sig<F64>,
    ellipsis_lines_ratio: Sig<F64>,
    alpha_words_ratio: Sig<F64>,
    stop_words: Sig<I64>,
    /// Which rules judged the page (`per_language` only).
    rules: Option<Sig<Str>>,
}

pub struct GopherQuality {
    name: String,
    /// The per-language table with this stage's `lang` overrides applied.
    table: LangTable,
    cfg: GopherQualityConfig,
    default_stops: Vec<String>,
    sig: Sigs,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: GopherQualityConfig = args.parse()?;
    let table = crate::lang_rules::stage_table(cfg.per_language, &cfg.lang)?;
    for (v, key) in [
        (cfg.max_symbol_word_ratio, "max_symbol_word_ratio"),
        (cfg.max_bullet_lines_ratio, "max_bullet_lines_ratio"),
        (cfg.max_ellipsis_lines_ratio, "max_ellipsis_lines_ratio"),
        (cfg.min_alpha_words_ratio, "min_alpha_words_ratio"),
    ] {
        if let Some(v) = v {
            check_fraction(key, v)?;
        }
    }
    if let (Some(lo), Some(hi)) = (cfg.min_doc_words, cfg.max_doc_words) {
        if hi < lo {
            return Err(ConfigError::new(
                "max_doc_words",
                format!("{hi} is below min_doc_words {lo}"),
            ));
        }
    }
    if let (Some(lo), Some(hi)) = (cfg.min_avg_word_length, cfg.max_avg_word_length) {
        if hi < lo {
            return Err(ConfigError::new(
                "max_avg_word_length",
                format!("{hi} is below min_avg_word_length {lo}"),
            ));
        }
    }
    let default_stops = cfg
        .stop_words
        .clone()
        .unwrap_or_else(|| GOPHER_STOP_WORDS.iter().map(|s| s.to_string()).collect());
    let mut d = Declare::new(args.name);
    let sig = Sigs {
        word_count: d.signal("word_count", "words (tokens that are not pure symbols)"),
        mean_word_length: d.signal("mean_word_length", "mean word length in characters"),
        hash_ratio: d.signal("hash_ratio", "'#' per token"),
        ellipsis_ratio: d.signal("ellipsis_ratio", "ellipses per token"),
        bullet_lines_ratio: d.signal(
            "bullet_lines_ratio",
            "fraction of lines starting with a bullet",
        ),
        ellipsis_lines_ratio: d.signal(
            "ellipsis_lines_ratio",
            "fraction of lines ending with an ellipsis",
        ),
        alpha_words_ratio: d.signal("alpha_words_ratio", "fraction of tokens holding a letter"),
        stop_words: d.signal("stop_words", "distinct stop words present"),
        rules: cfg.per_language.then(|| {
            d.signal(
                "rules",
                "the per-language row that judged the page (neutral: none)",
            )
        }),
    };
    if let Some(rules) = sig.rules {
        d.per_language(rules, table.limits());
    }
    let c = &cfg;
    d.min(
        sig.word_count,
        count(c.min_doc_words),
        "min_doc_words",
        "too_few_words",
    );
    d.max(
        sig.word_count,
        count(c.max_doc_words),
        "max_doc_words",
        "too_many_words",
    );
    d.min(
        sig.mean_word_length,
        c.min_avg_word_length,
        "min_avg_word_length",
        "short_words",
    );
    d.max(
        sig.mean_word_length,
        c.max_avg_word_length,
        "max_avg_word_length",
        "long_words",
    );
    d.max(
        sig.hash_ratio,
        c.max_symbol_word_ratio,
        "max_symbol_word_ratio",
        "too_many_hashes",
    );
    d.max(
        sig.ellipsis_ratio,
        c.max_symbol_word_ratio,
        "max_symbol_word_ratio",
        "too_many_ellipses",
    );
    d.max(
        sig.bullet_lines_ratio,
        c.max_bullet_lines_ratio,
        "max_bullet_lines_ratio",
        "too_many_bullet_lines",
    );
    d.max(
        sig.ellipsis_lines_ratio,
        c.max_ellipsis_lines_ratio,
        "max_ellipsis_lines_ratio",
        "too_many_ellipsis_lines",
    );
    d.min(
        sig.alpha_words_ratio,
        c.min_alpha_words_ratio,
        "min_alpha_words_ratio",
        "too_few_alpha_words",
    );
    d.min(
        sig.stop_words,
        count(c.min_stop_words),
        "min_stop_words",
        "too_few_stop_words",
    );
    Ok(Built::Map(Box::new(GopherQuality {
        name: args.name.to_string(),
        table,
        default_stops,
        sig,
        declared: d.finish(),
        cfg,
    })))
}

/// Gopher's quality measures of one document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Quality {
    pub word_count: usize,
    pub mean_word_length: f64,
    pub hash_ratio: f64,
    pub ellipsis_ratio: f64,
    pub bullet_lines_ratio: f64,
    pub ellipsis_lines_ratio: f64,
    pub alpha_words_ratio: f64,
    pub stop_words: usize,
}

/// Non-overlapping occurrences of `pat` in `text`, as Python's `str.count`.
pub fn count_occurrences(text: &str, pat: &str) -> usize {
    memchr::memmem::find_iter(text.as_bytes(), pat.as_bytes())
        .fold((0, 0), |(n, end), at| {
            if at >= end {
                (n + 1, at + pat.len())
            } else {
                (n, end)
            }
        })
        .0
}

/// Computes the measures; `stops` are the stop words of the document's language.
pub fn measure(doc: &Document, stops: &[String]) -> Quality {
    let text = doc.text();
    let words = doc.words();
    let n_tokens = words.len();
    let mut q = Quality::default();
    let (mut n_words, mut word_chars, mut alpha) = (0usize, 0usize, 0usize);
    for w in words {
        if !w.is_symbol() {
            n_words += 1;
            word_chars += w.chars as usize;
        }
        alpha += w.is_alpha() as usize;
    }
    q.word_count = n_words;
    q.mean_word_length = if n_words > 0 {
        word_chars as f64 / n_words as f64
    } else {
        0.0
    };
    let per_token = |k: usize| {
        if n_tokens > 0 {
            k as f64 / n_tokens as f64
        } else {
            0.0
        }
    };
    q.hash_ratio = per_token(memchr::memchr_iter(b'#', text.as_bytes()).count());
    q.ellipsis_ratio =
        per_token(count_occurrences(text, "...") + count_occurrences(text, "\u{2026}"));
    q.alpha_words_ratio = per_token(alpha);
    let (mut lines, mut bullets, mut ellipses) = (0usize, 0usize, 0usize);
    for r in doc.py_lines() {
        let line = &text[r.start as usize..r.end as usize];
        lines += 1;
        let l = line.trim_start_matches(crate::text::chars::is_space);
        bullets += (l.starts_with('•') || l.starts_with('-')) as usize;
        let r = line.trim_end_matches(crate::text::chars::is_space);
        ellipses += (r.ends_with("...") || r.ends_with('\u{2026}')) as usize;
    }
    if lines > 0 {
        q.bullet_lines_ratio = bullets as f64 / lines as f64;
        q.ellipsis_lines_ratio = ellipses as f64 / lines as f64;
    }
    // Distinct stop words present, found through the shared word hashes (the string is
    // compared on a hash hit, so a collision cannot count).
    if !stops.is_empty() {
        let mut wanted: Vec<(u64, &str)> = stops
            .iter()
            .map(|s| (xxhash_rust::xxh3::xxh3_64(s.as_bytes()), s.as_str()))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found: FxHashSet<&str> = FxHashSet::default();
        for (w, h) in words.iter().zip(doc.word_hashes()) {
            if let Ok(k) = wanted.binary_search_by(|x| x.0.cmp(h)) {
                if w.as_str(text) == wanted[k].1 {
                    found.insert(wanted[k].1);
                    if found.len() == wanted.len() {
                        break;
                    }
                }
            }
        }
        q.stop_words = found.len();
    }
    q
}

impl GopherQuality {
    fn stops_for<'a>(&'a self, lang: Option<&str>, scope: &Scope<'a>) -> &'a [String] {
        if let Some(s) = lang.and_then(|l| self.cfg.lang_stop_words.get(l)) {
            return s;
        }
        match scope {
            Scope::Lang(row) => &row.stop_words,
            _ => &self.default_stops,
        }
    }
}

impl Stage for GopherQuality {
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
        let q = measure(doc, self.stops_for(doc.lang(), &scope));
        let (s, sig) = (&mut doc.signals, &self.sig);
        if let Some(rules) = sig.rules {
            rules.set(s, scope.label());
        }
        sig.word_count.set(s, q.word_count as i64);
        sig.mean_word_length.set(s, q.mean_word_length);
        sig.hash_ratio.set(s, q.hash_ratio);
        sig.ellipsis_ratio.set(s, q.ellipsis_ratio);
        sig.bullet_lines_ratio.set(s, q.bullet_lines_ratio);
        sig.ellipsis_lines_ratio.set(s, q.ellipsis_lines_ratio);
        sig.alpha_words_ratio.set(s, q.alpha_words_ratio);
        sig.stop_words.set(s, q.stop_words as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    const PROSE: &str = "The history of the lighthouse begins with fires lit on hills to guide \
        ships. Keepers had to tend the flame through the night, and that work was hard. Many \
        towers were built with stone, and the light was made stronger with lenses of glass. \
        Today most of them have automatic lamps, but some keepers still live with their \
        families in the old houses beside the towers and welcome visitors in summer.";

    #[test]
    fn prose_passes_and_lists_fail() {
        let s = kit::stage(&DEF, "gq", DEF.example).unwrap();
        let mut d = Document::new("a", PROSE);
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Keep, "{:?}", d.signals);
        assert!(d.signals.i64("gq.word_count").unwrap() >= 50);
        assert_eq!(d.signals.i64("gq.stop_words"), Some(7));
        let list = (0..60)
            .map(|i| format!("- item {i} ..."))
            .collect::<Vec<_>>()
            .join("\n");
        let mut d = Document::new("b", list);
        s.process(&mut d);
        assert!(d.signals.f64("gq.bullet_lines_ratio").unwrap() == 1.0);
        assert_ne!(s.judge(&d.signals), Outcome::Keep);
    }

    #[test]
    fn stop_words_follow_the_language() {
        let s = kit::stage(&DEF, "gq", DEF.example).unwrap();
        let mut d = Document::new(
            "de",
            "Der Hund und die Katze sind in der Stadt, nicht das Haus.",
        );
        d.signals.set_str(crate::LANG_SIGNAL, "de");
        s.process(&mut d);
        assert_eq!(d.signals.i64("gq.stop_words"), Some(6));
        let mut d = Document::new(
            "en",
            "Der Hund und die Katze sind in der Stadt, nicht das Haus.",
        );
        s.process(&mut d);
        assert_eq!(d.signals.i64("gq.stop_words"), Some(0));
    }

    #[test]
    fn measures_match_the_definitions() {
        let d = Document::new("m", "## Title...\n• one …\n  - two\nplain words here");
        let q = measure(&d, &[]);
        // Tokens: # # Title ... • one … - two plain words here = 12; symbols: # # ... … -.
        assert_eq!(d.words().len(), 12);
        assert_eq!(q.word_count, 7);
        assert!((q.hash_ratio - 2.0 / 12.0).abs() < 1e-12);
        assert!((q.ellipsis_ratio - 2.0 / 12.0).abs() < 1e-12);
        assert!((q.bullet_lines_ratio - 0.5).abs() < 1e-12);
        assert!((q.ellipsis_lines_ratio - 0.5).abs() < 1e-12);
        assert_eq!(count_occurrences("......", "..."), 2);
        assert_eq!(count_occurrences("....", "..."), 1);
    }

    #[test]
    fn bad_config_names_key() {
        let e = kit::stage(&DEF, "gq", "min_alpha_words_ratio = 2")
            .err()
            .unwrap();
        assert_eq!(e.key, "min_alpha_words_ratio");
        let e = kit::stage(&DEF, "gq", "min_doc_words = 10\nmax_doc_words = 5")
            .err()
            .unwrap();
        assert_eq!(e.key, "max_doc_words");
        let e = kit::stage(&DEF, "gq", "min_words = 5").err().unwrap();
        assert_eq!(e.key, "min_words");
    }
}
