use std::io::BufRead;

use super::*;
use crate::onnx::{Encoder, EncoderOptions, Pooling, RuntimeOptions};
use crate::testing;

/// `text` fields of a JSONL(.gz) file, at most `n`.
pub(crate) fn texts(path: &Path, n: usize) -> Vec<String> {
    let f = std::fs::File::open(path).unwrap();
    let r: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    std::io::BufReader::new(r)
        .lines()
        .take(n)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(&l.unwrap()).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn wordpiece_ids_equal_tokenizers_on_real_pages() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let tok = shared.join("data/models/all-minilm-l6-v2-int8/tokenizer.json");
    let (hf, fast) = load_tokenizer(&tok).unwrap();
    let fast = fast.expect("the MiniLM tokenizer takes the fast path");
    // Real pages (mostly German: the per-word fallback runs), code, and edge cases.
    let mut docs = texts(
        &shared.join("data/corpora/warc-extracted-texts.jsonl.gz"),
        300,
    );
    docs.extend(texts(
        &shared.join("data/classifiers/topic-code-train.jsonl.gz"),
        40,
    ));
    docs.extend(
        [
            "",
            "   ",
            "Café déjà-vu NAÏVE",
            "don't stop—it's 3.14159!",
            "tab\tand\u{b}vertical\u{c}feed\u{85}nel and\u{a0}nbsp",
            "中文字符和日本語のテキスト",
            "emoji 🙂 ok",
            &"x".repeat(150),
            "supercalifragilisticexpialidocious unbelievably",
            "a\u{0}b\u{7f}c \u{fffd}d",
        ]
        .map(String::from),
    );
    let mut ids = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let want = hf.encode(d.as_str(), false).unwrap().get_ids().to_vec();
        ids.clear();
        fast.encode(d, usize::MAX, &mut ids);
        assert_eq!(ids, want, "document {i}: {:?}", &d[..d.len().min(200)]);
        // A limit keeps exactly the first ids.
        ids.clear();
        fast.encode(d, 126, &mut ids);
        assert_eq!(ids, want[..want.len().min(126)], "document {i}, limited");
    }
}

#[test]
fn wordpiece_ids_equal_tokenizers_in_75_languages() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let tok = shared.join("data/models/all-minilm-l6-v2-int8/tokenizer.json");
    let (hf, fast) = load_tokenizer(&tok).unwrap();
    let fast = fast.expect("the MiniLM tokenizer takes the fast path");
    // Every script of the lingua test sentences (CJK, Thai, Devanagari, Arabic, Hangul,
    // accented Latin, ...): 40 sentences per language, plus odd marks and compatibility forms.
    let dir = shared.join("data/langid/lingua-testdata");
    let mut langs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    langs.sort();
    assert!(
        langs.len() >= 70,
        "{} languages in {}",
        langs.len(),
        dir.display()
    );
    let mut docs = Vec::new();
    for l in &langs {
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(
                std::fs::File::open(l.join("sentences.txt.gz")).unwrap(),
            ),
            &mut s,
        )
        .unwrap();
        docs.extend(s.lines().take(40).map(String::from));
    }
    docs.extend(
        [
            "\u{212b}ngstr\u{f6}m \u{fb01}ne \u{2163} \u{130}stanbul \u{1e9e}\u{df} \u{3a3}\u{3a3}",
            "e\u{301}\u{327} a\u{308}\u{304}b \u{200b}zero\u{200d}width\u{feff} \u{e000}pua",
            "\u{f900}\u{fa0e}\u{2f800} \u{ff21}\u{ff41} \u{2028}line\u{2029}para\u{3000}ideo",
            "\u{ac00}\u{d7a3} \u{1100}\u{1161} \u{e01}\u{e34}\u{e48} \u{915}\u{93f}\u{94d}",
            &"\u{e9}".repeat(101),
            &"\u{e9}".repeat(100),
        ]
        .map(String::from),
    );
    let mut ids = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let want = hf.encode(d.as_str(), false).unwrap().get_ids().to_vec();
        ids.clear();
        fast.encode(d, usize::MAX, &mut ids);
        assert_eq!(ids, want, "sentence {i}: {d:?}");
    }
}

#[test]
fn jacobi_diagonalises_a_symmetric_matrix() {
    let d = 12;
    let mut a = vec![0f64; d * d];
    for i in 0..d {
        for j in i..d {
            let v = ((i * 7 + j * 13) as f64).sin() + if i == j { 3.0 } else { 0.0 };
            a[i * d + j] = v;
            a[j * d + i] = v;
        }
    }
    let (vals, vecs) = distill::jacobi_eigen(a.clone(), d);
    for c in 0..d {
        for r in 0..d {
            let av: f64 = (0..d).map(|k| a[r * d + k] * vecs[k * d + c]).sum();
            assert!((av - vals[c] * vecs[r * d + c]).abs() < 1e-9, "A v = λ v");
        }
        let n: f64 = (0..d).map(|k| vecs[k * d + c].powi(2)).sum();
        assert!((n - 1.0).abs() < 1e-9);
    }
}

#[test]
fn vectors_round_trip_through_int8() {
    let v: Vec<f32> = (0..6 * 5).map(|i| ((i as f32) * 0.77).sin()).collect();
    let b = encode_vectors(&v, 6, 5);
    let back = decode_vectors(&b, 6, 5).unwrap();
    for (x, y) in v.iter().zip(&back) {
        assert!((x - y).abs() <= 1.0 / 127.0 * 0.5 + 1e-6);
    }
    assert!(decode_vectors(&b, 6, 4)
        .unwrap_err()
        .contains("static.json"));
    assert!(decode_vectors(&b[..b.len() - 1], 6, 5).is_err());
}

/// Options for the committed tiny BERT as a teacher (mean pooling, not normalized); `None`
/// (printed) without onnxruntime.
fn tiny_bert_options() -> Option<EncoderOptions> {
    let lib = testing::ort_library()?;
    Some(EncoderOptions {
        runtime: RuntimeOptions {
            library: Some(lib),
            ..Default::default()
        },
        pooling: Some(Pooling::Mean),
        normalize: Some(false),
        ..Default::default()
    })
}

/// The committed tiny BERT as a teacher, or `None` (printed) without onnxruntime.
fn tiny_bert() -> Option<Encoder> {
    let opts = tiny_bert_options()?;
    Some(Encoder::open(&testing::testdata("tiny-bert-mean"), &opts).unwrap())
}

/// Frequency text for the tiny BERT's distillations.
const TINY_CORPUS: [&str; 3] = [
    "the cat sat on the mat and the dog sat on the log",
    "fn main() { println!(\"hello\"); }",
    "the quick brown fox",
];

/// Distils the committed tiny BERT (WordPiece, mean pooling) and checks the model it writes.
#[test]
fn distills_tiny_bert_deterministically() {
    let Some(enc) = tiny_bert() else {
        return;
    };
    let corpus = TINY_CORPUS;
    let dir = tempfile::tempdir().unwrap();
    let d = DistillOptions {
        dims: 8,
        ..Default::default()
    };
    let r = pool(1)
        .install(|| distill(&enc, corpus.iter().copied(), &d, &dir.path().join("a")))
        .unwrap();
    pool(3)
        .install(|| distill(&enc, corpus.iter().copied(), &d, &dir.path().join("b")))
        .unwrap();
    assert_eq!(
        testing::read_tree(&dir.path().join("a")),
        testing::read_tree(&dir.path().join("b")),
        "same files for 1 and 3 threads"
    );
    assert_eq!(r.dim, 8);
    assert!(r.explained_variance > 0.0 && r.explained_variance <= 1.0 + 1e-9);
    assert!(r.frequency_tokens > 20);
    let m = StaticModel::open(&dir.path().join("a")).unwrap();
    assert_eq!(m.dim(), 8);
    assert_eq!(m.meta().max_tokens, enc.spec().max_length - 2);
    // "the" is the most frequent token: its weight a/(a+p) is tiny next to an unseen token's.
    let mut ids = Vec::new();
    m.token_ids("the", 10, &mut ids);
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let the = norm(m.token_vector(ids[0]));
    m.token_ids("zebra", 10, &mut ids);
    let rare = norm(m.token_vector(ids[0]));
    assert!(the < rare * 0.05, "the {the} vs rare {rare}");
    // Embeddings: unit length, equal for equal texts, zero for no tokens.
    let e = m.embed(&["the cat sat", "the cat sat", ""]);
    assert!((norm(&e[0]) - 1.0).abs() < 1e-5);
    assert_eq!(e[0], e[1]);
    assert!(e[2].iter().all(|&x| x == 0.0));
    // Without a head it is not a classifier, and says how to make one.
    let err = crate::load_model(&dir.path().join("a")).err().unwrap();
    assert!(err.to_string().contains("curate train head"), "{err}");

    // Common directions: with k removed, every row lies in a (dims - k)-wide subspace, so the
    // rows' second moment has k eigenvalues at zero (up to the int8 rounding); without, none.
    let spectrum = |k: usize| {
        let out = dir.path().join(format!("r{k}"));
        let o = DistillOptions {
            remove_components: k,
            ..d.clone()
        };
        distill(&enc, corpus.iter().copied(), &o, &out).unwrap();
        let m = StaticModel::open(&out).unwrap();
        assert_eq!(m.meta().removed_components, k);
        let mut c = vec![0f64; 64];
        for id in 0..m.meta().vocab as u32 {
            let v = m.token_vector(id);
            for i in 0..8 {
                for j in 0..8 {
                    c[i * 8 + j] += v[i] as f64 * v[j] as f64;
                }
            }
        }
        let mut e = distill::jacobi_eigen(c, 8).0;
        e.sort_by(f64::total_cmp);
        e
    };
    let (e0, e2) = (spectrum(0), spectrum(2));
    assert!(e2[1] < 1e-3 * e2[7], "removed: {e2:?}");
    assert!(e2[2] > 1e-2 * e2[7], "kept: {e2:?}");
    assert!(e0[0] > 1e-3 * e0[7], "none removed: {e0:?}");
}

/// Position weights: kept in `static.json`, applied as `1 + boost * exp(-p / scale)` to the
/// window's tokens, so two windows of the same words in another order differ, where the
/// plain sum makes them one; a bad weight in the file is a format error.
#[test]
fn position_weights_make_the_order_count() {
    let Some(enc) = tiny_bert() else {
        return;
    };
    let corpus = TINY_CORPUS;
    let dir = tempfile::tempdir().unwrap();
    let w = PositionWeight {
        boost: 2.0,
        scale: 4.0,
    };
    let make = |name: &str, pw: Option<PositionWeight>| {
        let d = DistillOptions {
            dims: 8,
            position_weight: pw,
            ..Default::default()
        };
        distill(&enc, corpus.iter().copied(), &d, &dir.path().join(name)).unwrap();
        StaticModel::open(&dir.path().join(name)).unwrap()
    };
    let (plain, weighted) = (make("plain", None), make("weighted", Some(w)));
    assert_eq!(plain.meta().position_weight, None);
    assert_eq!(weighted.meta().position_weight, Some(w));
    let (a, b) = (
        "cat dog fox river mat log bank",
        "bank log mat river fox dog cat",
    );
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    let e = plain.embed(&[a, b]);
    assert!(dot(&e[0], &e[1]) > 0.9999, "a plain sum has no order");
    let e = weighted.embed(&[a, b, a]);
    assert!(dot(&e[0], &e[1]) < 0.99, "{}", dot(&e[0], &e[1]));
    assert_eq!(e[0], e[2]);
    // The embedding is the weighted sum of the token rows, normalised.
    let mut ids = Vec::new();
    weighted.token_ids(a, weighted.meta().max_tokens, &mut ids);
    let mut sum = vec![0f32; 8];
    for (p, &id) in ids.iter().enumerate() {
        let k = 1.0 + 2.0 * (-(p as f32) / 4.0).exp();
        sum.iter_mut()
            .zip(weighted.token_vector(id))
            .for_each(|(s, x)| *s += k * x);
    }
    let n = dot(&sum, &sum).sqrt();
    for (x, y) in sum.iter().zip(&e[0]) {
        assert!((x / n - y).abs() < 1e-5);
    }
    // A scale of 0 in the file is refused at load.
    let meta_path = dir.path().join("weighted").join("static.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["position_weight"]["scale"] = 0.0.into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let err = StaticModel::open(&dir.path().join("weighted"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("position_weight"), "{err}");
}

/// Mean |static cosine - teacher cosine| over every pair of `docs`.
fn cosine_gap(m: &StaticModel, teacher: &Encoder, docs: &[&str]) -> f64 {
    let s = m.embed(docs);
    let t = teacher.embed(docs).unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x * y) as f64).sum::<f64>();
    let (mut gap, mut n) = (0.0, 0);
    for i in 0..docs.len() {
        for j in i + 1..docs.len() {
            gap += (dot(&s[i], &s[j]) - dot(&t[i], &t[j])).abs();
            n += 1;
        }
    }
    gap / n as f64
}

/// Step 5 on real text: fitting the table to the teacher's embeddings of windows of one set of
/// documents brings the static model's pairwise cosines closer to the teacher's on other
/// documents; the fitted model is the same for 1 and 3 threads and with the teacher's outputs
/// read back from the cache.
#[test]
fn fit_brings_cosines_toward_the_teacher_on_held_out_text() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let Some(opts) = tiny_bert_options() else {
        return;
    };
    let enc = Encoder::open(&testing::testdata("tiny-bert-mean"), &opts).unwrap();
    let unit = Encoder::open(
        &testing::testdata("tiny-bert-mean"),
        &EncoderOptions {
            normalize: Some(true),
            ..opts.clone()
        },
    )
    .unwrap();
    // Prose, code and math documentation: fit on the first ones, score on the last 30.
    let mut docs = Vec::new();
    for f in ["topic-general", "topic-code", "topic-math"] {
        docs.extend(texts(
            &shared.join(format!("data/classifiers/{f}-train.jsonl.gz")),
            50,
        ));
    }
    let held: Vec<&str> = docs
        .iter()
        .skip(40)
        .step_by(5)
        .map(|s| s.as_str())
        .collect();
    let fit: Vec<&str> = docs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 40 || (i - 40) % 5 != 0)
        .map(|(_, s)| s.as_str())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let d = DistillOptions {
        dims: 16,
        cache: Some(cache.clone()),
        ..Default::default()
    };
    let freq = || fit.iter().copied();
    distill(&enc, freq(), &d, &dir.path().join("plain")).unwrap();
    let r = pool(1)
        .install(|| distill_with(&enc, freq(), &fit, &d, &dir.path().join("a")))
        .unwrap();
    let f = r.fit.expect("fitted");
    assert!(f.windows > 100 && f.tokens_fitted > 100, "{f:?}");
    assert!(f.cosine_after > f.cosine_before, "{f:?}");
    assert!(f.residual < 0.05, "{f:?}");
    assert!(
        std::fs::read_dir(&cache).unwrap().count() >= 2,
        "token vectors and window targets cached"
    );
    pool(3)
        .install(|| distill_with(&enc, freq(), &fit, &d, &dir.path().join("b")))
        .unwrap();
    let without_cache = DistillOptions {
        cache: None,
        ..d.clone()
    };
    distill_with(&enc, freq(), &fit, &without_cache, &dir.path().join("c")).unwrap();
    let tree = |n: &str| testing::read_tree(&dir.path().join(n));
    assert_eq!(tree("a"), tree("b"), "same files for 1 and 3 threads");
    assert_eq!(
        tree("a"),
        tree("c"),
        "same files with and without the cache"
    );

    let plain = StaticModel::open(&dir.path().join("plain")).unwrap();
    let fitted = StaticModel::open(&dir.path().join("a")).unwrap();
    assert_eq!(fitted.meta().fit_windows, f.windows);
    assert_eq!(plain.meta().fit_windows, 0);
    let (g0, g1) = (
        cosine_gap(&plain, &unit, &held),
        cosine_gap(&fitted, &unit, &held),
    );
    eprintln!("held-out mean |cosine gap|: distilled {g0:.4}, fitted {g1:.4}");
    assert!(g1 < 0.7 * g0, "distilled {g0:.4}, fitted {g1:.4}");
}

/// Pair rows (`FitOptions::pairs`): the second solve brings the static cosines of the pairs the
/// first one put too close nearer to the teacher's, and the table is the same for 1 and 3
/// threads (the pairs are chosen in a fixed order).
#[test]
fn pair_rows_pull_apart_what_the_teacher_tells_apart() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let Some(enc) = tiny_bert() else {
        return;
    };
    let mut docs = Vec::new();
    for f in ["topic-general", "topic-code"] {
        docs.extend(texts(
            &shared.join(format!("data/classifiers/{f}-train.jsonl.gz")),
            30,
        ));
    }
    let fit: Vec<&str> = docs.iter().map(|s| s.as_str()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut d = DistillOptions {
        dims: 16,
        ..Default::default()
    };
    d.fit.pairs = 300;
    d.fit.pair_weight = 4.0;
    let run = |threads: usize, out: &str| {
        pool(threads)
            .install(|| distill_with(&enc, fit.iter().copied(), &fit, &d, &dir.path().join(out)))
            .unwrap()
    };
    let f = run(1, "a").fit.expect("fitted");
    assert_eq!(f.pairs, 300, "{f:?}");
    let (before, after) = (f.pair_excess_before.unwrap(), f.pair_excess_after.unwrap());
    assert!(before > 0.0, "{f:?}");
    assert!(after < 0.8 * before, "{f:?}");
    run(3, "b");
    let tree = |n: &str| testing::read_tree(&dir.path().join(n));
    assert_eq!(tree("a"), tree("b"), "same files for 1 and 3 threads");
}

/// A thread pool of `n` threads (determinism checks run the same work under several).
fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}
