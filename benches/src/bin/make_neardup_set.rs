//! Writes the labelled near-duplicate set (see `curate_benches::neardup`) as two JSONL files:
//! `docs.jsonl` (`{"id", "text"}`, the input of a dedup run) and `pairs.jsonl` (`{"base",
//! "variant", "op", "jaccard"}`, the labels).
//!
//! Usage: make_neardup_set [OUT_DIR] [SEED] [MAX_PAIRS]   (default: neardup 1 0)

use std::io::Write;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).map_or("neardup", |s| s.as_str()));
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let max: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let Some(shared) = curate_benches::shared_dir() else {
        eprintln!("../shared not found");
        std::process::exit(1);
    };
    let texts = curate_benches::neardup::read_texts(
        &shared.join("data/corpora/warc-extracted-texts.jsonl.gz"),
    )?;
    let set = curate_benches::neardup::build(&texts, seed, max);
    std::fs::create_dir_all(&out)?;
    let mut docs = std::io::BufWriter::new(std::fs::File::create(out.join("docs.jsonl"))?);
    for (id, text) in &set.docs {
        writeln!(docs, "{}", serde_json::json!({"id": id, "text": text}))?;
    }
    let mut pairs = std::io::BufWriter::new(std::fs::File::create(out.join("pairs.jsonl"))?);
    for p in &set.pairs {
        writeln!(
            pairs,
            "{}",
            serde_json::json!({"base": p.base, "variant": p.variant, "op": p.op, "jaccard": p.jaccard})
        )?;
    }
    eprintln!(
        "{} documents, {} pairs -> {}",
        set.docs.len(),
        set.pairs.len(),
        out.display()
    );
    Ok(())
}
