//! Static embeddings (`curate distill`) against the MiniLM teacher they come from, in one run on
//! the same texts: embedding speed, and agreement of semantic dedup decisions.
//!
//! 1. **Model.** The shared all-MiniLM-L6-v2 int8 encoder is distilled (256 dims, SIF a = 1e-3)
//!    with token frequencies from the shared classifier train files, validation groups
//!    (`sha1(group) % 4 == 0`) left out; or `STATIC_MODEL=DIR` names a distilled model.
//! 2. **Evaluation set** (seeded, rebuilt the same each run):
//!    - the near-duplicate set of `curate_benches::neardup` from the 1,080 real extracted pages of
//!      `../shared/data/corpora` (the first `EVAL_BASES`, default 400, bases of 200+ words; one
//!      variant each by word edits, inserted or deleted runs, template boilerplate lines, or a
//!      mix, at Jaccard 0.2 to 1);
//!    - a *rewrite* of every third base: its sentences reordered (first one kept), one in five
//!      dropped, and every tenth word dropped: the same content in another order, which shares
//!      few word 5-grams with the base (MinHash's blind spot);
//!    - hard negatives: 300 documents of the classifier train files (same-topic technical text,
//!      different source files).
//!
//!    Every pair of documents is compared under both models. Documents are split in two halves
//!    by their group (a base, its variant and its rewrite share one): the static threshold is
//!    calibrated on half A (the highest threshold that finds >= 90% of half A's pairs MiniLM
//!    puts at or above its threshold) and scored on half B, so the scored figures are
//!    out-of-sample.
//! 3. **Speed**: both on one thread, docs/s by wall clock and per CPU-second, on the evaluation
//!    documents and on 2,000 classifier train documents (whole files up to 12,000 characters);
//!    MiniLM on the first `MINILM_DOCS` (default 128) of each, static on all.
//!
//! Run: cargo bench -p curate-benches --bench semantic

use std::path::{Path, PathBuf};
use std::time::Instant;

use classifiers::onnx::{Encoder, EncoderOptions, Pooling, RuntimeOptions};
use classifiers::static_embed::{distill, DistillOptions, StaticModel};
use curate_benches::split::sha1_prefix32;
use curate_benches::{neardup, shared_dir};

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `(id, group, text)` of the classifier train files, in file order.
fn class_docs(shared: &Path, files: &[&str]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in files {
        let p = shared.join("data/classifiers").join(f);
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
            &mut s,
        )
        .unwrap();
        for l in s.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            let group = id.split('#').next().unwrap().to_string();
            out.push((id, group, v["text"].as_str().unwrap().to_string()));
        }
    }
    out
}

const CLASS_FILES: &[&str] = &[
    "quality-hq-train.jsonl.gz",
    "topic-general-train.jsonl.gz",
    "topic-math-train.jsonl.gz",
    "topic-code-train.jsonl.gz",
    "topic-multilingual-train.jsonl.gz",
];

/// Sentences reordered (the first kept), one in five dropped, every tenth word dropped.
fn rewrite(text: &str, seed: u64) -> String {
    let mut sents: Vec<&str> = text
        .split_inclusive(['.', '!', '?', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut r = seed;
    let mut next = || {
        r = mix64(r);
        r
    };
    for k in (2..sents.len()).rev() {
        let j = 1 + (next() % k as u64) as usize;
        sents.swap(k, j);
    }
    let mut words = Vec::new();
    for (i, s) in sents.iter().enumerate() {
        if i > 0 && next() % 5 == 0 {
            continue;
        }
        for w in s.split_whitespace() {
            if next() % 10 != 0 {
                words.push(w);
            }
        }
    }
    words.join(" ")
}

struct Eval {
    texts: Vec<String>,
    groups: Vec<u64>,
}

fn eval_set(shared: &Path) -> Eval {
    let pages = neardup::read_texts(&shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
        .expect("warc-extracted texts");
    // EVAL_BASES bases (default 400): every pair is compared, and MiniLM embeds them all.
    let bases: usize = std::env::var("EVAL_BASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let set = neardup::build(&pages, 20240723, bases);
    let mut texts = Vec::new();
    let mut groups = Vec::new();
    let group_of = |id: &str| id[1..].parse::<u64>().unwrap();
    let mut bases = Vec::new();
    for (id, t) in &set.docs {
        texts.push(t.clone());
        groups.push(group_of(id));
        if id.starts_with('b') {
            bases.push((group_of(id), t.clone()));
        }
    }
    bases.sort_by_key(|b| b.0);
    for (g, t) in bases.iter().step_by(3) {
        texts.push(rewrite(t, *g));
        groups.push(*g);
    }
    let mut negs = class_docs(shared, CLASS_FILES);
    negs.retain(|(_, g, _)| sha1_prefix32(g) % 4 != 0);
    negs.sort_by_cached_key(|(id, _, _)| mix64(sha1_prefix32(id) as u64));
    for (i, (_, _, t)) in negs.into_iter().take(300).enumerate() {
        texts.push(t);
        groups.push(1_000_000 + i as u64);
    }
    Eval { texts, groups }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Docs/s by wall clock and per CPU-second of `f` over `n` documents.
fn timed(n: usize, f: impl FnOnce()) -> (f64, f64) {
    let (w, c) = (Instant::now(), cpu_seconds());
    f();
    let (w, c) = (w.elapsed().as_secs_f64(), cpu_seconds() - c);
    (n as f64 / w, n as f64 / c.max(1e-9))
}

fn main() {
    let Some(shared) = shared_dir() else {
        println!("skipped: ../shared is absent");
        return;
    };
    let Some(lib) = classifiers::testing::ort_library() else {
        println!("skipped: no libonnxruntime.so");
        return;
    };
    let minilm_dir = shared.join("data/models/all-minilm-l6-v2-int8");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let teacher = |normalize: bool| {
        Encoder::open(
            &minilm_dir,
            &EncoderOptions {
                runtime: RuntimeOptions {
                    library: Some(lib.clone()),
                    ..Default::default()
                },
                max_length: Some(128),
                pooling: Some(Pooling::Mean),
                normalize: Some(normalize),
                ..Default::default()
            },
        )
        .unwrap()
    };

    // 1. The static model.
    let tmp = tempfile::tempdir().unwrap();
    let static_dir: PathBuf = match std::env::var_os("STATIC_MODEL") {
        Some(d) => d.into(),
        None => {
            let dir = tmp.path().join("minilm-static");
            let freq: Vec<String> = class_docs(&shared, CLASS_FILES)
                .into_iter()
                .filter(|(_, g, _)| sha1_prefix32(g) % 4 != 0)
                .map(|(_, _, t)| t)
                .collect();
            let t = Instant::now();
            let r = distill(
                &teacher(false),
                freq.iter().map(|s| s.as_str()),
                &DistillOptions::default(),
                &dir,
            )
            .unwrap();
            println!(
                "distilled: {} tokens x {} dims, PCA keeps {:.3} of the variance, {} frequency \
                 tokens from {} texts, {:.1} s ({:.1} s embedding tokens, {threads} threads)",
                r.vocab,
                r.dim,
                r.explained_variance,
                r.frequency_tokens,
                r.frequency_documents,
                t.elapsed().as_secs_f64(),
                r.embed_seconds
            );
            dir
        }
    };
    let model = StaticModel::open(&static_dir).unwrap();
    let minilm = teacher(true);

    // 2. Speed, one thread each, same texts.
    let eval = eval_set(&shared);
    let mut long: Vec<String> = class_docs(&shared, CLASS_FILES)
        .into_iter()
        .map(|d| d.2)
        .collect();
    long.sort_by_cached_key(|t| sha1_prefix32(t));
    long.truncate(2000);
    let minilm_docs: usize = std::env::var("MINILM_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    println!(
        "\nspeed, 1 thread ({} eval documents, mean {:.0} chars; {} train documents, mean {:.0} chars)",
        eval.texts.len(),
        eval.texts.iter().map(|t| t.len()).sum::<usize>() as f64 / eval.texts.len() as f64,
        long.len(),
        long.iter().map(|t| t.len()).sum::<usize>() as f64 / long.len() as f64,
    );
    println!(
        "{:<34} {:>12} {:>14} {:>10}",
        "system / texts", "docs/s wall", "docs/CPU-s", "ratio"
    );
    for (name, texts) in [("eval", &eval.texts), ("train docs", &long)] {
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let m = minilm_docs.min(refs.len());
        let (mw, mc) = one.install(|| {
            timed(m, || {
                std::hint::black_box(minilm.embed(&refs[..m]).unwrap());
            })
        });
        // Static: best of 3 passes over all texts, one document at a time.
        let mut best = (0f64, 0f64);
        for _ in 0..3 {
            let (w, c) = timed(refs.len(), || {
                let mut ids = Vec::new();
                let mut v = vec![0f32; model.dim()];
                for t in &refs {
                    model.embed_into(t, &mut ids, &mut v);
                    std::hint::black_box(&v);
                }
            });
            if c > best.1 {
                best = (w, c);
            }
        }
        println!(
            "{:<34} {:>12.1} {:>14.1} {:>10}",
            format!("MiniLM int8, {name} ({m})"),
            mw,
            mc,
            "1.0x"
        );
        println!(
            "{:<34} {:>12.0} {:>14.0} {:>9.0}x",
            format!("static, {name} ({})", refs.len()),
            best.0,
            best.1,
            best.1 / mc
        );
    }

    // 3. Agreement.
    let refs: Vec<&str> = eval.texts.iter().map(|s| s.as_str()).collect();
    let t = Instant::now();
    let em = minilm.embed(&refs).unwrap();
    println!(
        "\nMiniLM embedded {} eval documents in {:.1} s on {threads} threads",
        refs.len(),
        t.elapsed().as_secs_f64()
    );
    let es = model.embed(&refs);
    let n = refs.len();
    let half: Vec<bool> = eval.groups.iter().map(|&g| mix64(g) & 1 == 0).collect();
    // Pairs within each half: (minilm, static).
    let mut pairs: [Vec<(f32, f32)>; 2] = [Vec::new(), Vec::new()];
    for i in 0..n {
        for j in i + 1..n {
            if half[i] == half[j] {
                pairs[half[i] as usize].push((dot(&em[i], &em[j]), dot(&es[i], &es[j])));
            }
        }
    }
    println!(
        "pairs: {} in half A, {} in half B; {} documents",
        pairs[1].len(),
        pairs[0].len(),
        n
    );
    println!(
        "\n{:<8} {:>9} {:>11} {:>10} {:>10} {:>10} {:>12}",
        "MiniLM t", "pairs A|B", "static t", "recall A", "recall B", "flagged B", "<0.80 in B"
    );
    for tm in [0.95f32, 0.9, 0.85] {
        let (a, b) = (&pairs[1], &pairs[0]);
        let mut pos: Vec<f32> = a.iter().filter(|p| p.0 >= tm).map(|p| p.1).collect();
        if pos.is_empty() {
            continue;
        }
        pos.sort_by(|x, y| y.total_cmp(x));
        // The highest threshold that keeps >= 90% of half A's MiniLM pairs.
        let ts = pos[((pos.len() as f64 * 0.9).ceil() as usize).clamp(1, pos.len()) - 1];
        let recall = |ps: &[(f32, f32)]| {
            let p: Vec<_> = ps.iter().filter(|p| p.0 >= tm).collect();
            (
                p.iter().filter(|p| p.1 >= ts).count() as f64 / p.len().max(1) as f64,
                p.len(),
            )
        };
        let (ra, na) = recall(a);
        let (rb, nb) = recall(b);
        let flagged: Vec<_> = b.iter().filter(|p| p.1 >= ts).collect();
        let low = flagged.iter().filter(|p| p.0 < 0.8).count();
        println!(
            "{:<8.2} {:>9} {:>11.4} {:>10.3} {:>10.3} {:>10} {:>11.2}%",
            tm,
            format!("{na}|{nb}"),
            ts,
            ra,
            rb,
            flagged.len(),
            100.0 * low as f64 / flagged.len().max(1) as f64
        );
    }
}
