//! Helpers for tests and benchmarks (not part of the product's path): the onnxruntime library
//! of the test venv, the committed tiny models, `../shared`, and the Python for parity checks.

use std::path::PathBuf;
use std::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("classifiers/ has a parent")
        .to_path_buf()
}

/// A committed test model: `classifiers/testdata/<name>`.
pub fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// `../shared` beside the repository, if present (prints why not).
pub fn shared() -> Option<PathBuf> {
    let p = repo_root().parent()?.join("shared");
    if p.is_dir() {
        Some(p)
    } else {
        testkit::skip("../shared is absent");
        None
    }
}

/// The test venv's Python: `CURATE_PY`, else `~/.cache/curate/venv/bin/python`.
pub fn python() -> Option<PathBuf> {
    let p = std::env::var_os("CURATE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate/venv/bin/python"))
        })?;
    p.exists().then_some(p)
}

/// The test Python if it imports every module (prints why not).
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let Some(py) = python() else {
        testkit::skip!(None; "no test Python (set CURATE_PY)")
    };
    let ok = Command::new(&py)
        .args(["-c", &format!("import {}", modules.join(", "))])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(py)
    } else {
        testkit::skip(format!("{} cannot import {modules:?}", py.display()));
        None
    }
}

/// `libonnxruntime.so`: `ORT_DYLIB_PATH`, else the one in the test venv's `onnxruntime` wheel
/// (skips the calling test, through `testkit::skip`, when there is none).
pub fn ort_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let py = python_with(&["onnxruntime"])?;
    let out = Command::new(py)
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    let dir = PathBuf::from(String::from_utf8_lossy(&out).trim()).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                })
                .collect()
        })
        .unwrap_or_default();
    libs.sort();
    let lib = libs.pop();
    if lib.is_none() {
        testkit::skip(format!("no libonnxruntime.so in {}", dir.display()));
    }
    lib
}

/// Points `ORT_DYLIB_PATH` at the test library so that `load_model` finds it; `None` (with a
/// printed reason) when there is none.
pub fn init_ort() -> Option<PathBuf> {
    let lib = ort_library()?;
    // Tests of one binary share the process: every caller sets the same value.
    std::env::set_var("ORT_DYLIB_PATH", &lib);
    Some(lib)
}

/// Every file under `dir` (relative path -> bytes), for byte-identity checks.
pub fn read_tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(
        base: &std::path::Path,
        d: &std::path::Path,
        out: &mut std::collections::BTreeMap<String, Vec<u8>>,
    ) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).expect("under base");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap_or_default(),
                );
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}
