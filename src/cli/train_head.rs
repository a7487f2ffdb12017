//! `curate train head`: a linear classifier on a transformer encoder's pooled embeddings, or
//! on a static model's embeddings (`curate distill`).
//!
//! Reads labelled documents (JSONL, .gz/.zst, or Parquet: a text and a label column, or
//! `LABEL=PATH` for a file whose documents all carry one label), embeds them with the encoder
//! (an ONNX model directory), holds out a validation split by document group, fits the head
//! (`classifiers::onnx::train`), reports validation metrics, refits on every document, and
//! writes a model directory that `classify.onnx`, `curate classify` and `load_model` serve:
//! the encoder's `model.onnx` and `tokenizer.json`, `head.json`, `curate.json`, and
//! `train_report.json`. With a static model as the encoder, the directory holds the static
//! model's files with `head.json` named in its `static.json`, which `load_model` serves.
//!
//! Groups: the `--group-field` column, else the id up to `#` (the classifier data's
//! `<source>/<package>/<path>#<chunk>`: all chunks of a file fall on one side). A group is in
//! validation when `int(sha1(group)[:8], 16) % valid_mod == 0`; `--exclude-test` drops the
//! data README's kept-aside test rule (`% 5 == 0`) first, for sources that were not pre-split.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Context};

use crate::split;
use classifiers::onnx::train::{self, HeadOptions};
use classifiers::onnx::{
    Device, Encoder, EncoderOptions, ModelFile, Pooling, RuntimeOptions, Truncation,
};
use classifiers::static_embed::{self, StaticModel};
use stages::read::{ReadEvent, ReadOptions};

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct TrainHeadArgs {
    /// The encoder: an ONNX model directory (model.onnx + tokenizer.json) or a static model
    /// (static.json, from `curate distill`).
    #[arg(long)]
    pub encoder: PathBuf,
    /// Training data: PATH (labels from --label-field) or LABEL=PATH (every document of the file
    /// has LABEL). JSONL (.gz/.zst) or Parquet. Repeatable.
    #[arg(long = "input", required = true)]
    pub inputs: Vec<String>,
    /// The column holding the label.
    #[arg(long, default_value = "label")]
    pub label_field: String,
    #[arg(long, default_value = "text")]
    pub text_field: String,
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// The column naming a document's group (default: the id up to `#`).
    #[arg(long)]
    pub group_field: Option<String>,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Validation: groups with sha1(group) % K == 0 (0: no validation).
    #[arg(long, default_value_t = 4)]
    pub valid_mod: u32,
    /// Drop documents of the data README's test split (sha1(group) % 5 == 0) before anything.
    #[arg(long)]
    pub exclude_test: bool,
    /// Save the head fitted on the training split only (default: refit on all documents after
    /// validation).
    #[arg(long)]
    pub no_refit: bool,
    /// Tokens per document, special tokens included.
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    #[arg(long, value_enum, default_value = "head")]
    pub truncation: TruncationArg,
    #[arg(long, value_enum, default_value = "mean")]
    pub pooling: PoolingArg,
    /// Do not L2-normalise pooled embeddings.
    #[arg(long)]
    pub no_normalize: bool,
    /// Adam steps (full batch).
    #[arg(long, default_value_t = 400)]
    pub steps: usize,
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// L2 penalty on the (standardised) weights.
    #[arg(long, default_value_t = 1e-3)]
    pub l2: f64,
    /// Do not weight classes inversely to their frequency.
    #[arg(long)]
    pub no_balance: bool,
    /// Documents per onnxruntime run.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// libonnxruntime.so (else ORT_DYLIB_PATH).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum TruncationArg {
    Head,
    HeadTail,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PoolingArg {
    Mean,
    Cls,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

/// One labelled document.
struct Example {
    group: String,
    label: String,
    text: String,
}

pub fn run(a: TrainHeadArgs) -> Result<(), CliError> {
    if a.max_length < 4 {
        return Err(CliError::Config("--max-length: must be at least 4".into()));
    }
    if a.steps == 0
        || a.batch_size == 0
        || a.lr.is_nan()
        || a.lr <= 0.0
        || a.l2.is_nan()
        || a.l2 < 0.0
    {
        return Err(CliError::Config(
            "--steps, --batch-size and --lr must be positive, --l2 not negative".into(),
        ));
    }
    let mut inputs = Vec::new();
    for spec in &a.inputs {
        let (label, path) = split_input(spec);
        if !path.is_file() {
            return Err(CliError::Config(format!(
                "--input {spec}: no such file {}",
                path.display()
            )));
        }
        inputs.push((label, path));
    }
    let threads = if a.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        a.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| anyhow!("{e}"))?;
    pool.install(|| train(&a, &inputs))
        .map_err(CliError::Failed)
}

/// `LABEL=PATH` or `PATH`.
fn split_input(spec: &str) -> (Option<String>, PathBuf) {
    if Path::new(spec).exists() {
        return (None, spec.into());
    }
    match spec.split_once('=') {
        Some((l, p)) if !l.is_empty() && !l.contains('/') => (Some(l.to_string()), p.into()),
        _ => (None, spec.into()),
    }
}

fn read_examples(
    a: &TrainHeadArgs,
    label: Option<&str>,
    path: &Path,
) -> anyhow::Result<(Vec<Example>, u64)> {
    let opts = ReadOptions {
        text_field: a.text_field.clone(),
        id_field: a.id_field.clone(),
        ..Default::default()
    };
    let uri = path.to_string_lossy().into_owned();
    let events: Box<dyn Iterator<Item = ReadEvent> + Send> = if uri.ends_with(".parquet") {
        crate::io::input_parquet::read(&uri, &Default::default(), &opts)
            .map_err(|e| anyhow!("{e}"))?
    } else {
        let f = std::fs::File::open(path).with_context(|| uri.clone())?;
        Box::new(stages::read::jsonl::JsonlReader::new(
            uri.as_str().into(),
            Box::new(f),
            0,
            None,
            opts,
        ))
    };
    let mut out = Vec::new();
    let mut skipped = 0u64;
    for ev in events {
        let ReadEvent::Doc(d) = ev else {
            skipped += 1;
            continue;
        };
        let l = match label {
            Some(l) => l.to_string(),
            None => match d.metadata.get(&a.label_field) {
                Some(l) if !l.is_empty() => l.clone(),
                _ => {
                    skipped += 1;
                    continue;
                }
            },
        };
        let group = match &a.group_field {
            Some(g) => d.metadata.get(g).cloned().unwrap_or_else(|| d.id.clone()),
            None => split::group(&d.id).to_string(),
        };
        out.push(Example {
            group,
            label: l,
            text: d.text().to_string(),
        });
    }
    Ok((out, skipped))
}

fn train(a: &TrainHeadArgs, inputs: &[(Option<String>, PathBuf)]) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut examples = Vec::new();
    let mut skipped = 0;
    for (label, path) in inputs {
        let (ex, s) = read_examples(a, label.as_deref(), path)?;
        eprintln!("{}: {} documents ({s} skipped)", path.display(), ex.len());
        examples.extend(ex);
        skipped += s;
    }
    if a.exclude_test {
        let before = examples.len();
        examples.retain(|e| !split::group_is_test(&e.group));
        eprintln!(
            "--exclude-test: {} documents dropped",
            before - examples.len()
        );
    }
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    labels.sort();
    labels.dedup();
    if labels.len() < 2 {
        bail!("need documents of at least two labels, found {labels:?}");
    }
    let y: Vec<usize> = examples
        .iter()
        .map(|e| labels.binary_search(&e.label).expect("known label"))
        .collect();

    let opts = EncoderOptions {
        runtime: RuntimeOptions {
            library: a.ort_library.clone(),
            device: match a.device {
                DeviceArg::Cpu => Device::Cpu,
                DeviceArg::Cuda => Device::Cuda,
            },
            device_id: 0,
            threads: 1,
        },
        batch_size: a.batch_size,
        max_length: Some(a.max_length),
        truncation: Some(match a.truncation {
            TruncationArg::Head => Truncation::Head,
            TruncationArg::HeadTail => Truncation::HeadTail,
        }),
        pooling: Some(match a.pooling {
            PoolingArg::Mean => Pooling::Mean,
            PoolingArg::Cls => Pooling::Cls,
        }),
        normalize: Some(!a.no_normalize),
        max_sessions: None,
    };
    let encoder = if static_embed::is_static(&a.encoder) {
        Embedder::Static(Box::new(
            StaticModel::open(&a.encoder).map_err(|e| anyhow!("--encoder: {e}"))?,
        ))
    } else {
        Embedder::Onnx(Box::new(
            Encoder::open(&a.encoder, &opts).map_err(|e| anyhow!("--encoder: {e}"))?,
        ))
    };
    let t_embed = Instant::now();
    let mut x: Vec<Vec<f32>> = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(1024) {
        let texts: Vec<&str> = chunk.iter().map(|e| e.text.as_str()).collect();
        x.extend(match &encoder {
            Embedder::Onnx(e) => e.embed(&texts).map_err(|e| anyhow!("{e}"))?,
            Embedder::Static(m) => m.embed(&texts),
        });
        eprintln!("embedded {}/{}", x.len(), examples.len());
    }
    let embed_s = t_embed.elapsed().as_secs_f64();
    let docs_per_s = examples.len() as f64 / embed_s;
    let stats = EmbedStats {
        t0,
        embed_s,
        docs_per_s,
        skipped,
    };

    let hopts = HeadOptions {
        steps: a.steps,
        lr: a.lr,
        l2: a.l2,
        balance: !a.no_balance,
    };
    let is_valid: Vec<bool> = examples
        .iter()
        .map(|e| split::group_in_fold(&e.group, a.valid_mod))
        .collect();
    let mut validation = None;
    let mut head = None;
    if is_valid.iter().any(|&v| v) {
        let pick = |want: bool| -> (Vec<Vec<f32>>, Vec<usize>) {
            let mut xs = Vec::new();
            let mut ys = Vec::new();
            for ((xi, &yi), &v) in x.iter().zip(&y).zip(&is_valid) {
                if v == want {
                    xs.push(xi.clone());
                    ys.push(yi);
                }
            }
            (xs, ys)
        };
        let (xt, yt) = pick(false);
        let (xv, yv) = pick(true);
        let h = train::fit(&xt, &yt, &labels, &hopts);
        let mut logits = Vec::new();
        let p: Vec<Vec<f32>> = xv
            .iter()
            .map(|r| {
                h.apply(r, &mut logits);
                classifiers::onnx::activate(&logits, classifiers::onnx::Activation::Softmax)
            })
            .collect();
        let m = train::evaluate(&p, &yv, &labels);
        print_metrics(&m, xt.len());
        validation = Some(m);
        if a.no_refit {
            head = Some(h);
        }
    }
    let head = match head {
        Some(h) => h,
        None => train::fit(&x, &y, &labels, &hopts),
    };

    // The model directory.
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let write = |name: &str, v: &dyn erased::Json| -> anyhow::Result<()> {
        let p = a.out.join(name);
        std::fs::write(&p, v.json()).with_context(|| p.display().to_string())
    };
    let spec = match &encoder {
        Embedder::Onnx(e) => e.spec(),
        Embedder::Static(m) => {
            // The static model's files, with the head named in its static.json.
            let mut meta = m.meta().clone();
            for name in ["vectors.bin", "tokenizer.json"] {
                link_or_copy(&m.dir().join(name), &a.out.join(name))?;
            }
            meta.head = Some("head.json".into());
            meta.tokenizer = None;
            write("head.json", &head)?;
            write(static_embed::META_FILE, &meta)?;
            return finish(a, &examples, &labels, &is_valid, validation, &hopts, stats);
        }
    };
    for (src, name) in [
        (&spec.model_path, "model.onnx"),
        (&spec.tokenizer_path, "tokenizer.json"),
    ] {
        link_or_copy(src, &a.out.join(name))?;
    }
    write("head.json", &head)?;
    let file = ModelFile {
        labels: Some(labels.clone()),
        pooling: Some(spec.pooling),
        normalize: Some(spec.normalize),
        max_length: Some(spec.max_length),
        truncation: Some(spec.truncation),
        head: Some("head.json".into()),
        ..Default::default()
    };
    write("curate.json", &file)?;
    finish(a, &examples, &labels, &is_valid, validation, &hopts, stats)
}

/// What `train_report.json` records beside the data and metrics.
struct EmbedStats {
    t0: Instant,
    embed_s: f64,
    docs_per_s: f64,
    skipped: u64,
}

/// Writes `train_report.json` and says where the model went.
fn finish(
    a: &TrainHeadArgs,
    examples: &[Example],
    labels: &[String],
    is_valid: &[bool],
    validation: Option<train::Metrics>,
    hopts: &HeadOptions,
    stats: EmbedStats,
) -> anyhow::Result<()> {
    let EmbedStats {
        t0,
        embed_s,
        docs_per_s,
        skipped,
    } = stats;
    let write = |name: &str, v: &dyn erased::Json| -> anyhow::Result<()> {
        let p = a.out.join(name);
        std::fs::write(&p, v.json()).with_context(|| p.display().to_string())
    };
    let counts: std::collections::BTreeMap<&str, usize> = labels
        .iter()
        .map(|l| {
            (
                l.as_str(),
                examples.iter().filter(|e| &e.label == l).count(),
            )
        })
        .collect();
    let report = serde_json::json!({
        "encoder": a.encoder.display().to_string(),
        "inputs": a.inputs,
        "documents": examples.len(),
        "skipped": skipped,
        "per_label": counts,
        "validation_documents": is_valid.iter().filter(|&&v| v).count(),
        "validation": validation,
        "refit_on_all": !a.no_refit,
        "head_options": hopts,
        "embed_seconds": embed_s,
        "embed_docs_per_s": docs_per_s,
        "threads": rayon::current_num_threads(),
        "seconds": t0.elapsed().as_secs_f64(),
    });
    write("train_report.json", &report)?;
    eprintln!(
        "embedded {} documents at {docs_per_s:.1} docs/s on {} threads; wrote {}",
        examples.len(),
        rayon::current_num_threads(),
        a.out.display()
    );
    Ok(())
}

/// The encoder of the training documents.
enum Embedder {
    Onnx(Box<Encoder>),
    Static(Box<StaticModel>),
}

/// A hard link (free when both lie on one file system), else a copy.
fn link_or_copy(src: &Path, dst: &Path) -> anyhow::Result<()> {
    if dst.exists() {
        std::fs::remove_file(dst).with_context(|| dst.display().to_string())?;
    }
    if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).with_context(|| format!("copy {}", src.display()))?;
    }
    Ok(())
}

/// Pretty JSON of anything serializable, behind a trait object.
mod erased {
    pub trait Json {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> Vec<u8> {
            let mut v = serde_json::to_vec_pretty(self).expect("serializable");
            v.push(b'\n');
            v
        }
    }
}

fn print_metrics(m: &train::Metrics, trained_on: usize) {
    println!(
        "validation: {} documents (trained on {trained_on}): accuracy {:.4}, macro-F1 {:.4}",
        m.docs, m.accuracy, m.macro_f1
    );
    println!(
        "{:<16} {:>8} {:>9} {:>7} {:>7} {:>7}",
        "label", "support", "precision", "recall", "F1", "AUC"
    );
    for l in &m.labels {
        println!(
            "{:<16} {:>8} {:>9.4} {:>7.4} {:>7.4} {:>7.4}",
            l.label, l.support, l.precision, l.recall, l.f1, l.auc
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_with_a_label() {
        assert_eq!(
            split_input("web=/x/y.jsonl"),
            (Some("web".into()), "/x/y.jsonl".into())
        );
        assert_eq!(split_input("/x/a=b.jsonl"), (None, "/x/a=b.jsonl".into()));
        assert_eq!(split_input("y.jsonl"), (None, "y.jsonl".into()));
    }
}
