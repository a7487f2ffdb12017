//! The dedup history's cost (release, `cargo bench -p curate-benches --bench history`).
//!
//! 1. **A night with and without the history**: `dedup.url` (`keep = "newest"`, 16 shards)
//!    over a night of synthetic documents (default 1M, partitions of 100,000): collect, then
//!    the steps (index, groups, decide), once as an island and once against a history
//!    holding the keys of 10M earlier documents (one generation, as after compaction, and the
//!    same keys split into 30 generations, as before it). 10% of tonight's URLs are newer
//!    recrawls of history URLs (retractions), 5% copies within the night. Each measurement
//!    runs in its own child process so that its peak RSS (VmHWM) is its own; wall and CPU
//!    seconds (getrusage of the child) are printed, best of the repeats.
//! 2. **Compaction** of the 30 generations into one (`curate history compact`'s code).
//! 3. **`dedup.minhash`** (14 x 8, verified): a night of synthetic 200-word documents (10%
//!    near copies of earlier nights' documents, 5% within the night) after
//!    `HISTORY_BENCH_MH_NIGHTS` (default 3) nights of as many, run and committed through the
//!    engine's code, against the same night without the history.
//!
//! Env: HISTORY_BENCH_DOCS (history documents, default 10,000,000), HISTORY_BENCH_NIGHT
//! (default 1,000,000), HISTORY_BENCH_GENS (default 30), HISTORY_BENCH_MEMORY (executor
//! memory budget, default 1 GiB), HISTORY_BENCH_THREADS (default 2), HISTORY_BENCH_REPS
//! (default 2), HISTORY_BENCH_DIR (scratch folder, default the system temp folder),
//! HISTORY_BENCH_CASES (`url,minhash`, the default, or one of them), HISTORY_BENCH_MH_NIGHTS.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use curate::history::{Commit, History, StageEntry};
use rayon::prelude::*;
use stages::dedup::decisions::peak_rss_bytes;
use stages::dedup::history::{gen_shard_path, HistRec, SNAPSHOT};
use stages::dedup::records::{Record, RecordWriter};
use stages::{Document, GlobalStage, LocalStore, PartitionCtx, StepCtx, Store};

const SHARDS: usize = 16;
const PART_DOCS: u64 = 100_000;

fn env<T: std::str::FromStr>(k: &str, default: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn url_stage() -> Box<dyn GlobalStage> {
    let t: toml::Table = "keep = \"newest\"\nshards = 16".parse().unwrap();
    let args = stages::StageArgs {
        name: "url",
        table: &t,
        base_dir: Path::new("."),
        purpose: stages::Purpose::Run,
        seed: 1,
    };
    match (stages::dedup::url::DEF.build)(&args) {
        Ok(stages::Built::Global(g)) => g,
        _ => panic!("dedup.url"),
    }
}

fn url_of(i: u64) -> String {
    format!(
        "https://site{}.example.org/path/{}/page-{i}.html",
        i % 50_000,
        i % 97
    )
}

/// The history's key of URL `i`: what the stage computes from the normalized URL.
fn url_key(i: u64) -> u128 {
    let rules = stages::dedup::url::UrlRules::default();
    let n = stages::dedup::url::normalize_url(&url_of(i), &rules).unwrap();
    xxhash_rust::xxh3::xxh3_128(n.as_bytes())
}

fn newest_rank(date: i64) -> u64 {
    let keep = stages::dedup::keep::Keep::new(stages::dedup::keep::KeepRule::Newest, None).unwrap();
    let mut d = Document::new("x", "");
    d.crawl_date = Some(date);
    keep.rank(&d)
}

fn shard_of(key: u128) -> usize {
    (((key >> 64) as u64 as u128 * SHARDS as u128) >> 64) as usize
}

/// Writes `docs` history keys as `gens` generations (URL `i` in generation `i % gens`) with
/// their markers.
fn generate_history(dir: &Path, docs: u64, gens: usize) {
    let store = LocalStore::new(dir).unwrap();
    store.put("format.json", b"{\"format\": 1}").unwrap();
    let recs: Vec<(usize, usize, HistRec)> = (0..docs)
        .into_par_iter()
        .map(|i| {
            let key = url_key(i);
            let r = HistRec {
                key,
                rank: newest_rank(1_600_000_000 + (i % 1000) as i64),
                id: xxhash_rust::xxh3::xxh3_128(format!("<urn:uuid:h-{i}>").as_bytes()),
            };
            ((i % gens as u64) as usize, shard_of(key), r)
        })
        .collect();
    let mut by: Vec<Vec<Vec<HistRec>>> = vec![vec![Vec::new(); SHARDS]; gens];
    for (g, s, r) in recs {
        by[g][s].push(r);
    }
    by.par_iter_mut().enumerate().for_each(|(g, shards)| {
        let name = format!("g{g:04}");
        let mut files = BTreeMap::new();
        let mut records = 0;
        for (s, v) in shards.iter_mut().enumerate() {
            v.sort_unstable();
            let path = gen_shard_path(&name, "url", s);
            let mut w = RecordWriter::new(store.create(&path).unwrap());
            for r in v.iter() {
                w.write(r).unwrap();
            }
            w.into_inner().unwrap().finish().unwrap();
            files.insert(
                path.trim_start_matches(&format!("gens/{name}/"))
                    .to_string(),
                (v.len() * HistRec::SIZE) as u64,
            );
            records += v.len() as u64;
        }
        store
            .put(&format!("gens/{name}/inputs.json"), b"[]")
            .unwrap();
        store
            .put(&format!("gens/{name}/retractions.jsonl"), b"")
            .unwrap();
        files.insert("inputs.json".into(), 2);
        files.insert("retractions.jsonl".into(), 0);
        let c = Commit {
            format: 1,
            generation: name.clone(),
            seq: g as u64 + 1,
            runs: vec![format!("night-{g}")],
            documents: records,
            input_files: 0,
            stages: [(
                "url".to_string(),
                StageEntry {
                    shards: SHARDS,
                    records,
                    bytes: records * HistRec::SIZE as u64,
                    kind: "keys".into(),
                },
            )]
            .into(),
            files,
            replaces: vec![],
        };
        store
            .put(
                &format!("commits/{name}.json"),
                &serde_json::to_vec(&c).unwrap(),
            )
            .unwrap();
    });
}

/// Tonight's document `j` of `night`: 10% newer recrawls of history URLs, 5% copies of an
/// earlier document of the night, the rest new URLs.
fn night_doc(j: u64, history_docs: u64) -> Document {
    let mut d = Document::new(format!("<urn:uuid:n-{j}>"), "");
    let i = if j % 10 == 0 {
        (j * 7919) % history_docs
    } else if j % 20 == 3 {
        history_docs + j - 1
    } else {
        history_docs + j
    };
    d.url = url_of(i);
    d.crawl_date = Some(1_700_000_000 + (j % 1000) as i64);
    d
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Child: collect and the steps of one night, with the history at `hist` (or none).
fn night(work: &Path, hist: Option<&Path>, night_docs: u64, history_docs: u64) {
    let threads = env("HISTORY_BENCH_THREADS", 2usize);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let v = run_night(work, hist, url_stage().as_ref(), night_docs, &|j| {
        night_doc(j, history_docs)
    });
    println!("{v}");
}

/// Collect and the steps of `stage` over documents `doc(0..n)` in `work/out`, with the
/// history at `hist` (or none): timings and counters.
fn run_night(
    work: &Path,
    hist: Option<&Path>,
    stage: &dyn GlobalStage,
    night_docs: u64,
    doc: &(dyn Fn(u64) -> Document + Sync),
) -> serde_json::Value {
    let threads = env("HISTORY_BENCH_THREADS", 2usize);
    let out: Arc<dyn Store> = Arc::new(LocalStore::new(work.join("out")).unwrap());
    let store: Arc<dyn Store> = match hist {
        Some(h) => {
            let hs: Arc<dyn Store> = Arc::new(LocalStore::new(h).unwrap());
            let hist = History::from_store(hs.clone()).unwrap();
            out.put(SNAPSHOT, &serde_json::to_vec(&hist.snapshot()).unwrap())
                .unwrap();
            Arc::new(curate::history::mount::MountStore {
                run: out,
                history: hs,
            })
        }
        None => out,
    };
    let dir = format!("work/{}", stage.name());
    let parts = night_docs.div_ceil(PART_DOCS) as usize;
    let scratch = work.join("scratch");
    let pctx = |p: usize| PartitionCtx {
        store: store.clone(),
        dir: dir.clone(),
        partition: p,
        partitions: parts,
        scratch: scratch.clone(),
        seed: 1,
    };
    let (t0, c0) = (Instant::now(), cpu_seconds());
    (0..parts).into_par_iter().for_each(|p| {
        let mut c = stage.collector(&pctx(p)).unwrap();
        let lo = p as u64 * PART_DOCS;
        for j in lo..(lo + PART_DOCS).min(night_docs) {
            c.collect(&doc(j)).unwrap();
        }
        c.finish().unwrap();
    });
    let collect = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let (t1, c1) = (Instant::now(), cpu_seconds());
    let sctx = StepCtx {
        store: store.clone(),
        dir: dir.clone(),
        partitions: parts,
        scratch: scratch.clone(),
        memory_budget: env("HISTORY_BENCH_MEMORY", 1usize << 30),
        threads,
        seed: 1,
    };
    let mut counters = BTreeMap::<String, u64>::new();
    for step in stage.steps() {
        let n = step.tasks(&sctx).unwrap();
        let stats: Vec<_> = (0..n)
            .into_par_iter()
            .map(|t| {
                let mut c = sctx.clone();
                c.scratch = scratch.join(format!("{}-{t}", step.name()));
                std::fs::create_dir_all(&c.scratch).unwrap();
                step.run(t, &c).unwrap()
            })
            .collect();
        for s in stats {
            for (k, v) in s.counters {
                *counters.entry(k).or_default() += v;
            }
        }
    }
    let steps = (t1.elapsed().as_secs_f64(), cpu_seconds() - c1);
    serde_json::json!({
        "collect_s": collect.0, "collect_cpu_s": collect.1,
        "steps_s": steps.0, "steps_cpu_s": steps.1,
        "peak_rss_bytes": peak_rss_bytes(),
        "duplicates": counters.get("duplicates"),
        "history_matches": counters.get("history_matches"),
        "retracted": counters.get("retracted"),
    })
}

/// `dedup.minhash` as the pipeline configures it by default (14 x 8, verified).
fn mh_stage() -> Box<dyn GlobalStage> {
    let t: toml::Table = "band_splits = 2".parse().unwrap();
    let args = stages::StageArgs {
        name: "mh",
        table: &t,
        base_dir: Path::new("."),
        purpose: stages::Purpose::Run,
        seed: 1,
    };
    match (stages::dedup::minhash::DEF.build)(&args) {
        Ok(stages::Built::Global(g)) => g,
        _ => panic!("dedup.minhash"),
    }
}

/// 200 words of base text `i` (a 5,000-word vocabulary), with `edits` words changed.
fn mh_text(i: u64, edits: u64) -> String {
    let mut st = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        st
    };
    let mut w: Vec<String> = (0..200).map(|_| format!("w{}", next() % 5000)).collect();
    for e in 0..edits {
        w[(e * 37 % 200) as usize] = format!("edit{i}x{e}");
    }
    w.join(" ")
}

/// Document `j` of MinHash night `night` (documents are numbered across nights): 10% near
/// copies (4 words of 200 changed) of an earlier night's document, 5% of an earlier document
/// of the night, the rest new texts.
fn mh_doc(night: u64, j: u64, per_night: u64) -> Document {
    let g = night * per_night + j;
    let text = if night > 0 && j % 10 == 0 {
        mh_text((j * 7919) % (night * per_night), 4)
    } else if j % 20 == 3 {
        mh_text(g - 1, 4)
    } else {
        mh_text(g, 0)
    };
    let mut d = Document::new(format!("<urn:uuid:mh-{g}>"), text);
    d.crawl_date = Some(1_700_000_000 + g as i64);
    d
}

/// Runs `nights` MinHash nights of `per_night` documents into a history at `dir`, each
/// committed as `curate run` does.
fn generate_mh_history(dir: &Path, work: &Path, nights: u64, per_night: u64) {
    let hs: Arc<dyn Store> = Arc::new(LocalStore::new(dir).unwrap());
    let stage = mh_stage();
    for n in 0..nights {
        let w = work.join(format!("mh-gen-{n}"));
        let hist = History::from_store(hs.clone()).unwrap();
        run_night(&w, Some(dir), stage.as_ref(), per_night, &|j| {
            mh_doc(n, j, per_night)
        });
        let out = LocalStore::new(w.join("out")).unwrap();
        out.put(
            curate::fingerprint::FILE,
            format!("mh night {n}").as_bytes(),
        )
        .unwrap();
        curate::history::commit(&hist, &out, &format!("night-{n}"), &["mh".into()], &[]).unwrap();
        let _ = std::fs::remove_dir_all(&w);
    }
}

/// Child: MinHash night number `nights` (after the history's) with the history at `hist`.
fn mh_night(work: &Path, hist: Option<&Path>, nights: u64, per_night: u64) {
    let threads = env("HISTORY_BENCH_THREADS", 2usize);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap();
    let v = run_night(work, hist, mh_stage().as_ref(), per_night, &|j| {
        mh_doc(nights, j, per_night)
    });
    println!("{v}");
}

/// Child: compaction of the history at `hist`.
fn compact(hist: &Path, scratch: &Path) {
    let hs: Arc<dyn Store> = Arc::new(LocalStore::new(hist).unwrap());
    let h = History::from_store(hs).unwrap();
    let gens = h.live.len();
    let (t0, c0) = (Instant::now(), cpu_seconds());
    curate::history::compact(&h, scratch, env("HISTORY_BENCH_MEMORY", 1usize << 30)).unwrap();
    println!(
        "{}",
        serde_json::json!({
            "generations": gens, "seconds": t0.elapsed().as_secs_f64(),
            "cpu_s": cpu_seconds() - c0, "peak_rss_bytes": peak_rss_bytes(),
        })
    );
}

fn child(args: &[&str]) -> serde_json::Value {
    let me = std::env::current_exe().unwrap();
    let o = std::process::Command::new(me).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap()
}

/// Bytes of every file under a folder.
fn du(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        du(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let history_docs: u64 = env("HISTORY_BENCH_DOCS", 10_000_000);
    let night_docs: u64 = env("HISTORY_BENCH_NIGHT", 1_000_000);
    match args.get(1).map(String::as_str) {
        Some("--night") => {
            let h = (args[3] != "-").then(|| Path::new(&args[3]));
            return night(Path::new(&args[2]), h, night_docs, history_docs);
        }
        Some("--compact") => return compact(Path::new(&args[2]), Path::new(&args[3])),
        Some("--mh-night") => {
            let h = (args[3] != "-").then(|| Path::new(&args[3]));
            let nights = args[4].parse().unwrap();
            return mh_night(Path::new(&args[2]), h, nights, night_docs);
        }
        Some(a) if a.starts_with("--") && a != "--bench" => panic!("unknown {a}"),
        _ => {}
    }
    let gens: usize = env("HISTORY_BENCH_GENS", 30);
    let reps: usize = env("HISTORY_BENCH_REPS", 2);
    let base = std::env::var_os("HISTORY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let cases = std::env::var("HISTORY_BENCH_CASES").unwrap_or_else(|_| "url,minhash".into());
    if cases.split(',').any(|c| c == "url") {
        url_case(dir.path(), history_docs, night_docs, gens, reps);
    }
    if cases.split(',').any(|c| c == "minhash") {
        minhash_case(dir.path(), night_docs, reps);
    }
}

/// A row of the table: the best (least wall) of `reps` children.
fn best_of(reps: usize, dir: &Path, args: &dyn Fn(&str) -> Vec<String>) -> serde_json::Value {
    let mut best: Option<serde_json::Value> = None;
    for r in 0..reps {
        let work = dir.join(format!("night-{r}"));
        let _ = std::fs::remove_dir_all(&work);
        let a = args(work.to_str().unwrap());
        let v = child(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&work);
        let total = |v: &serde_json::Value| {
            v["collect_s"].as_f64().unwrap() + v["steps_s"].as_f64().unwrap()
        };
        if best.as_ref().is_none_or(|b| total(&v) < total(b)) {
            best = Some(v);
        }
    }
    best.unwrap()
}

/// Case 3, `dedup.minhash` (14 x 8, verified, 2 band splits): a night of `night_docs`
/// documents after `HISTORY_BENCH_MH_NIGHTS` (default 3) earlier nights of as many, committed
/// through the engine's code, against a night without a history.
fn minhash_case(dir: &Path, night_docs: u64, reps: usize) {
    let nights: u64 = env("HISTORY_BENCH_MH_NIGHTS", 3);
    let hist = dir.join("mh-history");
    let t = Instant::now();
    generate_mh_history(&hist, dir, nights, night_docs);
    println!(
        "== dedup.minhash night of {night_docs} documents after {nights} nights of as many \
         (history {:.0} MB, {:.0} B per document; built in {:.0} s); {} threads, best of {reps}",
        du(&hist) as f64 / 1e6,
        du(&hist) as f64 / (nights * night_docs) as f64,
        t.elapsed().as_secs_f64(),
        env("HISTORY_BENCH_THREADS", 2usize),
    );
    header();
    let mut base = 0.0;
    for (label, h) in [
        ("no history", "-".to_string()),
        (
            &*format!("history of {nights} nights"),
            hist.to_string_lossy().into_owned(),
        ),
    ] {
        let v = best_of(reps, dir, &|w| {
            vec!["--mh-night".into(), w.into(), h.clone(), nights.to_string()]
        });
        row(label, &v, &mut base);
    }
}

fn header() {
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "", "collect s", "CPU s", "steps s", "CPU s", "peak RSS", "dups", "in history", "retracted"
    );
}

/// Prints a row; the first row (`base` 0) is the reference of the ratio.
fn row(label: &str, v: &serde_json::Value, base: &mut f64) {
    let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
    if *base == 0.0 {
        *base = f("collect_s") + f("steps_s");
    }
    println!(
        "{:<28} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6.0} MB {:>10} {:>10} {:>10}   ({:.2}x the night without history)",
        label,
        f("collect_s"),
        f("collect_cpu_s"),
        f("steps_s"),
        f("steps_cpu_s"),
        f("peak_rss_bytes") / 1e6,
        v["duplicates"],
        v["history_matches"],
        v["retracted"],
        (f("collect_s") + f("steps_s")) / *base
    );
}

/// Cases 1 and 2: `dedup.url` nights and compaction.
fn url_case(dir: &Path, history_docs: u64, night_docs: u64, gens: usize, reps: usize) {
    let one = dir.join("history-1");
    let many = dir.join("history-n");
    let t = Instant::now();
    generate_history(&one, history_docs, 1);
    generate_history(&many, history_docs, gens);
    println!(
        "== dedup.url night of {night_docs} documents ({} partitions), history of {history_docs} \
         documents' keys ({:.0} MB as 1 generation; generated in {:.0} s); {} threads, memory \
         budget {} MiB, best of {reps}",
        night_docs.div_ceil(PART_DOCS),
        du(&one) as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        env("HISTORY_BENCH_THREADS", 2usize),
        env("HISTORY_BENCH_MEMORY", 1usize << 30) >> 20
    );
    header();
    let mut base = 0.0;
    for (label, h) in [
        ("no history", None),
        ("history, 1 generation", Some(&one)),
        (&*format!("history, {gens} generations"), Some(&many)),
    ] {
        let hp = h.map_or("-".to_string(), |p| p.to_string_lossy().into_owned());
        let v = best_of(reps, dir, &|w| vec!["--night".into(), w.into(), hp.clone()]);
        row(label, &v, &mut base);
    }
    let before = du(&many);
    let v = child(&[
        "--compact",
        many.to_str().unwrap(),
        dir.join("compact-scratch").to_str().unwrap(),
    ]);
    println!(
        "== compact {} generations ({history_docs} keys, {:.0} MB): {:.1} s wall, {:.1} s CPU, peak RSS {:.0} MB; {:.0} MB after",
        v["generations"],
        before as f64 / 1e6,
        v["seconds"].as_f64().unwrap(),
        v["cpu_s"].as_f64().unwrap(),
        v["peak_rss_bytes"].as_f64().unwrap() / 1e6,
        du(&many) as f64 / 1e6,
    );
}
