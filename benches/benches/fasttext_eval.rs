//! Quality of `curate train fasttext`'s defaults on the shared classifier data: ROC AUC of the
//! quality model (`hq` against web text) and per-class P/R and macro-F1 of the topic model, on
//! validation splits carved out of the train files by file group (a quarter of the groups).
//! With a Python fastText present, the same splits train Python fastText with its defaults and
//! with the tuned settings, for comparison.
//! Run: cargo bench -p curate-benches --bench fasttext_eval [-- key=value ...] (overrides of
//! the defaults, for tuning: epoch lr dim word_ngrams buckets min_count minn maxn loss max_chars
//! split_punct seed task=quality|topic). CURATE_EVAL_PY_PARAMS="epoch=25 dim=32 ..." replaces
//! the Python runs by one with these parameters; CURATE_EVAL_NO_PYTHON=1 skips Python.

use std::collections::BTreeMap;
use std::io::Write;

use classifiers::fasttext::args::LossKind;
use classifiers::fasttext::train::{TrainOptions, Trainer};
use classifiers::fasttext::{FastText, Preprocess, Session};
use curate_benches::classdata::{per_class, quality_docs, roc_auc, topic_docs, Doc};
use curate_benches::{peer_python, run_peer, shared_dir, test_python};

fn options() -> TrainOptions {
    let mut o = TrainOptions::default();
    for a in std::env::args().skip(1) {
        let Some((k, v)) = a.split_once('=') else {
            continue;
        };
        match k {
            "epoch" => o.epoch = v.parse().unwrap(),
            "lr" => o.lr = v.parse().unwrap(),
            "dim" => o.dim = v.parse().unwrap(),
            "word_ngrams" => o.word_ngrams = v.parse().unwrap(),
            "buckets" => o.buckets = v.parse().unwrap(),
            "min_count" => o.min_count = v.parse().unwrap(),
            "minn" => o.minn = v.parse().unwrap(),
            "maxn" => o.maxn = v.parse().unwrap(),
            "loss" => o.loss = LossKind::parse(v).unwrap(),
            "max_chars" => o.preprocess.max_chars = v.parse().unwrap(),
            "split_punct" => o.preprocess.split_punct = v.parse().unwrap(),
            "seed" => o.seed = v.parse().unwrap(),
            "task" => {}
            _ => panic!("unknown option {k}"),
        }
    }
    o
}

fn train(docs: &[&Doc], o: &TrainOptions) -> FastText {
    let mut t = Trainer::new(o.clone());
    for d in docs {
        t.add(&d.label, &d.text);
    }
    let (m, r) = t.train().unwrap();
    println!(
        "  trained on {} docs ({} words, {} tokens) in {:.1}s",
        r.examples, r.words, r.tokens, r.seconds
    );
    m
}

/// Probabilities of every label per validation doc, from our model.
fn ours(m: &FastText, docs: &[&Doc], pre: &Preprocess) -> Vec<BTreeMap<String, f32>> {
    let mut s = Session::default();
    docs.iter()
        .map(|d| {
            let p = m.probabilities(&d.text, pre, &mut s);
            m.labels().iter().cloned().zip(p).collect()
        })
        .collect()
}

/// Trains Python fastText on the same (normalized) train docs and predicts the validation docs.
fn python(
    py: &std::path::Path,
    train: &[&Doc],
    val: &[&Doc],
    pre: &Preprocess,
    params: &[&str],
) -> Option<Vec<BTreeMap<String, f32>>> {
    let dir = std::env::temp_dir().join(format!("curate-ft-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let train_file = dir.join("train.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&train_file).ok()?);
    // fastText reads its file in order: shuffle (seeded), as its users do, or a file sorted by
    // label trains badly.
    let mut train = train.to_vec();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in (1..train.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        train.swap(i, (state % (i as u64 + 1)) as usize);
    }
    for d in &train {
        writeln!(f, "__label__{} {}", d.label, pre.normalize(&d.text)).ok()?;
    }
    drop(f);
    let val_file = dir.join("val.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&val_file).ok()?);
    for d in val {
        writeln!(f, "{}", pre.normalize(&d.text)).ok()?;
    }
    drop(f);
    let model = dir.join("py.bin");
    let mut args = vec!["train", train_file.to_str()?, model.to_str()?, "thread=1"];
    args.extend_from_slice(params);
    let script = curate_benches::repo_root().join("benches/peers/fasttext_peer.py");
    let mut full = vec![script.to_str()?];
    full.extend(args);
    let v = run_peer(&py.to_path_buf(), &full)?;
    println!(
        "  Python fastText trained in {:.1}s",
        v["seconds"].as_f64()?
    );
    let out = dir.join("pred.jsonl");
    run_peer(
        &py.to_path_buf(),
        &[
            script.to_str()?,
            "predict",
            model.to_str()?,
            val_file.to_str()?,
            out.to_str()?,
            "-1",
        ],
    )?;
    let res = std::fs::read_to_string(&out)
        .ok()?
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["labels"]
                .as_array()
                .unwrap()
                .iter()
                .zip(v["probs"].as_array().unwrap())
                .map(|(l, p)| (l.as_str().unwrap().to_string(), p.as_f64().unwrap() as f32))
                .collect()
        })
        .collect();
    if std::env::var_os("CURATE_BENCH_KEEP").is_some() {
        println!("  kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Some(res)
}

fn quality_report(name: &str, val: &[&Doc], probs: &[BTreeMap<String, f32>]) -> f64 {
    let scored: Vec<(f32, bool)> = val
        .iter()
        .zip(probs)
        .map(|(d, p)| (p.get("hq").copied().unwrap_or(0.0), d.label == "hq"))
        .collect();
    let auc = roc_auc(&scored);
    let acc =
        scored.iter().filter(|(s, pos)| (*s >= 0.5) == *pos).count() as f64 / scored.len() as f64;
    let saturated = scored
        .iter()
        .filter(|(s, _)| *s <= 1e-5 || *s >= 1.0 - 1e-5)
        .count();
    println!(
        "  {name:<34} ROC AUC {auc:.4}   accuracy@0.5 {acc:.4}   saturated scores {saturated}"
    );
    auc
}

fn topic_report(name: &str, val: &[&Doc], probs: &[BTreeMap<String, f32>]) -> f64 {
    let classes: Vec<String> = ["general", "math", "code", "multilingual"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let pairs: Vec<(String, String)> = val
        .iter()
        .zip(probs)
        .map(|(d, p)| {
            let best = p
                .iter()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|x| x.0.clone())
                .unwrap_or_default();
            (d.label.clone(), best)
        })
        .collect();
    let (pc, macro_f1) = per_class(&pairs, &classes);
    println!("  {name:<34} macro-F1 {macro_f1:.4}");
    for (c, (p, r, f)) in classes.iter().zip(pc) {
        println!("      {c:<14} P {p:.4}  R {r:.4}  F1 {f:.4}");
    }
    macro_f1
}

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let o = options();
    println!("curate train fasttext options: {o:?}");
    let py = std::env::var_os("CURATE_EVAL_NO_PYTHON")
        .is_none()
        .then(|| test_python().or_else(|| peer_python("dt")))
        .flatten()
        .filter(|p| {
            std::process::Command::new(p)
                .args(["-c", "import fasttext"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let tuned_env = std::env::var("CURATE_EVAL_PY_PARAMS").ok();
    let tuned: Vec<&str> = match &tuned_env {
        Some(p) => p.split_whitespace().collect(),
        None => vec!["epoch=25", "lr=0.5", "wordNgrams=2", "dim=100"],
    };
    let only = std::env::args().find_map(|a| a.strip_prefix("task=").map(str::to_string));
    for task in ["quality", "topic"] {
        if only.as_deref().is_some_and(|t| t != task) {
            continue;
        }
        let docs = if task == "quality" {
            quality_docs(&shared)
        } else {
            topic_docs(&shared)
        };
        let (val, train_docs): (Vec<&Doc>, Vec<&Doc>) = docs.iter().partition(|d| d.is_val());
        let mut counts: BTreeMap<(&str, bool), usize> = BTreeMap::new();
        for d in &docs {
            *counts.entry((d.label.as_str(), d.is_val())).or_default() += 1;
        }
        println!(
            "{task}: {} train / {} validation docs {counts:?}",
            train_docs.len(),
            val.len()
        );
        let m = train(&train_docs, &o);
        if std::env::var_os("CURATE_BENCH_KEEP").is_some() {
            let p = std::env::temp_dir().join(format!("curate-ft-eval-{task}-ours.bin"));
            m.save(&p).unwrap();
            println!("  kept {}", p.display());
        }
        let probs = ours(&m, &val, &o.preprocess);
        let report = |name: &str, p: &[BTreeMap<String, f32>]| {
            if task == "quality" {
                quality_report(name, &val, p)
            } else {
                topic_report(name, &val, p)
            }
        };
        report("curate (defaults)", &probs);
        if task == "quality" && m.args.loss == LossKind::Softmax {
            // The same model ranked by its logit margin, which f32 probabilities saturate.
            let hq = m.labels().iter().position(|l| l == "hq").unwrap();
            let mut s = Session::default();
            let scored: Vec<(f32, bool)> = val
                .iter()
                .map(|d| {
                    let z = m.logits(&d.text, &o.preprocess, &mut s);
                    (z[hq] - z[1 - hq], d.label == "hq")
                })
                .collect();
            println!(
                "  {:<34} ROC AUC {:.4}",
                "curate, by logit margin",
                roc_auc(&scored)
            );
        }
        if let Some(py) = &py {
            if tuned_env.is_none() {
                if let Some(p) = python(py, &train_docs, &val, &o.preprocess, &[]) {
                    report("Python fastText (its defaults)", &p);
                }
            }
            if let Some(p) = python(py, &train_docs, &val, &o.preprocess, &tuned) {
                report("Python fastText (25 ep, lr .5, 2-gr, d100)", &p);
            }
        }
    }
}
