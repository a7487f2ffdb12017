//! Runs into an existing output: the fingerprint (input listing, output-deciding config,
//! curate version) decides between resuming and refusing; `--restart` starts over.

use std::path::Path;
use std::process::Command;

use crate::common::*;

const PIPE: &str = r#"[pipeline]
seed = 1
[input]
paths = ["in/*.jsonl"]
partition_bytes = 20000
[output]
path = "out"
[executor]
batch_docs = 64
[stages.length]
type = "filter.length"
min_words = 20
[stages.exact]
type = "dedup.exact"
"#;

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir(d.path().join("in")).unwrap();
    write_jsonl(&d.path().join("in/a.jsonl"), 600, 3);
    write_jsonl(&d.path().join("in/b.jsonl"), 400, 4);
    let p = pipeline(d.path(), PIPE);
    (d, p)
}

fn run(p: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "run",
        p.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    curate(&args)
}

/// Asserts exit 2 and returns stderr.
fn refused(o: &std::process::Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert!(
        err.contains("--restart"),
        "{what}: says how to start over: {err}"
    );
    err
}

/// Everything a run leaves except what a refused run may touch (nothing).
fn snapshot(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut m = files(out, "");
    m.retain(|k, _| !k.starts_with("running/"));
    m
}

#[test]
fn changed_threshold_is_refused_before_any_work() {
    let (d, p) = setup();
    let out = d.path().join("o");
    assert!(run(&p, &out, &["-q"]).status.success());
    let before = snapshot(&out);
    let o = run(&p, &out, &["-q", "--set", "stages.length.min_words=30"]);
    let err = refused(&o, "changed threshold");
    assert!(
        err.contains("stages.length.min_words: 20 -> 30"),
        "names the key and both values: {err}"
    );
    assert!(!err.contains("input:"), "the input did not change: {err}");
    assert_same(&snapshot(&out), &before, "a refused run touches nothing");
    // A new stage is a config change too.
    let p2 = pipeline(
        d.path(),
        &format!("{PIPE}[stages.minhash]\ntype = \"dedup.minhash\"\n"),
    );
    let err = refused(&run(&p2, &out, &["-q"]), "added stage");
    assert!(
        err.contains("stages.minhash: absent -> "),
        "names the added stage: {err}"
    );
}

#[test]
fn changed_input_is_refused_and_named() {
    let (d, p) = setup();
    let out = d.path().join("o");
    assert!(run(&p, &out, &["-q"]).status.success());
    // One file grows, another appears.
    let mut text = std::fs::read_to_string(d.path().join("in/b.jsonl")).unwrap();
    text.push_str(&text.clone());
    std::fs::write(d.path().join("in/b.jsonl"), text).unwrap();
    write_jsonl(&d.path().join("in/c.jsonl"), 50, 5);
    let err = refused(&run(&p, &out, &["-q"]), "changed input");
    assert!(err.contains("input: 1 file(s) added"), "{err}");
    assert!(err.contains("c.jsonl"), "names the new file: {err}");
    assert!(
        err.contains("1 file(s) changed size") && err.contains("b.jsonl"),
        "names the grown file: {err}"
    );
    assert!(!err.contains("config "), "the config did not change: {err}");
    // The same files split differently is an input change as well.
    std::fs::remove_file(d.path().join("in/c.jsonl")).unwrap();
    let err = refused(
        &run(&p, &out, &["-q", "--set", "input.partition_bytes=8192"]),
        "other split",
    );
    assert!(
        err.contains("input.partition_bytes: 20000 -> 8192"),
        "{err}"
    );
}

#[test]
fn same_run_resumes_and_how_to_run_keys_do_not_count() {
    let (d, p) = setup();
    let out = d.path().join("o");
    let reference = d.path().join("ref");
    assert!(run(&p, &reference, &["-q"]).status.success());
    assert!(run(&p, &out, &["-q"]).status.success());
    // A finished run re-run: every unit already complete, same outputs.
    let o = run(
        &p,
        &out,
        &["--threads", "1", "--set", "executor.memory=\"256MiB\""],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("already complete)"), "{stdout}");
    assert!(!stdout.contains(" 0 already complete"), "{stdout}");
    // Half a run (the last map phase's markers gone, as after a kill) resumes to the same bytes.
    let last = files(&out, "completions")
        .keys()
        .filter(|k| k.starts_with("completions/map1/"))
        .cloned()
        .collect::<Vec<_>>();
    assert!(!last.is_empty());
    for k in &last {
        std::fs::remove_file(out.join(k)).unwrap();
    }
    std::fs::remove_file(out.join("stats.json")).unwrap();
    assert!(run(&p, &out, &["-q"]).status.success());
    assert_same(&outputs(&out), &outputs(&reference), "resumed run");
    assert_eq!(
        std::fs::read(out.join("fingerprint.json")).unwrap(),
        std::fs::read(reference.join("fingerprint.json")).unwrap(),
        "the fingerprint does not depend on the output path"
    );
}

#[test]
fn restart_clears_the_output_and_runs_the_new_config() {
    let (d, p) = setup();
    let out = d.path().join("o");
    assert!(run(&p, &out, &["-q"]).status.success());
    let fresh = d.path().join("fresh");
    let set = ["--set", "stages.length.min_words=30"];
    assert!(run(&p, &fresh, &[&["-q"][..], &set[..]].concat())
        .status
        .success());
    let o = run(&p, &out, &[&["--restart"][..], &set[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--restart: deleted"));
    assert_same(
        &outputs(&out),
        &outputs(&fresh),
        "restarted run vs fresh run",
    );
    // The restarted output is a run of the new config: resuming it works.
    assert!(run(&p, &out, &[&["-q"][..], &set[..]].concat())
        .status
        .success());

    // A folder that holds something else is never cleared.
    let other = d.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("thesis.tex"), "precious").unwrap();
    let o = run(&p, &other, &["--restart"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("refusing"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.join("thesis.tex")).unwrap(),
        "precious"
    );
    // --restart is for one worker: N workers would clear each other's work.
    let o = run(&p, &out, &["--restart", "--task", "0", "--tasks", "2"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn workers_agree_and_all_refuse_a_stale_output() {
    let (d, p) = setup();
    let out = d.path().join("o");
    let single = d.path().join("single");
    assert!(run(&p, &single, &["-q"]).status.success());
    // Three workers open a fresh output at once: they record one fingerprint and agree.
    let spawn = |extra: &[&str]| -> Vec<std::process::Child> {
        (0..3)
            .map(|i| {
                let t = i.to_string();
                let mut args = vec![
                    "run",
                    p.to_str().unwrap(),
                    "--output",
                    out.to_str().unwrap(),
                    "-q",
                    "--task",
                    &t,
                    "--tasks",
                    "3",
                ];
                args.extend_from_slice(extra);
                Command::new(env!("CARGO_BIN_EXE_curate"))
                    .args(args)
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect()
    };
    for w in spawn(&[]) {
        let o = w.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_same(&outputs(&out), &outputs(&single), "3 workers vs one run");
    // With another threshold every worker stops with exit 2 (a Slurm array fails fast).
    for w in spawn(&["--set", "stages.length.min_words=25"]) {
        let o = w.wait_with_output().unwrap();
        refused(&o, "worker of a stale output");
    }
}

#[test]
fn outputs_without_a_fingerprint_or_with_a_newer_one_are_refused() {
    let (d, p) = setup();
    let out = d.path().join("o");
    assert!(run(&p, &out, &["-q"]).status.success());
    let fp = out.join("fingerprint.json");
    let saved = std::fs::read(&fp).unwrap();
    // An output started by a curate that wrote no fingerprint: cannot tell, so refuse.
    std::fs::remove_file(&fp).unwrap();
    let err = refused(&run(&p, &out, &["-q"]), "legacy output");
    assert!(err.contains("fingerprint.json"), "{err}");
    // A newer format, and a corrupt file, are named.
    let mut v: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    v["format"] = 99.into();
    std::fs::write(&fp, v.to_string()).unwrap();
    let err = refused(&run(&p, &out, &["-q"]), "newer format");
    assert!(err.contains("newer curate (format 99"), "{err}");
    std::fs::write(&fp, "{not json").unwrap();
    let err = refused(&run(&p, &out, &["-q"]), "corrupt fingerprint");
    assert!(err.contains("fingerprint.json: unreadable"), "{err}");
    // --restart recovers from all of these.
    assert!(run(&p, &out, &["-q", "--restart"]).status.success());
    assert_eq!(std::fs::read(&fp).unwrap(), saved);
}

/// `curate slurm` checks the output before submitting anything (no cluster needed: --dry-run
/// writes the job scripts without calling sbatch).
#[test]
fn slurm_submission_checks_the_fingerprint_first() {
    let (d, p) = setup();
    let out = d.path().join("o");
    let ps = p.to_str().unwrap();
    let os = out.to_str().unwrap();
    curate_ok(&["slurm", ps, "--output", os, "--dry-run"]);
    assert!(
        out.join("fingerprint.json").exists(),
        "recorded at submission"
    );
    let o = curate(&[
        "slurm",
        ps,
        "--output",
        os,
        "--dry-run",
        "--set",
        "stages.length.min_words=25",
    ]);
    let err = refused(&o, "slurm into a stale output");
    assert!(err.contains("stages.length.min_words: 20 -> 25"), "{err}");
    // The workers the scripts start are the local runner: a run of the recorded
    // configuration completes into the same output.
    assert!(run(&p, &out, &["-q"]).status.success());
    // --restart with --dry-run deletes nothing.
    curate_ok(&[
        "slurm",
        ps,
        "--output",
        os,
        "--dry-run",
        "--restart",
        "--set",
        "stages.length.min_words=25",
    ]);
    assert!(out.join("stats.json").exists());
}
