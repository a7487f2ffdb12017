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

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::config::{check_fraction, ConfigError, StageArgs};
use crate::signals::{SignalSpec, SignalType, Signals};
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
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "filter.gopher_quality",
    about: "Gopher quality rules: word count and length, symbols, bullets, ellipses, letters, stop words",
    example: "min_doc_words = 50\nmax_doc_words = 100000\nmin_stop_words = 2\n[lang_stop_words]\nde = [\"der\", \"die\", \"und\", \"in\", \"zu\", \"den\", \"das\", \"nicht\"]",
    build,
};

struct Sigs {
    word_count: String,
    mean_word_length: String,
    hash_ratio: String,
    ellipsis_ratio: String,
    bullet_lines_ratio: String,
    ellipsis_lines_ratio: String,
    alpha_words_ratio: String,
    stop_words: String,
}

pub struct GopherQuality {
    name: String,
    cfg: GopherQualityConfig,
    default_stops: Vec<String>,
    sig: Sigs,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: GopherQualityConfig = args.parse()?;
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
    let n = args.name;
    let default_stops = cfg
        .stop_words
        .clone()
        .unwrap_or_else(|| GOPHER_STOP_WORDS.iter().map(|s| s.to_string()).collect());
    Ok(Built::Map(Box::new(GopherQuality {
        name: n.to_string(),
        default_stops,
        sig: Sigs {
            word_count: format!("{n}.word_count"),
            mean_word_length: format!("{n}.mean_word_length"),
            hash_ratio: format!("{n}.hash_ratio"),
            ellipsis_ratio: format!("{n}.ellipsis_ratio"),
            bullet_lines_ratio: format!("{n}.bullet_lines_ratio"),
            ellipsis_lines_ratio: format!("{n}.ellipsis_lines_ratio"),
            alpha_words_ratio: format!("{n}.alpha_words_ratio"),
            stop_words: format!("{n}.stop_words"),
        },
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
    fn stops_for(&self, lang: Option<&str>) -> &[String] {
        lang.and_then(|l| self.cfg.lang_stop_words.get(l))
            .unwrap_or(&self.default_stops)
    }
}

impl Stage for GopherQuality {
    fn name(&self) -> &str {
        &self.name
    }

    fn signals(&self) -> Vec<SignalSpec> {
        let s = &self.sig;
        let f = |n: &String, t, h: &'static str| SignalSpec::new(n.clone(), t, h);
        vec![
            f(
                &s.word_count,
                SignalType::I64,
                "words (tokens that are not pure symbols)",
            ),
            f(
                &s.mean_word_length,
                SignalType::F64,
                "mean word length in characters",
            ),
            f(&s.hash_ratio, SignalType::F64, "'#' per token"),
            f(&s.ellipsis_ratio, SignalType::F64, "ellipses per token"),
            f(
                &s.bullet_lines_ratio,
                SignalType::F64,
                "fraction of lines starting with a bullet",
            ),
            f(
                &s.ellipsis_lines_ratio,
                SignalType::F64,
                "fraction of lines ending with an ellipsis",
            ),
            f(
                &s.alpha_words_ratio,
                SignalType::F64,
                "fraction of tokens holding a letter",
            ),
            f(
                &s.stop_words,
                SignalType::I64,
                "distinct stop words present",
            ),
        ]
    }

    fn reasons(&self) -> Vec<&'static str> {
        vec![
            "too_few_words",
            "too_many_words",
            "short_words",
            "long_words",
            "too_many_hashes",
            "too_many_ellipses",
            "too_many_bullet_lines",
            "too_many_ellipsis_lines",
            "too_few_alpha_words",
            "too_few_stop_words",
        ]
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let q = measure(doc, self.stops_for(doc.lang()));
        let (s, sig) = (&mut doc.signals, &self.sig);
        s.set_i64(sig.word_count.clone(), q.word_count as i64);
        s.set_f64(sig.mean_word_length.clone(), q.mean_word_length);
        s.set_f64(sig.hash_ratio.clone(), q.hash_ratio);
        s.set_f64(sig.ellipsis_ratio.clone(), q.ellipsis_ratio);
        s.set_f64(sig.bullet_lines_ratio.clone(), q.bullet_lines_ratio);
        s.set_f64(sig.ellipsis_lines_ratio.clone(), q.ellipsis_lines_ratio);
        s.set_f64(sig.alpha_words_ratio.clone(), q.alpha_words_ratio);
        s.set_i64(sig.stop_words.clone(), q.stop_words as i64);
        Outcome::Keep
    }

    fn thresholds(&self) -> Vec<(String, f64)> {
        let (c, s) = (&self.cfg, &self.sig);
        [
            (&s.word_count, c.min_doc_words.map(|v| v as f64)),
            (&s.word_count, c.max_doc_words.map(|v| v as f64)),
            (&s.mean_word_length, c.min_avg_word_length),
            (&s.mean_word_length, c.max_avg_word_length),
            (&s.hash_ratio, c.max_symbol_word_ratio),
            (&s.ellipsis_ratio, c.max_symbol_word_ratio),
            (&s.bullet_lines_ratio, c.max_bullet_lines_ratio),
            (&s.ellipsis_lines_ratio, c.max_ellipsis_lines_ratio),
            (&s.alpha_words_ratio, c.min_alpha_words_ratio),
            (&s.stop_words, c.min_stop_words.map(|v| v as f64)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
        .collect()
    }

    fn judge(&self, s: &Signals) -> Outcome {
        let (c, sig) = (&self.cfg, &self.sig);
        let i = |k: &str| s.i64(k).unwrap_or(0) as u64;
        let f = |k: &str| s.f64(k).unwrap_or(0.0);
        let words = i(&sig.word_count);
        if c.min_doc_words.is_some_and(|m| words < m) {
            return Outcome::Drop("too_few_words");
        }
        if c.max_doc_words.is_some_and(|m| words > m) {
            return Outcome::Drop("too_many_words");
        }
        let mean = f(&sig.mean_word_length);
        if c.min_avg_word_length.is_some_and(|m| mean < m) {
            return Outcome::Drop("short_words");
        }
        if c.max_avg_word_length.is_some_and(|m| mean > m) {
            return Outcome::Drop("long_words");
        }
        if let Some(m) = c.max_symbol_word_ratio {
            if f(&sig.hash_ratio) > m {
                return Outcome::Drop("too_many_hashes");
            }
            if f(&sig.ellipsis_ratio) > m {
                return Outcome::Drop("too_many_ellipses");
            }
        }
        if c.max_bullet_lines_ratio
            .is_some_and(|m| f(&sig.bullet_lines_ratio) > m)
        {
            return Outcome::Drop("too_many_bullet_lines");
        }
        if c.max_ellipsis_lines_ratio
            .is_some_and(|m| f(&sig.ellipsis_lines_ratio) > m)
        {
            return Outcome::Drop("too_many_ellipsis_lines");
        }
        if c.min_alpha_words_ratio
            .is_some_and(|m| f(&sig.alpha_words_ratio) < m)
        {
            return Outcome::Drop("too_few_alpha_words");
        }
        if c.min_stop_words.is_some_and(|m| i(&sig.stop_words) < m) {
            return Outcome::Drop("too_few_stop_words");
        }
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::build_for_test;

    const PROSE: &str = "The history of the lighthouse begins with fires lit on hills to guide \
        ships. Keepers had to tend the flame through the night, and that work was hard. Many \
        towers were built with stone, and the light was made stronger with lenses of glass. \
        Today most of them have automatic lamps, but some keepers still live with their \
        families in the old houses beside the towers and welcome visitors in summer.";

    #[test]
    fn prose_passes_and_lists_fail() {
        let s = build_for_test(&DEF, "gq", DEF.example).unwrap();
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
        let s = build_for_test(&DEF, "gq", DEF.example).unwrap();
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
        let e = build_for_test(&DEF, "gq", "min_alpha_words_ratio = 2")
            .err()
            .unwrap();
        assert_eq!(e.key, "min_alpha_words_ratio");
        let e = build_for_test(&DEF, "gq", "min_doc_words = 10\nmax_doc_words = 5")
            .err()
            .unwrap();
        assert_eq!(e.key, "max_doc_words");
        let e = build_for_test(&DEF, "gq", "min_words = 5").err().unwrap();
        assert_eq!(e.key, "min_words");
    }
}
