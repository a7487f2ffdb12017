//! Bad configuration: each class of mistake gets a message naming the key (and line) and exit
//! code 2, before any work starts.

use crate::common::*;

const GOOD: &str = r#"[pipeline]
name = "t"
seed = 3

[input]
paths = ["in.jsonl"]

[output]
path = "out"

[stages.length]
type = "filter.length"
min_words = 5
"#;

fn check_fails(text: &str, extra: &[&str], expect: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 10, 1);
    let p = pipeline(d.path(), text);
    let ps = p.to_str().unwrap();
    for cmd in ["check", "run"] {
        let mut args = vec![cmd, ps];
        args.extend_from_slice(extra);
        let out = curate(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{cmd}: expected exit 2, got {:?}: {err}",
            out.status.code()
        );
        for e in expect {
            assert!(err.contains(e), "{cmd}: message lacks {e:?}: {err}");
        }
        assert!(
            !d.path().join("out").exists(),
            "no work may start on a bad config"
        );
    }
}

#[test]
fn good_config_checks() {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 10, 1);
    let p = pipeline(d.path(), GOOD);
    let out = curate_ok(&["check", p.to_str().unwrap()]);
    assert!(out.contains("partitions: 1"), "{out}");
    assert!(out.contains("length"), "{out}");
    assert!(out.contains("length.words"), "{out}");
}

#[test]
fn unknown_key_names_key_and_line() {
    check_fails(
        &GOOD.replace("min_words = 5", "min_words = 5\nmin_wrods = 3"),
        &[],
        &["pipeline.toml:14", "stages.length.min_wrods"],
    );
    check_fails(
        &GOOD.replace("seed = 3", "seed = 3\ncolour = 1"),
        &[],
        &["pipeline.toml:4", "pipeline.colour"],
    );
}

#[test]
fn wrong_type_names_key_and_line() {
    check_fails(
        &GOOD.replace("min_words = 5", "min_words = \"five\""),
        &[],
        &["pipeline.toml:13", "stages.length.min_words"],
    );
    check_fails(
        &GOOD.replace("seed = 3", "seed = true"),
        &[],
        &["pipeline.toml:3", "pipeline.seed"],
    );
}

#[test]
fn bad_threshold_names_key() {
    check_fails(
        &format!("{GOOD}max_words = 2\n"),
        &[],
        &["stages.length.max_words", "below the minimum"],
    );
}

#[test]
fn missing_input_file() {
    check_fails(
        &GOOD.replace("in.jsonl", "nope.jsonl"),
        &[],
        &["pipeline.toml:6", "input.paths[0]", "nope.jsonl"],
    );
    check_fails(
        GOOD,
        &["--input", "/nonexistent/*.warc.gz"],
        &["--input", "no file matches"],
    );
}

#[test]
fn unknown_stage_type() {
    check_fails(
        &GOOD.replace("filter.length", "filter.lenght"),
        &[],
        &[
            "pipeline.toml:12",
            "stages.length.type",
            "unknown stage type",
        ],
    );
}

#[test]
fn bad_override_is_attributed_to_set() {
    check_fails(
        GOOD,
        &["--set", "stages.length.min_words=many"],
        &["--set stages.length.min_words"],
    );
    check_fails(GOOD, &["--set", "nokey"], &["expected key=value"]);
}

#[test]
fn syntax_error_names_line() {
    check_fails(
        &GOOD.replace("[output]", "[output"),
        &[],
        &["pipeline.toml:8"],
    );
}

#[test]
fn missing_section() {
    check_fails(
        &GOOD.replace("[output]\npath = \"out\"\n", ""),
        &[],
        &["output"],
    );
}

#[test]
fn bad_task_arguments() {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 10, 1);
    let p = pipeline(d.path(), GOOD);
    let out = curate(&["run", p.to_str().unwrap(), "--task", "2", "--tasks", "2"]);
    assert_eq!(out.status.code(), Some(2));
}
