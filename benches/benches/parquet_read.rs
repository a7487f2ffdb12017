//! Parquet input: reading a FineWeb-style file (FineWeb's columns, zstd, row groups of 1,000
//! rows) into documents, single thread, side by side with datatrove's ParquetReader (pyarrow
//! `iter_batches` -> Documents) measured in the same run.
//!
//! Run: cargo bench -p curate-benches --bench parquet_read
//! Input: PARQUET_BENCH_FILE, else one built from the 1,080 real pages of
//! ../shared/data/corpora/warc-extracted-texts.jsonl.gz repeated PARQUET_BENCH_COPIES times
//! (default 20, about 115 MB of text) by scripts/make_parquet_input.py (test Python, pyarrow).
//! Env: PARQUET_BENCH_REPS (default 5), CURATE_PEERS. The peer needs pyarrow in the datatrove
//! environment (`~/.cache/curate-peers/dt/bin/pip install pyarrow`, datatrove's `io` extra).
//! Both systems read the file from the page cache `reps` times after a first untimed pass and
//! keep their best pass, on both clocks (CPU time of the reading thread / process, and wall).
//! Two configurations each, side by side: every other column kept as metadata (both defaults),
//! and no metadata (curate `metadata_fields = []` reads text, id, url and date; datatrove
//! `read_metadata=False` reads text and id). pyarrow may decode with several threads: its CPU
//! time counts them all, its wall time does not, so CPU time is the per-core comparison.

use curate::io::input_parquet::{read_partition, Columns};
use curate_benches::{
    best_wall_cpu, peer_python, repo_root, report, run_peer, shared_dir, test_python,
};
use stages::read::ReadEvent;

fn main() {
    let reps: usize = std::env::var("PARQUET_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = match std::env::var("PARQUET_BENCH_FILE") {
        Ok(f) => std::path::PathBuf::from(f),
        Err(_) => {
            let (Some(shared), Some(py)) = (shared_dir(), test_python()) else {
                eprintln!("skipped: ../shared or the test Python (pyarrow) not found");
                return;
            };
            let copies = std::env::var("PARQUET_BENCH_COPIES").unwrap_or_else(|_| "20".into());
            let ok = std::process::Command::new(py)
                .arg(repo_root().join("scripts/make_parquet_input.py"))
                .arg(shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
                .arg(tmp.path())
                .args(["--copies", &copies, "--row-group-rows", "1000"])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipped: make_parquet_input.py failed");
                return;
            }
            tmp.path().join("fineweb/000.parquet")
        }
    };
    let uri = file.to_string_lossy().into_owned();
    let size = std::fs::metadata(&file).expect("input").len();
    let all = Columns {
        text: "text".into(),
        id: "id".into(),
        url: "url".into(),
        date: None,
        metadata: None,
        max_record_bytes: 8 << 20,
    };
    let text_only = Columns {
        metadata: Some(Vec::new()),
        ..all.clone()
    };
    let run = |cols: &Columns| {
        let (mut docs, mut bytes, mut meta) = (0usize, 0usize, 0usize);
        let events = read_partition(&uri, size, None, &Default::default(), cols, 1024)
            .expect("readable input");
        for ev in events {
            if let ReadEvent::Doc(d) = ev {
                docs += 1;
                bytes += d.text().len();
                meta += d.metadata.len();
            }
        }
        (docs, bytes, meta)
    };
    let time = |cols: &Columns| {
        std::hint::black_box(run(cols));
        best_wall_cpu(reps, || {
            std::hint::black_box(run(cols));
        })
    };
    let (docs, text_bytes, meta) = run(&all);
    let (wall_all, cpu_all) = time(&all);
    let (wall_text, cpu_text) = time(&text_only);
    println!(
        "input: {} ({:.1} MB), {docs} docs, {:.1} MB of text, {:.1} metadata fields per doc; best of {reps} warm passes each",
        file.display(),
        size as f64 / 1e6,
        text_bytes as f64 / 1e6,
        meta as f64 / docs.max(1) as f64
    );
    let peer = peer_python("dt").and_then(|py| {
        let script = repo_root().join("benches/peers/datatrove_parquet_read.py");
        let repeat = (reps + 1).to_string();
        run_peer(
            &py,
            &[script.to_str()?, file.to_str()?, "--repeat", &repeat],
        )
    });
    let rows = [
        (
            "metadata kept (both defaults)",
            "default",
            cpu_all,
            wall_all,
        ),
        ("no metadata", "text_only", cpu_text, wall_text),
    ];
    for (clock, key) in [
        (
            "CPU time of the reading thread / process (per-core cost)",
            "cpu_s",
        ),
        (
            "wall clock (other processes on the machine count against both)",
            "wall_s",
        ),
    ] {
        println!("-- {clock}");
        for (what, cfg, cpu, wall) in rows {
            let ours = if key == "cpu_s" { cpu } else { wall };
            let peer_s = peer
                .as_ref()
                .and_then(|p| p[cfg][format!("warm_{key}")].as_f64());
            if let (Some(p), Some(s)) = (&peer, peer_s) {
                let d = p["docs"].as_f64().unwrap_or(0.0);
                let b = p["text_bytes"].as_u64().unwrap_or(0) as usize;
                report(
                    &format!("datatrove ParquetReader, {what}"),
                    d as usize,
                    b,
                    s,
                    None,
                );
                report(
                    &format!("curate Parquet input, {what}"),
                    docs,
                    text_bytes,
                    ours,
                    Some(d / s),
                );
            } else {
                report(
                    &format!("curate Parquet input, {what}"),
                    docs,
                    text_bytes,
                    ours,
                    None,
                );
            }
        }
    }
    if peer.is_none() {
        eprintln!("peer skipped: ~/.cache/curate-peers/dt (with pyarrow) not found, or it failed");
    }
}
