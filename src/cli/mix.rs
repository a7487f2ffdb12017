//! `curate mix`: token shards for training, selected from a finished run's stored signals.
//!
//! `curate mix pipeline.toml --set mix.code=0.20 --set stages.gopher_quality.min_words=100`
//! re-judges every stored document with the overridden thresholds, plans each mix of the
//! pipeline (`[mix]`, `[mix.NAME]`), and writes `<run>/mix/<name>/`: Megatron shards,
//! `manifest.json`, `mix_report.json`, `config.toml` and `report.html`. No stage runs again.

use anyhow::anyhow;

use super::{CliError, PipelineArgs};
use crate::config::Plan;
use crate::mix::{self, MixError, StoredRun};

#[derive(Debug, clap::Args)]
pub struct MixArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// The stored run to select from (default: the pipeline's output). Repeated: several
    /// runs (nights) as one corpus, documents later runs retracted left out (needs --out).
    #[arg(long)]
    pub from: Vec<String>,
    /// Every run a dedup history holds, as one corpus (with any --from runs; needs --out).
    #[arg(long)]
    pub history: Option<String>,
    /// Write the mixes under this folder (`DIR/<mix>/`) instead of `<run>/mix/`.
    #[arg(long)]
    pub out: Option<String>,
    /// Make only this mix (repeatable; default: every mix of the pipeline).
    #[arg(long = "mix", value_name = "NAME")]
    pub mixes: Vec<String>,
    /// Worker threads (default: executor.threads, else one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only the tables.
    #[arg(long, short)]
    pub quiet: bool,
}

impl From<MixError> for CliError {
    fn from(e: MixError) -> Self {
        match e {
            MixError::Config(m) => CliError::Config(m),
            MixError::Failed(e) => CliError::Failed(anyhow!("{e}")),
        }
    }
}

/// A rayon pool with the configured thread count.
pub fn pool(threads: Option<usize>, configured: usize) -> Result<rayon::ThreadPool, CliError> {
    let n = match (threads.unwrap_or(0), configured) {
        (0, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (0, t) => t,
        (t, _) => t,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("curate-mix-{i}"))
        .build()
        .map_err(|e| CliError::Failed(anyhow!("{e}")))
}

pub fn run(a: MixArgs) -> Result<(), CliError> {
    if a.pipeline.input.is_some() {
        return Err(CliError::Config(
            "--input: curate mix reads a finished run's outputs (give --from or --output)".into(),
        ));
    }
    let cf = crate::config::load(&a.pipeline.pipeline, &a.pipeline.set)?;
    let specs = mix::spec::resolve(&cf, &a.mixes)?;
    let plan = Plan::for_selection(
        crate::config::load(&a.pipeline.pipeline, &a.pipeline.set)?,
        a.pipeline.output.as_deref(),
    )?;
    let dirs = if a.from.is_empty() && a.history.is_none() {
        vec![plan.output.clone()]
    } else {
        a.from.clone()
    };
    if (dirs.len() > 1 || a.history.is_some()) && a.out.is_none() {
        return Err(CliError::Config(
            "--out: a mix of several runs needs its own folder (--out DIR)".into(),
        ));
    }
    let pool = pool(a.threads, cf.raw.executor.threads)?;
    pool.install(|| -> Result<(), CliError> {
        let run = StoredRun::open_many(&cf, &dirs, a.history.as_deref())?;
        let (dest, base): (std::sync::Arc<dyn stages::Store>, &str) = match &a.out {
            Some(o) => (
                crate::storage::open_store(o, &cf.raw.storage, &run.scratch)
                    .map_err(|e| CliError::Failed(anyhow!("{o}: {e}")))?,
                "",
            ),
            None => (run.store.clone(), "mix"),
        };
        for spec in &specs {
            let dir = if base.is_empty() {
                spec.name.clone()
            } else {
                format!("{base}/{}", spec.name)
            };
            let r = mix::make(&run, &cf, &plan, spec, dest.as_ref(), &dir)?;
            if !a.quiet {
                println!(
                    "mix {} -> {} ({} shards, {} tokens, {} documents)",
                    spec.name,
                    r.location,
                    r.manifest.shards.len(),
                    r.manifest.tokens,
                    r.manifest.documents
                );
                print!("{}", mix::selection_lines(&r.summary.selection));
            }
            print!("{}", r.summary.report.to_table());
            if !a.quiet {
                println!(
                    "selection {:.2} s, tokenize and write {:.2} s\n",
                    r.select_seconds, r.write_seconds
                );
            }
        }
        if a.out.is_none() && !run.is_corpus() {
            if let Err(e) = crate::report::refresh_after_mix(&run, &cf) {
                eprintln!("warning: the run's report.html was not refreshed: {e}");
            }
        }
        Ok(())
    })
}
