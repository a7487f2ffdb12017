//! The global stage run by hand over a local store: collect per partition, every step's tasks,
//! apply per partition (what the runner does across a barrier).

use std::path::Path;
use std::sync::Arc;

use stages::{
    Built, Document, GlobalStage, LocalStore, Outcome, PartitionCtx, Purpose, StageArgs, StepCtx,
    Store,
};

use super::*;
use crate::testing;

fn stage(body: &str, lib: &Path) -> Result<Box<dyn GlobalStage>, ConfigError> {
    let mut t: toml::Table = body.parse().unwrap();
    t.insert(
        "ort_library".into(),
        toml::Value::String(lib.display().to_string()),
    );
    let root = testing::repo_root();
    match build(&StageArgs {
        name: "semantic",
        table: &t,
        base_dir: &root,
        purpose: Purpose::Run,
        seed: 7,
    })? {
        Built::Global(g) => Ok(g),
        Built::Map(_) => panic!("a global stage"),
    }
}

/// Runs collect / steps / apply over `parts` partitions; returns the documents with their
/// signals and outcomes, in input order, and the step stats.
fn run(
    g: &dyn GlobalStage,
    parts: Vec<Vec<Document>>,
    threads: usize,
    dir: &Path,
) -> (Vec<(Document, Outcome)>, Vec<StepStats>) {
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.join("out")).unwrap());
    let n = parts.len();
    let pctx = |p: usize| PartitionCtx {
        store: store.clone(),
        dir: "work/semantic".into(),
        partition: p,
        partitions: n,
        scratch: dir.join("scratch"),
        seed: 7,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        for (p, docs) in parts.iter().enumerate() {
            let mut c = g.collector(&pctx(p)).unwrap();
            for d in docs {
                c.collect(d).unwrap();
            }
            c.finish().unwrap();
        }
        let stats = global_steps(g, &store, "work/semantic", n, threads, 1 << 30, dir);
        let mut out = Vec::new();
        for (p, docs) in parts.into_iter().enumerate() {
            let mut a = g.applier(&pctx(p)).unwrap();
            for mut d in docs {
                let o = a.apply(&mut d);
                out.push((d, o));
            }
        }
        (out, stats)
    })
}

#[test]
fn greedy_keeps_best_and_drops_close_ones() {
    let unit = |v: [f32; 2]| {
        let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
        vec![v[0] / n, v[1] / n]
    };
    let m = |e: Vec<f32>| Member {
        partition: 0,
        row: 0,
        quality: 0.0,
        chars: 0,
        emb: e,
        tokens: Vec::new(),
    };
    let members = vec![
        m(unit([1.0, 0.0])),
        m(unit([1.0, 0.05])), // cos 0.9988 to the first
        m(unit([0.0, 1.0])),
        m(unit([0.6, 0.8])), // cos 0.6 / 0.8 to the kept ones
    ];
    let mut n = DedupCounts::default();
    let d = greedy(&members, 0.95, None, &mut n).unwrap();
    assert_eq!(
        d.iter().map(|x| x.drop).collect::<Vec<_>>(),
        [false, true, false, false]
    );
    assert!(d[1].sim > 0.99);
    // Kept ones: highest cosine to another kept one.
    assert!(
        (d[0].sim - 0.6).abs() < 1e-5
            && (d[2].sim - 0.8).abs() < 1e-5
            && (d[3].sim - 0.8).abs() < 1e-5
    );
    assert!(d.iter().all(|x| x.verified == -1.0));
    let one = greedy(&members[..1], 0.9, None, &mut n).unwrap();
    assert_eq!((one[0].sim, one[0].drop), (-1.0, false));
}

/// Exact and near-exact copies across partitions go, distinct texts stay, the better-quality
/// copy wins, and the result does not depend on the thread count.
#[test]
fn tiny_encoder_finds_copies_across_partitions() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let g = stage(
        "model = \"classifiers/testdata/tiny-bert-mean\"\nthreshold = 0.995\ncluster_docs = 4\nquality_signal = \"q\"",
        &lib,
    )
    .unwrap();
    let texts = crate::onnx::tests::mixed_texts();
    let parts = copies_in_two_partitions();
    let tmp = tempfile::tempdir().unwrap();
    let (out, stats) = run(g.as_ref(), parts.clone(), 1, tmp.path());
    // Every copied a-document loses to its b twin, and so does a7: it only appends a sentence
    // to a6's long text, past the encoder's 128 tokens. No b-document drops, and no other
    // a-document (the tiny model's vectors of distinct texts are not that close).
    assert_eq!(
        texts[7].strip_prefix(texts[6].as_str()).map(|s| s.len()),
        Some(44)
    );
    assert_eq!(dropped_ids(&out), ["a0", "a2", "a4", "a6", "a7", "a8"]);
    for (d, o) in &out {
        let sim = d.signals.f64("semantic.nearest_sim").unwrap();
        assert_eq!(!o.is_keep(), sim >= 0.995, "{}: {sim}", d.id);
        assert_eq!(g.judge(&d.signals), *o, "judge agrees with the applier");
        assert!(d.signals.i64("semantic.cluster").unwrap() >= 0);
    }
    assert!(stats
        .iter()
        .any(|s| s.name == "centroids" && s.counters["clusters"] == 4));
    // Same result with four threads.
    let tmp2 = tempfile::tempdir().unwrap();
    let (out4, _) = run(g.as_ref(), parts, 4, tmp2.path());
    for ((d1, o1), (d4, o4)) in out.iter().zip(&out4) {
        assert_eq!((d1.signals.to_json(), o1), (d4.signals.to_json(), o4));
    }
    let (t1, t4) = (
        testing::read_tree(&tmp.path().join("out")),
        testing::read_tree(&tmp2.path().join("out")),
    );
    assert_eq!(t1.keys().collect::<Vec<_>>(), t4.keys().collect::<Vec<_>>());
    assert!(t1 == t4, "side files differ between 1 and 4 threads");
}

/// Word 5-shingle Jaccard: what MinHash estimates.
fn jaccard5(a: &str, b: &str) -> f64 {
    let sh = |t: &str| {
        let w: Vec<String> = t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| w.to_lowercase())
            .collect();
        w.windows(5.min(w.len()).max(1))
            .map(|x| x.join(" "))
            .collect::<std::collections::HashSet<_>>()
    };
    let (a, b) = (sh(a), sh(b));
    a.intersection(&b).count() as f64 / a.union(&b).count().max(1) as f64
}

/// The paraphrase fixture over three partitions (so that pairs cross partitions), the "b" side
/// of each pair the better one by the signal `q`.
fn paraphrase_parts() -> Vec<Vec<Document>> {
    let mut parts = vec![Vec::new(), Vec::new(), Vec::new()];
    let text = std::fs::read_to_string(testing::testdata("paraphrases.jsonl")).unwrap();
    for (i, l) in text.lines().enumerate() {
        let r: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = r["id"].as_str().unwrap();
        let mut d = Document::new(id, r["text"].as_str().unwrap());
        d.signals
            .set_f64("q", if id.ends_with('b') { 0.8 } else { 0.3 });
        parts[i % 3].push(d);
    }
    parts
}

/// The ids of the dropped documents, sorted.
fn dropped_ids(out: &[(Document, Outcome)]) -> Vec<String> {
    let mut v: Vec<String> = out
        .iter()
        .filter(|(_, o)| !o.is_keep())
        .map(|(d, _)| d.id.clone())
        .collect();
    v.sort();
    v
}

/// Paraphrase pairs (classifiers/testdata/paraphrases.jsonl, written for this test) share no
/// 5-word shingle, so MinHash at any threshold misses them; MiniLM embeddings catch every pair
/// and keep the better-quality side, and unrelated documents on the same topics stay.
#[test]
fn minilm_catches_paraphrases_minhash_misses() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let model = shared.join("data/models/all-minilm-l6-v2-int8");
    let g = stage(
        &format!(
            "model = \"{}\"\nthreshold = 0.7\ncluster_docs = 8\nquality_signal = \"q\"",
            model.display()
        ),
        &lib,
    )
    .unwrap();
    let parts = paraphrase_parts();
    let text = |id: &str| {
        let d = parts.iter().flatten().find(|d| d.id == id).unwrap();
        d.text().to_string()
    };
    for i in 0..10 {
        let j = jaccard5(&text(&format!("p{i}a")), &text(&format!("p{i}b")));
        assert!(j < 0.05, "pair {i} shares shingles: {j}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = run(g.as_ref(), parts, 2, tmp.path());
    assert_eq!(
        dropped_ids(&out),
        (0..10).map(|i| format!("p{i}a")).collect::<Vec<_>>()
    );
    for (d, _) in &out {
        if d.id.starts_with('o') {
            assert!(d.signals.f64("semantic.nearest_sim").unwrap() < 0.6);
        }
    }
}

#[test]
fn config_errors_name_the_key() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let key = |b: &str| stage(b, &lib).err().unwrap().key;
    let m = "model = \"classifiers/testdata/tiny-bert-mean\"\n";
    assert_eq!(key(&format!("{m}threshold = 1.5")), "threshold");
    assert_eq!(key(&format!("{m}cluster_docs = 0")), "cluster_docs");
    assert_eq!(key(&format!("{m}pooling = \"none\"")), "pooling");
    assert_eq!(key(&format!("{m}thresold = 0.9")), "thresold");
    assert_eq!(key("model = \"nowhere\""), "model");
    assert_eq!(
        key(&format!(
            "{m}verify_model = \"{}\"",
            "classifiers/testdata/tiny-bert-mean"
        )),
        "verify_threshold"
    );
    assert_eq!(
        key(&format!("{m}verify_threshold = 0.9")),
        "verify_threshold"
    );
    assert_eq!(
        key(&format!("{m}verify_max_length = 64")),
        "verify_max_length"
    );
    assert_eq!(
        key(&format!(
            "{m}verify_model = \"nowhere\"\nverify_threshold = 0.9"
        )),
        "verify_model"
    );
    assert_eq!(
        key(&format!(
            "{m}verify_model = \"classifiers/testdata/tiny-bert-mean\"\nverify_threshold = 1.5"
        )),
        "verify_threshold"
    );
    assert!(stage(DEF.example, &lib).is_ok());
}

/// A static model distilled from the tiny BERT (16 dims) into `dir/static`.
fn tiny_static(lib: &Path, dir: &Path) -> std::path::PathBuf {
    let enc = Encoder::open(
        &testing::testdata("tiny-bert-mean"),
        &EncoderOptions {
            runtime: crate::onnx::RuntimeOptions {
                library: Some(lib.to_path_buf()),
                ..Default::default()
            },
            pooling: Some(Pooling::Mean),
            ..Default::default()
        },
    )
    .unwrap();
    let texts = crate::onnx::tests::mixed_texts();
    let model_dir = dir.join("static");
    crate::static_embed::distill(
        &enc,
        texts.iter().map(|s| s.as_str()),
        &crate::static_embed::DistillOptions {
            dims: 16,
            ..Default::default()
        },
        &model_dir,
    )
    .unwrap();
    model_dir
}

/// A static model distilled here from the tiny BERT serves as the encoder: exact copies
/// across partitions go, the better copy stays, and the side files do not depend on threads.
#[test]
fn static_encoder_finds_copies_across_partitions() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tiny_static(&lib, tmp.path());
    let texts = crate::onnx::tests::mixed_texts();
    let g = stage(
        &format!(
            "model = \"{}\"\nthreshold = 0.9999\ncluster_docs = 4\nquality_signal = \"q\"",
            model_dir.display()
        ),
        &lib,
    )
    .unwrap();
    let parts = copies_in_two_partitions();
    let (out, _) = run(g.as_ref(), parts.clone(), 1, &tmp.path().join("r1"));
    for (d, o) in &out {
        let i: usize = d.id[1..].parse().unwrap();
        let copied = d.id.starts_with('a') && i % 2 == 0;
        // a7 extends a6 past the 126 tokens summed, so it embeds as a6 does.
        let shadowed = d.id == "a7";
        let empty = texts[i].trim().is_empty();
        if !empty {
            assert_eq!(!o.is_keep(), copied || shadowed, "{}", d.id);
        }
        assert_eq!(g.judge(&d.signals), *o, "judge agrees with the applier");
    }
    let (out4, _) = run(g.as_ref(), parts, 4, &tmp.path().join("r4"));
    for ((d1, o1), (d4, o4)) in out.iter().zip(&out4) {
        assert_eq!((d1.signals.to_json(), o1), (d4.signals.to_json(), o4));
    }
    assert!(
        testing::read_tree(&tmp.path().join("r1/out"))
            == testing::read_tree(&tmp.path().join("r4/out"))
    );
}

/// The mixed texts (`a*`) and, in a second partition, a better-quality copy (`b*`) of every
/// other one.
fn copies_in_two_partitions() -> Vec<Vec<Document>> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for (i, t) in crate::onnx::tests::mixed_texts().iter().enumerate() {
        let mut d = Document::new(format!("a{i}"), t.clone());
        d.signals.set_f64("q", 0.2);
        a.push(d);
        if i % 2 == 0 {
            let mut d = Document::new(format!("b{i}"), t.clone());
            d.signals.set_f64("q", 0.9);
            b.push(d);
        }
    }
    vec![a, b]
}

/// An encoder as the verifier runs it: one document per batch, mean-pooled, unit vectors.
fn verifier_alone(dir: &Path, lib: &Path) -> Encoder {
    Encoder::open(
        dir,
        &EncoderOptions {
            runtime: crate::onnx::RuntimeOptions {
                library: Some(lib.to_path_buf()),
                ..Default::default()
            },
            batch_size: 1,
            max_length: Some(128),
            pooling: Some(Pooling::Mean),
            normalize: Some(true),
            ..Default::default()
        },
    )
    .unwrap()
}

/// The verified cascade (`verify_model`): a static model distilled from the tiny BERT flags
/// pairs at a loose threshold and the tiny BERT re-scores them. Checked against both encoders
/// run on their own: every dropped document has a kept one that the model flags and the
/// verifier confirms; flagged pairs the verifier rejects stay; the judge agrees with the
/// applier; the stats count what the verifier did; outputs do not depend on threads.
#[test]
fn verified_cascade_drops_only_confirmed_pairs() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tiny_static(&lib, tmp.path());
    let (t, vt) = (0.5f32, 0.995f32);
    let g = stage(
        &format!(
            "model = \"{}\"\nthreshold = {t}\ncluster_docs = 100\nquality_signal = \"q\"\n\
             verify_model = \"classifiers/testdata/tiny-bert-mean\"\nverify_threshold = {vt}",
            model_dir.display()
        ),
        &lib,
    )
    .unwrap();
    let parts = copies_in_two_partitions();
    let (out, stats) = run(g.as_ref(), parts.clone(), 1, &tmp.path().join("r1"));
    let stat = StaticModel::open(&model_dir).unwrap();
    let verifier = verifier_alone(&testing::testdata("tiny-bert-mean"), &lib);
    let texts: Vec<&str> = out.iter().map(|(d, _)| d.text()).collect();
    let (se, ve) = (stat.embed(&texts), verifier.embed(&texts).unwrap());
    let kept: Vec<usize> = (0..out.len()).filter(|&i| out[i].1.is_keep()).collect();
    let mut flagged_kept = 0;
    for (i, (d, o)) in out.iter().enumerate() {
        let sim = d.signals.f64("semantic.nearest_sim").unwrap() as f32;
        let ver = d.signals.f64("semantic.verified_sim").unwrap() as f32;
        assert_eq!(g.judge(&d.signals), *o, "judge agrees with the applier");
        if o.is_keep() {
            assert!(ver < vt, "{}: kept at verified {ver}", d.id);
            flagged_kept += (sim >= t) as usize;
            continue;
        }
        assert!(sim >= t && ver >= vt, "{}: {sim} {ver}", d.id);
        // Codes are int8 (cosine error about 1e-3): the twin is found within that.
        let twin = kept.iter().any(|&k| {
            kmeans::dot(&se[i], &se[k]) >= t - 5e-3 && kmeans::dot(&ve[i], &ve[k]) >= vt - 1e-4
        });
        assert!(twin, "{}: no kept document both encoders put close", d.id);
    }
    // The copies, and a7 (a6 with a sentence past 128 tokens): what the tiny BERT alone drops
    // at 0.995 (`tiny_encoder_finds_copies_across_partitions`).
    assert_eq!(dropped_ids(&out), ["a0", "a2", "a4", "a6", "a7", "a8"]);
    let dedup = stats.iter().find(|s| s.name == "dedup").unwrap();
    let c = |k: &str| dedup.counters[k];
    assert_eq!(c("verify_checked"), c("verify_rejected") + 6);
    assert!(
        c("verify_rejected") > 0 && flagged_kept > 0,
        "the model flags more than copies"
    );
    assert!(c("verify_embedded") <= out.len() as u64 && c("verify_pairs") >= c("verify_checked"));
    let (out4, _) = run(g.as_ref(), parts, 4, &tmp.path().join("r4"));
    for ((d1, o1), (d4, o4)) in out.iter().zip(&out4) {
        assert_eq!((d1.signals.to_json(), o1), (d4.signals.to_json(), o4));
    }
    assert!(
        testing::read_tree(&tmp.path().join("r1/out"))
            == testing::read_tree(&tmp.path().join("r4/out"))
    );
}

/// A cheap model that flags every pair (threshold -1) with MiniLM as the verifier gives
/// exactly MiniLM's own decisions on the paraphrases: the lower-quality side of each pair goes,
/// unrelated documents on the same topics stay.
#[test]
fn verified_cascade_reproduces_minilm_when_everything_is_flagged() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tiny_static(&lib, tmp.path());
    let minilm = shared.join("data/models/all-minilm-l6-v2-int8");
    let g = stage(
        &format!(
            "model = \"{}\"\nthreshold = -1.0\ncluster_docs = 100\nquality_signal = \"q\"\n\
             verify_model = \"{}\"\nverify_threshold = 0.7",
            model_dir.display(),
            minilm.display()
        ),
        &lib,
    )
    .unwrap();
    let (out, stats) = run(g.as_ref(), paraphrase_parts(), 2, tmp.path());
    assert_eq!(
        dropped_ids(&out),
        (0..10).map(|i| format!("p{i}a")).collect::<Vec<_>>()
    );
    let dedup = stats.iter().find(|s| s.name == "dedup").unwrap();
    // Every document after the first is checked; each is embedded once.
    assert_eq!(dedup.counters["verify_checked"], out.len() as u64 - 1);
    assert_eq!(dedup.counters["verify_embedded"], out.len() as u64);
    for (d, o) in &out {
        assert_eq!(g.judge(&d.signals), *o);
        if d.id.starts_with('o') {
            assert!(d.signals.f64("semantic.verified_sim").unwrap() < 0.6);
        }
    }
}

/// The stage without an encoder (`Purpose::Select`): its steps run on embedding files written
/// here, as the collectors would write them.
fn steps_only(body: &str) -> Box<dyn GlobalStage> {
    let mut t: toml::Table = body.parse().unwrap();
    t.insert(
        "model".into(),
        toml::Value::String("classifiers/testdata/tiny-bert-mean".into()),
    );
    let root = testing::repo_root();
    match build(&StageArgs {
        name: "semantic",
        table: &t,
        base_dir: &root,
        purpose: Purpose::Select,
        seed: 7,
    })
    .unwrap()
    {
        Built::Global(g) => g,
        Built::Map(_) => panic!("a global stage"),
    }
}

/// Planted rows (dim 32): 600 bases around 6 topics (cosine about 0.5 between bases of a
/// topic); every third base also has an exact copy and a near copy (cosine about 0.995), both
/// of lower quality. Returns `(quality, vector, planted duplicate)` in global order.
fn planted_rows() -> Vec<(f32, Vec<f32>, bool)> {
    let dim = 32;
    let mut s = 0u64;
    let unit = |v: &mut Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= n);
    };
    let mut noise = |scale: f32| -> Vec<f32> {
        (0..dim)
            .map(|_| {
                s += 1;
                ((kmeans::mix64(s) >> 11) as f32 / (1u64 << 53) as f32 - 0.5) * scale
            })
            .collect()
    };
    let centers: Vec<Vec<f32>> = (0..6)
        .map(|_| {
            let mut c = noise(2.0);
            unit(&mut c);
            c
        })
        .collect();
    let mut out = Vec::new();
    for b in 0..600 {
        let m = noise(0.7);
        let mut v: Vec<f32> = centers[b % 6].iter().zip(&m).map(|(c, x)| c + x).collect();
        unit(&mut v);
        let q = 1.0 + (b as f32) * 1e-3;
        out.push((q, v.clone(), false));
        if b % 3 == 0 {
            out.push((q - 0.5, v.clone(), true));
            let m = noise(0.04);
            let mut near: Vec<f32> = v.iter().zip(&m).map(|(c, x)| c + x).collect();
            unit(&mut near);
            out.push((q - 0.6, near, true));
        }
    }
    out
}

/// Writes `rows` as the collectors of `parts` partitions would (row i to partition i mod
/// parts), runs every step on `threads` threads, and returns the centroid file, the step
/// stats and, per global row, whether it dropped.
/// Every global step of `g`, each task in order, over the collected partitions under `wd`.
fn global_steps(
    g: &dyn GlobalStage,
    store: &Arc<dyn Store>,
    wd: &str,
    partitions: usize,
    threads: usize,
    memory_budget: usize,
    dir: &Path,
) -> Vec<StepStats> {
    let sctx = StepCtx {
        store: store.clone(),
        dir: wd.into(),
        partitions,
        scratch: dir.join("scratch"),
        memory_budget,
        threads,
        seed: 7,
    };
    let mut stats = Vec::new();
    for step in g.steps() {
        for t in 0..step.tasks(&sctx).unwrap() {
            stats.push(step.run(t, &sctx).unwrap());
        }
    }
    stats
}

fn run_steps(
    g: &dyn GlobalStage,
    rows: &[(f32, Vec<f32>, bool)],
    parts: usize,
    threads: usize,
    budget: usize,
    dir: &Path,
) -> (Vec<u8>, Vec<StepStats>, Vec<bool>) {
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.join("out")).unwrap());
    let wd = "work/semantic".to_string();
    let mut scratch = Vec::new();
    for p in 0..parts {
        let mut w = store.create(&emb_path(&wd, p)).unwrap();
        w.write_all(&header(EMB_MAGIC, 32, 0)).unwrap();
        let mine: Vec<_> = rows.iter().skip(p).step_by(parts).collect();
        for (q, v, _) in &mine {
            write_emb_row(&mut w, *q, 100, v, &[], &mut scratch).unwrap();
        }
        w.finish().unwrap();
        let meta = EmbMeta {
            rows: mine.len() as u64,
            dim: 32,
            payload: 0,
        };
        put_json(store.as_ref(), &emb_meta_path(&wd, p), &meta).unwrap();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let stats = global_steps(g, &store, &wd, parts, threads, budget, dir);
        let mut dropped = vec![false; rows.len()];
        for p in 0..parts {
            let mut a = g
                .applier(&PartitionCtx {
                    store: store.clone(),
                    dir: wd.clone(),
                    partition: p,
                    partitions: parts,
                    scratch: dir.join("scratch"),
                    seed: 7,
                })
                .unwrap();
            for i in (p..rows.len()).step_by(parts) {
                dropped[i] = !a.apply(&mut Document::new("x", "")).is_keep();
            }
        }
        let c = store.read(&centroids_path(&wd)).unwrap();
        (c, stats, dropped)
    })
}

/// Dropped exact copies, dropped near copies, dropped rows that were not planted.
fn tally(rows: &[(f32, Vec<f32>, bool)], dropped: &[bool]) -> (usize, usize, usize) {
    let (mut exact, mut near, mut wrong) = (0, 0, 0);
    for (i, r) in rows.iter().enumerate() {
        match (r.2, dropped[i]) {
            (true, true) if r.1 == rows[i - 1].1 => exact += 1,
            (true, true) => near += 1,
            (false, true) => wrong += 1,
            _ => {}
        }
    }
    (exact, near, wrong)
}

fn counter(stats: &[StepStats], step: &str, key: &str) -> u64 {
    stats
        .iter()
        .filter(|s| s.name == step)
        .map(|s| s.counters.get(key).copied().unwrap_or(0))
        .sum()
}

/// The centroid tree (sample by content hash, fit, two streamed passes) is byte-identical with
/// 1 or 4 threads and 1, 3 or 300 partitions holding the rows in another order, and so are the
/// decisions; the planted copies are found and nothing else drops.
#[test]
fn centroids_do_not_depend_on_threads_or_partitioning() {
    let rows = planted_rows();
    let g =
        steps_only("threshold = 0.95\ncluster_docs = 50\nkmeans_sample = 300\nkmeans_passes = 2");
    let tmp = tempfile::tempdir().unwrap();
    let (c1, s1, d1) = run_steps(g.as_ref(), &rows, 1, 1, 1 << 30, &tmp.path().join("a"));
    let (c3, s3, d3) = run_steps(g.as_ref(), &rows, 3, 4, 1 << 30, &tmp.path().join("b"));
    assert!(c1 == c3, "centroids differ between 1 and 3 partitions");
    // 300 partitions: two ranges of side files (assign tasks, group and decision files).
    let (c300, s300, d300) = run_steps(g.as_ref(), &rows, 300, 2, 1 << 30, &tmp.path().join("c"));
    assert!(c1 == c300, "centroids differ between 1 and 300 partitions");
    assert_eq!(d1, d300);
    assert_eq!(s300.iter().filter(|s| s.name == "assign").count(), 2);
    // A quarter of the budget fits 3 partitions' rows (34 rows of 60 B at most): ranges of 3.
    let budget = 4 * 3 * 34 * 60;
    let (c3r, s3r, d3r) = run_steps(g.as_ref(), &rows, 30, 2, budget, &tmp.path().join("d"));
    assert!(c1 == c3r);
    assert_eq!(d1, d3r);
    assert_eq!(counter(&s3r, "centroids", "range"), 3);
    assert_eq!(s3r.iter().filter(|s| s.name == "assign").count(), 10);
    assert_eq!(counter(&s1, "centroids", "sample"), 300);
    assert_eq!(counter(&s1, "centroids", "passes"), 2);
    let k = counter(&s1, "centroids", "clusters");
    assert!((18..=23).contains(&k), "about 1000 / 50 clusters: {k}");
    assert!(
        counter(&s1, "centroids", "moved_centroids") > 0,
        "the passes refine"
    );
    assert_eq!(d1, d3);
    let (exact, near, wrong) = tally(&rows, &d1);
    // A near copy misses only when the boundary between two clusters falls between it and
    // its base.
    assert_eq!((exact, wrong), (200, 0));
    assert!(near >= 195, "{near} of 200 near copies");
    assert_eq!(counter(&s3, "dedup", "docs"), rows.len() as u64);
    assert!(counter(&s3, "dedup", "comparisons") > rows.len() as u64);
}

/// A cap far below the cluster sizes cuts clusters into pieces of neighbours along the seeded
/// direction: exact copies (same vector, same key) stay together, near copies nearly all do.
#[test]
fn cluster_cap_splits_big_clusters() {
    let rows = planted_rows();
    let g = steps_only("threshold = 0.95\ncluster_docs = 200\ncluster_cap = 50");
    let tmp = tempfile::tempdir().unwrap();
    let (_, stats, dropped) = run_steps(g.as_ref(), &rows, 2, 2, 1 << 30, tmp.path());
    let clusters = counter(&stats, "centroids", "clusters");
    let split = counter(&stats, "dedup", "split_clusters");
    assert!(split >= 1 && counter(&stats, "dedup", "blocks") > clusters);
    let (exact, near, wrong) = tally(&rows, &dropped);
    assert_eq!((exact, wrong), (200, 0));
    // A near copy is lost only when a cut falls between it and its base.
    assert!(
        near >= 160,
        "near copies found across pieces: {near} of 200"
    );
}

/// int8 codes: a unit vector survives with cosine > 0.9999, and identical vectors give
/// identical codes and unit self-similarity.
#[test]
fn codes_round_trip() {
    let rows = planted_rows();
    let (mut code, mut back) = (Vec::new(), Vec::new());
    for (_, v, _) in rows.iter().take(50) {
        code.clear();
        quantize(v, &mut code);
        assert_eq!(code.len(), code_len(32));
        dequantize(&code, &mut back);
        assert!(kmeans::dot(v, &back) > 0.9999);
        assert!((kmeans::dot(&back, &back) - 1.0).abs() < 1e-6);
    }
    code.clear();
    quantize(&[0.0; 4], &mut code);
    dequantize(&code, &mut back);
    assert_eq!(back, [0.0; 4]);
}

#[test]
fn token_payloads_round_trip() {
    for (width, ids) in [
        (2usize, vec![101u32, 7592, 65535, 102]),
        (4, vec![250_001, 0, 3]),
    ] {
        let mut b = Vec::new();
        put_tokens(&ids, 6, width, &mut b).unwrap();
        assert_eq!(b.len(), tokens_len(6, width), "fixed width");
        assert_eq!(get_tokens(&b).unwrap(), ids);
    }
    assert_eq!(token_width(30_522), 2);
    assert_eq!(token_width(250_002), 4);
    let mut b = Vec::new();
    assert!(put_tokens(&[70_000], 4, 2, &mut b).is_err(), "over 16 bits");
    assert!(
        put_tokens(&[1, 2, 3], 2, 2, &mut b).is_err(),
        "more than max"
    );
    assert_eq!(get_tokens(&[3, 1, 0, 0, 0]), None, "unknown width");
}
