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
    let mut out = BTreeMap::new();
    for (path, bytes) in files(dir, sub) {
        if path.ends_with(".parquet") {
            for d in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 1024).unwrap() {
                let d = d.unwrap();
                out.insert(d.id.clone(), d);
            }
        }
    }
    out
}

#[test]
fn a_leaky_site_is_removed_whole_and_reported() {
    let shared = need_shared!();
    let mut s = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut s)
    .unwrap();
    let mut lines: Vec<String> = s.lines().take(300).map(str::to_string).collect();
    for i in 0..30 {
        let doc = serde_json::json!({
            "id": format!("leaky-{i:02}"),
            "url": format!("https://shop{}.leaky-shop.co.uk/item/{i}", i % 2),
            "text": format!("Teak garden bench number {i}, oiled and delivered flat-packed.\n\
                Contact sales{i}@leaky-shop.co.uk or mary.major{i}@gmail.com, phone +44 20 7946 0{i:03}.\n\
                Our team answers every order within a day."),
        });
        lines.insert(i * 10, doc.to_string());
    }
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
    let psl = Path::new(stages::safety::suffix::DEFAULT_LIST);
    let psl_set = if psl.exists() {
        String::new()
    } else {
        eprintln!("note: no {} (apt install publicsuffix)", psl.display());
        std::fs::write(d.path().join("psl.dat"), "com\nnet\norg\nde\nuk\nco.uk\n").unwrap();
        "stages.sites.public_suffix_list=\"psl.dat\"".to_string()
    };
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
