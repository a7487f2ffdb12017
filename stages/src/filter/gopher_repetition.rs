//! `filter.gopher_repetition`: repeated lines, paragraphs and n-grams (Gopher, Rae et al. 2021,
//! table A1; Llama 3's "duplicated n-gram coverage ratio").
//!
//! Measures, all as fractions (a document fails when one exceeds its threshold):
//! - `dup_para_frac`: paragraphs (blocks between blank lines) that repeat an earlier
//!   paragraph, over all paragraphs; `dup_para_char_frac`: their characters over the text's;
//! - `dup_line_frac`, `dup_line_char_frac`: the same for lines (runs of `\n` separate them);
//! - `top_{n}_gram_char_frac` (n = 2, 3, 4): characters covered by the most frequent word
//!   n-gram (its length, words joined by one space, times its count) over the text's; ties go
//!   to the n-gram seen first;
//! - `dup_{n}_gram_char_frac` (n = 5..10): characters of word n-grams that repeat an earlier
//!   one, scanning left to right and jumping past each repeat, over the text's.
//!
//! Words are the shared word view; characters are Unicode scalar values of the whole text.

use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::config::{check_fraction, ConfigError, StageArgs};
use crate::declare::{Declare, Declared, Sig, F64};
use crate::filter::NGRAM_SIZES;
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::text::count_chars;
use crate::Document;

/// `[stages.gopher_repetition]`: thresholds on repetition (each optional; omit one, or set
/// it to 0, to disable it). Defaults are Gopher's, as in datatrove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherRepetitionConfig {
    /// Maximum fraction of lines that duplicate an earlier line.
    pub dup_line_frac: Option<f64>,
    /// Maximum fraction of paragraphs that duplicate an earlier paragraph.
    pub dup_para_frac: Option<f64>,
    /// Maximum fraction of characters in duplicated lines.
    pub dup_line_char_frac: Option<f64>,
    /// Maximum fraction of characters in duplicated paragraphs.
    pub dup_para_char_frac: Option<f64>,
    /// `[n, max_fraction]` pairs: characters covered by the most frequent n-gram.
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, max_fraction]` pairs: characters in n-grams that repeat an earlier one.
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        GopherRepetitionConfig {
            dup_line_frac: Some(0.3),
            dup_para_frac: Some(0.3),
            dup_line_char_frac: Some(0.2),
            dup_para_char_frac: Some(0.2),
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "filter.gopher_repetition",
    about: "Gopher repetition: duplicate lines, paragraphs and n-gram character coverage",
    example: "dup_line_frac = 0.3\ndup_para_frac = 0.3\ntop_n_grams = [[2, 0.2], [3, 0.18], [4, 0.16]]\ndup_n_grams = [[5, 0.15], [6, 0.14], [7, 0.13], [8, 0.12], [9, 0.11], [10, 0.10]]",
    build,
};

const TOP_REASONS: [&str; 17] = [
    "top_0_gram",
    "top_1_gram",
    "top_2_gram",
    "top_3_gram",
    "top_4_gram",
    "top_5_gram",
    "top_6_gram",
    "top_7_gram",
    "top_8_gram",
    "top_9_gram",
    "top_10_gram",
    "top_11_gram",
    "top_12_gram",
    "top_13_gram",
    "top_14_gram",
    "top_15_gram",
    "top_16_gram",
];
const DUP_REASONS: [&str; 17] = [
    "duplicated_0_n_grams",
    "duplicated_1_n_grams",
    "duplicated_2_n_grams",
    "duplicated_3_n_grams",
    "duplicated_4_n_grams",
    "duplicated_5_n_grams",
    "duplicated_6_n_grams",
    "duplicated_7_n_grams",
    "duplicated_8_n_grams",
    "duplicated_9_n_grams",
    "duplicated_10_n_grams",
    "duplicated_11_n_grams",
    "duplicated_12_n_grams",
    "duplicated_13_n_grams",
    "duplicated_14_n_grams",
    "duplicated_15_n_grams",
    "duplicated_16_n_grams",
];

pub struct GopherRepetition {
    name: String,
    sig_dup_para: Sig<F64>,
    sig_dup_para_char: Sig<F64>,
    sig_dup_line: Sig<F64>,
    sig_dup_line_char: Sig<F64>,
    /// `(n, signal)` of the top n-gram rules, then of the duplicated n-gram rules.
    top: Vec<(usize, Sig<F64>)>,
    dup: Vec<(usize, Sig<F64>)>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: GopherRepetitionConfig = args.parse()?;
    for (v, key) in [
        (cfg.dup_line_frac, "dup_line_frac"),
        (cfg.dup_para_frac, "dup_para_frac"),
        (cfg.dup_line_char_frac, "dup_line_char_frac"),
        (cfg.dup_para_char_frac, "dup_para_char_frac"),
    ] {
        if let Some(v) = v {
            check_fraction(key, v)?;
        }
    }
    for (list, key) in [
        (&cfg.top_n_grams, "top_n_grams"),
        (&cfg.dup_n_grams, "dup_n_grams"),
    ] {
        for (i, &(n, f)) in list.iter().enumerate() {
            if !NGRAM_SIZES.contains(&n) {
                return Err(ConfigError::new(
                    format!("{key}[{i}]"),
                    format!("n-gram size {n} is out of range: expected 1..=16"),
                ));
            }
            if list[..i].iter().any(|&(m, _)| m == n) {
                return Err(ConfigError::new(
                    format!("{key}[{i}]"),
                    format!("n-gram size {n} is listed twice"),
                ));
            }
            check_fraction(&format!("{key}[{i}]"), f)?;
        }
    }
    let mut d = Declare::new(args.name);
    // A page with no text has nothing to measure.
    d.reason("empty");
    let para = d.signal(
        "dup_para_frac",
        "fraction of paragraphs repeating an earlier one",
    );
    let para_char = d.signal(
        "dup_para_char_frac",
        "characters in repeated paragraphs / text characters",
    );
    let line = d.signal(
        "dup_line_frac",
        "fraction of lines repeating an earlier one",
    );
    let line_char = d.signal(
        "dup_line_char_frac",
        "characters in repeated lines / text characters",
    );
    let top: Vec<(usize, Sig<F64>)> = cfg
        .top_n_grams
        .iter()
        .map(|&(k, _)| {
            let help = "characters covered by the most frequent n-gram / text characters";
            (k, d.signal(&format!("top_{k}_gram_char_frac"), help))
        })
        .collect();
    let dup: Vec<(usize, Sig<F64>)> = cfg
        .dup_n_grams
        .iter()
        .map(|&(k, _)| {
            let help = "characters in repeated n-grams / text characters";
            (k, d.signal(&format!("dup_{k}_gram_char_frac"), help))
        })
        .collect();
    // datatrove's order: paragraphs, then lines, then n-grams; 0 disables a rule.
    for (sig, max, key) in [
        (para, cfg.dup_para_frac, "dup_para_frac"),
        (para_char, cfg.dup_para_char_frac, "dup_para_char_frac"),
        (line, cfg.dup_line_frac, "dup_line_frac"),
        (line_char, cfg.dup_line_char_frac, "dup_line_char_frac"),
    ] {
        d.max(sig, max.filter(|&m| m > 0.0), key, key);
    }
    for (&(n, sig), &(_, f)) in top.iter().zip(&cfg.top_n_grams) {
        d.max(sig, Some(f), "top_n_grams", TOP_REASONS[n]);
    }
    for (&(n, sig), &(_, f)) in dup.iter().zip(&cfg.dup_n_grams) {
        d.max(sig, Some(f), "dup_n_grams", DUP_REASONS[n]);
    }
    Ok(Built::Map(Box::new(GopherRepetition {
        name: args.name.to_string(),
        sig_dup_para: para,
        sig_dup_para_char: para_char,
        sig_dup_line: line,
        sig_dup_line_char: line_char,
        top,
        dup,
        declared: d.finish(),
    })))
}

/// Duplicate count and duplicate characters of a sequence of strings: every element equal to
/// an earlier one counts, with its length in characters.
pub fn find_duplicates<'a>(items: impl Iterator<Item = &'a str>) -> (usize, usize) {
    let mut seen: FxHashSet<&str> = FxHashSet::default();
    let (mut n, mut chars) = (0, 0);
    for s in items {
        if !seen.insert(s) {
            n += 1;
            chars += count_chars(s);
        }
    }
    (n, chars)
}

/// Lines split at runs of `\n` (empty first and last pieces kept, as `re.split("\n+")`).
fn newline_runs(text: &str) -> impl Iterator<Item = &str> {
    let mut pieces = text.split('\n').peekable();
    let mut first = true;
    std::iter::from_fn(move || loop {
        let s = pieces.next()?;
        let edge = std::mem::take(&mut first) || pieces.peek().is_none();
        if edge || !s.is_empty() {
            return Some(s);
        }
    })
}

/// Polynomial prefix hashes over word hashes, so that any n-gram hashes in O(1).
struct NgramHasher {
    prefix: Vec<u64>,
    pow: Vec<u64>,
}

const BASE: u64 = 0x9E37_79B9_7F4A_7C15 | 1;

impl NgramHasher {
    fn new(hashes: &[u64], max_n: usize) -> Self {
        let mut prefix = Vec::with_capacity(hashes.len() + 1);
        prefix.push(0u64);
        let mut h = 0u64;
        for &w in hashes {
            h = h.wrapping_mul(BASE).wrapping_add(w);
            prefix.push(h);
        }
        let mut pow = vec![1u64; max_n + 1];
        for i in 1..=max_n {
            pow[i] = pow[i - 1].wrapping_mul(BASE);
        }
        NgramHasher { prefix, pow }
    }
    #[inline]
    fn gram(&self, i: usize, n: usize) -> u64 {
        self.prefix[i + n].wrapping_sub(self.prefix[i].wrapping_mul(self.pow[n]))
    }
}

/// The repetition measures of one text (fractions as defined in the module docs).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Repetition {
    pub dup_para_frac: f64,
    pub dup_para_char_frac: f64,
    pub dup_line_frac: f64,
    pub dup_line_char_frac: f64,
    /// `(n, fraction)` per configured size.
    pub top: Vec<(usize, f64)>,
    pub dup: Vec<(usize, f64)>,
}

/// Computes the measures over a document's shared views.
pub fn measure(doc: &Document, top_ns: &[usize], dup_ns: &[usize]) -> Repetition {
    let text = doc.text();
    let total = doc.char_count() as f64;
    let mut r = Repetition::default();
    let paras = doc.paragraphs();
    let (pd, pc) = find_duplicates(
        paras
            .iter()
            .map(|p| &text[p.start as usize..p.end as usize]),
    );
    r.dup_para_frac = pd as f64 / paras.len().max(1) as f64;
    r.dup_para_char_frac = pc as f64 / total;
    let mut n_lines = 0usize;
    let (ld, lc) = find_duplicates(newline_runs(text).inspect(|_| n_lines += 1));
    r.dup_line_frac = ld as f64 / n_lines.max(1) as f64;
    r.dup_line_char_frac = lc as f64 / total;

    let words = doc.words();
    let hashes = doc.word_hashes();
    let max_n = top_ns.iter().chain(dup_ns).copied().max().unwrap_or(0);
    let hasher = NgramHasher::new(hashes, max_n);
    // Prefix sums of word lengths in characters.
    let mut clen = Vec::with_capacity(words.len() + 1);
    clen.push(0usize);
    for w in words {
        clen.push(clen.last().copied().unwrap_or(0) + w.chars as usize);
    }
    let nw = words.len();
    SCRATCH.with(|cell| {
        let (counts, seen) = &mut *cell.borrow_mut();
        ngram_measures(
            &hasher, &clen, nw, total, top_ns, dup_ns, counts, seen, &mut r,
        );
        // Tables keep their capacity between documents, within reason.
        if counts.slots.capacity() > 1 << 20 {
            *counts = GramTable::default();
            *seen = GramTable::default();
        }
    });
    r
}

/// Counts of n-gram hashes with the first position of each: open addressing, linear
/// probing, sized for the positions of one level (the keys are hashes already, so one
/// multiplication places them). Cheaper than a general map for this insert-only use.
#[derive(Default)]
struct GramTable {
    /// `(hash, count, first position)`; a count of 0 marks an empty slot.
    slots: Vec<(u64, u32, u32)>,
    shift: u32,
}

impl GramTable {
    /// Empties the table, sized for `n` distinct keys at most.
    fn reset(&mut self, n: usize) {
        let cap = (2 * n).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(cap, (0, 0, 0));
        self.shift = 64 - cap.trailing_zeros();
    }

    /// Counts one occurrence of `h` at position `at`: its count so far and first position.
    #[inline]
    fn add(&mut self, h: u64, at: u32) -> (u32, u32) {
        let mask = self.slots.len() - 1;
        let mut k = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let s = &mut self.slots[k];
            if s.1 == 0 {
                *s = (h, 1, at);
                return (1, at);
            }
            if s.0 == h {
                s.1 += 1;
                return (s.1, s.2);
            }
            k = (k + 1) & mask;
        }
    }
}

thread_local! {
    /// Reused n-gram tables (counts per level; repeats of the duplicate scan): resetting
    /// keeps the allocation for the next document.
    static SCRATCH: std::cell::RefCell<(GramTable, GramTable)> =
        std::cell::RefCell::new((GramTable::default(), GramTable::default()));
}

/// The n-gram measures, level by level (n = smallest configured size up to the largest).
///
/// An n-gram can only occur twice where its (n-1)-gram prefix does, so each level counts only
/// the positions whose prefix repeats (`repeats`), and every other position is known to hold
/// a unique n-gram. Both rules stay exact: the most frequent n-gram is among the counted
/// positions unless every n-gram is unique (then it is the first one), and the left-to-right
/// duplicate scan only needs the set of n-grams that occur more than once.
#[allow(clippy::too_many_arguments)]
fn ngram_measures(
    hasher: &NgramHasher,
    clen: &[usize],
    nw: usize,
    total: f64,
    top_ns: &[usize],
    dup_ns: &[usize],
    counts: &mut GramTable,
    seen: &mut GramTable,
    r: &mut Repetition,
) {
    let sizes = || top_ns.iter().chain(dup_ns).copied();
    let (Some(lo), Some(hi)) = (sizes().min(), sizes().max()) else {
        return;
    };
    let mut top: Vec<(usize, f64)> = Vec::new();
    let mut dup: Vec<(usize, f64)> = Vec::new();
    // cand: positions whose (n-1)-gram occurs more than once, in order (all at the first
    // level); marks[i]: the n-gram at i occurs more than once.
    let mut cand: Vec<u32> = (0..nw as u32).collect();
    let mut marks: Vec<bool> = vec![false; nw];
    for n in lo..=hi {
        if nw < n {
            top.push((n, 0.0));
            dup.push((n, 0.0));
            continue;
        }
        let last = nw - n; // last start position
        while cand.last().is_some_and(|&i| i as usize > last) {
            cand.pop();
        }
        counts.reset(cand.len());
        let mut best: (u32, u32) = (0, 0); // (count, first index)
        for &i in &cand {
            let e = counts.add(hasher.gram(i as usize, n), i);
            if e.0 > 1 {
                marks[e.1 as usize] = true;
                marks[i as usize] = true;
            }
            if e.0 > best.0 || (e.0 == best.0 && e.1 < best.1) {
                best = e;
            }
        }
        if best.0 <= 1 {
            best = (1, 0); // every n-gram is unique: the first one wins the tie
        }
        let i = best.1 as usize;
        let gram_chars = clen[i + n] - clen[i] + (n - 1);
        top.push((n, (gram_chars * best.0 as usize) as f64 / total));
        cand.retain(|&i| std::mem::take(&mut marks[i as usize]));
        if dup_ns.contains(&n) {
            seen.reset(cand.len());
            let mut repeated = 0usize;
            let mut next_free = 0usize; // the scan jumps past a repeat
            for &i in &cand {
                let i = i as usize;
                if i < next_free {
                    continue;
                }
                if seen.add(hasher.gram(i, n), i as u32).0 > 1 {
                    repeated += clen[i + n] - clen[i];
                    next_free = i + n;
                }
            }
            dup.push((n, repeated as f64 / total));
        } else {
            dup.push((n, 0.0));
        }
    }
    for &n in top_ns {
        r.top.push(top[n - lo]);
    }
    for &n in dup_ns {
        r.dup.push(dup[n - lo]);
    }
}

impl Stage for GopherRepetition {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        if doc.text().is_empty() {
            return Outcome::Drop("empty");
        }
        let top_ns: Vec<usize> = self.top.iter().map(|t| t.0).collect();
        let dup_ns: Vec<usize> = self.dup.iter().map(|t| t.0).collect();
        let r = measure(doc, &top_ns, &dup_ns);
        let s = &mut doc.signals;
        self.sig_dup_para.set(s, r.dup_para_frac);
        self.sig_dup_para_char.set(s, r.dup_para_char_frac);
        self.sig_dup_line.set(s, r.dup_line_frac);
        self.sig_dup_line_char.set(s, r.dup_line_char_frac);
        for ((_, sig), (_, v)) in self.top.iter().zip(&r.top) {
            sig.set(s, *v);
        }
        for ((_, sig), (_, v)) in self.dup.iter().zip(&r.dup) {
            sig.set(s, *v);
        }
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    #[test]
    fn example_builds_and_repeats_are_measured() {
        let s = kit::stage(&DEF, "rep", DEF.example).unwrap();
        // Four distinct paragraphs, one repeated twice: 2 of 6 paragraphs duplicate.
        let para = "The quick brown fox jumps over the lazy dog near the river bank today.";
        let text = format!(
            "{para}\n\nA second paragraph with other words in it.\n\n{para}\n\nThird one here, quite different.\n\n{para}\n\nLast words."
        );
        let mut d = Document::new("a", text.clone());
        assert_eq!(s.process(&mut d), Outcome::Keep);
        let frac = d.signals.f64("rep.dup_para_frac").unwrap();
        assert!((frac - 2.0 / 6.0).abs() < 1e-12, "{frac}");
        let chars = d.signals.f64("rep.dup_para_char_frac").unwrap();
        let want = 2.0 * para.chars().count() as f64 / text.chars().count() as f64;
        assert!((chars - want).abs() < 1e-12);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("dup_para_frac"));
        // The same text passes with the paragraph rules off, then fails on repeated n-grams.
        let s2 = kit::stage(
            &DEF,
            "rep",
            "dup_para_frac = 0\ndup_para_char_frac = 0\ndup_line_frac = 0\ndup_line_char_frac = 0",
        )
        .unwrap();
        assert!(
            matches!(s2.judge(&d.signals), Outcome::Drop(r) if r.starts_with("top_")),
            "{:?}",
            d.signals
        );
        assert!(d.signals.f64("rep.dup_5_gram_char_frac").unwrap() > 0.3);
    }

    #[test]
    fn top_ngram_ties_go_to_the_first_seen() {
        // Every 2-gram occurs once: the first one ("ab cd", 5 chars) covers 5 of 14 chars.
        let d = Document::new("t", "ab cd efg hij");
        let r = measure(&d, &[2], &[]);
        assert!((r.top[0].1 - 5.0 / 13.0).abs() < 1e-12, "{:?}", r.top);
    }

    #[test]
    fn duplicated_ngrams_skip_past_repeats() {
        // "a b c d e" twice: the second 5-gram repeats (5 chars without spaces).
        let d = Document::new("t", "a b c d e a b c d e");
        let r = measure(&d, &[], &[5]);
        assert!((r.dup[0].1 - 5.0 / 19.0).abs() < 1e-12, "{:?}", r.dup);
    }

    /// The definitions, written the plain way (strings, every n-gram counted).
    fn naive(words: &[&str], n: usize, total: usize) -> (f64, f64) {
        let grams: Vec<String> = (0..words.len().saturating_sub(n - 1))
            .map(|i| words[i..i + n].join(" "))
            .collect();
        let mut counts: Vec<(String, usize)> = Vec::new();
        for g in &grams {
            match counts.iter_mut().find(|(x, _)| x == g) {
                Some(c) => c.1 += 1,
                None => counts.push((g.clone(), 1)),
            }
        }
        let top = counts
            .iter()
            .fold(None::<&(String, usize)>, |b, c| match b {
                Some(b) if b.1 >= c.1 => Some(b),
                _ => Some(c),
            })
            .map_or(0, |(g, c)| g.chars().count() * c);
        let mut seen = std::collections::HashSet::new();
        let (mut rep, mut i) = (0, 0);
        while i + n <= words.len() {
            let g = words[i..i + n].concat();
            if seen.contains(&g) {
                rep += g.chars().count();
                i += n;
            } else {
                seen.insert(g);
                i += 1;
            }
        }
        (top as f64 / total as f64, rep as f64 / total as f64)
    }

    #[test]
    fn level_wise_counting_equals_the_plain_definitions() {
        // Small vocabularies make repeats of every length; check every size 2..=10.
        let vocab = ["the", "lamp", "keeper", "of", "light", "sea", "a", "night"];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for doc in 0..300 {
            let len = 1 + doc % 60;
            let k = 2 + doc % vocab.len().max(2);
            let words: Vec<&str> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    vocab[(x % k as u64) as usize % vocab.len()]
                })
                .collect();
            let text = words.join(" ");
            let d = Document::new("p", text.clone());
            let ns: Vec<usize> = (2..=10).collect();
            let r = measure(&d, &ns, &ns);
            for (j, &n) in ns.iter().enumerate() {
                let (top, dup) = naive(&words, n, text.chars().count());
                assert!(
                    (r.top[j].1 - top).abs() < 1e-12,
                    "doc {doc} top {n}: {} vs {top} ({text})",
                    r.top[j].1
                );
                assert!(
                    (r.dup[j].1 - dup).abs() < 1e-12,
                    "doc {doc} dup {n}: {} vs {dup} ({text})",
                    r.dup[j].1
                );
            }
        }
    }

    #[test]
    fn lines_split_on_newline_runs_keep_edge_pieces() {
        let v: Vec<&str> = newline_runs("\na\n\nb\n").collect();
        assert_eq!(v, ["", "a", "b", ""]);
        assert_eq!(find_duplicates(newline_runs("\na\n\nb\n")), (1, 0));
    }

    #[test]
    fn bad_config_names_key() {
        let e = kit::stage(&DEF, "rep", "dup_line_frac = 1.5")
            .err()
            .unwrap();
        assert_eq!(e.key, "dup_line_frac");
        let e = kit::stage(&DEF, "rep", "top_n_grams = [[40, 0.1]]")
            .err()
            .unwrap();
        assert_eq!(e.key, "top_n_grams[0]");
        let e = kit::stage(&DEF, "rep", "dup_lines = 0.1").err().unwrap();
        assert_eq!(e.key, "dup_lines");
    }
}
