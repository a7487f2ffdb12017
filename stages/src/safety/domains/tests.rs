use super::*;
use crate::{LocalStore, Stage, Store};

const PSL: &str = "com\norg\nde\nuk\nco.uk\nnet\nio\n// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n";

fn build_stage(dir: &Path, toml: &str) -> Result<Box<dyn GlobalStage>, ConfigError> {
    std::fs::write(dir.join("psl.dat"), PSL).unwrap();
    let body = format!("public_suffix_list = \"psl.dat\"\n{toml}");
    match crate::kit::build_in(&DEF, "sites", &body, Purpose::Run, dir)? {
        Built::Global(g) => Ok(g),
        Built::Map(_) => panic!("a global stage"),
    }
}

fn map_stage(def: &StageDef, name: &str, toml: &str, base: &Path) -> Box<dyn Stage> {
    match crate::kit::build_in(def, name, toml, Purpose::Run, base).unwrap() {
        Built::Map(s) => s,
        Built::Global(_) => panic!("a map stage"),
    }
}

/// Runs map stages over documents as the runner does: process, judge, drop or flag.
fn run_map(stages: &[(&dyn Stage, bool)], docs: &mut [Document]) {
    for d in docs.iter_mut() {
        for (s, tag) in stages {
            if !d.verdict.is_kept() {
                break;
            }
            let o = match s.process(d) {
                Outcome::Keep => s.judge(&d.signals),
                o => o,
            };
            if let Outcome::Drop(r) = o {
                if *tag {
                    d.flags.push((Arc::from(s.name()), Arc::from(r)));
                } else {
                    d.verdict = Verdict::Dropped {
                        stage: Arc::from(s.name()),
                        reason: Arc::from(r),
                    };
                }
            }
        }
    }
}

/// Collects `docs` in `parts` partitions, runs the steps, applies; returns the outcomes in
/// input order (dropped-before pages: None) and the store.
fn run_global(
    stage: &dyn GlobalStage,
    docs: &mut [Document],
    parts: usize,
    root: &Path,
) -> (Vec<Option<Outcome>>, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(root).unwrap());
    let chunk = docs.len().div_ceil(parts);
    let ctx = |p: usize| PartitionCtx {
        store: store.clone(),
        dir: "work/sites".into(),
        partition: p,
        partitions: parts,
        scratch: root.join("scratch"),
        seed: 0,
    };
    for (p, part) in docs.chunks(chunk).enumerate() {
        let mut c = stage.collector(&ctx(p)).unwrap();
        for d in part {
            if d.verdict.is_kept() {
                c.collect(d).unwrap();
            } else {
                c.dropped(d).unwrap();
            }
        }
        c.finish().unwrap();
    }
    let sctx = StepCtx {
        store: store.clone(),
        dir: "work/sites".into(),
        partitions: parts,
        scratch: root.join("scratch"),
        memory_budget: 64 << 20,
        threads: 1,
        seed: 0,
    };
    for step in stage.steps() {
        for t in 0..step.tasks(&sctx).unwrap() {
            step.run(t, &sctx).unwrap();
        }
    }
    let mut out = Vec::new();
    for (p, part) in docs.chunks_mut(chunk).enumerate() {
        let mut a = stage.applier(&ctx(p)).unwrap();
        for d in part.iter_mut() {
            out.push(d.verdict.is_kept().then(|| a.apply(d)));
        }
    }
    (out, store)
}

fn page(url: &str, text: &str) -> Document {
    let mut d = Document::new(url, text);
    d.url = url.to_string();
    d
}

/// A shop whose every page prints its staff's e-mail addresses and phone numbers.
fn leaky_site(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            page(
                &format!("https://www{}.leaky-shop.co.uk/products/{i}", i % 3),
                &format!(
                    "Garden chair model {i}, weatherproof teak, delivered in three days.\n\
                     Questions? Write to sales.team{i}@leaky-shop.co.uk or to jane.doe{i}@gmail.com, \
                     call our store on +44 20 7946 0{:03} or (212) 555-01{:02}.\n\
                     Order before noon for next-day dispatch.",
                    i % 1000,
                    i % 100
                ),
            )
        })
        .collect()
}

fn corpus() -> Option<Vec<Document>> {
    Some(
        crate::tokenize::testdata::corpus_records()?
            .iter()
            .map(|v| {
                page(
                    v["url"].as_str().unwrap_or(""),
                    v["text"].as_str().unwrap_or(""),
                )
            })
            .collect(),
    )
}

#[test]
fn config_errors_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let err = |t: &str| build_stage(dir.path(), t).err().unwrap().key;
    assert_eq!(err("min_pages = 3"), "max_pii_per_1k_words");
    assert_eq!(err("max_dirty_share = 0.5"), "max_dirty_share");
    assert_eq!(
        err("dirty_stages = [\"d\"]\nmax_dirty_share = 1.5"),
        "max_dirty_share"
    );
    assert_eq!(
        err("pii_stage = \"pii\"\nmax_pii_per_1k_words = 1\nmin_pages = 0"),
        "min_pages"
    );
    assert_eq!(err("pii_stage = \"pii\"\nmax_pii = 1"), "max_pii");
    assert_eq!(
        err("pii_stage = \"pii\"\nmax_pii_per_1k_words = 1\nallow_lists = [\"missing\"]"),
        "allow_lists[0]"
    );
    assert!(build_stage(dir.path(), "pii_stage = \"pii\"\nmax_pii_per_1k_words = 1").is_ok());
}

/// Real pages of the extracted-WARC corpus plus a generated site whose every page leaks PII,
/// through the real `safety.pii` and `safety.dirty_words` stages: the leaky site is removed
/// whole, with its figures; the allow-list saves it; partitioning does not change the result.
#[test]
fn a_site_leaking_pii_on_every_page_is_removed_whole() {
    let Some(real) = corpus() else { return };
    let shared = crate::tokenize::testdata::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pii = map_stage(&crate::safety::pii::DEF, "pii", "", dir.path());
    let dirty = map_stage(
        &crate::safety::dirty_words::DEF,
        "dirty",
        &format!(
            "lists_dir = \"{}\"\nmax_ratio = 0.01",
            shared.join("data/nsfw/ldnoobw").display()
        ),
        dir.path(),
    );
    let policy = "min_pages = 5\npii_stage = \"pii\"\nmax_pii_per_1k_words = 20.0\n\
                  dirty_stages = [\"dirty\"]\nmax_dirty_share = 0.5\n";
    let docs = || {
        let mut docs: Vec<Document> = real.iter().take(600).cloned().collect();
        // Interleave the site with the real pages, as a crawl would.
        for (i, d) in leaky_site(40).into_iter().enumerate() {
            docs.insert(i * 15, d);
        }
        run_map(&[(dirty.as_ref(), false), (pii.as_ref(), false)], &mut docs);
        docs
    };
    let stage = build_stage(dir.path(), policy).unwrap();
    let mut a = docs();
    let (out, store) = run_global(stage.as_ref(), &mut a, 4, &dir.path().join("a"));
    let mut leaky = 0;
    for (d, o) in a.iter().zip(&out) {
        if d.url.contains("leaky-shop") {
            leaky += 1;
            assert_eq!(*o, Some(Outcome::Drop("pii_site")), "{}", d.url);
            assert_eq!(d.signals.str("sites.domain"), Some("leaky-shop.co.uk"));
            assert_eq!(d.signals.i64("sites.pages"), Some(40));
            assert!(d.signals.f64("sites.pii_per_1k_words").unwrap() > 50.0);
            assert_eq!(stage.judge(&d.signals), Outcome::Drop("pii_site"));
        }
    }
    assert_eq!(leaky, 40);
    let report: serde_json::Value =
        serde_json::from_slice(&store.read(&format!("work/sites/{REPORT_FILE}")).unwrap()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert_eq!(report["top"][0]["domain"], "leaky-shop.co.uk");
    assert_eq!(report["top"][0]["reason"], "pii_site");
    assert_eq!(report["pages"], 640);
    // Real sites rarely print PII on most pages: at most a handful are removed.
    let removed_real = out
        .iter()
        .zip(&a)
        .filter(|(o, d)| matches!(o, Some(Outcome::Drop(_))) && !d.url.contains("leaky-shop"))
        .count();
    assert!(removed_real < 30, "{removed_real}");

    // Another partitioning of the same pages: the same decisions, byte for byte.
    let mut b = docs();
    let (out_b, store_b) = run_global(stage.as_ref(), &mut b, 7, &dir.path().join("b"));
    assert_eq!(out, out_b);
    assert_eq!(
        store.read(&format!("work/sites/{REPORT_FILE}")).unwrap(),
        store_b.read(&format!("work/sites/{REPORT_FILE}")).unwrap()
    );

    // The allow-list overrides.
    let allowed = build_stage(
        dir.path(),
        &format!("{policy}allow = [\"leaky-shop.co.uk\"]"),
    )
    .unwrap();
    let mut c = docs();
    let (out_c, _) = run_global(allowed.as_ref(), &mut c, 4, &dir.path().join("c"));
    for (d, o) in c.iter().zip(&out_c) {
        if d.url.contains("leaky-shop") {
            assert_eq!(*o, Some(Outcome::Keep));
        }
    }
}

/// Shares of pages flagged (tag mode) or dropped (drop mode) by named stages; min_pages; the
/// public-suffix rules (subdomains count for their domain, `github.io` sites apart).
#[test]
fn shares_of_flagged_and_dropped_pages_and_min_pages() {
    let dir = tempfile::tempdir().unwrap();
    let urls = map_stage(
        &crate::safety::url_filter::DEF,
        "urls",
        "banned_words = [\"casino\"]",
        dir.path(),
    );
    let length = map_stage(
        &crate::filter::length::DEF,
        "length",
        "min_words = 5",
        dir.path(),
    );
    let text = "A perfectly ordinary page with enough words in it.";
    let mut docs = Vec::new();
    for i in 0..10 {
        // bet.example.com: 6 of 10 pages have a banned word in the URL (dropped).
        let path = if i < 6 { "casino" } else { "news" };
        docs.push(page(
            &format!("https://s{i}.bet.example.com/{path}/{i}"),
            text,
        ));
        // alice.github.io: 8 of 10 pages too short (flagged in tag mode).
        let t = if i < 8 { "Too short." } else { text };
        docs.push(page(&format!("https://alice.github.io/p{i}"), t));
        // bob.github.io: the same, but only 4 pages.
        if i < 4 {
            docs.push(page(&format!("https://bob.github.io/p{i}"), "Short."));
        }
    }
    run_map(
        &[(urls.as_ref(), false), (length.as_ref(), true)],
        &mut docs,
    );
    let stage = build_stage(
        dir.path(),
        "min_pages = 5\nblocklist_stages = [\"urls\"]\nmax_blocklist_share = 0.5\n\
         quality_stages = [\"length\"]\nmax_quality_share = 0.7",
    )
    .unwrap();
    let (out, store) = run_global(stage.as_ref(), &mut docs, 3, dir.path());
    for (d, o) in docs.iter().zip(&out) {
        let want = if d.url.contains("bet.example.com") {
            // Dropped pages stay dropped; the rest of the domain goes.
            (!d.url.contains("casino")).then_some(Outcome::Drop("blocklisted_site"))
        } else if d.url.contains("alice") {
            Some(Outcome::Drop("low_quality_site"))
        } else {
            Some(Outcome::Keep)
        };
        assert_eq!(*o, want, "{}", d.url);
    }
    let r: serde_json::Value =
        serde_json::from_slice(&store.read(&format!("work/sites/{REPORT_FILE}")).unwrap()).unwrap();
    assert_eq!(r["offending_domains"], 2);
    assert_eq!(r["by_reason"]["blocklisted_site"]["pages"], 10);
    assert_eq!(r["top"][1]["domain"], "example.com");
    assert_eq!(r["top"][1]["blocklist_share"], 0.6);
}
