//! `curate slurm`: submit a run to Slurm as one job array per phase, chained with `afterok`.
//!
//! Each array task runs `curate run PIPELINE --phase P --task $SLURM_ARRAY_TASK_ID --tasks N`,
//! so a cluster run executes exactly the phases, partitions and commit protocol of a local run
//! and produces byte-identical output. A final one-task job merges the stats and writes the
//! report. Re-running the command (or `--wait` with retries) resubmits; completed units are
//! skipped by their markers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context};
use stages::Purpose;

use super::{load_plan, CliError, PipelineArgs};
use crate::config::raw::SlurmSection;

#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Write the job scripts and print the sbatch commands without submitting.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait until the run finishes, resubmitting failed phases up to slurm.retries times.
    #[arg(long)]
    pub wait: bool,
    /// Delete the output's previous run before submitting (see `curate run --restart`).
    #[arg(long)]
    pub restart: bool,
}

fn sh_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn abs(p: &str) -> String {
    if crate::config::plan::is_uri(p) {
        return p.to_string();
    }
    std::path::absolute(p)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| p.to_string())
}

/// One submitted phase's job.
struct Submitted {
    job: String,
}

fn sbatch(script: &Path, dependency: Option<&str>, dry: bool) -> anyhow::Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(d) = dependency {
        cmd.arg(format!("--dependency=afterok:{d}"));
        cmd.arg("--kill-on-invalid-dep=yes");
    }
    cmd.arg(script);
    if dry {
        println!("{cmd:?}");
        return Ok(format!("DRY{}", script.display()));
    }
    let out = cmd
        .output()
        .context("running sbatch (is Slurm installed?)")?;
    if !out.status.success() {
        return Err(anyhow!(
            "sbatch {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err(anyhow!("sbatch printed no job id"));
    }
    Ok(id)
}

fn script(
    s: &SlurmSection,
    job_name: &str,
    array: Option<usize>,
    logs: &Path,
    command: &str,
) -> String {
    let mut h = String::from("#!/bin/bash\n");
    h.push_str(&format!("#SBATCH --job-name={job_name}\n"));
    if let Some(n) = array {
        let conc = s
            .max_concurrent
            .map(|m| format!("%{m}"))
            .unwrap_or_default();
        h.push_str(&format!("#SBATCH --array=0-{}{conc}\n", n - 1));
        h.push_str(&format!(
            "#SBATCH --output={}/{job_name}-%A_%a.log\n",
            logs.display()
        ));
    } else {
        h.push_str(&format!(
            "#SBATCH --output={}/{job_name}-%j.log\n",
            logs.display()
        ));
    }
    h.push_str(&format!(
        "#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n#SBATCH --time={}\n",
        s.cpus_per_task, s.mem, s.time
    ));
    if let Some(p) = &s.partition {
        h.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(a) = &s.account {
        h.push_str(&format!("#SBATCH --account={a}\n"));
    }
    for e in &s.extra_args {
        h.push_str(&format!("#SBATCH {e}\n"));
    }
    h.push_str("set -euo pipefail\n");
    h.push_str(command);
    h.push('\n');
    h
}

pub fn run(a: SlurmArgs) -> Result<(), CliError> {
    let plan = load_plan(&a.pipeline, Purpose::Select)?;
    let s = plan.config.raw.slurm.clone();
    if s.array_size == 0 || s.cpus_per_task == 0 {
        return Err(CliError::Config(
            "slurm.array_size and slurm.cpus_per_task must be positive".into(),
        ));
    }
    let curate = match &s.curate {
        Some(c) => c.clone(),
        None => std::env::current_exe()
            .map_err(|e| CliError::Failed(e.into()))?
            .to_string_lossy()
            .into_owned(),
    };
    // Every array task opens the same output and checks the same fingerprint; checking (and
    // recording) it here turns a stale output into one exit-2 error at submission instead of
    // a failed job array.
    if a.restart && !a.dry_run {
        let n = crate::runner::clear_output(&plan).map_err(super::engine_error)?;
        if n > 0 {
            println!("--restart: deleted {n} file(s) under {}", plan.output);
        }
    }
    if !(a.restart && a.dry_run) {
        crate::runner::Runner::new(&plan, Default::default()).map_err(super::engine_error)?;
    }
    let logs: PathBuf = match &s.log_dir {
        Some(d) => plan.base_dir.join(d),
        None if !plan.output.starts_with("s3://") => PathBuf::from(&plan.output).join("slurm"),
        None => std::env::temp_dir().join(format!("curate-slurm-{}", plan.name)),
    };
    let logs = PathBuf::from(abs(&logs.to_string_lossy()));
    std::fs::create_dir_all(&logs)
        .map_err(|e| CliError::Failed(anyhow!("{}: {e}", logs.display())))?;

    // The common arguments every job passes on: absolute paths, the same overrides.
    let mut common = vec![sh_quote(&abs(&a.pipeline.pipeline.to_string_lossy()))];
    common.push(format!("--output {}", sh_quote(&abs(&plan.output))));
    if let Some(i) = &a.pipeline.input {
        common.push(format!("--input {}", sh_quote(&abs(i))));
    }
    for o in &a.pipeline.set {
        common.push(format!("--set {}", sh_quote(o)));
    }
    let common = common.join(" ");
    let n = s.array_size;

    let mut attempt = 0;
    loop {
        let mut submitted: Vec<Submitted> = Vec::new();
        let mut prev: Option<String> = None;
        for phase in &plan.phases {
            let name = phase.name();
            let job_name = format!("curate-{}-{}", plan.name, name.replace('.', "-"));
            let cmd = format!(
                "exec {} run {common} --phase {} --task \"$SLURM_ARRAY_TASK_ID\" --tasks {n} --threads {} -q",
                sh_quote(&curate),
                sh_quote(&name),
                s.cpus_per_task
            );
            let path = logs.join(format!("{}.sbatch", name.replace('.', "-")));
            std::fs::write(&path, script(&s, &job_name, Some(n), &logs, &cmd))
                .map_err(|e| CliError::Failed(e.into()))?;
            let job = sbatch(&path, prev.as_deref(), a.dry_run)?;
            println!("submitted {name}: job {job} ({n} array tasks)");
            prev = Some(job.clone());
            submitted.push(Submitted { job });
        }
        let fin_cmd = format!("exec {} run {common} --finalize -q", sh_quote(&curate));
        let path = logs.join("finalize.sbatch");
        std::fs::write(
            &path,
            script(
                &s,
                &format!("curate-{}-finalize", plan.name),
                None,
                &logs,
                &fin_cmd,
            ),
        )
        .map_err(|e| CliError::Failed(e.into()))?;
        let job = sbatch(&path, prev.as_deref(), a.dry_run)?;
        println!("submitted finalize: job {job}");
        submitted.push(Submitted { job });
        println!("logs and job scripts: {}", logs.display());
        if !a.wait || a.dry_run {
            return Ok(());
        }
        wait_for(&submitted)?;
        let runner = crate::runner::Runner::new(&plan, Default::default())
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
        if runner
            .all_done()
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?
            && runner.store().exists("stats.json").unwrap_or(false)
        {
            println!("run complete: {}", plan.output);
            return Ok(());
        }
        attempt += 1;
        if attempt > s.retries {
            return Err(CliError::Failed(anyhow!(
                "run incomplete after {} submission(s); see `curate status` and the logs in {}",
                attempt,
                logs.display()
            )));
        }
        eprintln!(
            "run incomplete: resubmitting (attempt {} of {}); completed units are skipped",
            attempt + 1,
            s.retries + 1
        );
    }
}

/// Waits until none of the jobs is pending or running.
fn wait_for(jobs: &[Submitted]) -> Result<(), CliError> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.job.as_str()).collect();
    let list = ids.join(",");
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %T", "-j", &list])
            .output()
            .map_err(|e| CliError::Failed(e.into()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let live = text.lines().filter(|l| !l.trim().is_empty()).count();
        if live == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}
