//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared`, if present.
pub fn shared() -> Option<PathBuf> {
    let p = root().parent()?.join("shared");
    p.is_dir().then_some(p)
}

/// Skips a test when `../shared` is absent (through [`testkit::skip`]: a failure in CI, a
/// printed and logged `SKIP` line elsewhere).
#[macro_export]
macro_rules! need_shared {
    () => {
        match $crate::common::shared() {
            Some(p) => p,
            None => testkit::skip!("../shared is absent"),
        }
    };
}

/// The Python with the test requirements (`.ci/requirements.txt`), if installed.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate/venv/bin/python"))
        })?;
    p.exists().then_some(p)
}

/// Runs the curate binary.
pub fn curate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_curate"))
        .args(args)
        .output()
        .expect("run curate")
}

/// Runs curate and asserts success, returning stdout.
pub fn curate_ok(args: &[&str]) -> String {
    let out = curate(args);
    assert!(
        out.status.success(),
        "curate {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir/sub` (relative path -> bytes).
pub fn files(dir: &Path, sub: &str) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|e| e == "tmp") {
                // Half-written files of a killed run: never visible as outputs.
            } else {
                out.insert(
                    p.strip_prefix(base).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &dir.join(sub), &mut out);
    out
}

/// The document outputs of a run (docs and dropped), for byte comparisons.
pub fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = files(dir, "docs");
    m.extend(files(dir, "dropped"));
    m
}

/// Asserts two output trees are byte-identical, naming the differing files.
pub fn assert_same(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>, what: &str) {
    let ka: Vec<&String> = a.keys().collect();
    let kb: Vec<&String> = b.keys().collect();
    assert_eq!(ka, kb, "{what}: different files");
    let diff: Vec<&String> = a
        .iter()
        .filter(|(k, v)| b[*k] != **v)
        .map(|(k, _)| k)
        .collect();
    assert!(diff.is_empty(), "{what}: files differ: {diff:?}");
}

/// Deterministic pseudo-random words (xorshift), for synthetic inputs of any size.
pub struct Words(u64);

const VOCAB: &[&str] = &[
    "the", "river", "station", "bright", "garden", "of", "and", "a", "to", "market", "winter",
    "quiet", "engine", "letter", "mountain", "is", "was", "in", "history", "people", "city",
    "water", "light", "old", "new", "school", "road", "book", "music", "paper", "window", "summer",
    "bread", "coffee", "field", "train", "story", "house", "friend", "morning",
];

impl Words {
    pub fn new(seed: u64) -> Self {
        Words(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn sentence(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(VOCAB[(self.next() % VOCAB.len() as u64) as usize]);
        }
        s.push('.');
        s
    }
}

/// Writes a JSONL file of `n` synthetic documents with varied lengths (some very short).
pub fn write_jsonl(path: &Path, n: usize, seed: u64) {
    let mut w = Words::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let sentences = (w.next() % 12) as usize;
        let text: Vec<String> = (0..sentences)
            .map(|_| {
                let n = 4 + (w.next() % 12) as usize;
                w.sentence(n)
            })
            .collect();
        let (site, month, day) = (w.next() % 50, 1 + w.next() % 9, w.next() % 10);
        let line = serde_json::json!({
            "id": format!("doc-{i:06}"),
            "url": format!("https://example.org/{site}/{i}"),
            "text": text.join("\n"),
            "crawl_date": format!("2024-0{month}-1{day}T10:00:00Z"),
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// Writes a pipeline file into `dir` and returns its path.
pub fn pipeline(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Drops and flags of stage `name` summed over the run's phases.
pub fn stage_counts(
    stats: &serde_json::Value,
    name: &str,
    what: &str,
) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    for ph in stats["phases"].as_array().unwrap() {
        for st in ph["stages"].as_array().unwrap() {
            if st["name"] == name {
                if let Some(o) = st[what].as_object() {
                    for (k, v) in o {
                        *m.entry(k.clone()).or_default() += v.as_u64().unwrap();
                    }
                }
            }
        }
    }
    m
}

/// Every stage of every phase: documents in = kept + dropped.
pub fn assert_accounting(s: &serde_json::Value, what: &str) {
    for ph in s["phases"].as_array().unwrap() {
        for st in ph["stages"].as_array().unwrap() {
            let dropped: u64 = st["dropped"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(
                st["docs_in"].as_u64().unwrap(),
                st["docs_out"].as_u64().unwrap() + dropped,
                "{what}: {} {}",
                ph["name"],
                st["name"]
            );
        }
    }
}

/// Unit markers (`completions/<phase>/<unit>`) a run has written so far.
pub fn units_done(out: &Path) -> usize {
    let Ok(phases) = std::fs::read_dir(out.join("completions")) else {
        return 0;
    };
    phases
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .map(|units| {
            units
                .flatten()
                .filter(|u| u.path().extension().is_none_or(|e| e != "tmp"))
                .count()
        })
        .sum()
}

/// Starts `curate args` (writing to `out`), SIGKILLs it as soon as `at` units are done, and
/// asserts that the kill landed mid-run: the process was still running, died of the signal,
/// and fewer than `total` units (the count of a finished run) were done. Returns the units done.
pub fn kill_mid_run(args: &[&str], out: &Path, at: usize, total: usize, what: &str) -> usize {
    use std::os::unix::process::ExitStatusExt;
    assert!(0 < at && at < total, "{what}: kill point {at} of {total}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_curate"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run curate");
    let t0 = std::time::Instant::now();
    while units_done(out) < at {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("{what}: the run ended ({st}) before {at} of {total} units were done");
        }
        assert!(t0.elapsed().as_secs() < 300, "{what}: no progress");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL
    let st = child.wait().unwrap();
    let done = units_done(out);
    assert!(still_running, "{what}: the run had already exited ({st})");
    assert_eq!(st.signal(), Some(9), "{what}: not killed by SIGKILL ({st})");
    assert!(
        (at..total).contains(&done),
        "{what}: the kill did not land mid-run ({done} of {total} units done)"
    );
    done
}

/// Three kill points spread over a run of `total` units: after the first unit, a third, two thirds.
pub fn kill_points(total: usize) -> Vec<usize> {
    assert!(total >= 4, "too few units ({total}) to kill a run mid-way");
    vec![1, total / 3, 2 * total / 3]
}

/// Every document file under `dir/sub` (sorted by path), read back with its signals.
pub fn read_docs(dir: &Path, sub: &str) -> Vec<stages::Document> {
    let mut out = Vec::new();
    for (path, bytes) in files(dir, sub) {
        if !path.ends_with(".parquet") {
            continue;
        }
        let docs = curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 1024).unwrap();
        out.extend(docs.map(|d| d.unwrap()));
    }
    out
}

/// The text of a gzip file.
pub fn read_gz(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s
}
