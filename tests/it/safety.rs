//! Site-level safety and markdown cleaning through the real runner: real pages of the
//! extracted-WARC corpus plus a generated shop whose every page prints e-mail addresses and
//! phone numbers, as JSONL; `clean.markdown`, `safety.pii`, then `safety.domains`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use stages::Document;

use crate::common::{curate_ok, files, pipeline};
use crate::need_shared;

fn read_docs(dir: &Path, sub: &str) -> BTreeMap<String, Document> {
    crate::common::read_docs(dir, sub)
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect()
}

/// The first `real` pages of the extracted-WARC corpus (JSON lines) with a shop of 30 pages
/// that all print e-mail addresses and phone numbers, one every `every` lines.
fn real_pages_with_leaky_shop(shared: &Path, real: usize, every: usize) -> Vec<String> {
    let mut s = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut s)
    .unwrap();
    let mut lines: Vec<String> = s.lines().take(real).map(str::to_string).collect();
    for i in 0..30 {
        let doc = serde_json::json!({
            "id": format!("leaky-{i:02}"),
            "url": format!("https://shop{}.leaky-shop.co.uk/item/{i}", i % 2),
            "text": format!("Teak garden bench number {i}, oiled and delivered flat-packed.\n\
                Contact sales{i}@leaky-shop.co.uk or mary.major{i}@gmail.com, phone +44 20 7946 0{i:03}.\n\
                Our team answers every order within a day."),
        });
        lines.insert(i * every, doc.to_string());
    }
    lines
}

/// `--set` for the Public Suffix List: none when Debian's file is installed, else a small list
/// written into `dir`.
fn psl_override(dir: &Path) -> String {
    let psl = Path::new(stages::safety::suffix::DEFAULT_LIST);
    if psl.exists() {
        return String::new();
    }
    eprintln!("note: no {} (apt install publicsuffix)", psl.display());
    std::fs::write(dir.join("psl.dat"), "com\nnet\norg\nde\nuk\nco.uk\n").unwrap();
    "stages.sites.public_suffix_list=\"psl.dat\"".to_string()
}

#[test]
fn a_leaky_site_is_removed_whole_and_reported() {
    let shared = need_shared!();
    let mut lines = real_pages_with_leaky_shop(&shared, 300, 10);
    lines.push(
        serde_json::json!({
            "id": "markdown-readme",
            "url": "https://docs.example.org/readme",
            "text": "## Install\n\nRun `cargo build`, then see [the guide](https://docs.example.org/guide).\n\n\
                     - fast\n- **safe**\n\n```sh\n# a comment in code stays\n```\n",
        })
        .to_string(),
    );
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("pages.jsonl"), lines.join("\n") + "\n").unwrap();
    let p = pipeline(
        d.path(),
        "[input]\npaths = [\"pages.jsonl\"]\npartition_bytes = 300000\n\
         [output]\npath = \"out\"\nwrite_dropped = true\n\
         [stages.markdown]\ntype = \"clean.markdown\"\n\
         [stages.pii]\ntype = \"safety.pii\"\n\
         [stages.sites]\ntype = \"safety.domains\"\nmin_pages = 5\npii_stage = \"pii\"\n\
         max_pii_per_1k_words = 20.0\n",
    );
    let psl_set = psl_override(d.path());
    let mut args = vec!["run", p.to_str().unwrap(), "-q"];
    if !psl_set.is_empty() {
        args.extend(["--set", &psl_set]);
    }
    curate_ok(&args);
    let out = d.path().join("out");
    let kept = read_docs(&out, "docs");
    let dropped = read_docs(&out, "dropped");
    assert_eq!(kept.len() + dropped.len(), lines.len());
    for i in 0..30 {
        let doc = &dropped[&format!("leaky-{i:02}")];
        match &doc.verdict {
            stages::Verdict::Dropped { stage, reason } => {
                assert_eq!((&**stage, &**reason), ("sites", "pii_site"))
            }
            v => panic!("leaky-{i:02}: {v:?}"),
        }
        assert_eq!(doc.signals.str("sites.domain"), Some("leaky-shop.co.uk"));
        assert_eq!(doc.signals.i64("sites.pages"), Some(30));
    }
    let md = &kept["markdown-readme"];
    assert_eq!(
        md.text(),
        "Install\n\nRun cargo build, then see the guide.\n\nfast\nsafe\n\n# a comment in code stays\n"
    );
    assert_eq!(md.signals.i64("markdown.links"), Some(1));

    let o = out.to_str().unwrap();
    let listed = curate_ok(&["inspect", o, "--domains"]);
    assert!(
        listed.contains("leaky-shop.co.uk") && listed.contains("pii_site"),
        "{listed}"
    );
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("Domains removed") && report.contains("leaky-shop.co.uk"));
}

/// Nightly runs with one history judge a site on every page the history has seen of it: a
/// leaky shop spread over three nights (10 pages a night, `min_pages = 15`) is kept on night
/// 1, removed from night 2 on, and night 2 retracts night 1's pages by domain; the nights
/// together (after retractions) keep what one run over all three keeps. A rerun adds nothing
/// and compaction sums the counts.
#[test]
fn a_leaky_site_spread_over_nights_is_judged_on_all_of_them() {
    let shared = need_shared!();
    let lines = real_pages_with_leaky_shop(&shared, 240, 8);
    let d = tempfile::tempdir().unwrap();
    let mut nights = Vec::new();
    for n in 0..3 {
        let part: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == n)
            .map(|(_, l)| l.as_str())
            .collect();
        let p = d.path().join(format!("night{n}.jsonl"));
        std::fs::write(&p, part.join("\n") + "\n").unwrap();
        nights.push(p);
    }
    std::fs::write(d.path().join("all.jsonl"), lines.join("\n") + "\n").unwrap();
    let p = pipeline(
        d.path(),
        "[input]\nformat = \"jsonl\"\npartition_bytes = 100000\n\
         [output]\npath = \"out\"\n\
         [stages.pii]\ntype = \"safety.pii\"\n\
         [stages.sites]\ntype = \"safety.domains\"\nmin_pages = 15\npii_stage = \"pii\"\n\
         max_pii_per_1k_words = 20.0\nshards = 4\n\
         [stages.bucket]\ntype = \"mix.bucket\"\n\
         [mix]\ntokenizer = \"cl100k_base\"\n[mix.main]\ntotal_tokens = 100000000\n",
    );
    let psl_set = psl_override(d.path());
    let hist = d.path().join("history");
    let run = |input: &Path, out: &Path, hist: Option<&Path>| {
        let mut args = vec![
            "run",
            p.to_str().unwrap(),
            "-q",
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        if let Some(h) = hist {
            args.extend(["--history", h.to_str().unwrap()]);
        }
        if !psl_set.is_empty() {
            args.extend(["--set", &psl_set]);
        }
        curate_ok(&args);
    };
    let outs: Vec<_> = (0..3).map(|n| d.path().join(format!("out{n}"))).collect();
    for (input, out) in nights.iter().zip(&outs) {
        run(input, out, Some(&hist));
    }
    let leaky =
        |docs: &BTreeMap<String, Document>| docs.keys().filter(|k| k.starts_with("leaky-")).count();
    // Night 1 alone has 10 pages of the shop, under min_pages: kept.
    assert_eq!(leaky(&read_docs(&outs[0], "docs")), 10);
    assert_eq!(leaky(&read_docs(&outs[1], "docs")), 0);
    assert_eq!(leaky(&read_docs(&outs[2], "docs")), 0);
    let retractions = |out: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join("retractions.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert!(retractions(&outs[0]).is_empty());
    let r2 = retractions(&outs[1]);
    assert_eq!(r2.len(), 1, "{r2:?}");
    assert_eq!(r2[0]["domain"], "leaky-shop.co.uk");
    assert_eq!(r2[0]["reason"], "pii_site");
    assert_eq!(r2[0]["earlier_pages"], 10);
    // Night 3 judges 30 pages; the earlier 20 were already offending: nothing new to retract.
    assert!(retractions(&outs[2]).is_empty());
    // Tonight's dropped pages carry the figures over every night so far.
    for (out, pages) in [(&outs[1], 20), (&outs[2], 30)] {
        let dropped = read_docs(out, "dropped");
        assert_eq!(leaky(&dropped), 10);
        for (id, doc) in dropped.iter().filter(|(k, _)| k.starts_with("leaky-")) {
            assert_eq!(doc.signals.i64("sites.pages"), Some(pages), "{id}");
        }
    }

    // The nights together, less the retracted sites, keep what one run keeps.
    let gone: Vec<String> = outs
        .iter()
        .flat_map(|o| retractions(o))
        .filter_map(|v| v["domain"].as_str().map(str::to_string))
        .collect();
    let mut together = std::collections::BTreeSet::new();
    for o in &outs {
        for (id, doc) in read_docs(o, "docs") {
            let h = stages::safety::url_filter::normalize_domain(
                stages::safety::url_filter::url_host(&doc.url),
            );
            if !gone
                .iter()
                .any(|g| h == *g || h.ends_with(&format!(".{g}")))
            {
                together.insert(id);
            }
        }
    }
    let one = d.path().join("one");
    run(&d.path().join("all.jsonl"), &one, None);
    let once: std::collections::BTreeSet<String> = read_docs(&one, "docs").into_keys().collect();
    assert_eq!(together, once);
    assert_eq!(leaky(&read_docs(&one, "docs")), 0);

    // mix, inspect and stats over the nights leave the retracted site's night-1 pages out.
    let o = |p: &Path| p.to_str().unwrap().to_string();
    let m = d.path().join("m");
    let mut args = vec!["mix".to_string(), o(&p), "-q".into()];
    for out in [&outs[2], &outs[0], &outs[1]] {
        args.extend(["--from".to_string(), o(out)]);
    }
    args.extend(["--out".to_string(), o(&m)]);
    curate_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut mixed = std::collections::BTreeSet::new();
    for (k, v) in files(&m, "") {
        if k.ends_with(".ids.jsonl") {
            for l in String::from_utf8_lossy(&v).lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                mixed.insert(v["id"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(mixed, together, "the mix of the nights is their corpus");
    let leaky_kept = read_docs(&outs[0], "docs")
        .into_keys()
        .find(|k| k.starts_with("leaky-"))
        .unwrap();
    let alone = curate_ok(&["inspect", &o(&outs[0]), "--id", &leaky_kept, "--json"]);
    assert!(alone.contains(&leaky_kept), "{alone}");
    let across = curate_ok(&[
        "inspect",
        &o(&outs[1]),
        &o(&outs[0]),
        &o(&outs[2]),
        "--id",
        &leaky_kept,
        "--json",
    ]);
    assert!(!across.contains(&leaky_kept), "{across}");
    let st = curate_ok(&["stats", &o(&outs[0]), &o(&outs[1]), &o(&outs[2])]);
    assert!(st.contains("sites retracted by later runs: 1"), "{st}");

    // A rerun of night 2 adds no generation; compaction sums the counts and a fourth night
    // of the shop is still judged on all of them.
    let status = || curate_ok(&["history", "status", hist.to_str().unwrap()]);
    let before = status();
    assert!(before.contains("generations 3"), "{before}");
    run(&nights[1], &outs[1], Some(&hist));
    assert_eq!(status(), before);
    curate_ok(&["history", "compact", hist.to_str().unwrap()]);
    let after = status();
    assert!(after.contains("generations 1"), "{after}");
    let n4 = d.path().join("night4.jsonl");
    let extra: Vec<String> = (30..33)
        .map(|i| {
            serde_json::json!({
                "id": format!("leaky-{i:02}"),
                "url": format!("https://shop.leaky-shop.co.uk/item/{i}"),
                "text": "A plain page: opening hours nine to five, closed on Sundays.",
            })
            .to_string()
        })
        .collect();
    std::fs::write(&n4, extra.join("\n") + "\n").unwrap();
    let o4 = d.path().join("out4");
    run(&n4, &o4, Some(&hist));
    assert_eq!(leaky(&read_docs(&o4, "docs")), 0, "judged on 33 pages");
}
