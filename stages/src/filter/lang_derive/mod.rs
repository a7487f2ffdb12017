//! Deriving the per-language table ([`crate::lang_rules`]) from reference text, with the
//! filters' own measures ([`gopher_quality::measure`], [`fineweb::measure`]); the method is
//! described in [`crate::lang_rules`]. Used by `cargo run -p stages --example lang_rules`
//! (which writes `table.tsv`) and by its tests; the stages only read the table.

use std::collections::{BTreeMap, BTreeSet};

use crate::filter::{fineweb, gopher_quality};
use crate::lang_rules::*;
use crate::Document;

/// English as a row: the stages' defaults and Gopher's stop words (what `en` is judged by).
pub fn english_row() -> LangRow {
    LangRow {
        lang: "en".to_string(),
        docs: 0,
        values: ENGLISH.to_vec(),
        stop_words: gopher_quality::GOPHER_STOP_WORDS
            .iter()
            .map(|w| w.to_string())
            .collect(),
    }
}

/// A reference document.
#[derive(Clone, Debug)]
pub struct RefDoc {
    pub lang: String,
    /// Where it comes from (one quantile per language, stop words averaged over sources).
    pub source: String,
    pub text: String,
}

/// The measures of one reference document that the rules read.
#[derive(Clone, Debug, Default)]
struct Measures {
    chars_per_word: f64,
    words: f64,
    chars: f64,
    mean_word_length: f64,
    alpha_words_ratio: f64,
    line_punct_ratio: f64,
    newline_ratio: f64,
}

fn measures(doc: &Document) -> Measures {
    let q = gopher_quality::measure(doc, &[]);
    let f = fineweb::measure(doc, 30);
    Measures {
        chars_per_word: doc.char_count() as f64 / q.word_count.max(1) as f64,
        words: q.word_count as f64,
        chars: doc.char_count() as f64,
        mean_word_length: q.mean_word_length,
        alpha_words_ratio: q.alpha_words_ratio,
        line_punct_ratio: f.line_punct_ratio,
        newline_ratio: f.newline_ratio,
    }
}

/// The `q` quantile (linear interpolation between order statistics, numpy's default).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// The 8 stop words of a language: the words (tokens holding a letter and no digit) with the
/// highest document frequency averaged over its sources; ties by the word.
fn stop_words(docs: &[(&RefDoc, Document)]) -> Vec<String> {
    let mut per_source: BTreeMap<&str, (usize, BTreeMap<String, usize>)> = BTreeMap::new();
    for (r, d) in docs {
        let e = per_source.entry(r.source.as_str()).or_default();
        e.0 += 1;
        let text = d.text();
        let seen: BTreeSet<&str> = d
            .words()
            .iter()
            .filter(|w| w.is_alpha() && w.flags & crate::text::Word::DIGIT == 0)
            .map(|w| w.as_str(text))
            .collect();
        for w in seen {
            *e.1.entry(w.to_string()).or_default() += 1;
        }
    }
    let sources = per_source.len() as f64;
    let mut score: BTreeMap<&str, f64> = BTreeMap::new();
    for (n, df) in per_source.values() {
        for (w, k) in df {
            *score.entry(w.as_str()).or_default() += *k as f64 / *n as f64 / sources;
        }
    }
    let mut ranked: Vec<(&str, f64)> = score.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(STOP_WORDS)
        .map(|(w, _)| w.to_string())
        .collect()
}

/// Derives one language's row from its reference documents, against the English medians.
fn derive_row(lang: &str, docs: &[&RefDoc], english: &English) -> LangRow {
    let en = &english.all;
    let parsed: Vec<(&RefDoc, Document)> = docs
        .iter()
        .map(|r| (*r, Document::new(r.source.clone(), r.text.clone())))
        .collect();
    let m: Vec<Measures> = parsed.iter().map(|(_, d)| measures(d)).collect();
    let col = |f: fn(&Measures) -> f64| m.iter().map(f).collect::<Vec<f64>>();
    let cpw = median(&col(|x| x.chars_per_word));
    let stops = stop_words(&parsed);
    // A minimum no higher than the 5% quantile, a maximum no lower than the 95% one.
    let scaled_min = |e: f64, v: &[f64], en_med: f64| {
        let t = if en_med > 0.0 {
            e * median(v) / en_med
        } else {
            e
        };
        t.min(quantile(v, 0.05))
    };
    let scaled_max = |e: f64, v: &[f64], en_med: f64| {
        let t = if en_med > 0.0 {
            e * median(v) / en_med
        } else {
            e
        };
        t.max(quantile(v, 0.95))
    };
    let e = |k: &str| ENGLISH[KEYS.iter().position(|x| *x == k).expect("a key")];
    // Word counts stay English's: a translation has about as many words (dictionary words in
    // scripts without spaces), and the median lengths of the sampled pages per language differ
    // by which pages were sampled far more than by language. Line lengths in characters scale
    // with the word length: the same words at L's characters per word.
    let words_scale = 1.0;
    let chars_scale = cpw / en.chars_per_word;
    let short_len = (e("short_line_length") * chars_scale).round().max(1.0);
    // Short lines at the language's own length.
    let short: Vec<f64> = parsed
        .iter()
        .map(|(_, d)| fineweb::measure(d, short_len as u64).short_line_ratio)
        .collect();
    let stop_counts: Vec<f64> = parsed
        .iter()
        .map(|(_, d)| gopher_quality::measure(d, &stops).stop_words as f64)
        .collect();
    let mwl = col(|x| x.mean_word_length);
    let alpha = col(|x| x.alpha_words_ratio);
    let punct = col(|x| x.line_punct_ratio);
    let newline = col(|x| x.newline_ratio);
    // Line structure: scaled by the sources shared with English; without one, the English
    // number (terminal punctuation is Unicode's `Sentence_Terminal`, the same in every
    // language) and, for newlines per word, more words in the same line where words are short.
    let punct_ratio = matched_ratio(&parsed, &m, english, |x| x.line_punct_ratio).unwrap_or(1.0);
    // Tokens with a letter: punctuation and numbers depend on the kind of text as much as on
    // the language, so also scaled by the shared sources only.
    let alpha_ratio = matched_ratio(&parsed, &m, english, |x| x.alpha_words_ratio).unwrap_or(1.0);
    let newline_ratio =
        matched_ratio(&parsed, &m, english, |x| x.newline_ratio).unwrap_or(1.0 / words_scale);
    let loosen_min = |t: f64, v: &[f64]| t.min(quantile(v, 0.05));
    let loosen_max = |t: f64, v: &[f64]| t.max(quantile(v, 0.95));
    let values = vec![
        (e("min_doc_words") * words_scale).round(),
        (e("max_doc_words") * words_scale).round(),
        round_to(
            scaled_min(e("min_avg_word_length"), &mwl, en.mean_word_length),
            2,
        ),
        round_to(
            scaled_max(e("max_avg_word_length"), &mwl, en.mean_word_length),
            2,
        ),
        round_to(
            loosen_min(e("min_alpha_words_ratio") * alpha_ratio, &alpha).clamp(0.0, 1.0),
            3,
        ),
        e("min_stop_words").min(quantile(&stop_counts, 0.05).floor()),
        round_to(
            loosen_min(e("line_punct_thr") * punct_ratio, &punct).clamp(0.0, 1.0),
            3,
        ),
        // The English line length is 30 characters; at L's own length the typical share of
        // short lines is comparable, so only the reference's spread loosens it.
        round_to(e("short_line_thr").max(quantile(&short, 0.95)).min(1.0), 3),
        short_len,
        round_to(loosen_max(e("new_line_ratio") * newline_ratio, &newline), 3),
        // C4's words per line: the same length of line.
        (e("min_words_per_line") * words_scale).round().max(1.0),
    ];
    LangRow {
        lang: lang.to_string(),
        docs: docs.len(),
        values,
        stop_words: stops,
    }
}

/// Medians of each measure over some documents.
fn medians(m: &[Measures]) -> Measures {
    let col = |f: fn(&Measures) -> f64| median(&m.iter().map(f).collect::<Vec<f64>>());
    Measures {
        chars_per_word: col(|x| x.chars_per_word),
        words: col(|x| x.words),
        chars: col(|x| x.chars),
        mean_word_length: col(|x| x.mean_word_length),
        alpha_words_ratio: col(|x| x.alpha_words_ratio),
        line_punct_ratio: col(|x| x.line_punct_ratio),
        newline_ratio: col(|x| x.newline_ratio),
    }
}

/// The English medians the rows are scaled against: over all English reference documents,
/// and per multilingual source over its English counterpart ([`SOURCE_PAIRS`]).
struct English {
    all: Measures,
    by_source: BTreeMap<&'static str, Measures>,
}

/// Multilingual reference sources and their English counterparts (the same documents in
/// English). Line-structure rules scale only by these matched pairs: lines of a man page and
/// of a news sentence differ by source, not by language.
pub const SOURCE_PAIRS: &[(&str, &str)] = &[
    ("debian-handbook-l10n", "debian-handbook-en"),
    ("debian-reference-l10n", "debian-reference-en"),
    ("manpages-l10n", "man-en"),
    ("linux-kernel-docs-l10n", "linux-kernel-docs"),
];

fn english_medians(english: &[RefDoc]) -> English {
    let m: Vec<(&str, Measures)> = english
        .iter()
        .map(|r| {
            let d = Document::new(r.source.clone(), r.text.clone());
            (r.source.as_str(), measures(&d))
        })
        .collect();
    let all = medians(&m.iter().map(|x| x.1.clone()).collect::<Vec<_>>());
    let by_source = SOURCE_PAIRS
        .iter()
        .filter_map(|(l10n, en)| {
            let v: Vec<Measures> = m
                .iter()
                .filter(|x| x.0 == *en)
                .map(|x| x.1.clone())
                .collect();
            (!v.is_empty()).then(|| (*l10n, medians(&v)))
        })
        .collect();
    English { all, by_source }
}

/// The ratio of L's median of measure `f` to English's over the sources they share (a
/// geometric mean weighted by L's documents per source); `None` when they share none.
fn matched_ratio(
    docs: &[(&RefDoc, Document)],
    m: &[Measures],
    en: &English,
    f: fn(&Measures) -> f64,
) -> Option<f64> {
    let mut by_source: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for ((r, _), x) in docs.iter().zip(m) {
        by_source.entry(r.source.as_str()).or_default().push(f(x));
    }
    let (mut log_sum, mut n) = (0.0f64, 0usize);
    for (s, v) in by_source {
        let Some(e) = en.by_source.get(s) else {
            continue;
        };
        let (ml, me) = (median(&v), f(e));
        if v.len() >= 3 && ml > 0.0 && me > 0.0 {
            log_sum += (ml / me).ln() * v.len() as f64;
            n += v.len();
        }
    }
    (n > 0).then(|| (log_sum / n as f64).exp())
}

/// The English counterparts of the multilingual reference's Debian and kernel sources (the
/// same documents in English): the English reference.
pub const ENGLISH_SOURCES: &[&str] = &[
    "debian-handbook-en",
    "debian-reference-en",
    "man-en",
    "linux-kernel-docs",
];

/// Reads the reference from `../shared` (`shared` is its path): the multilingual TRAIN split,
/// and the English documents of [`ENGLISH_SOURCES`] from the general TRAIN split.
pub fn load_reference(shared: &std::path::Path) -> std::io::Result<(Vec<RefDoc>, Vec<RefDoc>)> {
    use std::io::BufRead;
    let read = |name: &str| -> std::io::Result<Vec<RefDoc>> {
        let f = std::fs::File::open(shared.join("data/classifiers").join(name))?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
            let v: serde_json::Value = serde_json::from_str(&line?)?;
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            out.push(RefDoc {
                lang: field("lang"),
                source: field("source"),
                text: field("text"),
            });
        }
        Ok(out)
    };
    let reference = read("topic-multilingual-train.jsonl.gz")?;
    let english = read("topic-general-train.jsonl.gz")?
        .into_iter()
        .filter(|r| ENGLISH_SOURCES.contains(&r.source.as_str()))
        .collect();
    Ok((reference, english))
}

/// Languages with fewer reference documents get no row (they are judged neutral).
pub const MIN_DOCS: usize = 10;

/// Derives the table: one row per language of `reference` (English excluded) with at least
/// [`MIN_DOCS`] documents, scaled against the `english` reference.
pub fn derive(reference: &[RefDoc], english: &[RefDoc]) -> LangTable {
    let en = english_medians(english);
    let mut by_lang: BTreeMap<&str, Vec<&RefDoc>> = BTreeMap::new();
    for r in reference.iter().filter(|r| r.lang != "en") {
        by_lang.entry(r.lang.as_str()).or_default().push(r);
    }
    let rows = by_lang
        .into_iter()
        .filter(|(_, docs)| docs.len() >= MIN_DOCS)
        .map(|(lang, docs)| (lang.to_string(), derive_row(lang, &docs, &en)))
        .collect();
    LangTable { rows }
}

/// The per-language rules a document breaks under `row` (config keys), measured as the stages
/// measure them: how the derivation report checks held-out text.
pub fn broken(row: &LangRow, text: &str) -> Vec<&'static str> {
    let d = Document::new("doc", text);
    let q = gopher_quality::measure(&d, &row.stop_words);
    let f = fineweb::measure(&d, row.get("short_line_length").unwrap_or(30.0) as u64);
    let v = |k: &str| row.get(k).expect("a key");
    let mut out = Vec::new();
    let mut check = |bad: bool, key: &'static str| {
        if bad {
            out.push(key);
        }
    };
    check((q.word_count as f64) < v("min_doc_words"), "min_doc_words");
    check((q.word_count as f64) > v("max_doc_words"), "max_doc_words");
    check(
        q.mean_word_length < v("min_avg_word_length"),
        "min_avg_word_length",
    );
    check(
        q.mean_word_length > v("max_avg_word_length"),
        "max_avg_word_length",
    );
    check(
        q.alpha_words_ratio < v("min_alpha_words_ratio"),
        "min_alpha_words_ratio",
    );
    check(
        (q.stop_words as f64) < v("min_stop_words"),
        "min_stop_words",
    );
    check(f.line_punct_ratio < v("line_punct_thr"), "line_punct_thr");
    check(f.short_line_ratio > v("short_line_thr"), "short_line_thr");
    check(f.newline_ratio > v("new_line_ratio"), "new_line_ratio");
    out
}

/// Held-out check of the derivation: for each language and each of its sources with at least
/// `min_docs` documents (when the language has another source), the row derived without that
/// source and the share of that source's documents passing every per-language rule.
pub fn held_out(
    reference: &[RefDoc],
    english: &[RefDoc],
    min_docs: usize,
) -> Vec<(String, String, usize, f64)> {
    let en = english_medians(english);
    let mut by_lang: BTreeMap<&str, Vec<&RefDoc>> = BTreeMap::new();
    for r in reference.iter().filter(|r| r.lang != "en") {
        by_lang.entry(r.lang.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (lang, docs) in by_lang {
        let sources: BTreeSet<&str> = docs.iter().map(|r| r.source.as_str()).collect();
        if sources.len() < 2 {
            continue;
        }
        for s in sources {
            let (held, rest): (Vec<&RefDoc>, Vec<&RefDoc>) =
                docs.iter().partition(|r| r.source == s);
            if held.len() < min_docs || rest.len() < MIN_DOCS {
                continue;
            }
            let row = derive_row(lang, &rest, &en);
            let pass = held
                .iter()
                .filter(|r| broken(&row, &r.text).is_empty())
                .count();
            out.push((
                lang.to_string(),
                s.to_string(),
                held.len(),
                pass as f64 / held.len() as f64,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
