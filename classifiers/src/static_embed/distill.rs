//! Distillation of a static model from an ONNX sentence encoder (`curate distill`).
//!
//! 1. Every vocabulary token `t` is run through the encoder as the one-token text
//!    `[CLS] t [SEP]` (the tokenizer's own special tokens), pooled as the encoder pools
//!    documents (mean), and L2-normalised: the encoder's view of that token on its own.
//! 2. PCA: the vectors are centred on their mean (which removes the part every token shares,
//!    the special tokens' share included) and projected on the top `dims` eigenvectors of their
//!    covariance (cyclic Jacobi on the `teacher_dim`-square matrix, f64).
//! 3. Weights: token frequencies `p(t)` are counted on the given texts with the same tokenizer;
//!    row `t` is scaled by `a / (a + p(t))` (smooth inverse frequency), so a document's sum of
//!    rows is a frequency-weighted mean up to its norm. Tokens never seen keep weight 1.
//! 4. Common directions (SIF's second step): the documents of the frequency texts are embedded
//!    with the table so far, and the top `remove_components` principal directions of their
//!    (uncentred) embeddings are projected out of every row. Every document shares them (what
//!    any text looks like), so they squeeze all cosines towards 1 and blur the threshold; as a
//!    projection is linear, removing them from the rows removes them from every sum, at no
//!    cost per document.
//!
//! 5. Fit (optional: [`fit`], when fit texts are given): the table is fitted so that the sum of
//!    a window's token vectors regresses onto the teacher's embedding of that window.
//!
//! Every step is deterministic (fixed batch composition, sums in a fixed order), so the same
//! encoder and texts give the same file whatever the thread count.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::fit::{self, FitOptions, FitReport};
use super::linalg::{column_mean, top_axes};
pub use super::linalg::{jacobi_eigen, pca};
use super::{load_tokenizer, PositionWeight, StaticMeta, StaticModel};
use crate::error::{Error, Result};
use crate::onnx::{Encoder, Tokens};

/// Settings of [`distill`].
#[derive(Clone, Debug)]
pub struct DistillOptions {
    /// PCA components kept (at most the encoder's width).
    pub dims: usize,
    /// The SIF constant `a`: tokens more frequent than `a` are damped.
    pub sif_a: f64,
    /// Tokens per document embedded (default: the encoder's `max_length` less its special
    /// tokens, the window the teacher sees).
    pub max_tokens: Option<usize>,
    /// Token texts per onnxruntime run.
    pub batch_size: usize,
    /// Principal directions of document embeddings projected out of the rows (step 4).
    pub remove_components: usize,
    /// Step 5, used when [`distill_with`] gets fit texts.
    pub fit: FitOptions,
    /// Position weights of the window (`None`: all tokens alike); used by the fit and kept
    /// in the model.
    pub position_weight: Option<PositionWeight>,
    /// A directory for the teacher's outputs (token vectors, window embeddings), keyed by a
    /// hash of the model file and the inputs, so that re-distilling with other settings does
    /// not re-run the teacher.
    pub cache: Option<PathBuf>,
}

impl Default for DistillOptions {
    fn default() -> Self {
        DistillOptions {
            dims: 256,
            sif_a: 1e-3,
            max_tokens: None,
            batch_size: 512,
            remove_components: REMOVE_COMPONENTS,
            fit: FitOptions::default(),
            position_weight: Some(PositionWeight::DEFAULT),
            cache: None,
        }
    }
}

/// Default of [`DistillOptions::remove_components`] (chosen on the bench's calibration half).
pub const REMOVE_COMPONENTS: usize = 2;

/// Most frequency texts embedded to find the common directions.
const COMMON_DOCS: usize = 20_000;

/// What [`distill`] measured, besides the model it wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DistillReport {
    pub vocab: usize,
    pub dim: usize,
    pub teacher_dim: usize,
    pub explained_variance: f64,
    pub frequency_documents: u64,
    pub frequency_tokens: u64,
    pub tokens_seen: usize,
    pub embed_seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitReport>,
}

/// Distils `encoder` (opened with mean pooling) into a static model written to `out`;
/// `texts` supply the token frequencies.
pub fn distill<'a>(
    encoder: &Encoder,
    texts: impl Iterator<Item = &'a str>,
    opts: &DistillOptions,
    out: &Path,
) -> Result<DistillReport> {
    distill_with(encoder, texts, &[], opts, out)
}

/// [`distill`], then (with `fit_texts`) step 5: the table fitted to the teacher's embeddings
/// of windows of `fit_texts` ([`fit`]).
pub fn distill_with<'a>(
    encoder: &Encoder,
    texts: impl Iterator<Item = &'a str>,
    fit_texts: &[&str],
    opts: &DistillOptions,
    out: &Path,
) -> Result<DistillReport> {
    let spec = encoder.spec();
    let (tokenizer, fast) = load_tokenizer(&spec.tokenizer_path)?;
    let vocab = tokenizer.get_vocab_size(true);
    let teacher_dim = encoder.dim();
    if opts.dims == 0 || opts.dims > teacher_dim {
        return Err(Error::Run(format!(
            "dims must be 1 to the encoder's width {teacher_dim}, not {}",
            opts.dims
        )));
    }
    // The special tokens around one text, e.g. [CLS] .. [SEP] or <s> .. </s>.
    let empty = tokenizer
        .encode("", true)
        .map_err(|e| Error::Run(format!("tokenizer: {e}")))?;
    let specials = empty.get_ids().to_vec();
    let added = specials.len();
    let max_tokens = opts
        .max_tokens
        .unwrap_or(spec.max_length.saturating_sub(added))
        .max(1);

    // 1. Token vectors.
    let t0 = std::time::Instant::now();
    let toks: Vec<Tokens> = (0..vocab as u32)
        .map(|id| {
            let mut ids = Vec::with_capacity(added + 1);
            ids.extend(specials.first());
            ids.push(id);
            ids.extend(specials.iter().skip(1));
            Tokens {
                type_ids: vec![0; ids.len()],
                ids,
            }
        })
        .collect();
    let raw = teacher_embed(encoder, &toks, opts)?;
    let embed_seconds = t0.elapsed().as_secs_f64();

    // 2. PCA.
    let (proj, explained) = pca(&raw, teacher_dim, opts.dims);
    let dims = opts.dims;
    let mut vectors = vec![0f32; vocab * dims];
    let mean = column_mean(&raw, teacher_dim);
    vectors
        .par_chunks_mut(dims)
        .zip(raw.par_chunks(teacher_dim))
        .for_each(|(dst, src)| {
            for (k, d) in dst.iter_mut().enumerate() {
                let comp = &proj[k * teacher_dim..(k + 1) * teacher_dim];
                let s: f64 = comp
                    .iter()
                    .zip(src)
                    .zip(&mean)
                    .map(|((&c, &x), &m)| c * (x as f64 - m))
                    .sum();
                *d = s as f32;
            }
        });

    // 3. Frequencies and weights.
    let texts: Vec<&str> = texts.collect();
    let counts = texts
        .par_chunks(64)
        .map(|chunk| {
            let mut c = vec![0u64; vocab];
            let mut ids = Vec::new();
            for t in chunk {
                ids.clear();
                match &fast {
                    Some(wp) => wp.encode(t, usize::MAX, &mut ids),
                    None => {
                        if let Ok(e) = tokenizer.encode(*t, false) {
                            ids.extend_from_slice(e.get_ids());
                        }
                    }
                }
                for &i in &ids {
                    if let Some(x) = c.get_mut(i as usize) {
                        *x += 1;
                    }
                }
            }
            c
        })
        .reduce(
            || vec![0u64; vocab],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let total: u64 = counts.iter().sum();
    for (row, &c) in vectors.chunks_exact_mut(dims).zip(&counts) {
        let p = if total > 0 {
            c as f64 / total as f64
        } else {
            0.0
        };
        let w = opts.sif_a / (opts.sif_a + p);
        row.iter_mut().for_each(|x| *x = (*x as f64 * w) as f32);
    }

    // Position weights, as the model will sum (step 4 embeds with them, step 5 fits them).
    let weights = opts
        .position_weight
        .map(|w| w.weights(max_tokens))
        .unwrap_or_default();

    // 4. Common directions.
    let removed = opts.remove_components.min(dims);
    if removed > 0 && !texts.is_empty() {
        let embed = |t: &&str| {
            let mut ids = Vec::new();
            match &fast {
                Some(wp) => wp.encode(t, max_tokens, &mut ids),
                None => {
                    if let Ok(e) = tokenizer.encode(*t, false) {
                        ids.extend(e.get_ids().iter().take(max_tokens));
                    }
                }
            }
            let mut v = vec![0f32; dims];
            for (p, &i) in ids.iter().enumerate() {
                let w = weights.get(p).copied().unwrap_or(1.0);
                if let Some(row) = vectors.get(i as usize * dims..(i as usize + 1) * dims) {
                    v.iter_mut().zip(row).for_each(|(a, b)| *a += w * b);
                }
            }
            crate::onnx::encoder::l2_normalize(&mut v);
            v
        };
        let step = texts.len().div_ceil(COMMON_DOCS);
        let docs: Vec<f32> = texts
            .iter()
            .step_by(step)
            .collect::<Vec<_>>()
            .par_iter()
            .flat_map_iter(|t| embed(t))
            .collect();
        let axes = top_axes(&docs, dims, removed);
        vectors.par_chunks_mut(dims).for_each(|row| {
            for u in axes.chunks_exact(dims) {
                let p: f64 = row.iter().zip(u).map(|(&x, &a)| x as f64 * a).sum();
                row.iter_mut()
                    .zip(u)
                    .for_each(|(x, &a)| *x = (*x as f64 - p * a) as f32);
            }
        });
    }

    // 5. Fit.
    let mut fit_report = None;
    if !fit_texts.is_empty() && opts.fit.windows > 0 {
        let mut windows = Vec::new();
        let mut ids = Vec::new();
        let cap = max_tokens.saturating_mul(opts.fit.per_text.max(1));
        for t in fit_texts {
            ids.clear();
            match &fast {
                Some(wp) => wp.encode(t, cap, &mut ids),
                None => {
                    if let Ok(e) = tokenizer.encode(*t, false) {
                        ids.extend(e.get_ids().iter().take(cap));
                    }
                }
            }
            fit::text_windows(&ids, max_tokens, opts.fit.per_text, &mut windows);
        }
        let mut windows = fit::spread(windows, opts.fit.windows);
        let mix = fit::mixed(&windows, opts.fit.mixed, max_tokens);
        let t1 = std::time::Instant::now();
        let wrap = |ws: &[Vec<u32>]| -> Vec<Tokens> {
            ws.iter()
                .map(|w| {
                    let mut ids = Vec::with_capacity(added + w.len());
                    ids.extend(specials.first());
                    ids.extend_from_slice(w);
                    ids.extend(specials.iter().skip(1));
                    Tokens {
                        type_ids: vec![0; ids.len()],
                        ids,
                    }
                })
                .collect()
        };
        // Plain and mixed windows cached apart, so that a new `mixed` reuses the plain ones.
        let mut targets = teacher_embed(encoder, &wrap(&windows), opts)?;
        if !mix.is_empty() {
            targets.extend(teacher_embed(encoder, &wrap(&mix), opts)?);
            windows.extend(mix);
        }
        let teacher_seconds = t1.elapsed().as_secs_f64();
        let (v, mut r) = fit::fit(
            &vectors,
            dims,
            &windows,
            &targets,
            teacher_dim,
            &weights,
            &opts.fit,
        );
        r.teacher_seconds = teacher_seconds;
        vectors = v;
        fit_report = Some(r);
    }

    let meta = StaticMeta {
        format: "curate-static-1".into(),
        dim: dims,
        vocab,
        max_tokens,
        teacher: spec.dir.display().to_string(),
        teacher_dim,
        sif_a: opts.sif_a,
        explained_variance: explained,
        frequency_documents: texts.len() as u64,
        frequency_tokens: total,
        removed_components: removed,
        fit_windows: fit_report.as_ref().map_or(0, |r| r.windows),
        fit_lambda: fit_report.as_ref().map(|_| opts.fit.lambda),
        fit_pairs: fit_report.as_ref().map_or(0, |r| r.pairs),
        fit_pair_weight: fit_report
            .as_ref()
            .filter(|r| r.pairs > 0)
            .map(|_| opts.fit.pair_weight),
        tokenizer: None,
        head: None,
        position_weight: opts.position_weight,
    };
    StaticModel::save(out, &meta, &vectors, &spec.tokenizer_path)?;
    Ok(DistillReport {
        vocab,
        dim: dims,
        teacher_dim,
        explained_variance: explained,
        frequency_documents: texts.len() as u64,
        frequency_tokens: total,
        tokens_seen: counts.iter().filter(|&&c| c > 0).count(),
        embed_seconds,
        fit: fit_report,
    })
}

/// The teacher's L2-normalised embeddings of `toks` (`toks.len() x dim`), read from
/// `opts.cache` when an earlier run stored the same ones.
fn teacher_embed(encoder: &Encoder, toks: &[Tokens], opts: &DistillOptions) -> Result<Vec<f32>> {
    let dim = encoder.dim();
    let path = opts.cache.as_ref().map(|dir| {
        // FNV-1a over the model file's path and size, the pooling width, the batch size (an
        // int8 model quantizes activations per batch, so the batch moves the outputs a little)
        // and every id.
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ x as u64).wrapping_mul(0x100_0000_01b3);
            }
        };
        let spec = encoder.spec();
        eat(spec.model_path.to_string_lossy().as_bytes());
        let size = std::fs::metadata(&spec.model_path).map_or(0, |m| m.len());
        eat(&size.to_le_bytes());
        eat(&(dim as u64).to_le_bytes());
        eat(&(encoder.batch_size() as u64).to_le_bytes());
        for t in toks {
            eat(&(t.ids.len() as u32).to_le_bytes());
            for &i in &t.ids {
                eat(&i.to_le_bytes());
            }
        }
        dir.join(format!("teacher-{h:016x}-{}.f32", toks.len()))
    });
    if let Some(p) = &path {
        if let Ok(b) = std::fs::read(p) {
            if b.len() == toks.len() * dim * 4 {
                return Ok(b
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect());
            }
        }
    }
    let mut raw: Vec<f32> = Vec::with_capacity(toks.len() * dim);
    for chunk in toks.chunks(opts.batch_size.max(1) * 16) {
        for mut v in encoder.embed_tokens(chunk)? {
            crate::onnx::encoder::l2_normalize(&mut v);
            raw.extend_from_slice(&v);
        }
    }
    if let Some(p) = &path {
        // A cache that cannot be written only costs the next run time.
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        let b: Vec<u8> = raw.iter().flat_map(|x| x.to_le_bytes()).collect();
        let tmp = p.with_extension("tmp");
        if std::fs::write(&tmp, b).is_ok() {
            let _ = std::fs::rename(&tmp, p);
        }
    }
    Ok(raw)
}
