//! Selection: which stored documents a mix may use, decided from stored signals alone.
//!
//! Every document file of a finished run (`docs/` and `dropped/`) is scanned with the one
//! Parquet reader ([`crate::io::row_groups`]), one file per task, reading only the id, the drop columns, the source file and the signal
//! columns (never the text). Each row's signals are re-derived (stages that
//! [`derive`](stages::Stage::derive), such as `mix.bucket`) and re-judged by every stage of
//! the (possibly overridden) plan with [`Built::judge`](stages::Built::judge), so a changed
//! threshold changes the selection without re-running any stage.
//!
//! - Rows of `docs/` are candidates when every stage keeps them. Stages in tag mode left their
//!   failures there with flags: the current thresholds decide again.
//! - Rows of `dropped/` were removed by a stage in drop mode. One is recovered when the run's
//!   own config (the stored `config.toml`) confirms it was a threshold drop (its stage's judge
//!   gives the stored reason), the current config keeps it, and no stage after the one that
//!   dropped it is missing: a stage that never ran for it and whose signals are absent makes
//!   it *incomplete* (derived signals are recomputed; a missing token count is counted).
//! - An optional SQL condition (`where`) over columns and signals narrows the selection
//!   ([`crate::query::Condition`], evaluated on the scanned batches).
//!
//! The result keeps, per candidate, its file and row, so that only picked rows' text is read
//! later; its order is file order then row order, whatever the thread count.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::plan::Candidate;
use arrow::array::{Array, RecordBatch, StringArray};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stages::tokenize::TokenizerConfig;
use stages::{Built, Error, Outcome, Signals, Store};

use super::spec::{MixSpec, SourceRule};
use super::MixError;
use crate::config::Plan;
use crate::io::parquet::{SignalCol, BASE_COLUMNS};
use crate::io::row_groups::ParquetFile;
use crate::query::{Bound, Condition};

/// Counts of what selection did with the stored rows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectionStats {
    /// Rows scanned in `docs/` and in `dropped/`.
    pub kept_rows: u64,
    pub dropped_rows: u64,
    /// Rows that passed every check (the planner's candidates).
    pub candidates: u64,
    /// Candidates that the run had dropped (recovered by a relaxed threshold).
    pub recovered: u64,
    /// Rows the current thresholds reject, by `stage:reason`.
    pub rejected: BTreeMap<String, u64>,
    /// Dropped rows that cannot come back: dropped for a reason that is not a threshold on
    /// stored signals (or still failing it), by `stage:reason`.
    pub not_recoverable: BTreeMap<String, u64>,
    /// Dropped rows a relaxed threshold would keep, but a later stage never ran for them, by
    /// that stage (run it in tag mode to make them recoverable).
    pub incomplete: BTreeMap<String, u64>,
    /// Rows excluded by the mix's `where` condition.
    pub excluded_by_where: u64,
    /// Rows without a bucket signal.
    pub no_bucket: u64,
    /// Rows of a corpus of several runs that a later run retracted (never candidates).
    #[serde(default)]
    pub retracted: u64,
    /// Where token counts came from: `signal <name>` or `counted`.
    pub token_counts: String,
    /// Candidates whose token count was counted from their text.
    pub counted_documents: u64,
}

/// The candidates of a mix, with where each one's row lives.
pub struct Selection {
    /// Store paths of the scanned files.
    pub files: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// `(file index, row index)` of each candidate.
    pub rows: Vec<(u32, u32)>,
    /// Candidates without a stored token count (their `tokens` is 0 until counted).
    pub uncounted: Vec<u32>,
    pub buckets: Vec<String>,
    pub sources: Vec<String>,
    /// Each candidate's language (index into `languages`: its language signal, `""` when it has
    /// none), so the planner can split a bucket by language and count tokens per language.
    pub langs: Vec<u16>,
    pub languages: Vec<String>,
    pub stats: SelectionStats,
}

/// One stage as selection sees it.
struct SlotView<'a> {
    name: &'a str,
    /// The stage's `only_languages` scope: out-of-scope rows are not judged by it.
    languages: Option<&'a [String]>,
    /// Its `when` condition: rows that fail it were never scored, so it does not judge them.
    when: Option<&'a crate::config::when::When>,
    built: &'a Built,
    ignored: bool,
    declared: Vec<String>,
    /// Position of this stage in the run's own pipeline (None: the run had no such stage).
    run_pos: Option<usize>,
    /// Its only signal is the token count the mix uses (absent: counted instead).
    is_token_count: bool,
}

/// Everything needed to judge one row.
pub struct Judge<'a> {
    slots: Vec<SlotView<'a>>,
    /// The run's own stages (from its stored config), to tell threshold drops from others.
    run: Option<&'a Plan>,
    bucket: &'a str,
    lang: &'a str,
    quality: Option<&'a str>,
    bucket_quality: &'a BTreeMap<String, String>,
    tokens: Option<&'a str>,
    source: &'a SourceRule,
}

/// The stored token-count signal that matches a mix's tokenizer: an explicit `tokens`
/// setting, else a `tokenize.count` stage of the run configured with the same tokenizer.
pub fn token_signal(spec: &MixSpec, run: Option<&Plan>) -> Option<String> {
    if let Some(t) = &spec.tokens {
        return Some(t.clone());
    }
    let run = run?;
    for s in &run.slots {
        if s.kind != "tokenize.count" {
            continue;
        }
        let Some(toml::Value::Table(t)) = run
            .config
            .table
            .get("stages")
            .and_then(|st| st.get(&s.name))
        else {
            continue;
        };
        let mut t = t.clone();
        t.remove("type");
        t.remove("mode");
        t.remove("only_languages");
        t.remove("when");
        let Ok(cfg) = stages::config::parse_table::<TokenizerConfig>(&t) else {
            continue;
        };
        if same_tokenizer(&cfg, &spec.tokenizer, &run.base_dir) {
            return Some(format!("{}.tokens", s.name));
        }
    }
    None
}

fn same_tokenizer(a: &TokenizerConfig, b: &TokenizerConfig, base: &Path) -> bool {
    let norm = |t: &str| {
        let p = base.join(t);
        std::fs::canonicalize(&p).map_or_else(|_| t.to_string(), |p| p.display().to_string())
    };
    norm(&a.tokenizer) == norm(&b.tokenizer)
        && a.pattern == b.pattern
        && a.special_tokens == b.special_tokens
        && a.bos == b.bos
        && a.eos == b.eos
}

impl<'a> Judge<'a> {
    pub fn new(
        plan: &'a Plan,
        run: Option<&'a Plan>,
        spec: &'a MixSpec,
        tokens: Option<&'a str>,
    ) -> Judge<'a> {
        let slots = plan
            .slots
            .iter()
            .map(|s| {
                let declared: Vec<String> = s
                    .built
                    .signals()
                    .iter()
                    .map(|x| x.name.to_string())
                    .collect();
                SlotView {
                    name: &s.name,
                    languages: s.languages.as_deref(),
                    when: s.when.as_ref(),
                    built: &s.built,
                    ignored: spec.ignore_stages.contains(&s.name),
                    is_token_count: tokens.is_some_and(|t| declared.len() == 1 && declared[0] == t),
                    declared,
                    run_pos: run.and_then(|r| r.slots.iter().position(|o| o.name == s.name)),
                }
            })
            .collect();
        Judge {
            slots,
            run,
            bucket: &spec.bucket,
            lang: &spec.lang,
            quality: spec.quality.as_deref(),
            bucket_quality: &spec.bucket_quality,
            tokens,
            source: &spec.source,
        }
    }
}

/// What happened to one row.
enum Fate {
    Candidate,
    Rejected(usize, &'static str),
    NotRecoverable,
    Incomplete(usize),
}

impl Judge<'_> {
    /// Decides a row whose signals are in `s` (derived signals already refreshed).
    fn fate(&self, s: &Signals, dropped: Option<(&str, &str)>) -> Fate {
        // For a dropped row: the run's stage must have dropped it for a threshold reason.
        let mut ran_through = usize::MAX;
        if let Some((stage, reason)) = dropped {
            let Some(run) = self.run else {
                return Fate::NotRecoverable;
            };
            let Some(pos) = run.slots.iter().position(|o| o.name == stage) else {
                return Fate::NotRecoverable;
            };
            match run.slots[pos].built.judge(s) {
                Outcome::Drop(r) if r == reason => {}
                _ => return Fate::NotRecoverable,
            }
            ran_through = pos;
        }
        for (i, slot) in self.slots.iter().enumerate() {
            if slot.ignored
                || !crate::config::plan::in_scope(slot.languages, s)
                || slot.when.is_some_and(|w| !w.holds(s))
            {
                continue;
            }
            let never_ran = dropped.is_some() && slot.run_pos.is_none_or(|p| p > ran_through);
            if never_ran && !slot.built.derives() && !slot.is_token_count {
                let any = slot.declared.iter().any(|d| s.get(d).is_some());
                if !slot.declared.is_empty() && !any {
                    return Fate::Incomplete(i);
                }
            }
            if let Outcome::Drop(r) = slot.built.judge(s) {
                return Fate::Rejected(i, r);
            }
        }
        Fate::Candidate
    }
}

fn str_at(a: Option<&StringArray>, i: usize) -> &str {
    a.filter(|a| !a.is_null(i)).map_or("", |a| a.value(i))
}

/// The source name of an input path under a rule (`crawl`: the Common Crawl snapshot).
pub fn source_of(rule: &SourceRule, source_file: &str) -> String {
    let file = source_file.rsplit('/').next().unwrap_or(source_file);
    match rule {
        SourceRule::File => file.to_string(),
        SourceRule::Crawl => {
            if let Some(i) = source_file.find("CC-MAIN-") {
                let tail = &source_file[i + 8..];
                let b = tail.as_bytes();
                let ok = b.len() >= 7
                    && b[..4].iter().all(u8::is_ascii_digit)
                    && b[4] == b'-'
                    && b[5..7].iter().all(u8::is_ascii_digit);
                if ok {
                    return format!("CC-MAIN-{}", &tail[..7]);
                }
            }
            let mut parts = source_file.trim_end_matches('/').rsplit('/');
            parts.next();
            match parts.next() {
                Some(dir) if !dir.is_empty() && !dir.contains(':') => dir.to_string(),
                _ => file.to_string(),
            }
        }
        SourceRule::Signal(_) => file.to_string(),
    }
}

/// What one file contributed: candidates with bucket and source indices local to the file.
#[derive(Default)]
struct FilePart {
    cands: Vec<Candidate>,
    rows: Vec<u32>,
    /// Indices into `cands` without a stored token count.
    uncounted: Vec<u32>,
    buckets: Vec<String>,
    sources: Vec<String>,
    /// Per candidate, its language (index into `languages`).
    langs: Vec<u32>,
    languages: Vec<String>,
    stats: SelectionStats,
}

fn intern(names: &mut Vec<String>, map: &mut HashMap<String, u32>, name: &str) -> u32 {
    if let Some(&i) = map.get(name) {
        return i;
    }
    let i = names.len() as u32;
    names.push(name.to_string());
    map.insert(name.to_string(), i);
    i
}

/// Lists the document files of a run: `docs/` then `dropped/`, each sorted.
pub fn list_files(store: &dyn Store) -> Result<(Vec<String>, usize), MixError> {
    let mut files: Vec<String> = store
        .list("docs")
        .map_err(|e| MixError::Failed(Error::io("docs", e)))?;
    if files.iter().any(|f| f.ends_with(".jsonl.zst")) {
        return Err(MixError::Config(
            "curate mix reads Parquet outputs: this run wrote JSONL (output.format = \"jsonl\")"
                .into(),
        ));
    }
    files.retain(|f| f.ends_with(".parquet"));
    let kept = files.len();
    let mut dropped: Vec<String> = store
        .list("dropped")
        .map_err(|e| MixError::Failed(Error::io("dropped", e)))?
        .into_iter()
        .filter(|f| f.ends_with(".parquet"))
        .collect();
    files.append(&mut dropped);
    if files.is_empty() {
        return Err(MixError::Config(format!(
            "no document files under {}/docs: run the pipeline first (or give --from)",
            store.root()
        )));
    }
    Ok((files, kept))
}

/// Scans the stored files and returns the mix's candidates.
pub fn select(
    store: &dyn Store,
    files: &[String],
    kept_files: usize,
    judge: &Judge,
    where_sql: Option<&str>,
    retracted: Option<(&crate::corpus::Retractions, &[usize])>,
) -> Result<Selection, MixError> {
    // Configuration errors before any scan: the `where` condition, and stages whose signals
    // no file has (they did not run when the outputs were written).
    let table = crate::io::stored::table_schema(store, files).map_err(MixError::Failed)?;
    let has = |c: &str| table.field_with_name(c).is_ok();
    for s in &judge.slots {
        if s.ignored || s.declared.is_empty() {
            continue;
        }
        if !s.declared.iter().any(|d| has(d)) {
            return Err(MixError::Config(format!(
                "stage {} has no stored signals ({}): it did not run when these outputs were written; run the pipeline again, or list it in the mix's ignore_stages",
                s.name,
                s.declared.join(", ")
            )));
        }
    }
    if !has(judge.bucket) {
        return Err(MixError::Config(format!(
            "no stored signal `{}`: add a mix.bucket stage to the pipeline, or set the mix's `bucket` to the signal that holds buckets",
            judge.bucket
        )));
    }
    let bound = match where_sql {
        Some(w) => Some(
            Condition::new(w)
                .bind(&table)
                .map_err(|e| MixError::Config(format!("mix where {w:?}: {e}")))?,
        ),
        None => None,
    };
    let parts: Vec<FilePart> = files
        .par_iter()
        .enumerate()
        .map(|(fi, f)| {
            scan_file(
                store,
                f,
                fi >= kept_files,
                judge,
                bound.as_ref(),
                retracted.map(|(r, runs)| (r, runs[fi])),
            )
            .map_err(|e| MixError::Failed(Error::other(format!("reading stored documents: {e}"))))
        })
        .collect::<Result<_, _>>()?;

    // Merge in file order: global bucket and source indices in order of first appearance.
    let mut sel = Selection {
        files: files.to_vec(),
        candidates: Vec::new(),
        rows: Vec::new(),
        uncounted: Vec::new(),
        buckets: Vec::new(),
        sources: Vec::new(),
        langs: Vec::new(),
        languages: Vec::new(),
        stats: SelectionStats::default(),
    };
    let (mut bmap, mut smap, mut lmap) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (fi, part) in parts.into_iter().enumerate() {
        let ll: Vec<u32> = part
            .languages
            .iter()
            .map(|l| intern(&mut sel.languages, &mut lmap, l))
            .collect();
        sel.langs
            .extend(part.langs.iter().map(|&l| ll[l as usize] as u16));
        let bl: Vec<u32> = part
            .buckets
            .iter()
            .map(|b| intern(&mut sel.buckets, &mut bmap, b))
            .collect();
        let sl: Vec<u32> = part
            .sources
            .iter()
            .map(|s| intern(&mut sel.sources, &mut smap, s))
            .collect();
        let start = sel.candidates.len() as u32;
        sel.uncounted
            .extend(part.uncounted.iter().map(|&i| start + i));
        sel.candidates.extend(part.cands.into_iter().map(|mut c| {
            c.bucket = bl[c.bucket as usize] as u16;
            c.source = sl[c.source as usize];
            c
        }));
        sel.rows
            .extend(part.rows.into_iter().map(|r| (fi as u32, r)));
        merge_stats(&mut sel.stats, part.stats);
    }
    if sel.buckets.len() > u16::MAX as usize {
        return Err(MixError::Config(format!(
            "signal `{}` has {} distinct values: not a bucket signal",
            judge.bucket,
            sel.buckets.len()
        )));
    }
    if sel.languages.len() > u16::MAX as usize {
        return Err(MixError::Config(format!(
            "signal `{}` has {} distinct values: not a language signal",
            judge.lang,
            sel.languages.len()
        )));
    }
    Ok(sel)
}

fn merge_stats(a: &mut SelectionStats, b: SelectionStats) {
    a.kept_rows += b.kept_rows;
    a.dropped_rows += b.dropped_rows;
    a.candidates += b.candidates;
    a.recovered += b.recovered;
    a.excluded_by_where += b.excluded_by_where;
    a.no_bucket += b.no_bucket;
    a.retracted += b.retracted;
    for (src, dst) in [
        (b.rejected, &mut a.rejected),
        (b.not_recoverable, &mut a.not_recoverable),
        (b.incomplete, &mut a.incomplete),
    ] {
        for (k, v) in src {
            *dst.entry(k).or_default() += v;
        }
    }
}

/// Rows per batch of the selection scan.
const BATCH_ROWS: usize = 8192;

/// Scans one stored file.
fn scan_file(
    store: &dyn Store,
    path: &str,
    from_dropped: bool,
    judge: &Judge,
    bound: Option<&Bound>,
    retracted: Option<(&crate::corpus::Retractions, usize)>,
) -> stages::Result<FilePart> {
    let file = ParquetFile::from_store(store, path)?;
    let columns: Vec<String> = file
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let has = |c: &str| columns.iter().any(|x| x == c);
    // Sites retracted by a later night (`safety.domains`) are matched on the URL.
    let by_site = retracted.is_some_and(|(r, _)| r.has_domains());
    let signal_cols: Vec<&String> = columns
        .iter()
        .filter(|c| !BASE_COLUMNS.contains(&c.as_str()))
        .collect();
    let mut read: Vec<&str> = vec!["id"];
    for c in ["drop_stage", "drop_reason", "source_file"] {
        if has(c) {
            read.push(c);
        }
    }
    if by_site && has("url") {
        read.push("url");
    }
    read.extend(signal_cols.iter().map(|c| c.as_str()));
    if let Some(b) = bound {
        read.extend(b.columns.iter().map(String::as_str));
    }
    let reader = file.batches(None, Some(&read), None, BATCH_ROWS)?;
    let mut part = FilePart::default();
    let (mut bmap, mut smap, mut lmap) = (HashMap::new(), HashMap::new(), HashMap::new());
    let mut rejected: HashMap<(usize, &'static str), u64> = HashMap::new();
    let mut not_rec: HashMap<(String, String), u64> = HashMap::new();
    let mut incomplete: HashMap<usize, u64> = HashMap::new();
    let mut signals = Signals::new();
    let mut sources_memo: HashMap<String, u32> = HashMap::new();
    let mut row_base = 0u32;
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| Error::other(format!("{path}: {e}")))?;
        let n = batch.num_rows();
        let str_col = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        };
        let ids = str_col("id").ok_or_else(|| Error::other(format!("{path}: no id column")))?;
        let dstage = str_col("drop_stage");
        let dreason = str_col("drop_reason");
        let sfile = str_col("source_file");
        let urls = if by_site { str_col("url") } else { None };
        let wcol = match bound {
            Some(b) => Some(b.eval(&batch)?),
            None => None,
        };
        let sigs: Vec<(&str, SignalCol)> = signal_cols
            .iter()
            .filter_map(|c| {
                Some((
                    c.as_str(),
                    SignalCol::new(batch.column_by_name(c)?.as_ref())?,
                ))
            })
            .collect();
        for i in 0..n {
            let row = row_base + i as u32;
            if from_dropped {
                part.stats.dropped_rows += 1;
            } else {
                part.stats.kept_rows += 1;
            }
            let url = urls.map(|u| u.value(i));
            if retracted.is_some_and(|(r, run)| r.excludes(run, ids.value(i), url)) {
                part.stats.retracted += 1;
                continue;
            }
            for (name, col) in &sigs {
                let v = col.get(i);
                match v {
                    Some(v) => signals.put(name, v),
                    None => {
                        signals.remove(name);
                    }
                }
            }
            for s in &judge.slots {
                if s.built.derives() {
                    s.built.derive(&mut signals);
                }
            }
            let dropped = if from_dropped {
                Some((str_at(dstage, i), str_at(dreason, i)))
            } else {
                None
            };
            match judge.fate(&signals, dropped) {
                Fate::Candidate => {}
                Fate::Rejected(slot, r) => {
                    *rejected.entry((slot, r)).or_default() += 1;
                    continue;
                }
                Fate::NotRecoverable => {
                    let (a, b) = dropped.unwrap_or_default();
                    *not_rec.entry((a.to_string(), b.to_string())).or_default() += 1;
                    continue;
                }
                Fate::Incomplete(slot) => {
                    *incomplete.entry(slot).or_default() += 1;
                    continue;
                }
            }
            if wcol.as_ref().is_some_and(|w| !w[i]) {
                part.stats.excluded_by_where += 1;
                continue;
            }
            let bucket = match signals.str(judge.bucket) {
                Some(b) if !b.is_empty() => b,
                _ => {
                    part.stats.no_bucket += 1;
                    continue;
                }
            };
            let b = intern(&mut part.buckets, &mut bmap, bucket);
            if b > u16::MAX as u32 {
                return Err(Error::other(format!(
                    "signal `{}` has too many distinct values to be a bucket",
                    judge.bucket
                )));
            }
            let qsig = judge
                .bucket_quality
                .get(bucket)
                .map(String::as_str)
                .or(judge.quality);
            let quality = match qsig {
                None => 0.0,
                Some(q) => signals
                    .f64(q)
                    .filter(|v| !v.is_nan())
                    .map_or(f32::NEG_INFINITY, |v| v as f32),
            };
            let tokens = judge
                .tokens
                .and_then(|t| signals.i64(t))
                .filter(|&t| t > 0)
                .map(|t| t.min(u32::MAX as i64) as u32);
            let source = match judge.source {
                SourceRule::Signal(sig) => {
                    let s = signals.str(sig).unwrap_or("unknown");
                    intern(&mut part.sources, &mut smap, s)
                }
                rule => {
                    let f = str_at(sfile, i);
                    match sources_memo.get(f) {
                        Some(&s) => s,
                        None => {
                            let s = intern(&mut part.sources, &mut smap, &source_of(rule, f));
                            sources_memo.insert(f.to_string(), s);
                            s
                        }
                    }
                }
            };
            if tokens.is_none() {
                part.uncounted.push(part.cands.len() as u32);
            }
            part.cands.push(Candidate {
                key: xxhash_rust::xxh3::xxh3_64(ids.value(i).as_bytes()),
                bucket: b as u16,
                tokens: tokens.unwrap_or(0),
                quality,
                source,
            });
            let lang = signals.str(judge.lang).unwrap_or("");
            part.langs
                .push(intern(&mut part.languages, &mut lmap, lang));
            part.rows.push(row);
            part.stats.candidates += 1;
            if from_dropped {
                part.stats.recovered += 1;
            }
        }
        row_base += n as u32;
    }
    for ((slot, r), n) in rejected {
        *part
            .stats
            .rejected
            .entry(format!("{}:{r}", judge.slots[slot].name))
            .or_default() += n;
    }
    for ((s, r), n) in not_rec {
        *part
            .stats
            .not_recoverable
            .entry(format!("{s}:{r}"))
            .or_default() += n;
    }
    for (slot, n) in incomplete {
        *part
            .stats
            .incomplete
            .entry(judge.slots[slot].name.to_string())
            .or_default() += n;
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_from_paths() {
        let crawl = SourceRule::Crawl;
        assert_eq!(
            source_of(
                &crawl,
                "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/1/warc/x.warc.gz"
            ),
            "CC-MAIN-2024-10"
        );
        assert_eq!(source_of(&crawl, "/data/wiki/part-1.jsonl"), "wiki");
        assert_eq!(source_of(&crawl, "part-1.jsonl"), "part-1.jsonl");
        assert_eq!(
            source_of(&SourceRule::File, "/data/wiki/part-1.jsonl"),
            "part-1.jsonl"
        );
    }
}
