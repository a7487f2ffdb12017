//! `curate mix` and `curate ablate` on a real run: a JSONL corpus whose records carry
//! language, topic and quality fields (imported as signals by `signal.import`), filtered by
//! `filter.length` in tag and drop mode, counted by `tokenize.count`, bucketed by
//! `mix.bucket`. Checks shares, determinism, shards against a fresh tokenization, threshold
//! changes without touching the run's files, recovery from `dropped/`, and ablations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use curate::mix::megatron::IndexedDataset;
use stages::tokenize::{Tokenizer, TokenizerConfig};

use crate::common::*;

/// Stage order matters for recovery: `short` (drop) runs before `length` (tag), so documents
/// it dropped never got `length` signals; `long` (drop) runs last, so its drops have them all.
const PIPE: &str = r#"[pipeline]
seed = 5
[input]
paths = ["in.jsonl"]
partition_bytes = 400000
[output]
path = "out"
row_group_rows = 100
[stages.doc]
type = "signal.import"
[stages.doc.fields]
lang = "str"
lang_score = "f32"
q = "f32"
[stages.topic]
type = "signal.import"
[stages.topic.fields]
code = "f32"
math = "f32"
[stages.tokens]
type = "tokenize.count"
tokenizer = "cl100k_base"
[stages.bucket]
type = "mix.bucket"
lang_signal = "doc.lang"
lang_score_signal = "doc.lang_score"
[stages.short]
type = "filter.length"
min_words = 12
[stages.length]
type = "filter.length"
mode = "tag"
min_words = 40
[stages.long]
type = "filter.length"
max_words = 380

[mix]
quality = "doc.q"
shard_size = "24kB"
[mix.main]
total_tokens = 90000
[mix.anneal]
general = 0.2
math = 0.4
code = 0.4
multilingual = 0
total_tokens = 24000
[mix.anneal.per_bucket.code]
min_quality = 0.5
max_repeats = 2
"#;

const CODE: &[&str] = &[
    "def",
    "return",
    "for",
    "in",
    "range(n):",
    "if",
    "x",
    "==",
    "0:",
    "print(x)",
    "import",
    "os",
    "class",
    "Node:",
    "self.value",
    "=",
    "None",
    "while",
    "i",
    "<",
    "len(items):",
];
const MATH: &[&str] = &[
    "theorem",
    "proof",
    "let",
    "integral",
    "of",
    "prime",
    "lemma",
    "equation",
    "matrix",
    "x^2",
    "+",
    "=",
    "sum",
    "over",
    "n",
    "converges",
    "hence",
    "QED",
];
const OTHER: &[&str] = &[
    "die",
    "straße",
    "café",
    "und",
    "el",
    "niño",
    "la",
    "maison",
    "größer",
    "über",
    "très",
    "señor",
    "日本語",
    "der",
    "le",
    "y",
];

/// Writes `n` records: ~20% code, ~25% math, ~10% other languages, the rest general web text;
/// 3 to 600 words; topic scores, language and quality as extra fields.
fn write_corpus(path: &Path, n: usize) {
    let mut w = Words::new(11);
    let mut out = String::new();
    for i in 0..n {
        let kind = w.next() % 100;
        let words = 3 + (w.next() % 600) as usize;
        let f = |w: &mut Words| (w.next() % 1000) as f64 / 1000.0;
        let (mut code, mut math, mut lang) = (f(&mut w) * 0.4, f(&mut w) * 0.4, "en");
        let vocab: Option<&[&str]> = match kind {
            0..=19 => {
                code = 0.6 + f(&mut w) * 0.4;
                Some(CODE)
            }
            20..=44 => {
                math = 0.6 + f(&mut w) * 0.4;
                Some(MATH)
            }
            45..=54 => {
                lang = ["de", "fr", "es"][(w.next() % 3) as usize];
                Some(OTHER)
            }
            _ => None,
        };
        let text = match vocab {
            Some(v) => {
                let mut lines = Vec::new();
                let mut left = words;
                while left > 0 {
                    let k = left.min(4 + (w.next() % 9) as usize);
                    let line: Vec<&str> = (0..k)
                        .map(|_| v[(w.next() % v.len() as u64) as usize])
                        .collect();
                    lines.push(line.join(" "));
                    left -= k;
                }
                lines.join("\n")
            }
            None => {
                let mut s = Vec::new();
                let mut left = words;
                while left > 0 {
                    let k = left.min(4 + (w.next() % 12) as usize);
                    s.push(w.sentence(k));
                    left -= k;
                }
                s.join(" ")
            }
        };
        let rec = serde_json::json!({
            "id": format!("doc-{i:05}"),
            "url": format!("https://example.org/{}/{i}", w.next() % 40),
            "text": text,
            "lang": lang,
            "lang_score": 0.5 + f(&mut w) / 2.0,
            "code": code,
            "math": math,
            "q": f(&mut w),
        });
        out.push_str(&rec.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// A finished run in a temp folder.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    write_corpus(&d.path().join("in.jsonl"), 2500);
    let p = pipeline(d.path(), PIPE);
    curate_ok(&["run", p.to_str().unwrap(), "-q"]);
    let out = d.path().join("out");
    (d, p, out)
}

fn mix(p: &Path, extra: &[&str]) -> String {
    let mut args = vec!["mix", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    curate_ok(&args)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// Every file of the run outside `mix/`, `ablate/` and `report.html`: bytes and mtime.
fn run_files(out: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut m = BTreeMap::new();
    for (k, v) in files(out, "") {
        if k.starts_with("mix/") || k.starts_with("ablate/") || k == "report.html" {
            continue;
        }
        let t = std::fs::metadata(out.join(&k)).unwrap().modified().unwrap();
        m.insert(k, (v, t));
    }
    m
}

/// Every stored document of the run (kept and dropped): id -> (text, words, dropped).
fn stored_docs(out: &Path) -> HashMap<String, (String, i64, bool)> {
    let mut m = HashMap::new();
    for (path, bytes) in files(out, "docs").into_iter().chain(files(out, "dropped")) {
        if !path.ends_with(".parquet") {
            continue;
        }
        let docs = curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 512).unwrap();
        for d in docs {
            let d = d.unwrap();
            let words = d.signals.i64("short.words").unwrap_or(-1);
            m.insert(
                d.id.clone(),
                (d.text().to_string(), words, path.starts_with("dropped/")),
            );
        }
    }
    m
}

/// The sequences of a mix folder: (bucket, id, tokens) in shard order, read with the spec
/// reader; checks the document index of each shard.
fn read_shards(dir: &Path) -> Vec<(String, String, Vec<i64>)> {
    let manifest = json(&dir.join("manifest.json"));
    let mut out = Vec::new();
    for sh in manifest["shards"].as_array().unwrap() {
        let prefix = sh["prefix"].as_str().unwrap();
        let name = prefix.rsplit('/').next().unwrap();
        let ds = IndexedDataset::open(dir.join(name)).unwrap();
        assert_eq!(ds.documents(), ds.len(), "one sequence per document");
        assert_eq!(
            ds.index.doc_index,
            (0..=ds.len() as i64).collect::<Vec<_>>()
        );
        let ids = std::fs::read_to_string(dir.join(format!("{name}.ids.jsonl"))).unwrap();
        let ids: Vec<serde_json::Value> = ids
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(ids.len(), ds.len());
        assert_eq!(sh["documents"].as_u64().unwrap() as usize, ds.len());
        for (i, e) in ids.iter().enumerate() {
            let toks = ds.get(i);
            assert_eq!(e["tokens"].as_u64().unwrap() as usize, toks.len());
            out.push((
                e["bucket"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
                toks,
            ));
        }
    }
    out
}

fn tokenizer(name: &str) -> Tokenizer {
    let cfg: TokenizerConfig = toml::from_str(&format!("tokenizer = '{name}'")).unwrap();
    Tokenizer::from_config(&cfg, Path::new(".")).unwrap()
}

/// Shares within 0.5 points of their targets, and no planner warning.
fn assert_shares(report: &serde_json::Value, targets: &[(&str, f64)]) {
    let buckets = report["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), targets.len(), "{report:#}");
    for (b, t) in targets {
        let r = buckets
            .iter()
            .find(|x| x["bucket"] == *b)
            .unwrap_or_else(|| panic!("bucket {b}"));
        let share = r["share"].as_f64().unwrap();
        assert!((r["target_share"].as_f64().unwrap() - t).abs() < 1e-9);
        assert!(
            (share - t).abs() < 0.005,
            "bucket {b}: share {share} vs target {t}"
        );
    }
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "{:?}",
        report["warnings"]
    );
}

fn selected_ids(dir: &Path) -> HashSet<String> {
    read_shards(dir).into_iter().map(|(_, id, _)| id).collect()
}

#[test]
fn mix_shares_shards_determinism_and_threshold_changes() {
    let (d, p, out) = setup();
    let before = run_files(&out);
    assert!(before.keys().any(|k| k.starts_with("docs/")));
    assert!(before.keys().any(|k| k.starts_with("dropped/")));

    let stdout = mix(&p, &[]);
    assert!(
        stdout.contains("mix main ->") && stdout.contains("mix anneal ->"),
        "{stdout}"
    );
    assert!(
        stdout.contains("target tokens") && stdout.contains("total"),
        "{stdout}"
    );
    let main = out.join("mix/main");
    let report = json(&main.join("mix_report.json"));
    assert_shares(
        &report,
        &[
            ("code", 0.17),
            ("general", 0.50),
            ("math", 0.25),
            ("multilingual", 0.08),
        ],
    );
    assert_eq!(report["selection"]["token_counts"], "signal tokens.tokens");
    assert!(report["tokens"].as_u64().unwrap() >= 89_000);
    let anneal = json(&out.join("mix/anneal/mix_report.json"));
    assert_shares(&anneal, &[("code", 0.4), ("general", 0.2), ("math", 0.4)]);
    let code = anneal["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["bucket"] == "code")
        .unwrap();
    assert!(code["lowest_selected_quality"].as_f64().unwrap() >= 0.5);
    assert!(code["max_copies"].as_u64().unwrap() <= 2);

    // Shards read back with the spec reader equal a fresh tokenization of the picked texts.
    let docs = stored_docs(&out);
    let tok = tokenizer("cl100k_base");
    let seqs = read_shards(&main);
    assert_eq!(seqs.len() as u64, report["copies"].as_u64().unwrap());
    let mut per_bucket: BTreeMap<String, u64> = BTreeMap::new();
    for (bucket, id, toks) in &seqs {
        let (text, words, _) = &docs[id];
        assert!(
            *words >= 40,
            "{id} has {words} words: the tag-mode threshold applies"
        );
        let mut fresh = Vec::new();
        tok.session().encode_document(text, &mut fresh);
        let fresh: Vec<i64> = fresh.into_iter().map(i64::from).collect();
        assert_eq!(&fresh, toks, "tokens of {id}");
        *per_bucket.entry(bucket.clone()).or_default() += toks.len() as u64;
    }
    for b in report["buckets"].as_array().unwrap() {
        assert_eq!(
            per_bucket[b["bucket"].as_str().unwrap()],
            b["tokens"].as_u64().unwrap()
        );
    }
    assert!(std::fs::read_to_string(main.join("report.html"))
        .unwrap()
        .contains("multilingual"));
    let run_report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        run_report.contains("Mix composition") && run_report.contains("mix/anneal/report.html")
    );

    // Same input, config and seed: byte-identical, whatever the thread count.
    let first = files(&out, "mix");
    mix(&p, &["--threads", "1"]);
    assert_same(&first, &files(&out, "mix"), "rerun with one thread");
    // `curate mix` replaced the run report's mix section alone: the same page as rendering
    // the whole report again (which it does for a report without the section's markers).
    let spliced = std::fs::read_to_string(out.join("report.html")).unwrap();
    let unmarked = spliced
        .replace("<!--curate:mixes-->", "")
        .replace("<!--/curate:mixes-->", "");
    std::fs::write(out.join("report.html"), &unmarked).unwrap();
    mix(&p, &["--threads", "1"]);
    let whole = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(spliced.contains("<!--curate:mixes-->"));
    if spliced != whole {
        // Both pages are ~100 KB: show where they part.
        let at = spliced
            .bytes()
            .zip(whole.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(spliced.len().min(whole.len()));
        let around = |s: &str| {
            s.get(at.saturating_sub(300)..(at + 300).min(s.len()))
                .unwrap_or("")
                .to_string()
        };
        panic!(
            "spliced mix section != whole report rendered again, at byte {at}:\n--- spliced\n{}\n--- whole\n{}",
            around(&spliced),
            around(&whole)
        );
    }

    // Other shares.
    mix(
        &p,
        &[
            "--mix",
            "main",
            "--set",
            "mix.code=0.25",
            "--set",
            "mix.general=0.42",
        ],
    );
    assert_shares(
        &json(&main.join("mix_report.json")),
        &[
            ("code", 0.25),
            ("general", 0.42),
            ("math", 0.25),
            ("multilingual", 0.08),
        ],
    );

    // A stricter threshold changes the selection, from stored signals only.
    let base_ids = {
        mix(
            &p,
            &[
                "--mix",
                "main",
                "--out",
                d.path().join("base").to_str().unwrap(),
            ],
        );
        selected_ids(&d.path().join("base/main"))
    };
    mix(
        &p,
        &[
            "--mix",
            "main",
            "--set",
            "stages.length.min_words=120",
            "-q",
        ],
    );
    let strict = json(&main.join("mix_report.json"));
    let strict_ids = selected_ids(&main);
    assert_ne!(base_ids, strict_ids);
    for id in &strict_ids {
        assert!(docs[id].1 >= 120, "{id}: {} words", docs[id].1);
    }
    assert!(
        strict["selection"]["rejected"]["length:too_few_words"]
            .as_u64()
            .unwrap()
            > report["selection"]["rejected"]["length:too_few_words"]
                .as_u64()
                .unwrap()
    );

    // The run's own files were never touched.
    let after = run_files(&out);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (k, (bytes, t)) in &before {
        assert!(
            after[k].0 == *bytes && after[k].1 == *t,
            "{k} was rewritten"
        );
    }

    // The mix's page renders in a real browser (last: it leaves a screenshot in the folder).
    if let Some((dom, errors, _)) = crate::report::render(&main) {
        assert!(errors.is_empty(), "console errors: {errors:?}");
        for section in [
            "Buckets",
            "Sources",
            "Selection",
            "Shards",
            "length:too_few_words",
        ] {
            assert!(dom.contains(section), "mix page lacks {section:?}");
        }
    }
}

#[test]
fn relaxed_drop_threshold_recovers_dropped_documents() {
    let (d, p, out) = setup();
    let docs = stored_docs(&out);
    let run_ids = selected_ids_of(&p, &d.path().join("a"), &[]);
    assert!(
        run_ids.iter().all(|id| !docs[id].2),
        "only kept documents by default"
    );

    // `long` ran last: documents it dropped have every signal and come back when relaxed.
    let a = d.path().join("b");
    let ids = selected_ids_of(&p, &a, &["--set", "stages.long.max_words=100000"]);
    let r = json(&a.join("main/mix_report.json"));
    let recovered = r["selection"]["recovered"].as_u64().unwrap();
    assert!(recovered > 0, "{r:#}");
    let back: Vec<&String> = ids.iter().filter(|id| docs[*id].2).collect();
    assert!(!back.is_empty(), "recovered documents are in the shards");
    assert!(back.iter().all(|id| docs[*id].1 > 380));

    // `short` dropped documents before `length` ran: relaxing it cannot recover them.
    let c = d.path().join("c");
    selected_ids_of(&p, &c, &["--set", "stages.short.min_words=3"]);
    let r = json(&c.join("main/mix_report.json"));
    assert_eq!(r["selection"]["recovered"].as_u64(), Some(0));
    assert!(
        r["selection"]["incomplete"]["length"].as_u64().unwrap() > 0,
        "{r:#}"
    );

    // Another tokenizer than the stored counts': tokens are counted, shares still hold.
    let e = d.path().join("e");
    selected_ids_of(
        &p,
        &e,
        &[
            "--set",
            "mix.tokenizer=o200k_base",
            "--set",
            "mix.layout=mixed",
        ],
    );
    let r = json(&e.join("main/mix_report.json"));
    assert_eq!(r["selection"]["token_counts"], "counted");
    assert_shares(
        &r,
        &[
            ("code", 0.17),
            ("general", 0.50),
            ("math", 0.25),
            ("multilingual", 0.08),
        ],
    );
    let tok = tokenizer("o200k_base");
    let seqs = read_shards(&e.join("main"));
    // One stream shuffled across buckets.
    let first: HashSet<&str> = seqs.iter().take(40).map(|s| s.0.as_str()).collect();
    assert!(first.len() >= 3, "buckets interleave: {first:?}");
    assert!(json(&e.join("main/manifest.json"))["shards"][0]["bucket"].is_null());
    for (_, id, toks) in seqs {
        let mut fresh = Vec::new();
        tok.session().encode_document(&docs[&id].0, &mut fresh);
        assert_eq!(fresh.into_iter().map(i64::from).collect::<Vec<_>>(), toks);
    }
}

fn selected_ids_of(p: &Path, out: &Path, extra: &[&str]) -> HashSet<String> {
    let mut args = vec!["--mix", "main", "--out", out.to_str().unwrap(), "-q"];
    args.extend_from_slice(extra);
    mix(p, &args);
    selected_ids(&out.join("main"))
}

/// A mix's `where` (SQL over stored signals, evaluated on the scanned batches) keeps exactly
/// the candidates that satisfy it: checked against the input records' own fields.
#[test]
fn mix_where_keeps_only_matching_candidates() {
    let (d, p, _out) = setup();
    let input: HashMap<String, (String, f32)> = std::fs::read_to_string(d.path().join("in.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                (
                    v["lang"].as_str().unwrap().to_string(),
                    v["q"].as_f64().unwrap() as f32,
                ),
            )
        })
        .collect();
    let matches = |id: &String| input[id].0 == "en" && input[id].1 >= 0.5;
    let all_dir = d.path().join("all");
    let all = selected_ids_of(&p, &all_dir, &[]);
    let w_dir = d.path().join("where");
    let cond = "mix.where=doc.lang = 'en' AND doc.q >= 0.5";
    let some = selected_ids_of(&p, &w_dir, &["--set", cond]);
    assert!(!some.is_empty());
    assert!(some.iter().all(matches), "every selected document matches");
    assert!(all.iter().any(|id| !matches(id)), "the condition narrows");
    // Every candidate is either selected-eligible or counted as excluded by the condition.
    let sel = |dir: &Path| json(&dir.join("main/mix_report.json"))["selection"].clone();
    let (a, w) = (sel(&all_dir), sel(&w_dir));
    assert_eq!(a["excluded_by_where"], 0);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert!(n(&w, "excluded_by_where") > 0);
    assert_eq!(
        n(&a, "candidates"),
        n(&w, "candidates") + n(&w, "excluded_by_where")
    );
}

#[test]
fn ablate_writes_variants_and_comparison() {
    let (d, _p, out) = setup();
    let grid = d.path().join("grid.toml");
    std::fs::write(
        &grid,
        r#"pipeline = "pipeline.toml"
mix = "main"
set = ["mix.total_tokens=40000"]
[[variant]]
name = "baseline"
[[variant]]
name = "code-25"
set = ["mix.code=0.25", "mix.general=0.42"]
[grid]
"stages.length.min_words" = [20, 120]
"#,
    )
    .unwrap();
    let stdout = curate_ok(&["ablate", grid.to_str().unwrap()]);
    let dir = out.join("ablate/grid");
    let cmp = json(&dir.join("comparison.json"));
    let names: Vec<&str> = cmp["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["baseline", "code-25", "min_words-20", "min_words-120"]
    );
    let table = std::fs::read_to_string(dir.join("comparison.txt")).unwrap();
    assert!(stdout.contains(&table));
    assert!(table.contains("Jaccard"));
    let ids: Vec<HashSet<String>> = names
        .iter()
        .map(|n| {
            assert!(dir.join(n).join("report.html").exists());
            selected_ids(&dir.join(n))
        })
        .collect();
    let j = cmp["jaccard"].as_array().unwrap();
    for (a, ia) in ids.iter().enumerate() {
        for (b, ib) in ids.iter().enumerate() {
            let inter = ia.intersection(ib).count() as f64;
            let union = ia.union(ib).count() as f64;
            let got = j[a][b].as_f64().unwrap();
            assert!((got - inter / union).abs() < 1e-12, "J[{a}][{b}] {got}");
        }
    }
    assert!(j[0][3].as_f64().unwrap() < 1.0);
    let code = |v: usize| cmp["variants"][v]["buckets"]["code"][1].as_f64().unwrap();
    assert!((code(0) - 0.17).abs() < 0.005 && (code(1) - 0.25).abs() < 0.005);
}

#[test]
fn mix_errors_exit_2_naming_the_key() {
    let d = tempfile::tempdir().unwrap();
    write_corpus(&d.path().join("in.jsonl"), 200);
    let p = pipeline(d.path(), PIPE);
    let ps = p.to_str().unwrap();
    let fails = |args: &[&str], needle: &str| {
        let o = curate(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    fails(&["mix", ps], "run the pipeline first");
    curate_ok(&["run", ps, "-q"]);
    fails(&["mix", ps, "--set", "mix.code=1.5"], "mix.code");
    fails(
        &["mix", ps, "--set", "mix.main.layout=zigzag"],
        "mix.main.layout",
    );
    fails(&["mix", ps, "--mix", "nope"], "no mix named");
    fails(&["mix", ps, "--set", "mix.where=doc.q >"], "where");
    fails(&["mix", ps, "--set", "mix.bucket=nothing"], "nothing");
    fails(
        &["mix", ps, "--set", "stages.length.min_words=-1"],
        "stages.length.min_words",
    );
}

/// `--set` overrides pointing pipelines/llama3.toml at models trained here by
/// scripts/train_models.sh (on ../shared/data), or None (printed) when they cannot be made.
/// The models are made once per test process, in a fresh folder of the target's test tmpdir,
/// and shared by the tests that need them: training (the static encoder's fit above all) is
/// minutes of CPU, and the tests only read the models.
fn llama3_models() -> Option<Vec<String>> {
    static MODELS: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();
    MODELS
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("llama3-models");
            // Never models of an earlier run: the script or the binary may have changed.
            if dir.exists() {
                std::fs::remove_dir_all(&dir).unwrap();
            }
            train_llama3_models(&dir)
        })
        .clone()
}

fn train_llama3_models(dir: &Path) -> Option<Vec<String>> {
    shared()?;
    let script = root().join("scripts/train_models.sh");
    let mut cmd = std::process::Command::new(&script);
    cmd.arg(env!("CARGO_BIN_EXE_curate")).arg(dir);
    // With onnxruntime the script also distils the static encoder of dedup.semantic.
    if let Some(lib) = classifiers::testing::ort_library() {
        cmd.env("ORT_DYLIB_PATH", lib);
    }
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "train_models.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let at = |f: &str| format!("\"{}\"", dir.join(f).display());
    // Without onnxruntime there is no static model: MiniLM, the one-key alternative, stands in.
    let semantic = if dir.join("minilm-static").is_dir() {
        at("minilm-static")
    } else {
        format!(
            "\"{}\"",
            root()
                .join("../shared/data/models/all-minilm-l6-v2-int8")
                .display()
        )
    };
    let mut sets = vec![
        format!("stages.quality.model={}", at("quality.bin")),
        format!("stages.topic.model={}", at("topic.bin")),
        format!("stages.kl.reference={}", at("kl-ref.bin")),
        format!("stages.kl.lang_references={}", at("kl-ref-lang")),
        format!("stages.semantic.model={semantic}"),
    ];
    // The UT1 adult lists come from the datatrove wheel; without it the recipe runs on its
    // sample spam list alone.
    let spam = root().join("pipelines/sample/blocklists/spam/domains");
    if dir.join("ut1-adult/domains").exists() {
        sets.push(format!(
            "stages.urls.domain_lists=[\"{}\", {}]",
            spam.display(),
            at("ut1-adult/domains")
        ));
        sets.push(format!("stages.urls.url_lists=[{}]", at("ut1-adult/urls")));
    } else {
        eprintln!("note: no UT1 lists (scripts/ut1_lists.py found no datatrove wheel)");
        sets.push(format!("stages.urls.domain_lists=[\"{}\"]", spam.display()));
        sets.push("stages.urls.url_lists=[]".to_string());
    }
    let psl = std::path::Path::new(stages::safety::suffix::DEFAULT_LIST);
    if !psl.exists() {
        // safety.domains reads the Public Suffix List (apt install publicsuffix); without it
        // the recipe runs with the generic top-level domains alone.
        eprintln!("note: no {} (apt install publicsuffix)", psl.display());
        let f = dir.join("psl-minimal.dat");
        std::fs::write(&f, "com\nnet\norg\nde\nuk\nco.uk\n").unwrap();
        sets.push(format!(
            "stages.sites.public_suffix_list=\"{}\"",
            f.display()
        ));
    }
    Some(sets)
}

#[test]
fn llama3_pipeline_plans_a_main_and_an_annealing_mix() {
    let Some(sets) = llama3_models() else {
        testkit::skip!("../shared is absent (models are trained from its data)")
    };
    let p = root().join("pipelines/llama3.toml");
    let mut args = vec!["check", p.to_str().unwrap(), "--offline"];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    let out = curate_ok(&args);
    for stage in [
        "extract", "pii", "minhash", "lines", "kl", "quality", "topic", "semantic", "bucket",
        "decontam",
    ] {
        assert!(out.contains(stage), "plan lacks {stage}: {out}");
    }
    let cf = curate::config::load(&p, &sets).unwrap();
    let mixes = curate::mix::spec::resolve(&cf, &[]).unwrap();
    let names: Vec<&str> = mixes.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["main", "anneal"]);
    let (main, anneal) = (&mixes[0].planner, &mixes[1].planner);
    assert_eq!(main.shares["general"], 0.5);
    assert_eq!(main.shares["multilingual"], 0.08);
    assert!(!anneal.shares.contains_key("multilingual"));
    assert!(anneal.shares["code"] > main.shares["code"]);
    assert_eq!(anneal.per_bucket["code"].max_repeats, Some(8));
    assert_eq!(anneal.per_bucket["math"].min_quality, Some(0.8));
    let grid = curate::mix::ablate::Grid::load(&root().join("pipelines/llama3-grid.toml")).unwrap();
    // Three named variants and a 3 x 2 grid.
    assert_eq!(grid.variants.len(), 9);
    assert_eq!(grid.pipeline, p);
}

/// The whole Llama 3 recipe on a real crawl: every stage of pipelines/llama3.toml runs on the
/// repo's sample crawl and real Common Crawl records, then both mixes are written.
#[test]
fn llama3_pipeline_runs_end_to_end_and_writes_both_mixes() {
    let Some(ort) = classifiers::testing::ort_library() else {
        return; // the helper recorded the skip
    };
    let d = tempfile::tempdir().unwrap();
    let Some(sets) = llama3_models() else {
        testkit::skip!("../shared is absent (models are trained from its data)")
    };
    // The sample crawl and two real Common Crawl WARC files, as one input folder.
    let input = d.path().join("crawl");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(
        root().join("pipelines/sample/sample.warc.gz"),
        input.join("sample.warc.gz"),
    )
    .unwrap();
    for f in [
        "dolma-sample-0000.warc.gz",
        "cc-main-2020-34-sample.warc.gz",
    ] {
        std::fs::copy(shared().unwrap().join("data/warc").join(f), input.join(f)).unwrap();
    }
    let p = root().join("pipelines/llama3.toml");
    let out = d.path().join("out");
    let mut sets = sets;
    sets.push(format!("stages.semantic.ort_library=\"{}\"", ort.display()));
    let run = |cmd: &str| {
        let mut args = vec![cmd, p.to_str().unwrap(), "--output", out.to_str().unwrap()];
        if cmd == "run" {
            args.extend(["--input", input.to_str().unwrap()]);
        }
        for s in &sets {
            args.extend(["--set", s.as_str()]);
        }
        curate_ok(&args)
    };
    let printed = run("run");
    for stage in [
        "extract", "dirty", "lines", "c4", "kl", "quality", "topic", "semantic", "decontam",
    ] {
        assert!(printed.contains(stage), "summary lacks {stage}: {printed}");
    }
    // Semantic dedup is the verified cascade: MiniLM checks what the static model flags.
    let stats = std::fs::read_to_string(out.join("stats.json")).unwrap();
    assert!(
        stats.contains("verify_embedded") && stats.contains("verify_checked"),
        "{stats}"
    );
    let mixed = run("mix");
    assert!(
        mixed.contains("mix main") && mixed.contains("mix anneal"),
        "{mixed}"
    );
    let shards = |mix: &str| files(&out.join("mix").join(mix), "");
    let has = |mix: &str, bucket: &str| {
        let idx = format!("{mix}_{bucket}_00000");
        if !shards(mix).contains_key(&format!("{idx}.idx")) {
            return false;
        }
        let ds = IndexedDataset::open(out.join("mix").join(mix).join(idx)).unwrap();
        !ds.is_empty()
    };
    // The sample's German, French and Spanish pages form the multilingual bucket: they are
    // judged by their own languages' rows (`per_language`), not by English numbers.
    assert!(
        has("main", "general") && has("main", "multilingual"),
        "{mixed}"
    );
    // Pages whose formulas C4 strips (lines without terminal punctuation) fail its sentence
    // rule, the algebra page among them.
    let rejected = |mix: &str, reason: &str| {
        let r: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("mix").join(mix).join("mix_report.json")).unwrap(),
        )
        .unwrap();
        r["selection"]["rejected"][reason].as_u64().unwrap_or(0)
    };
    let too_few = |mix: &str| rejected(mix, "c4:too_few_sentences");
    let strict = too_few("main");
    assert!(strict >= 1, "{mixed}");
    assert!(
        shards("anneal").keys().any(|k| k.ends_with(".idx")),
        "{mixed}"
    );
    // An ablation from stored signals: relaxing that rule brings pages back (the algebra page,
    // bucketed math by the topic classifier), and the planner scales the other buckets to them.
    let mut args = vec![
        "mix",
        p.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--mix",
        "main",
    ];
    let relaxed = "stages.c4.min_num_sentences=3".to_string();
    for s in sets.iter().chain([&relaxed]) {
        args.extend(["--set", s.as_str()]);
    }
    let ablated = curate_ok(&args);
    assert!(too_few("main") < strict, "{ablated}");
    assert!(
        has("main", "math") && has("main", "multilingual"),
        "{ablated}"
    );
    // A per-language threshold moves from stored signals too (`lang.<code>.<key>`): a German
    // stop-word count that no page can meet (the table lists 8 words) rejects German pages.
    let stops = "gopher_quality:too_few_stop_words";
    let before = rejected("main", stops);
    args.extend(["--set", "stages.gopher_quality.lang.de.min_stop_words=9"]);
    let german = curate_ok(&args);
    assert!(rejected("main", stops) > before, "{german}");
}

#[test]
fn mix_from_and_to_s3_matches_local() {
    let m = crate::need_moto!();
    let d = tempfile::tempdir().unwrap();
    write_corpus(&d.path().join("in.jsonl"), 800);
    let p = pipeline(d.path(), PIPE);
    let ps = p.to_str().unwrap();
    curate_ok(&["run", ps, "-q"]);
    curate_ok(&["mix", ps, "--mix", "main", "-q"]);
    m.boto("s3.create_bucket(Bucket='mixes')", &[]);
    for args in [
        vec!["run", ps, "--output", "s3://mixes/r", "-q"],
        vec!["mix", ps, "--mix", "main", "--output", "s3://mixes/r", "-q"],
    ] {
        let o = m.curate(&args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let got = d.path().join("got");
    m.boto(
        "import os\nd = sys.argv[1]\nfor o in s3.list_objects_v2(Bucket='mixes', Prefix='r/mix/main/')['Contents']:\n  f = os.path.join(d, o['Key'].split('/')[-1]); s3.download_file('mixes', o['Key'], f)",
        &[{
            std::fs::create_dir_all(&got).unwrap();
            got.to_str().unwrap()
        }],
    );
    let local = files(&d.path().join("out/mix/main"), "");
    let remote = files(&got, "");
    assert!(local.keys().any(|k| k.ends_with(".idx")));
    assert_same(&local, &remote, "mix on S3 vs local");
}
