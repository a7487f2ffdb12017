//! The dedup history of nightly runs: what earlier runs kept, so that tonight's URL and exact
//! dedup remove copies of documents an earlier night already has, what MinHash needs to
//! cluster tonight's documents with every earlier one (`stages::dedup::minhash_history`), and
//! which input files the history has seen, so that a run given a whole listing processes only
//! new files.
//!
//! Layout (a local folder or an `s3://` prefix, through the same [`Store`] as run outputs):
//!
//! ```text
//! format.json                        {"format": 1}
//! gens/<gen>/<stage>/shard-NNNNN.bin  sorted (key, rank, id hash) of the documents kept
//!                                    (dedup.minhash: (band key, ord) of first holders, with
//!                                    docs-SSSSSSSS.bin rows and remaps.bin)
//! gens/<gen>/inputs.json             the input files (URI, size) the run processed
//! gens/<gen>/retractions.jsonl       documents of earlier nights this run superseded
//! commits/<gen>.json                 the commit marker, written last
//! ```
//!
//! A generation is named by its run's fingerprint (`fingerprint.json`), so the same night run
//! twice adds nothing the second time. It exists iff its marker does: a night killed before or
//! during its commit leaves files nobody reads, and a rerun overwrites them. `compact` merges
//! every live generation into one (keeping the live copy of each key), writes its marker
//! (which names the generations it replaces), then deletes the replaced ones: at every instant
//! the history reads as either the old generations or the new one. One writer at a time (the
//! nightly job); a run reads the history only through its snapshot (`history.json` in its
//! output), fixed at its first start, so a resumed night sees the generations its first
//! attempt saw.

pub mod mount;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stages::dedup::extsort::{fan_in, merge, Scratch};
use stages::dedup::history::{gen_shard_path, HistRec, SNAPSHOT};
use stages::dedup::minhash_history::{self as mh, MhKey, Remap};
use stages::dedup::records::{LazySource, Record, RecordReader, RecordWriter, Source};
use stages::{ConfigError, Error, Result, Store};

use crate::config::raw::StorageSection;
use crate::partition::PartitionSpec;

/// The history format this curate reads and writes.
pub const FORMAT: u32 = 1;
const FORMAT_FILE: &str = "format.json";

/// One stage's files in a generation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEntry {
    pub shards: usize,
    pub records: u64,
    pub bytes: u64,
    /// `keys` (URL, exact: [`HistRec`] per kept document), `minhash` (band keys of every
    /// document, their rows and remaps: `stages::dedup::minhash_history`) or `domain_counts`
    /// (`safety.domains`); empty: `keys`.
    #[serde(default)]
    pub kind: String,
}

const MINHASH: &str = "minhash";
/// `safety.domains` per-domain counts (`.tsv`, a line per domain: `stages::safety::domains::history`).
const DOMAIN_COUNTS: &str = "domain_counts";

/// The seq of a MinHash document file name (`docs-SSSSSSSS.bin`).
fn docs_seq(name: &str) -> Option<u64> {
    name.strip_prefix("docs-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

/// A commit marker: `commits/<gen>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub format: u32,
    pub generation: String,
    /// Commit order (a compacted generation takes the largest of those it replaces).
    pub seq: u64,
    /// The run outputs whose keys the generation holds.
    pub runs: Vec<String>,
    /// Documents kept by the generation's runs (the largest stage's records).
    pub documents: u64,
    pub input_files: u64,
    pub stages: BTreeMap<String, StageEntry>,
    /// Every file of the generation (relative to `gens/<gen>/`) with its size in bytes.
    pub files: BTreeMap<String, u64>,
    /// Generations this one replaces (compaction).
    #[serde(default)]
    pub replaces: Vec<String>,
}

impl Commit {
    pub fn bytes(&self) -> u64 {
        self.files.values().sum()
    }
}

/// An input file the history has seen.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InputFile {
    pub uri: String,
    pub size: u64,
}

/// An opened, validated history.
pub struct History {
    pub store: Arc<dyn Store>,
    /// Live generations (not replaced by a compaction), in commit order.
    pub live: Vec<Commit>,
}

/// A bad history: exit 2 with the file named.
fn bad(store: &dyn Store, file: &str, msg: impl std::fmt::Display) -> Error {
    let root = store.root();
    Error::Config(ConfigError::new(
        format!("{}/{file}", root.trim_end_matches('/')),
        format!("{msg} (the history is left as it is; no dedup ran against it)"),
    ))
}

impl History {
    /// Opens (or starts, when empty) the history at `path` and checks every live generation.
    pub fn open(path: &str, cfg: &StorageSection, scratch: &std::path::Path) -> Result<History> {
        let store =
            crate::storage::open_store(path, cfg, scratch).map_err(|e| Error::io(path, e))?;
        Self::from_store(store)
    }

    pub fn from_store(store: Arc<dyn Store>) -> Result<History> {
        match store.read(FORMAT_FILE) {
            Ok(b) => {
                let v: serde_json::Value = serde_json::from_slice(&b)
                    .map_err(|e| bad(store.as_ref(), FORMAT_FILE, format!("unreadable: {e}")))?;
                let f = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
                if f == 0 || f > FORMAT as u64 {
                    return Err(bad(
                        store.as_ref(),
                        FORMAT_FILE,
                        format!(
                            "history format {f}; this curate reads format {FORMAT} (written by a newer curate?)"
                        ),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !store.list("")?.is_empty() {
                    return Err(bad(
                        store.as_ref(),
                        FORMAT_FILE,
                        "missing: this folder holds files but no curate history",
                    ));
                }
                store.put(
                    FORMAT_FILE,
                    format!("{{\"format\": {FORMAT}}}\n").as_bytes(),
                )?;
            }
            Err(e) => return Err(Error::io(format!("{}/{FORMAT_FILE}", store.root()), e)),
        }
        let mut all = Vec::new();
        for m in store.list("commits")? {
            if !m.ends_with(".json") {
                continue;
            }
            let b = store.read(&m)?;
            let v: serde_json::Value = serde_json::from_slice(&b)
                .map_err(|e| bad(store.as_ref(), &m, format!("corrupt commit marker: {e}")))?;
            let f = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
            if f > FORMAT as u64 {
                return Err(bad(
                    store.as_ref(),
                    &m,
                    format!("commit marker of format {f}; this curate reads format {FORMAT}"),
                ));
            }
            let c: Commit = serde_json::from_value(v)
                .map_err(|e| bad(store.as_ref(), &m, format!("corrupt commit marker: {e}")))?;
            if format!("commits/{}.json", c.generation) != m {
                return Err(bad(
                    store.as_ref(),
                    &m,
                    format!(
                        "corrupt commit marker: it names generation {}",
                        c.generation
                    ),
                ));
            }
            all.push(c);
        }
        let replaced: BTreeSet<String> = all.iter().flat_map(|c| c.replaces.clone()).collect();
        let mut live: Vec<Commit> = all
            .into_iter()
            .filter(|c| !replaced.contains(&c.generation))
            .collect();
        live.sort_by(|a, b| (a.seq, &a.generation).cmp(&(b.seq, &b.generation)));
        for c in &live {
            let dir = format!("gens/{}", c.generation);
            let present: BTreeSet<String> = store
                .list(&dir)?
                .into_iter()
                .filter_map(|f| f.strip_prefix(&format!("{dir}/")).map(str::to_string))
                .collect();
            for f in c.files.keys() {
                if !present.contains(f) {
                    return Err(bad(
                        store.as_ref(),
                        &format!("{dir}/{f}"),
                        format!(
                            "missing: generation {} (commits/{}.json) lists it",
                            c.generation, c.generation
                        ),
                    ));
                }
            }
        }
        Ok(History { store, live })
    }

    /// Every input file the live generations processed.
    pub fn inputs(&self) -> Result<BTreeSet<InputFile>> {
        self.inputs_of(
            &self
                .live
                .iter()
                .map(|c| c.generation.clone())
                .collect::<Vec<_>>(),
        )
    }

    fn inputs_of(&self, gens: &[String]) -> Result<BTreeSet<InputFile>> {
        let mut out = BTreeSet::new();
        for g in gens {
            let f = format!("gens/{g}/inputs.json");
            let b = self.store.read(&f).map_err(|e| Error::io(&f, e))?;
            let v: Vec<InputFile> = serde_json::from_slice(&b)
                .map_err(|e| bad(self.store.as_ref(), &f, format!("unreadable: {e}")))?;
            out.extend(v);
        }
        Ok(out)
    }

    /// The snapshot a run records: the live generations and their stages' shard counts.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "format": FORMAT,
            "history": self.store.root(),
            "generations": self.live.iter().map(|c| serde_json::json!({
                "name": c.generation,
                "seq": c.seq,
                "stages": c.stages.iter().map(|(k, s)| (k.clone(), serde_json::json!({"shards": s.shards}))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The input files of the generations a run's snapshot names (all of them must be live).
    pub fn snapshot_inputs(&self, snapshot: &[u8]) -> Result<BTreeSet<InputFile>> {
        let v: serde_json::Value = serde_json::from_slice(snapshot)
            .map_err(|e| Error::other(format!("{SNAPSHOT}: unreadable ({e})")))?;
        let names: Vec<String> = v["generations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for n in &names {
            if !self.live.iter().any(|c| &c.generation == n) {
                return Err(bad(
                    self.store.as_ref(),
                    &format!("commits/{n}.json"),
                    format!(
                        "this run's {SNAPSHOT} names generation {n}, which the history no longer \
                         has (compacted while the run was unfinished?); rerun with --restart"
                    ),
                ));
            }
        }
        self.inputs_of(&names)
    }

    fn next_seq(&self) -> u64 {
        self.live.iter().map(|c| c.seq).max().unwrap_or(0) + 1
    }

    /// Whether generation `gen` is committed (live or replaced by a compaction).
    pub fn has(&self, gen: &str) -> Result<bool> {
        if self
            .live
            .iter()
            .any(|c| c.generation == gen || c.replaces.iter().any(|r| r == gen))
        {
            return Ok(true);
        }
        Ok(self.store.exists(&format!("commits/{gen}.json"))?)
    }
}

/// Keeps the partitions of input files the history has not seen.
pub fn only_new(parts: Vec<PartitionSpec>, seen: &BTreeSet<InputFile>) -> Vec<PartitionSpec> {
    parts
        .into_iter()
        .filter(|p| {
            !seen.contains(&InputFile {
                uri: p.uri.clone(),
                size: p.size,
            })
        })
        .collect()
}

/// The generation name of the run in `out`: xxh3-128 of its `fingerprint.json`.
pub fn generation_name(out: &dyn Store) -> Result<String> {
    let b = out.read(crate::fingerprint::FILE)?;
    Ok(format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&b)))
}

/// Copies a file between stores; returns its bytes and newlines.
fn copy(from: &dyn Store, src: &str, to: &dyn Store, dst: &str) -> Result<(u64, u64)> {
    let mut r = from.open(src).map_err(|e| Error::io(src, e))?;
    let mut w = to.create(dst).map_err(|e| Error::io(dst, e))?;
    let (mut n, mut lines) = (0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf).map_err(|e| Error::io(src, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        lines += buf[..k].iter().filter(|&&b| b == b'\n').count() as u64;
        io::Write::write_all(&mut w, &buf[..k]).map_err(|e| Error::io(dst, e))?;
    }
    w.finish().map_err(|e| Error::io(dst, e))?;
    Ok((n, lines))
}

/// Documents of a generation: the largest keyed stage's records (domain counts name sites).
fn documents(stages: &BTreeMap<String, StageEntry>) -> u64 {
    stages
        .values()
        .filter(|e| e.kind != DOMAIN_COUNTS)
        .map(|e| e.records)
        .max()
        .unwrap_or(0)
}

/// Whether a generation file holds `safety.domains` counts rather than key records.
fn is_counts(name: &str) -> bool {
    name.ends_with(".tsv")
}

/// Adds a finished run to the history: its stages' keys, inputs and retractions, then the
/// commit marker. Writes the run's `retractions.jsonl`. Returns the generation name, `None`
/// when it was already committed.
pub fn commit(
    hist: &History,
    out: &dyn Store,
    output: &str,
    global_stages: &[String],
    parts: &[PartitionSpec],
) -> Result<Option<String>> {
    let gen = generation_name(out)?;
    if hist.has(&gen)? {
        return Ok(None);
    }
    // The kill test's window into a commit in progress (tests/it/history.rs); unset in use.
    let pause = std::env::var("CURATE_TEST_HISTORY_COMMIT_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let pause = || {
        if let Some(ms) = pause {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    };
    let hs = hist.store.as_ref();
    let mut files = BTreeMap::new();
    let mut stages = BTreeMap::new();
    let mut retractions = Vec::new();
    for s in global_stages {
        let dir = format!("work/{s}/history/");
        let shards: Vec<String> = out.list(&dir)?;
        if shards.is_empty() {
            continue;
        }
        let names: Vec<&str> = shards
            .iter()
            .map(|f| f.strip_prefix(&dir).unwrap_or(f))
            .collect();
        let minhash = names.iter().any(|n| docs_seq(n).is_some());
        let counts = names.iter().any(|n| is_counts(n));
        let mut e = StageEntry {
            kind: if minhash {
                MINHASH
            } else if counts {
                DOMAIN_COUNTS
            } else {
                "keys"
            }
            .into(),
            ..Default::default()
        };
        for (f, name) in shards.iter().zip(&names) {
            if let Some(seq) = docs_seq(name) {
                // Tonight's rows are numbered after the snapshot's generations; a generation
                // committed since would share the numbers.
                if seq != hist.next_seq() {
                    return Err(bad(
                        hs,
                        &format!("commits/ (generation {seq})"),
                        format!(
                            "the history gained generations since this run started ({s}: \
                             night {seq}, the history is at {}); rerun with --restart",
                            hist.next_seq() - 1
                        ),
                    ));
                }
                let mut head = Vec::new();
                out.open(f)
                    .and_then(|r| r.take(24).read_to_end(&mut head))
                    .map_err(|e| Error::io(f, e))?;
                let (_, _, rows) = stages::dedup::minhash_history::parse_docs_header(&head, f)
                    .map_err(|e| Error::io(f, e))?;
                e.records = e.records.max(rows);
            }
        }
        for (f, name) in shards.iter().zip(&names) {
            let rel = format!("{s}/{name}");
            let (n, lines) = copy(out, f, hs, &format!("gens/{gen}/{rel}"))?;
            pause();
            e.bytes += n;
            if name.starts_with("shard-") {
                e.shards += 1;
                // Key records are fixed-size; domain counts (`.tsv`) are a line per domain.
                if is_counts(name) {
                    e.records += lines;
                } else if !minhash {
                    e.records += n / HistRec::SIZE as u64;
                }
            }
            files.insert(rel, n);
        }
        stages.insert(s.clone(), e);
        for f in out.list(&format!("work/{s}/retractions/"))? {
            retractions.extend(out.read(&f)?);
        }
    }
    out.put("retractions.jsonl", &retractions)?;
    hs.put(&format!("gens/{gen}/retractions.jsonl"), &retractions)?;
    files.insert("retractions.jsonl".into(), retractions.len() as u64);
    let inputs: BTreeSet<InputFile> = parts
        .iter()
        .map(|p| InputFile {
            uri: p.uri.clone(),
            size: p.size,
        })
        .collect();
    let ib = serde_json::to_vec(&inputs).expect("serializable");
    hs.put(&format!("gens/{gen}/inputs.json"), &ib)?;
    files.insert("inputs.json".into(), ib.len() as u64);
    let c = Commit {
        format: FORMAT,
        generation: gen.clone(),
        seq: hist.next_seq(),
        runs: vec![output.to_string()],
        documents: documents(&stages),
        input_files: inputs.len() as u64,
        stages,
        files,
        replaces: vec![],
    };
    hs.put(
        &format!("commits/{gen}.json"),
        &serde_json::to_vec_pretty(&c).expect("serializable"),
    )?;
    Ok(Some(gen))
}

/// Sums one shard of a `safety.domains` stage's counts over the live generations into
/// generation `gen`; returns the file (relative to the generation), its domains and bytes.
fn compact_counts(
    hist: &History,
    gen: &str,
    stage: &str,
    shard: usize,
) -> Result<(String, u64, u64)> {
    use stages::safety::domains::history::{gen_counts_path, merge_counts};
    let hs = &hist.store;
    let mut inputs = Vec::new();
    for c in hist.live.iter().filter(|c| c.stages.contains_key(stage)) {
        let path = gen_counts_path(&c.generation, stage, shard);
        let r = hs.open(&path).map_err(|e| Error::io(&path, e))?;
        inputs.push((
            path,
            Box::new(io::BufReader::with_capacity(1 << 16, r)) as Box<dyn io::BufRead + Send>,
        ));
    }
    let rel = format!("{stage}/shard-{shard:05}.tsv");
    let path = format!("gens/{gen}/{rel}");
    let mut w = hs.create(&path).map_err(|e| Error::io(&path, e))?;
    let (n, bytes) = merge_counts(inputs, &mut w).map_err(|e| Error::io(&path, e))?;
    w.finish().map_err(|e| Error::io(&path, e))?;
    Ok((rel, n, bytes))
}

/// What `curate history status` prints.
pub fn status(hist: &History) -> String {
    let mut s = String::new();
    let runs: usize = hist.live.iter().map(|c| c.runs.len()).sum();
    let docs: u64 = hist.live.iter().map(|c| c.documents).sum();
    let bytes: u64 = hist.live.iter().map(|c| c.bytes()).sum();
    let inputs: u64 = hist.live.iter().map(|c| c.input_files).sum();
    s.push_str(&format!(
        "history {}\n  generations {}  runs {runs}  documents {docs}  input files {inputs}  bytes {bytes}\n",
        hist.store.root(),
        hist.live.len()
    ));
    for c in &hist.live {
        let st: Vec<String> = c
            .stages
            .iter()
            .map(|(k, e)| match e.kind.as_str() {
                MINHASH => format!("{k} {} documents/{} shards", e.records, e.shards),
                DOMAIN_COUNTS => format!("{k} {} domains/{} shards", e.records, e.shards),
                _ => format!("{k} {} keys/{} shards", e.records, e.shards),
            })
            .collect();
        s.push_str(&format!(
            "  {:>4}  {}  runs {}  documents {}  bytes {}  {}\n",
            c.seq,
            c.generation,
            c.runs.len(),
            c.documents,
            c.bytes(),
            st.join(", ")
        ));
    }
    s
}

/// Merges every live generation into one; returns its name (`None` with fewer than two).
/// Of the copies of one key only the live one (the first in key, rank order) stays: a copy an
/// earlier night kept and a later night superseded is gone after compaction, its retraction
/// stays in `retractions.jsonl`.
pub fn compact(hist: &History, scratch: &std::path::Path, budget: usize) -> Result<Option<String>> {
    if hist.live.len() < 2 {
        return Ok(None);
    }
    let hs = &hist.store;
    let names: Vec<String> = hist.live.iter().map(|c| c.generation.clone()).collect();
    let gen = format!(
        "c{:031x}",
        xxhash_rust::xxh3::xxh3_128(names.join("\n").as_bytes()) >> 4
    );
    let mut stage_shards: BTreeMap<String, usize> = BTreeMap::new();
    for c in &hist.live {
        for (s, e) in &c.stages {
            match stage_shards.get(s) {
                Some(&n) if n != e.shards => {
                    return Err(bad(
                        hs.as_ref(),
                        &format!("commits/{}.json", c.generation),
                        format!(
                            "stage {s} has {} shards here and {n} in another generation",
                            e.shards
                        ),
                    ))
                }
                _ => {
                    stage_shards.insert(s.clone(), e.shards);
                }
            }
        }
    }
    std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let sc = Scratch::new(scratch).map_err(|e| Error::io(scratch, e))?;
    let mut files = BTreeMap::new();
    let mut stages = BTreeMap::new();
    for (s, &shards) in &stage_shards {
        let minhash = hist
            .live
            .iter()
            .any(|c| c.stages.get(s).is_some_and(|e| e.kind == MINHASH));
        let counts = hist.live.iter().any(|c| {
            c.files
                .keys()
                .any(|f| f.starts_with(&format!("{s}/")) && is_counts(f))
        });
        let mut e = StageEntry {
            shards,
            kind: if minhash {
                MINHASH
            } else if counts {
                DOMAIN_COUNTS
            } else {
                "keys"
            }
            .into(),
            ..Default::default()
        };
        if counts {
            for shard in 0..shards {
                let (rel, n, bytes) = compact_counts(hist, &gen, s, shard)?;
                e.records += n;
                e.bytes += bytes;
                files.insert(rel, bytes);
            }
            stages.insert(s.clone(), e);
            continue;
        }
        for shard in 0..shards {
            let rel = format!("{s}/shard-{shard:05}.bin");
            let (n, size) = if minhash {
                // Band keys are written only when no earlier night holds them: no repeats
                // to drop, the merge keeps each key's first holder all the same.
                merge_shard::<MhKey>(hist, s, shard, &gen, &rel, budget, &sc, |r| r.key as u128)?
            } else {
                merge_shard::<HistRec>(hist, s, shard, &gen, &rel, budget, &sc, |r| r.key)?
            };
            if !minhash {
                e.records += n;
            }
            e.bytes += n * size as u64;
            files.insert(rel, n * size as u64);
        }
        if minhash {
            // Every night's rows (named by their night) with their clusters resolved through
            // every remap: the compacted history needs none (a night loads them all).
            let live: Vec<&Commit> = hist
                .live
                .iter()
                .filter(|c| c.stages.contains_key(s))
                .collect();
            let mut remaps = std::collections::HashMap::new();
            for c in &live {
                let f = format!("gens/{}/{s}/remaps.bin", c.generation);
                if !hs.exists(&f)? {
                    continue;
                }
                let mut r = RecordReader::<Remap>::new(hs.open(&f)?, f.clone(), 1 << 16);
                while let Some(m) = r.next_record().map_err(|e| Error::io(&f, e))? {
                    remaps.insert(m.from, (m.to, m.rank, m.rid));
                }
            }
            for c in &live {
                for f in hs.list(&format!("gens/{}/{s}", c.generation))? {
                    let name = f.rsplit('/').next().unwrap_or(&f).to_string();
                    if docs_seq(&name).is_some() {
                        let rel = format!("{s}/{name}");
                        let n = fold_rows(hs.as_ref(), &f, &format!("gens/{gen}/{rel}"), &remaps)?;
                        e.bytes += n;
                        files.insert(rel, n);
                    }
                }
                e.records += c.stages[s].records;
            }
            let rel = format!("{s}/remaps.bin");
            hs.put(&format!("gens/{gen}/{rel}"), b"")?;
            files.insert(rel, 0);
        }
        stages.insert(s.clone(), e);
    }
    let inputs = hist.inputs()?;
    let ib = serde_json::to_vec(&inputs).expect("serializable");
    hs.put(&format!("gens/{gen}/inputs.json"), &ib)?;
    files.insert("inputs.json".into(), ib.len() as u64);
    let mut retractions = Vec::new();
    for c in &hist.live {
        retractions.extend(hs.read(&format!("gens/{}/retractions.jsonl", c.generation))?);
    }
    hs.put(&format!("gens/{gen}/retractions.jsonl"), &retractions)?;
    files.insert("retractions.jsonl".into(), retractions.len() as u64);
    let c = Commit {
        format: FORMAT,
        generation: gen.clone(),
        seq: hist.live.iter().map(|c| c.seq).max().unwrap_or(0),
        runs: hist.live.iter().flat_map(|c| c.runs.clone()).collect(),
        documents: documents(&stages),
        input_files: inputs.len() as u64,
        stages,
        files,
        // Transitive, so that a night compacted twice is still known as committed.
        replaces: names
            .iter()
            .cloned()
            .chain(hist.live.iter().flat_map(|c| c.replaces.clone()))
            .collect(),
    };
    hs.put(
        &format!("commits/{gen}.json"),
        &serde_json::to_vec_pretty(&c).expect("serializable"),
    )?;
    // The new marker is visible: the replaced generations are no longer read. Delete their
    // files, then their markers (a crash in between leaves only unread files).
    for n in &names {
        for f in hs.list(&format!("gens/{n}"))? {
            hs.delete(&f)?;
        }
        hs.delete(&format!("commits/{n}.json"))?;
    }
    Ok(Some(gen))
}

/// Merges shard `shard` of stage `s` of every live generation into `gens/<gen>/<rel>`,
/// keeping the first record of each key; returns (records, record size).
#[allow(clippy::too_many_arguments)]
fn merge_shard<R: Record>(
    hist: &History,
    s: &str,
    shard: usize,
    gen: &str,
    rel: &str,
    budget: usize,
    sc: &Scratch,
    key: fn(&R) -> u128,
) -> Result<(u64, usize)> {
    let hs = &hist.store;
    let sources: Vec<Box<dyn Source<R>>> = hist
        .live
        .iter()
        .filter(|c| c.stages.contains_key(s))
        .map(|c| {
            let path = gen_shard_path(&c.generation, s, shard);
            let store = hs.clone();
            Box::new(LazySource::new(move || {
                let r: Box<dyn Read + Send> = store.open(&path)?;
                Ok(Box::new(RecordReader::<R>::new(r, path, 1 << 16)) as Box<dyn Source<R>>)
            })) as Box<dyn Source<R>>
        })
        .collect();
    let path = format!("gens/{gen}/{rel}");
    let mut m = merge(sources, fan_in(budget), sc).map_err(|e| Error::io(&path, e))?;
    let w = hs.create(&path).map_err(|e| Error::io(&path, e))?;
    let mut w = RecordWriter::new(w);
    let mut last: Option<u128> = None;
    while let Some(r) = m.next_record().map_err(|e| Error::io(&path, e))? {
        let k = key(&r);
        if last == Some(k) {
            continue;
        }
        last = Some(k);
        w.write(&r).map_err(|e| Error::io(&path, e))?;
    }
    let n = w.written();
    w.into_inner()
        .and_then(|w| w.finish())
        .map_err(|e| Error::io(&path, e))?;
    Ok((n, R::SIZE))
}

/// Copies a night's MinHash rows from `src` to `dst` with each row's cluster resolved through
/// `remaps`; returns the bytes written.
fn fold_rows(
    hs: &dyn Store,
    src: &str,
    dst: &str,
    remaps: &std::collections::HashMap<u64, (u64, u64, u128)>,
) -> Result<u64> {
    use std::io::Write;
    let mut r = io::BufReader::with_capacity(1 << 16, hs.open(src).map_err(|e| Error::io(src, e))?);
    let mut head = vec![0u8; mh::DOCS_HEADER as usize];
    r.read_exact(&mut head).map_err(|e| Error::io(src, e))?;
    let (hashes, _, rows) = mh::parse_docs_header(&head, src).map_err(|e| Error::io(src, e))?;
    let mut w =
        io::BufWriter::with_capacity(1 << 16, hs.create(dst).map_err(|e| Error::io(dst, e))?);
    w.write_all(&head).map_err(|e| Error::io(dst, e))?;
    let mut row = vec![0u8; mh::row_width(hashes)];
    for _ in 0..rows {
        r.read_exact(&mut row).map_err(|e| Error::io(src, e))?;
        let u64_at = |i: usize| u64::from_le_bytes(row[i..i + 8].try_into().expect("8 bytes"));
        let c = (
            u64_at(0),
            u64_at(8),
            u128::from_le_bytes(row[16..32].try_into().expect("16 bytes")),
        );
        let (cluster, rank, rid) = mh::resolve(remaps, c);
        row[0..8].copy_from_slice(&cluster.to_le_bytes());
        row[8..16].copy_from_slice(&rank.to_le_bytes());
        row[16..32].copy_from_slice(&rid.to_le_bytes());
        w.write_all(&row).map_err(|e| Error::io(dst, e))?;
    }
    w.into_inner()
        .map_err(|e| Error::io(dst, e.into_error()))?
        .finish()
        .map_err(|e| Error::io(dst, e))?;
    Ok(mh::DOCS_HEADER + rows * row.len() as u64)
}
