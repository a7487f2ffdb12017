//! End to end, side by side: the same WARC input from WARC to Megatron token files through
//! curate (`curate run` then `curate mix`, one thread) and through datatrove 0.10.1's FineWeb
//! pipeline (benches/peers/datatrove_e2e.py, one process), in one run, on one clock.
//!
//! curate: URL filter (UT1 lists, FineWeb's banned words) -> extraction -> language ID (lid.176,
//! English >= 0.65) -> Gopher repetition + quality -> C4 (no terminal-punctuation rule, as
//! FineWeb) -> FineWeb -> PII -> URL, exact and MinHash dedup (5-grams, 14 x 8) -> a one-bucket
//! mix tokenized with the GPT-Neo `tokenizer.json` into Megatron `.bin`/`.idx`. No semantic
//! dedup. datatrove: the same steps with its own classes (no URL dedup in 0.10.1; FineWeb runs
//! no exact dedup), the same tokenizer file and EOS.
//!
//! Inputs: the 1,033-page trafilatura-eval WARC, and the Common Crawl samples of
//! ../shared/data/warc (cc-main-2020-34-sample, whirlwind, the two dolma samples) as one folder.
//! Each system is run once as a warm-up, then `E2E_BENCH_REPS` times (default 1), best kept;
//! CPU is the child processes' user + system time (`getrusage(RUSAGE_CHILDREN)`), wall the
//! elapsed time, both including process start and imports. Needs the release binary (`cargo
//! build --release --bin curate`, or `E2E_CURATE=path`). `E2E_BENCH_INPUTS=trafilatura` or
//! `=cc` runs one input.
//!
//! After the table, curate's own profile of its best run (seconds per stage and global step
//! from its `stats.json`, and the rest: process start, planning, model loading, the mix).
//!
//! `E2E_BENCH_KEEP=1` keeps the work folder (pipeline, inputs, outputs) and prints its path,
//! for profiling one side alone (`perf record curate run ...`).
//!
//! Run: cargo bench -p curate-benches --bench e2e

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use curate_benches::{peer_python, repo_root, shared_dir};

/// CPU seconds (user + system) of the waited-for child processes so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Runs `cmd` to completion; (wall s, CPU s, stdout).
fn timed(cmd: &mut Command) -> (f64, f64, String) {
    let (t, c) = (Instant::now(), children_cpu());
    let out = cmd.output().expect("start");
    let (wall, cpu) = (t.elapsed().as_secs_f64(), children_cpu() - c);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (wall, cpu, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn curate_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("E2E_CURATE") {
        return Some(PathBuf::from(p));
    }
    // target/release/deps/e2e-HASH -> target/release/curate
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("curate");
    bin.is_file().then_some(bin)
}

fn pipeline(dir: &Path, shared: &Path, ut1: Option<&Path>) -> PathBuf {
    let nsfw = shared.join("data/nsfw/datatrove-assets");
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let lists = match ut1 {
        Some(u) => format!(
            "domain_lists = [{}]\nurl_lists = [{}]\n",
            q(&u.join("domains")),
            q(&u.join("urls"))
        ),
        None => String::new(),
    };
    let toml = format!(
        r#"[pipeline]
name = "e2e"
seed = 1

[input]
format = "warc"

[output]
path = "out"
format = "parquet"

[executor]
threads = 1

[stages.urls]
type = "safety.url_filter"
{lists}banned_words_files = [{bw}]
banned_subwords_files = [{bsw}]
soft_banned_words_files = [{sbw}]

[stages.extract]
type = "extract.html"

[stages.langid]
type = "classify.langid"
model = {lid}
languages = ["en"]
min_score = 0.65

[stages.gopher_repetition]
type = "filter.gopher_repetition"

[stages.gopher_quality]
type = "filter.gopher_quality"

[stages.c4]
type = "filter.c4"
filter_no_terminal_punct = false

[stages.fineweb]
type = "filter.fineweb"

[stages.pii]
type = "safety.pii"

[stages.url_dedup]
type = "dedup.url"

[stages.exact_dedup]
type = "dedup.exact"

[stages.minhash]
type = "dedup.minhash"
ngram = 5
bands = 14
rows = 8

[stages.bucket]
type = "mix.bucket"
multilingual = ""
topics = {{}}

[mix]
tokenizer = {tok}
eos = "<|endoftext|>"

[mix.main]
general = 1.0
"#,
        bw = q(&nsfw.join("banned_words.txt")),
        bsw = q(&nsfw.join("banned_subwords.txt")),
        sbw = q(&nsfw.join("soft_banned_words.txt")),
        lid = q(&shared.join("data/langid/models/lid.176.ftz")),
        tok = q(&dir.join("tokenizer.json")),
    );
    let p = dir.join("e2e.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

struct Run {
    wall: f64,
    cpu: f64,
    summary: String,
}

/// Where curate's time goes, from its `stats.json`: seconds per stage and per global step
/// (single thread: stage time is CPU time), the rest of each map phase (reading input and
/// writing Parquet, outside the stages), and what `stats.json` does not cover (process
/// start, planning, model loading, the mix), as shares of the run's CPU.
fn profile(stats: &serde_json::Value, cpu: f64) -> String {
    let mut rows: Vec<(String, f64)> = Vec::new();
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let mut covered = 0.0;
    for p in stats["phases"].as_array().into_iter().flatten() {
        let phase = p["name"].as_str().unwrap_or("?");
        let mut in_stages = 0.0;
        for st in p["stages"].as_array().into_iter().flatten() {
            let secs = f(&st["seconds"]);
            in_stages += secs;
            rows.push((
                format!("{phase}/{}", st["name"].as_str().unwrap_or("?")),
                secs,
            ));
        }
        let steps = p["steps"].as_array().cloned().unwrap_or_default();
        let mut by_step: Vec<(String, f64)> = Vec::new();
        for st in &steps {
            let n = st["name"].as_str().unwrap_or("?").to_string();
            match by_step.iter_mut().find(|(k, _)| *k == n) {
                Some(e) => e.1 += f(&st["seconds"]),
                None => by_step.push((n, f(&st["seconds"]))),
            }
        }
        let step_secs: f64 = by_step.iter().map(|s| s.1).sum();
        for (n, secs) in by_step {
            rows.push((format!("{phase}/{n} (global step)"), secs));
        }
        let total = f(&p["seconds"]);
        if steps.is_empty() && total > in_stages {
            rows.push((
                format!("{phase}/(writing, outside stages)"),
                total - in_stages,
            ));
        }
        covered += total.max(in_stages + step_secs);
    }
    rows.push((
        "(process, planning, model loading, mix)".into(),
        (cpu - covered).max(0.0),
    ));
    let mut out = String::from("where curate's CPU goes (stats.json, best run):\n");
    for (n, secs) in rows {
        out.push_str(&format!(
            "  {n:<48} {secs:>8.3} s {:>6.1}%\n",
            100.0 * secs / cpu.max(1e-9)
        ));
    }
    out
}

fn best(reps: usize, mut f: impl FnMut(usize) -> Run) -> Run {
    f(0); // warm-up: page cache, Python imports' .pyc files, the models' files
    let mut best: Option<Run> = None;
    for r in 0..reps {
        let run = f(r + 1);
        if best.as_ref().is_none_or(|b| run.cpu < b.cpu) {
            best = Some(run);
        }
    }
    best.unwrap()
}

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let Some(curate) = curate_binary() else {
        eprintln!("skipped: build the release binary first (cargo build --release --bin curate) or set E2E_CURATE");
        return;
    };
    let Some(py) = peer_python("dt") else {
        eprintln!("skipped: datatrove's venv (~/.cache/curate-peers/dt) is absent");
        return;
    };
    let reps: usize = std::env::var("E2E_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let w = w.as_path();
    if std::env::var_os("E2E_BENCH_KEEP").is_some() {
        println!("work folder (kept): {}", work.keep().display());
    }
    // The tokenizer both systems write with, unpacked once.
    let mut tok = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(
            std::fs::File::open(shared.join("data/tokenizers/gpt-neo-tokenizer.json.gz")).unwrap(),
        ),
        &mut tok,
    )
    .unwrap();
    std::fs::write(w.join("tokenizer.json"), tok).unwrap();
    // FineWeb's UT1 lists for curate's URL filter, from the datatrove install the peer uses.
    let site = py.parent().unwrap().parent().unwrap().join("lib");
    let site = std::fs::read_dir(&site)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.path().join("site-packages"));
    let ut1 = w.join("ut1");
    let got_ut1 = site.is_some_and(|s| {
        Command::new("python3")
            .arg(repo_root().join("scripts/ut1_lists.py"))
            .arg(&ut1)
            .arg("--wheel")
            .arg(s)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !got_ut1 {
        eprintln!("note: no UT1 lists for curate's URL filter (scripts/ut1_lists.py failed): banned words only");
    }
    let toml = pipeline(w, &shared, got_ut1.then_some(ut1.as_path()));
    let lid = shared.join("data/langid/models/lid.176.ftz");

    let warcs = shared.join("data/warc");
    let cc = w.join("cc");
    std::fs::create_dir_all(&cc).unwrap();
    for f in [
        "cc-main-2020-34-sample.warc.gz",
        "whirlwind.warc.gz",
        "dolma-sample-0000.warc.gz",
        "dolma-sample-0001.warc.gz",
    ] {
        std::fs::copy(warcs.join(f), cc.join(f)).unwrap();
    }
    let tra = w.join("trafilatura");
    std::fs::create_dir_all(&tra).unwrap();
    std::fs::copy(
        warcs.join("trafilatura-eval-pages.warc.gz"),
        tra.join("trafilatura-eval-pages.warc.gz"),
    )
    .unwrap();
    let wanted = std::env::var("E2E_BENCH_INPUTS").unwrap_or_default();
    let inputs: Vec<(&str, &Path)> = [("trafilatura", tra.as_path()), ("cc", cc.as_path())]
        .into_iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.split(',').any(|x| x == *n))
        .collect();

    for (name, input) in inputs {
        let records = input
            .read_dir()
            .unwrap()
            .map(|e| e.unwrap().path().display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let c = best(reps, |r| {
            let out = w.join(format!("curate-{name}-{r}"));
            let o = out.to_str().unwrap();
            let t = toml.to_str().unwrap();
            let i = input.to_str().unwrap();
            let (w1, c1, _) =
                timed(Command::new(&curate).args(["run", t, "--input", i, "--output", o, "-q"]));
            let (w2, c2, _) = timed(Command::new(&curate).args(["mix", t, "--output", o]));
            let stats: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
            let manifest: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("mix/main/manifest.json")).unwrap())
                    .unwrap();
            let first = stats["phases"][0]["stages"][0].clone();
            let summary = format!(
                "records {} (HTML responses {}), documents in the shards {}, tokens {}; run {w1:.2} s wall / {c1:.2} s CPU, mix {w2:.2} / {c2:.2}\n{}",
                first["docs_in"],
                first["docs_out"],
                manifest["documents"],
                manifest["tokens"],
                profile(&stats, c1 + c2)
            );
            Run {
                wall: w1 + w2,
                cpu: c1 + c2,
                summary,
            }
        });
        let d = best(reps, |r| {
            let out = w.join(format!("dt-{name}-{r}"));
            let (wall, cpu, printed) = timed(
                Command::new(&py)
                    .arg(repo_root().join("benches/peers/datatrove_e2e.py"))
                    .arg(input)
                    .arg("*.warc.gz")
                    .arg(&out)
                    .arg("--tokenizer")
                    .arg(w.join("tokenizer.json"))
                    .arg("--lid")
                    .arg(&lid),
            );
            let j: serde_json::Value =
                serde_json::from_str(printed.lines().last().unwrap_or("{}")).unwrap_or_default();
            Run {
                wall,
                cpu,
                summary: format!(
                    "documents read {}, after filters {}, after dedup {}, tokens {}",
                    j["read"], j["kept_after_filters"], j["kept_after_dedup"], j["tokens"]
                ),
            }
        });
        // Per-core rates over the same count: the HTML pages the input holds (datatrove's read
        // count, which both readers agree on for these files).
        let pages = d
            .summary
            .split("documents read ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        println!("== {name}: {records}");
        println!("curate:    {}", c.summary);
        println!("datatrove: {}", d.summary);
        println!(
            "{:<28} {:>12} {:>12} {:>12} {:>12}",
            "system (1 core)", "CPU s", "docs/CPU-s", "wall s", "docs/s wall"
        );
        for (sys, r) in [("curate", &c), ("datatrove 0.10.1", &d)] {
            println!(
                "{sys:<28} {:>12.2} {:>12.1} {:>12.2} {:>12.1}",
                r.cpu,
                pages / r.cpu,
                r.wall,
                pages / r.wall
            );
        }
        println!(
            "ratio curate / datatrove: {:.1}x CPU, {:.1}x wall (best of {reps} after a warm-up, each)",
            d.cpu / c.cpu,
            d.wall / c.wall
        );
    }
}
