//! The README's main job: `curate run pipelines/quickstart.toml` on the sample crawl that ships
//! with the repo, then `curate mix` on its stored signals, and the run report of both opened in
//! a real headless browser. The sample (scripts/make_sample_warc.py) plants one copy of each
//! kind of duplicate (same URL, same text, near-identical text) and a page of a blocklisted
//! domain, so each of those stages must drop exactly its planted page.

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
    assert!(kept >= 8, "most sample pages survive ({kept})");
    // Parquet output with signal columns.
    let docs = files(&out, "docs");
    assert!(docs.keys().all(|k| k.ends_with(".parquet")) && !docs.is_empty());
    // The mix: Megatron shards per bucket and a report whose shares are the ones achieved.
    let mix = out.join("mix/main");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mix.join("mix_report.json")).unwrap()).unwrap();
    let shards = files(&mix, "");
    for bucket in ["general", "multilingual"] {
        assert!(
            shards.contains_key(&format!("main_{bucket}_00000.idx")),
            "{bucket} shard: {:?}",
            shards.keys()
        );
    }
    assert!(report.to_string().contains("multilingual"), "{report}");

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
