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
fn dotted_stage_name_is_refused_with_key_and_line() {
    let toml = format!("{GOOD}\n[stages.\"len.gth\"]\ntype = \"filter.length\"\n");
    let line = toml.lines().position(|l| l.contains("len.gth")).unwrap() + 1;
    check_fails(
        &toml,
        &[],
        &[
            &format!("pipeline.toml:{line}"),
            "stages.\"len.gth\"",
            "a stage name is letters, digits",
        ],
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

#[test]
fn only_languages_must_be_a_list_and_per_document() {
    check_fails(
        &GOOD.replace("min_words = 5", "min_words = 5\nonly_languages = \"en\""),
        &[],
        &["stages.length.only_languages", "list of language codes"],
    );
    check_fails(
        &format!("{GOOD}[stages.exact]\ntype = \"dedup.exact\"\nonly_languages = [\"en\"]\n"),
        &[],
        &["stages.exact.only_languages", "per-document stages only"],
    );
}

/// A stage scoped with `only_languages` judges only documents of those languages (from the
/// language-ID stage's `lang` signal); the others pass it, counted in and out.
#[test]
fn only_languages_scopes_a_stage_to_the_language_id_signal() {
    let d = tempfile::tempdir().unwrap();
    let en = "The river was cleaned by the town, and the fish came back to the water after many years of work by the people who live there.";
    let de = "Die Stadt hat den Fluss gereinigt, und die Fische sind nach vielen Jahren der Arbeit der Menschen, die dort leben, in das Wasser zurückgekehrt.";
    let mut lines = String::new();
    for i in 0..6 {
        let text = if i % 2 == 0 { en } else { de };
        lines.push_str(&format!("{{\"id\": \"d{i}\", \"text\": \"{text}\"}}\n"));
    }
    std::fs::write(d.path().join("in.jsonl"), lines).unwrap();
    let p = pipeline(
        d.path(),
        "[input]\npaths = [\"in.jsonl\"]\n[output]\npath = \"out\"\nformat = \"jsonl\"\n[stages.langid]\ntype = \"classify.langid\"\n[stages.long_en]\ntype = \"filter.length\"\nmin_words = 1000\nonly_languages = [\"en\"]\n",
    );
    let plan = curate_ok(&["check", p.to_str().unwrap()]);
    assert!(plan.contains("(only en)"), "{plan}");
    curate_ok(&["run", p.to_str().unwrap(), "-q"]);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("out/stats.json")).unwrap()).unwrap();
    let st = stats["phases"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "long_en")
        .unwrap()
        .clone();
    assert_eq!(st["docs_in"], 6, "{st}");
    assert_eq!(
        st["dropped"]["too_few_words"], 3,
        "the English documents: {st}"
    );
    assert_eq!(st["docs_out"], 3, "the German documents pass: {st}");
}

/// `[report]` is strict: an unknown key is refused with its line, a known one is used.
#[test]
fn report_section_refuses_unknown_keys() {
    check_fails(
        &format!("{GOOD}\n[report]\nbins = 20\nexamples = 5\n"),
        &[],
        &["pipeline.toml:17", "report.examples", "unknown field"],
    );
    check_fails(
        &format!("{GOOD}\n[report]\nbins = \"many\"\n"),
        &[],
        &["pipeline.toml:16", "report.bins"],
    );
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 10, 1);
    let p = pipeline(
        d.path(),
        &format!("{GOOD}\n[report]\nbins = 12\nexamples_per_reason = 1\n"),
    );
    curate_ok(&["check", p.to_str().unwrap()]);
}

/// `[mix]` is validated by `check` (and `run`), before any work, not first by `curate mix`
/// after the run: an unknown planner key, a bad value, a mix naming a stage that does not exist.
#[test]
fn mix_section_is_validated_before_the_run() {
    let mix = "\n[mix]\ntokenizer = \"cl100k_base\"\n\n[mix.main]\ngeneral = 0.5\nmath = 0.5\n";
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 10, 1);
    let p = pipeline(d.path(), &format!("{GOOD}{mix}"));
    let out = curate_ok(&["check", p.to_str().unwrap()]);
    let listed = out.lines().find(|l| l.starts_with("mix main: buckets"));
    assert!(
        listed.is_some_and(|l| l.contains("general") && l.contains("math")),
        "{out}"
    );
    check_fails(
        &format!("{GOOD}{mix}max_repeat = 2\n"),
        &[],
        &["pipeline.toml:21", "mix.main.max_repeat"],
    );
    check_fails(
        &format!("{GOOD}{mix}layout = \"zigzag\"\n"),
        &[],
        &["pipeline.toml:21", "mix.main.layout", "zigzag"],
    );
    check_fails(
        &format!("{GOOD}{mix}ignore_stages = [\"lenght\"]\n"),
        &[],
        &["ignore_stages[0]", "no stage named \"lenght\""],
    );
}
