//! `curate history status|compact`: what the dedup history of nightly runs holds, and merging
//! its generations into one sorted run per key range.

use std::path::PathBuf;

use super::CliError;
use crate::config::raw::StorageSection;
use crate::history::History;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum HistoryCommand {
    /// Generations, runs, documents and bytes of a history.
    Status(Target),
    /// Merge every generation into one (atomically: a commit marker names those it replaces).
    Compact(Target),
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The history: a folder or an `s3://` prefix.
    pub path: String,
    /// A pipeline file whose `[storage]` section (S3 endpoint, credentials) to use.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Memory for compaction's merges, in MiB.
    #[arg(long, default_value_t = 256)]
    pub memory_mb: usize,
}

fn open(t: &Target) -> Result<History, CliError> {
    let storage = match &t.pipeline {
        Some(p) => crate::config::load(p, &[])?.raw.storage,
        None => StorageSection::default(),
    };
    let scratch = std::env::temp_dir().join("curate-scratch");
    std::fs::create_dir_all(&scratch)
        .map_err(|e| CliError::Failed(anyhow::anyhow!("{}: {e}", scratch.display())))?;
    History::open(&t.path, &storage, &scratch).map_err(super::engine_error)
}

pub fn run(a: HistoryArgs) -> Result<(), CliError> {
    match a.command {
        HistoryCommand::Status(t) => {
            let h = open(&t)?;
            print!("{}", crate::history::status(&h));
        }
        HistoryCommand::Compact(t) => {
            let h = open(&t)?;
            let scratch =
                std::env::temp_dir().join(format!("curate-scratch/compact-{}", std::process::id()));
            let r = crate::history::compact(&h, &scratch, t.memory_mb << 20);
            let _ = std::fs::remove_dir_all(&scratch);
            match r.map_err(super::engine_error)? {
                Some(g) => println!("compacted {} generations into {g}", h.live.len()),
                None => println!("nothing to compact ({} generation(s))", h.live.len()),
            }
        }
    }
    Ok(())
}
