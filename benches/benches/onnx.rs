//! ONNX classifier and semantic dedup throughput, side by side with onnxruntime in Python.
//!
//! Texts: the shared topic train files (a fixed sample across the four labels). Model: the
//! shared all-MiniLM-L6-v2 int8 encoder with a linear head (mean pooling, max 128 tokens).
//! Prints docs/s and docs per CPU-second (robust when other work shares the cores) for:
//! curate's `OnnxClassifier` on 1 thread and on all threads; the Python peer (sentence-
//! transformers' recipe: sort by length, batch 32, pad per batch) on 1 and all intra-op
//! threads; and the whole `dedup.semantic` global stage (collect, k-means, assign, dedup, apply).
//!
//! Run: cargo bench -p curate-benches --bench onnx  (BENCH_DOCS=N to change the sample size)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use classifiers::onnx::{EncoderOptions, OnnxClassifier, RuntimeOptions};
use classifiers::TextClassifier;
use stages::{Built, Document, Purpose, StageArgs, StepCtx, Store};

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn sample(shared: &Path, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for t in ["general", "math", "code", "multilingual"] {
        let p = shared.join(format!("data/classifiers/topic-{t}-train.jsonl.gz"));
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
            &mut s,
        )
        .unwrap();
        out.extend(s.lines().take(n / 4).map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        }));
    }
    out
}

/// A model directory: the shared encoder (hard-linked) with a fixed 4-label head.
fn model_dir(encoder: &Path, dir: &Path) -> PathBuf {
    let m = dir.join("minilm-head");
    std::fs::create_dir_all(&m).unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        let dst = m.join(f);
        if !dst.exists() && std::fs::hard_link(encoder.join(f), &dst).is_err() {
            std::fs::copy(encoder.join(f), &dst).unwrap();
        }
    }
    let weight: Vec<Vec<f32>> = (0..4)
        .map(|k| {
            (0..384)
                .map(|j| ((k * 384 + j) as f32 * 0.37).sin() * 0.1)
                .collect()
        })
        .collect();
    let head = serde_json::json!({"labels": ["code", "general", "math", "multilingual"], "weight": weight, "bias": [0.0, 0.0, 0.0, 0.0]});
    std::fs::write(m.join("head.json"), head.to_string()).unwrap();
    std::fs::write(
        m.join("curate.json"),
        r#"{"pooling": "mean", "normalize": true, "max_length": 128, "head": "head.json"}"#,
    )
    .unwrap();
    m
}

fn line(system: &str, docs: usize, secs: f64, cpu: f64, base: Option<f64>) -> f64 {
    let per_cpu = docs as f64 / cpu.max(1e-9);
    let ratio = base.map_or(String::new(), |b| {
        format!("   {:.2}x peer (per CPU-s)", per_cpu / b)
    });
    println!(
        "{system:<44} {:>8.1} docs/s {:>8.1} docs/CPU-s{ratio}",
        docs as f64 / secs,
        per_cpu
    );
    per_cpu
}

fn main() {
    let Some(shared) = curate_benches::shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let Some(lib) = classifiers::testing::ort_library() else {
        eprintln!("skipped: no libonnxruntime.so");
        return;
    };
    let n: usize = std::env::var("BENCH_DOCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let texts = sample(&shared, n);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tmp = tempfile::tempdir().unwrap();
    let encoder = shared.join("data/models/all-minilm-l6-v2-int8");
    let model = model_dir(&encoder, tmp.path());
    let jsonl = tmp.path().join("texts.jsonl");
    {
        let mut f = std::fs::File::create(&jsonl).unwrap();
        for t in &texts {
            writeln!(f, "{}", serde_json::json!({ "text": t })).unwrap();
        }
    }
    println!(
        "{} docs, {} MB of text, MiniLM-L6 int8, 128 tokens, {threads} cores",
        texts.len(),
        texts.iter().map(|t| t.len()).sum::<usize>() / 1_000_000
    );

    // The peer first, on one thread and on all.
    let mut peer = [None, None];
    if let Some(py) = curate_benches::test_python() {
        for (i, t) in [1, threads].iter().enumerate() {
            let out = std::process::Command::new(&py)
                .env(
                    "TOKENIZERS_PARALLELISM",
                    if *t == 1 { "false" } else { "true" },
                )
                .arg(curate_benches::repo_root().join("benches/peers/onnx_peer.py"))
                .arg(&model)
                .arg(&jsonl)
                .args([
                    "--max-length",
                    "128",
                    "--batch",
                    "32",
                    "--threads",
                    &t.to_string(),
                ])
                .output()
                .unwrap();
            let s = String::from_utf8_lossy(&out.stdout);
            match s
                .lines()
                .last()
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            {
                Some(v) => {
                    peer[i] = Some(line(
                        &format!("python onnxruntime, {t} intra-op thread(s)"),
                        v["docs"].as_u64().unwrap() as usize,
                        v["seconds"].as_f64().unwrap(),
                        v["cpu_seconds"].as_f64().unwrap(),
                        None,
                    ))
                }
                None => eprintln!("peer failed: {}", String::from_utf8_lossy(&out.stderr)),
            }
        }
    } else {
        eprintln!("no test Python: peer skipped");
    }

    let opts = EncoderOptions {
        runtime: RuntimeOptions {
            library: Some(lib.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let clf = OnnxClassifier::open(&model, &opts).unwrap();
    for (i, t) in [1, threads].iter().enumerate() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(*t)
            .build()
            .unwrap();
        pool.install(|| clf.predict(&refs).unwrap()); // warm-up: one session per thread
        let (w, c) = (Instant::now(), cpu_seconds());
        pool.install(|| clf.predict(&refs).unwrap());
        line(
            &format!("curate classify.onnx, {t} thread(s)"),
            texts.len(),
            w.elapsed().as_secs_f64(),
            cpu_seconds() - c,
            peer[i],
        );
    }

    // dedup.semantic end to end over 4 partitions (the runner's work, by hand).
    let t: toml::Table = format!(
        "model = \"{}\"\nort_library = \"{}\"\nthreshold = 0.9\ncluster_docs = 64",
        encoder.display(),
        lib.display()
    )
    .parse()
    .unwrap();
    let Built::Global(g) = (classifiers::semantic::DEF.build)(&StageArgs {
        name: "semantic",
        table: &t,
        base_dir: Path::new("."),
        purpose: Purpose::Run,
        seed: 1,
    })
    .unwrap() else {
        panic!("global")
    };
    let store: Arc<dyn Store> = Arc::new(stages::LocalStore::new(tmp.path().join("out")).unwrap());
    let parts = 4;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let (w, c) = (Instant::now(), cpu_seconds());
    let mut step_s = 0.0;
    let dropped = pool.install(|| {
        let pctx = |p| stages::PartitionCtx {
            store: store.clone(),
            dir: "work/semantic".into(),
            partition: p,
            partitions: parts,
            scratch: tmp.path().join("s"),
            seed: 1,
        };
        let docs: Vec<Document> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Document::new(format!("d{i}"), t.clone()))
            .collect();
        let chunk = docs.len().div_ceil(parts);
        for p in 0..parts {
            let mut col = g.collector(&pctx(p)).unwrap();
            for d in docs.iter().skip(p * chunk).take(chunk) {
                col.collect(d).unwrap();
            }
            col.finish().unwrap();
        }
        let ts = Instant::now();
        let sctx = StepCtx {
            store: store.clone(),
            dir: "work/semantic".into(),
            partitions: parts,
            scratch: tmp.path().join("s"),
            memory_budget: 1 << 30,
            threads,
            seed: 1,
        };
        for step in g.steps() {
            for k in 0..step.tasks(&sctx).unwrap() {
                step.run(k, &sctx).unwrap();
            }
        }
        step_s = ts.elapsed().as_secs_f64();
        let mut dropped = 0;
        for p in 0..parts {
            let mut a = g.applier(&pctx(p)).unwrap();
            for mut d in docs.iter().skip(p * chunk).take(chunk).cloned() {
                dropped += !a.apply(&mut d).is_keep() as usize;
            }
        }
        dropped
    });
    line(
        &format!("curate dedup.semantic, {threads} thread(s)"),
        texts.len(),
        w.elapsed().as_secs_f64(),
        cpu_seconds() - c,
        None,
    );
    println!(
        "  of which k-means + assign + dedup steps: {:.3} s ({:.0} docs/s); {dropped} near-duplicates at cosine >= 0.9",
        step_s,
        texts.len() as f64 / step_s
    );
}
