//! `curate stats`: print the merged stats of a run.

use anyhow::anyhow;

use super::CliError;
use crate::stats::RunStats;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The run's output folder or URI.
    pub output: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: StatsArgs) -> Result<(), CliError> {
    let scratch = std::env::temp_dir().join("curate-scratch");
    let store = crate::storage::open_store(&a.output, &Default::default(), &scratch)
        .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    let bytes = store
        .read("stats.json")
        .map_err(|e| CliError::Failed(anyhow!("{}/stats.json: {e}", a.output)))?;
    let stats: RunStats =
        serde_json::from_slice(&bytes).map_err(|e| CliError::Failed(anyhow!("stats.json: {e}")))?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&stats).expect("serializable")
        );
    } else {
        print!("{}", stats.table());
    }
    Ok(())
}
