//! `curate run`: execute a pipeline.

use std::io::IsTerminal;

use anyhow::anyhow;
use stages::Purpose;

use super::{load_plan, CliError, PipelineArgs};
use crate::runner::{RunOptions, Runner};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// This worker's index (0-based) among --tasks workers.
    #[arg(long, default_value_t = 0)]
    pub task: usize,
    /// Number of workers sharing the run.
    #[arg(long, default_value_t = 1)]
    pub tasks: usize,
    /// Run only this phase (map0, <stage>.<step>, ...); see `curate check`.
    #[arg(long)]
    pub phase: Option<String>,
    /// Worker threads (default: executor.threads, else one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run no phase: merge the stats and write the report if every unit is complete.
    #[arg(long)]
    pub finalize: bool,
    /// Delete the output's previous run (every file under the output path) and start over.
    /// Only for a single worker (not with --task/--tasks, --phase or --finalize).
    #[arg(long)]
    pub restart: bool,
    /// The dedup history shared by nightly runs (sets history.path): dedup against what
    /// earlier runs kept, process only input files it has not seen, add this run when done.
    #[arg(long)]
    pub history: Option<String>,
}

pub fn run(a: RunArgs) -> Result<(), CliError> {
    if a.tasks == 0 || a.task >= a.tasks {
        return Err(CliError::Config(format!(
            "--task {} must be below --tasks {}",
            a.task, a.tasks
        )));
    }
    if a.restart && (a.tasks > 1 || a.phase.is_some() || a.finalize) {
        return Err(CliError::Config(
            "--restart clears the whole output: use it on a single worker, without --tasks, --phase or --finalize (curate slurm --restart for a cluster run)".into(),
        ));
    }
    let mut a = a;
    if let Some(h) = &a.history {
        a.pipeline.set.push(format!("history.path={h}"));
    }
    let plan = load_plan(&a.pipeline, Purpose::Run)?;
    if a.restart {
        let n = crate::runner::clear_output(&plan).map_err(super::engine_error)?;
        if !a.quiet && n > 0 {
            println!("--restart: deleted {n} file(s) under {}", plan.output);
        }
    }
    if !a.finalize && a.task == 0 && a.phase.is_none() {
        if let Some(0) = crate::runner::new_input_partitions(&plan).map_err(super::engine_error)? {
            if !a.quiet {
                println!(
                    "nothing new: the history has every input file; {} not started",
                    plan.output
                );
            }
            return Ok(());
        }
    }
    let opts = RunOptions {
        task: a.task,
        tasks: a.tasks,
        phase: a.phase.clone(),
        threads: a.threads.unwrap_or(0),
        progress: !a.quiet && std::io::stderr().is_terminal(),
    };
    let runner = Runner::new(&plan, opts).map_err(super::engine_error)?;
    let outcome = if a.finalize {
        if !runner
            .all_done()
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?
        {
            return Err(CliError::Failed(anyhow!(
                "cannot finalize: some units are not complete (see `curate status`)"
            )));
        }
        let stats = runner
            .merge_stats(0.0)
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
        runner.commit_history().map_err(super::engine_error)?;
        crate::runner::RunOutcome {
            stats: Some(stats),
            failures: vec![],
            skipped: 0,
        }
    } else {
        runner.run().map_err(|e| CliError::Failed(anyhow!("{e}")))?
    };
    if !outcome.failures.is_empty() {
        for (unit, e) in &outcome.failures {
            eprintln!("failed: {unit}: {e}");
        }
        return Err(CliError::Failed(anyhow!(
            "{} unit(s) failed; re-run the same command to retry them",
            outcome.failures.len()
        )));
    }
    if let Some(stats) = &outcome.stats {
        if let Err(e) = crate::report::write_for_run(&plan, runner.store(), stats) {
            eprintln!("warning: report.html not written: {e}");
        }
        if !a.quiet {
            println!("{}", stats.table());
            println!(
                "output: {}  ({} partitions, {} already complete)",
                plan.output,
                runner.partitions().len(),
                outcome.skipped
            );
            println!("report: {}/report.html", plan.output.trim_end_matches('/'));
        }
        let bad = stats.unbalanced();
        if !bad.is_empty() {
            return Err(CliError::Failed(anyhow!(
                "accounting does not add up for {}",
                bad.join(", ")
            )));
        }
    } else if !a.quiet {
        println!(
            "worker {}/{} done; other workers still running",
            a.task, a.tasks
        );
    }
    Ok(())
}
