//! `curate distill`: a static embedding model from an ONNX sentence encoder
//! (`classifiers::static_embed::distill`), for `dedup.semantic` and `curate train head`.
//!
//! Token frequencies come from the `--text` files (JSONL, .gz/.zst: a `text` and an `id`
//! column). `--exclude-test` drops the data README's kept-aside split and `--exclude-valid K`
//! a validation split (both by `int(sha1(group)[:8], 16) % K == 0`, the group being the id up
//! to `#`), so that no text scored later was counted.
//!
//! `--fit-text` files (same format, same exclusions) add step 5: the teacher embeds windows of
//! them and the token table is fitted to those embeddings (`static_embed::fit`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context};
use classifiers::onnx::{Device, Encoder, EncoderOptions, Pooling, RuntimeOptions};
use classifiers::static_embed::{distill_with, DistillOptions, FitOptions, PositionWeight};
use stages::read::{ReadEvent, ReadOptions};

use super::CliError;
use crate::split;

#[derive(Debug, clap::Args)]
pub struct DistillArgs {
    /// The teacher: an ONNX sentence encoder directory (model.onnx + tokenizer.json).
    #[arg(long)]
    pub encoder: PathBuf,
    /// Text for token frequencies: JSONL (.gz/.zst) with `text` (repeatable).
    #[arg(long = "text", required = true)]
    pub texts: Vec<PathBuf>,
    /// The model directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// PCA components kept.
    #[arg(long, default_value_t = 256)]
    pub dims: usize,
    /// Smooth inverse frequency constant: weight = a / (a + p(token)).
    #[arg(long, default_value_t = 1e-3)]
    pub sif_a: f64,
    /// Common directions of document embeddings projected out of the token vectors.
    #[arg(long, default_value_t = classifiers::static_embed::distill::REMOVE_COMPONENTS)]
    pub remove_components: usize,
    /// Tokens of a document summed (default: the teacher's max length less special tokens).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// The teacher's max length in tokens (special tokens included).
    #[arg(long, default_value_t = 128)]
    pub max_length: usize,
    /// Drop texts of the README test split (sha1(group) % 5 == 0).
    #[arg(long)]
    pub exclude_test: bool,
    /// Drop texts of a validation split (sha1(group) % K == 0; 0: none).
    #[arg(long, default_value_t = 0)]
    pub exclude_valid: u32,
    /// Text whose windows the table is fitted to (teacher embeddings; repeatable): JSONL
    /// (.gz/.zst) with `text`. None: no fit.
    #[arg(long = "fit-text")]
    pub fit_texts: Vec<PathBuf>,
    /// Most windows the teacher embeds for the fit.
    #[arg(long, default_value_t = FitOptions::default().windows)]
    pub fit_windows: usize,
    /// Most windows per fit text.
    #[arg(long, default_value_t = FitOptions::default().per_text)]
    pub fit_per_text: usize,
    /// The fit's pull toward the distilled vectors (relative ridge).
    #[arg(long, default_value_t = FitOptions::default().lambda)]
    pub fit_lambda: f64,
    /// Conjugate-gradient iterations of the fit.
    #[arg(long, default_value_t = FitOptions::default().iterations)]
    pub fit_iterations: usize,
    /// Mixed windows added to the fit (the head of one window joined to the tail of another).
    #[arg(long, default_value_t = FitOptions::default().mixed)]
    pub fit_mixed: usize,
    /// Pair rows of the fit (0: none): the K pairs of windows the first solve puts closest
    /// relative to the teacher, fitted again as differences (docs/onnx.md: tried, not the
    /// default).
    #[arg(long, default_value_t = FitOptions::default().pairs)]
    pub fit_pairs: usize,
    /// The weight of the pair rows.
    #[arg(long, default_value_t = FitOptions::default().pair_weight)]
    pub fit_pair_weight: f64,
    /// Position weights: token p of the window weighs 1 + boost * exp(-p / scale) (0: all
    /// tokens alike).
    #[arg(long, default_value_t = PositionWeight::DEFAULT.boost)]
    pub position_boost: f64,
    /// The decay length of the position weights, in tokens.
    #[arg(long, default_value_t = PositionWeight::DEFAULT.scale)]
    pub position_scale: f64,
    /// A directory to keep the teacher's outputs in, reused by later runs on the same inputs.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// libonnxruntime.so (else ORT_DYLIB_PATH).
    #[arg(long)]
    pub ort_library: Option<PathBuf>,
}

impl DistillArgs {
    fn position_weight(&self) -> PositionWeight {
        PositionWeight {
            boost: self.position_boost,
            scale: self.position_scale,
        }
    }
}

pub fn run(a: DistillArgs) -> Result<(), CliError> {
    if a.dims == 0 || a.max_length < 4 || a.max_tokens == Some(0) {
        return Err(CliError::Config(
            "--dims and --max-tokens must be positive, --max-length at least 4".into(),
        ));
    }
    if let Some(m) = a.position_weight().check() {
        return Err(CliError::Config(format!(
            "--position-boost/--position-scale: {m}"
        )));
    }
    if a.fit_pair_weight.is_nan() || a.fit_pair_weight <= 0.0 {
        return Err(CliError::Config(
            "--fit-pair-weight must be positive".into(),
        ));
    }
    if a.sif_a.is_nan() || a.sif_a <= 0.0 {
        return Err(CliError::Config("--sif-a must be positive".into()));
    }
    if !a.fit_texts.is_empty() && (a.fit_lambda.is_nan() || a.fit_lambda <= 0.0) {
        return Err(CliError::Config("--fit-lambda must be positive".into()));
    }
    for p in a.texts.iter().chain(&a.fit_texts) {
        if !p.is_file() {
            return Err(CliError::Config(format!(
                "--text/--fit-text: no such file {}",
                p.display()
            )));
        }
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
    pool.install(|| go(&a)).map_err(CliError::Failed)
}

fn go(a: &DistillArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let texts = read_texts(a, &a.texts)?;
    let fit_texts = read_texts(a, &a.fit_texts)?;
    let opts = EncoderOptions {
        runtime: RuntimeOptions {
            library: a.ort_library.clone(),
            device: Device::Cpu,
            device_id: 0,
            threads: 1,
        },
        // The encoder's default, 32: a batch's activations are the teacher pass's memory
        // (batches of 256 windows of 128 tokens held about 2 GB per thread), and larger
        // batches are no faster on CPUs. The semantic bench's teacher uses the same.
        batch_size: EncoderOptions::default().batch_size,
        max_length: Some(a.max_length),
        truncation: None,
        pooling: Some(Pooling::Mean),
        normalize: Some(false),
        max_sessions: None,
    };
    let encoder = Encoder::open(&a.encoder, &opts).map_err(|e| anyhow!("--encoder: {e}"))?;
    let d = DistillOptions {
        dims: a.dims,
        sif_a: a.sif_a,
        max_tokens: a.max_tokens,
        batch_size: 256,
        remove_components: a.remove_components,
        fit: FitOptions {
            windows: a.fit_windows,
            per_text: a.fit_per_text.max(1),
            lambda: a.fit_lambda,
            iterations: a.fit_iterations,
            mixed: a.fit_mixed,
            pairs: a.fit_pairs,
            pair_weight: a.fit_pair_weight,
            ..FitOptions::default()
        },
        position_weight: (a.position_boost > 0.0).then_some(a.position_weight()),
        cache: a.cache.clone(),
    };
    let fit: Vec<&str> = fit_texts.iter().map(|s| s.as_str()).collect();
    let r = distill_with(&encoder, texts.iter().map(|s| s.as_str()), &fit, &d, &a.out)
        .map_err(|e| anyhow!("{e}"))?;
    let mut report = serde_json::to_value(&r)?;
    report["seconds"] = serde_json::json!(t0.elapsed().as_secs_f64());
    report["threads"] = serde_json::json!(rayon::current_num_threads());
    report["texts"] = serde_json::json!(a.texts);
    let p = a.out.join("distill_report.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&report)?)
        .with_context(|| p.display().to_string())?;
    println!(
        "distilled {} tokens x {} dims (PCA keeps {:.1}% of the variance) from {} tokens of {} \
         texts ({:.0} s embedding tokens); wrote {}",
        r.vocab,
        r.dim,
        100.0 * r.explained_variance,
        r.frequency_tokens,
        r.frequency_documents,
        r.embed_seconds,
        a.out.display()
    );
    if let Some(f) = &r.fit {
        println!(
            "fitted to {} windows ({} tokens seen): mean cosine to the teacher {:.3} -> {:.3} \
             (in-sample), relative residual {:.1e}, {:.0} s teacher",
            f.windows,
            f.tokens_fitted,
            f.cosine_before,
            f.cosine_after,
            f.residual,
            f.teacher_seconds
        );
    }
    Ok(())
}

/// The texts of `paths`, less the excluded splits.
fn read_texts(a: &DistillArgs, paths: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for path in paths {
        let uri = path.to_string_lossy().into_owned();
        let f = std::fs::File::open(path).with_context(|| uri.clone())?;
        let reader = stages::read::jsonl::JsonlReader::new(
            uri.as_str().into(),
            Box::new(f),
            0,
            None,
            ReadOptions::default(),
        );
        let (mut kept, mut dropped) = (0u64, 0u64);
        for ev in reader {
            let ReadEvent::Doc(d) = ev else { continue };
            let group = split::group(&d.id);
            if (a.exclude_test && split::group_is_test(group))
                || split::group_in_fold(group, a.exclude_valid)
            {
                dropped += 1;
                continue;
            }
            texts.push(d.text().to_string());
            kept += 1;
        }
        eprintln!("{uri}: {kept} texts ({dropped} in excluded splits)");
    }
    Ok(texts)
}
