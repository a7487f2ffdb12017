//! ONNX classifiers and semantic dedup through the engine: `classify.onnx` and `dedup.semantic`
//! in a real pipeline run (batched stage, global stage across a barrier, several partitions,
//! determinism across thread counts), and `curate train head` writing a model that the stage
//! serves. The onnxruntime library comes from the test venv's wheel (skipped when absent).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::need_shared;

/// The test venv's onnxruntime library (the helper records the skip when there is none).
fn ort_library() -> Option<PathBuf> {
    classifiers::testing::ort_library()
}

fn testdata(name: &str) -> String {
    root()
        .join("classifiers/testdata")
        .join(name)
        .display()
        .to_string()
}

/// Every output document (JSONL.zst) as JSON, in file then line order.
fn docs(out: &Path) -> Vec<serde_json::Value> {
    let mut v = Vec::new();
    for (name, bytes) in files(out, "docs") {
        assert!(name.ends_with(".jsonl.zst"), "{name}");
        let mut s = String::new();
        zstd::stream::read::Decoder::new(&bytes[..])
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        v.extend(
            s.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
        );
    }
    v
}

/// Paraphrase fixture documents plus exact copies of some, spread over several partitions.
fn write_input(path: &Path) -> usize {
    let text = std::fs::read_to_string(testdata("paraphrases.jsonl")).unwrap();
    let mut out = String::new();
    let mut copies = 0;
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        out.push_str(&serde_json::json!({"id": v["id"], "text": v["text"]}).to_string());
        out.push('\n');
        if i % 3 == 0 {
            let copy = serde_json::json!({"id": format!("{}-copy", v["id"].as_str().unwrap()), "text": v["text"]});
            out.push_str(&copy.to_string());
            out.push('\n');
            copies += 1;
        }
    }
    std::fs::write(path, out).unwrap();
    copies
}

#[test]
fn classify_and_semantic_dedup_in_a_pipeline() {
    let Some(lib) = ort_library() else { return };
    let d = tempfile::tempdir().unwrap();
    let copies = write_input(&d.path().join("in.jsonl"));
    let p = pipeline(
        d.path(),
        &format!(
            r#"[pipeline]
seed = 3
[input]
paths = ["in.jsonl"]
partition_bytes = 4096
[output]
path = "out"
format = "jsonl"
[executor]
batch_docs = 8
[stages.topic]
type = "classify.onnx"
model = "{cls}"
ort_library = "{lib}"
batch_size = 4
[stages.semantic]
type = "dedup.semantic"
model = "{enc}"
ort_library = "{lib}"
threshold = 0.999
cluster_docs = 10
quality_signal = "topic.prose"
"#,
            cls = testdata("tiny-roberta-cls"),
            enc = testdata("tiny-bert-mean"),
            lib = lib.display()
        ),
    );
    let check = curate_ok(&["check", p.to_str().unwrap()]);
    assert!(
        check.contains("semantic.centroids") && check.contains("semantic.dedup"),
        "{check}"
    );
    let a = d.path().join("a");
    let b = d.path().join("b");
    curate_ok(&[
        "run",
        p.to_str().unwrap(),
        "--output",
        a.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    curate_ok(&[
        "run",
        p.to_str().unwrap(),
        "--output",
        b.to_str().unwrap(),
        "--threads",
        "2",
    ]);
    assert_same(&outputs(&a), &outputs(&b), "1 vs 2 threads");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("stats.json")).unwrap()).unwrap();
    let s = stats.to_string();
    assert!(s.contains("near_duplicate"), "{s}");
    let kept = docs(&a);
    // The exact copies go (their originals stay), nothing else: the tiny encoder does not
    // put distinct paraphrases at cosine 0.999.
    assert_eq!(
        kept.len(),
        30,
        "30 fixture documents kept, {copies} copies dropped"
    );
    let mut ids: Vec<String> = kept
        .iter()
        .map(|v| {
            v["id"]
                .as_str()
                .unwrap()
                .trim_end_matches("-copy")
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30, "one of each original or its copy");
    for v in &kept {
        let sig = &v["signals"];
        let sum: f64 = ["code", "math", "prose"]
            .iter()
            .map(|l| sig[format!("topic.{l}")].as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sig}");
        assert!(sig["topic.label"].is_string());
        assert!(sig["semantic.cluster"].as_i64().unwrap() >= 0);
        assert!(sig["semantic.nearest_sim"].as_f64().unwrap() < 0.999);
    }
}

/// The verified cascade through the engine: a static model (distilled here by `curate
/// distill` from the tiny BERT) flags pairs at a loose threshold and the tiny BERT checks them
/// (`verify_model`, a path relative to the pipeline file). Exact copies go, flagged pairs the
/// verifier rejects stay; dropped documents carry both cosines; the stats count what the
/// verifier embedded; 1 and 2 threads write the same files.
#[test]
fn verified_semantic_dedup_in_a_pipeline() {
    let Some(lib) = ort_library() else { return };
    let d = tempfile::tempdir().unwrap();
    let copies = write_input(&d.path().join("in.jsonl"));
    let model = d.path().join("static");
    curate_ok(&[
        "distill",
        "--encoder",
        &testdata("tiny-bert-mean"),
        "--text",
        d.path().join("in.jsonl").to_str().unwrap(),
        "--dims",
        "8",
        "--ort-library",
        &lib.display().to_string(),
        "--out",
        model.to_str().unwrap(),
    ]);
    std::fs::create_dir(d.path().join("models")).unwrap();
    let verifier = d.path().join("models/tiny-bert");
    copy_dir(Path::new(&testdata("tiny-bert-mean")), &verifier);
    let (t, vt) = (0.5, 0.999);
    let p = pipeline(
        d.path(),
        &format!(
            r#"[pipeline]
seed = 3
[input]
paths = ["in.jsonl"]
partition_bytes = 4096
[output]
path = "out"
format = "jsonl"
[executor]
batch_docs = 8
[stages.semantic]
type = "dedup.semantic"
model = "static"
ort_library = "{lib}"
threshold = {t}
cluster_docs = 1000
verify_model = "models/tiny-bert"
verify_threshold = {vt}
"#,
            lib = lib.display()
        ),
    );
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for (out, threads) in [(&a, "1"), (&b, "2")] {
        let (p, o) = (p.to_str().unwrap(), out.to_str().unwrap());
        curate_ok(&["run", p, "--output", o, "--threads", threads]);
    }
    assert_same(&outputs(&a), &outputs(&b), "1 vs 2 threads");
    let (kept, dropped) = (docs(&a), read_docs(&a, "dropped"));
    assert_eq!(kept.len(), 30, "30 fixture documents kept");
    assert_eq!(dropped.len(), copies, "every exact copy dropped");
    let sig = |v: &serde_json::Value, k: &str| v["signals"][k].as_f64().unwrap();
    for v in &dropped {
        assert!(
            format!("{:?}", v.verdict).contains("near_duplicate"),
            "{:?}",
            v.verdict
        );
        let s = |k: &str| v.signals.f64(k).unwrap();
        assert!(s("semantic.nearest_sim") >= t && s("semantic.verified_sim") >= vt);
    }
    // Kept: the verifier put none of them at its threshold; some the model flagged.
    assert!(kept.iter().all(|v| sig(v, "semantic.verified_sim") < vt));
    let rejected = kept
        .iter()
        .filter(|v| sig(v, "semantic.nearest_sim") >= t)
        .count();
    assert!(rejected > 0, "the loose threshold flags distinct documents");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("stats.json")).unwrap()).unwrap();
    let s = stats.to_string();
    for k in [
        "verify_checked",
        "verify_rejected",
        "verify_embedded",
        "verify_pairs",
    ] {
        assert!(s.contains(k), "{k}: {s}");
    }
}

/// Copies a flat folder.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn train_head_writes_a_model_that_the_stage_serves() {
    let Some(lib) = ort_library() else { return };
    let d = tempfile::tempdir().unwrap();
    // Prose sentences from the paraphrase fixture; code lines written here.
    let prose: Vec<String> = std::fs::read_to_string(testdata("paraphrases.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let code = [
        "fn add(a: u32, b: u32) -> u32 { a + b }",
        "for i in range(10): print(i * i)",
        "int main(void) { return printf(\"%d\\n\", 42) < 0; }",
        "let v: Vec<_> = xs.iter().map(|x| x + 1).collect();",
        "if (x == null) { throw new IllegalArgumentException(\"x\"); }",
        "def area(r): return 3.14159 * r ** 2",
        "SELECT id, name FROM users WHERE age > 21 ORDER BY name;",
        "while (n --> 0) { total += *p++; }",
        "const f = async (u) => (await fetch(u)).json();",
        "case $1 in start) run ;; stop) halt ;; esac",
    ];
    let mut labelled = String::new();
    for (i, t) in prose.iter().enumerate() {
        labelled.push_str(
            &serde_json::json!({"id": format!("prose/{i}#0"), "text": t, "label": "prose"})
                .to_string(),
        );
        labelled.push('\n');
    }
    std::fs::write(d.path().join("prose.jsonl"), labelled).unwrap();
    let mut unlabelled = String::new();
    for (i, t) in code.iter().enumerate() {
        unlabelled.push_str(&serde_json::json!({"id": format!("code/{i}"), "text": t}).to_string());
        unlabelled.push('\n');
    }
    std::fs::write(d.path().join("code.jsonl"), unlabelled).unwrap();
    let model = d.path().join("model");
    let out = curate_ok(&[
        "train",
        "head",
        "--encoder",
        &testdata("tiny-bert-mean"),
        "--input",
        d.path().join("prose.jsonl").to_str().unwrap(),
        "--input",
        &format!("code={}", d.path().join("code.jsonl").display()),
        "--out",
        model.to_str().unwrap(),
        "--max-length",
        "64",
        "--ort-library",
        lib.to_str().unwrap(),
    ]);
    assert!(out.contains("validation:"), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("train_report.json")).unwrap()).unwrap();
    assert_eq!(report["documents"], 40);
    assert_eq!(report["per_label"]["code"], 10);
    for f in ["model.onnx", "tokenizer.json", "head.json", "curate.json"] {
        assert!(model.join(f).is_file(), "{f}");
    }
    // The trained model runs as a stage and tells its training lines apart.
    let input = d.path().join("in.jsonl");
    let mut lines = String::new();
    for (i, t) in prose
        .iter()
        .take(5)
        .chain(
            code.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .iter(),
        )
        .enumerate()
    {
        lines.push_str(&serde_json::json!({"id": format!("d{i}"), "text": t}).to_string());
        lines.push('\n');
    }
    std::fs::write(&input, lines).unwrap();
    let p = pipeline(
        d.path(),
        &format!(
            "[input]\npaths = [\"in.jsonl\"]\n[output]\npath = \"out\"\nformat = \"jsonl\"\n[stages.kind]\ntype = \"classify.onnx\"\nmodel = \"{}\"\nort_library = \"{}\"\n",
            model.display(),
            lib.display()
        ),
    );
    let o = d.path().join("o");
    curate_ok(&["run", p.to_str().unwrap(), "--output", o.to_str().unwrap()]);
    let kept = docs(&o);
    assert_eq!(kept.len(), 15);
    let right = kept
        .iter()
        .filter(|v| {
            let i: usize = v["id"].as_str().unwrap()[1..].parse().unwrap();
            let want = if i < 5 { "prose" } else { "code" };
            v["signals"]["kind.label"] == want
        })
        .count();
    assert!(right >= 14, "{right}/15 training lines classified right");
    // Bad arguments exit 2 with the reason.
    let bad = curate(&[
        "train",
        "head",
        "--encoder",
        &testdata("tiny-bert-mean"),
        "--input",
        "/no/such.jsonl",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no such file"));
}

/// A cascade on real pages: the ONNX classifier scores only the pages whose language score the
/// cheap stage before it leaves in a band (`when`). Pages it scores get exactly the scores of a
/// run that scores everything; the others pass it without its signals; the stats count both.
#[test]
fn cascade_scores_only_undecided_pages() {
    let shared = need_shared!();
    let Some(lib) = ort_library() else { return };
    let d = tempfile::tempdir().unwrap();
    // 150 real extracted pages (German and English web text).
    let mut s = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut s)
    .unwrap();
    let input: String = s.lines().take(150).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.path().join("in.jsonl"), input).unwrap();
    let body = |when: &str| {
        format!(
            r#"[input]
paths = ["in.jsonl"]
[output]
path = "out"
format = "jsonl"
[stages.lang]
type = "classify.langid"
[stages.kind]
type = "classify.onnx"
model = "{}"
ort_library = "{}"
mode = "tag"
min_score = {{ prose = 0.5 }}
{when}
"#,
            testdata("tiny-bert-mean"),
            lib.display()
        )
    };
    let run = |name: &str, when: &str| {
        let p = d.path().join(format!("{name}.toml"));
        std::fs::write(&p, body(when)).unwrap();
        let o = d.path().join(name);
        curate_ok(&["run", p.to_str().unwrap(), "--output", o.to_str().unwrap()]);
        let stats: serde_json::Value =
            serde_json::from_slice(&std::fs::read(o.join("stats.json")).unwrap()).unwrap();
        (docs(&o), stats)
    };
    let (all, _) = run("all", "");
    let (cas, stats) = run("cascade", "when = \"lang_score between 0.2 and 0.9\"");
    assert_eq!(all.len(), 150);
    assert_eq!(cas.len(), 150, "tag mode: every page is written");
    let counters = stage_counts(&stats, "kind", "counters");
    let (scored, not_scored) = (counters["scored"], counters["not_scored"]);
    assert_eq!(scored + not_scored, 150, "{counters:?}");
    assert!(scored > 0 && not_scored > 0, "{counters:?}");
    let by_id = |v: &[serde_json::Value]| -> std::collections::BTreeMap<String, serde_json::Value> {
        v.iter()
            .map(|d| (d["id"].as_str().unwrap().to_string(), d.clone()))
            .collect()
    };
    let (all, cas) = (by_id(&all), by_id(&cas));
    let flagged = |d: &serde_json::Value| d["flags"].as_str().is_some_and(|f| f.contains("kind:"));
    let (mut same_verdict, mut checked) = (0, 0);
    for (id, c) in &cas {
        let a = &all[id];
        let ls = a["signals"]["lang_score"].as_f64().unwrap();
        let in_band = (0.2..=0.9).contains(&ls);
        if in_band {
            // Scored: the same scores and verdict as in the run that scores everything.
            assert_eq!(
                c["signals"]["kind.prose"], a["signals"]["kind.prose"],
                "{id}"
            );
            assert_eq!(flagged(c), flagged(a), "{id}");
            checked += 1;
        } else {
            assert!(
                c["signals"].get("kind.prose").is_none(),
                "{id} was not to be scored"
            );
            assert!(!flagged(c), "{id}");
        }
        same_verdict += (flagged(c) == flagged(a)) as usize;
    }
    assert_eq!(checked as u64, scored);
    println!(
        "cascade: {scored} of 150 pages scored ({:.0}%); verdicts equal to scoring everything on \
         {same_verdict} of 150 pages (all {scored} scored ones)",
        100.0 * scored as f64 / 150.0
    );
    // A condition on a signal no earlier stage writes is a config error naming the key.
    let p = d.path().join("bad.toml");
    std::fs::write(&p, body("when = \"quality.hq between 0.2 and 0.8\"")).unwrap();
    let bad = curate(&["check", p.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("stages.kind.when") && err.contains("quality.hq"),
        "{err}"
    );
}

/// `curate distill --fit-text`: the table fitted to the teacher's embeddings of windows of
/// other text (the committed tiny BERT as teacher, real documentation text from the fixture);
/// same inputs give byte-identical files, also when the teacher's outputs come from `--cache`;
/// a bad fit setting is a configuration error (exit 2) naming the option.
#[test]
fn distill_fits_to_the_teacher_deterministically() {
    let Some(lib) = ort_library() else { return };
    let d = tempfile::tempdir().unwrap();
    let texts: Vec<String> = std::fs::read_to_string(testdata("paraphrases.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let (freq, fit) = texts.split_at(texts.len() / 2);
    std::fs::write(d.path().join("freq.jsonl"), freq.join("\n")).unwrap();
    std::fs::write(d.path().join("fit.jsonl"), fit.join("\n")).unwrap();
    let run = |out: &str, cache: bool, extra: &[&str]| {
        let out = d.path().join(out);
        let cache_dir = d.path().join("cache");
        let mut args = vec![
            "distill".to_string(),
            "--encoder".into(),
            testdata("tiny-bert-mean"),
            "--text".into(),
            d.path().join("freq.jsonl").display().to_string(),
            "--fit-text".into(),
            d.path().join("fit.jsonl").display().to_string(),
            "--fit-mixed".into(),
            "10".into(),
            "--dims".into(),
            "8".into(),
            "--ort-library".into(),
            lib.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ];
        if cache {
            args.extend(["--cache".into(), cache_dir.display().to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let stdout = curate_ok(&a);
        assert!(stdout.contains("fitted to"), "{stdout}");
        out
    };
    let a = run("a", true, &[]);
    let b = run("b", true, &[]);
    let c = run("c", false, &[]);
    assert!(d.path().join("cache").read_dir().unwrap().count() >= 3);
    // Every file but the report (which holds timings).
    let tree = |p: &Path| {
        let mut t = files(p, "");
        t.remove("distill_report.json");
        t
    };
    assert_same(&tree(&a), &tree(&b), "fitted model with the cache");
    assert_eq!(
        std::fs::read(a.join("vectors.bin")).unwrap(),
        std::fs::read(c.join("vectors.bin")).unwrap(),
        "same table with and without the cache"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("static.json")).unwrap()).unwrap();
    assert!(meta["fit_windows"].as_u64().unwrap() > 10, "{meta}");
    assert_eq!(
        meta["position_weight"],
        serde_json::json!({"boost": 1.0, "scale": 32.0}),
        "the default position weights are kept with the model"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("distill_report.json")).unwrap()).unwrap();
    let fit = &report["fit"];
    assert!(
        fit["cosine_after"].as_f64().unwrap() > fit["cosine_before"].as_f64().unwrap(),
        "{report}"
    );
    assert!(
        fit.get("pairs").is_none(),
        "no pair rows by default: {report}"
    );
    // Pair rows are asked for by flag and kept with the model.
    let p = run("p", true, &["--fit-pairs", "20", "--fit-pair-weight", "2"]);
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.join("static.json")).unwrap()).unwrap();
    let pairs = meta["fit_pairs"].as_u64().unwrap();
    assert!(pairs > 0 && pairs <= 20, "{meta}");
    assert_eq!(meta["fit_pair_weight"], serde_json::json!(2.0), "{meta}");
    // Bad settings: exit 2, naming the flag.
    let fit_text = d.path().join("fit.jsonl").display().to_string();
    for (flag, extra) in [
        (
            "--fit-lambda",
            vec!["--fit-text", fit_text.as_str(), "--fit-lambda", "0"],
        ),
        ("--position-scale", vec!["--position-scale", "0"]),
        ("--fit-pair-weight", vec!["--fit-pair-weight", "0"]),
    ] {
        let (enc, freq) = (testdata("tiny-bert-mean"), d.path().join("freq.jsonl"));
        let out = d.path().join("bad");
        let mut args = vec![
            "distill",
            "--encoder",
            &enc,
            "--text",
            freq.to_str().unwrap(),
        ];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let bad = curate(&args);
        assert_eq!(bad.status.code(), Some(2), "{flag}");
        assert!(
            String::from_utf8_lossy(&bad.stderr).contains(flag),
            "{flag}"
        );
    }
}
