//! Mix planning speed: selection over a 10M-document signal table (synthetic rows with the
//! shape of real ones: four buckets, long-tailed token counts, quality scores).
//!
//! The whole selection must take under 30 s with the DataFusion scan included; this measures
//! the planner's part alone. Run: cargo bench -p curate-benches --bench mix

use std::time::Instant;

use stages::mix::{plan, Candidate, MixConfig};

fn main() {
    let n: usize = std::env::var("MIX_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let t = Instant::now();
    let cands: Vec<Candidate> = (0..n)
        .map(|_| {
            let r = next();
            // Buckets skewed like web data: mostly general, little math.
            let bucket = match r % 100 {
                0..=69 => 0,
                70..=74 => 1,
                75..=84 => 2,
                _ => 3,
            };
            // Long-tailed lengths: 50 to ~20k tokens.
            let tokens = 50 + ((r >> 8) % 1000) * ((r >> 20) % 20 + 1);
            Candidate {
                key: next(),
                bucket,
                tokens: tokens as u32,
                quality: ((r >> 40) % 10_000) as f32 / 10_000.0,
                source: ((r >> 60) % 4) as u32,
            }
        })
        .collect();
    let gen = t.elapsed().as_secs_f64();
    let buckets: Vec<String> = ["general", "math", "code", "multilingual"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sources: Vec<String> = (0..4).map(|i| format!("crawl-{i}")).collect();
    let total: u64 = cands.iter().map(|c| c.tokens as u64).sum();
    println!("mix: {n} candidate rows, {total} tokens (generated in {gen:.1} s)");
    for (what, table) in [
        (
            "quality, budget 30% of data",
            format!("total_tokens = {}", total * 3 / 10),
        ),
        (
            "uniform, budget from data",
            "sampling = 'uniform'".to_string(),
        ),
        (
            "weighted, short math x4",
            format!("sampling = 'weighted'\ntotal_tokens = {}", total),
        ),
    ] {
        let cfg = MixConfig::from_table(&table.parse().unwrap(), 42).unwrap();
        let t = Instant::now();
        let p = plan(&cands, &buckets, &sources, &cfg);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{what:<32} {secs:>6.2} s  {:>10.0} rows/s  {} docs, {} tokens, {} warnings",
            n as f64 / secs,
            p.report.documents,
            p.report.tokens,
            p.report.warnings.len()
        );
        if what.starts_with("weighted") {
            print!("{}", p.report.to_table());
        }
    }
}
