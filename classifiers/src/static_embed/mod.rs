//! Static embeddings distilled from a transformer encoder (the model2vec idea: Tulkens & van
//! Dongen 2024), so that semantic dedup and model-based filters run at CPU scale.
//!
//! A static model holds one vector per vocabulary token. [`distill`] makes one from an ONNX
//! sentence encoder: each token is embedded by the encoder on its own, the vectors are reduced
//! by PCA, and each is scaled by a smooth inverse frequency weight `a / (a + p(token))` (Arora
//! et al. 2017), with token frequencies counted on real text, so that frequent tokens (`the`,
//! `,`) weigh little in a mean. With fit texts ([`distill_with`]), the table is then fitted
//! so that the sum of a window's token vectors points where the encoder's embedding of that
//! window points ([`fit`]). A document's embedding is the L2-normalised sum of its first
//! `max_tokens` tokens' vectors (the teacher's own window by default): one table lookup per
//! token instead of a transformer pass, about three orders of magnitude cheaper.
//!
//! A model is a directory: `static.json` ([`StaticMeta`]), `vectors.bin` (int8 rows with one
//! f32 scale each) and the teacher's `tokenizer.json`. With a `head.json` (from `curate train
//! head`) it is also a [`crate::TextClassifier`] ([`StaticClassifier`]).

pub mod distill;
pub mod fit;
mod linalg;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::onnx::{Activation, Head};
use crate::wordpiece::WordPiece;
pub use distill::{distill, distill_with, DistillOptions};
pub use fit::FitOptions;

/// The file that marks a static model directory.
pub const META_FILE: &str = "static.json";
const VECTORS_FILE: &str = "vectors.bin";
const VECTORS_MAGIC: &[u8; 4] = b"CSTV";

/// `static.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticMeta {
    /// `curate-static-1`.
    pub format: String,
    /// Width of the token vectors.
    pub dim: usize,
    /// Rows of `vectors.bin` (the tokenizer's vocabulary size).
    pub vocab: usize,
    /// Tokens of a document that are embedded (special tokens excluded).
    pub max_tokens: usize,
    /// Where it came from: the teacher directory, PCA, weighting, frequency counts.
    pub teacher: String,
    pub teacher_dim: usize,
    pub sif_a: f64,
    /// Share of the teacher's variance the kept PCA components explain.
    pub explained_variance: f64,
    pub frequency_documents: u64,
    pub frequency_tokens: u64,
    /// Common directions of document embeddings projected out of the rows (0 in older models).
    #[serde(default)]
    pub removed_components: usize,
    /// Windows of text the table was fitted on (step 5 of distillation; 0: not fitted).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fit_windows: usize,
    /// The fit's pull toward the distilled table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_lambda: Option<f64>,
    /// Pair rows of the fit and their weight (`FitOptions::pairs`; absent: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fit_pairs: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit_pair_weight: Option<f64>,
    /// The model directory's tokenizer file (default `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
    /// A linear head beside this file (`curate train head`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// How much more the first tokens of the window weigh (absent: all alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_weight: Option<PositionWeight>,
}

/// Token `p` of the window (0-based) weighs `1 + boost * exp(-p / scale)` in the sum.
///
/// Why: the teacher's mean-pooled embedding leans on the opening of its window (what a text
/// is about is set early, and every later token attends to it), while a plain sum weighs a
/// word the same wherever it sits; with two windows of the same lines in another order the
/// sum cannot tell them apart. Chosen by cross-validation on the semantic bench's
/// calibration half (docs/onnx.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionWeight {
    pub boost: f64,
    pub scale: f64,
}

impl PositionWeight {
    /// The default of `curate distill` (docs/onnx.md has the grid it was chosen from).
    pub const DEFAULT: PositionWeight = PositionWeight {
        boost: 1.0,
        scale: 32.0,
    };

    /// `None` when usable (boost >= 0, scale > 0, both finite), else what is wrong.
    pub fn check(&self) -> Option<&'static str> {
        let ok = self.boost.is_finite() && self.scale.is_finite();
        (!(ok && self.boost >= 0.0 && self.scale > 0.0))
            .then_some("position weights need a finite boost >= 0 and scale > 0")
    }

    /// The weights of positions `0..n`.
    pub fn weights(&self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|p| (1.0 + self.boost * (-(p as f64) / self.scale.max(1e-9)).exp()) as f32)
            .collect()
    }
}

/// The per-position weights a model's meta asks for (empty: none).
fn position_weights(meta: &StaticMeta) -> Vec<f32> {
    meta.position_weight
        .map(|w| w.weights(meta.max_tokens))
        .unwrap_or_default()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Whether `dir` holds a static model (rather than an ONNX one).
pub fn is_static(dir: &Path) -> bool {
    dir.join(META_FILE).is_file()
}

/// A loaded static model.
pub struct StaticModel {
    meta: StaticMeta,
    /// `vocab * dim`, weights folded in.
    vectors: Vec<f32>,
    tokenizer: Tokenizer,
    fast: Option<WordPiece>,
    dir: PathBuf,
    /// Per-position weights of the window (empty: all 1).
    weights: Vec<f32>,
}

impl StaticModel {
    /// Loads a model directory.
    pub fn open(dir: &Path) -> Result<StaticModel> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
        let meta: StaticMeta =
            serde_json::from_str(&text).map_err(|e| Error::format(&meta_path, e.to_string()))?;
        if meta.format != "curate-static-1" {
            return Err(Error::format(
                &meta_path,
                format!("format `{}` is not curate-static-1", meta.format),
            ));
        }
        let vec_path = dir.join(VECTORS_FILE);
        let b = std::fs::read(&vec_path).map_err(|e| Error::io(&vec_path, e))?;
        let vectors =
            decode_vectors(&b, meta.vocab, meta.dim).map_err(|m| Error::format(&vec_path, m))?;
        let tok_path = dir.join(meta.tokenizer.as_deref().unwrap_or("tokenizer.json"));
        let (tokenizer, fast) = load_tokenizer(&tok_path)?;
        if tokenizer.get_vocab_size(true) > meta.vocab {
            return Err(Error::format(
                &tok_path,
                format!(
                    "the tokenizer has {} tokens, vectors.bin {} rows",
                    tokenizer.get_vocab_size(true),
                    meta.vocab
                ),
            ));
        }
        if let Some(m) = meta.position_weight.and_then(|w| w.check()) {
            return Err(Error::format(&meta_path, format!("position_weight: {m}")));
        }
        let weights = position_weights(&meta);
        Ok(StaticModel {
            meta,
            vectors,
            tokenizer,
            fast,
            dir: dir.to_path_buf(),
            weights,
        })
    }

    pub fn meta(&self) -> &StaticMeta {
        &self.meta
    }

    pub fn dim(&self) -> usize {
        self.meta.dim
    }

    /// Sums the first `n` tokens of a document instead of the distilled window.
    pub fn set_max_tokens(&mut self, n: usize) {
        self.meta.max_tokens = n.max(1);
        self.weights = position_weights(&self.meta);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Token ids of the first `max_tokens` tokens of `text` (no special tokens).
    pub fn token_ids(&self, text: &str, max_tokens: usize, out: &mut Vec<u32>) {
        out.clear();
        match &self.fast {
            Some(wp) => wp.encode(text, max_tokens, out),
            None => {
                // Any other tokenizer: the `tokenizers` pipeline on a window of the text.
                let window = head_chars(text, max_tokens.saturating_mul(16));
                if let Ok(e) = self.tokenizer.encode(window, false) {
                    out.extend(e.get_ids().iter().take(max_tokens));
                }
            }
        }
    }

    /// The L2-normalised embedding of one text into `out` (zero for a text with no tokens).
    pub fn embed_into(&self, text: &str, ids: &mut Vec<u32>, out: &mut [f32]) {
        self.token_ids(text, self.meta.max_tokens, ids);
        out.fill(0.0);
        // Two loops, so that a model without position weights pays no multiply.
        if self.weights.is_empty() {
            for &id in ids.iter() {
                if let Some(row) = self.row(id) {
                    out.iter_mut().zip(row).for_each(|(o, &x)| *o += x);
                }
            }
        } else {
            for (&id, &w) in ids.iter().zip(&self.weights) {
                if let Some(row) = self.row(id) {
                    out.iter_mut().zip(row).for_each(|(o, &x)| *o += w * x);
                }
            }
        }
        crate::onnx::encoder::l2_normalize(out);
    }

    /// One embedding per text, in input order (in parallel over the rayon pool).
    pub fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts
            .par_iter()
            .with_min_len(64)
            .map_init(Vec::new, |ids, t| {
                let mut v = vec![0f32; self.meta.dim];
                self.embed_into(t, ids, &mut v);
                v
            })
            .collect()
    }

    fn row(&self, id: u32) -> Option<&[f32]> {
        let (i, d) = (id as usize, self.meta.dim);
        (i < self.meta.vocab).then(|| &self.vectors[i * d..(i + 1) * d])
    }

    /// The vector of one token id (weight folded in).
    pub fn token_vector(&self, id: u32) -> &[f32] {
        let d = self.meta.dim;
        &self.vectors[id as usize * d..(id as usize + 1) * d]
    }

    /// Writes the model into `dir` (created), with a copy of `tokenizer` as `tokenizer.json`.
    pub fn save(
        dir: &Path,
        meta: &StaticMeta,
        vectors: &[f32],
        tokenizer_src: &Path,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let p = dir.join(VECTORS_FILE);
        std::fs::write(&p, encode_vectors(vectors, meta.vocab, meta.dim))
            .map_err(|e| Error::io(&p, e))?;
        let t = dir.join("tokenizer.json");
        if tokenizer_src != t {
            std::fs::copy(tokenizer_src, &t).map_err(|e| Error::io(&t, e))?;
        }
        let mut meta = meta.clone();
        meta.tokenizer = None;
        let p = dir.join(META_FILE);
        let mut json = serde_json::to_vec_pretty(&meta).expect("serializable");
        json.push(b'\n');
        std::fs::write(&p, json).map_err(|e| Error::io(&p, e))
    }
}

/// The tokenizer and, for BERT WordPiece ones, its fast path.
pub(crate) fn load_tokenizer(path: &Path) -> Result<(Tokenizer, Option<WordPiece>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut tokenizer =
        Tokenizer::from_str(&text).map_err(|e| Error::format(path, e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| Error::format(path, e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::format(path, e.to_string()))?;
    let fast = WordPiece::new(&tokenizer, &json);
    Ok((tokenizer, fast))
}

use std::str::FromStr;

/// The first `chars` characters of `text`.
fn head_chars(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `vectors.bin`: magic, version 1, rows, dim (u32 LE), one f32 scale per row, then the rows
/// as int8 (`value = q * scale`): a quarter of f32, and cosines move by about 1e-4.
fn encode_vectors(v: &[f32], rows: usize, dim: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + rows * (4 + dim));
    out.extend_from_slice(VECTORS_MAGIC);
    for x in [1u32, rows as u32, dim as u32] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    let scales: Vec<f32> = v
        .chunks_exact(dim)
        .map(|r| r.iter().fold(0f32, |m, x| m.max(x.abs())) / 127.0)
        .collect();
    for s in &scales {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for (r, &s) in v.chunks_exact(dim).zip(&scales) {
        for &x in r {
            let q = if s > 0.0 { (x / s).round() } else { 0.0 };
            out.push(q.clamp(-127.0, 127.0) as i8 as u8);
        }
    }
    out
}

fn decode_vectors(b: &[u8], rows: usize, dim: usize) -> std::result::Result<Vec<f32>, String> {
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    if b.len() < 16 || &b[..4] != VECTORS_MAGIC || u32_at(4) != 1 {
        return Err("not a curate static vectors file (version 1)".into());
    }
    if u32_at(8) as usize != rows || u32_at(12) as usize != dim {
        return Err(format!(
            "holds {} x {} vectors, static.json says {rows} x {dim}",
            u32_at(8),
            u32_at(12)
        ));
    }
    if b.len() != 16 + rows * 4 + rows * dim {
        return Err(format!("{} bytes: truncated or padded", b.len()));
    }
    let scales = &b[16..16 + rows * 4];
    let q = &b[16 + rows * 4..];
    let mut out = Vec::with_capacity(rows * dim);
    for (r, s) in q.chunks_exact(dim).zip(scales.chunks_exact(4)) {
        let s = f32::from_le_bytes(s.try_into().expect("4 bytes"));
        out.extend(r.iter().map(|&x| x as i8 as f32 * s));
    }
    Ok(out)
}

/// A static model with a linear head: a text classifier (`head.json` from `curate train head`).
pub struct StaticClassifier {
    model: StaticModel,
    head: Head,
    labels: Vec<String>,
}

impl StaticClassifier {
    pub fn open(dir: &Path) -> Result<StaticClassifier> {
        let model = StaticModel::open(dir)?;
        let Some(h) = model.meta.head.clone() else {
            return Err(Error::format(
                dir.join(META_FILE),
                "a static encoder without a head gives embeddings, not labels: add one with \
                 `curate train head --encoder DIR`, or use it for dedup.semantic",
            ));
        };
        let hp = dir.join(h);
        let text = std::fs::read_to_string(&hp).map_err(|e| Error::io(&hp, e))?;
        let head: Head =
            serde_json::from_str(&text).map_err(|e| Error::format(&hp, e.to_string()))?;
        head.validate(&hp)?;
        if head.dim() != model.dim() {
            return Err(Error::format(
                &hp,
                format!(
                    "the head expects {}-wide embeddings, the static model gives {}",
                    head.dim(),
                    model.dim()
                ),
            ));
        }
        let labels = head.labels.clone();
        Ok(StaticClassifier {
            model,
            head,
            labels,
        })
    }

    pub fn model(&self) -> &StaticModel {
        &self.model
    }
}

impl crate::TextClassifier for StaticClassifier {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut logits = Vec::new();
        Ok(self
            .model
            .embed(texts)
            .into_iter()
            .map(|v| {
                self.head.apply(&v, &mut logits);
                crate::onnx::activate(&logits, Activation::Softmax)
            })
            .collect())
    }

    fn kind(&self) -> &'static str {
        "static"
    }
}

#[cfg(test)]
mod tests;
