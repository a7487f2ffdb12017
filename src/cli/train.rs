//! `curate train`: train models from labelled files. `curate train fasttext` trains a fastText
//! classifier (`classifiers::fasttext::train`) and writes a `.bin` that fastText itself loads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::Subcommand;

use super::CliError;
use crate::io::records::{self, Fields};
use classifiers::fasttext::args::LossKind;
use classifiers::fasttext::train::{TrainOptions, Trainer};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    pub model: TrainCommand,
}

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Train a fastText classifier from JSONL(.gz/.zst) or Parquet files with text and labels.
    Fasttext(FasttextArgs),
    /// A linear head on a transformer encoder's pooled embeddings (an ONNX model directory).
    Head(super::train_head::TrainHeadArgs),
}

#[derive(Debug, clap::Args)]
pub struct FasttextArgs {
    /// A training file (repeatable): JSONL (plain, .gz, .zst) or Parquet.
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// A training file whose every row gets LABEL, whatever its fields (repeatable).
    #[arg(long = "input-as", value_name = "LABEL=FILE")]
    pub inputs_as: Vec<String>,
    /// The field (column) holding the label.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    /// The field (column) holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Where to write the model (fastText .bin).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = TrainOptions::default().epoch)]
    pub epoch: u32,
    #[arg(long, default_value_t = TrainOptions::default().lr)]
    pub lr: f32,
    #[arg(long, default_value_t = TrainOptions::default().dim)]
    pub dim: usize,
    /// Longest word n-gram (1: words only).
    #[arg(long, default_value_t = TrainOptions::default().word_ngrams)]
    pub word_ngrams: u32,
    /// Hash buckets for word and character n-grams.
    #[arg(long, default_value_t = TrainOptions::default().buckets)]
    pub buckets: u32,
    /// Words seen fewer times are dropped from the vocabulary.
    #[arg(long, default_value_t = TrainOptions::default().min_count)]
    pub min_count: u32,
    /// Shortest character n-gram (with --maxn).
    #[arg(long, default_value_t = 3)]
    pub minn: u32,
    /// Longest character n-gram (0: no character n-grams).
    #[arg(long, default_value_t = TrainOptions::default().maxn)]
    pub maxn: u32,
    /// softmax, hs (hierarchical softmax, for many labels) or ova (one sigmoid per label).
    #[arg(long, default_value = "softmax")]
    pub loss: String,
    #[arg(long, default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// Drop the documents of the labelled data's kept-aside test split (`curate::split`:
    /// sha1 of the id up to `#`, `% 5 == 0`) before training; rows without an id are skipped.
    #[arg(long)]
    pub exclude_test: bool,
}

pub fn run(a: TrainArgs) -> Result<(), CliError> {
    match a.model {
        TrainCommand::Fasttext(f) => fasttext(f),
        TrainCommand::Head(h) => super::train_head::run(h),
    }
}

fn fasttext(a: FasttextArgs) -> Result<(), CliError> {
    let loss = LossKind::parse(&a.loss)
        .ok_or_else(|| CliError::Config(format!("--loss: unknown loss {:?}", a.loss)))?;
    let opts = TrainOptions {
        epoch: a.epoch,
        lr: a.lr,
        dim: a.dim,
        word_ngrams: a.word_ngrams,
        buckets: a.buckets,
        min_count: a.min_count,
        minn: a.minn,
        maxn: a.maxn,
        loss,
        seed: a.seed,
        ..TrainOptions::default()
    };
    opts.validate()
        .map_err(|(k, m)| CliError::Config(format!("--{k}: {m}")))?;
    let mut sources: Vec<(PathBuf, Option<String>)> =
        a.inputs.iter().map(|p| (p.clone(), None)).collect();
    for s in &a.inputs_as {
        let (label, file) = s
            .split_once('=')
            .filter(|(l, f)| !l.is_empty() && !f.is_empty())
            .ok_or_else(|| {
                CliError::Config(format!("--input-as: expected LABEL=FILE, got {s:?}"))
            })?;
        sources.push((PathBuf::from(file), Some(label.to_string())));
    }
    if sources.is_empty() {
        return Err(CliError::Config(
            "--input: at least one training file".into(),
        ));
    }
    let mut trainer = Trainer::new(opts);
    let mut skipped: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (path, fixed) in &sources {
        if !path.exists() {
            return Err(CliError::Config(format!(
                "--input: file not found: {}",
                path.display()
            )));
        }
        let fields = Fields {
            id: "id".into(),
            text: a.text_field.clone(),
            label: fixed.is_none().then(|| a.label_field.clone()),
        };
        for r in records::open(path, &fields)? {
            let r = match r {
                Ok(r) => r,
                Err((_, reason)) => {
                    *skipped.entry(reason).or_default() += 1;
                    continue;
                }
            };
            if a.exclude_test {
                match &r.id {
                    None => {
                        *skipped.entry("missing_id").or_default() += 1;
                        continue;
                    }
                    Some(id) if crate::split::is_test(id) => {
                        *skipped.entry("test_split").or_default() += 1;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            let Some(text) = r.text else {
                *skipped.entry("missing_text").or_default() += 1;
                continue;
            };
            let Some(label) = fixed.clone().or(r.label) else {
                *skipped.entry("missing_label").or_default() += 1;
                continue;
            };
            if label.chars().any(char::is_whitespace) || label.is_empty() {
                *skipped.entry("bad_label").or_default() += 1;
                continue;
            }
            if !trainer.add(&label, &text) {
                *skipped.entry("empty_text").or_default() += 1;
            }
        }
    }
    let (model, report) = trainer
        .train()
        .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    model
        .save(&a.out)
        .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    eprintln!(
        "trained {} on {} examples ({} words, {} tokens) in {:.1}s; labels {:?}; skipped {:?}; last epoch loss {:.4}",
        a.out.display(),
        report.examples,
        report.words,
        report.tokens,
        report.seconds,
        report.labels,
        skipped,
        report.last_epoch_loss
    );
    Ok(())
}
