//! Tokenizer tests: token ids against Python `tokenizers` and `tiktoken` on real text, the
//! embedded vocabularies against `tiktoken-rs`. (Shards: `tests/it/shards.rs`.)

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::testdata::{corpus_texts, lingua_sentences, python_with, shared};
use super::*;

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/peers/tokenize_peer.py")
}

/// Texts that reach the corners: code indentation (GPT-NeoX's space tokens), contractions,
/// CRLF, numbers, emoji, combining marks, NFC-decomposed accents, special-token text.
fn edge_texts() -> Vec<String> {
    [
        "def f(x):\n    return x  # two spaces\n\n\n        deep = 1\r\n\tTab",
        "I'm sure they'll've DONE it'S 12345678 times, 3.14159!!!   ",
        "naïve café (decomposed: nai\u{308}ve cafe\u{301}) ﬁ Ⅻ ½ 😀👍🏽 中文字符 日本語テキスト",
        "<|endoftext|> and |||IP_ADDRESS||| and <|padding|> inline",
        "    leading spaces and trailing newlines\n\n\n",
        "ǅemal ʰello HELLO'S hello's x'ſ ſ'S",
        "",
        " ",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn write_texts(texts: &[String], dir: &Path) -> PathBuf {
    let p = dir.join("texts.jsonl");
    let mut f = std::fs::File::create(&p).unwrap();
    for t in texts {
        serde_json::to_writer(&mut f, &serde_json::json!({ "text": t })).unwrap();
        f.write_all(b"\n").unwrap();
    }
    p
}

/// Token ids from the Python peer, one list per text.
fn python_ids(py: &Path, args: &[&str], texts: &Path) -> Vec<Vec<u32>> {
    let out = Command::new(py)
        .arg(peer_script())
        .arg("ids")
        .arg(texts)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn texts_for_parity() -> Option<Vec<String>> {
    let mut texts = corpus_texts(usize::MAX)?;
    texts.extend(edge_texts());
    Some(texts)
}

fn gpt_neo_path() -> Option<PathBuf> {
    let p = shared()?.join("data/tokenizers/gpt-neo-tokenizer.json.gz");
    if !p.exists() {
        testkit::skip!(None; "{} is absent", p.display());
    }
    Some(p)
}

fn load(spec: &str) -> Tokenizer {
    let cfg: TokenizerConfig = toml::from_str(spec).unwrap();
    Tokenizer::from_config(&cfg, Path::new("/")).unwrap()
}

fn assert_same(ours: &[Vec<u32>], theirs: &[Vec<u32>], texts: &[String], what: &str) {
    assert_eq!(ours.len(), theirs.len());
    let bad: Vec<usize> = (0..ours.len()).filter(|&i| ours[i] != theirs[i]).collect();
    if let Some(&i) = bad.first() {
        let n = ours[i]
            .iter()
            .zip(&theirs[i])
            .take_while(|(a, b)| a == b)
            .count();
        panic!(
            "{what}: {} of {} texts differ; text {i} at token {n}: ours {:?} theirs {:?}\n{:?}",
            bad.len(),
            ours.len(),
            &ours[i][n..(n + 5).min(ours[i].len())],
            &theirs[i][n..(n + 5).min(theirs[i].len())],
            texts[i].chars().take(300).collect::<String>()
        );
    }
}

#[test]
fn hf_fast_path_matches_python_tokenizers() {
    let (Some(texts), Some(path)) = (texts_for_parity(), gpt_neo_path()) else {
        return;
    };
    let tok = load(&format!("tokenizer = {:?}", path.display().to_string()));
    assert!(tok.is_fast_path(), "{:?}", tok.fallback_reason());
    assert_eq!(tok.vocab_size(), 50280);
    let mut s = tok.session();
    let ours: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut v = Vec::new();
            s.encode(t, &mut v);
            v
        })
        .collect();
    // The tokenizers crate on the same file is a second, in-process reference.
    let bytes = read_maybe_gz(&path).unwrap();
    let crate_tok = tokenizers::Tokenizer::from_bytes(&bytes).unwrap();
    let theirs: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            crate_tok
                .encode_fast(t.as_str(), false)
                .unwrap()
                .get_ids()
                .to_vec()
        })
        .collect();
    assert_same(&ours, &theirs, &texts, "tokenizers crate");
    let Some(py) = python_with(&["tokenizers"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tf = write_texts(&texts, dir.path());
    let theirs = python_ids(&py, &["--hf", path.to_str().unwrap()], &tf);
    assert_same(&ours, &theirs, &texts, "Python tokenizers");
}

#[test]
fn cl100k_and_o200k_match_tiktoken_rs() {
    let Some(texts) = texts_for_parity() else {
        return;
    };
    for (name, reference) in [
        ("cl100k_base", tiktoken_rs::cl100k_base().unwrap()),
        ("o200k_base", tiktoken_rs::o200k_base().unwrap()),
    ] {
        let tok = load(&format!("tokenizer = '{name}'"));
        let mut s = tok.session();
        let ours: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                let mut v = Vec::new();
                s.encode(t, &mut v);
                v
            })
            .collect();
        let theirs: Vec<Vec<u32>> = texts.iter().map(|t| reference.encode_ordinary(t)).collect();
        assert_same(&ours, &theirs, &texts, name);
    }
}

#[test]
fn tiktoken_files_match_python_tiktoken() {
    let Some(texts) = texts_for_parity() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, pattern) in [("cl100k_base", "cl100k"), ("o200k_base", "o200k")] {
        // The embedded vocabulary written out and loaded back from a path, as any .tiktoken.
        let (vocab, _) = tiktoken::embedded(name).unwrap();
        let file = dir.path().join(format!("{name}.tiktoken"));
        tiktoken::write(&vocab.tokens, &mut std::fs::File::create(&file).unwrap()).unwrap();
        let tok = load(&format!(
            "tokenizer = {:?}\npattern = '{pattern}'\nspecial_tokens = {{ '<|endoftext|>' = {} }}",
            file.display().to_string(),
            vocab.special["<|endoftext|>"]
        ));
        assert_eq!(tok.eos(), Some(vocab.special["<|endoftext|>"]));
        let embedded = load(&format!("tokenizer = '{name}'"));
        let ours: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t)).collect();
        for (t, o) in texts.iter().zip(&ours).take(50) {
            assert_eq!(&embedded.encode(t), o);
        }
        let Some(py) = python_with(&["tiktoken"]) else {
            return;
        };
        let tf = write_texts(&texts, dir.path());
        let theirs = python_ids(
            &py,
            &["--tiktoken", file.to_str().unwrap(), "--encoding", name],
            &tf,
        );
        assert_same(&ours, &theirs, &texts, &format!("Python tiktoken {name}"));
    }
}

/// Llama 3's own vocabulary from the shared file, by path, as `pipelines/llama3.toml` loads it.
fn llama3() -> Option<(Tokenizer, PathBuf)> {
    let path = shared()?.join("data/tokenizers/llama3/tokenizer.model");
    if !path.exists() {
        testkit::skip(format!("{} is absent", path.display()));
        return None;
    }
    let tok = load(&format!(
        "tokenizer = {:?}\npattern = 'llama3'",
        path.display().to_string()
    ));
    Some((tok, path))
}

#[test]
fn llama3_vocabulary_has_its_special_tokens() {
    let Some((tok, _)) = llama3() else { return };
    assert_eq!(tok.vocab_size(), 128_256);
    assert_eq!(tok.bos(), Some(128_000));
    assert_eq!(tok.eos(), Some(128_001));
    assert_eq!(tok.special_id("<|eot_id|>"), Some(128_009));
    assert_eq!(
        tok.special_id("<|reserved_special_token_245|>"),
        Some(128_255)
    );
    let mut ids = Vec::new();
    tok.session().encode_document("Hello world", &mut ids);
    // "Hello", " world" as Llama 3 has them, between BOS and EOS.
    assert_eq!(ids, vec![128_000, 9906, 1917, 128_001]);
    // Special-token text inside a document is ordinary text, never a control token.
    assert!(!tok.encode("a <|end_of_text|> b").contains(&128_001));
}

/// Token ids identical to Python `tiktoken` built as llama-models builds Llama 3's encoding,
/// on sentences in all 75 lingua languages, the 1,080 extracted web pages, source code
/// (HumanEval and this crate's own Rust) and the edge strings.
#[test]
fn llama3_matches_python_tiktoken_in_75_languages() {
    let Some((tok, path)) = llama3() else { return };
    let (Some(sentences), Some(mut texts)) = (lingua_sentences(20), texts_for_parity()) else {
        return;
    };
    let languages: std::collections::BTreeSet<&str> =
        sentences.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(languages.len(), 75);
    texts.extend(sentences.iter().map(|(_, s)| s.clone()));
    let humaneval = shared()
        .unwrap()
        .join("data/benchmarks/humaneval/HumanEval.jsonl.gz");
    let raw = read_maybe_gz(&humaneval).unwrap();
    for line in String::from_utf8(raw).unwrap().lines().take(60) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        texts.push(format!(
            "{}{}",
            v["prompt"].as_str().unwrap(),
            v["canonical_solution"].as_str().unwrap()
        ));
    }
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/tokenize");
    for f in ["bpe.rs", "pretok.rs", "mod.rs"] {
        texts.push(std::fs::read_to_string(src.join(f)).unwrap());
    }
    let mut s = tok.session();
    let ours: Vec<Vec<u32>> = texts
        .iter()
        .map(|t| {
            let mut v = Vec::new();
            s.encode(t, &mut v);
            v
        })
        .collect();
    let Some(py) = python_with(&["tiktoken"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tf = write_texts(&texts, dir.path());
    let theirs = python_ids(
        &py,
        &["--tiktoken", path.to_str().unwrap(), "--encoding", "llama3"],
        &tf,
    );
    assert_same(&ours, &theirs, &texts, "Python tiktoken, Llama 3");
    eprintln!(
        "Llama 3: {} texts, {} tokens identical to Python tiktoken",
        texts.len(),
        ours.iter().map(Vec::len).sum::<usize>()
    );
}

#[test]
fn bos_eos_are_configurable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Tokenizer>();
    let tok = load("tokenizer = 'cl100k_base'");
    assert_eq!((tok.bos(), tok.eos()), (None, Some(100257)));
    let mut ids = Vec::new();
    tok.session().encode_document("Hi", &mut ids);
    assert_eq!(ids.first(), Some(&tok.encode("Hi")[0]));
    assert_eq!(ids.last(), Some(&100257));
    let tok = load("tokenizer = 'cl100k_base'\nbos = '<|endoftext|>'\neos = ''");
    ids.clear();
    tok.session().encode_document("Hi", &mut ids);
    assert_eq!(ids[0], 100257);
    assert_eq!(ids.len(), 1 + tok.encode("Hi").len());
    let cfg: TokenizerConfig = toml::from_str("tokenizer = 'cl100k_base'\neos = '<nope>'").unwrap();
    let e = Tokenizer::from_config(&cfg, Path::new("/")).err().unwrap();
    assert_eq!(e.key, "eos");
    let cfg: TokenizerConfig = toml::from_str("tokenizer = 'missing.tiktoken'").unwrap();
    assert_eq!(
        Tokenizer::from_config(&cfg, Path::new("/"))
            .err()
            .unwrap()
            .key,
        "tokenizer"
    );
}
