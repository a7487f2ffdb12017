//! Tokenization speed: curate's tokenizers beside Python `tokenizers` and `tiktoken` (and their
//! Rust crates) on the same texts, one thread each, in one run.
//!
//! Texts: the 1,080 extracted WARC pages of ../shared/data/corpora. Each system encodes every
//! text one by one; best of 3 passes; curate starts each pass with a fresh session (cold
//! piece cache), so caching within the corpus counts, caching across passes does not.
//! Run: cargo bench -p curate-benches --bench tokenize

use std::io::{Read, Write};
use std::path::Path;

use curate_benches::{best_of, peer_python, run_peer, shared_dir, test_python};
use stages::tokenize::{tiktoken, Tokenizer, TokenizerConfig};

fn line(system: &str, tokens: usize, bytes: usize, secs: f64, base: Option<f64>) -> f64 {
    let tps = tokens as f64 / secs;
    let ratio = base
        .map(|b| format!("   {:.2}x Python", tps / b))
        .unwrap_or_default();
    println!(
        "{system:<44} {:>10.0} tokens/s {:>7.2} MB/s{ratio}",
        tps,
        bytes as f64 / secs / 1e6
    );
    tps
}

fn ours(tok: &Tokenizer, texts: &[String], cache: bool) -> (usize, f64) {
    let mut n = 0;
    let secs = best_of(3, || {
        let mut s = if cache {
            tok.session()
        } else {
            tok.session_without_cache()
        };
        let mut ids = Vec::new();
        n = 0;
        for t in texts {
            ids.clear();
            s.encode(t, &mut ids);
            n += ids.len();
        }
    });
    (n, secs)
}

/// CPU seconds of this thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Llama 3's vocabulary (the shared file) against Python tiktoken built as llama-models
/// builds it, on the extracted pages and on lingua's sentences in 75 languages: best of 3,
/// wall and CPU seconds of the encoding thread.
fn llama3(shared: &Path, pages: &[String], dir: &Path) {
    let model = shared.join("data/tokenizers/llama3/tokenizer.model");
    if !model.exists() {
        eprintln!("skipped Llama 3: {} is absent", model.display());
        return;
    }
    let mut sentences = Vec::new();
    let lingua = shared.join("data/langid/lingua-testdata");
    let mut langs: Vec<_> = std::fs::read_dir(&lingua)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    langs.sort();
    for l in &langs {
        let Ok(f) = std::fs::File::open(l.join("sentences.txt.gz")) else {
            continue;
        };
        let mut t = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut t)
            .is_ok()
        {
            sentences.extend(t.lines().map(str::to_string));
        }
    }
    let cfg: TokenizerConfig = serde_json::from_value(
        serde_json::json!({ "tokenizer": model.to_str().unwrap(), "pattern": "llama3" }),
    )
    .unwrap();
    let tok = Tokenizer::from_config(&cfg, Path::new("/")).unwrap();
    for (set, texts) in [
        ("extracted pages", pages),
        ("lingua sentences, 75 languages", &sentences[..]),
    ] {
        let file = dir.join("llama3-texts.jsonl");
        let mut f = std::fs::File::create(&file).unwrap();
        for t in texts {
            serde_json::to_writer(&mut f, &serde_json::json!({ "text": t })).unwrap();
            f.write_all(b"\n").unwrap();
        }
        drop(f);
        let bytes: usize = texts.iter().map(|t| t.len()).sum();
        println!(
            "Llama 3 (128,256 ids), {set}: {} texts, {:.1} MB",
            texts.len(),
            bytes as f64 / 1e6
        );
        let (mut best_wall, mut best_cpu, mut n) = (f64::INFINITY, f64::INFINITY, 0);
        for _ in 0..3 {
            let (w0, c0) = (std::time::Instant::now(), thread_cpu());
            let mut s = tok.session();
            let mut ids = Vec::new();
            n = 0;
            for t in texts {
                ids.clear();
                s.encode(t, &mut ids);
                n += ids.len();
            }
            best_wall = best_wall.min(w0.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(thread_cpu() - c0);
        }
        let py = test_python().or_else(|| peer_python("ext")).and_then(|py| {
            let script = curate_benches::repo_root().join("benches/peers/tokenize_peer.py");
            run_peer(
                &py,
                &[
                    script.to_str()?,
                    "bench",
                    "--tiktoken",
                    model.to_str()?,
                    "--encoding",
                    "llama3",
                    file.to_str()?,
                ],
            )
        });
        println!(
            "  {:<42} {:>10.0} tokens/s wall {:>10.0} tokens/s CPU  ({n} tokens, {:.3} s wall, {:.3} s CPU)",
            "curate",
            n as f64 / best_wall,
            n as f64 / best_cpu,
            best_wall,
            best_cpu
        );
        if let Some(v) = py {
            let (pn, pw, pc) = (
                v["tokens"].as_f64().unwrap_or(0.0),
                v["secs"].as_f64().unwrap_or(f64::NAN),
                v["cpu_secs"].as_f64().unwrap_or(f64::NAN),
            );
            println!(
                "  {:<42} {:>10.0} tokens/s wall {:>10.0} tokens/s CPU  ({pn} tokens, {pw:.3} s wall, {pc:.3} s CPU)",
                "Python tiktoken (same file and pattern)",
                pn / pw,
                pn / pc
            );
            println!(
                "  curate / tiktoken: {:.2}x wall, {:.2}x CPU (target >= 1.5x){}",
                pw / best_wall,
                pc / best_cpu,
                if pn as usize == n {
                    ""
                } else {
                    "  TOKEN COUNTS DIFFER"
                }
            );
        } else {
            println!("  (no Python with tiktoken: peer not measured)");
        }
    }
}

fn python_rate(args: &[&str]) -> Option<f64> {
    let py = test_python()
        .or_else(|| peer_python("dt"))
        .or_else(|| peer_python("ext"))?;
    let script = curate_benches::repo_root().join("benches/peers/tokenize_peer.py");
    let mut full = vec![script.to_str()?, "bench"];
    full.extend_from_slice(args);
    let v = run_peer(&py, &full)?;
    v["tokens_per_s"].as_f64()
}

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let mut raw = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut raw)
    .unwrap();
    let texts: Vec<String> = raw
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let dir = std::env::temp_dir().join(format!("curate-tokenize-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let texts_file = dir.join("texts.jsonl");
    {
        let mut f = std::fs::File::create(&texts_file).unwrap();
        for t in &texts {
            serde_json::to_writer(&mut f, &serde_json::json!({ "text": t })).unwrap();
            f.write_all(b"\n").unwrap();
        }
    }
    let tf = texts_file.to_str().unwrap();
    println!(
        "tokenize: {} texts, {:.1} MB, one thread per system",
        texts.len(),
        bytes as f64 / 1e6
    );

    // Hugging Face tokenizer.json (GPT-NeoX BPE).
    let neo = shared.join("data/tokenizers/gpt-neo-tokenizer.json.gz");
    let cfg: TokenizerConfig =
        serde_json::from_value(serde_json::json!({ "tokenizer": neo.to_str().unwrap() })).unwrap();
    let tok = Tokenizer::from_config(&cfg, Path::new("/")).unwrap();
    let py = python_rate(&["--hf", neo.to_str().unwrap(), tf]);
    let (n, secs) = ours(&tok, &texts, true);
    line("curate, gpt-neo tokenizer.json", n, bytes, secs, py);
    let (n, secs) = ours(&tok, &texts, false);
    line("curate, same, no piece cache", n, bytes, secs, py);
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&neo).unwrap())
        .read_to_end(&mut json)
        .unwrap();
    let hf = tokenizers::Tokenizer::from_bytes(&json).unwrap();
    let mut n = 0;
    let secs = best_of(3, || {
        n = texts
            .iter()
            .map(|t| hf.encode_fast(t.as_str(), false).unwrap().len())
            .sum();
    });
    line(
        "tokenizers crate (fancy-regex), same file",
        n,
        bytes,
        secs,
        py,
    );
    if let Some(p) = py {
        println!("{:<44} {:>10.0} tokens/s", "Python tokenizers (peer)", p);
    }

    // tiktoken cl100k_base.
    let cfg: TokenizerConfig =
        serde_json::from_value(serde_json::json!({ "tokenizer": "cl100k_base" })).unwrap();
    let tok = Tokenizer::from_config(&cfg, Path::new("/")).unwrap();
    let (vocab, _) = tiktoken::embedded("cl100k_base").unwrap();
    let file = dir.join("cl100k_base.tiktoken");
    tiktoken::write(&vocab.tokens, &mut std::fs::File::create(&file).unwrap()).unwrap();
    let py = python_rate(&[
        "--tiktoken",
        file.to_str().unwrap(),
        "--encoding",
        "cl100k_base",
        tf,
    ]);
    let (n, secs) = ours(&tok, &texts, true);
    let cl = line("curate, cl100k_base", n, bytes, secs, py);
    let (n, secs) = ours(&tok, &texts, false);
    line("curate, cl100k_base, no piece cache", n, bytes, secs, py);
    let rs = tiktoken_rs::cl100k_base().unwrap();
    let mut n = 0;
    let secs = best_of(3, || {
        n = texts.iter().map(|t| rs.encode_ordinary(t).len()).sum();
    });
    line("tiktoken-rs, cl100k_base", n, bytes, secs, py);
    if let Some(p) = py {
        println!("{:<44} {:>10.0} tokens/s", "Python tiktoken (peer)", p);
    }
    println!(
        "targets: gpt-neo >= 1.5x Python tokenizers; cl100k >= 1M tokens/s per core ({})",
        if cl >= 1e6 { "met" } else { "NOT met" }
    );

    llama3(&shared, &texts, &dir);

    // o200k_base, for the record.
    let cfg: TokenizerConfig =
        serde_json::from_value(serde_json::json!({ "tokenizer": "o200k_base" })).unwrap();
    let tok = Tokenizer::from_config(&cfg, Path::new("/")).unwrap();
    let (n, secs) = ours(&tok, &texts, true);
    line("curate, o200k_base", n, bytes, secs, None);
    let _ = std::fs::remove_dir_all(&dir);
}
