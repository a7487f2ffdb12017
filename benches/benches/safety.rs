//! Safety benchmarks (release, `cargo bench -p curate-benches --bench safety`).
//!
//! 1. **UT1 adult blocklist load**: the 4.56M-domain list FineWeb's URL filter uses (extracted
//!    from the datatrove 0.10.1 wheel by `scripts/ut1_lists.py`), loaded by
//!    `safety.url_filter`'s `Blocklist` in a child process (so that its peak RSS, VmHWM, is its
//!    own), side by side with datatrove's `URLFilter` loading the same lists into Python sets
//!    in the same run. Then lookups of the hosts of the 1,080 real pages of
//!    `../shared/data/corpora/warc-extracted-texts.jsonl.gz`.
//!
//! 2. **`safety.domains` aggregation** at 1M and 10M documents (each scale in a child process
//!    for its own peak RSS): pages of 2M synthetic registered domains (Zipf-like sizes, a few
//!    subdomains each, 1% of the domains leaking PII on every page) through the collectors
//!    (100k documents a partition), the `aggregate` and `report` steps and the appliers.
//!
//! Env: SAFETY_BENCH_UT1 (a folder holding `domains` and `urls`; default: extracted into a
//! temporary folder), SAFETY_BENCH_REPS (default 3), SAFETY_BENCH_SCALES (default
//! "1000000,10000000"), SAFETY_BENCH_THREADS (default 2), SAFETY_BENCH_ONLY (`blocklist` or
//! `domains`), CURATE_PEERS.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use curate_benches::{peer_python, repo_root, shared_dir};
use stages::dedup::decisions::peak_rss_bytes;
use stages::safety::url_filter::{url_host, Blocklist};

fn env<T: std::str::FromStr>(k: &str, default: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn hosts() -> Vec<String> {
    let Some(shared) = shared_dir() else {
        return Vec::new();
    };
    let Ok(f) = std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
    else {
        return Vec::new();
    };
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .unwrap();
    s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["url"].as_str().map(|u| url_host(u).to_string()))
        .collect()
}

/// The child: loads the lists once, prints one JSON line.
fn child_blocklist(dir: &Path) {
    let rss0 = peak_rss_bytes();
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut domains = Blocklist::default();
    let n = domains.load(&dir.join("domains"), false).unwrap();
    let mut urls = Blocklist::default();
    let nu = urls.load(&dir.join("urls"), true).unwrap();
    let (wall, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    let hosts = hosts();
    let reps = 200;
    let t = Instant::now();
    let mut hits = 0;
    for _ in 0..reps {
        hits += hosts.iter().filter(|h| domains.has_domain(h)).count();
    }
    let lookups = (hosts.len() * reps) as f64 / t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "domains": n, "urls": nu, "wall_s": wall, "cpu_s": cpu,
            "heap_mb": (domains.heap_bytes() + urls.heap_bytes()) as f64 / 1e6,
            "rss_mb": (peak_rss_bytes() - rss0) as f64 / 1e6,
            "peak_rss_mb": peak_rss_bytes() as f64 / 1e6,
            "lookups_per_s": lookups, "hits": hits / reps, "hosts": hosts.len(),
        })
    );
}

const PEER: &str = r#"
import json, resource, time
from datatrove.pipeline.filters.url_filter import URLFilter
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); c = time.process_time()
f = URLFilter()
f.download_data()
wall = time.perf_counter() - t; cpu = time.process_time() - c
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"domains": len(f.block_listed_domains), "urls": len(f.block_listed_url),
                  "wall_s": wall, "cpu_s": cpu, "rss_mb": (rss - rss0) * 1024 / 1e6,
                  "peak_rss_mb": rss * 1024 / 1e6}))
"#;

fn ut1_dir(tmp: &Path) -> Option<PathBuf> {
    if let Ok(d) = std::env::var("SAFETY_BENCH_UT1") {
        return Some(PathBuf::from(d));
    }
    let out = tmp.join("ut1-adult");
    let ok = Command::new("python3")
        .arg(repo_root().join("scripts/ut1_lists.py"))
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: scripts/ut1_lists.py could not extract the UT1 lists");
        return None;
    }
    Some(out)
}

fn bench_blocklist() {
    println!("== UT1 adult blocklist load (datatrove 0.10.1 asset) ==");
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = ut1_dir(tmp.path()) else {
        return;
    };
    let reps: usize = env("SAFETY_BENCH_REPS", 3);
    let me = std::env::current_exe().unwrap();
    for _ in 0..reps {
        let o = Command::new(&me)
            .args(["child-blocklist", dir.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        println!(
            "curate Blocklist     {} domains + {} urls: wall {:.2} s, cpu {:.2} s, entries {:.1} MB, \
             RSS +{:.1} MB (peak {:.1} MB); {:.2}M host lookups/s ({} of {} real hosts listed)",
            v["domains"], v["urls"], v["wall_s"].as_f64().unwrap(), v["cpu_s"].as_f64().unwrap(),
            v["heap_mb"].as_f64().unwrap(), v["rss_mb"].as_f64().unwrap(),
            v["peak_rss_mb"].as_f64().unwrap(), v["lookups_per_s"].as_f64().unwrap() / 1e6,
            v["hits"], v["hosts"],
        );
    }
    let Some(py) = peer_python("dt") else {
        eprintln!("peer skipped: no datatrove venv (CURATE_PEERS/dt)");
        return;
    };
    // Warm vs warm: datatrove extracts the tarball into its asset cache on first use; one
    // untimed run fills the cache, the timed runs then only read the lists.
    let cache = tempfile::tempdir().unwrap();
    let peer = |py: &PathBuf| {
        let o = Command::new(py)
            .args(["-c", PEER])
            .env("HF_HOME", cache.path())
            .output()
            .unwrap();
        if !o.status.success() {
            eprintln!("peer failed: {}", String::from_utf8_lossy(&o.stderr));
            return None;
        }
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        serde_json::from_str::<serde_json::Value>(s.lines().last()?).ok()
    };
    if peer(&py).is_none() {
        return;
    }
    for _ in 0..reps {
        let Some(v) = peer(&py) else { return };
        println!(
            "datatrove URLFilter  {} domains + {} urls: wall {:.2} s, cpu {:.2} s, \
             RSS +{:.1} MB (peak {:.1} MB)",
            v["domains"],
            v["urls"],
            v["wall_s"].as_f64().unwrap(),
            v["cpu_s"].as_f64().unwrap(),
            v["rss_mb"].as_f64().unwrap(),
            v["peak_rss_mb"].as_f64().unwrap(),
        );
    }
}

const PSL: &str = "com\nnet\norg\nde\nuk\nco.uk\n";

/// Page `i` of a synthetic crawl: its URL (domain `d` of 2M, Zipf-like) and PII matches.
fn synthetic(i: u64) -> (String, i64) {
    let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
    // 1/(u+eps)-shaped sizes: a few huge domains, a long tail of one-page ones.
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let d = ((1.0 / (u + 5e-7) - 1.0) as u64) % 2_000_000;
    let tld = ["com", "net", "org", "de", "co.uk"][(d % 5) as usize];
    let sub = ["www", "blog", "shop"][(h % 3) as usize];
    let leaky = d % 100 == 7;
    let pii = if leaky { 3 } else { (h >> 60 == 0) as i64 };
    (format!("https://{sub}.site{d}.{tld}/page/{i}"), pii)
}

fn child_domains(scale: u64, threads: usize) {
    use rayon::prelude::*;
    use stages::{PartitionCtx, StepCtx, Store};
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("psl.dat"), PSL).unwrap();
    let t: toml::Table = "public_suffix_list = \"psl.dat\"\nmin_pages = 5\npii_stage = \"pii\"\n\
                          max_pii_per_1k_words = 50.0\nshards = 16"
        .parse()
        .unwrap();
    let args = stages::StageArgs {
        name: "sites",
        table: &t,
        base_dir: dir.path(),
        purpose: stages::Purpose::Run,
        seed: 0,
    };
    let stages::Built::Global(stage) = (stages::safety::domains::DEF.build)(&args).unwrap() else {
        panic!("global")
    };
    let store: Arc<dyn Store> = Arc::new(stages::LocalStore::new(dir.path().join("out")).unwrap());
    let per = 100_000u64;
    let parts = scale.div_ceil(per) as usize;
    let ctx = |p: usize| PartitionCtx {
        store: store.clone(),
        dir: "work/sites".into(),
        partition: p,
        partitions: parts,
        scratch: dir.path().join("scratch"),
        seed: 0,
    };
    let doc = |i: u64| {
        let (url, pii) = synthetic(i);
        // Forty words: the PII rate's denominator.
        let mut d = stages::Document::new(i.to_string(), TEXT);
        d.url = url;
        d.signals.set_i64("pii.total", pii);
        d
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    pool.install(|| {
        (0..parts).into_par_iter().for_each(|p| {
            let mut c = stage.collector(&ctx(p)).unwrap();
            for i in p as u64 * per..((p as u64 + 1) * per).min(scale) {
                c.collect(&doc(i)).unwrap();
            }
            c.finish().unwrap();
        })
    });
    let collect = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let sctx = StepCtx {
        store: store.clone(),
        dir: "work/sites".into(),
        partitions: parts,
        scratch: dir.path().join("scratch"),
        memory_budget: 1 << 30,
        threads,
        seed: 0,
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut counters = std::collections::BTreeMap::new();
    for step in stage.steps() {
        let n = step.tasks(&sctx).unwrap();
        let stats: Vec<_> = pool.install(|| {
            (0..n)
                .into_par_iter()
                .map(|t| step.run(t, &sctx).unwrap())
                .collect()
        });
        for s in stats {
            for (k, v) in s.counters {
                *counters
                    .entry(format!("{}.{k}", step.name()))
                    .or_insert(0u64) += v;
            }
        }
    }
    let steps = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let dropped: u64 = pool.install(|| {
        (0..parts)
            .into_par_iter()
            .map(|p| {
                let mut a = stage.applier(&ctx(p)).unwrap();
                let mut n = 0;
                for i in p as u64 * per..((p as u64 + 1) * per).min(scale) {
                    n += !a.apply(&mut doc(i)).is_keep() as u64;
                }
                n
            })
            .sum()
    });
    let apply = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "{}",
        serde_json::json!({
            "collect": collect, "steps": steps, "apply": apply, "dropped": dropped,
            "counters": counters, "peak_rss_mb": peak_rss_bytes() as f64 / 1e6,
        })
    );
}

const TEXT: &str = "one two three four five six seven eight nine ten one two three four five six \
                    seven eight nine ten one two three four five six seven eight nine ten one two \
                    three four five six seven eight nine ten";

fn bench_domains() {
    println!("== safety.domains aggregation (synthetic crawl, 2M domains) ==");
    let scales: Vec<u64> = std::env::var("SAFETY_BENCH_SCALES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let threads: usize = env("SAFETY_BENCH_THREADS", 2);
    let me = std::env::current_exe().unwrap();
    for scale in scales {
        let o = Command::new(&me)
            .args(["child-domains", &scale.to_string(), &threads.to_string()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        let w = |k: &str, i: usize| v[k][i].as_f64().unwrap();
        let c = &v["counters"];
        println!(
            "curate safety.domains {scale:>9} docs, {threads} threads: collect {:.1} s (cpu {:.1}), \
             aggregate+report {:.1} s (cpu {:.1}), apply {:.1} s (cpu {:.1}); {} domains, {} offending \
             ({} pages dropped); peak RSS {:.0} MB",
            w("collect", 0), w("collect", 1), w("steps", 0), w("steps", 1), w("apply", 0),
            w("apply", 1), c["aggregate.domains"], c["aggregate.offending_domains"], v["dropped"],
            v["peak_rss_mb"].as_f64().unwrap(),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("child-blocklist") => return child_blocklist(Path::new(&args[2])),
        Some("child-domains") => {
            return child_domains(args[2].parse().unwrap(), args[3].parse().unwrap())
        }
        _ => {}
    }
    let only = std::env::var("SAFETY_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "blocklist" {
        bench_blocklist();
    }
    if only.is_empty() || only == "domains" {
        bench_domains();
    }
}
