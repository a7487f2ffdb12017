//! Trains the extractor's block scorer and writes cross-validated predictions (5 folds split
//! by site) beside those of the rules alone and of the in-sample model.
//!
//! Run: cargo run -p stages --release --example extract_cv -- ../shared DIR [MODEL_OUT]
//! (MODEL_OUT = stages/src/extract/blocks.model rebuilds the shipped model), then score:
//! ~/.cache/curate-peers/ext/bin/python benches/peers/extract_cv.py DIR
//! Env: BLOCKS_THRESHOLD, BLOCKS_L2 (training options; defaults in `TrainOptions`).

use std::path::PathBuf;

use stages::extract::blocks::TrainOptions;
use stages::extract::train;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shared = PathBuf::from(args.first().map_or("../shared", String::as_str));
    let dir = PathBuf::from(args.get(1).map_or("target/extract-cv", String::as_str));
    let t = std::time::Instant::now();
    let pages = train::load_sets(&shared).expect("load the annotated sets");
    let examples = train::examples(&pages);
    let n: usize = examples.iter().map(Vec::len).sum();
    let pos: usize = examples.iter().flatten().filter(|e| e.content).count();
    eprintln!(
        "{} pages, {n} labelled lines ({pos} content), {:.1}s",
        pages.len(),
        t.elapsed().as_secs_f64()
    );
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    let mut opts = TrainOptions::default();
    if let Some(t) = env("BLOCKS_THRESHOLD") {
        opts.threshold = t as f32;
    }
    if let Some(l) = env("BLOCKS_L2") {
        opts.l2 = l;
    }
    if let Some(out) = args.get(2) {
        let m = train::train_on(&examples, |_| true, &opts);
        std::fs::write(out, m.to_text()).expect("write the model");
    }
    train::write_cv(&pages, &examples, 5, &opts, &dir).expect("write predictions");
    eprintln!(
        "predictions in {} ({:.1}s)",
        dir.display(),
        t.elapsed().as_secs_f64()
    );
}
