//! Trains the extractor's block scorer and writes cross-validated predictions (5 folds split
//! by site) beside those of the rules alone and of the in-sample model.
//!
//! Run: cargo run -p stages --release --example extract_cv -- ../shared DIR [MODEL_OUT
//! [RESTORE_OUT]] (stages/src/extract/blocks.model and stages/src/extract/restore.model
//! rebuild the shipped models), then score each:
//! ~/.cache/curate-peers/ext/bin/python benches/peers/extract_cv.py DIR (block scorer)
//! ~/.cache/curate-peers/ext/bin/python benches/peers/extract_cv.py DIR/restore (block scorer
//! and restore; `rules` is the same there). It also prints where the gold text that the
//! cross-validated predictions miss lies. EXTRACT_RESTORE=0: no restore; RESTORE_BASE=trees:
//! its thresholds chosen on top of the block scorer's pruning (default: the rules' text).
//! Env: BLOCKS_MODEL=linear (the logistic model; default: boosted trees); BLOCKS_TREES,
//! BLOCKS_DEPTH, BLOCKS_RATE, BLOCKS_MIN_CHILD (defaults in `TreeOptions`); BLOCKS_CANDIDATES=1
//! (a configuration chosen by nested CV from `TreeOptions::candidates`); BLOCKS_L2;
//! BLOCKS_THRESHOLD fixes the threshold (default: chosen by nested cross-validation, see
//! `train::write_cv`); BLOCKS_RECALL_LOSS (how far the recall may fall in that choice).
//! EXTRACT_SPEED=1: instead, time the extractor with and without the shipped block model on
//! the trafilatura-eval pages, one thread, best of 5 (CPU time of the thread, Linux).

use std::path::PathBuf;

use stages::extract::blocks::TrainOptions;
use stages::extract::gbdt::TreeOptions;
use stages::extract::train;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shared = PathBuf::from(args.first().map_or("../shared", String::as_str));
    let dir = PathBuf::from(args.get(1).map_or("target/extract-cv", String::as_str));
    if std::env::var_os("EXTRACT_SPEED").is_some() {
        return speed(&shared);
    }
    let t = std::time::Instant::now();
    let pages = train::load_sets(&shared).expect("load the annotated sets");
    let examples = train::examples(&pages);
    let labelled = || {
        examples
            .iter()
            .flat_map(|l| &l.examples)
            .filter(|e| e.weight > 0.0)
    };
    let n = labelled().count();
    let pos = labelled().filter(|e| e.content).count();
    eprintln!(
        "{} pages, {n} labelled lines ({pos} content), {:.1}s",
        pages.len(),
        t.elapsed().as_secs_f64()
    );
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let mut opts = TrainOptions::default();
    // A fixed threshold, or one chosen by nested cross-validation (the default).
    let fixed = env("BLOCKS_THRESHOLD");
    if let Some(t) = fixed {
        opts.threshold = t as f32;
        opts.prose_threshold = t as f32;
    }
    if let Some(l) = env("BLOCKS_RECALL_LOSS") {
        opts.max_recall_loss = l;
    }
    if let Some(l) = env("BLOCKS_L2") {
        opts.l2 = l;
    }
    // One tree configuration (the default, or the one the environment names), or with
    // BLOCKS_CANDIDATES=1 the candidates, one of which nested CV chooses.
    let named = [
        "BLOCKS_TREES",
        "BLOCKS_DEPTH",
        "BLOCKS_RATE",
        "BLOCKS_MIN_CHILD",
    ]
    .iter()
    .any(|k| env(k).is_some());
    let configs: Vec<TrainOptions> = if std::env::var("BLOCKS_MODEL").as_deref() == Ok("linear") {
        vec![opts]
    } else if named || std::env::var_os("BLOCKS_CANDIDATES").is_none() {
        let mut t = TreeOptions::default();
        if let Some(v) = env("BLOCKS_TREES") {
            t.trees = v as usize;
        }
        if let Some(v) = env("BLOCKS_DEPTH") {
            t.depth = v as usize;
        }
        if let Some(v) = env("BLOCKS_RATE") {
            t.rate = v;
        }
        if let Some(v) = env("BLOCKS_MIN_CHILD") {
            t.min_child = v;
        }
        vec![TrainOptions {
            trees: Some(t),
            ..opts
        }]
    } else {
        TreeOptions::candidates()
            .into_iter()
            .map(|t| TrainOptions {
                trees: Some(t),
                ..opts.clone()
            })
            .collect()
    };
    // The restore: the default tree configuration, its thresholds by nested CV.
    let restore =
        (std::env::var("EXTRACT_RESTORE").as_deref() != Ok("0")).then(|| train::RestoreOptions {
            train: TrainOptions {
                trees: Some(TreeOptions::default()),
                ..TrainOptions::default()
            },
            on_trees: std::env::var("RESTORE_BASE").as_deref() == Ok("trees"),
        });
    let (m, r) = train::write_cv(
        &pages,
        &examples,
        5,
        &configs,
        fixed.is_none(),
        restore.as_ref(),
        &dir,
    )
    .expect("write predictions");
    if let Some(out) = args.get(2) {
        std::fs::write(out, m.to_text()).expect("write the model");
    }
    if let (Some(out), Some(r)) = (args.get(3), r) {
        std::fs::write(out, stages::extract::restore::to_text(&r)).expect("write the restore");
    }
    eprintln!(
        "predictions in {} ({:.1}s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
}

/// CPU seconds of this thread (`/proc/thread-self/schedstat`: nanoseconds on the CPU).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

fn speed(shared: &std::path::Path) {
    use stages::extract::{ExtractConfig, Extractor};
    let pages = train::load_sets(shared).expect("load the annotated sets");
    let html: Vec<&str> = pages
        .iter()
        .filter(|p| p.dataset == "trafeval")
        .map(|p| p.html.as_str())
        .collect();
    let mb = html.iter().map(|h| h.len()).sum::<usize>() as f64 / 1e6;
    // Both named explicitly: the config's default decides nothing here.
    let with = Extractor::new(ExtractConfig {
        block_model: true,
        ..ExtractConfig::default()
    })
    .expect("default config");
    let without = with.clone().with_model(None);
    let restore = Extractor::new(ExtractConfig {
        block_model: true,
        restore: true,
        ..ExtractConfig::default()
    })
    .expect("default config");
    for (name, ex) in [
        ("rules + block model + restore", &restore),
        ("rules + block model", &with),
        ("rules alone", &without),
    ] {
        let (mut cpu, mut wall) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..5 {
            let (c, t) = (thread_cpu(), std::time::Instant::now());
            for h in &html {
                std::hint::black_box(ex.extract(h).ok());
            }
            cpu = cpu.min(thread_cpu() - c);
            wall = wall.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name}: {} pages, {mb:.1} MB: {:.0} pages/s CPU ({:.0} MB/s), {:.0} pages/s wall",
            html.len(),
            html.len() as f64 / cpu,
            mb / cpu,
            html.len() as f64 / wall
        );
    }
}
