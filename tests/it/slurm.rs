//! The Slurm executor against a real one-node Slurm cluster (slurmctld, slurmd, munge): a run
//! submitted as job arrays produces output byte-identical to a local run.

use std::process::Command;

use crate::common::*;

fn slurm_up() -> bool {
    Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.contains("idle") || s.contains("mix") || s.contains("alloc")
        })
}

/// A folder the Slurm jobs can see, when a cluster is up (else `None`, printed). It lies under
/// the repo, not a private /tmp; `target/` is created first since CARGO_TARGET_DIR may put the
/// build elsewhere.
fn slurm_dir() -> Option<tempfile::TempDir> {
    if !slurm_up() {
        testkit::skip!(None; "no Slurm cluster (../shared/peers/start-slurm.sh starts one)")
    }
    let base = root().join("target");
    std::fs::create_dir_all(&base).unwrap();
    Some(tempfile::tempdir_in(&base).unwrap())
}

#[test]
fn slurm_run_matches_local_run() {
    let Some(d) = slurm_dir() else {
        return;
    };
    write_jsonl(&d.path().join("in.jsonl"), 3000, 21);
    let p = pipeline(
        d.path(),
        "[input]\npaths = [\"in.jsonl\"]\npartition_bytes = 40000\n[output]\npath = \"local\"\n[stages.length]\ntype = \"filter.length\"\nmin_words = 20\n[slurm]\narray_size = 3\ncpus_per_task = 1\nmem = \"400M\"\ntime = \"00:10:00\"\n",
    );
    let ps = p.to_str().unwrap();
    curate_ok(&["run", ps, "-q"]);
    let cluster = d.path().join("cluster");
    let out = curate_ok(&["slurm", ps, "--output", cluster.to_str().unwrap(), "--wait"]);
    assert!(
        out.contains("submitted map0") && out.contains("run complete"),
        "{out}"
    );
    assert_same(
        &outputs(&d.path().join("local")),
        &outputs(&cluster),
        "slurm vs local",
    );
    let logs = std::fs::read_dir(cluster.join("slurm")).unwrap().count();
    assert!(logs >= 4, "job scripts and per-task logs kept");
    let status = curate_ok(&["status", ps, "--output", cluster.to_str().unwrap()]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("map0") && l.split_whitespace().nth(3) == Some("0")),
        "{status}"
    );
}

/// The README's quickstart (extraction, safety, heuristics, URL/exact/MinHash dedup with their
/// global steps, buckets) split into byte-range partitions and run through `curate slurm` as
/// one job array per phase with three tasks each: byte-identical to the local run.
#[test]
fn quickstart_through_slurm_matches_local_run() {
    let Some(d) = slurm_dir() else {
        return;
    };
    let p = root().join("pipelines/quickstart.toml");
    let ps = p.to_str().unwrap();
    let (local, cluster) = (d.path().join("local"), d.path().join("cluster"));
    let split = ["--set", "input.partition_bytes=8192"];
    let mut args = vec!["run", ps, "-q", "--output", local.to_str().unwrap()];
    args.extend(split);
    curate_ok(&args);
    let mut args = vec!["slurm", ps, "--wait", "--output", cluster.to_str().unwrap()];
    args.extend(split);
    args.extend([
        "--set",
        "slurm.array_size=3",
        "--set",
        "slurm.cpus_per_task=1",
        "--set",
        "slurm.mem=\"500M\"",
    ]);
    let out = curate_ok(&args);
    for phase in [
        "submitted map0",
        "submitted minhash.pairs",
        "submitted map3",
        "run complete",
    ] {
        assert!(out.contains(phase), "{phase}: {out}");
    }
    let docs = files(&local, "docs");
    assert!(docs.len() > 1, "several partitions: {:?}", docs.keys());
    assert_same(
        &outputs(&local),
        &outputs(&cluster),
        "quickstart: slurm vs local",
    );
}
