//! The model directory: `model.onnx`, `tokenizer.json`, `curate.json` and an optional head.
//!
//! `curate.json` says how to turn the graph's output into label scores:
//!
//! ```json
//! {
//!   "labels": ["code", "general", "math", "multilingual"],
//!   "pooling": "mean",
//!   "normalize": true,
//!   "max_length": 256,
//!   "truncation": "head",
//!   "head": "head.json"
//! }
//! ```
//!
//! Every key is optional. Without `curate.json` (a model exported by Hugging Face `optimum`),
//! labels come from `config.json`'s `id2label` (and sigmoid scores from its `problem_type:
//! multi_label_classification`), the length limit from `tokenizer_config.json`, and the graph
//! is expected to output `logits`.
//! `head.json` is a linear layer over the pooled embedding: `{"labels", "weight": [[..]; labels],
//! "bias"}`; `curate train head` writes one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the graph's output becomes one vector per text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The output already has one vector per text (`logits [batch, labels]`, or a pooled
    /// embedding `[batch, dim]`).
    None,
    /// The first token's vector of `last_hidden_state` (`[CLS]`, `<s>`).
    Cls,
    /// The mean of `last_hidden_state` over the attention mask (sentence-transformers).
    Mean,
}

/// What is kept of a text longer than the model's maximum length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// The first tokens.
    Head,
    /// The first `head_tokens` tokens and the last ones (Sun et al. 2019, "How to fine-tune
    /// BERT for text classification": head+tail beats head-only on long documents).
    HeadTail,
}

/// How logits become scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Scores sum to one (single-label models).
    Softmax,
    /// Independent scores per label (multi-label models).
    Sigmoid,
}

/// `curate.json` as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Label names in the order of the logits (taken from the head or `config.json` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// L2-normalise the pooled vector before the head (sentence-transformers models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    /// Maximum tokens per text, special tokens included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<Truncation>,
    /// Tokens kept from the start with `head_tail` (default: a quarter of the budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_tokens: Option<usize>,
    /// The graph output to read (default: `logits` with pooling `none`, else
    /// `last_hidden_state`, else the first output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// A linear head file beside this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// The graph file (default `model.onnx`), relative to the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The tokenizer file (default `tokenizer.json`), relative to the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<String>,
}

/// A linear layer over the pooled embedding: `logits = weight · x + bias`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub labels: Vec<String>,
    /// One row per label, each of the embedding's width.
    pub weight: Vec<Vec<f32>>,
    pub bias: Vec<f32>,
}

impl Head {
    /// Checks shapes; `dim` is the embedding width when known.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let n = self.labels.len();
        if n == 0 || self.weight.len() != n || self.bias.len() != n {
            return Err(Error::format(
                path,
                format!(
                    "head has {} labels, {} weight rows and {} biases: they must agree",
                    n,
                    self.weight.len(),
                    self.bias.len()
                ),
            ));
        }
        let d = self.weight[0].len();
        if d == 0 || self.weight.iter().any(|r| r.len() != d) {
            return Err(Error::format(path, "head weight rows differ in width"));
        }
        if self
            .weight
            .iter()
            .flatten()
            .chain(&self.bias)
            .any(|v| !v.is_finite())
        {
            return Err(Error::format(path, "head has non-finite weights"));
        }
        Ok(())
    }

    pub fn dim(&self) -> usize {
        self.weight[0].len()
    }

    /// Logits of one embedding.
    pub fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for (row, b) in self.weight.iter().zip(&self.bias) {
            // f64 accumulation: the same sum whatever the vector width of the build.
            let s: f64 = row.iter().zip(x).map(|(&w, &v)| w as f64 * v as f64).sum();
            out.push((s + *b as f64) as f32);
        }
    }
}

/// The resolved description of a model directory.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub model_path: PathBuf,
    pub tokenizer_path: PathBuf,
    /// Empty for a bare encoder (embeddings only).
    pub labels: Vec<String>,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_length: usize,
    pub truncation: Truncation,
    pub head_tokens: Option<usize>,
    pub output: Option<String>,
    pub head: Option<Head>,
    pub activation: Activation,
}

/// The default budget when neither the model files nor the config name one.
pub const DEFAULT_MAX_LENGTH: usize = 512;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::format(path, e.to_string()))
}

impl ModelSpec {
    /// Reads `dir/curate.json` (if any), the head and Hugging Face's `config.json` /
    /// `tokenizer_config.json` for what `curate.json` leaves out.
    pub fn read(dir: &Path) -> Result<ModelSpec> {
        if !dir.is_dir() {
            return Err(Error::format(dir, "not a model directory"));
        }
        let cfg_path = dir.join("curate.json");
        let file: ModelFile = if cfg_path.exists() {
            read_json(&cfg_path)?
        } else {
            ModelFile::default()
        };
        let model_path = dir.join(file.model.as_deref().unwrap_or("model.onnx"));
        let tokenizer_path = dir.join(file.tokenizer.as_deref().unwrap_or("tokenizer.json"));
        for p in [&model_path, &tokenizer_path] {
            if !p.is_file() {
                return Err(Error::format(
                    dir,
                    format!(
                        "{} is missing (an ONNX model directory holds model.onnx, tokenizer.json and curate.json)",
                        p.display()
                    ),
                ));
            }
        }
        let hf: Option<serde_json::Value> = {
            let p = dir.join("config.json");
            p.exists().then(|| read_json(&p)).transpose()?
        };
        let head = match &file.head {
            Some(h) => {
                let p = dir.join(h);
                let head: Head = read_json(&p)?;
                head.validate(&p)?;
                Some(head)
            }
            None => None,
        };
        let labels = match (&file.labels, &head) {
            (Some(l), Some(h)) if *l != h.labels => {
                return Err(Error::format(
                    &cfg_path,
                    format!("labels {l:?} differ from the head's {:?}", h.labels),
                ))
            }
            (Some(l), _) => l.clone(),
            (None, Some(h)) => h.labels.clone(),
            (None, None) => hf.as_ref().map(id2label).unwrap_or_default(),
        };
        let pooling = file.pooling.unwrap_or(if head.is_some() {
            Pooling::Mean
        } else {
            Pooling::None
        });
        let max_length = match file.max_length {
            Some(0) => return Err(Error::format(&cfg_path, "max_length must be positive")),
            Some(n) => n,
            None => default_max_length(dir, hf.as_ref()),
        };
        Ok(ModelSpec {
            dir: dir.to_path_buf(),
            model_path,
            tokenizer_path,
            labels,
            pooling,
            normalize: file.normalize.unwrap_or(false),
            max_length,
            truncation: file.truncation.unwrap_or(Truncation::Head),
            head_tokens: file.head_tokens,
            output: file.output,
            head,
            // Hugging Face's `problem_type` says whether labels exclude each other.
            activation: file.activation.unwrap_or(
                match hf.as_ref().and_then(|c| c["problem_type"].as_str()) {
                    Some("multi_label_classification") => Activation::Sigmoid,
                    _ => Activation::Softmax,
                },
            ),
        })
    }
}

/// `id2label` of a Hugging Face config, in id order.
fn id2label(cfg: &serde_json::Value) -> Vec<String> {
    let Some(m) = cfg["id2label"].as_object() else {
        return Vec::new();
    };
    let mut pairs: Vec<(usize, String)> = m
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_str()?.to_string())))
        .collect();
    pairs.sort();
    pairs.into_iter().map(|(_, v)| v).collect()
}

/// The model's own limit: `tokenizer_config.json`'s `model_max_length`, else `config.json`'s
/// `max_position_embeddings` (less RoBERTa's two offset positions), capped at 512.
fn default_max_length(dir: &Path, hf: Option<&serde_json::Value>) -> usize {
    let tc: Option<serde_json::Value> = std::fs::read(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(n) = tc.as_ref().and_then(|t| t["model_max_length"].as_u64()) {
        // Tokenizers without a limit store 1e30 here.
        if n > 0 && n <= 1 << 20 {
            return n as usize;
        }
    }
    if let Some(cfg) = hf {
        if let Some(n) = cfg["max_position_embeddings"].as_u64() {
            let roberta = matches!(
                cfg["model_type"].as_str(),
                Some("roberta" | "xlm-roberta" | "camembert")
            );
            let n = if roberta { n.saturating_sub(2) } else { n };
            if n > 0 {
                return (n as usize).min(DEFAULT_MAX_LENGTH);
            }
        }
    }
    DEFAULT_MAX_LENGTH
}
