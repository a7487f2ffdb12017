//! HTML main-content extraction of the pages of ../shared/data/warc/trafilatura-eval-pages.warc.gz
//! (1,033 real pages, 150 MB of HTML), one thread, side by side with trafilatura (default and
//! fast) and resiliparse measured on the same pages in the same run. curate is timed with its
//! default settings (rules, block scorer, restore) and with the rules alone.
//!
//! Run: cargo bench -p curate-benches --bench extract
//! Env: EXTRACT_BENCH_FILE (another WARC), EXTRACT_BENCH_REPS (default 3), EXTRACT_BENCH_PEERS
//! (comma list, default `trafilatura,trafilatura_fast,resiliparse,resiliparse_parser,lxml_parser`;
//! empty: none), CURATE_PEERS.
//! Pages are decoded and held in memory before timing, for curate and the peers alike, so the
//! figures are the extractors' alone; every system gets a warm-up and then the same number of
//! timed passes (`reps`), best pass kept. CPU time of the working thread is the steadier
//! measure of the per-core cost on a shared machine; wall time is printed too. curate's HTML
//! parser alone (`Dom::parse`, the tree the extractor walks) is timed the same way, beside the
//! peers' parsers alone (resiliparse's `HTMLTree.parse`, lexbor; lxml's libxml2
//! `document_fromstring`), each given a whole warm-up pass.

use std::sync::Arc;

use curate_benches::{
    best_wall_cpu, peer_python, repo_root, report, run_peer, thread_cpu_seconds, warc_bench_input,
};
use stages::extract::dom::{Dom, Limits};
use stages::extract::{ExtractConfig, Extractor};
use stages::read::{read_docs, Format, ReadEvent, ReadOptions};

fn main() {
    let Some((file, reps)) = warc_bench_input("EXTRACT_BENCH_FILE", "EXTRACT_BENCH_REPS", 3) else {
        return;
    };
    let source: Arc<str> = Arc::from(file.to_string_lossy().as_ref());
    let input = std::fs::File::open(&file).expect("open input");
    let opts = ReadOptions {
        max_record_bytes: usize::MAX,
        ..ReadOptions::default()
    };
    let pages: Vec<String> = read_docs(Format::Warc, source, Box::new(input), 0, None, &opts)
        .filter_map(|ev| match ev {
            ReadEvent::Doc(d) => d.html,
            ReadEvent::Skip { .. } => None,
        })
        .collect();
    let bytes: usize = pages.iter().map(|p| p.len()).sum();
    // The default (rules, block scorer, restore) and the rules alone, same passes.
    let default = Extractor::new(ExtractConfig::default()).expect("default config");
    let rules = Extractor::new(ExtractConfig {
        block_model: false,
        restore: false,
        ..ExtractConfig::default()
    })
    .expect("rules config");
    let run = |ex: &Extractor| {
        let mut chars = 0usize;
        let mut failed = 0usize;
        for p in &pages {
            match ex.extract(p) {
                Ok(r) => chars += r.extraction.text.len(),
                Err(_) => failed += 1,
            }
        }
        (chars, failed)
    };
    let (chars, failed) = run(&default);
    let time = |ex: &Extractor| {
        run(ex);
        best_wall_cpu(reps, || {
            std::hint::black_box(run(ex));
        })
    };
    let (wall, cpu) = time(&default);
    let (rules_wall, rules_cpu) = time(&rules);
    // The parser alone, same passes.
    let limits = Limits::default();
    let parse = || {
        pages
            .iter()
            .map(|p| Dom::parse(p, &limits).nodes.len())
            .sum::<usize>()
    };
    let nodes = parse();
    let (mut parse_wall, mut parse_cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        let (t, c) = (std::time::Instant::now(), thread_cpu_seconds());
        std::hint::black_box(parse());
        parse_wall = parse_wall.min(t.elapsed().as_secs_f64());
        parse_cpu = parse_cpu.min(thread_cpu_seconds() - c);
    }
    println!(
        "input: {}: {} pages, {:.1} MB of HTML ({nodes} parsed nodes); curate kept {:.1} MB of text, {failed} pages dropped; best of {reps} passes each",
        file.display(),
        pages.len(),
        bytes as f64 / 1e6,
        chars as f64 / 1e6
    );

    let wanted = std::env::var("EXTRACT_BENCH_PEERS").unwrap_or_else(|_| {
        "trafilatura,trafilatura_fast,resiliparse,resiliparse_parser,lxml_parser".into()
    });
    let peer = if wanted.is_empty() {
        None
    } else {
        peer_python("ext").and_then(|py| {
            let script = repo_root().join("benches/peers/extract_peer.py");
            let repeat = reps.to_string();
            run_peer(
                &py,
                &[
                    script.to_str()?,
                    file.to_str()?,
                    "--extractors",
                    &wanted,
                    "--repeat",
                    &repeat,
                ],
            )
        })
    };
    let results = peer
        .as_ref()
        .and_then(|p| p["results"].as_object().cloned())
        .unwrap_or_default();
    if results.is_empty() {
        eprintln!("peers skipped: ~/.cache/curate-peers/ext not found (or it failed)");
    }
    let peer_pages = peer.as_ref().and_then(|p| p["pages"].as_u64()).unwrap_or(0) as usize;
    let peer_bytes = peer
        .as_ref()
        .and_then(|p| p["html_bytes"].as_u64())
        .unwrap_or(0) as usize;
    for (clock, secs, rules_secs, parse_secs, key) in [
        ("CPU time", cpu, rules_cpu, parse_cpu, "cpu_s"),
        ("wall clock", wall, rules_wall, parse_wall, "wall_s"),
    ] {
        println!("-- {clock}, one thread");
        let is_parser = |name: &str| name.ends_with("_parser");
        report(
            "curate HTML parser alone",
            pages.len(),
            bytes,
            parse_secs,
            None,
        );
        for (name, r) in results.iter().filter(|(n, _)| is_parser(n)) {
            let s = r[key].as_f64().unwrap_or(f64::NAN);
            report(name, peer_pages, peer_bytes, s, None);
            report(
                &format!("curate parser vs {name}"),
                pages.len(),
                bytes,
                parse_secs,
                Some(peer_pages as f64 / s),
            );
        }
        for (name, r) in results.iter().filter(|(n, _)| !is_parser(n)) {
            let s = r[key].as_f64().unwrap_or(f64::NAN);
            report(name, peer_pages, peer_bytes, s, None);
        }
        report("curate extract.html", pages.len(), bytes, secs, None);
        report("curate, rules alone", pages.len(), bytes, rules_secs, None);
        for (name, r) in results.iter().filter(|(n, _)| !is_parser(n)) {
            let s = r[key].as_f64().unwrap_or(f64::NAN);
            report(
                &format!("curate vs {name}"),
                pages.len(),
                bytes,
                secs,
                Some(peer_pages as f64 / s),
            );
        }
    }
}
