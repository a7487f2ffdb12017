//! Agreement with datatrove 0.10.1: on the English documents of
//! ../shared/data/corpora/warc-extracted-texts.jsonl.gz, the keep/drop decisions of
//! `filter.gopher_repetition`, `filter.gopher_quality`, `filter.c4` and `filter.fineweb` (default
//! thresholds) equal datatrove's on at least 99% of documents, per filter.
//!
//! datatrove runs live (benches/peers/datatrove_filters.py) in the environment named by
//! `CURATE_DATATROVE_PY`, else `~/.cache/curate-peers/dt/bin/python`, else the test
//! environment (`CURATE_PY`) when datatrove is installed there; English is fastText
//! lid.176's top label, as datatrove_bench.py selects it. Without datatrove, fastText's model
//! or the corpus, the test skips with the reason. Every disagreement is printed with both
//! reasons; docs/heuristics.md explains them.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use stages::registry::StageDef;
use stages::{Built, Document, Outcome, Purpose, Stage, StageArgs};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shared() -> Option<PathBuf> {
    let d = repo().join("../shared");
    d.is_dir().then_some(d)
}

fn datatrove_python() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_DATATROVE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/curate-peers/dt/bin/python"))
        })?;
    p.exists().then_some(p)
}

fn stage(def: &StageDef) -> Box<dyn Stage> {
    let t = toml::Table::new();
    let args = StageArgs {
        name: def.short_name(),
        table: &t,
        base_dir: Path::new("."),
        purpose: Purpose::Run,
        seed: 0,
    };
    match (def.build)(&args) {
        Ok(Built::Map(s)) => s,
        _ => panic!("{} builds with defaults", def.kind),
    }
}

fn decide(s: &dyn Stage, text: &str) -> String {
    let mut d = Document::new("x", text);
    match s.process(&mut d) {
        Outcome::Keep => match s.judge(&d.signals) {
            Outcome::Keep => "keep".into(),
            Outcome::Drop(r) => r.into(),
        },
        Outcome::Drop(r) => r.into(),
    }
}

#[test]
fn keep_drop_decisions_agree_with_datatrove() {
    let Some(shared) = shared() else {
        testkit::skip!("../shared is absent")
    };
    let corpus = shared.join("data/corpora/warc-extracted-texts.jsonl.gz");
    let lid = shared.join("data/langid/models/lid.176.ftz");
    let Some(py) = datatrove_python() else {
        testkit::skip!("no Python with datatrove, spaCy and fastText (set CURATE_DATATROVE_PY)")
    };
    if !corpus.exists() || !lid.exists() {
        testkit::skip!("corpus or fastText model missing under ../shared")
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("decisions.jsonl");
    let script = repo().join("benches/peers/datatrove_filters.py");
    let st = Command::new(&py)
        .arg(&script)
        .arg("decisions")
        .arg(&corpus)
        .arg(&out)
        .arg("--lid")
        .arg(&lid)
        .args(["--only-lang", "en"])
        .status()
        .expect("run datatrove");
    if !st.success() {
        testkit::skip!("datatrove_filters.py failed ({st}); is datatrove 0.10.1 installed?")
    }
    let mut texts = BTreeMap::new();
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&corpus).unwrap())
        .read_to_string(&mut raw)
        .unwrap();
    for l in raw.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        texts.insert(
            v["id"].as_str().unwrap().to_string(),
            v["text"].as_str().unwrap().to_string(),
        );
    }
    let filters = [
        ("gopher_repetition", &stages::filter::gopher_repetition::DEF),
        ("gopher_quality", &stages::filter::gopher_quality::DEF),
        ("c4", &stages::filter::c4::DEF),
        ("fineweb", &stages::filter::fineweb::DEF),
    ];
    let built: Vec<_> = filters.iter().map(|(n, d)| (*n, stage(d))).collect();
    let mut agree = vec![0usize; filters.len()];
    let mut same_reason = vec![0usize; filters.len()];
    let mut n = 0usize;
    for line in std::io::BufReader::new(std::fs::File::open(&out).unwrap()).lines() {
        let row: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = row["id"].as_str().unwrap();
        let text = &texts[id];
        n += 1;
        for (k, (name, s)) in built.iter().enumerate() {
            let theirs = row[*name].as_str().unwrap();
            let ours = decide(s.as_ref(), text);
            if (theirs == "keep") == (ours == "keep") {
                agree[k] += 1;
                same_reason[k] += (reason_name(name, &ours) == theirs) as usize;
            } else {
                println!("DIFF {name} {id}: datatrove {theirs}, curate {ours}");
            }
        }
    }
    assert!(n >= 150, "only {n} English documents");
    println!("| filter | English docs | same keep/drop | same reason |");
    println!("|---|---|---|---|");
    for (k, (name, _)) in filters.iter().enumerate() {
        println!(
            "| {name} | {n} | {} ({:.1}%) | {} |",
            agree[k],
            100.0 * agree[k] as f64 / n as f64,
            same_reason[k]
        );
    }
    for (k, (name, _)) in filters.iter().enumerate() {
        assert!(
            agree[k] as f64 >= 0.99 * n as f64,
            "{name}: {}/{n} decisions agree",
            agree[k]
        );
    }
}

/// datatrove's name for one of our drop reasons (same rule, different wording).
fn reason_name(filter: &str, ours: &str) -> String {
    let m = match (filter, ours) {
        ("gopher_quality", "too_few_words") => "gopher_short_doc",
        ("gopher_quality", "too_many_words") => "gopher_long_doc",
        ("gopher_quality", "short_words") => "gopher_below_avg_threshold",
        ("gopher_quality", "long_words") => "gopher_above_avg_threshold",
        ("gopher_quality", "too_many_hashes") => "gopher_too_many_hashes",
        ("gopher_quality", "too_many_ellipses") => "gopher_too_many_ellipsis",
        ("gopher_quality", "too_many_bullet_lines") => "gopher_too_many_bullets",
        ("gopher_quality", "too_many_ellipsis_lines") => "gopher_too_many_end_ellipsis",
        ("gopher_quality", "too_few_alpha_words") => "gopher_below_alpha_threshold",
        ("gopher_quality", "too_few_stop_words") => "gopher_enough_stop_words",
        (_, r) => r,
    };
    m.to_string()
}
