//! Tokenizer tests: token ids against Python `tokenizers` and `tiktoken` on real text, the
//! embedded vocabularies against `tiktoken-rs`, and shards read back by the spec reader.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::megatron::IndexedDataset;
use super::shards::{Layout, Manifest, ShardSetWriter};
use super::testdata::{corpus_texts, lingua_sentences, python_with, shared};
use super::*;
use crate::store::{LocalStore, Store};

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

#[test]
fn shards_read_back_to_the_same_tokens_and_boundaries() {
    let texts = corpus_texts(200).unwrap_or_else(edge_texts);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    for (tokenizer, layout) in [
        ("cl100k_base", Layout::PerBucket),
        ("o200k_base", Layout::Mixed),
    ] {
        let tok = load(&format!("tokenizer = '{tokenizer}'"));
        let out = format!("mix/{tokenizer}");
        let mut w = ShardSetWriter::new(&store, &out, "main", layout, (&tok).into(), 40_000);
        let mut s = tok.session();
        let mut expected: BTreeMap<String, Vec<(String, Vec<u32>)>> = BTreeMap::new();
        for (i, t) in texts.iter().enumerate() {
            let bucket = ["general", "code", "math"][i % 3];
            let mut ids = Vec::new();
            s.encode_document(t, &mut ids);
            w.add_in_language(bucket, ["de", "en"][i % 2], &format!("doc{i}"), &ids)
                .unwrap();
            let key = if layout == Layout::Mixed { "" } else { bucket };
            expected
                .entry(key.to_string())
                .or_default()
                .push((format!("doc{i}"), ids));
        }
        let m = w.finish().unwrap();
        assert_eq!(m.documents, texts.len() as u64);
        assert!(m.shards.len() > 3, "small max size makes several shards");
        assert_eq!(m.buckets.len(), 3);
        // Documents and tokens per language add up to the whole.
        assert_eq!(m.languages.len(), 2);
        assert_eq!(
            m.languages.values().map(|t| t.tokens).sum::<u64>(),
            m.tokens
        );
        assert_eq!(m.languages["de"].documents, texts.len().div_ceil(2) as u64);
        let on_disk: Manifest =
            serde_json::from_slice(&store.read(&format!("{out}/manifest.json")).unwrap()).unwrap();
        assert_eq!(on_disk, m);
        let mut got: BTreeMap<String, Vec<(String, Vec<u32>)>> = BTreeMap::new();
        let mut tokens = 0;
        for sh in &m.shards {
            let ds = IndexedDataset::open(dir.path().join(&sh.prefix)).unwrap();
            assert_eq!(ds.index.dtype, megatron::Dtype::Int32);
            assert_eq!(ds.documents() as u64, sh.documents);
            assert!(sh.bin_bytes <= 40_000 || sh.documents == 1);
            let ids = String::from_utf8(store.read(&sh.ids).unwrap()).unwrap();
            for (d, line) in ids.lines().enumerate() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let toks: Vec<u32> = ds.document(d).iter().map(|&x| x as u32).collect();
                assert_eq!(v["tokens"].as_u64().unwrap() as usize, toks.len());
                // Each document keeps its boundary: EOS last, nowhere else from the writer.
                assert_eq!(toks.last(), tok.eos().as_ref());
                tokens += toks.len() as u64;
                let key = sh.bucket.clone().unwrap_or_default();
                got.entry(key)
                    .or_default()
                    .push((v["id"].as_str().unwrap().to_string(), toks));
            }
        }
        assert_eq!(tokens, m.tokens);
        assert_eq!(got, expected);
    }
}

/// megatron-core's own reader. It needs torch, a multi-GB install that CI cannot fetch (PyPI's
/// Linux wheels pull the CUDA libraries; the CPU-only index is not reachable), so it runs on
/// request: `cargo test -p stages megatron_core -- --ignored` with CURATE_PY pointing at a Python
/// that has both. CI runs `independent_numpy_reader_reads_our_shards` instead.
#[test]
#[ignore = "needs torch + megatron-core: run with --ignored where they are installed"]
fn megatron_core_reads_our_shards() {
    let Some(py) = python_with(&["torch", "megatron.core.datasets.indexed_dataset"]) else {
        testkit::skip!("no Python with torch and megatron-core (CURATE_PY=... to point at one)")
    };
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    let tok = load("tokenizer = 'cl100k_base'");
    let mut w = ShardSetWriter::new(&store, "", "t", Layout::Mixed, (&tok).into(), 1 << 30);
    let mut docs = Vec::new();
    for (i, t) in edge_texts().iter().enumerate() {
        let mut ids = Vec::new();
        tok.session().encode_document(t, &mut ids);
        w.add("general", &i.to_string(), &ids).unwrap();
        docs.push(ids);
    }
    let m = w.finish().unwrap();
    let prefix = dir.path().join(&m.shards[0].prefix);
    let script =
        "import sys, json\nfrom megatron.core.datasets.indexed_dataset import IndexedDataset\n\
                  ds = IndexedDataset(sys.argv[1])\n\
                  print(json.dumps({'docs': ds.document_indices.tolist(), \
                  'seqs': [ds[i].tolist() for i in range(len(ds))]}))";
    let out = Command::new(py)
        .args(["-c", script, prefix.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let seqs: Vec<Vec<u32>> = serde_json::from_value(v["seqs"].clone()).unwrap();
    assert_eq!(seqs, docs);
    let bounds: Vec<usize> = serde_json::from_value(v["docs"].clone()).unwrap();
    assert_eq!(bounds, (0..=docs.len()).collect::<Vec<_>>());
}

/// Reads a `.bin`/`.idx` pair the way megatron-core's `_IndexReader` does (header with
/// `struct`, arrays with `numpy.frombuffer`), written from the published layout, not from
/// curate's reader; checks every invariant megatron-core relies on and prints what it read.
const NUMPY_MEGATRON_READER: &str = r#"
import sys, json, struct
import numpy as np
DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}
prefix = sys.argv[1]
idx = open(prefix + ".idx", "rb").read()
assert idx[:9] == b"MMIDIDX\x00\x00", "magic"
assert struct.unpack_from("<Q", idx, 9)[0] == 1, "version"
dtype = np.dtype(DTYPES[idx[17]])
n_seq, n_doc = struct.unpack_from("<QQ", idx, 18)
off = 34
lengths = np.frombuffer(idx, np.int32, n_seq, off); off += 4 * n_seq
pointers = np.frombuffer(idx, np.int64, n_seq, off); off += 8 * n_seq
doc_idx = np.frombuffer(idx, np.int64, n_doc, off); off += 8 * n_doc
assert off == len(idx), "trailing bytes in .idx"
data = np.memmap(prefix + ".bin", dtype=np.uint8, mode="r")
sizes = lengths.astype(np.int64) * dtype.itemsize
assert (pointers == np.concatenate([[0], np.cumsum(sizes)[:-1]])).all(), "pointers not contiguous"
assert int(sizes.sum()) == len(data), ".bin size"
assert doc_idx[0] == 0 and doc_idx[-1] == n_seq and (np.diff(doc_idx) >= 0).all(), "document index"
seqs = [np.frombuffer(data, dtype, int(n), int(p)).tolist() for n, p in zip(lengths, pointers)]
print(json.dumps({"dtype": dtype.name, "docs": doc_idx.tolist(), "seqs": seqs}))
"#;

/// An independent reader (numpy, see [`NUMPY_MEGATRON_READER`]) opens our shards in both
/// integer types megatron-core picks: u16 for GPT-NeoX's 50K vocabulary, i32 for cl100k's.
#[test]
fn independent_numpy_reader_reads_our_shards() {
    let Some(py) = python_with(&["numpy"]) else {
        return;
    };
    let mut specs = vec![("tokenizer = 'cl100k_base'".to_string(), "int32")];
    if let Some(p) = gpt_neo_path() {
        specs.push((
            format!("tokenizer = {:?}", p.display().to_string()),
            "uint16",
        ));
    }
    for (spec, want_dtype) in specs {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path()).unwrap();
        let tok = load(&spec);
        let mut w = ShardSetWriter::new(&store, "", "t", Layout::Mixed, (&tok).into(), 1 << 30);
        let mut docs = Vec::new();
        for (i, t) in edge_texts().iter().enumerate() {
            let mut ids = Vec::new();
            tok.session().encode_document(t, &mut ids);
            w.add("general", &i.to_string(), &ids).unwrap();
            docs.push(ids);
        }
        let m = w.finish().unwrap();
        let prefix = dir.path().join(&m.shards[0].prefix);
        let out = Command::new(&py)
            .args(["-c", NUMPY_MEGATRON_READER, prefix.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        assert_eq!(v["dtype"], want_dtype, "{spec}");
        let seqs: Vec<Vec<u32>> = serde_json::from_value(v["seqs"].clone()).unwrap();
        assert_eq!(seqs, docs, "{spec}");
        let bounds: Vec<usize> = serde_json::from_value(v["docs"].clone()).unwrap();
        assert_eq!(bounds, (0..=docs.len()).collect::<Vec<_>>(), "{spec}");
    }
}
