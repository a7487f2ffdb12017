//! Test helpers: real texts and files from `../shared`, and the Python used for parity checks.

use std::io::Read;
use std::path::PathBuf;

/// `../shared` beside the repository root, if present.
pub fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if p.is_dir() {
        Some(p)
    } else {
        testkit::skip("../shared is absent");
        None
    }
}

/// The records of a gzipped JSONL file (skips, with its path, when the file is absent).
pub fn jsonl_gz_records(path: &std::path::Path) -> Option<Vec<serde_json::Value>> {
    let Ok(f) = std::fs::File::open(path) else {
        testkit::skip!(None; "{} is absent", path.display())
    };
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .ok()?;
    Some(
        s.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    )
}

/// The records of the extracted-WARC corpus (`id`, `url`, `text`, ...).
pub fn corpus_records() -> Option<Vec<serde_json::Value>> {
    jsonl_gz_records(&shared()?.join("data/corpora/warc-extracted-texts.jsonl.gz"))
}

/// Up to `limit` texts of the extracted-WARC corpus.
pub fn corpus_texts(limit: usize) -> Option<Vec<String>> {
    Some(
        corpus_records()?
            .iter()
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .take(limit)
            .collect(),
    )
}

/// The first `per_language` sentences of each of lingua's 75 test languages, with the code.
pub fn lingua_sentences(per_language: usize) -> Option<Vec<(String, String)>> {
    let dir = shared()?.join("data/langid/lingua-testdata");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        testkit::skip(format!("{} is absent", dir.display()));
        return None;
    };
    let mut langs: Vec<String> = rd
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    langs.sort();
    let mut out = Vec::new();
    for lang in langs {
        let f = std::fs::File::open(dir.join(&lang).join("sentences.txt.gz")).ok()?;
        let mut s = String::new();
        flate2::read::GzDecoder::new(f)
            .read_to_string(&mut s)
            .ok()?;
        out.extend(
            s.lines()
                .filter(|l| !l.trim().is_empty())
                .take(per_language)
                .map(|l| (lang.clone(), l.to_string())),
        );
    }
    Some(out)
}

/// A Python with the given modules importable: CURATE_PY, the test venv, or a peer env.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("CURATE_PY") {
        candidates.push(p.into());
    }
    if let Some(h) = &home {
        candidates.push(h.join(".cache/curate/venv/bin/python"));
    }
    let peers = std::env::var_os("CURATE_PEERS")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".cache/curate-peers")));
    if let Some(p) = peers {
        candidates.push(p.join("ext/bin/python"));
        candidates.push(p.join("dt/bin/python"));
    }
    let probe = format!("import {}", modules.join(", "));
    for py in candidates {
        if !py.exists() {
            continue;
        }
        let ok = std::process::Command::new(&py)
            .args(["-c", &probe])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(py);
        }
    }
    testkit::skip(format!("no Python with {modules:?} (set CURATE_PY)"));
    None
}
