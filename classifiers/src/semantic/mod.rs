//! `dedup.semantic`: semantic deduplication (SemDeDup, Abbas et al. 2023; NeMo Curator's
//! `SemDedup`), the step Llama 3 names beside MinHash.
//!
//! Documents that say the same thing in other words share few shingles, so MinHash misses
//! them; their sentence embeddings are close. The stage:
//!
//! 1. **collect** (end of the phase before the barrier): embeds every kept document with the
//!    encoder (an ONNX sentence encoder, mean-pooled, or a static model distilled from one by
//!    `curate distill`, see [`crate::static_embed`]; L2-normalised: cosine = dot product) and
//!    streams `(quality, chars, embedding)` rows to `work/<name>/emb/part-P.bin` (embeddings
//!    as int8 codes, [`files`]);
//! 2. **centroids** (one task, memory independent of the number of documents): the
//!    `kmeans_sample` rows of smallest seeded content hash (a bounded heap: the same sample
//!    whatever the partitioning), a two-level spherical k-means tree fitted on them
//!    ([`kmeans::Tree`], `k = ceil(rows / cluster_docs)` fine clusters under `sqrt(k)` coarse
//!    ones), then `kmeans_passes` streamed Lloyd passes over every row that refine the fine
//!    centroids with fixed-point sums (exact, so byte-identical centroids with any thread
//!    count, task count or partitioning); clusters are dealt to groups (`cluster mod groups`);
//! 3. **assign** (one task per range of 256 partitions, streamed in blocks): each row goes to
//!    its cluster in its group's file, sorted by (cluster, projection on a seeded direction,
//!    partition, row);
//! 4. **dedup** (one task per group): a merge of the group's files hands over one cluster at a
//!    time (memory: the largest cluster, or `cluster_cap` documents: a bigger cluster is cut
//!    into pieces of neighbours along the seeded direction, cut between different vectors up to
//!    2 x cap);
//!    within each, documents in order of quality (the `quality_signal`, then length, then
//!    position) are kept unless their cosine to an already kept document reaches
//!    `threshold`;
//! 5. **apply** (start of the next phase): `<name>.cluster` and `<name>.nearest_sim` (highest
//!    cosine to another kept document of the cluster; -1 when there is none) as signals, and
//!    the verdict `near_duplicate` when `nearest_sim >= threshold`, so re-judging with another
//!    threshold works from the stored signal.
//!
//! **Verified cascade** (`verify_model`, `verify_threshold`): the collector also keeps each
//! document's token ids under a second, ONNX encoder (a fixed-width payload that the side files
//! carry to the dedup step), and in step 4 a document that `model` flags is dropped only when
//! that encoder, run on it and on the kept documents it is flagged against, confirms one of
//! them at `verify_threshold`. So a cheap model chooses the candidates and an expensive one
//! decides, for the price of embedding only the documents in flagged pairs (the stats'
//! `verify_embedded`). `<name>.verified_sim` holds the verifier's cosine; the verdict needs
//! both thresholds.

pub mod files;
pub mod kmeans;

use std::io::Write;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Deserialize;
use stages::declare::{Declare, Declared, Sig, F32, I64};
use stages::{
    Applier, Built, Collector, ConfigError, Document, Error, GlobalStage, GlobalStep, ObjectWriter,
    Outcome, PartitionCtx, Purpose, Result, StageArgs, StageDef, StepCtx, StepStats,
};

use crate::onnx::{Device, Encoder, EncoderOptions, Pooling, Tokens};
use crate::static_embed::{self, StaticModel};
use files::*;

/// `[stages.NAME]` with `type = "dedup.semantic"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticConfig {
    /// The encoder directory: an ONNX one (`model.onnx` + `tokenizer.json`, e.g.
    /// all-MiniLM-L6-v2) or a static model (`static.json`, from `curate distill`).
    pub model: String,
    /// Cosine similarity at or above which a document duplicates a kept one.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Target documents per cluster (k = rows / cluster_docs): bounds the pairwise work and the
    /// memory of one cluster.
    #[serde(default = "default_cluster_docs")]
    pub cluster_docs: usize,
    /// Rows k-means is fitted on (a seeded sample when there are more).
    #[serde(default = "default_sample")]
    pub kmeans_sample: usize,
    /// Lloyd iterations at most on the sample (stops earlier when no row moves).
    #[serde(default = "default_iterations")]
    pub kmeans_iterations: usize,
    /// Streamed Lloyd passes over every row after the fit on the sample (each refines the
    /// fine centroids; memory stays the centroids and their sums). 0: the sample's fit alone.
    #[serde(default = "one")]
    pub kmeans_passes: usize,
    /// Most documents the dedup step compares as one block: a bigger cluster is cut into
    /// pieces of neighbours along a seeded direction (bounds memory and pairwise work).
    #[serde(default = "default_cap")]
    pub cluster_cap: usize,
    /// Signal whose higher value wins among duplicates (e.g. `quality.hq`); documents without
    /// it rank last. Unset: the longer document wins.
    pub quality_signal: Option<String>,
    /// Tokens per document for the encoder (default 128: MiniLM's training length; for a
    /// static model, the tokens it sums, default the window it was distilled for).
    pub max_length: Option<usize>,
    /// Pooling of the encoder output (default `mean`).
    #[serde(default = "default_pooling")]
    pub pooling: Pooling,
    /// Documents per onnxruntime run.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// `libonnxruntime.so` (else `ORT_DYLIB_PATH`).
    pub ort_library: Option<String>,
    /// `"cpu"` (default) or `"cuda"` (an error when the library or machine has no CUDA).
    #[serde(default)]
    pub device: Device,
    /// CUDA device ordinal.
    #[serde(default)]
    pub device_id: i32,
    /// onnxruntime intra-op threads per session.
    #[serde(default = "one")]
    pub threads: usize,
    /// Most onnxruntime sessions at once (default: one per busy worker thread).
    pub sessions: Option<usize>,
    /// An ONNX sentence encoder that re-scores the pairs `model` flags (a verified cascade): a
    /// document is dropped only when its cosine under this encoder to a kept document that
    /// `model` puts at or above `threshold` also reaches `verify_threshold`. The intended use:
    /// a static model as `model` (every document, microseconds) and MiniLM here (only the
    /// documents in flagged pairs, tens of milliseconds each).
    pub verify_model: Option<String>,
    /// Cosine under `verify_model` at or above which a flagged pair is a duplicate (required
    /// with `verify_model`).
    pub verify_threshold: Option<f64>,
    /// Tokens per document for the verifier (default 128; their ids are kept from the collect
    /// step to the dedup step, 2 bytes each when the vocabulary fits 16 bits, else 4).
    pub verify_max_length: Option<usize>,
}

fn default_threshold() -> f64 {
    0.9
}
fn default_cluster_docs() -> usize {
    10_000
}
fn default_sample() -> usize {
    100_000
}
fn default_iterations() -> usize {
    20
}
fn default_cap() -> usize {
    50_000
}
fn default_pooling() -> Pooling {
    Pooling::Mean
}
fn default_batch() -> usize {
    32
}
fn one() -> usize {
    1
}

pub static DEF: StageDef = StageDef {
    kind: "dedup.semantic",
    about: "Semantic dedup: embeddings, seeded k-means, per-cluster cosine threshold",
    example:
        "model = \"classifiers/testdata/tiny-bert-mean\"\nthreshold = 0.95\ncluster_docs = 1000",
    build,
};

/// Most documents the collector holds before embedding them as one parallel batch.
const COLLECT_BATCH: usize = 512;

/// Tokens the verifier reads per document unless `verify_max_length` says otherwise.
const VERIFY_MAX_LENGTH: usize = 128;

/// The embedder of the collect step.
enum SemEncoder {
    // Boxed: both are kilobytes (tokenizers), the enum stays a pointer wide.
    Onnx(Box<Encoder>),
    Static(Box<StaticModel>),
}

impl SemEncoder {
    fn dim(&self) -> usize {
        match self {
            SemEncoder::Onnx(e) => e.dim(),
            SemEncoder::Static(m) => m.dim(),
        }
    }
}

struct Shared {
    name: String,
    cfg: SemanticConfig,
    encoder: Option<SemEncoder>,
    /// The verifier (`verify_model`), opened for a run.
    verifier: Option<Box<Encoder>>,
    /// Token ids kept per document for the verifier (0: no verifier), and their width in
    /// bytes.
    verify_tokens: usize,
    verify_width: usize,
    sig_cluster: Sig<I64>,
    sig_sim: Sig<F32>,
    sig_verified: Option<Sig<F32>>,
    declared: Declared,
}

impl Shared {
    /// Payload bytes per row: the verifier's tokens, or nothing.
    fn payload(&self) -> usize {
        if self.verify_tokens == 0 {
            0
        } else {
            tokens_len(self.verify_tokens, self.verify_width)
        }
    }
}

pub struct SemanticDedup {
    shared: Arc<Shared>,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: SemanticConfig = args.parse()?;
    let dir = args.resolve_path("model", &cfg.model)?;
    stages::config::check_range("threshold", cfg.threshold, -1.0, 1.0)?;
    for (k, v) in [
        ("cluster_docs", cfg.cluster_docs),
        ("kmeans_sample", cfg.kmeans_sample),
        ("kmeans_iterations", cfg.kmeans_iterations),
        ("cluster_cap", cfg.cluster_cap),
        ("max_length", cfg.max_length.unwrap_or(1)),
        ("verify_max_length", cfg.verify_max_length.unwrap_or(1)),
        ("batch_size", cfg.batch_size),
    ] {
        if v == 0 {
            return Err(ConfigError::new(k, "must be positive"));
        }
    }
    if cfg.verify_max_length.is_some_and(|n| n > u16::MAX as usize) {
        return Err(ConfigError::new("verify_max_length", "at most 65535"));
    }
    let verify_dir = match (&cfg.verify_model, cfg.verify_threshold) {
        (Some(m), Some(t)) => {
            stages::config::check_range("verify_threshold", t, -1.0, 1.0)?;
            let d = args.resolve_path("verify_model", m)?;
            if static_embed::is_static(&d) {
                return Err(ConfigError::new(
                    "verify_model",
                    "the verifier must be an ONNX encoder (model.onnx); a static model belongs in `model`",
                ));
            }
            Some(d)
        }
        (Some(_), None) => {
            return Err(ConfigError::new(
                "verify_threshold",
                "required with verify_model (a cosine under the verifier)",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "verify_threshold",
                "only means something with verify_model",
            ))
        }
        (None, None) => None,
    };
    if cfg.verify_max_length.is_some() && verify_dir.is_none() {
        return Err(ConfigError::new(
            "verify_max_length",
            "only means something with verify_model",
        ));
    }
    let is_static = static_embed::is_static(&dir);
    if cfg.pooling == Pooling::None && !is_static {
        return Err(ConfigError::new(
            "pooling",
            "semantic dedup needs token vectors pooled: \"mean\" or \"cls\"",
        ));
    }
    let runtime = crate::onnx::stage::runtime_options(
        args,
        cfg.ort_library.as_deref(),
        cfg.device,
        cfg.device_id,
        cfg.threads,
        cfg.sessions,
    )?;
    let encoder = match args.purpose {
        Purpose::Select => None,
        // A static model needs neither onnxruntime nor a device.
        Purpose::Run if is_static => {
            let mut m =
                StaticModel::open(&dir).map_err(|e| ConfigError::new("model", e.to_string()))?;
            if let Some(n) = cfg.max_length {
                m.set_max_tokens(n);
            }
            Some(SemEncoder::Static(Box::new(m)))
        }
        Purpose::Run => {
            let opts = EncoderOptions {
                runtime: runtime.clone(),
                batch_size: cfg.batch_size,
                max_length: Some(cfg.max_length.unwrap_or(128)),
                truncation: None,
                pooling: Some(cfg.pooling),
                normalize: Some(true),
                max_sessions: cfg.sessions,
            };
            crate::onnx::stage::check_device(&opts.runtime)?;
            Some(SemEncoder::Onnx(Box::new(
                Encoder::open(&dir, &opts).map_err(|e| ConfigError::new("model", e.to_string()))?,
            )))
        }
    };
    let verify_tokens = match &verify_dir {
        Some(_) => cfg.verify_max_length.unwrap_or(VERIFY_MAX_LENGTH),
        None => 0,
    };
    let verifier = match (&verify_dir, args.purpose) {
        (Some(vd), Purpose::Run) => {
            let opts = EncoderOptions {
                runtime: runtime.clone(),
                // One document per run: an int8 model quantizes activations per batch, so in a
                // batch a document's embedding would depend on its batch mates; alone it
                // depends on its tokens only, whatever cluster it lands in.
                batch_size: 1,
                max_length: Some(verify_tokens),
                truncation: None,
                pooling: Some(cfg.pooling),
                normalize: Some(true),
                max_sessions: cfg.sessions,
            };
            crate::onnx::stage::check_device(&opts.runtime)?;
            let v = Encoder::open(vd, &opts)
                .map_err(|e| ConfigError::new("verify_model", e.to_string()))?;
            Some(Box::new(v))
        }
        _ => None,
    };
    let mut d = Declare::new(args.name);
    let sig_cluster = d.signal("cluster", "k-means cluster of the document's embedding");
    let sig_sim = d.signal(
        "nearest_sim",
        "highest cosine to another kept document of the cluster (-1: none)",
    );
    let sig_verified = match cfg.verify_threshold.filter(|_| verify_dir.is_some()) {
        Some(vt) => {
            let sig = d.signal(
                "verified_sim",
                "cosine under verify_model to the nearest kept document that model flags (-1: none flagged)",
            );
            // Dropped: flagged by the model and confirmed by the verifier.
            d.reach(sig, Some(vt), "verify_threshold", "near_duplicate")
                .absent_keeps()
                .only_if(sig_sim, cfg.threshold);
            Some(sig)
        }
        None => {
            d.reach(sig_sim, Some(cfg.threshold), "threshold", "near_duplicate")
                .absent_keeps();
            None
        }
    };
    Ok(Built::Global(Box::new(SemanticDedup {
        shared: Arc::new(Shared {
            name: args.name.to_string(),
            sig_cluster,
            sig_sim,
            sig_verified,
            declared: d.finish(),
            cfg,
            encoder,
            verify_width: verifier.as_ref().map_or(4, |v| token_width(v.vocab_size())),
            verifier,
            verify_tokens,
        }),
    })))
}

impl GlobalStage for SemanticDedup {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.shared.declared)
    }

    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>> {
        let enc = self
            .shared
            .encoder
            .as_ref()
            .ok_or_else(|| Error::other("dedup.semantic built without its encoder"))?;
        let path = emb_path(&ctx.dir, ctx.partition);
        let mut out = ctx.store.create(&path).map_err(|e| Error::io(&path, e))?;
        out.write_all(&header(
            EMB_MAGIC,
            enc.dim() as u32,
            self.shared.payload() as u32,
        ))
        .map_err(|e| Error::io(&path, e))?;
        Ok(Box::new(EmbedCollector {
            shared: self.shared.clone(),
            ctx: ctx.clone(),
            out: Some(out),
            path,
            pending: Vec::new(),
            ids: Vec::new(),
            emb: Vec::new(),
            rows: 0,
            scratch: Vec::new(),
            payload: Vec::new(),
        }))
    }

    fn steps(&self) -> Vec<Box<dyn GlobalStep>> {
        vec![
            Box::new(CentroidStep(self.shared.clone())),
            Box::new(AssignStep),
            Box::new(DedupStep(self.shared.clone())),
        ]
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        let plan: Plan = read_json(ctx.store.as_ref(), &plan_path(&ctx.dir))?;
        let meta: EmbMeta = read_json(ctx.store.as_ref(), &emb_meta_path(&ctx.dir, ctx.partition))?;
        let mut rows = vec![(-1i64, -1f32, -1f32, false); meta.rows as usize];
        for g in 0..plan.groups {
            let path = decision_path(&ctx.dir, g, ctx.partition / plan.range);
            let b = read_decisions(ctx.store.as_ref(), &path, ctx.partition % plan.range)?;
            for r in b.chunks_exact(DECISION_ROW) {
                let row = u32_at(r, 0) as usize;
                let slot = rows
                    .get_mut(row)
                    .ok_or_else(|| Error::other(format!("{path}: row {row} out of range")))?;
                *slot = (
                    u32_at(r, 4) as i64,
                    f32_at(r, 8),
                    f32_at(r, 12),
                    u32_at(r, 16) != 0,
                );
            }
        }
        Ok(Box::new(SemanticApplier {
            shared: self.shared.clone(),
            rows,
            next: 0,
        }))
    }
}

struct EmbedCollector {
    shared: Arc<Shared>,
    ctx: PartitionCtx,
    out: Option<Box<dyn ObjectWriter>>,
    path: String,
    /// Tokenized documents waiting for the next batch: `(tokens, quality, chars, payload)`.
    pending: Vec<(Tokens, f32, u32, Vec<u8>)>,
    /// Scratch of the static model: token ids and one embedding.
    ids: Vec<u32>,
    emb: Vec<f32>,
    rows: u64,
    scratch: Vec<u8>,
    /// The current document's payload (the verifier's tokens).
    payload: Vec<u8>,
}

impl EmbedCollector {
    /// The payload of `text`: the verifier's token ids, or nothing without a verifier.
    fn payload_of(&mut self, text: &str) -> Result<()> {
        self.payload.clear();
        let Some(v) = self.shared.verifier.as_deref() else {
            return Ok(());
        };
        let name = &self.shared.name;
        let toks = v
            .tokenize(text)
            .or_else(|_| v.tokenize(""))
            .map_err(|e| Error::other(format!("{name}: verify_model: {e}")))?;
        // The dedup step rebuilds the input from ids alone, with segment 0 throughout: what a
        // single-text encoder gives.
        if toks.type_ids.iter().any(|&t| t != 0) {
            return Err(Error::other(format!(
                "{name}: verify_model gives non-zero token type ids for a single text"
            )));
        }
        let (max, width) = (self.shared.verify_tokens, self.shared.verify_width);
        put_tokens(&toks.ids, max, width, &mut self.payload)
            .map_err(|e| Error::other(format!("{name}: verify_model: {e}")))
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(SemEncoder::Onnx(enc)) = self.shared.encoder.as_ref() else {
            unreachable!("tokens wait only for an ONNX encoder")
        };
        let toks: Vec<Tokens> = self.pending.iter().map(|p| p.0.clone()).collect();
        let embs = enc
            .embed_tokens(&toks)
            .map_err(|e| Error::other(format!("{}: {e}", self.shared.name)))?;
        let out = self.out.as_mut().expect("open writer");
        for ((_, q, c, payload), e) in self.pending.drain(..).zip(embs) {
            write_emb_row(out, q, c, &e, &payload, &mut self.scratch)
                .map_err(|e| Error::io(&self.path, e))?;
            self.rows += 1;
        }
        Ok(())
    }
}

impl Collector for EmbedCollector {
    fn collect(&mut self, doc: &Document) -> Result<()> {
        let quality = match &self.shared.cfg.quality_signal {
            Some(s) => doc
                .signals
                .f64(s)
                .filter(|v| v.is_finite())
                .map_or(f32::NEG_INFINITY, |v| v as f32),
            None => 0.0,
        };
        let chars = doc.text().chars().count().min(u32::MAX as usize) as u32;
        self.payload_of(doc.text())?;
        match self.shared.encoder.as_ref().expect("encoder") {
            SemEncoder::Static(m) => {
                // Microseconds per document: embedded at once, no batch to wait for.
                self.emb.resize(m.dim(), 0.0);
                m.embed_into(doc.text(), &mut self.ids, &mut self.emb);
                let out = self.out.as_mut().expect("open writer");
                write_emb_row(
                    out,
                    quality,
                    chars,
                    &self.emb,
                    &self.payload,
                    &mut self.scratch,
                )
                .map_err(|e| Error::io(&self.path, e))?;
                self.rows += 1;
                return Ok(());
            }
            SemEncoder::Onnx(enc) => {
                // A text the tokenizer rejects still takes its row: it embeds as an empty
                // document.
                let toks = enc
                    .tokenize(doc.text())
                    .or_else(|_| enc.tokenize(""))
                    .map_err(|e| Error::other(format!("{}: {e}", self.shared.name)))?;
                self.pending
                    .push((toks, quality, chars, std::mem::take(&mut self.payload)));
            }
        }
        if self.pending.len() >= COLLECT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush()?;
        let out = self.out.take().expect("open writer");
        out.finish().map_err(|e| Error::io(&self.path, e))?;
        let dim = self.shared.encoder.as_ref().expect("encoder").dim();
        put_json(
            self.ctx.store.as_ref(),
            &emb_meta_path(&self.ctx.dir, self.ctx.partition),
            &EmbMeta {
                rows: self.rows,
                dim,
                payload: self.shared.payload(),
            },
        )
    }
}

/// Step 1: the sample, the centroid tree, the streamed passes, and the plan.
struct CentroidStep(Arc<Shared>);

/// Rows per block of a streamed pass (assigned in parallel).
const BLOCK: usize = 4096;

/// One row of an embedding file as a streamed pass sees it.
struct Row {
    row: u32,
    quality: f32,
    chars: u32,
    /// The unit vector.
    emb: Vec<f32>,
    /// Its stored code.
    code: Vec<u8>,
    /// Its payload (empty without a verifier).
    payload: Vec<u8>,
}

/// Streams every row of every partition in blocks: `f(partition, block)`.
fn stream_rows(
    ctx: &StepCtx,
    metas: &[EmbMeta],
    mut f: impl FnMut(usize, &[Row]) -> Result<()>,
) -> Result<()> {
    let store = ctx.store.as_ref();
    let mut block: Vec<Row> = Vec::new();
    let mut emb = Vec::new();
    for (p, m) in metas.iter().enumerate() {
        if m.rows == 0 {
            continue;
        }
        let mut r = EmbReader::open(store, &emb_path(&ctx.dir, p))?;
        loop {
            let next = r.next_into(&mut emb)?;
            if let Some((row, quality, chars)) = next {
                block.push(Row {
                    row,
                    quality,
                    chars,
                    emb: std::mem::take(&mut emb),
                    code: r.code().to_vec(),
                    payload: r.payload().to_vec(),
                });
            }
            if block.len() >= BLOCK || (next.is_none() && !block.is_empty()) {
                f(p, &block)?;
                block.clear();
            }
            if next.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// The `cap` rows of smallest `(code_hash, code)`: a sample that depends on the rows alone
/// (not on partitions, order or threads), in that canonical order, as unit vectors.
fn bottom_sample(ctx: &StepCtx, metas: &[EmbMeta], cap: usize) -> Result<Vec<f32>> {
    let mut heap: std::collections::BinaryHeap<(u64, Vec<u8>)> = Default::default();
    stream_rows(ctx, metas, |_, block| {
        for Row { code, .. } in block {
            let h = kmeans::code_hash(ctx.seed, code);
            if heap.len() < cap {
                heap.push((h, code.clone()));
            } else if let Some(top) = heap.peek() {
                if (h, code.as_slice()) < (top.0, top.1.as_slice()) {
                    heap.pop();
                    heap.push((h, code.clone()));
                }
            }
        }
        Ok(())
    })?;
    let mut sample = Vec::new();
    let mut v = Vec::new();
    for (_, code) in heap.into_sorted_vec() {
        dequantize(&code, &mut v);
        sample.extend_from_slice(&v);
    }
    Ok(sample)
}

impl GlobalStep for CentroidStep {
    fn name(&self) -> &str {
        "centroids"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(1)
    }

    fn run(&self, _task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let cfg = &self.0.cfg;
        let store = ctx.store.as_ref();
        let mut st = StepStats::new("centroids", 0);
        let mut metas = Vec::with_capacity(ctx.partitions);
        for p in 0..ctx.partitions {
            metas.push(read_json::<EmbMeta>(store, &emb_meta_path(&ctx.dir, p))?);
        }
        let rows: u64 = metas.iter().map(|m| m.rows).sum();
        let dim = metas.first().map_or(0, |m| m.dim);
        let payload = metas.first().map_or(0, |m| m.payload);
        if metas.iter().any(|m| m.dim != dim || m.payload != payload) {
            return Err(Error::other(format!(
                "{}: partitions were embedded with different settings",
                ctx.dir
            )));
        }
        let sample = bottom_sample(ctx, &metas, cfg.kmeans_sample)?;
        let n = sample.len().checked_div(dim).unwrap_or(0);
        let k = (rows.div_ceil(cfg.cluster_docs as u64) as usize).clamp(1, n.max(1));
        let (mut tree, iterations) = if n == 0 {
            let t = kmeans::Tree {
                dim,
                coarse: Vec::new(),
                offsets: vec![0],
                fine: Vec::new(),
            };
            (t, 0)
        } else {
            kmeans::Tree::fit(&sample, dim, k, cfg.kmeans_iterations, ctx.seed)
        };
        drop(sample);
        // Streamed Lloyd passes over every row: memory is the tree and its sums.
        let passes = if n == 0 { 0 } else { cfg.kmeans_passes };
        for _ in 0..passes {
            let mut sums = kmeans::Sums::new(tree.clusters(), dim);
            stream_rows(ctx, &metas, |_, block| {
                let near: Vec<usize> = block
                    .par_iter()
                    .with_min_len(64)
                    .map(|r| tree.nearest(&r.emb))
                    .collect();
                for (r, c) in block.iter().zip(near) {
                    sums.add(c, &r.emb);
                }
                Ok(())
            })?;
            st.count("moved_centroids", tree.refine(&sums) as u64);
        }
        let k = tree.clusters();
        let k1 = tree.offsets.len() - 1;
        // Groups: at least one per partition (tasks to spread over workers), never more than
        // clusters. Not from the thread count: outputs must not depend on it. A dedup task
        // streams its group cluster by cluster, so a group's size does not bound memory.
        let groups = ctx.partitions.clamp(1, k.clamp(1, 4096));
        // Partitions per range: an assign task buffers its range's rows (and a sorted copy).
        let biggest = metas.iter().map(|m| m.rows).max().unwrap_or(0);
        let part_bytes = (biggest * group_row_len(dim, payload) as u64).max(1);
        let range = ((ctx.memory_budget as u64 / 4) / part_bytes).clamp(1, RANGE as u64) as usize;
        let mut bytes = header(CENTROID_MAGIC, dim as u32, k1 as u32).to_vec();
        tree.to_bytes(&mut bytes);
        store
            .put(&centroids_path(&ctx.dir), &bytes)
            .map_err(|e| Error::io(centroids_path(&ctx.dir), e))?;
        put_json(
            store,
            &plan_path(&ctx.dir),
            &Plan {
                rows,
                dim,
                clusters: k,
                groups,
                sample: n,
                iterations,
                coarse: k1,
                passes,
                range,
                payload,
            },
        )?;
        st.count("rows", rows);
        st.count("sample", n as u64);
        st.count("clusters", k as u64);
        st.count("coarse", k1 as u64);
        st.count("groups", groups as u64);
        st.count("iterations", iterations as u64);
        st.count("passes", passes as u64);
        st.count("range", range as u64);
        Ok(st)
    }
}

fn read_tree(ctx: &StepCtx) -> Result<kmeans::Tree> {
    let path = centroids_path(&ctx.dir);
    let b = ctx.store.read(&path).map_err(|e| Error::io(&path, e))?;
    let (dim, k1) = read_header(&b, CENTROID_MAGIC, &path)?;
    kmeans::Tree::from_bytes(&b[16..], dim as usize, k1 as usize)
        .ok_or_else(|| Error::other(format!("{path}: malformed centroid tree")))
}

/// Step 2: every row to its cluster, into its group's file of the range, sorted by (cluster,
/// key, partition, row). One task per range of partitions.
struct AssignStep;

impl GlobalStep for AssignStep {
    fn name(&self) -> &str {
        "assign"
    }

    fn tasks(&self, ctx: &StepCtx) -> Result<usize> {
        let plan: Plan = read_json(ctx.store.as_ref(), &plan_path(&ctx.dir))?;
        Ok(plan.ranges(ctx.partitions))
    }

    fn run(&self, t: usize, ctx: &StepCtx) -> Result<StepStats> {
        let store = ctx.store.as_ref();
        let plan: Plan = read_json(store, &plan_path(&ctx.dir))?;
        let mine = t * plan.range..((t + 1) * plan.range).min(ctx.partitions);
        let mut metas = Vec::with_capacity(ctx.partitions);
        for p in 0..ctx.partitions {
            metas.push(if mine.contains(&p) {
                read_json(store, &emb_meta_path(&ctx.dir, p))?
            } else {
                EmbMeta {
                    rows: 0,
                    dim: plan.dim,
                    payload: plan.payload,
                }
            });
        }
        let rows: u64 = metas.iter().map(|m| m.rows).sum();
        let mut st = StepStats::new("assign", t);
        st.count("rows", rows);
        let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); plan.groups];
        if rows > 0 {
            let tree = read_tree(ctx)?;
            let dir = kmeans::direction(ctx.seed, tree.dim);
            // The range's rows (bounded by RANGE partitions' sizes), in blocks.
            stream_rows(ctx, &metas, |p, block| {
                let near: Vec<(usize, u32)> = block
                    .par_iter()
                    .with_min_len(64)
                    .map(|r| {
                        let key = kmeans::key(kmeans::dot(&r.emb, &dir));
                        (tree.nearest(&r.emb), key)
                    })
                    .collect();
                for (r, (cl, key)) in block.iter().zip(near) {
                    let b = &mut bufs[cl % plan.groups];
                    b.extend_from_slice(&r.row.to_le_bytes());
                    b.extend_from_slice(&(cl as u32).to_le_bytes());
                    b.extend_from_slice(&r.quality.to_le_bytes());
                    b.extend_from_slice(&r.chars.to_le_bytes());
                    b.extend_from_slice(&key.to_le_bytes());
                    b.extend_from_slice(&(p as u32).to_le_bytes());
                    b.extend_from_slice(&r.code);
                    b.extend_from_slice(&r.payload);
                }
                Ok(())
            })?;
        }
        let width = group_row_len(plan.dim, plan.payload);
        for (g, b) in bufs.iter().enumerate() {
            let path = group_path(&ctx.dir, g, t);
            if b.is_empty() {
                // A re-run after a crash must not leave rows of an older run behind.
                store.delete(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            let mut rows: Vec<&[u8]> = b.chunks_exact(width).collect();
            rows.sort_by_key(|r| (u32_at(r, 4), u32_at(r, 16), u32_at(r, 20), u32_at(r, 0)));
            let mut out = Vec::with_capacity(16 + b.len());
            out.extend_from_slice(&header(GROUP_MAGIC, plan.dim as u32, plan.payload as u32));
            rows.iter().for_each(|r| out.extend_from_slice(r));
            store.put(&path, &out).map_err(|e| Error::io(&path, e))?;
        }
        Ok(st)
    }
}

/// One document of a cluster during dedup.
struct Member {
    partition: u32,
    row: u32,
    quality: f32,
    chars: u32,
    emb: Vec<f32>,
    /// The verifier's token ids (empty without a verifier).
    tokens: Vec<u32>,
}

/// Step 3: greedy dedup within each cluster of one group, streamed cluster by cluster.
struct DedupStep(Arc<Shared>);

/// One range's decisions.
type Decisions = Vec<DecisionRow>;

/// Counters of one dedup task.
#[derive(Default)]
struct DedupCounts {
    docs: u64,
    dropped: u64,
    largest: u64,
    blocks: u64,
    split: u64,
    /// Cosines computed: each member against the members kept before it.
    comparisons: u64,
    /// Verified cascade: members the model flagged (checked by the verifier), of them kept
    /// because the verifier disagreed, documents the verifier embedded, pairs it scored.
    checked: u64,
    rejected: u64,
    embedded: u64,
    verified_pairs: u64,
}

impl DedupStep {
    /// Decides one block (a cluster, or a piece of one over the cap) into the partitions'
    /// decision buffers.
    fn block(
        &self,
        cluster: u32,
        members: &mut [Member],
        out: &mut [Decisions],
        range: usize,
        n: &mut DedupCounts,
    ) -> Result<()> {
        n.docs += members.len() as u64;
        n.blocks += 1;
        // Best first: quality, then length, then input position.
        members.sort_by(|a, b| {
            b.quality
                .total_cmp(&a.quality)
                .then(b.chars.cmp(&a.chars))
                .then(a.partition.cmp(&b.partition))
                .then(a.row.cmp(&b.row))
        });
        let verify = match (&self.0.verifier, self.0.cfg.verify_threshold) {
            (Some(enc), Some(t)) => Some(Verify {
                enc,
                threshold: t as f32,
                name: &self.0.name,
            }),
            _ => None,
        };
        let decisions = greedy(members, self.0.cfg.threshold as f32, verify.as_ref(), n)?;
        let mut kept = 0u64;
        for (m, d) in members.iter().zip(decisions) {
            n.comparisons += kept;
            kept += !d.drop as u64;
            n.dropped += d.drop as u64;
            out[m.partition as usize / range].push((
                m.partition,
                m.row,
                cluster,
                d.sim,
                d.verified,
                d.drop as u32,
            ));
        }
        Ok(())
    }
}

impl GlobalStep for DedupStep {
    fn name(&self) -> &str {
        "dedup"
    }

    fn tasks(&self, ctx: &StepCtx) -> Result<usize> {
        let plan: Plan = read_json(ctx.store.as_ref(), &plan_path(&ctx.dir))?;
        Ok(plan.groups)
    }

    fn run(&self, g: usize, ctx: &StepCtx) -> Result<StepStats> {
        use std::cmp::Reverse;
        let store = ctx.store.as_ref();
        let cap = self.0.cfg.cluster_cap;
        let mut st = StepStats::new("dedup", g);
        // Merge the ranges' files (each sorted by cluster, key, partition, row): one cluster in
        // memory at a time.
        let plan: Plan = read_json(store, &plan_path(&ctx.dir))?;
        let nranges = plan.ranges(ctx.partitions);
        let mut readers = Vec::new();
        for t in 0..nranges {
            if let Some(mut r) = GroupReader::open(store, &group_path(&ctx.dir, g, t))? {
                if r.advance()? {
                    readers.push(r);
                }
            }
        }
        // (merge order of the reader's current row, reader), smallest first.
        type Head = Reverse<((u32, u32, u32, u32), usize)>;
        let mut heap: std::collections::BinaryHeap<Head> = readers
            .iter()
            .enumerate()
            .map(|(i, r)| Reverse((r.order(), i)))
            .collect();
        let mut out: Vec<Decisions> = vec![Vec::new(); nranges];
        let mut n = DedupCounts::default();
        let mut members: Vec<Member> = Vec::new();
        let (mut cluster, mut last_key, mut in_cluster) = (0u32, 0u32, 0u64);
        while let Some(Reverse(((cl, key, _, _), i))) = heap.pop() {
            // A new cluster, or a piece of this one full: decide what is held. Pieces are cut
            // between different keys (identical vectors stay together) and at 2 x cap at most.
            let new_cluster = cl != cluster || (members.is_empty() && in_cluster == 0);
            let full = (members.len() >= cap && key != last_key) || members.len() >= 2 * cap;
            if (new_cluster || full) && !members.is_empty() {
                self.block(cluster, &mut members, &mut out, plan.range, &mut n)?;
                members.clear();
            }
            if new_cluster {
                n.split += (in_cluster > cap as u64) as u64;
                n.largest = n.largest.max(in_cluster);
                in_cluster = 0;
            }
            let r = &mut readers[i];
            let mut emb = Vec::new();
            dequantize(r.code(), &mut emb);
            let tokens = if plan.payload == 0 {
                Vec::new()
            } else {
                get_tokens(r.payload())
                    .ok_or_else(|| Error::other(format!("group {g}: malformed token payload")))?
            };
            members.push(Member {
                partition: u32_at(&r.buf, 20),
                row: u32_at(&r.buf, 0),
                quality: f32_at(&r.buf, 8),
                chars: u32_at(&r.buf, 12),
                emb,
                tokens,
            });
            (cluster, last_key) = (cl, key);
            in_cluster += 1;
            if r.advance()? {
                heap.push(Reverse((r.order(), i)));
            }
        }
        if !members.is_empty() {
            self.block(cluster, &mut members, &mut out, plan.range, &mut n)?;
        }
        n.split += (in_cluster > cap as u64) as u64;
        n.largest = n.largest.max(in_cluster);
        for (t, rows) in out.iter_mut().enumerate() {
            let path = decision_path(&ctx.dir, g, t);
            if rows.is_empty() {
                store.delete(&path).map_err(|e| Error::io(&path, e))?;
            } else {
                let b = decision_bytes(t * plan.range, rows);
                store.put(&path, &b).map_err(|e| Error::io(&path, e))?;
            }
        }
        st.count("docs", n.docs);
        st.count("dropped", n.dropped);
        st.count("largest_cluster", n.largest);
        st.count("blocks", n.blocks);
        st.count("split_clusters", n.split);
        st.count("comparisons", n.comparisons);
        if self.0.verifier.is_some() {
            st.count("verify_checked", n.checked);
            st.count("verify_rejected", n.rejected);
            st.count("verify_embedded", n.embedded);
            st.count("verify_pairs", n.verified_pairs);
        }
        Ok(st)
    }
}

/// The verifier of a block: its encoder and threshold.
struct Verify<'a> {
    enc: &'a Encoder,
    threshold: f32,
    name: &'a str,
}

impl Verify<'_> {
    /// Embeds the members `need` (by index) that `cache` does not hold yet.
    fn fill(
        &self,
        members: &[Member],
        need: &[usize],
        cache: &mut std::collections::HashMap<usize, Vec<f32>>,
        n: &mut DedupCounts,
    ) -> Result<()> {
        let todo: Vec<usize> = need
            .iter()
            .copied()
            .filter(|i| !cache.contains_key(i))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let toks: Vec<Tokens> = todo
            .iter()
            .map(|&i| Tokens {
                ids: members[i].tokens.clone(),
                type_ids: vec![0; members[i].tokens.len()],
            })
            .collect();
        let embs = self
            .enc
            .embed_tokens(&toks)
            .map_err(|e| Error::other(format!("{}: verify_model: {e}", self.name)))?;
        n.embedded += todo.len() as u64;
        cache.extend(todo.into_iter().zip(embs));
        Ok(())
    }
}

/// What the greedy pass decided for one member.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Decided {
    /// Highest model cosine to another kept member (-1: none).
    sim: f32,
    /// Highest verifier cosine to a kept member the model flagged (-1: none flagged or no
    /// verifier).
    verified: f32,
    drop: bool,
}

/// Keeps members (best first) unless their cosine to a kept one reaches `threshold` (and,
/// with a verifier, the verifier's cosine to one of those reaches its own threshold too).
/// `sim` of a kept member is updated as later members are kept, so kept members end with
/// `sim < threshold` (or `verified < verify threshold`), as the judge expects.
fn greedy(
    members: &[Member],
    threshold: f32,
    verify: Option<&Verify>,
    n: &mut DedupCounts,
) -> Result<Vec<Decided>> {
    let mut kept: Vec<usize> = Vec::new();
    let mut out = vec![
        Decided {
            sim: -1.0,
            verified: -1.0,
            drop: false,
        };
        members.len()
    ];
    // The verifier's embeddings of this block's members, computed on first need.
    let mut cache = std::collections::HashMap::new();
    for (j, m) in members.iter().enumerate() {
        let sims: Vec<f32> = if kept.len() >= 2048 {
            kept.par_iter()
                .with_min_len(256)
                .map(|&i| kmeans::dot(&members[i].emb, &m.emb))
                .collect()
        } else {
            kept.iter()
                .map(|&i| kmeans::dot(&members[i].emb, &m.emb))
                .collect()
        };
        let best = sims.iter().copied().fold(-1f32, f32::max);
        out[j].sim = best;
        // The first member has nothing to duplicate, whatever the threshold.
        if kept.is_empty() || best < threshold {
            for (&i, &s) in kept.iter().zip(&sims) {
                out[i].sim = out[i].sim.max(s);
            }
            kept.push(j);
            continue;
        }
        let Some(v) = verify else {
            out[j].drop = true;
            continue;
        };
        // The kept members the model flags, checked by the verifier.
        let flagged: Vec<usize> = kept
            .iter()
            .zip(&sims)
            .filter(|(_, &s)| s >= threshold)
            .map(|(&i, _)| i)
            .collect();
        let mut need = flagged.clone();
        need.push(j);
        v.fill(members, &need, &mut cache, n)?;
        n.checked += 1;
        n.verified_pairs += flagged.len() as u64;
        let mine = &cache[&j];
        let vsims: Vec<f32> = flagged
            .iter()
            .map(|i| kmeans::dot(&cache[i], mine))
            .collect();
        let vbest = vsims.iter().copied().fold(-1f32, f32::max);
        out[j].verified = vbest;
        if vbest >= v.threshold {
            out[j].drop = true;
            // A dropped member is never compared again.
            cache.remove(&j);
            continue;
        }
        n.rejected += 1;
        for (&i, &s) in kept.iter().zip(&sims) {
            out[i].sim = out[i].sim.max(s);
        }
        for (&i, &s) in flagged.iter().zip(&vsims) {
            out[i].verified = out[i].verified.max(s);
        }
        kept.push(j);
    }
    Ok(out)
}

struct SemanticApplier {
    shared: Arc<Shared>,
    /// Per row: cluster, nearest_sim, verified_sim, dropped.
    rows: Vec<(i64, f32, f32, bool)>,
    next: usize,
}

impl Applier for SemanticApplier {
    fn apply(&mut self, doc: &mut Document) -> Outcome {
        let (cluster, sim, verified, drop) = self
            .rows
            .get(self.next)
            .copied()
            .unwrap_or((-1, -1.0, -1.0, false));
        self.next += 1;
        self.shared.sig_cluster.set(&mut doc.signals, cluster);
        self.shared.sig_sim.set(&mut doc.signals, sim as f64);
        if let Some(sig) = self.shared.sig_verified {
            sig.set(&mut doc.signals, verified as f64);
        }
        if drop {
            Outcome::Drop("near_duplicate")
        } else {
            Outcome::Keep
        }
    }
}

#[cfg(test)]
mod tests;
