//! fastText on the real classifier data (../shared/data/classifiers): a topic model trained with
//! `curate train fasttext`'s defaults (fewer epochs, to keep the test short) separates the four
//! topics on held-out file groups, and Python fastText loads it and predicts the same.
//! The full figures (defaults, all epochs, both tasks, next to Python fastText) come from
//! `cargo bench -p curate-benches --bench fasttext_eval`.

mod common;

use classifiers::fasttext::dict::hash;
use classifiers::fasttext::train::{TrainOptions, Trainer};
use classifiers::fasttext::{FastText, Session};
use common::*;

struct Doc {
    label: String,
    text: String,
    val: bool,
}

fn topic_docs(dir: &std::path::Path) -> Vec<Doc> {
    let mut docs = Vec::new();
    for t in ["general", "math", "code", "multilingual"] {
        for l in gunzip(&dir.join(format!("topic-{t}-train.jsonl.gz"))).lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap();
            // Split by file group (all chunks of a file on one side), a quarter held out.
            let group = id.split('#').next().unwrap();
            docs.push(Doc {
                label: v["label"].as_str().unwrap().to_string(),
                text: v["text"].as_str().unwrap().to_string(),
                val: hash(group.as_bytes()) % 4 == 0,
            });
        }
    }
    docs
}

#[test]
fn topic_model_on_real_data() {
    let Some(dir) = shared("data/classifiers") else {
        testkit::skip!("../shared/data/classifiers is absent")
    };
    let docs = topic_docs(&dir);
    let o = TrainOptions {
        epoch: 5,
        ..TrainOptions::default()
    };
    let mut t = Trainer::new(o.clone());
    for d in docs.iter().filter(|d| !d.val) {
        t.add(&d.label, &d.text);
    }
    let (m, report) = t.train().unwrap();
    assert_eq!(report.labels.len(), 4);
    let val: Vec<&Doc> = docs.iter().filter(|d| d.val).collect();
    let mut s = Session::default();
    let mut correct = 0;
    let mut per_class = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for d in &val {
        let p = m.predict(&d.text, &o.preprocess, 1, 0.0, &mut s);
        let ok = m.labels()[p[0].1] == d.label;
        correct += ok as usize;
        let e = per_class.entry(d.label.as_str()).or_default();
        e.0 += ok as usize;
        e.1 += 1;
    }
    let acc = correct as f64 / val.len() as f64;
    eprintln!(
        "topic validation accuracy {acc:.4} on {} docs; per class {per_class:?}",
        val.len()
    );
    assert!(acc > 0.93, "accuracy {acc}");
    for (c, (ok, n)) in &per_class {
        assert!(*ok as f64 / *n as f64 > 0.85, "{c}: {ok}/{n}");
    }

    let Some(py) = fasttext_python() else {
        testkit::skip!("the Python part: no Python with fasttext (set CURATE_PY)")
    };
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("topic.bin");
    m.save(&path).unwrap();
    let texts: Vec<String> = val
        .iter()
        .step_by(5)
        .map(|d| o.preprocess.normalize(&d.text))
        .collect();
    let input = tmp.path().join("texts.txt");
    std::fs::write(&input, texts.join("\n") + "\n").unwrap();
    let out = tmp.path().join("py.jsonl");
    run_peer(
        &py,
        &[
            "predict",
            path.to_str().unwrap(),
            input.to_str().unwrap(),
            out.to_str().unwrap(),
            "-1",
        ],
    );
    let back = FastText::load(&path).unwrap();
    let mut max_diff = 0f32;
    for (t, line) in texts
        .iter()
        .zip(std::fs::read_to_string(&out).unwrap().lines())
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ours = back.predict_line(t, 0, 0.0, &mut s);
        assert_eq!(back.labels()[ours[0].1], v["labels"][0].as_str().unwrap());
        // Lower ranks can swap where probabilities tie at fastText's 1e-5 floor: compare by label.
        let py: std::collections::HashMap<&str, f32> = v["labels"]
            .as_array()
            .unwrap()
            .iter()
            .zip(v["probs"].as_array().unwrap())
            .map(|(l, p)| (l.as_str().unwrap(), p.as_f64().unwrap() as f32))
            .collect();
        assert_eq!(py.len(), ours.len());
        for (p, i) in &ours {
            max_diff = max_diff.max((p - py[back.labels()[*i].as_str()]).abs());
        }
    }
    eprintln!("{} texts, max |p - p_python| = {max_diff:e}", texts.len());
    assert!(max_diff < 1e-4);
}
