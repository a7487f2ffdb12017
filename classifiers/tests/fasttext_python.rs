//! Parity with Python fastText: the same model file gives the same predictions on both sides.

mod common;

use classifiers::fasttext::{FastText, Session};
use common::*;

/// Compares our `predict(k)` with Python's on every line of `texts` (already normalized).
fn compare(model_path: &std::path::Path, texts: &[String], k: usize, py: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let out = dir.path().join("py.jsonl");
    run_peer(
        py,
        &[
            "predict",
            model_path.to_str().unwrap(),
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            &k.to_string(),
        ],
    );
    let model = FastText::load(model_path).unwrap();
    let mut s = Session::default();
    let py_lines = std::fs::read_to_string(&out).unwrap();
    let mut label_mismatch = 0;
    let mut max_diff = 0f32;
    for (text, line) in texts.iter().zip(py_lines.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ours = model.predict_line(text, k, 0.0, &mut s);
        let py_labels: Vec<&str> = v["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let py_probs: Vec<f32> = v["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap() as f32)
            .collect();
        // fastText prunes leaves at its log(threshold + 1e-5) floor; a leaf right at the floor
        // may fall on either side by rounding, so lengths may differ by such leaves only.
        let n = ours.len().min(py_labels.len());
        assert!(
            ours[n..].iter().all(|p| p.0 < 1e-4) && py_probs[n..].iter().all(|p| *p < 1e-4),
            "{text}: ours {ours:?} python {py_labels:?} {py_probs:?}"
        );
        // Compare the top label; ties at deeper ranks may order differently.
        if model.labels()[ours[0].1] != py_labels[0] {
            label_mismatch += 1;
            eprintln!(
                "mismatch on {text:?}: ours {:?} python {:?}",
                ours.iter()
                    .map(|(p, i)| (model.labels()[*i].clone(), *p))
                    .collect::<Vec<_>>(),
                py_labels.iter().zip(&py_probs).collect::<Vec<_>>()
            );
        }
        for ((p, i), (pl, pp)) in ours.iter().zip(py_labels.iter().zip(&py_probs)) {
            if model.labels()[*i] == *pl {
                max_diff = max_diff.max((p - pp).abs());
            }
        }
    }
    eprintln!(
        "{} texts, {label_mismatch} top-label mismatches, max |p - p_py| = {max_diff:e}",
        texts.len()
    );
    assert_eq!(label_mismatch, 0);
    assert!(max_diff < 1e-4, "max probability difference {max_diff}");
}

#[test]
fn lid176_ftz_matches_python() {
    let (Some(model), Some(data)) = (
        shared("data/langid/models/lid.176.ftz"),
        shared("data/langid/lingua-testdata"),
    ) else {
        testkit::skip!("../shared/data/langid is absent")
    };
    let Some(py) = fasttext_python() else {
        testkit::skip!("no Python with fasttext (set CURATE_PY)")
    };
    let mut texts = Vec::new();
    for lang in [
        "de", "en", "fr", "ru", "zh", "ja", "ar", "el", "hi", "vi", "tr", "pl",
    ] {
        for kind in ["sentences", "word-pairs"] {
            let p = data.join(lang).join(format!("{kind}.txt.gz"));
            texts.extend(gunzip(&p).lines().take(60).map(|l| l.trim().to_string()));
        }
    }
    compare(&model, &texts, 3, &py);
}
