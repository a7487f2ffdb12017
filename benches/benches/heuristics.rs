//! The whole heuristic stack, one thread, side by side with datatrove's four filters chained
//! (Gopher repetition, Gopher quality, C4, FineWeb) in the same run.
//!
//! Texts: the 1,080 extracted WARC pages of ../shared/data/corpora (5.6 MB). curate runs every
//! stage on every document, as in tag mode (no short-circuit, every signal computed):
//! url_filter (FineWeb's word lists), pii, dirty_words (LDNOOBW), gopher_repetition,
//! gopher_quality, fineweb, kl (a reference built from the same corpus), c4 (last, because its
//! line removal edits the text). datatrove runs its chain the way a pipeline does (a document
//! stops at the first filter that drops it), in its own process (benches/peers/
//! datatrove_filters.py); both figures are CPU time of one thread, best of the passes.
//! Also printed: each curate stage alone, and loading a generated one-million-entry UT1
//! domain blocklist.
//!
//! Run: cargo bench -p curate-benches --bench heuristics
//! Env: HEUR_BENCH_REPS (default 3), HEUR_BENCH_NO_PEER (skip datatrove), HEUR_BENCH_STACK_ONLY
//! (skip the per-stage lines), HEUR_BENCH_DUMP=FILE (write every document's signals and final
//! text there, to compare two builds for identical results), CURATE_PEERS.

use std::io::{Read, Write};
use std::path::Path;

use curate_benches::{peer_python, repo_root, run_peer, shared_dir};
use stages::filter::kl::KlReference;
use stages::registry::StageDef;
use stages::{Built, Document, Outcome, Purpose, Stage, StageArgs};

/// CPU time of this thread (nanosecond clock: steadier than wall time on a shared machine).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn build(def: &StageDef, name: &str, toml: &str, base: &Path) -> Box<dyn Stage> {
    let t: toml::Table = toml.parse().expect("bench config");
    let args = StageArgs {
        name,
        table: &t,
        base_dir: base,
        purpose: Purpose::Run,
        seed: 0,
    };
    match (def.build)(&args) {
        Ok(Built::Map(s)) => s,
        Err(e) => panic!("{}: {e}", def.kind),
        _ => unreachable!(),
    }
}

fn run_stack(stack: &[(&str, Box<dyn Stage>)], docs: &[(String, String)]) -> (usize, f64) {
    let t0 = cpu_seconds();
    let mut kept = 0;
    for (url, text) in docs {
        let mut d = Document::new("", text.clone());
        d.url = url.clone();
        let mut ok = true;
        for (_, s) in stack {
            let o = match s.process(&mut d) {
                Outcome::Keep => s.judge(&d.signals),
                o => o,
            };
            ok &= o.is_keep();
        }
        kept += ok as usize;
    }
    (kept, cpu_seconds() - t0)
}

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let reps: usize = std::env::var("HEUR_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let corpus = shared.join("data/corpora/warc-extracted-texts.jsonl.gz");
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&corpus).expect("corpus"))
        .read_to_string(&mut raw)
        .unwrap();
    let docs: Vec<(String, String)> = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["url"].as_str().unwrap_or("").to_string(),
                v["text"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let bytes: usize = docs.iter().map(|d| d.1.len()).sum();
    let n = docs.len();

    let dir = std::env::temp_dir().join(format!("curate-heuristics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut reference = KlReference::new(18, 0.5);
    for (_, t) in &docs {
        reference.add(&Document::new("", t.clone()));
    }
    reference
        .write(std::fs::File::create(dir.join("ref.bin")).unwrap())
        .unwrap();

    let assets = shared.join("data/nsfw/datatrove-assets");
    let url_cfg = format!(
        "banned_words_files = [\"{a}/banned_words.txt\"]\nbanned_subwords_files = [\"{a}/banned_subwords.txt\"]\nsoft_banned_words_files = [\"{a}/soft_banned_words.txt\"]",
        a = assets.display()
    );
    let dirty_cfg = format!(
        "lists_dir = \"{}\"",
        shared.join("data/nsfw/ldnoobw").display()
    );
    use stages::filter::*;
    use stages::safety::*;
    let stack: Vec<(&str, Box<dyn Stage>)> = vec![
        (
            "url_filter",
            build(&url_filter::DEF, "url_filter", &url_cfg, &dir),
        ),
        ("pii", build(&pii::DEF, "pii", "", &dir)),
        (
            "dirty_words",
            build(&dirty_words::DEF, "dirty_words", &dirty_cfg, &dir),
        ),
        (
            "gopher_repetition",
            build(&gopher_repetition::DEF, "gopher_repetition", "", &dir),
        ),
        (
            "gopher_quality",
            build(&gopher_quality::DEF, "gopher_quality", "", &dir),
        ),
        ("fineweb", build(&fineweb::DEF, "fineweb", "", &dir)),
        (
            "kl",
            build(
                &kl::DEF,
                "kl",
                "reference = \"ref.bin\"\nmax_kl = 5.0",
                &dir,
            ),
        ),
        ("c4", build(&c4::DEF, "c4", "", &dir)),
    ];

    println!(
        "heuristic stack on {n} documents ({:.2} MB), one thread, CPU time, best of {reps}",
        bytes as f64 / 1e6
    );
    // Each stage alone: a stage that reads words pays for the word view itself here.
    let stack_only = std::env::var_os("HEUR_BENCH_STACK_ONLY").is_some();
    // The shared word view alone (segmentation and word hashes), which every stage reuses.
    let best = (0..reps)
        .map(|_| {
            let t0 = cpu_seconds();
            let mut n_words = 0;
            for (_, text) in &docs {
                let d = Document::new("", text.clone());
                n_words += d.words().len() + d.word_hashes().len() / 2;
            }
            std::hint::black_box(n_words);
            cpu_seconds() - t0
        })
        .fold(f64::INFINITY, f64::min);
    println!(
        "  {:<20} {:>10.0} docs/s {:>8.2} MB/s",
        "(word view)",
        n as f64 / best,
        bytes as f64 / best / 1e6
    );
    for i in (0..stack.len()).filter(|_| !stack_only) {
        let best = (0..reps)
            .map(|_| run_stack(&stack[i..i + 1], &docs).1)
            .fold(f64::INFINITY, f64::min);
        println!(
            "  {:<20} {:>10.0} docs/s {:>8.2} MB/s",
            stack[i].0,
            n as f64 / best,
            bytes as f64 / best / 1e6
        );
    }
    if let Some(path) = std::env::var_os("HEUR_BENCH_DUMP") {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for (url, text) in &docs {
            let mut d = Document::new("", text.clone());
            d.url = url.clone();
            for (_, s) in &stack {
                let o = match s.process(&mut d) {
                    Outcome::Keep => s.judge(&d.signals),
                    o => o,
                };
                writeln!(out, "{} {o:?}", s.name()).unwrap();
            }
            writeln!(out, "{:?}\n{:?}", d.signals, d.text()).unwrap();
        }
    }
    let mut best = f64::INFINITY;
    let mut kept = 0;
    for _ in 0..reps {
        let (k, t) = run_stack(&stack, &docs);
        kept = k;
        best = best.min(t);
    }
    let ours = n as f64 / best;
    println!(
        "curate, all 8 stages                   {:>10.0} docs/s {:>8.2} MB/s  ({kept} pass all)",
        ours,
        bytes as f64 / best / 1e6
    );

    // The peer, same texts, same run.
    let skip_peer = std::env::var_os("HEUR_BENCH_NO_PEER").is_some();
    match peer_python("dt").filter(|_| !skip_peer) {
        Some(py) => {
            let texts = dir.join("texts.jsonl");
            let mut f = std::fs::File::create(&texts).unwrap();
            for l in raw.lines() {
                writeln!(f, "{l}").unwrap();
            }
            drop(f);
            let script = repo_root().join("benches/peers/datatrove_filters.py");
            let reps_s = reps.to_string();
            match run_peer(
                &py,
                &[
                    script.to_str().unwrap(),
                    "bench",
                    texts.to_str().unwrap(),
                    "--repeat",
                    &reps_s,
                ],
            ) {
                Some(v) => {
                    let secs = v["seconds"].as_f64().unwrap_or(f64::NAN);
                    let peer = n as f64 / secs;
                    println!(
                        "datatrove 0.10.1, 4 filters chained    {:>10.1} docs/s {:>8.2} MB/s  ({} pass all)",
                        peer,
                        bytes as f64 / secs / 1e6,
                        v["kept"]
                    );
                    println!(
                        "ratio (per core, curate's 8 stages vs datatrove's 4): {:.0}x",
                        ours / peer
                    );
                }
                None => println!("datatrove: peer run failed"),
            }
        }
        None if skip_peer => println!("datatrove: skipped (HEUR_BENCH_NO_PEER)"),
        None => {
            println!("datatrove: peer environment not found (~/.cache/curate-peers/dt); no ratio")
        }
    }

    // A generated one-million-entry UT1 domain list, gzip-compressed.
    let list = dir.join("domains.gz");
    {
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&list).unwrap(),
            flate2::Compression::fast(),
        );
        for i in 0..1_000_000u64 {
            let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
            writeln!(gz, "site{h:x}.example.com").unwrap();
        }
        gz.finish().unwrap();
    }
    let t = std::time::Instant::now();
    let mut b = url_filter::Blocklist::default();
    let loaded = b.load(&list, false).unwrap();
    println!(
        "UT1 domain list: {loaded} entries loaded in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
