//! The command line: argument definitions (clap) and one module per command.
//!
//! Exit codes: 0 success, 1 the run failed (a partition or step failed), 2 bad configuration or
//! arguments (reported before any work starts).

pub mod ablate;
pub mod check;
pub mod classify;
pub mod distill;
pub mod extract;
pub mod history;
pub mod inspect;
pub mod kinds;
pub mod kl_ref;
pub mod mix;
pub mod pii;
pub mod run;
pub mod slurm;
pub mod stats;
pub mod status;
pub mod train;
pub mod train_head;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// curate: web crawl -> clean, deduplicated, classified, mixed, tokenized pretraining data.
#[derive(Debug, Parser)]
#[command(name = "curate", version, about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that load a pipeline.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// The pipeline file (TOML).
    pub pipeline: PathBuf,
    /// Input path, glob or URI (replaces input.paths).
    #[arg(long)]
    pub input: Option<String>,
    /// Output folder or URI (replaces output.path).
    #[arg(long)]
    pub output: Option<String>,
    /// Override any config key: --set stages.gopher_quality.min_words=100 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline (all phases, or this worker's share with --task/--tasks).
    Run(run::RunArgs),
    /// Extract the main content of HTML pages (a WARC or a folder) to JSON lines {id, url, text}.
    Extract(extract::ExtractArgs),
    /// Validate a pipeline and print its plan (stages, phases, partitions, outputs).
    Check(check::CheckArgs),
    /// Print the merged stats of a run's output.
    Stats(stats::StatsArgs),
    /// Print documents of a run with their signals and verdicts (SQL over signals).
    Inspect(inspect::InspectArgs),
    /// Submit a run to Slurm: one job array per phase, chained with afterok.
    Slurm(slurm::SlurmArgs),
    /// Show units done, running, failed and pending per phase, and the merged stats.
    Status(status::StatusArgs),
    /// Train a model from labelled files (`train fasttext`).
    Train(train::TrainArgs),
    /// Score every row of a JSONL/Parquet file with a fastText or ONNX classifier.
    Classify(classify::ClassifyArgs),
    /// Distil a static embedding model from an ONNX sentence encoder (for dedup.semantic and
    /// `train head`).
    Distill(distill::DistillArgs),
    /// Redact personal data in JSON lines {"id", "text"} and write them back with counts.
    Pii(pii::PiiArgs),
    /// Build the reference token distribution of filter.kl.
    KlRef(kl_ref::KlRefArgs),
    /// Make the pipeline's mixes (token shards for training) from a finished run's stored
    /// signals, re-judged with --set overrides; no stage runs again.
    Mix(mix::MixArgs),
    /// Make several variants of a mix side by side (grid.toml) and compare them.
    Ablate(ablate::AblateArgs),
    /// The dedup history of nightly runs: `status`, `compact`.
    History(history::HistoryArgs),
    /// List the stage kinds, or print one kind's keys and an example section.
    Stages(kinds::StagesArgs),
}

/// An error that maps to an exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad configuration or arguments: exit 2.
    Config(String),
    /// The work failed: exit 1.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::Failed(e)
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError::Config(e.to_string())
    }
}

/// An engine error as a CLI error: configuration mistakes (a stale output among them) exit 2.
pub fn engine_error(e: stages::Error) -> CliError {
    match e {
        stages::Error::Config(c) => CliError::Config(c.to_string()),
        e => CliError::Failed(anyhow::anyhow!("{e}")),
    }
}

/// Dispatches a parsed command line.
pub fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Check(a) => check::run(a),
        Command::Extract(a) => extract::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Slurm(a) => slurm::run(a),
        Command::Status(a) => status::run(a),
        Command::Train(a) => train::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Distill(a) => distill::run(a),
        Command::Pii(a) => pii::run(a),
        Command::KlRef(a) => kl_ref::run(a),
        Command::Mix(a) => mix::run(a),
        Command::Ablate(a) => ablate::run(a),
        Command::History(a) => history::run(a),
        Command::Stages(a) => kinds::run(a),
    }
}

/// Loads and validates a pipeline with its overrides, `[mix]` included: `curate mix` reads
/// that section only after the run, so a mistake there is reported before any work starts.
pub fn load_plan(
    a: &PipelineArgs,
    purpose: stages::Purpose,
) -> Result<crate::config::Plan, CliError> {
    let cf = crate::config::load(&a.pipeline, &a.set)?;
    let plan = crate::config::Plan::build(cf, a.input.as_deref(), a.output.as_deref(), purpose)?;
    crate::mix::spec::resolve(&plan.config, &[])?;
    Ok(plan)
}
