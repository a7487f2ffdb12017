//! `classify.onnx`: a transformer classifier over each document, its scores stored as signals.
//!
//! The runner hands this stage whole batches (`Stage::batched`); the encoder sorts them by
//! length and runs length-homogeneous sub-batches in parallel, one onnxruntime session per busy
//! thread. Signals: `<name>.<label>` (score, f32) for every label, `<name>.label` (the argmax)
//! and, with `logits = true`, `<name>.logit.<label>`. `min_score` thresholds give the verdict
//! from the stored scores alone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use stages::declare::{Declare, Declared, Sig, Str, F32};
use stages::{Built, ConfigError, Document, Outcome, Purpose, Stage, StageArgs, StageDef};

use super::config::{ModelSpec, Truncation};
use super::encoder::EncoderOptions;
use super::runtime::{Device, RuntimeOptions};
use super::OnnxClassifier;

/// `[stages.NAME]` with `type = "classify.onnx"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnnxStageConfig {
    /// The model directory: `model.onnx`, `tokenizer.json` and `curate.json` (labels, pooling,
    /// max_length, truncation, optional `head.json`).
    pub model: String,
    /// `libonnxruntime.so` to load (else the `ORT_DYLIB_PATH` environment variable).
    pub ort_library: Option<String>,
    /// `"cpu"` (default) or `"cuda"` (an error when the library or machine has no CUDA).
    #[serde(default)]
    pub device: Device,
    /// CUDA device ordinal.
    #[serde(default)]
    pub device_id: i32,
    /// onnxruntime intra-op threads per session (default 1: batches already run in parallel,
    /// one session per worker thread).
    #[serde(default = "one")]
    pub threads: usize,
    /// Most onnxruntime sessions at once (default: one per busy worker thread). Each holds a
    /// copy of the weights: cap it on many-core machines and raise `threads` instead.
    pub sessions: Option<usize>,
    /// Documents per onnxruntime run (after sorting by length).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Maximum tokens per document, special tokens included (default: curate.json's).
    pub max_length: Option<usize>,
    /// `"head"` or `"head_tail"` (default: curate.json's, else head).
    pub truncation: Option<Truncation>,
    /// Also store raw logits as `<name>.logit.<label>`.
    #[serde(default)]
    pub logits: bool,
    /// Drop documents whose score for a label is below a bound: `min_score = { hq = 0.5 }`.
    #[serde(default)]
    pub min_score: BTreeMap<String, f64>,
}

fn one() -> usize {
    1
}
fn default_batch() -> usize {
    32
}

pub static DEF: StageDef = StageDef {
    kind: "classify.onnx",
    about: "Transformer classifier (ONNX) scores per label as signals",
    example: "model = \"classifiers/testdata/tiny-roberta-cls\"\nbatch_size = 16\nmin_score = { prose = 0.1 }",
    build,
};

pub struct OnnxStage {
    name: String,
    labels: Vec<String>,
    score_signals: Vec<Sig<F32>>,
    logit_signals: Vec<Sig<F32>>,
    label_signal: Sig<Str>,
    declared: Declared,
    model: Option<OnnxClassifier>,
}

/// A label as a signal-name part: ASCII letters, digits and `_`.
fn signal_part(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The onnxruntime settings that `classify.onnx` and `dedup.semantic` share (`ort_library`,
/// `device`, `device_id`, `threads`, `sessions`), checked, with the library path resolved
/// against the config's folder.
pub(crate) fn runtime_options(
    args: &StageArgs,
    ort_library: Option<&str>,
    device: Device,
    device_id: i32,
    threads: usize,
    sessions: Option<usize>,
) -> Result<RuntimeOptions, ConfigError> {
    let library: Option<PathBuf> = ort_library
        .map(|p| args.resolve_path("ort_library", p))
        .transpose()?;
    if threads == 0 {
        return Err(ConfigError::new("threads", "must be positive"));
    }
    if sessions == Some(0) {
        return Err(ConfigError::new("sessions", "must be positive"));
    }
    Ok(RuntimeOptions {
        library,
        device,
        device_id,
        threads,
    })
}

/// Asks the library for the configured device (CUDA) before any document is read.
pub(crate) fn check_device(runtime: &RuntimeOptions) -> Result<(), ConfigError> {
    super::runtime::check_device(runtime).map_err(|e| ConfigError::new("device", e.to_string()))
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: OnnxStageConfig = args.parse()?;
    let dir = args.resolve_path("model", &cfg.model)?;
    let runtime = runtime_options(
        args,
        cfg.ort_library.as_deref(),
        cfg.device,
        cfg.device_id,
        cfg.threads,
        cfg.sessions,
    )?;
    if cfg.batch_size == 0 {
        return Err(ConfigError::new("batch_size", "must be positive"));
    }
    if cfg.max_length == Some(0) {
        return Err(ConfigError::new("max_length", "must be positive"));
    }
    let spec = ModelSpec::read(&dir).map_err(|e| ConfigError::new("model", e.to_string()))?;
    let model = match args.purpose {
        Purpose::Select => None,
        Purpose::Run => {
            let opts = EncoderOptions {
                runtime,
                batch_size: cfg.batch_size,
                max_length: cfg.max_length,
                truncation: cfg.truncation,
                pooling: None,
                normalize: None,
                max_sessions: cfg.sessions,
            };
            check_device(&opts.runtime)?;
            let m = OnnxClassifier::open(&dir, &opts)
                .map_err(|e| ConfigError::new("model", e.to_string()))?;
            Some(m)
        }
    };
    let labels: Vec<String> = match &model {
        Some(m) => crate::TextClassifier::labels(m).to_vec(),
        None if !spec.labels.is_empty() => spec.labels.clone(),
        None => return Err(ConfigError::new(
            "model",
            "the model directory names no labels (curate.json `labels` or config.json `id2label`)",
        )),
    };
    let n = args.name;
    let mut seen = std::collections::BTreeSet::new();
    for l in &labels {
        let p = signal_part(l);
        if p == "label" || p == "logit" || !seen.insert(p.clone()) {
            return Err(ConfigError::new(
                "model",
                format!("label `{l}` gives the signal name `{n}.{p}`, which is taken"),
            ));
        }
    }
    let mut d = Declare::new(n);
    let score_signals: Vec<Sig<F32>> = labels
        .iter()
        .map(|l| d.signal(&signal_part(l), format!("score of label {l}")))
        .collect();
    let logit_signals: Vec<Sig<F32>> = if cfg.logits {
        labels
            .iter()
            .map(|l| {
                let part = signal_part(l);
                d.signal(&format!("logit.{part}"), format!("logit of label {l}"))
            })
            .collect()
    } else {
        Vec::new()
    };
    let label_signal = d.signal("label", "highest-scoring label");
    d.reason("low_score");
    for (label, &v) in &cfg.min_score {
        if !labels.contains(label) {
            return Err(ConfigError::new(
                format!("min_score.{label}"),
                format!("no such label; the model's labels: {}", labels.join(", ")),
            ));
        }
        stages::config::check_fraction(&format!("min_score.{label}"), v)?;
        let i = labels
            .iter()
            .position(|l| l == label)
            .expect("checked above");
        let key = format!("min_score.{label}");
        d.min(
            score_signals[i],
            Some(v),
            stages::declare::intern(&key),
            "low_score",
        );
    }
    // Documents the model could not score.
    d.reason("model_error");
    Ok(Built::Map(Box::new(OnnxStage {
        name: n.to_string(),
        score_signals,
        logit_signals,
        label_signal,
        declared: d.finish(),
        labels,
        model,
    })))
}

impl OnnxStage {
    fn write(&self, doc: &mut Document, s: &super::Scored) {
        for (sig, &v) in self.score_signals.iter().zip(&s.scores) {
            sig.set(&mut doc.signals, v as f64);
        }
        for (sig, &v) in self.logit_signals.iter().zip(&s.logits) {
            sig.set(&mut doc.signals, v as f64);
        }
        // Argmax, first label on ties.
        let mut best = 0;
        for (i, &v) in s.scores.iter().enumerate() {
            if v > s.scores[best] {
                best = i;
            }
        }
        self.label_signal.set(&mut doc.signals, &self.labels[best]);
    }
}

impl Stage for OnnxStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn batched(&self) -> bool {
        true
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let mut one = [doc];
        self.process_batch(&mut one)[0]
    }

    fn process_batch(&self, docs: &mut [&mut Document]) -> Vec<Outcome> {
        let Some(model) = &self.model else {
            return vec![Outcome::Drop("model_error"); docs.len()];
        };
        let texts: Vec<&str> = docs.iter().map(|d| d.text()).collect();
        match model.score(&texts) {
            Ok(scored) => {
                for (d, s) in docs.iter_mut().zip(&scored) {
                    self.write(d, s);
                }
                vec![Outcome::Keep; docs.len()]
            }
            Err(e) => {
                // One bad document must not cost its batch: retry one by one.
                tracing::warn!(
                    "{}: batch failed ({e}); scoring one document at a time",
                    self.name
                );
                docs.iter_mut()
                    .map(|d| match model.score(&[d.text()]) {
                        Ok(s) => {
                            self.write(d, &s[0]);
                            Outcome::Keep
                        }
                        Err(_) => Outcome::Drop("model_error"),
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn build_stage(
        body: &str,
        lib: &std::path::Path,
        purpose: Purpose,
    ) -> Result<Built, ConfigError> {
        let mut t: toml::Table = body.parse().unwrap();
        t.insert(
            "ort_library".into(),
            toml::Value::String(lib.display().to_string()),
        );
        let root = testing::repo_root();
        build(&StageArgs {
            name: "topic",
            table: &t,
            base_dir: &root,
            purpose,
            seed: 0,
        })
    }

    #[test]
    fn example_scores_documents_in_batches() {
        let Some(lib) = testing::ort_library() else {
            return;
        };
        let Built::Map(s) = build_stage(DEF.example, &lib, Purpose::Run).unwrap() else {
            panic!("a map stage")
        };
        assert!(s.batched());
        let names: Vec<String> = s.signals().iter().map(|x| x.name.to_string()).collect();
        assert_eq!(
            names,
            ["topic.code", "topic.math", "topic.prose", "topic.label"]
        );
        let mut docs: Vec<Document> = crate::onnx::tests::mixed_texts()
            .into_iter()
            .enumerate()
            .map(|(i, t)| Document::new(format!("d{i}"), t))
            .collect();
        let mut refs: Vec<&mut Document> = docs.iter_mut().collect();
        let out = s.process_batch(&mut refs);
        assert!(out.iter().all(|o| o.is_keep()));
        for d in &docs {
            let scores: Vec<f64> = ["code", "math", "prose"]
                .iter()
                .map(|l| d.signals.f64(&format!("topic.{l}")).unwrap())
                .collect();
            assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-5);
            let best = ["code", "math", "prose"][scores
                .iter()
                .enumerate()
                .fold(0, |b, (i, &v)| if v > scores[b] { i } else { b })];
            assert_eq!(d.signals.str("topic.label"), Some(best));
            // The verdict follows the stored score and the bound alone.
            let want = if scores[2] >= 0.1 {
                Outcome::Keep
            } else {
                Outcome::Drop("low_score")
            };
            assert_eq!(s.judge(&d.signals), want);
        }
        // One document alone scores as it did in its batch.
        let mut one = Document::new("x", docs[3].text().to_string());
        s.process(&mut one);
        assert_eq!(
            one.signals.f64("topic.code"),
            docs[3].signals.f64("topic.code")
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let Some(lib) = testing::ort_library() else {
            return;
        };
        let key = |body: &str| build_stage(body, &lib, Purpose::Select).err().unwrap().key;
        let m = "model = \"classifiers/testdata/tiny-roberta-cls\"\n";
        assert_eq!(
            key(&format!("{m}min_score = {{ poetry = 0.5 }}")),
            "min_score.poetry"
        );
        assert_eq!(
            key(&format!("{m}min_score = {{ code = 1.5 }}")),
            "min_score.code"
        );
        assert_eq!(key(&format!("{m}batch_size = 0")), "batch_size");
        assert_eq!(key(&format!("{m}device = \"tpu\"")), "device");
        assert_eq!(key(&format!("{m}bach_size = 3")), "bach_size");
        assert_eq!(key("model = \"no/such/dir\""), "model");
        // Selection builds without loading the model and knows the labels from curate.json.
        let Built::Map(s) = build_stage(m, &lib, Purpose::Select).unwrap() else {
            panic!()
        };
        assert_eq!(s.signals().len(), 4);
        // Asking for CUDA on the CPU library fails at build time with the reason.
        if !crate::onnx::runtime::cuda_available(&RuntimeOptions {
            library: Some(lib.clone()),
            ..Default::default()
        })
        .unwrap()
        {
            let e = build_stage(&format!("{m}device = \"cuda\""), &lib, Purpose::Run)
                .err()
                .unwrap();
            assert_eq!(e.key, "device");
            assert!(e.message.contains("CUDA"), "{}", e.message);
        }
    }
}
