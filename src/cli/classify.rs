//! `curate classify`: score every row of a JSONL or Parquet file with a model (a fastText file or
//! an ONNX model directory, through `classifiers::load_model`): one output line per input row,
//! `{"id", "label", "scores": {"<label>": probability, ...}}`, label = the argmax.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, Context};
use rayon::prelude::*;

use super::CliError;
use crate::io::records::{self, Fields, Record};

#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// The model: a fastText .bin/.ftz file or an ONNX model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Input rows: JSONL (plain, .gz, .zst) or Parquet.
    pub input: PathBuf,
    /// Output JSONL.
    #[arg(long)]
    pub out: PathBuf,
    /// The field (column) holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// The field (column) holding the id (the row number when absent).
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Rows per model call.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// fastText models: keep case (for models trained on cased text, such as lid.176).
    #[arg(long)]
    pub no_lowercase: bool,
    /// fastText models: keep punctuation attached to words (models not trained by curate).
    #[arg(long)]
    pub no_split_punct: bool,
}

pub fn run(a: ClassifyArgs) -> Result<(), CliError> {
    if !a.model.exists() {
        return Err(CliError::Config(format!(
            "--model: not found: {}",
            a.model.display()
        )));
    }
    if !a.input.exists() {
        return Err(CliError::Config(format!(
            "input not found: {}",
            a.input.display()
        )));
    }
    let model: Box<dyn classifiers::TextClassifier> = if a.model.is_dir() {
        classifiers::load_model(&a.model).map_err(|e| CliError::Config(format!("--model: {e}")))?
    } else {
        // fastText: curate's training normalization unless told otherwise.
        let ft = classifiers::fasttext::FastText::load(&a.model)
            .map_err(|e| CliError::Config(format!("--model: {e}")))?;
        Box::new(classifiers::fasttext::FastTextClassifier {
            model: std::sync::Arc::new(ft),
            preprocess: classifiers::fasttext::Preprocess {
                lowercase: !a.no_lowercase,
                split_punct: !a.no_split_punct,
                ..Default::default()
            },
        })
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    let fields = Fields {
        id: a.id_field.clone(),
        text: a.text_field.clone(),
        label: None,
    };
    let mut rows = records::open(&a.input, &fields)?;
    let tmp = a.out.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?,
    );
    let labels = model.labels().to_vec();
    let batch = a.batch_size.max(1);
    let chunk = batch * pool.current_num_threads().max(1) * 4;
    let (mut n, mut skipped) = (0u64, 0u64);
    loop {
        let block: Vec<_> = rows.by_ref().take(chunk).collect();
        if block.is_empty() {
            break;
        }
        let texts: Vec<&str> = block
            .iter()
            .map(|r| match r {
                Ok(Record { text: Some(t), .. }) => t.as_str(),
                _ => "",
            })
            .collect();
        let scores: Vec<Vec<f32>> = pool
            .install(|| {
                texts
                    .par_chunks(batch)
                    .map(|c| model.predict(c))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?
            .into_iter()
            .flatten()
            .collect();
        for (r, s) in block.iter().zip(scores) {
            let line = match r {
                Ok(Record {
                    row,
                    id,
                    text: Some(_),
                    ..
                }) => {
                    let best = s
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                        .map(|(i, _)| labels[i].clone());
                    let scores: serde_json::Map<String, serde_json::Value> = labels
                        .iter()
                        .zip(&s)
                        .map(|(l, p)| (l.clone(), serde_json::json!(p)))
                        .collect();
                    serde_json::json!({"id": id.clone().unwrap_or_else(|| row.to_string()), "label": best, "scores": scores})
                }
                Ok(Record { row, id, .. }) => {
                    skipped += 1;
                    serde_json::json!({"id": id.clone().unwrap_or_else(|| row.to_string()), "label": null, "scores": {}, "skipped": "missing_text"})
                }
                Err((row, reason)) => {
                    skipped += 1;
                    serde_json::json!({"id": row.to_string(), "label": null, "scores": {}, "skipped": reason})
                }
            };
            writeln!(out, "{line}").context("writing output")?;
            n += 1;
        }
    }
    out.flush().context("writing output")?;
    drop(out);
    std::fs::rename(&tmp, &a.out).with_context(|| format!("{}", a.out.display()))?;
    eprintln!(
        "classified {n} rows with {} ({}), {skipped} skipped -> {}",
        a.model.display(),
        model.kind(),
        a.out.display()
    );
    Ok(())
}
