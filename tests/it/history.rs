//! Nightly runs with a dedup history (`[history]`, `--history`): three nights run in order
//! keep exactly what one run over all three keeps (after retractions), for URL and exact
//! dedup, on real pages; re-running a night changes nothing; a killed night or a killed commit
//! leaves the history readable and a rerun gives the same result; compaction changes no
//! decision; bad histories are refused with the file named; a history on S3 works.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const URL_PIPE: &str = r#"[pipeline]
seed = 1
[input]
format = "jsonl"
partition_bytes = 60000
[output]
path = "out"
[stages.url]
type = "dedup.url"
keep = "newest"
shards = 4
"#;

const EXACT_PIPE: &str = r#"[pipeline]
seed = 1
[input]
format = "jsonl"
partition_bytes = 60000
[output]
path = "out"
[stages.exact]
type = "dedup.exact"
shards = 4
"#;

const MINHASH_PIPE: &str = r#"[pipeline]
seed = 1
[input]
format = "jsonl"
partition_bytes = 60000
[output]
path = "out"
[stages.mh]
type = "dedup.minhash"
band_splits = 2
"#;

/// Ids of the documents a run kept.
fn kept(out: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for (path, bytes) in files(out, "docs") {
        if path.ends_with(".parquet") {
            for d in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 1024).unwrap() {
                ids.insert(d.unwrap().id);
            }
        }
    }
    ids
}

/// Id hashes a run retracted (`retractions.jsonl`).
fn retracted(out: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(out.join("retractions.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id_xxh3"].as_str().unwrap().to_string()
        })
        .collect()
}

fn id_hash(id: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(id.as_bytes()))
}

/// What several nights kept together: every night's documents less every retraction.
fn corpus_of(outs: &[PathBuf]) -> BTreeSet<String> {
    let gone: BTreeSet<String> = outs.iter().flat_map(|o| retracted(o)).collect();
    outs.iter()
        .flat_map(|o| kept(o))
        .filter(|id| !gone.contains(&id_hash(id)))
        .collect()
}

/// A count summed over every step task of a run (`stats.json`).
fn stat(out: &Path, key: &str) -> u64 {
    fn walk(v: &serde_json::Value, key: &str) -> u64 {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    if k == key {
                        v.as_u64().unwrap_or(0)
                    } else {
                        walk(v, key)
                    }
                })
                .sum(),
            serde_json::Value::Array(a) => a.iter().map(|v| walk(v, key)).sum(),
            _ => 0,
        }
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    walk(&s, key)
}

/// Runs `pipe` over `input` into `out`, with the history `hist` when given.
fn night(pipe: &Path, input: &str, out: &Path, hist: Option<&Path>) -> String {
    let mut args = vec![
        "run",
        pipe.to_str().unwrap(),
        "--input",
        input,
        "--output",
        out.to_str().unwrap(),
    ];
    if let Some(h) = hist {
        args.extend(["--history", h.to_str().unwrap()]);
    }
    curate_ok(&args)
}

/// Three nights of real pages (`../shared/data/corpora/warc-extracted-texts.jsonl.gz`, 1,080
/// pages of a real crawl, ids = WARC-Record-IDs) with what a recrawl brings: the same URL
/// again (another spelling, a newer or an older crawl date, the same or an edited text),
/// mirrors of a text under other URLs, copies within one night.
fn real_nights(shared: &Path, dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    let mut nights: Vec<String> = vec![String::new(); 3];
    let mut add = |n: usize, id: String, url: &str, text: &str, date: String| {
        let line = serde_json::json!({"id": id, "url": url, "text": text, "crawl_date": date});
        nights[n].push_str(&line.to_string());
        nights[n].push('\n');
    };
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (id, url, t) = (
            v["id"].as_str().unwrap(),
            v["url"].as_str().unwrap(),
            v["text"].as_str().unwrap(),
        );
        let n = i % 3;
        let date = |month: usize, day: usize| format!("2024-{month:02}-{day:02}T10:00:00Z");
        add(n, id.to_string(), url, t, date(n * 3 + 1, 1 + i % 27));
        if i % 5 == 0 && n < 2 {
            // A recrawl next night: newer, another spelling of the URL, the same text.
            let u = format!("{}?utm_source=feed", url.replacen("http://", "https://", 1));
            add(n + 1, format!("{id}-r1"), &u, t, date(n * 3 + 4, 2));
        }
        if i % 7 == 0 {
            // A mirror of the text under another URL, some night.
            let m = format!("http://mirror.example/{i}");
            add((n + 2) % 3, format!("{id}-m"), &m, t, date(5, 5));
        }
        if i % 11 == 0 && n < 2 {
            // An older crawl arriving in the last night, with an edited text.
            add(
                2,
                format!("{id}-old"),
                url,
                &format!("{t}\nArchived copy."),
                date(1, 1),
            );
        }
        if i % 13 == 0 {
            // A copy in the same night, crawled the same day (a tie: input order decides).
            add(n, format!("{id}-same"), url, t, date(n * 3 + 1, 1 + i % 27));
        }
    }
    (0..3)
        .map(|n| {
            let p = dir.join(format!("night-{n}.jsonl"));
            std::fs::write(&p, &nights[n]).unwrap();
            p
        })
        .collect()
}

/// Nights 1, 2, 3 with one history against one run over all three: the same kept set.
fn check_invariant(dir: &Path, pipe_text: &str, inputs: &[PathBuf], what: &str) -> Vec<PathBuf> {
    let pipe = pipeline(dir, pipe_text);
    let hist = dir.join("history");
    let outs: Vec<PathBuf> = (0..inputs.len())
        .map(|n| dir.join(format!("night{n}")))
        .collect();
    for (i, o) in inputs.iter().zip(&outs) {
        night(&pipe, i.to_str().unwrap(), o, Some(&hist));
    }
    let all = dir.join("all");
    let glob = inputs[0].parent().unwrap().join("night-*");
    night(&pipe, glob.to_str().unwrap(), &all, None);
    let single = kept(&all);
    let nightly = corpus_of(&outs);
    let only_single: Vec<_> = single.difference(&nightly).take(5).collect();
    let only_nightly: Vec<_> = nightly.difference(&single).take(5).collect();
    assert!(
        only_single.is_empty() && only_nightly.is_empty(),
        "{what}: one run kept {} documents, three nights {}; only in the one run: {only_single:?}; only in the nights: {only_nightly:?}",
        single.len(),
        nightly.len()
    );
    // The history did work: later nights found copies of earlier nights' documents.
    let matches: u64 = outs.iter().map(|o| stat(o, "history_matches")).sum();
    assert!(
        matches > 20,
        "{what}: {matches} copies found in the history"
    );
    let status = curate_ok(&["history", "status", hist.to_str().unwrap()]);
    assert!(status.contains("generations 3  runs 3"), "{what}: {status}");
    // The nights as one corpus: their funnels summed, retracted documents out.
    let st = curate_ok(&["stats", "--history", hist.to_str().unwrap()]);
    assert!(
        st.contains(&format!("{} in the corpus", single.len())),
        "{what}: {st}"
    );
    outs
}

#[test]
fn three_nights_keep_what_one_run_keeps_on_real_pages() {
    let shared = crate::need_shared!();
    let d = tempfile::tempdir().unwrap();
    let inputs = real_nights(&shared, d.path());

    let u = d.path().join("url");
    std::fs::create_dir(&u).unwrap();
    let outs = check_invariant(&u, URL_PIPE, &inputs, "dedup.url");
    // keep = "newest": the recrawls of the next night retract what an earlier night kept.
    let r: usize = outs.iter().map(|o| retracted(o).len()).sum();
    assert!(r > 50, "retractions: {r}");
    assert!(retracted(&outs[0]).is_empty());

    let e = d.path().join("exact");
    std::fs::create_dir(&e).unwrap();
    let outs = check_invariant(&e, EXACT_PIPE, &inputs, "dedup.exact");
    // keep = "first": an earlier night's copy always stays; nothing is retracted.
    assert!(outs.iter().all(|o| retracted(o).is_empty()));

    // Re-running a night changes nothing: into its own output (all complete, already
    // committed) and into a new one (no new input file: nothing runs).
    let hist = e.join("history");
    let before = files(&hist, "");
    let pipe = pipeline(&e, EXACT_PIPE);
    let docs_before = files(&outs[1], "docs");
    night(&pipe, inputs[1].to_str().unwrap(), &outs[1], Some(&hist));
    assert_same(&files(&hist, ""), &before, "rerun into its output: history");
    assert_same(&files(&outs[1], "docs"), &docs_before, "rerun: documents");
    let again = night(
        &pipe,
        inputs[1].to_str().unwrap(),
        &e.join("again"),
        Some(&hist),
    );
    assert!(again.contains("nothing new"), "{again}");
    assert!(!e.join("again/fingerprint.json").exists());
    assert_same(
        &files(&hist, ""),
        &before,
        "rerun into a new output: history",
    );
    // The whole listing every night (the cron line): only the files not yet seen run.
    std::fs::write(
        d.path().join("night-3.jsonl"),
        std::fs::read(&inputs[0]).unwrap(),
    )
    .unwrap();
    let n3 = e.join("night3");
    night(
        &pipe,
        d.path().join("night-*").to_str().unwrap(),
        &n3,
        Some(&hist),
    );
    let parts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(n3.join("partitions.json")).unwrap()).unwrap();
    let uris: BTreeSet<&str> = parts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris.len(), 1, "{uris:?}");
    assert!(uris.iter().all(|u| u.ends_with("night-3.jsonl")));
    // A copy of night 0 under a new name: every document is a copy of an earlier night's.
    assert!(kept(&n3).is_empty(), "{:?}", kept(&n3).len());
}

/// `text` with about `per_mille` of its words replaced (deterministic in `seed`): 20 per mille
/// leaves a 5-gram Jaccard of about 0.8 with the original, two such steps about 0.7.
fn edited(text: &str, per_mille: u64, seed: u64) -> String {
    let mut st = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        st
    };
    text.split(' ')
        .map(|w| {
            if next() % 1000 < per_mille {
                format!("edit{}", next() % 100_000)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Three nights rich in near-duplicates, from the real pages of
/// `../shared/data/corpora/warc-extracted-texts.jsonl.gz`: chains of edits across nights (A on
/// night 1, B = A edited on night 2, C = B edited on night 3: A ~ B ~ C with A and C further
/// apart, the transitive case), near copies within a night, exact copies on a later night,
/// and near copies that arrive with a newer crawl date.
fn neardup_nights(shared: &Path, dir: &Path) -> Vec<PathBuf> {
    let bytes = std::fs::read(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap();
    let mut text = String::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    let mut nights: Vec<String> = vec![String::new(); 3];
    let mut add = |n: usize, id: String, text: &str, day: usize| {
        let date = format!("2024-{:02}-{:02}T10:00:00Z", n * 3 + 1, 1 + day % 27);
        let line = serde_json::json!({"id": id, "url": format!("http://e.org/{id}"), "text": text, "crawl_date": date});
        nights[n].push_str(&line.to_string());
        nights[n].push('\n');
    };
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let (id, t) = (v["id"].as_str().unwrap(), v["text"].as_str().unwrap());
        let t = t.replace('\n', " ");
        let n = i % 3;
        add(n, id.to_string(), &t, i);
        let seed = i as u64;
        if i % 4 == 0 && n == 0 {
            // A chain over the three nights.
            let b = edited(&t, 20, seed);
            add(1, format!("{id}-b"), &b, i);
            add(2, format!("{id}-c"), &edited(&b, 20, seed + 7), i);
        }
        if i % 5 == 1 {
            // A near copy the same night.
            add(n, format!("{id}-same"), &edited(&t, 10, seed + 3), i + 1);
        }
        if i % 6 == 2 && n < 2 {
            // An exact copy on a later night.
            add(n + 1, format!("{id}-copy"), &t, i);
        }
        if i % 7 == 3 && n < 2 {
            // A near copy two nights on.
            add(2, format!("{id}-late"), &edited(&t, 15, seed + 5), i);
        }
    }
    (0..3)
        .map(|n| {
            let p = dir.join(format!("night-{n}.jsonl"));
            std::fs::write(&p, &nights[n]).unwrap();
            p
        })
        .collect()
}

#[test]
fn three_nights_of_near_duplicates_keep_what_one_run_keeps() {
    let shared = crate::need_shared!();
    let d = tempfile::tempdir().unwrap();
    let inputs = neardup_nights(&shared, d.path());
    // keep = "first": an earlier night's survivor stays, unless tonight's documents join its
    // cluster to an even earlier one.
    let f = d.path().join("first");
    std::fs::create_dir(&f).unwrap();
    let outs = check_invariant(&f, MINHASH_PIPE, &inputs, "dedup.minhash first");
    let chained: usize = outs
        .iter()
        .map(|o| {
            let ids = kept(o);
            ids.iter().filter(|i| i.ends_with("-c")).count()
        })
        .sum();
    let all_c = std::fs::read_to_string(&inputs[2])
        .unwrap()
        .matches("-c\"")
        .count();
    assert!(chained < all_c / 2, "chains: {chained} of {all_c} kept");
    // The transitive case: without night 2 (B), a C stays that the nights drop, through B.
    let ac = f.join("ac");
    std::fs::create_dir(&ac).unwrap();
    for n in [0, 2] {
        std::fs::copy(&inputs[n], ac.join(format!("night-{n}.jsonl"))).unwrap();
    }
    let ac_out = f.join("ac-out");
    night(
        &pipeline(&f, MINHASH_PIPE),
        ac.join("night-*").to_str().unwrap(),
        &ac_out,
        None,
    );
    let nightly = corpus_of(&outs);
    let through_b = kept(&ac_out)
        .into_iter()
        .filter(|i| i.ends_with("-c") && !nightly.contains(i))
        .count();
    assert!(through_b > 5, "{through_b} chains joined through night 2");
    eprintln!(
        "minhash first: {chained} of {all_c} chain ends kept, {through_b} dropped through night 2"
    );
    // Re-running a night changes nothing: into its own output, and into a new one.
    let hist = f.join("history");
    let before = files(&hist, "");
    let docs_before = files(&outs[1], "docs");
    let pipe = pipeline(&f, MINHASH_PIPE);
    night(&pipe, inputs[1].to_str().unwrap(), &outs[1], Some(&hist));
    assert_same(&files(&hist, ""), &before, "minhash rerun: history");
    assert_same(
        &files(&outs[1], "docs"),
        &docs_before,
        "minhash rerun: documents",
    );
    let again = night(
        &pipe,
        inputs[1].to_str().unwrap(),
        &f.join("again"),
        Some(&hist),
    );
    assert!(again.contains("nothing new"), "{again}");
    assert_same(
        &files(&hist, ""),
        &before,
        "minhash rerun elsewhere: history",
    );
    // keep = "newest": a near copy with a newer date retracts the earlier night's survivor.
    let n = d.path().join("newest");
    std::fs::create_dir(&n).unwrap();
    let pipe = MINHASH_PIPE.replace("band_splits = 2", "band_splits = 2\nkeep = \"newest\"");
    let outs = check_invariant(&n, &pipe, &inputs, "dedup.minhash newest");
    let r: usize = outs.iter().map(|o| retracted(o).len()).sum();
    assert!(r > 20, "retractions: {r}");
    eprintln!("minhash newest: {r} retractions");
    // Compaction folds the remaps into the rows: a fourth night (night 2's texts recrawled
    // later) decides the same against the compacted history as against the three generations.
    let hist = n.join("history");
    let plain = n.join("plain");
    copy_dir(&hist, &plain);
    let out = curate_ok(&["history", "compact", hist.to_str().unwrap()]);
    assert!(out.contains("compacted 3 generations"), "{out}");
    let fourth = d.path().join("fourth");
    std::fs::create_dir(&fourth).unwrap();
    let recrawl: String = std::fs::read_to_string(&inputs[1])
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"] = format!("{}-n4", v["id"].as_str().unwrap()).into();
            v["crawl_date"] = "2024-12-01T10:00:00Z".into();
            format!("{v}\n")
        })
        .collect();
    let n4 = fourth.join("night-3.jsonl");
    std::fs::write(&n4, recrawl).unwrap();
    let pipe = pipeline(&n, &pipe);
    night(&pipe, n4.to_str().unwrap(), &n.join("c3"), Some(&hist));
    night(&pipe, n4.to_str().unwrap(), &n.join("p3"), Some(&plain));
    assert_eq!(kept(&n.join("c3")), kept(&n.join("p3")));
    assert_eq!(retracted(&n.join("c3")), retracted(&n.join("p3")));
    assert!(retracted(&n.join("c3")).len() > 100);
}

#[test]
fn three_nights_of_real_warcs_keep_what_one_run_keeps() {
    let shared = crate::need_shared!();
    let d = tempfile::tempdir().unwrap();
    let w = shared.join("data/warc");
    // One night per file group: a real CC sample and a WARC/WET pair's WARC; then two files
    // of a wget crawl of the same sites, the last night with the CC sample again (a
    // re-fetched file: copies of an earlier night's pages).
    let groups: [&[&str]; 3] = [
        &["cc-main-2020-34-sample.warc.gz", "whirlwind.warc.gz"],
        &["dolma-sample-0000.warc.gz"],
        &[
            "dolma-sample-0001.warc.gz",
            "cc-main-2020-34-sample.warc.gz",
        ],
    ];
    let mut inputs = Vec::new();
    for (n, g) in groups.iter().enumerate() {
        let dir = d.path().join(format!("n{n}"));
        std::fs::create_dir(&dir).unwrap();
        for f in g.iter() {
            std::fs::copy(w.join(f), dir.join(format!("night-{n}-{f}"))).unwrap();
        }
        inputs.push(dir.join("*.warc.gz"));
    }
    // One folder holding every night's files, for the single run.
    let all_dir = d.path().join("night-all");
    std::fs::create_dir(&all_dir).unwrap();
    for (g, files) in groups.iter().enumerate() {
        for f in files.iter() {
            std::fs::copy(w.join(f), all_dir.join(format!("night-{g}-{f}"))).unwrap();
        }
    }
    for (name, text) in [("url", URL_PIPE), ("mh", MINHASH_PIPE)] {
        let dir = d.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        // MinHash reads the text: extract it from the HTML first.
        let pipe_text = text
            .replace("format = \"jsonl\"", "format = \"warc\"")
            .replace(
                "[stages.mh]",
                "[stages.extract]\ntype = \"extract.html\"\n[stages.mh]",
            );
        let pipe = pipeline(&dir, &pipe_text);
        let hist = dir.join("history");
        let outs: Vec<PathBuf> = (0..3).map(|n| dir.join(format!("out{n}"))).collect();
        for (i, o) in inputs.iter().zip(&outs) {
            night(&pipe, i.to_str().unwrap(), o, Some(&hist));
        }
        let all = dir.join("all");
        night(
            &pipe,
            all_dir.join("*.warc.gz").to_str().unwrap(),
            &all,
            None,
        );
        assert_eq!(corpus_of(&outs), kept(&all), "{name}");
        assert!(!kept(&all).is_empty());
        if name == "mh" {
            // The re-fetched sample's pages are found in the history.
            let m: u64 = outs.iter().map(|o| stat(o, "history_matches")).sum();
            assert!(m > 0, "{m}");
        }
    }
}

/// A night of synthetic documents with copies of earlier nights' (for the kill tests).
fn synthetic_nights(dir: &Path) -> Vec<PathBuf> {
    let mut prev = String::new();
    (0..3)
        .map(|n| {
            let p = dir.join(format!("night-{n}.jsonl"));
            write_jsonl(&p, 1500, 40 + n as u64);
            // Each night also repeats 300 pages of the night before (texts, URLs and dates).
            let mine = std::fs::read_to_string(&p).unwrap();
            let repeat: String = prev
                .lines()
                .take(300)
                .map(|l| l.replace("\"doc-", &format!("\"n{n}-doc-")) + "\n")
                .collect();
            std::fs::write(&p, format!("{mine}{repeat}")).unwrap();
            prev = mine;
            p
        })
        .collect()
}

/// Copies a folder (a history) to another.
fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in files(from, "") {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

fn generations(hist: &Path) -> usize {
    std::fs::read_dir(hist.join("commits"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn killed_night_and_killed_commit_leave_the_history_readable() {
    killed_night_and_commit(EXACT_PIPE);
}

#[test]
fn killed_minhash_night_and_commit_leave_the_history_readable() {
    killed_night_and_commit(MINHASH_PIPE);
}

fn killed_night_and_commit(pipe_text: &str) {
    let d = tempfile::tempdir().unwrap();
    let inputs = synthetic_nights(d.path());
    let pipe = pipeline(d.path(), &pipe_text.replace("60000", "20000"));
    let hist = d.path().join("history");
    night(
        &pipe,
        inputs[0].to_str().unwrap(),
        &d.path().join("o0"),
        Some(&hist),
    );
    // Reference: night 1 with an untouched copy of the history.
    let ref_hist = d.path().join("ref-history");
    copy_dir(&hist, &ref_hist);
    let ref_out = d.path().join("ref1");
    night(
        &pipe,
        inputs[1].to_str().unwrap(),
        &ref_out,
        Some(&ref_hist),
    );
    let total = units_done(&ref_out);
    let before = files(&hist, "");

    // SIGKILL mid-night: the history is untouched; the rerun finishes with the same result.
    let o1 = d.path().join("o1");
    let args = [
        "run",
        pipe.to_str().unwrap(),
        "--input",
        inputs[1].to_str().unwrap(),
        "--output",
        o1.to_str().unwrap(),
        "--history",
        hist.to_str().unwrap(),
    ];
    kill_mid_run(&args, &o1, total / 2, total, "night 1");
    assert_same(
        &files(&hist, ""),
        &before,
        "a killed night leaves the history",
    );
    curate_ok(&args);
    assert_eq!(kept(&o1), kept(&ref_out));
    assert_eq!(generations(&hist), 2);

    // SIGKILL during the commit of night 2 (the test's pause between copied files holds the
    // commit open): no marker, the history reads as before, the rerun commits.
    let o2 = d.path().join("o2");
    let mut args = args.map(str::to_string);
    args[3] = inputs[2].to_str().unwrap().to_string();
    args[5] = o2.to_str().unwrap().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_curate"))
        .args(&args)
        .env("CURATE_TEST_HISTORY_COMMIT_PAUSE_MS", "400")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    let copied = |h: &Path| -> usize {
        files(h, "gens")
            .keys()
            .filter(|k| k.ends_with(".bin"))
            .count()
    };
    let committed_bins = copied(&hist);
    while copied(&hist) == committed_bins {
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        assert!(t0.elapsed().as_secs() < 300, "no commit started");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(copied(&hist) > committed_bins, "the kill landed mid-commit");
    assert_eq!(generations(&hist), 2, "no marker for the killed commit");
    let status = curate_ok(&["history", "status", hist.to_str().unwrap()]);
    assert!(status.contains("generations 2"), "{status}");
    curate_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(generations(&hist), 3);
    // The same night 2 against the reference history gives the same documents.
    night(
        &pipe,
        inputs[2].to_str().unwrap(),
        &d.path().join("r2a"),
        Some(&ref_hist),
    );
    assert_eq!(kept(&o2), kept(&d.path().join("r2a")));
}

#[test]
fn compaction_changes_no_decision() {
    let d = tempfile::tempdir().unwrap();
    let inputs = synthetic_nights(d.path());
    let unverified = MINHASH_PIPE.replace("band_splits = 2", "verify = false");
    for (name, pipe_text) in [
        ("url", URL_PIPE),
        ("exact", EXACT_PIPE),
        ("minhash", MINHASH_PIPE),
        ("minhash-unverified", &unverified),
    ] {
        let dir = d.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let pipe = pipeline(&dir, &pipe_text.replace("60000", "20000"));
        let hist = dir.join("history");
        night(
            &pipe,
            inputs[0].to_str().unwrap(),
            &dir.join("o0"),
            Some(&hist),
        );
        night(
            &pipe,
            inputs[1].to_str().unwrap(),
            &dir.join("o1"),
            Some(&hist),
        );
        let plain = dir.join("plain");
        copy_dir(&hist, &plain);
        let out = curate_ok(&["history", "compact", hist.to_str().unwrap()]);
        assert!(out.contains("compacted 2 generations"), "{out}");
        let status = curate_ok(&["history", "status", hist.to_str().unwrap()]);
        assert!(status.contains("generations 1  runs 2"), "{status}");
        // Night 2 against the compacted history and against the two generations.
        night(
            &pipe,
            inputs[2].to_str().unwrap(),
            &dir.join("c2"),
            Some(&hist),
        );
        night(
            &pipe,
            inputs[2].to_str().unwrap(),
            &dir.join("p2"),
            Some(&plain),
        );
        assert_eq!(kept(&dir.join("c2")), kept(&dir.join("p2")), "{name}");
        assert_eq!(retracted(&dir.join("c2")), retracted(&dir.join("p2")));
        // Nights already compacted away are still known: re-running one adds nothing.
        let again = night(
            &pipe,
            inputs[0].to_str().unwrap(),
            &dir.join("again"),
            Some(&hist),
        );
        assert!(again.contains("nothing new"), "{again}");
    }
}

#[test]
fn bad_histories_are_refused_with_the_file_named() {
    let d = tempfile::tempdir().unwrap();
    let inputs = synthetic_nights(d.path());
    let pipe = pipeline(d.path(), EXACT_PIPE);
    let hist = d.path().join("history");
    night(
        &pipe,
        inputs[0].to_str().unwrap(),
        &d.path().join("o0"),
        Some(&hist),
    );
    let gen = std::fs::read_dir(hist.join("commits"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let refused = |h: &Path, needle: &str, what: &str| {
        let out = d.path().join(format!("bad-{what}"));
        for args in [
            vec!["history", "status", h.to_str().unwrap()],
            vec![
                "run",
                pipe.to_str().unwrap(),
                "--input",
                inputs[1].to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "--history",
                h.to_str().unwrap(),
            ],
        ] {
            let o = curate(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{what}: {err}");
            assert!(err.contains(needle), "{what}: names {needle}: {err}");
        }
        assert!(!d.path().join(format!("bad-{what}/docs")).exists());
    };
    // A newer format.
    let newer = d.path().join("newer");
    copy_dir(&hist, &newer);
    std::fs::write(newer.join("format.json"), "{\"format\": 99}").unwrap();
    refused(&newer, "format.json", "newer");
    // A corrupt marker.
    let corrupt = d.path().join("corrupt");
    copy_dir(&hist, &corrupt);
    let marker = corrupt.join("commits").join(gen.file_name().unwrap());
    std::fs::write(&marker, "{\"format\": 1, \"generation\": ").unwrap();
    refused(
        &corrupt,
        gen.file_name().unwrap().to_str().unwrap(),
        "corrupt",
    );
    // A generation whose file is missing.
    let missing = d.path().join("missing");
    copy_dir(&hist, &missing);
    let g = gen.file_stem().unwrap().to_str().unwrap();
    std::fs::remove_file(missing.join(format!("gens/{g}/exact/shard-00002.bin"))).unwrap();
    refused(&missing, "exact/shard-00002.bin", "missing");
}

#[test]
fn lines_count_per_night() {
    // dedup.lines across nights: each night's documents form their own buckets (no history):
    // a line 4 times in each of two nights stays at max_count = 6; in one run over both it
    // is seen 8 times and goes.
    let d = tempfile::tempdir().unwrap();
    let line = "Share this page with your friends on every network";
    for n in 0..2 {
        let mut s = String::new();
        for i in 0..4 {
            let v = serde_json::json!({
                "id": format!("n{n}-{i}"), "url": format!("http://e.com/{n}/{i}"),
                "text": format!("Document {i} of night {n} has its own words.\n{line}"),
            });
            s.push_str(&format!("{v}\n"));
        }
        std::fs::write(d.path().join(format!("night-{n}.jsonl")), s).unwrap();
    }
    let pipe = pipeline(
        d.path(),
        "[input]\nformat = \"jsonl\"\n[output]\npath = \"out\"\n[stages.lines]\ntype = \"dedup.lines\"\nmax_count = 6\n",
    );
    let hist = d.path().join("history");
    let removed = |out: &Path| -> u64 {
        let mut total = 0;
        for (path, bytes) in files(out, "docs") {
            if path.ends_with(".parquet") {
                for doc in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 64).unwrap()
                {
                    total += doc.unwrap().signals.i64("lines.lines_removed").unwrap_or(0) as u64;
                }
            }
        }
        total
    };
    for n in 0..2 {
        let o = d.path().join(format!("o{n}"));
        night(
            &pipe,
            d.path().join(format!("night-{n}.jsonl")).to_str().unwrap(),
            &o,
            Some(&hist),
        );
        assert_eq!(removed(&o), 0, "night {n}");
    }
    let all = d.path().join("all");
    night(
        &pipe,
        d.path().join("night-*.jsonl").to_str().unwrap(),
        &all,
        None,
    );
    assert_eq!(removed(&all), 8);
}

#[test]
fn history_on_s3_works_like_a_local_one() {
    let m = crate::need_moto!();
    m.boto("s3.create_bucket(Bucket='hist')", &[]);
    let d = tempfile::tempdir().unwrap();
    let inputs = synthetic_nights(d.path());
    let pipe = pipeline(d.path(), URL_PIPE);
    let local = d.path().join("history");
    let mut outs = (vec![], vec![]);
    for (n, i) in inputs.iter().take(2).enumerate() {
        let lo = d.path().join(format!("l{n}"));
        night(&pipe, i.to_str().unwrap(), &lo, Some(&local));
        let so = d.path().join(format!("s{n}"));
        let o = m.curate(&[
            "run",
            pipe.to_str().unwrap(),
            "--input",
            i.to_str().unwrap(),
            "--output",
            so.to_str().unwrap(),
            "--history",
            "s3://hist/nightly",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.0.push(lo);
        outs.1.push(so);
    }
    assert_eq!(corpus_of(&outs.0), corpus_of(&outs.1));
    let st = m.curate(&["history", "status", "s3://hist/nightly"]);
    let st = String::from_utf8_lossy(&st.stdout);
    assert!(st.contains("generations 2  runs 2"), "{st}");
    let got = d.path().join("got");
    crate::s3::download(&m, "hist", "nightly", &got);
    // The same keys: generation names differ (the history path is part of the run's
    // configuration, so of its fingerprint), the sorted key files do not.
    let bins = |m: BTreeMap<String, Vec<u8>>| -> BTreeSet<Vec<u8>> {
        m.into_iter()
            .filter(|(k, _)| k.ends_with(".bin"))
            .map(|(_, v)| v)
            .collect()
    };
    let (a, b) = (bins(files(&got, "gens")), bins(files(&local, "gens")));
    assert_eq!(a.len(), 8);
    assert_eq!(a, b);

    // dedup.minhash: the same documents, band keys, rows and remaps.
    let pipe = pipeline(
        d.path(),
        &MINHASH_PIPE.replace("band_splits = 2", "keep = \"newest\""),
    );
    let local = d.path().join("mh-history");
    let mut outs = (vec![], vec![]);
    for (n, i) in inputs.iter().enumerate() {
        let lo = d.path().join(format!("mh-l{n}"));
        night(&pipe, i.to_str().unwrap(), &lo, Some(&local));
        let so = d.path().join(format!("mh-s{n}"));
        let o = m.curate(&[
            "run",
            pipe.to_str().unwrap(),
            "--input",
            i.to_str().unwrap(),
            "--output",
            so.to_str().unwrap(),
            "--history",
            "s3://hist/mh",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.0.push(lo);
        outs.1.push(so);
    }
    assert_eq!(corpus_of(&outs.0), corpus_of(&outs.1));
    let got = d.path().join("mh-got");
    crate::s3::download(&m, "hist", "mh", &got);
    let (a, b) = (bins(files(&got, "gens")), bins(files(&local, "gens")));
    assert!(a.len() > 5, "{}", a.len());
    assert_eq!(a, b);
}

#[test]
fn mix_over_nights_is_the_mix_of_one_run() {
    // Three nights with one history (dedup.url keep = "newest": recrawls retract earlier
    // nights' documents) mixed as one corpus, the folders given in any order or through the
    // history, make the same shards as the mix of one run over the three nights' files.
    let shared = crate::need_shared!();
    let d = tempfile::tempdir().unwrap();
    let inputs = real_nights(&shared, d.path());
    let pipe = pipeline(
        d.path(),
        &format!(
            "{URL_PIPE}[stages.bucket]\ntype = \"mix.bucket\"\n[mix]\ntokenizer = \"cl100k_base\"\nshard_size = \"24kB\"\n[mix.main]\ntotal_tokens = 600000\n"
        ),
    );
    let hist = d.path().join("history");
    let outs: Vec<PathBuf> = (0..3).map(|n| d.path().join(format!("n{n}"))).collect();
    for (i, o) in inputs.iter().zip(&outs) {
        night(&pipe, i.to_str().unwrap(), o, Some(&hist));
    }
    let all = d.path().join("all");
    night(
        &pipe,
        d.path().join("night-*").to_str().unwrap(),
        &all,
        None,
    );
    let p = pipe.to_str().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mix = |from: &[&Path], extra: &[&str], out: &Path| {
        let mut args = vec!["mix".to_string(), p.to_string(), "-q".into()];
        for f in from {
            args.extend(["--from".to_string(), s(f)]);
        }
        args.extend(extra.iter().map(|x| x.to_string()));
        args.extend(["--out".to_string(), s(out)]);
        curate_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // The shards and their manifest (the report's selection counts differ: the corpus
        // scans the retracted rows too).
        files(out, "main")
            .into_iter()
            .filter(|(k, _)| !k.ends_with("mix_report.json") && !k.ends_with("report.html"))
            .collect::<BTreeMap<_, _>>()
    };
    let one = mix(&[&all], &[], &d.path().join("m-all"));
    let shuffled = mix(
        &[&outs[2], &outs[0], &outs[1]],
        &[],
        &d.path().join("m-nights"),
    );
    let by_history = mix(&[], &["--history", &s(&hist)], &d.path().join("m-hist"));
    assert!(one.keys().filter(|k| k.ends_with(".bin")).count() > 2);
    assert_same(&shuffled, &one, "mix of three nights vs one run");
    assert_same(&by_history, &one, "mix of the history's runs vs one run");
    // No retracted document is in a shard; the selection counted them out.
    let gone: BTreeSet<String> = outs.iter().flat_map(|o| retracted(o)).collect();
    assert!(gone.len() > 50, "{}", gone.len());
    let mut ids = 0;
    for (k, v) in &shuffled {
        if k.ends_with(".ids.jsonl") {
            for l in String::from_utf8_lossy(v).lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(!gone.contains(&id_hash(v["id"].as_str().unwrap())), "{l}");
                ids += 1;
            }
        }
    }
    assert!(ids > 200, "{ids}");
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.path().join("m-nights/main/mix_report.json")).unwrap(),
    )
    .unwrap();
    assert!(
        report["selection"]["retracted"].as_u64().unwrap() > 50,
        "{report}"
    );
    // Several runs need a folder of their own.
    let o = curate(&["mix", p, "--from", &s(&outs[0]), "--from", &s(&outs[1])]);
    assert_eq!(o.status.code(), Some(2));

    // ablate: a variant over the nights is the same variant over the one run.
    let variant = |from: &[&Path], name: &str| {
        let out = d.path().join(name);
        let grid = d.path().join(format!("{name}.toml"));
        std::fs::write(
            &grid,
            format!(
                "pipeline = \"{}\"\nmix = \"main\"\noutput = \"{}\"\n[[variant]]\nname = \"base\"\n",
                s(&pipe),
                s(&out)
            ),
        )
        .unwrap();
        let mut args = vec!["ablate".to_string(), s(&grid), "-q".into()];
        for f in from {
            args.extend(["--from".to_string(), s(f)]);
        }
        curate_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        files(&out, "base")
            .into_iter()
            .filter(|(k, _)| k.ends_with(".bin") || k.ends_with(".ids.jsonl"))
            .collect::<BTreeMap<_, _>>()
    };
    let a1 = variant(&[&all], "ab-all");
    assert!(!a1.is_empty());
    assert_same(
        &variant(&[&outs[1], &outs[2], &outs[0]], "ab-nights"),
        &a1,
        "ablate over three nights vs one run",
    );

    // inspect: a retracted document is not in the corpus of the nights, but is in its night.
    let gone_id = kept(&outs[0])
        .into_iter()
        .find(|i| gone.contains(&id_hash(i)))
        .unwrap();
    let alone = curate_ok(&["inspect", &s(&outs[0]), "--id", &gone_id, "--json"]);
    assert!(alone.contains(&gone_id), "{alone}");
    let o = curate(&[
        "inspect",
        &s(&outs[2]),
        &s(&outs[0]),
        &s(&outs[1]),
        "--id",
        &gone_id,
        "--json",
    ]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&gone_id));
    assert!(String::from_utf8_lossy(&o.stderr).contains("retracted by a later run"));
    // stats: the nights in any order are one corpus of the one run's size.
    let st = curate_ok(&["stats", &s(&outs[1]), &s(&outs[0]), &s(&outs[2])]);
    assert!(
        st.contains(&format!("{} in the corpus", kept(&all).len())),
        "{st}"
    );
}

#[test]
fn mix_over_nights_on_s3_matches_local() {
    // Nights written to the S3 test server (moto) mixed as one corpus: the same shards as the
    // same nights written locally.
    let m = crate::need_moto!();
    m.boto("s3.create_bucket(Bucket='nights')", &[]);
    let d = tempfile::tempdir().unwrap();
    let inputs = synthetic_nights(d.path());
    let pipe = pipeline(
        d.path(),
        &format!(
            "{URL_PIPE}[stages.bucket]\ntype = \"mix.bucket\"\n[mix]\ntokenizer = \"cl100k_base\"\nshard_size = \"24kB\"\n[mix.main]\ntotal_tokens = 60000\n"
        ),
    );
    let p = pipe.to_str().unwrap();
    let (local_hist, s3_hist) = (d.path().join("lh"), d.path().join("sh"));
    for (n, i) in inputs.iter().take(2).enumerate() {
        let lo = d.path().join(format!("l{n}"));
        night(&pipe, i.to_str().unwrap(), &lo, Some(&local_hist));
        let so = format!("s3://nights/n{n}");
        let o = m.curate(&[
            "run",
            p,
            "--input",
            i.to_str().unwrap(),
            "--output",
            &so,
            "--history",
            s3_hist.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (l0, l1) = (d.path().join("l0"), d.path().join("l1"));
    let local = d.path().join("m-local");
    curate_ok(&[
        "mix",
        p,
        "-q",
        "--from",
        l0.to_str().unwrap(),
        "--from",
        l1.to_str().unwrap(),
        "--out",
        local.to_str().unwrap(),
    ]);
    let remote = d.path().join("m-s3");
    let o = m.curate(&[
        "mix",
        p,
        "-q",
        "--from",
        "s3://nights/n1",
        "--from",
        "s3://nights/n0",
        "--out",
        remote.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shards = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        files(dir, "main")
            .into_iter()
            .filter(|(k, _)| k.ends_with(".bin") || k.ends_with(".ids.jsonl"))
            .collect()
    };
    assert!(!shards(&local).is_empty());
    assert_same(
        &shards(&remote),
        &shards(&local),
        "mix of S3 nights vs local",
    );
}
