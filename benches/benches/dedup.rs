//! Dedup benchmarks (release, `cargo bench -p curate-benches --bench dedup`).
//!
//! 1. **Signatures**, one thread, side by side with datatrove's `MinhashDedupSignature` (stage
//!    1, 5-grams, 14 x 8) on the same documents in the same run: the 1,080 extracted texts of
//!    `../shared/data/corpora/warc-extracted-texts.jsonl.gz`. curate's figure includes
//!    normalization (a fresh document each time), shingling, hashing, band keys and the sorted
//!    key file written to disk.
//! 2. **Phases 2 to 4** (index, pairs, sign, verify, components, decide) over synthetic
//!    signatures of 1M and 10M documents (31% of them in clusters of 2 to 8 copies; each
//!    copy takes its cluster's value for each hash with a probability drawn per cluster in
//!    0.8..1, so some candidate pairs pass verification and some do not), each scale in a
//!    child process so that its peak RSS (VmHWM) is its own.
//!
//! Env: DEDUP_BENCH_SCALES (default "1000000,10000000"), DEDUP_BENCH_MEMORY (executor memory
//! budget, default 1 GiB), DEDUP_BENCH_THREADS (default 2), DEDUP_BENCH_REPS (default 3),
//! DEDUP_BENCH_VERIFY (verification threshold of phases 2-4, default 0.7; 0: none),
//! DEDUP_BENCH_DIR (scratch folder, default the system temp folder), CURATE_PEERS.

use std::sync::Arc;
use std::time::Instant;

use curate_benches::{
    best_wall_cpu, peer_python, repo_root, report, run_peer, shared_dir, thread_cpu_seconds,
};
use rayon::prelude::*;
use stages::dedup::decisions::peak_rss_bytes;
use stages::dedup::minhash::{MinHashDedup, MinHasher};
use stages::{Collector, Document, GlobalStage, PartitionCtx, StepCtx, Store};

fn env<T: std::str::FromStr>(k: &str, default: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn stage(bands: usize, rows: usize, verify: f64) -> MinHashDedup {
    let keep = stages::dedup::keep::Keep::new(Default::default(), None).unwrap();
    let verify = (verify > 0.0).then_some(verify);
    MinHashDedup::new(
        "minhash",
        MinHasher::new(5, bands, rows, 1),
        1,
        keep,
        verify,
    )
}

fn bench_verify() -> f64 {
    env("DEDUP_BENCH_VERIFY", 0.7f64)
}

fn pctx(store: &Arc<dyn Store>, scratch: &std::path::Path, p: usize, n: usize) -> PartitionCtx {
    PartitionCtx {
        store: store.clone(),
        dir: "work/minhash".into(),
        partition: p,
        partitions: n,
        scratch: scratch.to_path_buf(),
        seed: 1,
    }
}

fn signatures() {
    let Some(shared) = shared_dir() else {
        eprintln!("signatures skipped: ../shared not found");
        return;
    };
    let input = shared.join("data/corpora/warc-extracted-texts.jsonl.gz");
    let texts = curate_benches::neardup::read_texts(&input).expect("read corpus");
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let reps = env("DEDUP_BENCH_REPS", 3usize);
    println!(
        "== signatures: {} documents, {:.2} MB, one thread",
        texts.len(),
        bytes as f64 / 1e6
    );
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(stages::LocalStore::new(dir.path()).unwrap());
    let mut results = Vec::new();
    for (bands, rows, verify) in [(14, 8, 0.7), (14, 8, 0.0), (20, 10, 0.7)] {
        let st = stage(bands, rows, verify);
        let (wall, cpu) = best_wall_cpu(reps, || {
            let mut col = st.collector(&pctx(&store, dir.path(), 0, 1)).unwrap();
            for text in &texts {
                col.collect(&Document::new("", text.as_str())).unwrap();
            }
            col.finish().unwrap();
        });
        results.push(((bands, rows, verify), wall, cpu));
    }
    // Where the time goes (CPU seconds of this thread, best of the repetitions).
    let hasher = MinHasher::new(5, 14, 8, 1);
    let part = |what: &str, f: &mut dyn FnMut()| {
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let c = thread_cpu_seconds();
            f();
            best = best.min(thread_cpu_seconds() - c);
        }
        println!("  {what:<44} {:>8.1} ms", best * 1e3);
    };
    part("normalized view (Document::normalized)", &mut || {
        for t in &texts {
            std::hint::black_box(Document::new("", t.as_str()).normalized().len());
        }
    });
    part("word segmentation (segment_words; not needed)", &mut || {
        for t in &texts {
            std::hint::black_box(stages::text::segment_words(t).len());
        }
    });
    part("UAX #29 boundaries alone (not needed)", &mut || {
        use unicode_segmentation::UnicodeSegmentation;
        for t in &texts {
            std::hint::black_box(t.split_word_bound_indices().count());
        }
    });
    let mut fast = String::new();
    part("normalized text (text::normalize_into)", &mut || {
        for t in &texts {
            stages::text::normalize_into(t, &mut fast);
            std::hint::black_box(fast.len());
        }
    });
    let norms: Vec<String> = texts
        .iter()
        .map(|t| Document::new("", t.as_str()).normalized().to_string())
        .collect();
    let mut sh = Vec::new();
    part("shingle hashes (xxh3 of each 5-gram)", &mut || {
        for n in &norms {
            hasher.shingles(n, &mut sh);
            std::hint::black_box(sh.len());
        }
    });
    let all: Vec<Vec<u64>> = norms
        .iter()
        .map(|n| {
            let mut v = Vec::new();
            hasher.shingles(n, &mut v);
            v
        })
        .collect();
    let mut sig = Vec::new();
    part("112 minima per shingle", &mut || {
        for s in &all {
            hasher.signature_of(s, &mut sig);
            std::hint::black_box(sig[0]);
        }
    });
    let docs_jsonl = dir.path().join("docs.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": i.to_string(), "text": t}).to_string())
        .collect();
    std::fs::write(&docs_jsonl, lines.join("\n") + "\n").unwrap();
    let peer = peer_python("dt").and_then(|py| {
        let script = repo_root().join("benches/peers/datatrove_minhash.py");
        run_peer(
            &py,
            &[
                script.to_str()?,
                docs_jsonl.to_str()?,
                "--signatures-only",
                "--repeat",
                &reps.to_string(),
            ],
        )
    });
    let peer_rate = |key: &str| -> Option<f64> {
        let p = peer.as_ref()?;
        let s = if key == "wall" {
            p["seconds"]["signatures"].as_f64()?
        } else {
            p["cpu_seconds_signatures"].as_f64()?
        };
        Some(texts.len() as f64 / s)
    };
    match &peer {
        Some(p) => {
            let s = p["seconds"]["signatures"].as_f64().unwrap_or(f64::NAN);
            let c = p["cpu_seconds_signatures"].as_f64().unwrap_or(f64::NAN);
            report("datatrove stage 1 (wall)", texts.len(), bytes, s, None);
            report("datatrove stage 1 (CPU)", texts.len(), bytes, c, None);
        }
        None => eprintln!("peer skipped: ~/.cache/curate-peers/dt not found (or it failed)"),
    }
    for ((b, r, v), wall, cpu) in results {
        let v = if v > 0.0 { "verified" } else { "unverified" };
        report(
            &format!("curate signatures {b}x{r} {v} (wall)"),
            texts.len(),
            bytes,
            wall,
            peer_rate("wall"),
        );
        report(
            &format!("curate signatures {b}x{r} {v} (CPU)"),
            texts.len(),
            bytes,
            cpu,
            peer_rate("cpu"),
        );
    }
}

/// Synthetic signatures. Documents come in blocks of 32 that hold 1 to 3 clusters of 2 to 8
/// documents (31% of documents in all); a clustered document takes its cluster's value for
/// each hash with a probability `q` drawn per cluster in 0.8..1 (two copies agree on a hash
/// with probability about `q^2`: 0.64 to 1, around the 0.7 verification threshold), every
/// other value is its own.
fn synth_signature(global: u64, hashes: usize, out: &mut Vec<u64>) {
    // Separate seeds keep own keys, cluster keys and choices from ever colliding.
    let h = |x: u64, domain: u64| xxhash_rust::xxh3::xxh3_64_with_seed(&x.to_le_bytes(), domain);
    out.clear();
    let (block, pos) = (global / 32, global % 32);
    let r = h(block, 1);
    let mut cluster = None;
    let mut start = 0;
    for j in 0..1 + r % 3 {
        let size = 2 + (r >> (8 + 4 * j)) % 7;
        if (start..start + size).contains(&pos) {
            cluster = Some((block << 2) | j);
            break;
        }
        start += size;
    }
    let q = cluster.map_or(0, |c| 800 + h(c, 3) % 200);
    for j in 0..hashes as u64 {
        let own = h(global, 100 + j);
        match cluster {
            Some(c) if h(own, 2) % 1000 < q => out.push(h(c, 100_000 + j)),
            _ => out.push(own),
        }
    }
}

fn generate(dir: &std::path::Path, docs: u64, parts: usize) {
    let store: Arc<dyn Store> = Arc::new(stages::LocalStore::new(dir.join("out")).unwrap());
    let st = stage(14, 8, bench_verify());
    let per = docs.div_ceil(parts as u64);
    (0..parts).into_par_iter().for_each(|p| {
        let mut col = st
            .signature_collector(&pctx(&store, &dir.join("scratch"), p, parts))
            .unwrap();
        let mut sig = Vec::new();
        let start = p as u64 * per;
        for g in start..(start + per).min(docs) {
            synth_signature(g, 112, &mut sig);
            col.add_signature(Some(&sig), 0).unwrap();
        }
        Box::new(col).finish().unwrap();
    });
}

/// Child process: runs phases 2 to 4 over generated key files, prints one JSON line.
fn run_steps(dir: &std::path::Path, parts: usize) {
    let store: Arc<dyn Store> = Arc::new(stages::LocalStore::new(dir.join("out")).unwrap());
    let threads = env("DEDUP_BENCH_THREADS", 2usize);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let ctx = StepCtx {
        store: store.clone(),
        dir: "work/minhash".into(),
        partitions: parts,
        scratch: dir.join("scratch"),
        memory_budget: env("DEDUP_BENCH_MEMORY", 1usize << 30),
        threads,
        seed: 1,
    };
    std::fs::create_dir_all(&ctx.scratch).unwrap();
    let st = stage(14, 8, bench_verify());
    let mut out = serde_json::Map::new();
    let t0 = Instant::now();
    for step in st.steps() {
        let t = Instant::now();
        let n = step.tasks(&ctx).unwrap();
        let stats: Vec<stages::StepStats> = pool.install(|| {
            (0..n)
                .into_par_iter()
                .with_max_len(1)
                .map(|i| step.run(i, &ctx).unwrap())
                .collect()
        });
        let mut counters = serde_json::Map::new();
        for s in &stats {
            for (k, v) in &s.counters {
                let e = counters.entry(k.clone()).or_insert(0.into());
                *e = (e.as_u64().unwrap() + v).into();
            }
        }
        out.insert(
            step.name().to_string(),
            serde_json::json!({"seconds": t.elapsed().as_secs_f64(), "tasks": n, "counters": counters}),
        );
    }
    out.insert("seconds".into(), t0.elapsed().as_secs_f64().into());
    out.insert("peak_rss_bytes".into(), peak_rss_bytes().into());
    out.insert("work_bytes".into(), dir_bytes(&dir.join("out")).into());
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    out.insert(
        "cpu_seconds".into(),
        (tv(ru.ru_utime) + tv(ru.ru_stime)).into(),
    );
    out.insert("major_faults".into(), (ru.ru_majflt as u64).into());
    println!("{}", serde_json::Value::Object(out));
}

/// Bytes of every file under a folder (the stage's work files).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.filter_map(|e| e.ok())
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => dir_bytes(&e.path()),
                _ => e.metadata().map_or(0, |m| m.len()),
            })
            .sum()
    })
}

fn scale() {
    let scales: Vec<u64> = std::env::var("DEDUP_BENCH_SCALES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let base = std::env::var_os("DEDUP_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let me = std::env::current_exe().unwrap();
    println!(
        "== phases 2-4 (index, pairs, sign, verify, components, decide) over synthetic \
         signatures, 14 x 8, verify_threshold {}, {} threads, memory budget {} MiB",
        bench_verify(),
        env("DEDUP_BENCH_THREADS", 2usize),
        env("DEDUP_BENCH_MEMORY", 1usize << 30) >> 20
    );
    println!(
        "{:>10} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "documents",
        "parts",
        "index",
        "pairs",
        "sign",
        "verify",
        "comps",
        "decide",
        "total s",
        "CPU s",
        "peak RSS",
        "work",
        "cand.",
        "verified"
    );
    for n in scales {
        let dir = tempfile::tempdir_in(&base).unwrap();
        // Partitions of 100,000 documents (a Common Crawl WARC file holds about 30,000).
        let parts = n.div_ceil(100_000).max(1) as usize;
        let gen = std::process::Command::new(&me)
            .args([
                "--generate",
                dir.path().to_str().unwrap(),
                &n.to_string(),
                &parts.to_string(),
            ])
            .status()
            .unwrap();
        assert!(gen.success());
        let o = std::process::Command::new(&me)
            .args(["--steps", dir.path().to_str().unwrap(), &parts.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap())
                .unwrap();
        let s = |k: &str| v[k]["seconds"].as_f64().unwrap_or(0.0);
        println!(
            "{:>10} {:>5} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>6.1} {:>8.1} {:>7.1} {:>6.0} MB \
             {:>6.0} MB {:>9} {:>9}",
            n,
            parts,
            s("index"),
            s("pairs"),
            s("sign"),
            s("verify"),
            s("components"),
            s("decide"),
            v["seconds"].as_f64().unwrap_or(0.0),
            v["cpu_seconds"].as_f64().unwrap_or(0.0),
            v["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            v["work_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            v["pairs"]["counters"]["pairs"],
            v["verify"]["counters"]["verified"]
        );
        println!(
            "    major page faults {}; sign {}; verify {}; components {}",
            v["major_faults"],
            v["sign"]["counters"],
            v["verify"]["counters"],
            v["components"]["counters"]
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()) {
        Some("--generate") => {
            let p = std::path::Path::new(&args[2]);
            generate(p, args[3].parse().unwrap(), args[4].parse().unwrap());
        }
        Some("--steps") => run_steps(std::path::Path::new(&args[2]), args[3].parse().unwrap()),
        _ => {
            if std::env::var_os("DEDUP_BENCH_SKIP_SIGNATURES").is_none() {
                signatures();
            }
            scale();
        }
    }
}
