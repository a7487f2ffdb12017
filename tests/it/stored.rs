//! `curate inspect` and the run report read a run's stored documents through the one Parquet
//! reader; what they show is checked against DuckDB reading the same files (union by name:
//! the `dropped/` files of different phases carry different signal columns).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Three phases (a dedup stage between map phases), drops in the first and the last, so that
/// the dropped files of the last phase hold signals the first phase's do not.
const PIPE: &str = r#"[pipeline]
name = "stored-test"
[input]
paths = ["pages.jsonl"]
partition_bytes = 300000
[output]
path = "out"
write_dropped = true
row_group_rows = 64
[stages.langid]
type = "classify.langid"
[stages.length]
type = "filter.length"
min_words = 60
[stages.gopher_quality]
type = "filter.gopher_quality"
mode = "tag"
[stages.exact]
type = "dedup.exact"
[stages.long]
type = "filter.length"
max_words = 900
"#;

/// Runs DuckDB over the run's files; returns its stdout (one JSON value per line).
fn duckdb(py: &Path, out: &Path, sql: &str) -> Vec<serde_json::Value> {
    let script = r#"
import duckdb, json, sys
out, sql = sys.argv[1], sys.argv[2]
con = duckdb.connect()
for t in ("docs", "dropped"):
    con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{out}/{t}/**/*.parquet', union_by_name=true)")
for row in con.execute(sql).fetchall():
    print(json.dumps(row[0] if len(row) == 1 else list(row), default=str))
"#;
    let o = Command::new(py)
        .args(["-c", script])
        .arg(out)
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "duckdb {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A run of the pipeline over 400 real pages; the test Python; or a skip.
fn run() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let Some(shared) = shared() else {
        testkit::skip!(None; "../shared is absent")
    };
    let Some(py) = python() else {
        testkit::skip!(None; "no test Python (CURATE_PY)")
    };
    let d = tempfile::tempdir().unwrap();
    let gz = std::fs::read(shared.join("data/corpora/warc-extracted-texts.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let mut pages: Vec<String> = text.lines().take(400).map(str::to_string).collect();
    // Exact copies (same text and URL, their own ids) for the dedup stage to drop.
    let copies: Vec<String> = pages
        .iter()
        .step_by(25)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"] = format!("{}-copy", v["id"].as_str().unwrap()).into();
            v.to_string()
        })
        .collect();
    pages.extend(copies);
    std::fs::write(d.path().join("pages.jsonl"), pages.join("\n") + "\n").unwrap();
    let p = pipeline(d.path(), PIPE);
    curate_ok(&["run", p.to_str().unwrap(), "-q"]);
    Some((d, py))
}

fn inspect_json(out: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["inspect", out.to_str().unwrap(), "--json"];
    a.extend_from_slice(args);
    curate_ok(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn inspect_and_report_show_what_duckdb_reads() {
    let Some((d, py)) = run() else { return };
    let out = d.path().join("out");
    let ids = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };

    // --where over kept and over dropped documents, in stored order, limited.
    for (table, flag, cond, limit) in [
        (
            "docs",
            None,
            "gopher_quality.word_count < 300 AND lang = 'en'",
            7,
        ),
        (
            "dropped",
            Some("--dropped"),
            "drop_stage = 'long' OR exact.duplicate",
            9,
        ),
        ("dropped", Some("--dropped"), "length.words < 50", 4),
    ] {
        let quoted = cond
            .replace("gopher_quality.word_count", "\"gopher_quality.word_count\"")
            .replace("exact.duplicate", "\"exact.duplicate\"")
            .replace("length.words", "\"length.words\"");
        let want: Vec<String> = duckdb(
            &py,
            &out,
            &format!("SELECT id FROM {table} WHERE {quoted} ORDER BY source_file, source_offset, id LIMIT {limit}"),
        )
        .into_iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
        assert_eq!(want.len(), limit, "{cond}: enough rows to compare");
        let mut args = vec!["--where", cond, "--limit"];
        let l = limit.to_string();
        args.push(&l);
        args.extend(flag);
        let got = inspect_json(&out, &args);
        assert_eq!(ids(&got), want, "inspect --where {cond:?}");
        // Each shown document carries every signal its row has (also those of later phases).
        for doc in &got {
            let id = doc["id"].as_str().unwrap();
            let row = &duckdb(
                &py,
                &out,
                &format!(
                    "SELECT to_json(t) FROM {table} t WHERE id = '{}'",
                    id.replace('\'', "''")
                ),
            )[0];
            let row: serde_json::Value = serde_json::from_str(row.as_str().unwrap()).unwrap();
            let want: BTreeSet<&str> = row
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, v)| {
                    !curate::io::parquet::BASE_COLUMNS.contains(&k.as_str()) && !v.is_null()
                })
                .map(|(k, _)| k.as_str())
                .collect();
            let have: BTreeSet<&str> = doc["signals"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(have, want, "signals of {id}");
        }
    }
    // A dropped document of the last phase has the dedup stage's signals.
    let late = inspect_json(
        &out,
        &[
            "--where",
            "drop_stage = 'long'",
            "--dropped",
            "--limit",
            "1",
        ],
    );
    assert!(
        late[0]["signals"]["exact.duplicate"].is_boolean(),
        "{:?}",
        late[0]["signals"]
    );
    // --url finds a dropped document when no kept one has it; an unknown column is exit 2.
    let url = late[0]["url"].as_str().unwrap();
    assert_eq!(
        ids(&inspect_json(&out, &["--url", url, "--limit", "1"])),
        ids(&late)
    );
    let bad = curate(&["inspect", out.to_str().unwrap(), "--where", "nosuch > 1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nosuch"));

    // The report: per numeric signal, documents with a value, kept and dropped (bar titles
    // "a..b: N kept|dropped"); per string signal, its value counts.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let cards = cards(&html);
    let mut checked = 0;
    for (title, bars) in &cards {
        if let Some(col) = title.strip_suffix(": most frequent values") {
            let q = format!("\"{col}\"");
            let want: BTreeMap<String, u64> = duckdb(
                &py,
                &out,
                &format!("SELECT x, n FROM (SELECT {q} AS x, count(*) AS n FROM (SELECT {q} FROM docs UNION ALL SELECT {q} FROM dropped) WHERE {q} IS NOT NULL GROUP BY 1 ORDER BY n DESC, x LIMIT 15)"),
            )
            .into_iter()
            .map(|v| (v[0].as_str().unwrap().to_string(), v[1].as_u64().unwrap()))
            .collect();
            let have: BTreeMap<String, u64> = bars
                .iter()
                .map(|b| {
                    let (k, n) = b.rsplit_once(": ").unwrap();
                    (k.to_string(), n.parse().unwrap())
                })
                .collect();
            assert_eq!(have, want, "value counts of {col}");
            checked += 1;
        } else if let Some((col, n)) = title
            .strip_suffix(" documents)")
            .and_then(|t| t.rsplit_once(" ("))
        {
            let n: u64 = n.parse().unwrap();
            let (mut kept, mut dropped) = (0u64, 0u64);
            for b in bars {
                let (_, c) = b.rsplit_once(": ").unwrap();
                let (c, which) = c.split_once(' ').unwrap();
                let c: u64 = c.parse().unwrap();
                if which == "kept" {
                    kept += c;
                } else {
                    dropped += c;
                }
            }
            let q = format!("\"{col}\"");
            let count = |t: &str| -> u64 {
                duckdb(
                    &py,
                    &out,
                    &format!("SELECT count({q}) FROM {t} WHERE isfinite(CAST({q} AS DOUBLE))"),
                )[0]
                .as_u64()
                .unwrap()
            };
            assert_eq!((kept, dropped), (count("docs"), count("dropped")), "{col}");
            assert_eq!(n, kept + dropped, "{col}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} signal cards checked");
}

/// The report's SVG cards: (title, the `<title>` of each bar).
fn cards(html: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for part in html.split("class=\"title\">").skip(1) {
        let Some((title, rest)) = part.split_once("</text>") else {
            continue;
        };
        let end = rest.find("</svg>").unwrap_or(rest.len());
        let bars: Vec<String> = rest[..end]
            .split("<title>")
            .skip(1)
            .filter_map(|t| t.split_once("</title>").map(|x| x.0.to_string()))
            .collect();
        out.push((title.replace("&amp;", "&"), bars));
    }
    out
}
