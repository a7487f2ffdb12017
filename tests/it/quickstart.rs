//! The README's main job: `curate run pipelines/quickstart.toml` on the sample crawl that ships
//! with the repo, then `curate mix` on its stored signals, and the run report of both opened in
//! a real headless browser. The sample (scripts/make_sample_warc.py) plants one copy of each
//! kind of duplicate (same URL, same text, near-identical text) and a page of a blocklisted
//! domain, so each of those stages must drop exactly its planted page. It holds general, math,
//! code and German/French/Spanish pages: the built-in topic rules and the language bucket each
//! page where it belongs, and the mix is Llama 3's 50/25/17/8 with shards for all four buckets.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

fn stage_in_out(stats: &serde_json::Value, name: &str) -> (u64, u64) {
    let (mut i, mut o) = (0, 0);
    for ph in stats["phases"].as_array().unwrap() {
        for st in ph["stages"].as_array().unwrap() {
            if st["name"] == name {
                i += st["docs_in"].as_u64().unwrap();
                o += st["docs_out"].as_u64().unwrap();
            }
        }
    }
    (i, o)
}

fn run_quickstart(out: &Path) -> String {
    let p = root().join("pipelines/quickstart.toml");
    let o = out.to_str().unwrap();
    let printed = curate_ok(&["run", p.to_str().unwrap(), "--output", o]);
    let mixed = curate_ok(&["mix", p.to_str().unwrap(), "--output", o]);
    format!("{printed}\n{mixed}")
}

#[test]
fn quickstart_runs_mixes_and_its_report_renders() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("qs");
    let printed = run_quickstart(&out);
    // The summary table names every stage.
    for stage in [
        "extract",
        "langid",
        "url_filter",
        "pii",
        "gopher_quality",
        "minhash",
        "tokens",
        "bucket",
    ] {
        assert!(printed.contains(stage), "summary lacks {stage}:\n{printed}");
    }
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    // Each planted page is caught by its own stage, and nothing else is.
    assert_eq!(
        stage_counts(&stats, "url_filter", "dropped").get("blocked_domain"),
        Some(&1)
    );
    assert_eq!(
        stage_counts(&stats, "url_dedup", "dropped").get("duplicate"),
        Some(&1)
    );
    assert_eq!(
        stage_counts(&stats, "exact_dedup", "dropped").get("duplicate"),
        Some(&1)
    );
    assert_eq!(
        stage_counts(&stats, "minhash", "dropped").get("duplicate"),
        Some(&1)
    );
    // Accounting: every stage's input is its output plus its drops.
    assert_accounting(&stats, "quickstart");
    let (_, kept) = stage_in_out(&stats, "bucket");
    assert!(kept >= 30, "most sample pages survive ({kept})");
    // Parquet output with signal columns.
    let docs = files(&out, "docs");
    assert!(docs.keys().all(|k| k.ends_with(".parquet")) && !docs.is_empty());
    // Every page lands in the bucket it was written for (by the URLs of the sample script).
    let mut buckets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, bytes) in docs {
        for d in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 1024).unwrap() {
            let d = d.unwrap();
            let b = d.signals.str("bucket").unwrap().to_string();
            // The lorem-ipsum template page reads as Latin to the 75-language n-gram detector:
            // multilingual bucket, tagged by C4's lorem-ipsum rule (so the mix leaves it out).
            if d.url.contains("template-site") {
                assert_eq!(d.signals.str("lang"), Some("la"), "{}", d.url);
                assert_eq!(d.signals.bool("c4.lorem_ipsum"), Some(true), "{}", d.url);
            }
            buckets.entry(b).or_default().push(d.url);
        }
    }
    let expect = [
        (
            "math",
            &[
                "quadratic-formula",
                "infinitely-many-primes",
                "geometric-series",
                "pythagoras",
                "product-rule",
                "modular-inverse",
                "triangle-numbers",
            ][..],
        ),
        (
            "code",
            &[
                "iterators-guide",
                "list-comprehension",
                "go/word-count",
                "largest-files",
                "debounce",
                "group-by-having",
            ][..],
        ),
        (
            "multilingual",
            &["fahrrad", "pain-cocotte", "breve-historia", "template-site"][..],
        ),
        (
            "general",
            &[
                "alder-river",
                "last-keepers",
                "bees-in-winter",
                "night-trains",
                "autumn-waders",
                "route-7",
            ][..],
        ),
    ];
    for (bucket, pages) in expect {
        let got = buckets.get(bucket).cloned().unwrap_or_default();
        for page in pages {
            assert!(
                got.iter().any(|u| u.contains(page)),
                "{page} is not in {bucket}: {buckets:#?}"
            );
        }
        if bucket != "general" {
            assert_eq!(got.len(), pages.len(), "{bucket}: {got:#?}");
        }
    }
    // The mix: Llama 3's shares within half a point, Megatron shards for all four buckets, and a
    // manifest naming them.
    let mix = out.join("mix/main");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mix.join("mix_report.json")).unwrap()).unwrap();
    let shares: BTreeMap<&str, f64> = report["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["bucket"].as_str().unwrap(), b["share"].as_f64().unwrap()))
        .collect();
    let recipe = [
        ("general", 0.50),
        ("math", 0.25),
        ("code", 0.17),
        ("multilingual", 0.08),
    ];
    assert_eq!(shares.len(), recipe.len(), "{report}");
    for (bucket, want) in recipe {
        let got = shares[bucket];
        assert!(
            (got - want).abs() <= 0.005,
            "{bucket}: {got} vs {want}\n{printed}"
        );
    }
    let shards = files(&mix, "");
    let manifest: serde_json::Value = serde_json::from_slice(&shards["manifest.json"]).unwrap();
    for (bucket, _) in recipe {
        let prefix = format!("main_{bucket}_00000");
        for ext in ["bin", "idx"] {
            let f = &shards[&format!("{prefix}.{ext}")];
            assert!(!f.is_empty(), "{prefix}.{ext}");
        }
        assert!(manifest["buckets"][bucket]["tokens"].as_u64().unwrap() > 0);
        assert!(
            manifest["shards"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["bucket"] == bucket && s["prefix"] == format!("mix/main/{prefix}")),
            "{manifest}"
        );
    }

    // Same input, config and seed: byte-identical output.
    let again = d.path().join("qs2");
    run_quickstart(&again);
    for sub in ["docs", "dropped", "mix/main"] {
        let (a, b) = (files(&out, sub), files(&again, sub));
        let keep = |m: std::collections::BTreeMap<String, Vec<u8>>| {
            m.into_iter()
                .filter(|(k, _)| !k.ends_with(".html") && !k.ends_with("config.toml"))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_same(&keep(a), &keep(b), sub);
    }

    // The run report, re-rendered after the mix, in a real browser.
    let Some((_, shot)) = crate::report::render_checked(
        &out,
        &[
            "Funnel",
            "Drops by stage and reason",
            "blocked_domain",
            "Signals",
            "gopher_quality.word_count",
            "Mix composition",
            "multilingual",
            "Configuration",
            "Versions",
        ],
    ) else {
        return;
    };
    // Keeps docs/report-screenshot.png (shown by the README) current when asked.
    if std::env::var_os("CURATE_UPDATE_SCREENSHOT").is_some() {
        std::fs::copy(&shot, root().join("docs/report-screenshot.png")).unwrap();
    }
}
