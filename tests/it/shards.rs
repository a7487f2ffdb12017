//! Megatron shards (`curate::mix::shards`, `curate::mix::megatron`) read back: by curate's own
//! reader, by an independent numpy reader written from the published layout, and (on request)
//! by megatron-core itself.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use curate::mix::megatron::{self, IndexedDataset};
use curate::mix::shards::{Layout, Manifest, ShardSetWriter};
use stages::tokenize::{Tokenizer, TokenizerConfig};
use stages::{LocalStore, Store};

use crate::common::*;

/// Texts that reach the corners: code indentation, contractions, CRLF, emoji, combining
/// marks, special-token text, empty and one-character documents.
fn edge_texts() -> Vec<String> {
    [
        "def f(x):\n    return x  # two spaces\n\n\n        deep = 1\r\n\tTab",
        "I'm sure they'll've DONE it'S 12345678 times, 3.14159!!!   ",
        "naïve café (decomposed: nai\u{308}ve cafe\u{301}) ﬁ Ⅻ ½ 😀👍🏽 中文字符 日本語テキスト",
        "<|endoftext|> and |||IP_ADDRESS||| and <|padding|> inline",
        "    leading spaces and trailing newlines\n\n\n",
        "",
        " ",
        "a",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Up to `limit` texts of the extracted-WARC corpus in `../shared`.
fn corpus_texts(limit: usize) -> Option<Vec<String>> {
    let f =
        std::fs::File::open(shared()?.join("data/corpora/warc-extracted-texts.jsonl.gz")).ok()?;
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .ok()?;
    Some(
        s.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["text"].as_str().map(str::to_string))
            .take(limit)
            .collect(),
    )
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

/// The test Python ([`python`]) if it imports `modules`.
fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let probe = format!("import {}", modules.join(", "));
    let py = python().filter(|py| {
        Command::new(py)
            .args(["-c", &probe])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if py.is_none() {
        testkit::skip(format!("no Python with {modules:?} (set CURATE_PY)"));
    }
    py
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
/// request: `cargo test --test it shards::megatron_core -- --ignored` with CURATE_PY pointing at a Python
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
