//! `mix.decontam`: finds documents that contain benchmark items, by word n-gram overlap.
//!
//! GPT-3 and Llama 2 measure contamination with 13-word n-grams: a document that shares long
//! word sequences with a benchmark item has (part of) the item in it. Here the benchmark files
//! named in the config (JSONL, gzip allowed; the fields to use per file) become one index of
//! n-gram hashes, built once and shared by every worker. Words are the document's normalized
//! view (lower-cased alphanumeric words), so re-indentation, changed white space, punctuation
//! and quote style do not hide an item; stripping comments only removes the n-grams that
//! crossed them.
//!
//! Signals: `<name>.overlap` (the largest fraction of one item's n-grams found in the document),
//! `<name>.ngrams` (how many of that item's n-grams were found) and `<name>.benchmark` (which
//! item: `file:id`, empty when none). The verdict drops (or, in tag mode, flags) a document
//! whose overlap reaches `min_overlap` or whose matched n-grams reach `min_ngrams`.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

use crate::config::{check_fraction, check_range, ConfigError, Purpose, StageArgs};
use crate::declare::{count, Declare, Declared, Sig, Str, F32, I64};
use crate::document::Document;
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};

/// One benchmark file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkFile {
    /// JSONL file (`.gz` allowed), relative to the config file.
    pub path: String,
    /// Name used in the `benchmark` signal (default: the file name without extensions).
    #[serde(default)]
    pub name: Option<String>,
    /// Fields whose text makes up an item (strings, or lists of strings), joined in order.
    pub fields: Vec<String>,
    /// Field holding the item's id (default `task_id`, else `id`, else the line number).
    #[serde(default)]
    pub id_field: Option<String>,
}

/// `[stages.decontam]` settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecontamConfig {
    /// Benchmark files to check documents against.
    pub benchmarks: Vec<BenchmarkFile>,
    /// Words per n-gram (13, as in GPT-3 and Llama 2's contamination analyses).
    #[serde(default = "default_ngram")]
    pub ngram: usize,
    /// Drop when at least this fraction of one item's n-grams occur in the document.
    #[serde(default = "default_min_overlap")]
    pub min_overlap: f64,
    /// Drop when at least this many of one item's n-grams occur (long items, where a small
    /// fraction is still a long copied passage).
    #[serde(default = "default_min_ngrams")]
    pub min_ngrams: u64,
}

fn default_ngram() -> usize {
    13
}
fn default_min_overlap() -> f64 {
    0.05
}
fn default_min_ngrams() -> u64 {
    20
}

/// The shared n-gram index of all benchmark items.
#[derive(Debug, Default)]
pub struct BenchmarkIndex {
    pub ngram: usize,
    /// Item names, `file:id`.
    pub items: Vec<String>,
    /// Distinct n-grams of each item.
    pub item_ngrams: Vec<u32>,
    /// n-gram hash -> range of `postings`.
    map: FxHashMap<u64, (u32, u32)>,
    postings: Vec<u32>,
    /// Items shorter than one n-gram (not indexed).
    pub too_short: usize,
}

const P: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn word_hash(w: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(w.as_bytes())
}

/// Calls `f` with the hash of every window of `n` words of a normalized text.
fn for_each_ngram(normalized: &str, n: usize, mut f: impl FnMut(u64)) {
    if n == 0 {
        return;
    }
    let pn = (0..n).fold(1u64, |a, _| a.wrapping_mul(P));
    let mut window: Vec<u64> = Vec::with_capacity(n);
    let mut h = 0u64;
    let mut count = 0usize;
    for w in normalized.split(' ').filter(|w| !w.is_empty()) {
        let wh = word_hash(w);
        h = h.wrapping_mul(P).wrapping_add(wh);
        if count >= n {
            let old = window[count % n];
            h = h.wrapping_sub(old.wrapping_mul(pn));
            window[count % n] = wh;
        } else {
            window.push(wh);
        }
        count += 1;
        if count >= n {
            f(h);
        }
    }
}

impl BenchmarkIndex {
    /// Builds the index from `(item name, text)` pairs.
    pub fn build(items: impl IntoIterator<Item = (String, String)>, ngram: usize) -> Self {
        let mut idx = BenchmarkIndex {
            ngram,
            ..Default::default()
        };
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        for (name, text) in items {
            let doc = Document::new("", text);
            let mut grams: Vec<u64> = Vec::new();
            for_each_ngram(doc.normalized(), ngram, |h| grams.push(h));
            grams.sort_unstable();
            grams.dedup();
            if grams.is_empty() {
                idx.too_short += 1;
                continue;
            }
            let id = idx.items.len() as u32;
            idx.items.push(name);
            idx.item_ngrams.push(grams.len() as u32);
            pairs.extend(grams.into_iter().map(|g| (g, id)));
        }
        pairs.sort_unstable();
        let mut i = 0;
        while i < pairs.len() {
            let g = pairs[i].0;
            let start = idx.postings.len() as u32;
            while i < pairs.len() && pairs[i].0 == g {
                idx.postings.push(pairs[i].1);
                i += 1;
            }
            idx.map
                .insert(g, (start, idx.postings.len() as u32 - start));
        }
        idx
    }

    /// Loads benchmark files (paths already resolved).
    pub fn load(files: &[(PathBuf, BenchmarkFile)], ngram: usize) -> Result<Self, ConfigError> {
        let mut items = Vec::new();
        for (k, (path, f)) in files.iter().enumerate() {
            let key = format!("benchmarks[{k}].path");
            let raw = std::fs::read(path)
                .map_err(|e| ConfigError::new(&key, format!("{}: {e}", path.display())))?;
            let text = if raw.starts_with(&[0x1f, 0x8b]) {
                let mut s = String::new();
                flate2::read::MultiGzDecoder::new(&raw[..])
                    .read_to_string(&mut s)
                    .map_err(|e| ConfigError::new(&key, format!("{}: {e}", path.display())))?;
                s
            } else {
                String::from_utf8(raw)
                    .map_err(|e| ConfigError::new(&key, format!("{}: {e}", path.display())))?
            };
            let name = f.name.clone().unwrap_or_else(|| {
                let file = path.file_name().map(|s| s.to_string_lossy().to_string());
                let file = file.unwrap_or_default();
                file.split('.').next().unwrap_or_default().to_string()
            });
            let mut found = 0;
            for (ln, line) in text.lines().enumerate() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let mut body = String::new();
                for field in &f.fields {
                    match &v[field] {
                        serde_json::Value::String(s) => {
                            body.push_str(s);
                            body.push('\n');
                        }
                        serde_json::Value::Array(a) => {
                            for s in a.iter().filter_map(|x| x.as_str()) {
                                body.push_str(s);
                                body.push('\n');
                            }
                        }
                        _ => {}
                    }
                }
                if body.is_empty() {
                    continue;
                }
                let id = match &f.id_field {
                    Some(k) => v[k]
                        .as_str()
                        .map(str::to_string)
                        .or(v[k].as_i64().map(|i| i.to_string())),
                    None => v["task_id"]
                        .as_str()
                        .or(v["id"].as_str())
                        .map(str::to_string),
                }
                .unwrap_or_else(|| (ln + 1).to_string());
                items.push((format!("{name}:{id}"), body));
                found += 1;
            }
            if found == 0 {
                return Err(ConfigError::new(
                    format!("benchmarks[{k}].fields"),
                    format!(
                        "no line of {} has the fields {:?}",
                        path.display(),
                        f.fields
                    ),
                ));
            }
        }
        Ok(Self::build(items, ngram))
    }

    /// The best-matching item of a normalized text: (item, matched n-grams, overlap fraction).
    pub fn best_match(&self, normalized: &str) -> Option<(u32, u32, f64)> {
        let mut seen: FxHashSet<u64> = FxHashSet::default();
        let mut counts: FxHashMap<u32, u32> = FxHashMap::default();
        for_each_ngram(normalized, self.ngram, |h| {
            if let Some(&(s, l)) = self.map.get(&h) {
                if seen.insert(h) {
                    for &item in &self.postings[s as usize..(s + l) as usize] {
                        *counts.entry(item).or_default() += 1;
                    }
                }
            }
        });
        counts
            .into_iter()
            .map(|(item, c)| (item, c, c as f64 / self.item_ngrams[item as usize] as f64))
            .max_by(|a, b| a.2.total_cmp(&b.2).then(a.1.cmp(&b.1)).then(b.0.cmp(&a.0)))
    }
}

type CacheKey = (Vec<(PathBuf, BenchmarkFile)>, usize);

/// Indexes built in this process, so that stage instances built per worker share one.
fn cache() -> &'static Mutex<HashMap<CacheKey, Weak<BenchmarkIndex>>> {
    static C: OnceLock<Mutex<HashMap<CacheKey, Weak<BenchmarkIndex>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

/// Loads (or reuses) the shared index of these files.
pub fn shared_index(
    files: Vec<(PathBuf, BenchmarkFile)>,
    ngram: usize,
) -> Result<Arc<BenchmarkIndex>, ConfigError> {
    let key = (files, ngram);
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(idx) = c.get(&key).and_then(Weak::upgrade) {
        return Ok(idx);
    }
    let idx = Arc::new(BenchmarkIndex::load(&key.0, ngram)?);
    c.insert(key, Arc::downgrade(&idx));
    Ok(idx)
}

/// The stage.
pub struct Decontam {
    name: String,
    overlap: Sig<F32>,
    ngrams: Sig<I64>,
    benchmark: Sig<Str>,
    declared: Declared,
    /// Absent when built only to judge stored signals.
    index: Option<Arc<BenchmarkIndex>>,
}

impl Decontam {
    pub fn new(name: &str, cfg: &DecontamConfig, index: Option<Arc<BenchmarkIndex>>) -> Self {
        let mut d = Declare::new(name);
        let overlap = d.signal(
            "overlap",
            "largest fraction of one benchmark item's n-grams found in the document",
        );
        let ngrams = d.signal("ngrams", "n-grams of that item found in the document");
        let benchmark = d.signal(
            "benchmark",
            "the best-matching benchmark item (file:id), empty when none",
        );
        // A share of one item's n-grams (once any is found), or enough n-grams outright.
        d.reach(
            overlap,
            Some(cfg.min_overlap),
            "min_overlap",
            "benchmark_overlap",
        )
        .only_if(ngrams, 1.0);
        d.reach(
            ngrams,
            count(Some(cfg.min_ngrams.max(1))),
            "min_ngrams",
            "benchmark_overlap",
        );
        Decontam {
            name: name.to_string(),
            overlap,
            ngrams,
            benchmark,
            declared: d.finish(),
            index,
        }
    }
}

impl Stage for Decontam {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(index) = &self.index else {
            return Outcome::Keep;
        };
        let (item, n, frac) = match index.best_match(doc.normalized()) {
            Some((item, n, frac)) => (index.items[item as usize].clone(), n, frac),
            None => (String::new(), 0, 0.0),
        };
        self.overlap.set(&mut doc.signals, frac);
        self.ngrams.set(&mut doc.signals, n as i64);
        self.benchmark.set(&mut doc.signals, &item);
        Outcome::Keep
    }
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: DecontamConfig = args.parse()?;
    check_range("ngram", cfg.ngram, 1, 64)?;
    check_fraction("min_overlap", cfg.min_overlap)?;
    if cfg.benchmarks.is_empty() {
        return Err(ConfigError::new(
            "benchmarks",
            "name at least one benchmark file",
        ));
    }
    for (k, b) in cfg.benchmarks.iter().enumerate() {
        if b.fields.is_empty() {
            return Err(ConfigError::new(
                format!("benchmarks[{k}].fields"),
                "name at least one field",
            ));
        }
    }
    let index = if args.purpose == Purpose::Run {
        let mut files = Vec::new();
        for (k, b) in cfg.benchmarks.iter().enumerate() {
            files.push((
                args.resolve_path(&format!("benchmarks[{k}].path"), &b.path)?,
                b.clone(),
            ));
        }
        Some(shared_index(files, cfg.ngram)?)
    } else {
        None
    };
    Ok(Built::Map(Box::new(Decontam::new(args.name, &cfg, index))))
}

// A `const` (not a `static`) so that the registry slice can hold it by value.
pub const DEF: StageDef = StageDef {
    kind: "mix.decontam",
    about: "drops documents that contain benchmark items (word 13-gram overlap)",
    example: r#"min_overlap = 0.05
min_ngrams = 20
[[benchmarks]]
path = "../shared/data/benchmarks/humaneval/HumanEval.jsonl.gz"
fields = ["prompt", "canonical_solution"]
"#,
    build,
};

#[cfg(test)]
mod tests;
