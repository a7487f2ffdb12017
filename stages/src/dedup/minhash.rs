//! `dedup.minhash`: near-duplicate documents by MinHash LSH, clustered across the whole crawl.
//!
//! 1. **signatures** (collector, per partition): word `ngram`-shingles of the normalized text
//!    ([`crate::Document::normalized`]), each hashed with seeded xxh3-64 and passed through
//!    `bands x rows` universal hash functions `((a * x + b) mod 2^64) mod (2^61 - 1)` (the
//!    arithmetic datatrove uses); the minimum of each is the signature. Each band's `rows`
//!    minima hash to one 64-bit band key, written as `(band key, document)` into section
//!    `band * band_splits + split`, sorted. With verification (the default) it also writes
//!    a 16-bit fingerprint of every signature value, one fixed-size row per document.
//! 2. **pairs** (one task per band and split): a k-way merge of that section of every
//!    partition; documents sharing a band key become pairs `(first, other)` of global row
//!    numbers. Memory is the merge's read buffers, bounded by the budget (spills beyond).
//!    **sign** and **verify** (one task per group of partitions each, [`super::verify`]):
//!    every distinct pair is kept only when the two whole signatures agree on at least
//!    `verify_threshold` of their values.
//! 3. **components** (one task): union-find over every pair, 4 bytes per document (a 3 billion
//!    page crawl needs 12 GB), then an external sort of `(root, rank, row)` finds each
//!    cluster's size and survivor under the keep rule.
//! 4. **decide** and **apply**: decisions routed to partitions; the applier stores
//!    `cluster_id` and `cluster_size` and drops every copy but the survivor.
//!
//! With a dedup history (nightly runs), `pairs` also merges the history's band keys, a
//! **history** step (one task; nothing to do without a history) verifies tonight's candidates
//! with earlier documents, and `components` seeds its union-find with the earlier clusters
//! they join, so that nights in order keep what one run keeps ([`super::minhash_history`]).
//!
//! A pair of documents with Jaccard similarity `s` shares at least one band with probability
//! `1 - (1 - s^rows)^bands` (the S-curve; `docs/dedup.md` explains how to choose bands and
//! rows for a threshold); verification then removes most candidates whose similarity is
//! below its threshold ([`MinHasher::found_probability`]). Documents with fewer than `ngram` words hash their whole text as one
//! shingle; documents without words have no signature and are never near-duplicates.

use std::sync::Arc;

use serde::Deserialize;

use super::decisions::{doc_key, peak_rss_bytes, task_budget, DecideStep, DocDecision, Router};
use super::extsort::{fan_in, merge, ExtSorter, GroupBuffer, Scratch};
use super::keep::{Keep, KeepRule};
use super::keys::{key_path, Index, IndexStep, KeyFileWriter};
use super::minhash_history::{self as mh_hist, HCand, HCandWriter, MhKey};
use super::records::{record, PairRec, Record, RecordReader, RecordWriter, Source};
use super::verify::{
    candidates_dir, min_equal, sig_path, CandRec, SigWriter, SignStep, VerifyStep,
    MAX_VERIFY_HASHES,
};
use super::DocSignals;
use crate::config::{check_fraction, check_range, ConfigError, StageArgs};
use crate::declare::Declared;
use crate::error::{Error, Result};
use crate::stage::StageDef;
use crate::stage::{Applier, Built, Collector, GlobalStage, GlobalStep, PartitionCtx, StepCtx};
use crate::stats::StepStats;
use crate::Document;

/// `[stages.minhash]`, `type = "dedup.minhash"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinHashConfig {
    /// Words per shingle.
    #[serde(default = "five")]
    pub ngram: usize,
    /// LSH bands: two documents are candidates when all rows of one band agree.
    #[serde(default = "fourteen")]
    pub bands: usize,
    /// Hash functions per band. Signatures hold `bands * rows` 64-bit minima.
    #[serde(default = "eight")]
    pub rows: usize,
    /// Hash-range splits of each band; the `pairs` step runs `bands * band_splits` tasks.
    #[serde(default = "one")]
    pub band_splits: usize,
    /// Seed of the hash functions (default: the pipeline seed). Changing it changes which
    /// borderline pairs are found, not the expected accuracy.
    pub seed: Option<u64>,
    /// Which document of a cluster stays: `first` (default), `oldest`, `newest`, `highest`,
    /// `lowest`.
    #[serde(default)]
    pub keep: KeepRule,
    /// The signal compared by `keep = "highest"` / `"lowest"` (e.g. a quality score).
    pub keep_signal: Option<String>,
    /// Candidate verification: a pair that shares a band is a duplicate only when its whole
    /// signatures agree on at least `verify_threshold` of their `bands * rows` values (an
    /// estimate of its Jaccard similarity). Cuts LSH's false positives below the threshold;
    /// costs a 2-byte fingerprint per hash per document and two join steps. `false` (or a
    /// threshold of 0) clusters every pair that shares a band.
    #[serde(default = "yes")]
    pub verify: bool,
    /// The estimated similarity a candidate pair needs (0 to 1). 0.7 keeps 99.7% of the
    /// candidates at Jaccard 0.8 and 0.9% of those at 0.6 (docs/dedup.md).
    #[serde(default = "seven_tenths")]
    pub verify_threshold: f64,
}

fn yes() -> bool {
    true
}
fn seven_tenths() -> f64 {
    0.7
}

fn five() -> usize {
    5
}
fn fourteen() -> usize {
    14
}
fn eight() -> usize {
    8
}
fn one() -> usize {
    1
}

pub static DEF: StageDef = StageDef {
    kind: "dedup.minhash",
    about: "Near-duplicate documents by MinHash LSH over word shingles, clustered globally",
    example: "ngram = 5\nbands = 14\nrows = 8\nverify_threshold = 0.7\n\
              keep = \"highest\"\nkeep_signal = \"quality.score\"",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: MinHashConfig = args.parse()?;
    check_range("ngram", cfg.ngram, 1, 64)?;
    check_range("bands", cfg.bands, 1, 1024)?;
    check_range("rows", cfg.rows, 1, 64)?;
    check_range("band_splits", cfg.band_splits, 1, 4096)?;
    if cfg.bands * cfg.band_splits > 1 << 20 {
        return Err(ConfigError::new(
            "band_splits",
            "bands * band_splits must be at most 2^20",
        ));
    }
    let keep = Keep::new(cfg.keep, cfg.keep_signal)?;
    check_fraction("verify_threshold", cfg.verify_threshold)?;
    let verify = (cfg.verify && cfg.verify_threshold > 0.0).then_some(cfg.verify_threshold);
    if verify.is_some() && cfg.bands * cfg.rows > MAX_VERIFY_HASHES {
        return Err(ConfigError::new(
            "verify",
            format!(
                "verification carries signatures of at most {MAX_VERIFY_HASHES} hashes \
                 (bands * rows is {}); set verify = false",
                cfg.bands * cfg.rows
            ),
        ));
    }
    let hasher = MinHasher::new(
        cfg.ngram,
        cfg.bands,
        cfg.rows,
        cfg.seed.unwrap_or(args.seed),
    );
    Ok(Built::Global(Box::new(MinHashDedup::new(
        args.name,
        hasher,
        cfg.band_splits,
        keep,
        verify,
    ))))
}

/// The Mersenne prime 2^61 - 1: hash values live below it.
const P61: u64 = (1 << 61) - 1;

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Computes shingles, signatures and band keys.
#[derive(Clone, Debug)]
pub struct MinHasher {
    pub ngram: usize,
    pub bands: usize,
    pub rows: usize,
    seed: u64,
    a: Vec<u64>,
    b: Vec<u64>,
}

impl MinHasher {
    pub fn new(ngram: usize, bands: usize, rows: usize, seed: u64) -> Self {
        let mut st = seed ^ 0x6D69_6E68_6173_6831; // "minhash1"
        let k = bands * rows;
        let mut a = Vec::with_capacity(k);
        let mut b = Vec::with_capacity(k);
        for _ in 0..k {
            a.push(1 + splitmix(&mut st) % (P61 - 1));
            b.push(splitmix(&mut st) % P61);
        }
        MinHasher {
            ngram,
            bands,
            rows,
            seed: splitmix(&mut st),
            a,
            b,
        }
    }

    /// Hashes of the word `ngram`-shingles of a normalized text (words separated by one space).
    pub fn shingles(&self, normalized: &str, out: &mut Vec<u64>) {
        out.clear();
        if normalized.is_empty() {
            return;
        }
        let bytes = normalized.as_bytes();
        // starts[i]: first byte of word i; the word ends one byte before starts[i + 1].
        let mut starts: Vec<u32> = Vec::with_capacity(bytes.len() / 5 + 2);
        starts.push(0);
        for sp in memchr::memchr_iter(b' ', bytes) {
            starts.push(sp as u32 + 1);
        }
        let words = starts.len();
        starts.push(bytes.len() as u32 + 1);
        if words < self.ngram {
            out.push(xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.seed));
            return;
        }
        out.reserve(words + 1 - self.ngram);
        for i in 0..=words - self.ngram {
            let s = starts[i] as usize;
            let e = starts[i + self.ngram] as usize - 1;
            out.push(xxhash_rust::xxh3::xxh3_64_with_seed(
                &bytes[s..e],
                self.seed,
            ));
        }
    }

    /// The MinHash signature (`bands * rows` values) of a set of shingle hashes.
    pub fn signature_of(&self, shingles: &[u64], sig: &mut Vec<u64>) {
        sig.clear();
        sig.resize(self.a.len(), u64::MAX);
        update_minima(&self.a, &self.b, shingles, sig);
    }

    /// The band keys of a signature.
    pub fn band_keys(&self, sig: &[u64], out: &mut Vec<u64>) {
        out.clear();
        let mut buf = [0u8; 64 * 8];
        for (i, band) in sig.chunks_exact(self.rows).enumerate() {
            for (j, v) in band.iter().enumerate() {
                buf[8 * j..8 * j + 8].copy_from_slice(&v.to_le_bytes());
            }
            out.push(xxhash_rust::xxh3::xxh3_64_with_seed(
                &buf[..8 * self.rows],
                self.seed.wrapping_add(i as u64 + 1),
            ));
        }
    }

    /// Band keys of a normalized text; false when it has no word. Reuses the given buffers.
    pub fn keys_of(&self, normalized: &str, scratch: &mut SigBuffers) -> bool {
        self.shingles(normalized, &mut scratch.shingles);
        if scratch.shingles.is_empty() {
            scratch.keys.clear();
            return false;
        }
        self.signature_of(&scratch.shingles, &mut scratch.sig);
        self.band_keys(&scratch.sig, &mut scratch.keys);
        true
    }

    /// The probability that documents of Jaccard similarity `s` share a band.
    pub fn candidate_probability(&self, s: f64) -> f64 {
        1.0 - (1.0 - s.powi(self.rows as i32)).powi(self.bands as i32)
    }

    /// The probability that documents of Jaccard similarity `s` share a band *and* agree on at
    /// least `threshold` of all their hashes (candidate verification; 0: no verification).
    /// Each hash agrees with probability `s`, independently.
    pub fn found_probability(&self, s: f64, threshold: f64) -> f64 {
        if threshold <= 0.0 {
            return self.candidate_probability(s);
        }
        let (r, k) = (self.rows, self.bands * self.rows);
        // Equal values within one band: binomial(rows, s).
        let mut band = vec![0.0f64; r + 1];
        let mut c = 1.0f64;
        for (y, p) in band.iter_mut().enumerate() {
            *p = c * s.powi(y as i32) * (1.0 - s).powi((r - y) as i32);
            c = c * (r - y) as f64 / (y + 1) as f64;
        }
        // dist[full][equal]: probability after the bands so far, `full` when one band agreed
        // entirely.
        let mut dist = [vec![0.0f64; k + 1], vec![0.0f64; k + 1]];
        dist[0][0] = 1.0;
        for b in 0..self.bands {
            let mut next = [vec![0.0f64; k + 1], vec![0.0f64; k + 1]];
            for full in 0..2 {
                for e in 0..=b * r {
                    let p = dist[full][e];
                    if p == 0.0 {
                        continue;
                    }
                    for (y, q) in band.iter().enumerate() {
                        next[(full == 1 || y == r) as usize][e + y] += p * q;
                    }
                }
            }
            dist = next;
        }
        dist[1][min_equal(k, threshold)..].iter().sum()
    }
}

/// Reusable buffers for [`MinHasher::keys_of`].
#[derive(Default, Debug)]
pub struct SigBuffers {
    pub text: String,
    pub shingles: Vec<u64>,
    pub sig: Vec<u64>,
    pub keys: Vec<u64>,
}

#[inline(always)]
fn update_generic(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u64]) {
    let k = sig.len();
    let (a, b) = (&a[..k], &b[..k]);
    for &x in shingles {
        for j in 0..k {
            let v = a[j].wrapping_mul(x).wrapping_add(b[j]);
            // v mod (2^61 - 1), using 2^61 = 1 (mod p).
            let v = (v & P61) + (v >> 61);
            let v = if v >= P61 { v - P61 } else { v };
            sig[j] = sig[j].min(v);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl")]
unsafe fn update_avx512(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u64]) {
    update_generic(a, b, shingles, sig)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u64]) {
    update_generic(a, b, shingles, sig)
}

/// Folds shingle hashes into signature minima, with the widest vector unit the CPU has (the
/// arithmetic is the same integer arithmetic on every path: identical results).
fn update_minima(a: &[u64], b: &[u64], shingles: &[u64], sig: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the CPU has the features the function is compiled for.
            return unsafe { update_avx512(a, b, shingles, sig) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { update_avx2(a, b, shingles, sig) };
        }
    }
    update_generic(a, b, shingles, sig)
}

/// One band key of one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BandRec {
    pub key: u64,
    pub doc: u64,
}
record!(BandRec { key: u64, doc: u64 });

/// A member of a component as `components` sorts them: by root, then rank, then `ord` (the
/// input order), so that the first of each root is the survivor.
trait Member: Record {
    fn new(root: u32, rank: u64, ord: u64, row: u32, id: u128) -> Self;
    fn root(&self) -> u32;
    fn rank(&self) -> u64;
    fn ord(&self) -> u64;
    /// The global row; rows at or beyond the night's count are earlier clusters.
    fn row(&self) -> u32;
    /// The id hash (with a history only).
    fn id(&self) -> u128;
}

/// A member without a history: its order is its global row (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MemberRec {
    root: u32,
    rank: u64,
    row: u32,
}
record!(MemberRec {
    root: u32,
    rank: u64,
    row: u32
});

impl Member for MemberRec {
    fn new(root: u32, rank: u64, _ord: u64, row: u32, _id: u128) -> Self {
        MemberRec { root, rank, row }
    }
    fn root(&self) -> u32 {
        self.root
    }
    fn rank(&self) -> u64 {
        self.rank
    }
    fn ord(&self) -> u64 {
        self.row as u64
    }
    fn row(&self) -> u32 {
        self.row
    }
    fn id(&self) -> u128 {
        0
    }
}

/// A member with a dedup history: `ord` is `seq << 32 | row` for tonight's rows and the
/// survivor's ord for an earlier cluster, so that earlier nights come first (40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HistMemberRec {
    root: u32,
    rank: u64,
    ord: u64,
    row: u32,
    id: u128,
}
record!(HistMemberRec {
    root: u32,
    rank: u64,
    ord: u64,
    row: u32,
    id: u128
});

impl Member for HistMemberRec {
    fn new(root: u32, rank: u64, ord: u64, row: u32, id: u128) -> Self {
        HistMemberRec {
            root,
            rank,
            ord,
            row,
            id,
        }
    }
    fn root(&self) -> u32 {
        self.root
    }
    fn rank(&self) -> u64 {
        self.rank
    }
    fn ord(&self) -> u64 {
        self.ord
    }
    fn row(&self) -> u32 {
        self.row
    }
    fn id(&self) -> u128 {
        self.id
    }
}

/// The `dedup.minhash` stage.
pub struct MinHashDedup {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    hasher: MinHasher,
    splits: usize,
    keep: Keep,
    /// The verification threshold (None: pairs are not verified).
    verify: Option<f64>,
    signals: DocSignals,
}

impl MinHashDedup {
    /// `verify`: the candidate verification threshold, None to cluster every candidate.
    pub fn new(
        name: &str,
        hasher: MinHasher,
        band_splits: usize,
        keep: Keep,
        verify: Option<f64>,
    ) -> Self {
        MinHashDedup {
            inner: Arc::new(Inner {
                name: name.to_string(),
                hasher,
                splits: band_splits,
                keep,
                verify,
                signals: DocSignals::new(name),
            }),
        }
    }

    fn sections(&self) -> usize {
        self.inner.hasher.bands * self.inner.splits
    }
}

/// Writes one partition's band keys (and ranks when the keep rule needs them), and its
/// signatures' fingerprints when pairs are verified.
pub struct SignatureCollector {
    inner: Arc<Inner>,
    ctx: PartitionCtx,
    keys: KeyFileWriter<BandRec>,
    ranks: Vec<u8>,
    sigs: Option<SigWriter>,
    /// Id hashes per row, with a dedup history only ([`super::minhash_history`]).
    ids: Option<RecordWriter<Box<dyn crate::store::ObjectWriter>>>,
    buf: SigBuffers,
}

impl SignatureCollector {
    /// Adds a document given its signature (`None`: it has none). Public for benchmarks that
    /// synthesize signatures; [`Collector::collect`] computes them from the text.
    pub fn add_signature(&mut self, sig: Option<&[u64]>, rank: u64) -> Result<()> {
        self.add(sig, rank, 0)
    }

    fn add(&mut self, sig: Option<&[u64]>, rank: u64, id: u128) -> Result<()> {
        let row = self.keys.row();
        if let Some(w) = self.ids.as_mut() {
            w.write(&mh_hist::IdRec { id })
                .map_err(|e| Error::io(mh_hist::ids_path(&self.ctx.dir, self.ctx.partition), e))?;
        }
        if self.inner.keep.uses_rank() {
            self.ranks.extend_from_slice(&rank.to_le_bytes());
        }
        if let Some(w) = self.sigs.as_mut() {
            w.push(sig)
                .map_err(|e| Error::io(sig_path(&self.ctx.dir, self.ctx.partition), e))?;
        }
        match sig {
            Some(sig) => {
                let mut keys = std::mem::take(&mut self.buf.keys);
                self.inner.hasher.band_keys(sig, &mut keys);
                let splits = self.inner.splits;
                for (band, &key) in keys.iter().enumerate() {
                    let split = ((key as u128 * splits as u128) >> 64) as usize;
                    self.keys.add(
                        band * splits + split,
                        BandRec {
                            key,
                            doc: doc_key(self.ctx.partition, row),
                        },
                    );
                }
                self.buf.keys = keys;
            }
            None => self.keys.keyless(),
        }
        Ok(())
    }
}

impl Collector for SignatureCollector {
    fn collect(&mut self, doc: &Document) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        // The shared normalized view's value, written into a reused buffer: the view would
        // cache a copy per document for nothing.
        let mut text = std::mem::take(&mut buf.text);
        crate::text::normalize_into(doc.text(), &mut text);
        let h = &self.inner.hasher;
        h.shingles(&text, &mut buf.shingles);
        buf.text = text;
        let has = !buf.shingles.is_empty();
        if has {
            h.signature_of(&buf.shingles, &mut buf.sig);
        }
        let sig = std::mem::take(&mut buf.sig);
        self.buf = buf;
        let rank = self.inner.keep.rank(doc);
        let id = match self.ids {
            Some(_) => super::history::id_hash(&doc.id),
            None => 0,
        };
        let added = self.add(has.then_some(&sig[..]), rank, id);
        self.buf.sig = sig;
        added
    }

    fn finish(self: Box<Self>) -> Result<()> {
        if let Some(w) = self.sigs {
            let path = sig_path(&self.ctx.dir, self.ctx.partition);
            w.finish().map_err(|e| Error::io(&path, e))?;
        }
        if let Some(w) = self.ids {
            let path = mh_hist::ids_path(&self.ctx.dir, self.ctx.partition);
            w.into_inner()
                .and_then(|w| w.finish())
                .map_err(|e| Error::io(&path, e))?;
        }
        let path = key_path(&self.ctx.dir, self.ctx.partition);
        self.keys
            .finish(self.ctx.store.as_ref(), &path, &self.ranks)
            .map_err(|e| Error::io(&path, e))
    }
}

fn pairs_path(dir: &str, task: usize) -> String {
    format!("{dir}/pairs/task-{task:05}.bin")
}

/// One task per band section: documents sharing a band key become pairs, written for
/// `components`, or routed to `sign` when pairs are verified. With a dedup history, a key an
/// earlier night holds pairs tonight's documents with that earlier document
/// ([`super::minhash_history`]).
struct PairsStep {
    name: String,
    sections: usize,
    verify: bool,
}

/// The history's side of one band section: its sorted key records, tonight's new keys and
/// tonight's candidates with earlier documents.
struct PairsHistory {
    peek: Option<MhKey>,
    source: Box<dyn Source<MhKey>>,
    keys: RecordWriter<Box<dyn crate::store::ObjectWriter>>,
    cands: HCandWriter,
    base: u64,
}

impl PairsHistory {
    /// The first earlier holder of `key` (its ord), skipping smaller keys.
    fn lookup(&mut self, key: u64) -> std::io::Result<Option<u64>> {
        while let Some(h) = self.peek {
            if h.key >= key {
                break;
            }
            self.peek = self.source.next_record()?;
        }
        let best = self.peek.filter(|h| h.key == key).map(|h| h.ord);
        while let Some(h) = self.peek {
            if h.key != key {
                break;
            }
            self.peek = self.source.next_record()?;
        }
        Ok(best)
    }
}

/// The first holder of the band key being read: tonight's document or an earlier one.
#[derive(Clone, Copy)]
enum First {
    Tonight(u64),
    Past(u64),
}

impl GlobalStep for PairsStep {
    fn name(&self) -> &str {
        "pairs"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(self.sections)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let io = |e| Error::io(&ctx.dir, e);
        let mut st = StepStats::new("pairs", task);
        let scratch = Scratch::new(&ctx.scratch).map_err(io)?;
        let budget = task_budget(ctx);
        let (index, sources) = Index::open_section::<BandRec>(ctx, task).map_err(io)?;
        check_rows(&index)?;

        st.count("inputs", sources.len() as u64);
        let snap = super::history::snapshot(ctx.store.as_ref()).map_err(io)?;
        let mut hist = match &snap {
            Some(snap) => {
                let hs = super::history::shard_sources::<MhKey>(
                    &ctx.store,
                    snap,
                    &self.name,
                    self.sections,
                    task,
                )
                .map_err(io)?;
                st.count("history_inputs", hs.len() as u64);
                let mut source = merge(hs, fan_in(budget / 2), &scratch).map_err(io)?;
                let peek = source.next_record().map_err(io)?;
                let path = super::history::out_shard_path(&ctx.dir, task);
                let w = ctx.store.create(&path).map_err(|e| Error::io(&path, e))?;
                Some(PairsHistory {
                    peek,
                    source,
                    keys: RecordWriter::new(w),
                    cands: HCandWriter::create(ctx.store.as_ref(), &ctx.dir, task).map_err(io)?,
                    base: mh_hist::tonight_seq(snap) << 32,
                })
            }
            None => None,
        };
        let merge_budget = if hist.is_some() { budget / 2 } else { budget };
        let mut merged = merge(sources, fan_in(merge_budget), &scratch).map_err(io)?;
        let global = |d: u64| -> u32 {
            let (p, row) = super::decisions::split_key(d);
            (index.offsets[p] + row as u64) as u32
        };
        let mut out = if self.verify {
            PairOut::Routed(Router::new(
                ctx.store.clone(),
                &candidates_dir(&ctx.dir),
                format!("pairs-{task:05}"),
            ))
        } else {
            let path = pairs_path(&ctx.dir, task);
            PairOut::Direct(RecordWriter::new(ctx.store.create(&path).map_err(io)?))
        };
        let (mut keys, mut pairs, mut past_pairs) = (0u64, 0u64, 0u64);
        let mut first: Option<(u64, First)> = None;
        while let Some(r) = merged.next_record().map_err(io)? {
            let f = match first {
                Some((k, f)) if k == r.key => f,
                _ => {
                    keys += 1;
                    let past = match hist.as_mut() {
                        Some(h) => h.lookup(r.key).map_err(io)?,
                        None => None,
                    };
                    let f = match past {
                        Some(ord) => First::Past(ord),
                        None => {
                            if let Some(h) = hist.as_mut() {
                                h.keys
                                    .write(&MhKey {
                                        key: r.key,
                                        ord: h.base | global(r.doc) as u64,
                                    })
                                    .map_err(io)?;
                            }
                            First::Tonight(r.doc)
                        }
                    };
                    first = Some((r.key, f));
                    match f {
                        First::Tonight(_) => continue,
                        First::Past(_) => f,
                    }
                }
            };
            match f {
                First::Tonight(a) => {
                    pairs += 1;
                    match &mut out {
                        PairOut::Direct(w) => w.write(&PairRec {
                            a: global(a),
                            b: global(r.doc),
                        }),
                        PairOut::Routed(router) => router.route(&CandRec { a, b: r.doc }),
                    }
                    .map_err(io)?
                }
                First::Past(h) => {
                    past_pairs += 1;
                    hist.as_mut()
                        .expect("a past holder comes from the history")
                        .cands
                        .write(&HCand { h, b: r.doc })
                        .map_err(io)?
                }
            }
        }
        st.count("band_keys", keys);
        st.count("pairs", pairs);
        match out {
            PairOut::Direct(w) => w.into_inner().and_then(|w| w.finish()).map_err(io)?,
            PairOut::Routed(router) => {
                router.finish().map_err(io)?;
            }
        }
        if let Some(h) = hist {
            st.count("history_pairs", past_pairs);
            st.count("history_written", h.keys.written());
            let path = super::history::out_shard_path(&ctx.dir, task);
            h.keys
                .into_inner()
                .and_then(|w| w.finish())
                .map_err(|e| Error::io(&path, e))?;
            h.cands.finish()?;
        }
        st.count("spilled_bytes", scratch.spill.bytes());
        st.peak_rss_bytes = peak_rss_bytes();
        Ok(st)
    }
}

enum PairOut {
    Direct(RecordWriter<Box<dyn crate::store::ObjectWriter>>),
    Routed(Router<CandRec>),
}

fn check_rows(index: &Index) -> Result<()> {
    if index.total_rows() > u32::MAX as u64 {
        return Err(Error::other(format!(
            "{} documents in one MinHash stage: the limit is 2^32 (split the crawl)",
            index.total_rows()
        )));
    }
    Ok(())
}

/// Dense union-find over global rows; the root of a component is its smallest row.
struct UnionFind {
    parent: Vec<u32>,
    touched: Vec<u64>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            touched: vec![0; n.div_ceil(64)],
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        // Path halving: every other node on the path points to its grandparent.
        while self.parent[x as usize] != x {
            let gp = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) {
        for x in [a, b] {
            self.touched[x as usize / 64] |= 1 << (x % 64);
        }
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi as usize] = lo;
        }
    }

    fn touched(&self, x: u32) -> bool {
        self.touched[x as usize / 64] >> (x % 64) & 1 == 1
    }
}

/// One task: connected components over every pair, then each cluster's survivor. With a dedup
/// history, earlier clusters that tonight's documents joined are nodes too
/// ([`super::minhash_history`]), and the task writes tonight's rows, remaps and retractions.
struct ComponentsStep {
    name: String,
    keep: Keep,
    /// Fingerprints per document kept in the history (0 without verification).
    hashes: usize,
}

/// An earlier cluster tonight's documents joined: its survivor's ord, rank and id hash.
type Cluster = (u64, u64, u128);

/// Verified pairs with earlier clusters: (tonight's global row, earlier cluster's node - n).
type HistoryEdges = Vec<(u32, u32)>;

/// Tonight's side of the history in `components`.
struct ComponentsHistory {
    base: u64,
    seq: u64,
    /// Earlier clusters touched tonight, node `n + i`.
    clusters: Vec<Cluster>,
    /// Survivor of each component with a member tonight, by root.
    survivors: std::collections::HashMap<u32, Cluster>,
    remaps: RecordWriter<Box<dyn crate::store::ObjectWriter>>,
    retractions: std::io::BufWriter<Box<dyn crate::store::ObjectWriter>>,
    retracted: u64,
}

impl ComponentsStep {
    /// Reads the earlier clusters of the verified pairs with the history (resolved through
    /// every remap) and numbers them after tonight's rows.
    fn history(&self, ctx: &StepCtx) -> Result<Option<(ComponentsHistory, HistoryEdges)>> {
        let io = |e| Error::io(&ctx.dir, e);
        let Some(snap) = super::history::snapshot(ctx.store.as_ref()).map_err(io)? else {
            return Ok(None);
        };
        let remaps = mh_hist::load_remaps(&ctx.store, &snap, &self.name)?;
        let path = mh_hist::hedges_path(&ctx.dir);
        let mut r = RecordReader::<mh_hist::HEdge>::new(
            ctx.store.open(&path).map_err(|e| Error::io(&path, e))?,
            path.clone(),
            1 << 16,
        );
        let mut node: std::collections::HashMap<u64, u32> = Default::default();
        let mut clusters = Vec::new();
        let mut edges = Vec::new();
        while let Some(e) = r.next_record().map_err(|e| Error::io(&path, e))? {
            let c = mh_hist::resolve(&remaps, (e.cluster, e.rank, e.rid));
            let i = *node.entry(c.0).or_insert_with(|| {
                clusters.push(c);
                clusters.len() as u32 - 1
            });
            edges.push((e.b as u32, i));
        }
        let seq = mh_hist::tonight_seq(&snap);
        let w = |p: &str| ctx.store.create(p).map_err(|e| Error::io(p, e));
        Ok(Some((
            ComponentsHistory {
                base: seq << 32,
                seq,
                clusters,
                survivors: Default::default(),
                remaps: RecordWriter::new(w(&mh_hist::remaps_path(&ctx.dir))?),
                retractions: std::io::BufWriter::with_capacity(
                    1 << 16,
                    w(&super::history::retractions_path(&ctx.dir, 0))?,
                ),
                retracted: 0,
            },
            edges,
        )))
    }
}

impl GlobalStep for ComponentsStep {
    fn name(&self) -> &str {
        "components"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(1)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let io = |e| Error::io(&ctx.dir, e);
        let mut st = StepStats::new("components", task);
        let scratch = Scratch::new(&ctx.scratch).map_err(io)?;
        // The union-find is the one structure that lives in memory; sorts get the rest
        // (`cluster`).
        let index = Index::load(ctx.store.as_ref(), &ctx.dir).map_err(io)?;
        check_rows(&index)?;
        let n = index.total_rows() as usize;
        let (mut hist, edges) = match self.history(ctx)? {
            Some((h, e)) => (Some(h), e),
            None => (None, Vec::new()),
        };
        let extra = hist.as_ref().map_or(0, |h| h.clusters.len());
        if n + extra > u32::MAX as usize {
            return Err(Error::other(format!(
                "{} documents and earlier clusters in one MinHash stage: the limit is 2^32",
                n + extra
            )));
        }
        let mut uf = UnionFind::new(n + extra);
        let files = ctx.store.list(&format!("{}/pairs", ctx.dir))?;
        let mut pairs = 0u64;
        for f in &files {
            let mut r =
                RecordReader::<PairRec>::new(ctx.store.open(f).map_err(io)?, f.clone(), 1 << 20);
            while let Some(p) = r.next_record().map_err(io)? {
                if p.a as usize >= n || p.b as usize >= n {
                    return Err(Error::other(format!("{f}: pair outside 0..{n}")));
                }
                uf.union(p.a, p.b);
                pairs += 1;
            }
        }
        for &(b, i) in &edges {
            if b as usize >= n {
                return Err(Error::other(format!(
                    "{}: pair outside 0..{n}",
                    mh_hist::hedges_path(&ctx.dir)
                )));
            }
            uf.union(b, n as u32 + i);
        }
        drop(edges);
        st.count("pair_files", files.len() as u64);
        st.count("pairs", pairs);
        let base = hist.as_ref().map_or(0, |h| h.base);
        let (clusters, dups, largest, peak_uf) = if hist.is_some() {
            self.cluster::<HistMemberRec>(ctx, task, &index, &mut uf, &mut hist, base, &scratch)?
        } else {
            self.cluster::<MemberRec>(ctx, task, &index, &mut uf, &mut hist, base, &scratch)?
        };
        if let Some(h) = hist {
            st.count("retracted", h.retracted);
            st.count("history_clusters", h.clusters.len() as u64);
            self.write_history(ctx, &index, h, &mut uf)?;
        }
        drop(uf);
        st.count("documents", n as u64);
        st.count("clusters", clusters);
        st.count("duplicates", dups);
        st.count("largest_cluster", largest);
        st.count("spilled_bytes", scratch.spill.bytes());
        st.peak_rss_bytes = peak_rss_bytes().max(peak_uf);
        Ok(st)
    }
}

/// Calls `f(global row, rank, id hash)` for every row in order (ranks when the keep rule
/// uses them, ids when `ids` is set; 0 otherwise).
fn for_each_row(
    ctx: &StepCtx,
    index: &Index,
    keep: &Keep,
    ids: bool,
    mut f: impl FnMut(u32, u64, u128) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e| Error::io(&ctx.dir, e);
    for p in 0..index.partitions() {
        let (start, rows) = (index.offsets[p], index.parts[p].rows);
        let mut ranks = if keep.uses_rank() {
            let r = index
                .open_extra(ctx.store.as_ref(), &ctx.dir, p)
                .map_err(io)?;
            Some(RecordReader::<u64>::new(r, key_path(&ctx.dir, p), 1 << 16))
        } else {
            None
        };
        let mut idr = if ids {
            let path = mh_hist::ids_path(&ctx.dir, p);
            let r = ctx.store.open(&path).map_err(|e| Error::io(&path, e))?;
            Some(RecordReader::<mh_hist::IdRec>::new(r, path, 1 << 16))
        } else {
            None
        };
        for row in start..start + rows {
            let rank = match ranks.as_mut() {
                Some(r) => r.next_record().map_err(io)?.ok_or_else(|| {
                    Error::other(format!("{}: rank block too short", key_path(&ctx.dir, p)))
                })?,
                None => 0,
            };
            let id = match idr.as_mut() {
                Some(r) => {
                    r.next_record()
                        .map_err(io)?
                        .ok_or_else(|| {
                            Error::other(format!(
                                "{}: fewer ids than rows",
                                mh_hist::ids_path(&ctx.dir, p)
                            ))
                        })?
                        .id
                }
                None => 0,
            };
            f(row as u32, rank, id).map_err(io)?;
        }
    }
    Ok(())
}

impl ComponentsStep {
    /// Sorts the members of every component (tonight's rows and the earlier clusters they
    /// joined) by (root, rank, ord), routes a decision per row of tonight and, with a
    /// history, notes each survivor and retracts earlier survivors that lost. Returns
    /// (clusters, duplicates, largest cluster, peak RSS after the union-find).
    #[allow(clippy::too_many_arguments)]
    fn cluster<M: Member>(
        &self,
        ctx: &StepCtx,
        task: usize,
        index: &Index,
        uf: &mut UnionFind,
        hist: &mut Option<ComponentsHistory>,
        base: u64,
        scratch: &Scratch,
    ) -> Result<(u64, u64, u64, u64)> {
        let io = |e| Error::io(&ctx.dir, e);
        let budget = task_budget(ctx);
        let n = index.total_rows() as usize;
        let mut members = ExtSorter::<M>::new(scratch, budget / 2);
        for_each_row(ctx, index, &self.keep, hist.is_some(), |row, rank, id| {
            if uf.touched(row) {
                let root = uf.find(row);
                members.push(M::new(root, rank, base | row as u64, row, id))?;
            }
            Ok(())
        })?;
        if let Some(h) = hist.as_ref() {
            for (i, &(ord, rank, id)) in h.clusters.iter().enumerate() {
                let row = n as u32 + i as u32;
                members
                    .push(M::new(uf.find(row), rank, ord, row, id))
                    .map_err(io)?;
            }
        }
        let peak_uf = peak_rss_bytes();
        let mut sorted = members.finish().map_err(io)?;
        let mut router = Router::<DocDecision>::new(
            ctx.store.clone(),
            &ctx.dir,
            format!("components-{task:05}"),
        );
        let key_of = |row: u32| -> u64 {
            let p = index.partition_of(row as u64);
            doc_key(p, (row as u64 - index.offsets[p]) as u32)
        };
        let (mut clusters, mut dups, mut largest) = (0u64, 0u64, 0u64);
        let mut group = GroupBuffer::<M>::new(scratch, budget / 8);
        let stage = self.name.clone();
        let mut flush = |group: &mut GroupBuffer<M>,
                         router: &mut Router<DocDecision>,
                         hist: &mut Option<ComponentsHistory>|
         -> std::io::Result<()> {
            let size = group.len();
            if size == 0 {
                return Ok(());
            }
            clusters += 1;
            dups += size - 1;
            largest = largest.max(size);
            let mut rep: Option<M> = None;
            group.drain(|m| {
                let rep = *rep.get_or_insert(*m);
                let tonight = (m.row() as usize) < n;
                if let Some(h) = hist.as_mut() {
                    if m.row() == rep.row() {
                        h.survivors
                            .insert(m.root(), (rep.ord(), rep.rank(), rep.id()));
                    } else if !tonight {
                        // An earlier survivor lost: to a better document tonight, or to
                        // another earlier cluster that tonight's documents joined it to.
                        h.retracted += 1;
                        h.remaps.write(&mh_hist::Remap {
                            from: m.ord(),
                            to: rep.ord(),
                            rank: rep.rank(),
                            rid: rep.id(),
                        })?;
                        let line = serde_json::json!({
                            "id_xxh3": format!("{:032x}", m.id()),
                            "stage": stage,
                            "reason": "superseded",
                            "by_id_xxh3": format!("{:032x}", rep.id()),
                        });
                        use std::io::Write;
                        writeln!(h.retractions, "{line}")?;
                    }
                }
                if !tonight {
                    return Ok(());
                }
                let rep_key = if (rep.row() as usize) < n {
                    key_of(rep.row())
                } else {
                    super::history::history_rep(rep.id())
                };
                router.route(&DocDecision {
                    doc: key_of(m.row()),
                    rep: rep_key,
                    size: size.min(u32::MAX as u64) as u32,
                    dup: (m.row() != rep.row()) as u32,
                })
            })
        };
        let mut root = None;
        while let Some(m) = sorted.next_record().map_err(io)? {
            if root != Some(m.root()) {
                flush(&mut group, &mut router, hist).map_err(io)?;
                root = Some(m.root());
            }
            group.push(m).map_err(io)?;
        }
        flush(&mut group, &mut router, hist).map_err(io)?;
        router.finish().map_err(io)?;
        Ok((clusters, dups, largest, peak_uf))
    }

    /// Tonight's rows for the history (each document's cluster and fingerprints), its remaps
    /// and retractions.
    fn write_history(
        &self,
        ctx: &StepCtx,
        index: &Index,
        h: ComponentsHistory,
        uf: &mut UnionFind,
    ) -> Result<()> {
        let path = mh_hist::docs_path(&ctx.dir, h.seq);
        let mut w = ctx.store.create(&path).map_err(|e| Error::io(&path, e))?;
        use std::io::Write;
        let n = index.total_rows();
        w.write_all(&mh_hist::docs_header(self.hashes, h.seq, n))
            .map_err(|e| Error::io(&path, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, w);
        let mut sigs = super::verify::SigCursor::new(ctx, index, self.hashes);
        let mut row_buf = vec![0u8; mh_hist::row_width(self.hashes)];
        let mut fp = vec![0u8; 2 * self.hashes];
        for_each_row(ctx, index, &self.keep, true, |row, rank, id| {
            let c = if uf.touched(row) {
                h.survivors[&uf.find(row)]
            } else {
                (h.base | row as u64, rank, id)
            };
            if self.hashes > 0 {
                let p = index.partition_of(row as u64);
                let key = doc_key(p, (row as u64 - index.offsets[p]) as u32);
                sigs.read(key, &mut fp)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            row_buf.clear();
            row_buf.extend_from_slice(&c.0.to_le_bytes());
            row_buf.extend_from_slice(&c.1.to_le_bytes());
            row_buf.extend_from_slice(&c.2.to_le_bytes());
            row_buf.extend_from_slice(&fp);
            w.write_all(&row_buf)
        })?;
        w.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|w| w.finish())
            .map_err(|e| Error::io(&path, e))?;
        let path = mh_hist::remaps_path(&ctx.dir);
        h.remaps
            .into_inner()
            .and_then(|w| w.finish())
            .map_err(|e| Error::io(&path, e))?;
        let path = super::history::retractions_path(&ctx.dir, 0);
        h.retractions
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|w| w.finish())
            .map_err(|e| Error::io(&path, e))?;
        Ok(())
    }
}

impl GlobalStage for MinHashDedup {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.inner.signals.declared)
    }

    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>> {
        Ok(Box::new(self.signature_collector(ctx)?))
    }

    fn steps(&self) -> Vec<Box<dyn GlobalStep>> {
        let hashes = self.inner.hasher.bands * self.inner.hasher.rows;
        let mut steps: Vec<Box<dyn GlobalStep>> = vec![
            Box::new(IndexStep {
                record_size: BandRec::SIZE,
                sections: self.sections(),
            }),
            Box::new(PairsStep {
                name: self.inner.name.clone(),
                sections: self.sections(),
                verify: self.inner.verify.is_some(),
            }),
        ];
        if let Some(t) = self.inner.verify {
            steps.push(Box::new(SignStep { hashes }));
            steps.push(Box::new(VerifyStep {
                hashes,
                min_equal: min_equal(hashes, t),
            }));
        }
        let kept_hashes = if self.inner.verify.is_some() {
            hashes
        } else {
            0
        };
        steps.push(Box::new(mh_hist::HistoryStep {
            stage: self.inner.name.clone(),
            hashes: kept_hashes,
            min_equal: self.inner.verify.map(|t| min_equal(hashes, t)),
        }));
        steps.push(Box::new(ComponentsStep {
            name: self.inner.name.clone(),
            keep: self.inner.keep.clone(),
            hashes: kept_hashes,
        }));
        steps.push(DecideStep::<DocDecision>::boxed());
        steps
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        self.inner.signals.applier(ctx)
    }
}

impl MinHashDedup {
    /// The collector of one partition, with its concrete type (benchmarks feed it signatures).
    pub fn signature_collector(&self, ctx: &PartitionCtx) -> Result<SignatureCollector> {
        let sigs = match self.inner.verify {
            Some(_) => {
                let path = sig_path(&ctx.dir, ctx.partition);
                let h = &self.inner.hasher;
                Some(
                    SigWriter::create(ctx.store.as_ref(), &path, h.bands * h.rows)
                        .map_err(|e| Error::io(&path, e))?,
                )
            }
            None => None,
        };
        let ids = match super::history::snapshot(ctx.store.as_ref()) {
            Ok(Some(_)) => {
                let path = mh_hist::ids_path(&ctx.dir, ctx.partition);
                Some(RecordWriter::new(
                    ctx.store.create(&path).map_err(|e| Error::io(&path, e))?,
                ))
            }
            Ok(None) => None,
            Err(e) => return Err(Error::io(&ctx.dir, e)),
        };
        Ok(SignatureCollector {
            inner: self.inner.clone(),
            ctx: ctx.clone(),
            keys: KeyFileWriter::new(self.sections()),
            ranks: Vec::new(),
            sigs,
            ids,
            buf: SigBuffers::default(),
        })
    }

    /// The candidate verification threshold (None: not verified).
    pub fn verify_threshold(&self) -> Option<f64> {
        self.inner.verify
    }

    pub fn hasher(&self) -> &MinHasher {
        &self.inner.hasher
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::keep::KeepRule;
    use crate::dedup::testing::{build as build_stage, build_err, doc, run};

    fn words(n: usize, seed: u64) -> String {
        let mut st = seed;
        (0..n)
            .map(|_| format!("w{}", splitmix(&mut st) % 5000))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn shingles_and_signatures() {
        let h = MinHasher::new(3, 4, 2, 1);
        let mut s = Vec::new();
        h.shingles("a b c d", &mut s);
        assert_eq!(s.len(), 2);
        let mut s2 = Vec::new();
        h.shingles("x a b c d", &mut s2);
        assert_eq!(s2[1..], s[..], "the same 3-grams hash alike");
        h.shingles("a b", &mut s);
        assert_eq!(s.len(), 1, "short texts are one shingle");
        h.shingles("", &mut s);
        assert!(s.is_empty());
        // Every vector path computes the same minima as the scalar code.
        let sh: Vec<u64> = (0..1000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let h = MinHasher::new(5, 14, 8, 9);
        let mut fast = Vec::new();
        h.signature_of(&sh, &mut fast);
        let mut slow = vec![u64::MAX; 112];
        update_generic(&h.a, &h.b, &sh, &mut slow);
        assert_eq!(fast, slow);
        assert!(fast.iter().all(|&v| v < P61));
    }

    #[test]
    fn signature_agreement_estimates_jaccard() {
        // 2,000 shingles each, 1,000 shared: Jaccard 1/3. 4,096 hashes estimate it to +-0.02.
        let h = MinHasher::new(5, 512, 8, 3);
        let a: Vec<u64> = (0..2000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
            .collect();
        let b: Vec<u64> = (1000..3000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))
            .collect();
        let (mut sa, mut sb) = (Vec::new(), Vec::new());
        h.signature_of(&a, &mut sa);
        h.signature_of(&b, &mut sb);
        let agree = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        assert!((agree - 1.0 / 3.0).abs() < 0.02, "estimate {agree}");
        assert!((h.candidate_probability(1.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn clusters_near_duplicates_across_partitions() {
        let stage = build_stage(&DEF, "mh", "keep = \"newest\"\nband_splits = 3");
        let base = words(300, 1);
        let other = words(300, 2);
        // A near copy: 3 words changed out of 300 (Jaccard of 5-grams about 0.9).
        let mut w: Vec<&str> = base.split(' ').collect();
        w[50] = "changed";
        w[150] = "changed";
        w[250] = "changed";
        let near = w.join(" ");
        let mut docs = vec![
            doc("base", "", &base),
            doc("other", "", &other),
            doc("empty", "", "!!!"),
            doc("near", "", &near),
            doc("copy", "", &format!("{}!", base.to_uppercase())),
        ];
        for (d, t) in docs.iter_mut().zip([10, 10, 10, 30, 20]) {
            d.crawl_date = Some(t);
        }
        let rest = docs.split_off(2);
        let out = run(stage.as_ref(), vec![docs, Vec::new(), rest]);
        let flat: Vec<_> = out.iter().flatten().collect();
        let kept: Vec<&str> = flat
            .iter()
            .filter(|(_, o)| o.is_keep())
            .map(|(d, _)| d.id.as_str())
            .collect();
        assert_eq!(
            kept,
            vec!["other", "empty", "near"],
            "newest of the cluster stays"
        );
        let near_key = doc_key(2, 1) as i64;
        for (d, _) in &flat {
            match d.id.as_str() {
                "base" | "near" | "copy" => {
                    assert_eq!(d.signals.i64("mh.cluster_size"), Some(3), "{}", d.id);
                    assert_eq!(d.signals.i64("mh.cluster_id"), Some(near_key), "{}", d.id);
                }
                _ => assert_eq!(d.signals.i64("mh.cluster_size"), Some(1), "{}", d.id),
            }
        }
    }

    /// Runs the stage over signatures given directly; returns each document's cluster size
    /// and the counters of the `verify` step.
    fn run_signatures(
        stage: &MinHashDedup,
        parts: &[Vec<Option<Vec<u64>>>],
    ) -> (Vec<Vec<i64>>, std::collections::BTreeMap<String, u64>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn crate::Store> =
            Arc::new(crate::LocalStore::new(dir.path().join("out")).unwrap());
        let pctx = |p: usize| PartitionCtx {
            store: store.clone(),
            dir: "work/mh".into(),
            partition: p,
            partitions: parts.len(),
            scratch: dir.path().join("scratch"),
            seed: 1,
        };
        for (p, sigs) in parts.iter().enumerate() {
            let mut c = stage.signature_collector(&pctx(p)).unwrap();
            for s in sigs {
                c.add_signature(s.as_deref(), 0).unwrap();
            }
            Box::new(c).finish().unwrap();
        }
        let sctx = StepCtx {
            store: store.clone(),
            dir: "work/mh".into(),
            partitions: parts.len(),
            scratch: dir.path().join("scratch"),
            memory_budget: 16 << 20,
            threads: 1,
            seed: 1,
        };
        let mut counters = std::collections::BTreeMap::new();
        for step in stage.steps() {
            for t in 0..step.tasks(&sctx).unwrap() {
                let st = step.run(t, &sctx).unwrap();
                if step.name() == "verify" {
                    for (k, v) in st.counters {
                        *counters.entry(k).or_insert(0) += v;
                    }
                }
            }
        }
        let sizes = (0..parts.len())
            .map(|p| {
                let mut a = stage.applier(&pctx(p)).unwrap();
                parts[p]
                    .iter()
                    .map(|_| {
                        let mut d = Document::new("", "");
                        a.apply(&mut d);
                        d.signals.i64("mh.cluster_size").unwrap()
                    })
                    .collect()
            })
            .collect();
        (sizes, counters)
    }

    #[test]
    fn verification_rejects_candidates_with_dissimilar_signatures() {
        let h = MinHasher::new(5, 14, 8, 1);
        let random = |seed: u64| -> Vec<u64> {
            let mut st = seed;
            (0..112).map(|_| splitmix(&mut st) % P61).collect()
        };
        // a and b share band 0 and nothing else: a candidate whose whole signatures agree on
        // 8 of 112 values (estimated similarity 0.07).
        let a = random(1);
        let mut b = random(2);
        b[..8].copy_from_slice(&a[..8]);
        // c and d agree on 101 of 112 values (0.90), band 0 included.
        let c = random(3);
        let mut d = c.clone();
        for j in (9..112).step_by(10) {
            d[j] = c[j] ^ 1;
        }
        // e repeats b in another band too: the pair (a, e) is a candidate twice over, and
        // checked once.
        let mut e = b.clone();
        e[16..24].copy_from_slice(&a[16..24]);
        let parts = vec![
            vec![Some(a), Some(c), None],
            vec![Some(b), Some(d)],
            vec![Some(e)],
        ];
        let keep = || Keep::new(KeepRule::First, None).unwrap();
        let verified = MinHashDedup::new("mh", h.clone(), 2, keep(), Some(0.7));
        let (sizes, counters) = run_signatures(&verified, &parts);
        // b and e agree on 104 of 112 values: a verified pair of their own.
        assert_eq!(sizes, vec![vec![1, 2, 1], vec![2, 2], vec![2]]);
        assert_eq!(counters["candidates"], 4, "{counters:?}");
        assert_eq!(counters["rejected"], 2, "{counters:?}");
        assert_eq!(counters["verified"], 2, "{counters:?}");
        // Without verification every candidate is a duplicate: a, b and e form one cluster.
        let unverified = MinHashDedup::new("mh", h, 2, keep(), None);
        let (sizes, counters) = run_signatures(&unverified, &parts);
        assert_eq!(sizes, vec![vec![3, 2, 1], vec![3, 2], vec![3]]);
        assert!(counters.is_empty(), "no verify step");
    }

    #[test]
    fn found_probability_follows_the_threshold() {
        let h = MinHasher::new(5, 14, 8, 1);
        for s in [0.3, 0.5, 0.8, 0.95] {
            let p = h.found_probability(s, 0.0);
            assert!((p - h.candidate_probability(s)).abs() < 1e-12);
            // A threshold of one share of the hashes per band is always met by a candidate.
            let low = h.found_probability(s, 8.0 / 112.0);
            assert!((low - p).abs() < 1e-9, "{s}: {low} vs {p}");
        }
        assert!(h.found_probability(0.5, 0.7) < 1e-3);
        assert!(h.found_probability(0.8, 0.7) > 0.99 * h.candidate_probability(0.8));
        assert!(h.found_probability(0.9, 1.0) < h.found_probability(0.9, 0.9));
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(build_err(&DEF, "rows = 0").key, "rows");
        assert_eq!(build_err(&DEF, "bands = 2000").key, "bands");
        assert_eq!(build_err(&DEF, "keep = \"lowest\"").key, "keep_signal");
        assert_eq!(build_err(&DEF, "ngrams = 3").key, "ngrams");
        assert_eq!(
            build_err(&DEF, "verify_threshold = 1.5").key,
            "verify_threshold"
        );
        assert_eq!(build_err(&DEF, "bands = 100\nrows = 64").key, "verify");
        // Without verification any size of signature is allowed.
        let _ = build_stage(&DEF, "mh", "bands = 100\nrows = 64\nverify = false");
    }
}
