//! ONNX transformer classifiers (BERT, RoBERTa, DeBERTa, MiniLM, ...) served through
//! onnxruntime (`ort`), with their `tokenizer.json` through `tokenizers`.
//!
//! - [`config`]: the model directory (`model.onnx`, `tokenizer.json`, `curate.json`, head);
//! - [`runtime`]: loading `libonnxruntime.so`, sessions on CPU or CUDA;
//! - [`encoder`]: tokenization with truncation, length-sorted batches, pooling;
//! - [`OnnxClassifier`]: encoder + optional linear head + softmax/sigmoid = a
//!   [`TextClassifier`];
//! - [`stage`]: the `classify.onnx` pipeline stage.

pub mod config;
pub mod encoder;
pub mod runtime;
pub mod stage;
pub mod train;

use std::path::Path;

pub use config::{Activation, Head, ModelFile, ModelSpec, Pooling, Truncation};
pub use encoder::{Encoder, EncoderOptions, Tokens};
pub use runtime::{Device, RuntimeOptions};

use crate::error::{Error, Result};
use crate::model::TextClassifier;

/// Loads an ONNX model directory with default options (CPU, the library from
/// `ORT_DYLIB_PATH`, one intra-op thread per session, batches in parallel over rayon).
pub fn load(path: &Path) -> Result<Box<dyn TextClassifier>> {
    Ok(Box::new(OnnxClassifier::open(
        path,
        &EncoderOptions::default(),
    )?))
}

/// An encoder whose pooled output (or logits) becomes label scores.
pub struct OnnxClassifier {
    encoder: Encoder,
    labels: Vec<String>,
}

/// What one text scored: raw logits and activated scores, both in label order.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    pub logits: Vec<f32>,
    pub scores: Vec<f32>,
}

impl OnnxClassifier {
    pub fn open(dir: &Path, opts: &EncoderOptions) -> Result<OnnxClassifier> {
        let encoder = Encoder::open(dir, opts)?;
        let spec = encoder.spec();
        let width = match &spec.head {
            Some(h) => {
                if h.dim() != encoder.dim() {
                    return Err(Error::format(
                        dir,
                        format!(
                            "the head expects {}-wide embeddings, the encoder gives {}",
                            h.dim(),
                            encoder.dim()
                        ),
                    ));
                }
                h.labels.len()
            }
            None if spec.pooling != Pooling::None => {
                return Err(Error::format(
                    dir,
                    "an encoder without a head gives embeddings, not labels: add a head \
                     (`curate train head`) or use it for semantic dedup",
                ))
            }
            None => encoder.dim(),
        };
        let labels = if spec.labels.is_empty() {
            (0..width).map(|i| format!("LABEL_{i}")).collect()
        } else {
            spec.labels.clone()
        };
        if labels.len() != width {
            return Err(Error::format(
                dir,
                format!(
                    "{} labels named for {width} logits of output `{}`",
                    labels.len(),
                    encoder.output_name()
                ),
            ));
        }
        Ok(OnnxClassifier { encoder, labels })
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Logits and scores of each text, in input order.
    pub fn score(&self, texts: &[&str]) -> Result<Vec<Scored>> {
        let pooled = self.encoder.embed(texts)?;
        Ok(self.score_pooled(pooled))
    }

    /// Logits and scores from pooled vectors (or the graph's logits).
    pub fn score_pooled(&self, pooled: Vec<Vec<f32>>) -> Vec<Scored> {
        let spec = self.encoder.spec();
        let mut logits = Vec::new();
        pooled
            .into_iter()
            .map(|v| {
                let logits = match &spec.head {
                    Some(h) => {
                        h.apply(&v, &mut logits);
                        logits.clone()
                    }
                    None => v,
                };
                let scores = activate(&logits, spec.activation);
                Scored { logits, scores }
            })
            .collect()
    }
}

/// Softmax (stable) or elementwise sigmoid.
pub fn activate(logits: &[f32], a: Activation) -> Vec<f32> {
    match a {
        Activation::Softmax => {
            let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = logits.iter().map(|&x| ((x - m) as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| (v / s) as f32).collect()
        }
        Activation::Sigmoid => logits
            .iter()
            .map(|&x| (1.0 / (1.0 + (-(x as f64)).exp())) as f32)
            .collect(),
    }
}

impl TextClassifier for OnnxClassifier {
    fn labels(&self) -> &[String] {
        &self.labels
    }

    fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.score(texts)?.into_iter().map(|s| s.scores).collect())
    }

    fn kind(&self) -> &'static str {
        "onnx"
    }
}

#[cfg(test)]
pub(crate) mod tests;
