//! WARC read + HTTP parse + charset decode of ../shared/data/warc/trafilatura-eval-pages.warc.gz
//! (1,033 real pages, 29 MB gzip, 150 MB of HTML), single thread, side by side with datatrove's
//! WarcReader (warcio + cchardet + python-magic) measured in the same run.
//!
//! Run: cargo bench -p curate-benches --bench warc_read
//! Env: WARC_BENCH_FILE (another input), WARC_BENCH_REPS (default 5), CURATE_PEERS.
//! Both systems are timed alike: each reads the file from disk (the page cache, after a first
//! untimed pass) `reps` times and keeps its best pass, on both clocks (wall and CPU time of the
//! reading thread / process). The headline ratio is warm against warm on the same clock; the
//! peer's first (cold) pass is printed for reference only. On a shared machine CPU time is the
//! steadier measure of the per-core cost.

use std::sync::Arc;

use curate_benches::{best_wall_cpu, peer_python, repo_root, report, run_peer, warc_bench_input};
use stages::read::{read_docs, Format, ReadEvent, ReadOptions};

fn main() {
    let Some((file, reps)) = warc_bench_input("WARC_BENCH_FILE", "WARC_BENCH_REPS", 5) else {
        return;
    };
    // From the file, as datatrove reads it (page-cached after the first pass for both).
    let input_bytes = std::fs::metadata(&file).expect("input").len() as f64;
    let name: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    let opts = ReadOptions::default();

    let run = || {
        let input = std::fs::File::open(&file).expect("open input");
        let mut docs = 0usize;
        let mut html_bytes = 0usize;
        let mut skips = 0usize;
        for ev in read_docs(Format::Warc, name.clone(), Box::new(input), 0, None, &opts) {
            match ev {
                ReadEvent::Doc(d) => {
                    docs += 1;
                    html_bytes += d.html.as_ref().map_or(0, |h| h.len());
                }
                ReadEvent::Skip { .. } => skips += 1,
            }
        }
        (docs, html_bytes, skips)
    };
    let (docs, html_bytes, skips) = run();
    let (wall, cpu) = best_wall_cpu(reps, || {
        std::hint::black_box(run());
    });

    println!(
        "input: {} ({:.1} MB), {docs} docs, {skips} skips, {:.1} MB of decoded HTML; best of {reps} warm passes each",
        file.display(),
        input_bytes / 1e6,
        html_bytes as f64 / 1e6
    );
    let peer = peer_python("dt").and_then(|py| {
        let script = repo_root().join("benches/peers/datatrove_warc_read.py");
        // One cold pass, then `reps` warm ones: the same warm passes as curate's.
        let repeat = (reps + 1).to_string();
        run_peer(
            &py,
            &[script.to_str()?, file.to_str()?, "--repeat", &repeat],
        )
    });
    let mut rates = None;
    if let Some(p) = &peer {
        let d = p["docs"].as_f64().unwrap_or(0.0);
        let b = p["html_bytes"].as_u64().unwrap_or(0) as usize;
        let s = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        for (clock, ours, key) in [
            (
                "CPU time of the reading thread / process (per-core cost)",
                cpu,
                "cpu_s",
            ),
            (
                "wall clock (other processes on the machine count against both)",
                wall,
                "wall_s",
            ),
        ] {
            println!("-- {clock}");
            report(
                "datatrove WarcReader, warm",
                d as usize,
                b,
                s(&format!("warm_{key}")),
                None,
            );
            report(
                "curate WARC reader vs warm (headline)",
                docs,
                html_bytes,
                ours,
                Some(d / s(&format!("warm_{key}"))),
            );
            report(
                "(datatrove WarcReader, cold first pass)",
                d as usize,
                b,
                s(&format!("cold_{key}")),
                None,
            );
        }
        rates = Some(());
    }
    if rates.is_none() {
        eprintln!("peer skipped: ~/.cache/curate-peers/dt not found (or it failed)");
        report("curate WARC reader (wall)", docs, html_bytes, wall, None);
        report("curate WARC reader (CPU)", docs, html_bytes, cpu, None);
    }
    // Compressed input rate, the figure that sizes a crawl job.
    println!(
        "curate input rate: {:.1} MB/s of input per core (CPU time)",
        input_bytes / cpu / 1e6
    );
}
