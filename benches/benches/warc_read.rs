//! WARC read + HTTP parse + charset decode of ../shared/data/warc/trafilatura-eval-pages.warc.gz
//! (1,033 real pages, 29 MB gzip, 150 MB of HTML), single thread, side by side with datatrove's
//! WarcReader (warcio + cchardet + python-magic) measured in the same run.
//!
//! Run: cargo bench -p curate-benches --bench warc_read
//! Env: WARC_BENCH_FILE (another input), WARC_BENCH_REPS (default 5), CURATE_PEERS.

use std::sync::Arc;

use curate_benches::{best_of, peer_python, repo_root, report, run_peer, shared_dir};
use stages::read::{read_docs, Format, ReadEvent, ReadOptions};

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let file = std::env::var("WARC_BENCH_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| shared.join("data/warc/trafilatura-eval-pages.warc.gz"));
    if !file.exists() {
        eprintln!("skipped: {} not found", file.display());
        return;
    }
    let reps: usize = std::env::var("WARC_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // Read from memory so that the figure is the parser's, not the disk's.
    let data = Arc::new(std::fs::read(&file).expect("read input"));
    let name: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    let opts = ReadOptions::default();

    let run = || {
        let input = std::io::Cursor::new(ArcBytes(data.clone()));
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
    let secs = best_of(reps, || {
        std::hint::black_box(run());
    });

    println!(
        "input: {} ({:.1} MB), {docs} docs, {skips} skips, {:.1} MB of decoded HTML",
        file.display(),
        data.len() as f64 / 1e6,
        html_bytes as f64 / 1e6
    );
    let peer = peer_python("dt").and_then(|py| {
        let script = repo_root().join("benches/peers/datatrove_warc_read.py");
        run_peer(&py, &[script.to_str()?, file.to_str()?])
    });
    let peer_rate = peer.as_ref().and_then(|p| {
        let d = p["docs"].as_f64()?;
        let s = p["seconds"].as_f64()?;
        let b = p["html_bytes"].as_u64()? as usize;
        report("datatrove WarcReader (1 thread)", d as usize, b, s, None);
        Some(d / s)
    });
    if peer.is_none() {
        eprintln!("peer skipped: ~/.cache/curate-peers/dt not found (or it failed)");
    }
    report(
        "curate WARC reader (1 thread)",
        docs,
        html_bytes,
        secs,
        peer_rate,
    );
    // Compressed input rate, the figure that sizes a crawl job.
    println!(
        "curate input rate: {:.1} MB/s of .warc.gz",
        data.len() as f64 / secs / 1e6
    );
}

/// Shares the input between repetitions without copying it.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
