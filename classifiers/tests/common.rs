//! Helpers of the classifier tests: the repository, ../shared, and a Python with fastText.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `../shared/<rel>` if present.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let p = repo_root().parent()?.join("shared").join(rel);
    p.exists().then_some(p)
}

/// A Python that imports `fasttext`: `CURATE_PY`, the test venv, or the datatrove peer venv.
pub fn fasttext_python() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let candidates = [
        std::env::var_os("CURATE_PY").map(PathBuf::from),
        Some(home.join(".cache/curate/venv/bin/python")),
        Some(home.join(".cache/curate-peers/dt/bin/python")),
    ];
    candidates.into_iter().flatten().find(|py| {
        py.exists()
            && Command::new(py)
                .args(["-c", "import fasttext"])
                .output()
                .is_ok_and(|o| o.status.success())
    })
}

/// Runs `benches/peers/fasttext_peer.py` with `args`; panics with its stderr on failure.
pub fn run_peer(py: &Path, args: &[&str]) -> String {
    let script = repo_root().join("benches/peers/fasttext_peer.py");
    let out = Command::new(py).arg(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "fasttext_peer.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a gzip file to a string.
pub fn gunzip(path: &Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}
