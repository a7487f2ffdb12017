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

#[test]
fn slurm_run_matches_local_run() {
    if !slurm_up() {
        eprintln!("skipped: no Slurm cluster (../shared/peers/start-slurm.sh starts one)");
        return;
    }
    // Slurm jobs must see the folder: keep it under the repo (not a private /tmp), and create
    // `target/` first, since CARGO_TARGET_DIR may put the build elsewhere.
    let base = root().join("target");
    std::fs::create_dir_all(&base).unwrap();
    let d = tempfile::tempdir_in(&base).unwrap();
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
