//! Tests of the ONNX classifier on the committed tiny models (and the shared MiniLM encoder when
//! `../shared` is there), against onnxruntime-in-Python for parity.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::testing;

fn opts(lib: &Path) -> EncoderOptions {
    EncoderOptions {
        runtime: RuntimeOptions {
            library: Some(lib.to_path_buf()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Texts of every shape: short, empty, Unicode, code, and long ones that need truncation.
pub(crate) fn mixed_texts() -> Vec<String> {
    let mut v: Vec<String> = vec![
        "The river rose overnight and the bridge was closed.".into(),
        "".into(),
        "fn main() { println!(\"hi\"); }".into(),
        "Ünïcödé façade — naïve café, 東京 and Ελληνικά.".into(),
        "for (int i = 0; i < n; i++) sum += a[i];".into(),
        "   leading and trailing spaces   ".into(),
    ];
    let long_prose = "The old lighthouse keeper told stories about ships lost in the winter fog, \
                      and the children listened until the fire burned low. "
        .repeat(40);
    v.push(long_prose.clone());
    v.push(format!(
        "{long_prose} And at the very end: def f(x): return x * 2"
    ));
    v.push("word ".repeat(600));
    v.push("x".repeat(3000)); // one enormous "word": no whitespace to cut at
    v
}

fn write_jsonl(texts: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for t in texts {
        writeln!(f, "{}", serde_json::json!({ "text": t })).unwrap();
    }
    f.flush().unwrap();
    f
}

/// The Python reference's rows (`scripts/onnx_reference.py`).
pub(crate) fn reference(
    py: &Path,
    model: &Path,
    texts: &[String],
    extra: &[&str],
) -> Vec<Vec<f64>> {
    let f = write_jsonl(texts);
    let script = testing::repo_root().join("scripts/onnx_reference.py");
    let out = Command::new(py)
        .arg(script)
        .arg(model)
        .arg(f.path())
        .args(extra)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_close(ours: &[Vec<f32>], theirs: &[Vec<f64>], tol: f64, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: row count");
    let mut worst = 0f64;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: width of row {i}");
        for (x, y) in a.iter().zip(b) {
            let d = (*x as f64 - y).abs();
            worst = worst.max(d);
            assert!(d <= tol, "{what}: row {i}: {a:?} vs {b:?}");
        }
    }
    eprintln!(
        "{what}: max |difference| {worst:.2e} over {} rows",
        ours.len()
    );
}

#[test]
fn tiny_models_match_python_onnxruntime() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let Some(py) = testing::python_with(&["onnxruntime", "tokenizers", "numpy"]) else {
        return;
    };
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (name, extra) in [
        ("tiny-roberta-cls", vec![]),
        ("tiny-bert-mean", vec![]),
        ("tiny-roberta-cls", vec!["--truncation", "head_tail"]),
        (
            "tiny-bert-mean",
            vec!["--truncation", "head_tail", "--max-length", "24"],
        ),
    ] {
        let dir = testing::testdata(name);
        let mut o = opts(&lib);
        o.batch_size = 4;
        if extra.contains(&"head_tail") {
            o.truncation = Some(Truncation::HeadTail);
        }
        if extra.contains(&"24") {
            o.max_length = Some(24);
        }
        let m = OnnxClassifier::open(&dir, &o).unwrap();
        let ours = m.predict(&refs).unwrap();
        let theirs = reference(&py, &dir, &texts, &extra);
        assert_close(&ours, &theirs, 1e-4, &format!("{name} {extra:?}"));
    }
}

/// A RoBERTa classifier folder as `optimum` exports it (`scripts/make_test_onnx_model.py
/// --optimum`: model.onnx, tokenizer.json, config.json with id2label, tokenizer_config.json,
/// no curate file) loads through the generic loader and scores as Python onnxruntime does.
#[test]
fn optimum_roberta_folder_loads_and_matches_python() {
    let Some(_) = testing::init_ort() else {
        return;
    };
    let Some(py) = testing::python_with(&["onnx", "onnxruntime", "tokenizers", "numpy"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (name, extra) in [("single", vec![]), ("multi", vec!["--multi-label"])] {
        let dir = tmp.path().join(name);
        let out = Command::new(&py)
            .arg(testing::repo_root().join("scripts/make_test_onnx_model.py"))
            .arg("--optimum")
            .arg(&dir)
            .args(&extra)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "building the model failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!dir.join("curate.json").exists());
        let m = crate::load_model(&dir).unwrap();
        assert_eq!(m.labels(), ["negative", "neutral", "positive"]);
        let ours = m.predict(&refs).unwrap();
        let theirs = reference(&py, &dir, &texts, &[]);
        assert_close(
            &ours,
            &theirs,
            1e-4,
            &format!("optimum folder, {name}-label"),
        );
        // Softmax rows sum to one; the multi-label model's sigmoid scores do not.
        let sums: Vec<f32> = ours.iter().map(|r| r.iter().sum()).collect();
        let softmax = sums.iter().all(|s| (s - 1.0).abs() < 1e-4);
        assert_eq!(softmax, name == "single", "{name}: row sums {sums:?}");
    }
}

#[test]
fn tokens_equal_whole_text_truncation() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    // The windowed tokenization must equal tokenizing everything and truncating.
    for name in ["tiny-roberta-cls", "tiny-bert-mean"] {
        let dir = testing::testdata(name);
        for trunc in [Truncation::Head, Truncation::HeadTail] {
            let mut o = opts(&lib);
            o.truncation = Some(trunc);
            o.max_length = Some(40);
            let e = Encoder::open(&dir, &o).unwrap();
            let mut tk = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
            tk.with_padding(None);
            tk.with_truncation(None).unwrap();
            for t in mixed_texts() {
                let got = e.tokenize(&t).unwrap();
                let whole = tk.encode(t.as_str(), false).unwrap();
                let ids = whole.get_ids();
                // Both add two special tokens: <s> </s>, [CLS] [SEP].
                let budget = 40 - 2;
                let body: Vec<u32> = if ids.len() <= budget {
                    ids.to_vec()
                } else if trunc == Truncation::Head {
                    ids[..budget].to_vec()
                } else {
                    let h = budget / 4;
                    let mut v = ids[..h].to_vec();
                    v.extend_from_slice(&ids[ids.len() - (budget - h)..]);
                    v
                };
                assert_eq!(
                    &got.ids[1..got.ids.len() - 1],
                    &body[..],
                    "{name} {trunc:?} {t:.40}"
                );
                assert!(got.ids.len() <= 40);
            }
        }
    }
}

#[test]
fn batching_and_threads_do_not_change_scores() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let texts = mixed_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dir = testing::testdata("tiny-bert-mean");
    let mut base = None;
    // The last case has three threads wait for one session.
    for (batch, threads, sessions) in [
        (1, 1, None),
        (3, 1, None),
        (64, 1, None),
        (4, 2, None),
        (2, 1, Some(1)),
    ] {
        let mut o = opts(&lib);
        o.batch_size = batch;
        o.runtime.threads = threads;
        o.max_sessions = sessions;
        let m = OnnxClassifier::open(&dir, &o).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let got = pool.install(|| m.predict(&refs).unwrap());
        for row in &got {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        match &base {
            None => base = Some(got),
            Some(b) => {
                let b64: Vec<Vec<f64>> = b
                    .iter()
                    .map(|r: &Vec<f32>| r.iter().map(|&x| x as f64).collect())
                    .collect();
                assert_close(
                    &got,
                    &b64,
                    1e-5,
                    &format!("batch {batch} threads {threads}"),
                );
            }
        }
    }
    // Same batch size: bit-identical whatever the rayon pool size (determinism of outputs).
    let m = OnnxClassifier::open(&dir, &opts(&lib)).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let four = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    assert_eq!(
        one.install(|| m.predict(&refs).unwrap()),
        four.install(|| m.predict(&refs).unwrap())
    );
}

#[test]
fn fitted_head_tells_prose_from_code() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let m = OnnxClassifier::open(&testing::testdata("tiny-bert-mean"), &opts(&lib)).unwrap();
    assert_eq!(m.labels(), ["code", "prose"]);
    // Lines of the script's training set: the head was fitted on them.
    let texts = [
        "The river rose overnight and the village woke to find the bridge under water.",
        "She walked to the market every morning to buy bread, fruit and fresh flowers.",
        "for (int i = 0; i < n; i++) { sum += values[i] * weights[i]; }",
        "const total = items.reduce((acc, x) => acc + x.price, 0);",
    ];
    let p = m.predict(&texts).unwrap();
    assert!(p[0][1] > 0.5 && p[1][1] > 0.5, "{p:?}");
    assert!(p[2][0] > 0.5 && p[3][0] > 0.5, "{p:?}");
}

#[test]
fn load_model_dispatches_directories_here() {
    let Some(_) = testing::init_ort() else {
        return;
    };
    let m = crate::load_model(&testing::testdata("tiny-roberta-cls")).unwrap();
    assert_eq!(m.kind(), "onnx");
    assert_eq!(m.labels(), ["code", "math", "prose"]);
    let p = m.predict(&["hello world", "x = 1"]).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].len(), 3);
}

#[test]
fn clear_errors() {
    // No library configured at all.
    let e = runtime::library_path(None);
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    }
    let Some(lib) = testing::ort_library() else {
        return;
    };
    // CUDA asked for on the CPU build of the library.
    let mut o = opts(&lib);
    o.runtime.device = Device::Cuda;
    if !runtime::cuda_available(&o.runtime).unwrap() {
        let msg = OnnxClassifier::open(&testing::testdata("tiny-roberta-cls"), &o)
            .err()
            .expect("no CUDA here")
            .to_string();
        assert!(
            msg.contains("CUDA") && msg.contains("onnxruntime-gpu"),
            "{msg}"
        );
    }
    // An encoder with a head-less per-token output cannot be a classifier.
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.onnx", "tokenizer.json"] {
        std::fs::copy(
            testing::testdata("tiny-bert-mean").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("curate.json"), r#"{"pooling": "none"}"#).unwrap();
    let msg = OnnxClassifier::open(dir.path(), &opts(&lib))
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("pooling"), "{msg}");
    std::fs::write(dir.path().join("curate.json"), r#"{"pooling": "mean"}"#).unwrap();
    let msg = OnnxClassifier::open(dir.path(), &opts(&lib))
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("head"), "{msg}");
    // ... but it is a fine encoder.
    let mut o = opts(&lib);
    o.pooling = Some(Pooling::Mean);
    let e = Encoder::open(dir.path(), &o).unwrap();
    assert_eq!(e.dim(), 32);
    // Unknown keys in curate.json are named.
    std::fs::write(
        dir.path().join("curate.json"),
        r#"{"pooling": "mean", "lables": []}"#,
    )
    .unwrap();
    let msg = ModelSpec::read(dir.path()).err().unwrap().to_string();
    assert!(msg.contains("lables"), "{msg}");
    // A missing tokenizer is named.
    std::fs::write(dir.path().join("curate.json"), r#"{"pooling": "mean"}"#).unwrap();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let msg = ModelSpec::read(dir.path()).err().unwrap().to_string();
    assert!(msg.contains("tokenizer.json"), "{msg}");
}

/// The shared MiniLM encoder: embeddings equal Python's, and a paraphrase is closer than an
/// unrelated sentence (the README's check).
/// The fast WordPiece path of `Encoder::tokenize` (BERT tokenizers, head truncation) gives
/// the `tokenizers` pipeline's ids and type ids: the tiny BERT on the mixed texts, and MiniLM
/// on the 1,080 real extracted pages (75 languages' scripts among them) at 128 tokens.
#[test]
fn fast_tokens_equal_the_tokenizers_pipeline() {
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let mut o = opts(&lib);
    o.max_length = Some(40);
    let tiny = Encoder::open(&testing::testdata("tiny-bert-mean"), &o).unwrap();
    let mut cases: Vec<(&Encoder, String)> =
        mixed_texts().into_iter().map(|t| (&tiny, t)).collect();
    let minilm;
    if let Some(shared) = testing::shared() {
        o.max_length = Some(128);
        o.pooling = Some(Pooling::Mean);
        minilm = Encoder::open(&shared.join("data/models/all-minilm-l6-v2-int8"), &o).unwrap();
        let gz =
            std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz), &mut s).unwrap();
        for l in s.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            cases.push((&minilm, v["text"].as_str().unwrap().to_string()));
        }
        assert!(cases.len() > 1000);
    }
    for (e, t) in &cases {
        assert!(
            e.fast_tokens(),
            "a BERT WordPiece tokenizer takes the fast path"
        );
        assert_eq!(
            e.tokenize(t).unwrap(),
            e.tokenize_with_tokenizers(t).unwrap(),
            "{t:.60}"
        );
    }
    // RoBERTa's byte-level BPE has no fast path.
    let roberta = Encoder::open(&testing::testdata("tiny-roberta-cls"), &opts(&lib)).unwrap();
    assert!(!roberta.fast_tokens());
}

#[test]
fn minilm_embeddings_match_python() {
    let Some(shared) = testing::shared() else {
        return;
    };
    let Some(lib) = testing::ort_library() else {
        return;
    };
    let Some(py) = testing::python_with(&["onnxruntime", "tokenizers", "numpy"]) else {
        return;
    };
    let dir: PathBuf = shared.join("data/models/all-minilm-l6-v2-int8");
    let mut o = opts(&lib);
    o.pooling = Some(Pooling::Mean);
    o.normalize = Some(true);
    o.max_length = Some(128);
    let e = Encoder::open(&dir, &o).unwrap();
    assert_eq!(e.dim(), 384);
    let mut texts: Vec<String> = vec![
        "The quick brown fox jumps over the lazy dog.".into(),
        "A fast brown fox leaps over a sleepy dog.".into(),
        "Integral of x squared from zero to one equals one third.".into(),
    ];
    texts.extend(mixed_texts());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ours = e.embed(&refs).unwrap();
    let theirs = reference(
        &py,
        &dir,
        &texts,
        &[
            "--embed",
            "--pooling",
            "mean",
            "--normalize",
            "--max-length",
            "128",
        ],
    );
    assert_close(&ours, &theirs, 1e-4, "minilm embeddings");
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!((cos(&ours[0], &ours[1]) - 0.8519).abs() < 2e-3);
    assert!(cos(&ours[0], &ours[2]).abs() < 0.05);
}
