//! `classify.fasttext`: scores documents with a fastText classifier (quality, topic, toxicity
//! ...), storing every label's probability as a signal and the best label, with an optional
//! threshold on one label's probability.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use stages::config::check_fraction;
use stages::declare::{Declare, Declared, Sig, Str, F32};
use stages::{Built, ConfigError, Document, Outcome, Purpose, Stage, StageArgs, StageDef};

use super::{FastText, Preprocess, Session};

/// `[stages.NAME]` with `type = "classify.fasttext"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastTextStageConfig {
    /// The model file (`.bin` or `.ftz`), relative to the config file.
    pub model: String,
    /// The label that `min_score` applies to.
    pub label: Option<String>,
    /// Drop (`below_min_score`) documents whose probability of `label` is below this.
    pub min_score: Option<f64>,
    /// Lower-case the text first (as `curate train fasttext` trains; false for models trained
    /// on cased text).
    #[serde(default = "yes")]
    pub lowercase: bool,
    /// Make ASCII punctuation separate tokens (as `curate train fasttext` trains).
    #[serde(default = "yes")]
    pub split_punct: bool,
    /// Characters of the normalized text that are classified.
    #[serde(default = "max_chars")]
    pub max_chars: usize,
}

fn yes() -> bool {
    true
}
fn max_chars() -> usize {
    super::preprocess::DEFAULT_MAX_CHARS
}

pub static DEF: StageDef = StageDef {
    kind: "classify.fasttext",
    about: "fastText classifier: every label's probability as a signal, optional min_score on one label",
    example: "model = \"models/quality.bin\"\nlabel = \"hq\"\nmin_score = 0.5",
    build,
};

pub struct FastTextStage {
    name: String,
    /// `None` when built only to re-judge stored signals.
    model: Option<Arc<FastText>>,
    preprocess: Preprocess,
    labels: Vec<String>,
    /// Signal names: one per label, in model order, then the best label.
    label_signals: Vec<Sig<F32>>,
    best_signal: Sig<Str>,
    declared: Declared,
}

/// Label names of a model file without loading its matrices.
fn labels_of(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    super::labels_from_bytes(&bytes)
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: FastTextStageConfig = args.parse()?;
    let path = args.resolve_path("model", &cfg.model)?;
    let (model, labels) = match args.purpose {
        Purpose::Run => {
            let m = FastText::load(&path).map_err(|e| ConfigError::new("model", e.to_string()))?;
            let labels = m.labels().to_vec();
            (Some(Arc::new(m)), labels)
        }
        Purpose::Select => (
            None,
            labels_of(&path).map_err(|e| ConfigError::new("model", e))?,
        ),
    };
    if labels.iter().any(|l| l == "label") {
        return Err(ConfigError::new(
            "model",
            "the model has a label named `label`, which would clash with the best-label signal",
        ));
    }
    let threshold = match (&cfg.label, cfg.min_score) {
        (Some(l), Some(v)) => {
            check_fraction("min_score", v)?;
            if !labels.contains(l) {
                return Err(ConfigError::new(
                    "label",
                    format!("the model has no label `{l}`; its labels: {labels:?}"),
                ));
            }
            Some((l.clone(), v))
        }
        (None, Some(_)) => return Err(ConfigError::new("label", "min_score needs a label")),
        (Some(l), None) if !labels.contains(l) => {
            return Err(ConfigError::new(
                "label",
                format!("the model has no label `{l}`; its labels: {labels:?}"),
            ))
        }
        _ => None,
    };
    if cfg.max_chars == 0 {
        return Err(ConfigError::new("max_chars", "must be at least 1"));
    }
    let mut d = Declare::new(args.name);
    let label_signals: Vec<Sig<F32>> = labels
        .iter()
        .map(|l| d.signal(l, format!("probability of label {l}")))
        .collect();
    let best_signal = d.signal("label", "the most probable label");
    match threshold {
        Some((l, v)) => {
            let i = labels.iter().position(|x| *x == l).expect("checked above");
            d.min(label_signals[i], Some(v), "min_score", "below_min_score");
        }
        None => d.reason("below_min_score"),
    }
    Ok(Built::Map(Box::new(FastTextStage {
        name: args.name.to_string(),
        model,
        preprocess: Preprocess {
            lowercase: cfg.lowercase,
            max_chars: cfg.max_chars,
            split_punct: cfg.split_punct,
        },
        label_signals,
        best_signal,
        labels,
        declared: d.finish(),
    })))
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::default());
}

impl Stage for FastTextStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(model) = &self.model else {
            return Outcome::Keep;
        };
        let probs = SESSION
            .with(|s| model.probabilities(doc.text(), &self.preprocess, &mut s.borrow_mut()));
        let mut best = 0;
        for (i, (sig, p)) in self.label_signals.iter().zip(&probs).enumerate() {
            sig.set(&mut doc.signals, *p as f64);
            if *p > probs[best] {
                best = i;
            }
        }
        self.best_signal.set(&mut doc.signals, &self.labels[best]);
        Outcome::Keep
    }
}
