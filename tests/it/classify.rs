//! `curate train fasttext`, `curate classify`, and the `classify.fasttext` / `classify.langid`
//! stages in a real pipeline run, on the fixture `classifiers/tests/data/tiny-topics.jsonl`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

use crate::common::*;

fn fixture() -> PathBuf {
    root().join("classifiers/tests/data/tiny-topics.jsonl")
}

const SMALL: &[&str] = &[
    "--dim",
    "16",
    "--buckets",
    "5000",
    "--min-count",
    "1",
    "--epoch",
    "40",
];

fn train(out: &Path, inputs: &[&str]) -> Vec<u8> {
    let mut args = vec!["train", "fasttext", "--out", out.to_str().unwrap()];
    args.extend_from_slice(inputs);
    args.extend_from_slice(SMALL);
    curate_ok(&args);
    std::fs::read(out).unwrap()
}

/// The fixture as Parquet (`id`, `text`, `label` string columns), rows in file order.
fn fixture_parquet(path: &Path) {
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(fixture())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let col = |k: &str| {
        Arc::new(StringArray::from(
            rows.iter()
                .map(|r| r[k].as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
        )) as arrow::array::ArrayRef
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![col("id"), col("text"), col("label")]).unwrap();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn train_is_deterministic_and_reads_jsonl_and_parquet() {
    let d = tempfile::tempdir().unwrap();
    let fx = fixture();
    let a = train(&d.path().join("a.bin"), &["--input", fx.to_str().unwrap()]);
    let b = train(&d.path().join("b.bin"), &["--input", fx.to_str().unwrap()]);
    assert_eq!(a, b, "same data and seed, different model bytes");
    let pq = d.path().join("fx.parquet");
    fixture_parquet(&pq);
    let c = train(&d.path().join("c.bin"), &["--input", pq.to_str().unwrap()]);
    assert_eq!(
        a, c,
        "Parquet and JSONL of the same rows train the same model"
    );
    let e = curate(&[
        "train",
        "fasttext",
        "--input",
        "/nonexistent.jsonl",
        "--out",
        "x.bin",
    ]);
    assert_eq!(e.status.code(), Some(2));
    let e = curate(&[
        "train",
        "fasttext",
        "--input",
        fx.to_str().unwrap(),
        "--out",
        "x.bin",
        "--loss",
        "nope",
    ]);
    assert_eq!(e.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&e.stderr).contains("--loss"));
}

#[test]
fn classify_writes_one_line_per_input_line() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("m.bin");
    train(&model, &["--input", fixture().to_str().unwrap()]);
    let input = d.path().join("in.jsonl");
    std::fs::write(
        &input,
        [
            r#"{"id": "a", "text": "Simmer the soup, season it with salt and pepper, add garlic."}"#,
            r#"{"id": "b", "text": "The striker scored a goal in the final."}"#,
            "not json",
            r#"{"id": "c", "body": "no text field"}"#,
            r#"{"id": "d", "text": "Run the compiler on the server and read the log file."}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let out = d.path().join("out.jsonl");
    curate_ok(&[
        "classify",
        "--model",
        model.to_str().unwrap(),
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    let labels: Vec<&str> = lines
        .iter()
        .map(|l| l["label"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(labels, ["cooking", "sport", "-", "-", "computing"]);
    assert_eq!(lines[2]["skipped"], "invalid_json");
    assert_eq!(lines[3]["skipped"], "missing_text");
    for l in [&lines[0], &lines[1], &lines[4]] {
        let scores = l["scores"].as_object().unwrap();
        assert_eq!(scores.len(), 3);
        let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        let best = scores
            .iter()
            .max_by(|a, b| a.1.as_f64().unwrap().total_cmp(&b.1.as_f64().unwrap()))
            .unwrap()
            .0;
        assert_eq!(best, l["label"].as_str().unwrap());
    }
    let bad = curate(&[
        "classify",
        "--model",
        "/nonexistent.bin",
        input.to_str().unwrap(),
        "--out",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn pipeline_with_langid_and_fasttext_stages() {
    let d = tempfile::tempdir().unwrap();
    let model = d.path().join("topics.bin");
    train(&model, &["--input", fixture().to_str().unwrap()]);
    let docs = [
        ("en1", "Knead the dough and bake the bread until the crust is brown and crisp."),
        ("en2", "The goalkeeper saved a penalty and the team won the cup final in the stadium."),
        ("de1", "Der Torwart hielt einen Elfmeter und die Mannschaft gewann das Pokalfinale im Stadion."),
        ("en3", "The server writes every request to a log file and the program reads it back."),
    ];
    let jsonl: String = docs
        .iter()
        .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
        .collect();
    std::fs::write(d.path().join("in.jsonl"), jsonl).unwrap();
    let pipe = pipeline(
        d.path(),
        r#"[pipeline]
seed = 1
[input]
paths = ["in.jsonl"]
[output]
path = "out"
[stages.langid]
languages = ["en"]
[stages.topic]
type = "classify.fasttext"
model = "topics.bin"
label = "computing"
min_score = 0.5
mode = "tag"
"#,
    );
    let out = d.path().join("out");
    curate_ok(&[
        "run",
        pipe.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    let text = stats.to_string();
    assert!(text.contains("language_not_allowed"), "{text}");
    // Kept documents carry the signals as typed columns.
    let mut rows = Vec::new();
    for e in std::fs::read_dir(out.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "parquet") {
            let f = std::fs::File::open(&p).unwrap();
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            for b in r {
                let b = b.unwrap();
                let s = |name: &str| {
                    let c = b
                        .column_by_name(name)
                        .unwrap_or_else(|| panic!("no column {name}"));
                    arrow::compute::cast(c, &DataType::Utf8).unwrap()
                };
                let (ids, langs, tops, cooking) =
                    (s("id"), s("lang"), s("topic.label"), s("topic.cooking"));
                let col = |a: &arrow::array::ArrayRef, i| {
                    a.as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap()
                        .value(i)
                        .to_string()
                };
                for i in 0..b.num_rows() {
                    rows.push((
                        col(&ids, i),
                        col(&langs, i),
                        col(&tops, i),
                        col(&cooking, i),
                    ));
                }
                assert_eq!(
                    b.schema()
                        .field_with_name("topic.cooking")
                        .unwrap()
                        .data_type(),
                    &DataType::Float32
                );
            }
        }
    }
    rows.sort();
    let summary: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("en1", "en", "cooking"),
            ("en2", "en", "sport"),
            ("en3", "en", "computing")
        ]
    );
    // A model path that does not exist is a configuration error naming the key.
    let bad = pipeline(
        d.path(),
        "[input]\npaths = [\"in.jsonl\"]\n[output]\npath = \"o2\"\n[stages.topic]\ntype = \"classify.fasttext\"\nmodel = \"missing.bin\"\n",
    );
    let o = curate(&["run", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stages.topic.model"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
