//! Safety and quality heuristics through the binary: `curate pii`, `curate kl-ref build`, and a
//! pipeline running the whole heuristic stack on real extracted pages.

use std::io::{BufRead, Read, Write};

use crate::common::*;

#[test]
fn pii_command_redacts_lines_and_counts() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    writeln!(f, r#"{{"id": "a", "text": "Mail ann@example.org or call +44 20 7946 0958.", "url": "https://x.example/"}}"#).unwrap();
    writeln!(f, r#"{{"id": "b", "text": "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, from 8.8.8.8"}}"#).unwrap();
    writeln!(
        f,
        r#"{{"id": "c", "text": "Nothing personal here, just 3 apples and version 1.2.3."}}"#
    )
    .unwrap();
    writeln!(f, "not json").unwrap();
    writeln!(f, r#"{{"id": "d"}}"#).unwrap();
    drop(f);
    let out = d.path().join("out.jsonl");
    let res = curate(&[
        "pii",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--placeholder",
        "email=[EMAIL]",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("invalid_json 1") && err.contains("missing_text 1"),
        "{err}"
    );
    let rows: Vec<serde_json::Value> = std::io::BufReader::new(std::fs::File::open(&out).unwrap())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], "a");
    assert_eq!(rows[0]["url"], "https://x.example/");
    assert_eq!(rows[0]["text"], "Mail [EMAIL] or call <PHONE>.");
    assert_eq!(rows[0]["pii"]["email"], 1);
    assert_eq!(rows[0]["pii"]["phone"], 1);
    assert_eq!(
        rows[1]["text"],
        "Card <CREDIT_CARD>, IBAN <IBAN>, from <IP_ADDRESS>"
    );
    assert_eq!(rows[1]["pii"]["credit_card"], 1);
    assert_eq!(
        rows[2]["text"],
        "Nothing personal here, just 3 apples and version 1.2.3."
    );
    assert_eq!(rows[2]["pii"]["phone"], 0);
    // A bad kind is a usage error.
    let bad = curate(&[
        "pii",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--types",
        "passport",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn kl_reference_and_the_heuristic_stack_in_a_pipeline() {
    let shared = crate::need_shared!();
    let corpus = shared.join("data/corpora/warc-extracted-texts.jsonl.gz");
    let d = tempfile::tempdir().unwrap();
    let reference = d.path().join("ref.bin");
    let res = curate(&[
        "kl-ref",
        "build",
        "--input",
        corpus.to_str().unwrap(),
        "--out",
        reference.to_str().unwrap(),
        "--bits",
        "16",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("1080 documents"), "{err}");
    assert_eq!(std::fs::metadata(&reference).unwrap().len(), 40 + 4 * 65536);

    // Input: the real pages plus two outliers the KL stage should flag.
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&corpus).unwrap())
        .read_to_string(&mut raw)
        .unwrap();
    let input = d.path().join("in.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    for l in raw.lines().take(300) {
        writeln!(f, "{l}").unwrap();
    }
    let gibberish = "qzxv bnmw krtp lokz zyqa ".repeat(60);
    let markup = "<div class=\"nav\"><span>{{ item.title }}</span></div> | ".repeat(40);
    writeln!(
        f,
        "{}",
        serde_json::json!({"id": "gibberish", "text": gibberish})
    )
    .unwrap();
    writeln!(f, "{}", serde_json::json!({"id": "markup", "text": markup})).unwrap();
    drop(f);
    let lists = shared.join("data/nsfw/ldnoobw");
    let assets = shared.join("data/nsfw/datatrove-assets");
    let pipe = pipeline(
        d.path(),
        &format!(
            r#"[pipeline]
seed = 1
[input]
paths = ["in.jsonl"]
[output]
path = "out"
[stages.url_filter]
banned_words_files = ["{a}/banned_words.txt"]
banned_subwords_files = ["{a}/banned_subwords.txt"]
soft_banned_words_files = ["{a}/soft_banned_words.txt"]
[stages.pii]
[stages.dirty_words]
lists_dir = "{l}"
max_ratio = 0.01
[stages.gopher_repetition]
mode = "tag"
[stages.gopher_quality]
mode = "tag"
[stages.c4]
mode = "tag"
[stages.fineweb]
mode = "tag"
[stages.kl]
mode = "tag"
reference = "ref.bin"
max_kl = 5.0
"#,
            a = assets.display(),
            l = lists.display()
        ),
    );
    let out = d.path().join("out");
    curate_ok(&[
        "run",
        pipe.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    let stages = s["phases"][0]["stages"].as_array().unwrap();
    let by = |n: &str| {
        stages
            .iter()
            .find(|x| x["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {s}"))
    };
    assert_eq!(by("read")["docs_out"], 302);
    // Tag mode: every heuristic saw every document that the safety stages kept.
    let kept_by_safety = by("dirty_words")["docs_out"].as_u64().unwrap();
    for n in ["gopher_repetition", "gopher_quality", "c4", "fineweb", "kl"] {
        assert_eq!(by(n)["docs_in"].as_u64().unwrap(), kept_by_safety, "{n}");
    }
    assert!(
        by("gopher_quality")["flagged"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
            > 10
    );
    let kl_flagged = by("kl")["flagged"]["kl_outlier"].as_u64().unwrap_or(0);
    assert!((2..100).contains(&kl_flagged), "{}", by("kl"));
    // The same run again gives byte-identical outputs.
    let out2 = d.path().join("out2");
    curate_ok(&[
        "run",
        pipe.to_str().unwrap(),
        "--output",
        out2.to_str().unwrap(),
        "--threads",
        "1",
    ]);
    assert_same(&outputs(&out), &outputs(&out2), "heuristic stack");
}
