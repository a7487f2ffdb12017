//! The multilingual bucket planned by language, end to end on real text: documents made of
//! lingua's test sentences (Leipzig web corpora) in seven languages, very unevenly represented,
//! identified by fastText lid.176 (`classify.langid`), bucketed by `mix.bucket`, and mixed twice:
//! once as one bucket, once by language (temperature 0.3, a 30% cap per language).

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;
use crate::need_shared;

/// (language, documents): German dominates the non-English part.
const LANGS: &[(&str, usize)] = &[
    ("en", 30),
    ("de", 48),
    ("fr", 12),
    ("es", 8),
    ("pl", 5),
    ("cs", 4),
    ("id", 3),
];
const SENTENCES_PER_DOC: usize = 12;

fn sentences(shared: &Path, lang: &str) -> Vec<String> {
    let p = shared.join(format!(
        "data/langid/lingua-testdata/{lang}/sentences.txt.gz"
    ));
    crate::common::read_gz(&p)
        .lines()
        .map(str::to_string)
        .collect()
}

fn pipe(model: &Path) -> String {
    format!(
        r#"[pipeline]
seed = 3
[input]
paths = ["in.jsonl"]
[output]
path = "out"
[stages.langid]
type = "classify.langid"
model = "{}"
[stages.bucket]
type = "mix.bucket"
[mix]
math = 0
code = 0
general = 0.5
multilingual = 0.5
[mix.flat]
[mix.bylang]
[mix.bylang.per_bucket.multilingual]
language_temperature = 0.3
max_language_share = 0.3
"#,
        model.display()
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// Documents per language in a mix's shards, by the language each document was written in
/// (its id), from the `.ids.jsonl` files beside the shards.
fn written_languages(dir: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".ids.jsonl") {
            continue;
        }
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap();
            *m.entry(id.split('-').next().unwrap().to_string())
                .or_default() += 1;
        }
    }
    m
}

#[test]
fn multilingual_bucket_is_planned_and_reported_by_language() {
    let shared = need_shared!();
    let model = shared.join("data/langid/models/lid.176.ftz");
    let d = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for (lang, docs) in LANGS {
        let s = sentences(&shared, lang);
        for i in 0..*docs {
            let text = s[i * SENTENCES_PER_DOC..(i + 1) * SENTENCES_PER_DOC].join(" ");
            input.push_str(
                &serde_json::json!({"id": format!("{lang}-{i}"), "text": text}).to_string(),
            );
            input.push('\n');
        }
    }
    std::fs::write(d.path().join("in.jsonl"), input).unwrap();
    let p = pipeline(d.path(), &pipe(&model));
    curate_ok(&["run", p.to_str().unwrap(), "-q"]);
    let stdout = curate_ok(&["mix", p.to_str().unwrap()]);
    assert!(stdout.contains("languages of multilingual"), "{stdout}");
    let out = d.path().join("out");

    let lang_report = |mix: &str| -> (serde_json::Value, serde_json::Value) {
        let r = json(&out.join(format!("mix/{mix}/mix_report.json")));
        let b = r["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["bucket"] == "multilingual")
            .unwrap()
            .clone();
        (r, b)
    };
    for mix in ["flat", "bylang"] {
        let (r, ml) = lang_report(mix);
        let langs = ml["languages"].as_object().unwrap();
        // lid.176 names every document's language (12 real sentences each).
        let names: Vec<&str> = langs.keys().map(String::as_str).collect();
        assert_eq!(names, ["cs", "de", "es", "fr", "id", "pl"], "{mix}: {r:#}");
        // The manifest counts the same tokens per language as the report, and each document
        // under the language it was written in.
        let manifest = json(&out.join(format!("mix/{mix}/manifest.json")));
        let written = written_languages(&out.join(format!("mix/{mix}")));
        for (l, c) in langs {
            assert_eq!(
                manifest["languages"][l]["tokens"], c["tokens"],
                "{mix} {l}: manifest vs report"
            );
            assert_eq!(
                manifest["languages"][l]["documents"].as_u64(),
                written.get(l).copied(),
                "{mix} {l}: documents"
            );
        }
        let general = r["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["bucket"] == "general")
            .unwrap();
        assert_eq!(
            general["languages"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["en"]
        );
        let html = std::fs::read_to_string(out.join(format!("mix/{mix}/report.html"))).unwrap();
        assert!(html.contains("Languages of multilingual"), "{mix}");
    }

    // One bucket: German takes what the data give it (more than half).
    let (_, flat) = lang_report("flat");
    let share = |b: &serde_json::Value, l: &str| b["languages"][l]["share"].as_f64().unwrap();
    assert!(share(&flat, "de") > 0.5, "{flat:#}");
    assert!(flat["languages"]["de"].get("target_tokens").is_none());

    // By language: no language above the 30% cap; the others' targets follow
    // available^0.3 (the temperature), and small languages gain share.
    let (r, by) = lang_report("bylang");
    let langs = by["languages"].as_object().unwrap();
    let mut ratios = Vec::new();
    for (l, c) in langs {
        let tokens = c["tokens"].as_f64().unwrap();
        let target = c["target_tokens"].as_f64().unwrap();
        let available = c["available_tokens"].as_f64().unwrap();
        assert!(
            c["share"].as_f64().unwrap() <= 0.3 + 0.02,
            "{l} above the cap: {r:#}"
        );
        // Whole documents fill a target to within a document's length.
        assert!(
            (tokens - target).abs() <= 0.1 * target + 600.0,
            "{l}: {r:#}"
        );
        if target < 0.3 * by["target_tokens"].as_f64().unwrap() - 1.0 && target < available {
            ratios.push((l.clone(), target / available.powf(0.3)));
        }
    }
    assert!(ratios.len() >= 3, "{r:#}");
    let first = ratios[0].1;
    for (l, x) in &ratios {
        assert!((x / first - 1.0).abs() < 0.01, "{l}: {ratios:?}");
    }
    assert!(share(&by, "de") < share(&flat, "de") - 0.1);
    assert!(share(&by, "id") > share(&flat, "id"));
    assert!(share(&by, "cs") > share(&flat, "cs"));

    // The run's report lists the languages of each mix.
    let run_html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        run_html.contains("languages of multilingual (6)"),
        "run report"
    );

    // Same input, config and seed: byte-identical shards and manifest.
    let before = files(&out.join("mix/bylang"), "");
    curate_ok(&["mix", p.to_str().unwrap(), "--mix", "bylang"]);
    assert_same(&before, &files(&out.join("mix/bylang"), ""), "bylang mix");
}

#[test]
fn language_options_are_validated_with_key_and_exit_2() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in.jsonl"), "").unwrap();
    for (bad, key) in [
        ("language_temperature = 1.5", "language_temperature"),
        ("max_language_share = 0", "max_language_share"),
        ("language_weights = { de = -1 }", "language_weights.de"),
    ] {
        let text = format!(
            "[input]\npaths = [\"in.jsonl\"]\n[output]\npath = \"out\"\n[stages.bucket]\ntype = \"mix.bucket\"\n[mix.per_bucket.multilingual]\n{bad}\n"
        );
        let p = pipeline(d.path(), &text);
        let o = curate(&["mix", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("mix.per_bucket.multilingual.{key}")),
            "{bad}: {err}"
        );
    }
}
