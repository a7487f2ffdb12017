//! Shared helpers for the benchmark harnesses: locating ../shared data and the peer Python
//! environments, timing, and printing one comparable line per system.

pub mod classdata;
pub mod neardup;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The repository root (benches/ is one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

/// `../shared` beside the repository, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = repo_root().parent()?.join("shared");
    p.is_dir().then_some(p)
}

/// The input of the benches that read the trafilatura-eval WARC: the file `file_var` names, else
/// `../shared/data/warc/trafilatura-eval-pages.warc.gz`, and the repetitions `reps_var` asks for
/// (else `default_reps`). `None`, with the reason printed, when the data is absent.
pub fn warc_bench_input(
    file_var: &str,
    reps_var: &str,
    default_reps: usize,
) -> Option<(PathBuf, usize)> {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared not found");
        return None;
    };
    let file = std::env::var(file_var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| shared.join("data/warc/trafilatura-eval-pages.warc.gz"));
    if !file.exists() {
        eprintln!("skipped: {} not found", file.display());
        return None;
    }
    let reps = std::env::var(reps_var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_reps)
        .max(1);
    Some((file, reps))
}

/// The peers' Python of one environment (`dt`: datatrove, `ext`: extractors), if installed.
pub fn peer_python(env: &str) -> Option<PathBuf> {
    let base = std::env::var_os("CURATE_PEERS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate-peers"))
        })?;
    let py = base.join(env).join("bin/python");
    py.exists().then_some(py)
}

/// The test/bench Python environment (`.ci/requirements.txt`), if installed.
pub fn test_python() -> Option<PathBuf> {
    let py = std::env::var_os("CURATE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate/venv/bin/python"))
        })?;
    py.exists().then_some(py)
}

/// Runs a Python peer script that prints one JSON object on its last stdout line.
pub fn run_peer(python: &PathBuf, args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new(python).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.lines().last()?).ok()
}

/// Times `f` (best of `reps` runs) and returns seconds.
pub fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Prints one result line: system, items/s, MB/s, and the ratio to a baseline rate.
pub fn report(
    system: &str,
    items: usize,
    bytes: usize,
    secs: f64,
    baseline_items_per_s: Option<f64>,
) {
    let ips = items as f64 / secs;
    let mbs = bytes as f64 / secs / 1e6;
    match baseline_items_per_s {
        Some(b) if b > 0.0 => println!(
            "{system:<40} {ips:>12.1} items/s {mbs:>9.2} MB/s   {:.1}x peer",
            ips / b
        ),
        _ => println!("{system:<40} {ips:>12.1} items/s {mbs:>9.2} MB/s"),
    }
}

/// The data sets' split rule (test: `sha1(group) % 5 == 0`), the one every trainer calls.
pub use curate::split;

/// CPU seconds of the calling thread (the benches compare one thread against one peer process).
pub fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The best wall and thread-CPU seconds of `reps` runs of `f` ([`best_of`] with the CPU clock too) (warm runs: call it once first
/// when the first run should not count).
pub fn best_wall_cpu(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), thread_cpu_seconds());
        f();
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min(thread_cpu_seconds() - c);
    }
    (wall, cpu)
}
