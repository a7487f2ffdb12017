//! Parquet input (`format = "parquet"`): FineWeb-style files written by pyarrow and DuckDB
//! from real extracted text (`../shared/data/corpora`), re-filtered end to end; row-group
//! partitions of a file larger than the memory budget; resume and determinism; bad files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Real extracted texts (1,080 pages) and the test Python, or a skip.
fn sources() -> Option<(PathBuf, PathBuf)> {
    let Some(shared) = shared() else {
        testkit::skip("../shared is absent");
        return None;
    };
    let Some(py) = python() else {
        testkit::skip("no test Python (CURATE_PY)");
        return None;
    };
    Some((
        shared.join("data/corpora/warc-extracted-texts.jsonl.gz"),
        py,
    ))
}

/// Runs `scripts/make_parquet_input.py` into `out`; returns the number of documents.
fn make(src: &Path, py: &Path, out: &Path, args: &[&str]) -> usize {
    let o = Command::new(py)
        .arg(root().join("scripts/make_parquet_input.py"))
        .arg(src)
        .arg(out)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "make_parquet_input.py {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// A length filter and a Gopher repetition filter: a real re-filtering.
const FILTERS: &str = "[stages.length]
type = \"filter.length\"
min_words = 80
[stages.repetition]
type = \"filter.gopher_repetition\"
";

fn pipeline_for(dir: &Path, input: &str, extra_input: &str, executor: &str) -> PathBuf {
    pipeline_with(dir, input, extra_input, executor, FILTERS)
}

fn pipeline_with(
    dir: &Path,
    input: &str,
    extra_input: &str,
    executor: &str,
    stages: &str,
) -> PathBuf {
    let text = format!(
        r#"[pipeline]
seed = 5
[input]
paths = ["{input}"]
{extra_input}
[output]
path = "out"
row_group_rows = 200
[executor]
batch_docs = 64
{executor}
{stages}"#
    );
    let p = dir.join(format!(
        "pipeline-{}.toml",
        input.replace(['/', '*', '.'], "_")
    ));
    std::fs::write(&p, text).unwrap();
    p
}

fn run(p: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        p.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    curate_ok(&args);
}

fn stats(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap()
}

/// Kept documents of a run by id: (crawl date, text, metadata).
type Kept = BTreeMap<String, (Option<i64>, String, BTreeMap<String, String>)>;

fn kept(out: &Path) -> Kept {
    let mut m = BTreeMap::new();
    for (path, bytes) in files(out, "docs") {
        for d in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 256).unwrap() {
            let d = d.unwrap();
            let t = d.text().to_string();
            assert!(
                m.insert(d.id.clone(), (d.crawl_date, t, d.metadata))
                    .is_none(),
                "{} written twice",
                d.id
            );
        }
    }
    m
}

fn read_stage(out: &Path) -> serde_json::Value {
    let s = stats(out);
    assert_accounting(&s, "parquet input");
    s["phases"][0]["stages"][0].clone()
}

/// A FineWeb-style set (3 files, FineWeb's columns, 4 row groups each) re-filtered by `curate
/// run`: every row is read, metadata columns reach the output, dates map, and the kept set
/// equals the one from the same documents fed as JSONL.
#[test]
fn fineweb_set_refiltered_like_the_same_jsonl() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let n = make(
        &src,
        &py,
        d.path(),
        &["--files", "3", "--row-group-rows", "100"],
    );
    let pq = pipeline_for(d.path(), "fineweb/*.parquet", "", "");
    let js = pipeline_for(d.path(), "same.jsonl", "", "");
    run(&pq, &d.path().join("pq"), &[]);
    run(&js, &d.path().join("js"), &[]);
    let rs = read_stage(&d.path().join("pq"));
    assert_eq!(rs["docs_in"].as_u64(), Some(n as u64), "{rs}");
    assert_eq!(rs["docs_out"].as_u64(), Some(n as u64), "{rs}");
    let (a, b) = (kept(&d.path().join("pq")), kept(&d.path().join("js")));
    assert!(
        a.len() > 100 && a.len() < n,
        "a real filter: {} of {n}",
        a.len()
    );
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same kept set as JSONL"
    );
    for (id, (date, text, meta)) in &a {
        let (jdate, jtext, jmeta) = &b[id];
        assert_eq!((date, text), (jdate, jtext), "{id}");
        assert!(date.is_some(), "{id}: the date column maps to crawl_date");
        for k in [
            "dump",
            "date",
            "file_path",
            "language",
            "language_score",
            "token_count",
        ] {
            assert!(meta.contains_key(k), "{id}: metadata lacks {k}: {meta:?}");
        }
        assert_eq!(meta, jmeta, "{id}: metadata as from JSONL");
    }
}

/// Files written by DuckDB read like files written by pyarrow: the same kept documents.
#[test]
fn duckdb_and_pyarrow_files_give_the_same_run() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let n = make(&src, &py, &a, &["--files", "2", "--limit", "600"]);
    let m = make(
        &src,
        &py,
        &b,
        &["--files", "2", "--limit", "600", "--writer", "duckdb"],
    );
    assert_eq!(n, m);
    for dir in [&a, &b] {
        run(
            &pipeline_for(dir, "fineweb/*.parquet", "", ""),
            &dir.join("out"),
            &[],
        );
        assert_eq!(
            read_stage(&dir.join("out"))["docs_in"].as_u64(),
            Some(n as u64)
        );
    }
    let (ka, kb) = (kept(&a.join("out")), kept(&b.join("out")));
    assert!(!ka.is_empty());
    assert_eq!(ka, kb, "duckdb vs pyarrow files");
}

/// Every codec writers commonly use reads to the same kept documents (pyarrow and DuckDB write
/// Snappy by default; Spark and others gzip, LZ4, Brotli or none).
#[test]
fn every_common_codec_reads_the_same() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for codec in ["zstd", "snappy", "gzip", "lz4", "brotli", "none"] {
        let dir = d.path().join(codec);
        let n = make(&src, &py, &dir, &["--limit", "150", "--compression", codec]);
        run(
            &pipeline_for(&dir, "fineweb/*.parquet", "", ""),
            &dir.join("out"),
            &["-q"],
        );
        assert_eq!(
            read_stage(&dir.join("out"))["docs_in"].as_u64(),
            Some(n as u64),
            "{codec}: every row read"
        );
        runs.push((codec, kept(&dir.join("out"))));
    }
    assert!(!runs[0].1.is_empty());
    for (codec, k) in &runs[1..] {
        assert_eq!(k, &runs[0].1, "{codec} vs zstd");
    }
}

/// Peak resident memory (KiB) of `curate args`, measured by the test Python around it.
fn peak_rss_kib(py: &Path, args: &[&str]) -> u64 {
    let script = "import resource, subprocess, sys\n\
                  r = subprocess.run(sys.argv[1:], capture_output=True)\n\
                  assert r.returncode == 0, r.stderr.decode()\n\
                  print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
    // One malloc arena: glibc's per-thread arenas (a reader thread per partition) each keep
    // their freed memory, which would measure the allocator instead of the live memory.
    let o = Command::new(py)
        .env("MALLOC_ARENA_MAX", "1")
        .args(["-c", script, env!("CARGO_BIN_EXE_curate")])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// A file larger than the executor's memory budget is split into partitions by row group and
/// streams: the run's peak memory grows by less than the budget over a run of a quarter of
/// it, where reading the file whole would add its size.
#[test]
fn large_file_streams_by_row_group_under_the_memory_budget() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let (big, small) = (d.path().join("big"), d.path().join("small"));
    let n = make(
        &src,
        &py,
        &big,
        &[
            "--copies",
            "4",
            "--compression",
            "none",
            "--row-group-rows",
            "200",
        ],
    );
    // The baseline: the same rows per row group, a quarter of the file (the same steady
    // state of batches, queue and output row groups).
    make(
        &src,
        &py,
        &small,
        &[
            "--limit",
            "1000",
            "--compression",
            "none",
            "--row-group-rows",
            "200",
        ],
    );
    let budget: u64 = 8 << 20;
    let size = std::fs::metadata(big.join("fineweb/000.parquet"))
        .unwrap()
        .len();
    assert!(
        size > 2 * budget,
        "the file ({size} bytes) exceeds the budget"
    );
    let exec = "memory = \"8MiB\"\nqueue_batches = 2";
    let input = "partition_bytes = \"4MiB\"";
    let peak = |dir: &Path| {
        // The length filter only: its allocations do not vary from run to run, so the
        // comparison measures the reader.
        let stages = "[stages.length]\ntype = \"filter.length\"\nmin_words = 80\n";
        let p = pipeline_with(dir, "fineweb/000.parquet", input, exec, stages);
        let out = dir.join("out");
        let kib = peak_rss_kib(
            &py,
            &[
                "run",
                p.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "--threads",
                "1",
                "-q",
            ],
        );
        (kib * 1024, out)
    };
    let (base, _) = peak(&small);
    let (used, out) = peak(&big);
    let parts: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("partitions.json")).unwrap()).unwrap();
    assert!(
        parts.len() >= 4,
        "split by row group: {} partitions",
        parts.len()
    );
    let mut next = 0;
    for p in &parts {
        let (a, b) = (
            p["row_groups"][0].as_u64().unwrap(),
            p["row_groups"][1].as_u64().unwrap(),
        );
        assert_eq!(a, next, "row-group ranges are contiguous: {parts:?}");
        assert!(b > a);
        next = b;
    }
    assert_eq!(
        next,
        (n as u64).div_ceil(200),
        "every row group in one partition"
    );
    // Their byte spans cover the file's data pages once.
    let spans: u64 = parts
        .iter()
        .map(|p| p["end"].as_u64().unwrap() - p["start"].as_u64().unwrap())
        .sum();
    assert!(
        spans <= size && spans > size * 9 / 10,
        "{spans} of {size} bytes"
    );
    assert_eq!(read_stage(&out)["docs_in"].as_u64(), Some(n as u64));
    assert!(
        used < base + budget,
        "peak RSS {used} bytes for a {size}-byte file vs {base} for a quarter of it: over the {budget}-byte budget"
    );
}

/// Runs of Parquet input are deterministic across threads, and a run killed mid-way resumes
/// to byte-identical outputs.
#[test]
fn parquet_input_resumes_after_kill_and_is_deterministic() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    make(
        &src,
        &py,
        d.path(),
        &["--files", "3", "--row-group-rows", "100"],
    );
    // 4096 bytes per partition: one row group each, 12 partitions over 3 files.
    let p = pipeline_for(d.path(), "fineweb/*.parquet", "partition_bytes = 4096", "");
    let reference = d.path().join("ref");
    run(&p, &reference, &["--threads", "1"]);
    let want = outputs(&reference);
    let again = d.path().join("again");
    run(&p, &again, &["--threads", "2"]);
    assert_same(&want, &outputs(&again), "1 vs 2 threads");
    let total = units_done(&reference);
    assert!(total >= 12, "{total} units");
    let ps = p.to_str().unwrap();
    for (trial, at) in kill_points(total).into_iter().enumerate() {
        let out = d.path().join(format!("killed{trial}"));
        let os = out.to_str().unwrap();
        let what = format!("trial {trial}");
        kill_mid_run(
            &["run", ps, "--output", os, "-q", "--threads", "1"],
            &out,
            at,
            total,
            &what,
        );
        run(&p, &out, &["-q"]);
        assert_same(&outputs(&out), &want, &what);
    }
}

/// Truncated files, files that are not Parquet and files without the text column are
/// skipped and counted by reason, a row group that fails to decode by row; every other row
/// is read.
#[test]
fn bad_parquet_files_are_counted_not_fatal() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let n = make(
        &src,
        &py,
        d.path(),
        &[
            "--files",
            "1",
            "--limit",
            "300",
            "--row-group-rows",
            "100",
            "--bad",
        ],
    );
    let text = r#"[input]
paths = ["fineweb/*.parquet", "bad/*.parquet"]
[output]
path = "out"
[stages.length]
type = "filter.length"
min_words = 80
"#;
    let p = pipeline(d.path(), text);
    let out = d.path().join("out");
    run(&p, &out, &[]);
    let rs = read_stage(&out);
    let dropped = rs["dropped"].as_object().unwrap();
    assert_eq!(dropped["not_parquet"].as_u64(), Some(2), "{rs}");
    assert_eq!(dropped["no_text_column"].as_u64(), Some(1), "{rs}");
    // The scrambled copy of the good file loses the rows of its broken row group only.
    let bad = dropped["bad_row_group"].as_u64().unwrap();
    assert!(bad > 0 && bad < n as u64, "{rs}");
    assert_eq!(rs["docs_in"].as_u64(), Some(2 * n as u64 + 3), "{rs}");
    assert_eq!(rs["docs_out"].as_u64(), Some(2 * n as u64 - bad), "{rs}");
}

/// Parquet column keys are checked with their line: Parquet-only keys on another format, a
/// metadata column listed twice, an empty column name.
#[test]
fn parquet_column_keys_are_checked_with_their_line() {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 5, 1);
    for (input, key, line) in [
        (
            "format = \"jsonl\"\ndate_field = \"day\"",
            "input.date_field",
            4,
        ),
        (
            "metadata_fields = [\"dump\",\n  \"dump\"]",
            "input.metadata_fields[1]",
            4,
        ),
        ("text_field = \"\"", "input.text_field", 3),
    ] {
        let text = format!("[input]\npaths = [\"in.jsonl\"]\n{input}\n[output]\npath = \"out\"\n");
        let p = pipeline(d.path(), &text);
        let o = curate(&["check", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{input}: {err}");
        assert!(
            err.contains(&format!("pipeline.toml:{line}: {key}: ")),
            "{input}: {err}"
        );
    }
}

/// Parquet input from S3 (moto): the plan reads footers and the reader row groups by range
/// requests; the run keeps the same documents as the same files read locally.
#[test]
fn parquet_input_from_s3_matches_local() {
    let Some((src, py)) = sources() else { return };
    let m = crate::need_moto!();
    let d = tempfile::tempdir().unwrap();
    make(
        &src,
        &py,
        d.path(),
        &["--files", "2", "--limit", "600", "--row-group-rows", "100"],
    );
    let files: Vec<String> = (0..2)
        .map(|i| {
            d.path()
                .join(format!("fineweb/{i:03}.parquet"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    m.boto(
        "s3.create_bucket(Bucket='data')\nfor f in sys.argv[1:]:\n  s3.upload_file(f, 'data', 'fineweb/' + f.split('/')[-1])",
        &files.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let p = pipeline_for(d.path(), "fineweb/*.parquet", "partition_bytes = 4096", "");
    let local = d.path().join("local");
    run(&p, &local, &["-q"]);
    let remote = d.path().join("remote");
    let o = m.curate(&[
        "run",
        p.to_str().unwrap(),
        "--input",
        "s3://data/fineweb/",
        "--output",
        remote.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let parts = std::fs::read_to_string(remote.join("partitions.json")).unwrap();
    assert!(
        parts.contains("row_groups"),
        "split by row group on S3: {parts}"
    );
    assert_eq!(
        read_stage(&remote)["docs_in"].as_u64(),
        Some(600),
        "every row read from S3"
    );
    let (a, b) = (kept(&local), kept(&remote));
    assert!(!a.is_empty());
    assert_eq!(a, b, "S3 vs local");
}

/// Columns of other names and types map by config: a large-string text, integer ids, a
/// dictionary-encoded URL, a millisecond timestamp date; only `metadata_fields` are kept,
/// nested values as text.
#[test]
fn typed_and_renamed_columns_map_by_config() {
    let Some((src, py)) = sources() else { return };
    let d = tempfile::tempdir().unwrap();
    let script = r#"
import gzip, json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = [json.loads(l) for l in gzip.open(sys.argv[1], "rt")][:200]
n = len(rows)
pq.write_table(pa.table({
    "content": pa.array([r["text"] for r in rows], pa.large_string()),
    "doc_id": pa.array(range(1000, 1000 + n), pa.int64()),
    "link": pa.array([r["url"] for r in rows]).dictionary_encode(),
    "fetched": pa.array([(1700000000 + 3600 * i) * 1000 for i in range(n)], pa.timestamp("ms", tz="UTC")),
    "tags": pa.array([["web", str(i % 3)] for i in range(n)], pa.list_(pa.string())),
    "score": pa.array([i / 8 for i in range(n)], pa.float32()),
    "unused": pa.array(["x"] * n),
}), sys.argv[2], row_group_size=50)
print(json.dumps([r["url"] for r in rows]))
"#;
    let file = d.path().join("typed.parquet");
    let o = Command::new(&py)
        .args(["-c", script])
        .arg(&src)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let urls: Vec<String> = serde_json::from_slice(&o.stdout).unwrap();
    let text = r#"[input]
paths = ["typed.parquet"]
text_field = "content"
id_field = "doc_id"
url_field = "link"
date_field = "fetched"
metadata_fields = ["tags", "score"]
[output]
path = "out"
[stages.length]
type = "filter.length"
min_words = 1
"#;
    let p = pipeline(d.path(), text);
    let out = d.path().join("out");
    run(&p, &out, &["-q"]);
    let mut seen = 0;
    let mut all = files(&out, "docs");
    all.extend(files(&out, "dropped"));
    for (path, bytes) in all {
        for doc in curate::io::parquet::ParquetDocs::open(bytes.into(), &path, 64).unwrap() {
            let doc = doc.unwrap();
            let i: usize = doc.id.parse::<usize>().unwrap() - 1000;
            assert_eq!(doc.url, urls[i], "{}", doc.id);
            assert_eq!(doc.crawl_date, Some(1_700_000_000 + 3600 * i as i64));
            assert_eq!(
                doc.metadata.keys().collect::<Vec<_>>(),
                vec!["score", "tags"],
                "{}",
                doc.id
            );
            assert_eq!(
                doc.metadata["score"].parse::<f32>().unwrap(),
                i as f32 / 8.0
            );
            assert_eq!(doc.metadata["tags"], format!("[web, {}]", i % 3));
            seen += 1;
        }
    }
    assert_eq!(seen, urls.len());
}
