//! HumanEval problems planted into real documents, whole, in part and reformatted, must be
//! caught; the real documents themselves must not.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::*;
use crate::tokenize::testdata::{corpus_texts, shared};
use crate::Signals;

fn humaneval_path() -> Option<PathBuf> {
    let p = shared()?.join("data/benchmarks/humaneval/HumanEval.jsonl.gz");
    if p.exists() {
        Some(p)
    } else {
        testkit::skip(format!("{} is absent", p.display()));
        None
    }
}

fn humaneval(path: &Path) -> Vec<serde_json::Value> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stage(table: &str, purpose: Purpose) -> Result<Built, ConfigError> {
    crate::kit::build_in(&DEF, "decontam", table, purpose, Path::new("/"))
}

fn config(path: &Path) -> String {
    format!(
        "[[benchmarks]]\npath = {:?}\nfields = [\"prompt\", \"canonical_solution\"]\n",
        path.display().to_string()
    )
}

/// Inserts `plant` between the lines of `host`, half way.
fn plant_into(host: &str, plant: &str) -> String {
    let lines: Vec<&str> = host.lines().collect();
    let mid = lines.len() / 2;
    format!(
        "{}\n{}\n{}",
        lines[..mid].join("\n"),
        plant,
        lines[mid..].join("\n")
    )
}

fn reindent(code: &str, unit: &str) -> String {
    code.lines()
        .map(|l| {
            let spaces = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", unit.repeat(spaces / 4), &l[spaces - spaces % 4..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_comments(code: &str) -> String {
    code.lines()
        .filter_map(|l| {
            let cut = match l.find('#') {
                Some(i) => l[..i].trim_end(),
                None => l,
            };
            (!cut.trim().is_empty() || l.trim().is_empty()).then_some(cut)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn second_half(code: &str) -> String {
    let lines: Vec<&str> = code.lines().collect();
    lines[lines.len() / 2..].join("\n")
}

#[test]
fn planted_humaneval_is_caught_and_clean_text_is_not() {
    let (Some(path), Some(texts)) = (humaneval_path(), corpus_texts(usize::MAX)) else {
        return;
    };
    let Built::Map(st) = stage(&config(&path), Purpose::Run).unwrap() else {
        panic!("a map stage")
    };
    let run = |text: &str| {
        let mut d = Document::new("x", text.to_string());
        st.process(&mut d);
        (st.judge(&d.signals), d.signals)
    };
    let problems = humaneval(&path);
    assert_eq!(problems.len(), 164);
    type Variant = (&'static str, fn(&str) -> String);
    let variants: [Variant; 6] = [
        ("whole", |c| c.to_string()),
        ("reindented to 2 spaces", |c| reindent(c, "  ")),
        ("reindented to tabs", |c| reindent(c, "\t")),
        ("white space collapsed", |c| {
            c.split_whitespace().collect::<Vec<_>>().join(" ")
        }),
        ("comments stripped", strip_comments),
        ("second half only", second_half),
    ];
    for (what, f) in variants {
        let (mut caught, mut right_item, mut eligible) = (0, 0, 0);
        for (i, p) in problems.iter().enumerate() {
            let code = format!(
                "{}{}",
                p["prompt"].as_str().unwrap(),
                p["canonical_solution"].as_str().unwrap()
            );
            let planted = f(&code);
            // A plant shorter than two n-grams cannot be told from chance.
            if Document::new("", planted.clone())
                .normalized()
                .split(' ')
                .count()
                < 26
            {
                continue;
            }
            eligible += 1;
            let doc = plant_into(&texts[(i * 7) % texts.len()], &planted);
            let (verdict, s) = run(&doc);
            caught += (verdict == Outcome::Drop("benchmark_overlap")) as usize;
            let want = format!("HumanEval:{}", p["task_id"].as_str().unwrap());
            right_item += (s.str("decontam.benchmark") == Some(want.as_str())) as usize;
        }
        eprintln!("{what}: {caught}/{eligible} caught, {right_item} matched to their item");
        assert!(eligible >= 100, "{what}: {eligible}");
        assert!(
            caught as f64 >= 0.97 * eligible as f64,
            "{what}: {caught}/{eligible}"
        );
        assert!(
            right_item as f64 >= 0.9 * eligible as f64,
            "{what}: {right_item}/{eligible}"
        );
    }
    // Real documents, and real Python code that is not from HumanEval, stay.
    let mut flagged = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        let (v, s) = run(t);
        if v != Outcome::Keep {
            flagged.push((i, s.str("decontam.benchmark").unwrap_or("").to_string()));
        }
    }
    assert!(flagged.is_empty(), "clean documents flagged: {flagged:?}");
    let own_code = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/tokenize_peer.py"),
    )
    .unwrap();
    let (v, s) = run(&own_code);
    assert_eq!(v, Outcome::Keep, "{s:?}");
}

#[test]
fn example_builds_and_select_needs_no_files() {
    // Select builds only to judge stored signals: the files are not read.
    let Built::Map(st) = stage(DEF.example, Purpose::Select).unwrap() else {
        panic!("a map stage")
    };
    assert_eq!(st.signals().len(), 3);
    let mut s = Signals::new();
    s.set_f64("decontam.overlap", 0.5);
    s.set_i64("decontam.ngrams", 3);
    assert_eq!(st.judge(&s), Outcome::Drop("benchmark_overlap"));
    s.set_f64("decontam.overlap", 0.01);
    assert_eq!(st.judge(&s), Outcome::Keep);
    s.set_i64("decontam.ngrams", 25);
    assert_eq!(st.judge(&s), Outcome::Drop("benchmark_overlap"));
    assert_eq!(st.judge(&Signals::new()), Outcome::Keep);
    let e = |t: &str| stage(t, Purpose::Select).err().unwrap().key;
    assert_eq!(e("benchmarks = []"), "benchmarks");
    assert_eq!(
        e("min_overlap = 2.0\n[[benchmarks]]\npath = 'x'\nfields = ['a']"),
        "min_overlap"
    );
    assert_eq!(
        e("[[benchmarks]]\npath = 'x'\nfields = []"),
        "benchmarks[0].fields"
    );
    // Run mode resolves and reads the files.
    let run_err = stage("[[benchmarks]]\npath = 'x'\nfields = ['a']", Purpose::Run);
    assert_eq!(run_err.err().unwrap().key, "benchmarks[0].path");
}

#[test]
fn index_is_shared_between_instances() {
    let Some(path) = humaneval_path() else {
        return;
    };
    let files = vec![(
        path,
        BenchmarkFile {
            path: String::new(),
            name: None,
            fields: vec!["prompt".into()],
            id_field: None,
        },
    )];
    let a = shared_index(files.clone(), 13).unwrap();
    let b = shared_index(files, 13).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.items.len() + a.too_short, 164);
}

#[test]
fn ngram_windows_roll() {
    let mut a = Vec::new();
    for_each_ngram("a b c d e", 3, |h| a.push(h));
    let mut b = Vec::new();
    for_each_ngram("x c d e", 3, |h| b.push(h));
    assert_eq!(a.len(), 3);
    assert_eq!(a[2], b[1]);
    assert_ne!(a[0], a[1]);
}
