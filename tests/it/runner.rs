//! The runner: determinism across runs, threads and workers; resume after SIGKILL; accounting.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const PIPE: &str = r#"[pipeline]
seed = 1
[input]
paths = ["in.jsonl"]
partition_bytes = 20000
[output]
path = "out"
row_group_rows = 500
[executor]
batch_docs = 64
[stages.length]
type = "filter.length"
min_words = 20
[stages.short_lines]
type = "filter.length"
mode = "tag"
min_lines = 4
"#;

fn setup(n: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), n, 7);
    let p = pipeline(d.path(), PIPE);
    (d, p)
}

fn run_to(p: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        p.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    curate_ok(&args)
}

fn stats(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap()
}

#[test]
fn deterministic_across_runs_and_threads() {
    let (d, p) = setup(3000);
    let a = d.path().join("a");
    let b = d.path().join("b");
    let c = d.path().join("c");
    run_to(&p, &a, &["--threads", "1"]);
    run_to(&p, &b, &["--threads", "2"]);
    run_to(&p, &c, &["--threads", "2"]);
    let oa = outputs(&a);
    assert!(oa.len() > 4, "several partitions written: {:?}", oa.keys());
    assert_same(&oa, &outputs(&b), "1 vs 2 threads");
    assert_same(&oa, &outputs(&c), "two runs");
}

#[test]
fn workers_split_partitions_and_match_a_single_run() {
    let (d, p) = setup(2000);
    let single = d.path().join("single");
    let multi = d.path().join("multi");
    run_to(&p, &single, &[]);
    let ps = p.to_str().unwrap().to_string();
    let ms = multi.to_str().unwrap().to_string();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_curate"))
                .args([
                    "run",
                    &ps,
                    "--output",
                    &ms,
                    "--task",
                    &i.to_string(),
                    "--tasks",
                    "3",
                    "-q",
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    assert_same(&outputs(&single), &outputs(&multi), "3 workers vs one run");
    assert!(
        multi.join("stats.json").exists(),
        "worker 0 merges stats once all are done"
    );
}

#[test]
fn accounting_adds_up() {
    let (d, p) = setup(1500);
    let out = d.path().join("o");
    let printed = run_to(&p, &out, &[]);
    assert!(printed.contains("records read: 1500"), "{printed}");
    let s = stats(&out);
    let stages = s["phases"][0]["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["read", "length", "short_lines"]);
    assert_accounting(&s, "run");
    // Stage k+1 sees what stage k let through.
    assert_eq!(stages[1]["docs_in"], stages[0]["docs_out"]);
    assert_eq!(stages[2]["docs_in"], stages[1]["docs_out"]);
    let dropped = stages[1]["dropped"]["too_few_words"].as_u64().unwrap();
    assert!(dropped > 0 && dropped < 1500);
    // Tag mode keeps documents and counts them as flagged.
    assert!(stages[2]["flagged"]["too_few_lines"].as_u64().unwrap() > 0);
    assert_eq!(stages[2]["docs_in"], stages[2]["docs_out"]);
    assert_eq!(s["phases"][0]["docs_written"], stages[2]["docs_out"]);
}

#[test]
fn byte_ranges_equal_whole_files() {
    let (d, p) = setup(2000);
    let ranged = d.path().join("ranged");
    let whole = d.path().join("whole");
    run_to(&p, &ranged, &[]);
    run_to(&p, &whole, &["--set", "input.partition_bytes=100000000"]);
    let ids = |dir: &Path| -> Vec<String> {
        let mut v = Vec::new();
        for sub in ["docs", "dropped/map0"] {
            let mut files: Vec<_> = std::fs::read_dir(dir.join(sub))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                let bytes = bytes::Bytes::from(std::fs::read(f).unwrap());
                let r =
                    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                        .unwrap()
                        .build()
                        .unwrap();
                for b in r {
                    let b = b.unwrap();
                    let a = b
                        .column_by_name("id")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .unwrap()
                        .clone();
                    v.extend(a.iter().map(|s| s.unwrap().to_string()));
                }
            }
        }
        v.sort();
        v
    };
    let a = ids(&ranged);
    assert_eq!(a.len(), 2000);
    assert_eq!(a, ids(&whole));
    assert!(std::fs::read_dir(ranged.join("docs")).unwrap().count() > 5);
}

#[test]
fn resume_after_sigkill_is_byte_identical() {
    let (d, p) = setup(20000);
    let reference = d.path().join("ref");
    run_to(&p, &reference, &["--threads", "2"]);
    let want = outputs(&reference);
    let total = units_done(&reference);
    let ps = p.to_str().unwrap().to_string();
    // Killed after the first unit, a third and two thirds of the units: each kill lands
    // mid-run by construction, and kill_mid_run asserts it did.
    for (trial, at) in kill_points(total).into_iter().enumerate() {
        let out = d.path().join(format!("killed{trial}"));
        let os = out.to_str().unwrap().to_string();
        let what = format!("trial {trial}");
        let partial = kill_mid_run(
            &["run", &ps, "--output", &os, "-q", "--threads", "2"],
            &out,
            at,
            total,
            &what,
        );
        run_to(&p, &out, &["-q"]);
        assert_same(
            &outputs(&out),
            &want,
            &format!("{what} (killed with {partial} of {total} units done)"),
        );
        let s = stats(&out);
        let read = &s["phases"][0]["stages"][0];
        assert_eq!(
            read["docs_in"].as_u64(),
            Some(20000),
            "every record counted once"
        );
    }
}

#[test]
fn parquet_opens_in_pyarrow_and_duckdb() {
    let Some(py) = python() else {
        testkit::skip!("no test Python (CURATE_PY)")
    };
    let (d, p) = setup(500);
    let out = d.path().join("o");
    run_to(&p, &out, &[]);
    let script = r#"
import sys, glob, pyarrow.parquet as pq, duckdb
files = sorted(glob.glob(sys.argv[1] + "/docs/*.parquet"))
t = pq.read_table(files)
n = duckdb.sql(f"select count(*), count(distinct id), min(\"length.words\") from read_parquet({files!r})").fetchall()[0]
assert t.num_rows == n[0] == n[1], (t.num_rows, n)
assert n[2] >= 20, n
assert str(t.schema.field("crawl_date").type) == "timestamp[ms, tz=UTC]"
print(t.num_rows)
"#;
    let o = Command::new(py)
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let n: usize = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!(n > 100);
}

/// Kills land anywhere in a multi-phase run (map phases, dedup global steps and their
/// barriers): the resumed run equals an uninterrupted one, and the accounting adds up.
#[test]
fn resume_after_sigkill_across_global_steps() {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 6000, 9);
    // Plant exact copies so the dedup stages have work.
    let text = std::fs::read_to_string(d.path().join("in.jsonl")).unwrap();
    let copies: String = text
        .lines()
        .take(300)
        .enumerate()
        .map(|(i, l)| l.replacen("\"id\": \"", &format!("\"id\": \"copy{i}-"), 1) + "\n")
        .collect();
    std::fs::write(d.path().join("in.jsonl"), text + &copies).unwrap();
    let p = pipeline(
        d.path(),
        &format!("{PIPE}[stages.exact]\ntype = \"dedup.exact\"\n[stages.minhash]\ntype = \"dedup.minhash\"\n"),
    );
    let reference = d.path().join("ref");
    run_to(&p, &reference, &["-q"]);
    let want = outputs(&reference);
    assert_accounting(&stats(&reference), "reference");
    let dropped = stage_counts(&stats(&reference), "exact", "dropped")
        .get("duplicate")
        .copied()
        .unwrap_or(0);
    // (copies of documents that fail the length filter never reach exact dedup)
    assert!(dropped > 100, "planted copies found ({dropped})");
    // Three kills spread over the run's units (map phases, dedup global steps and barriers);
    // kill_mid_run asserts each landed mid-run.
    let total = units_done(&reference);
    for (trial, at) in kill_points(total).into_iter().enumerate() {
        let out = d.path().join(format!("killed{trial}"));
        let what = format!("trial {trial}");
        let done = kill_mid_run(
            &[
                "run",
                p.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
                "-q",
            ],
            &out,
            at,
            total,
            &what,
        );
        run_to(&p, &out, &["-q"]);
        let what = format!("{what} (killed with {done} of {total} units done)");
        assert_same(&outputs(&out), &want, &what);
        assert_accounting(&stats(&out), &what);
    }
}
