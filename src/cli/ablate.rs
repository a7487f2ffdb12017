//! `curate ablate grid.toml`: variants of a mix (ratios, thresholds) side by side from one
//! stored run, each in its own folder, with a comparison table (tokens per bucket, overlap of
//! selected documents). The grid format is in `src/mix/ablate.rs` and `docs/mix.md`.

use anyhow::anyhow;

use super::CliError;
use crate::config::Plan;
use crate::mix::ablate::{Comparison, Grid};
use crate::mix::{self, StoredRun};

#[derive(Debug, clap::Args)]
pub struct AblateArgs {
    /// The grid file (TOML).
    pub grid: std::path::PathBuf,
    /// Worker threads (default: executor.threads, else one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print only the comparison.
    #[arg(long, short)]
    pub quiet: bool,
    /// The stored run instead of the grid's `from`; repeated: several runs (nights) as one
    /// corpus, documents later runs retracted left out (the grid needs an `output`).
    #[arg(long)]
    pub from: Vec<String>,
    /// Every run a dedup history holds, as one corpus (with any --from runs).
    #[arg(long)]
    pub history: Option<String>,
}

pub fn run(a: AblateArgs) -> Result<(), CliError> {
    let grid = Grid::load(&a.grid)?;
    let base = crate::config::load(&grid.pipeline, &grid.set)?;
    let mix_name = match &grid.mix {
        Some(m) => m.clone(),
        None => mix::spec::names(&base)[0].clone(),
    };
    // Every variant's configuration is checked before any work starts.
    let mut prepared = Vec::new();
    for v in &grid.variants {
        let mut set = grid.set.clone();
        set.extend(v.set.iter().cloned());
        let cf = crate::config::load(&grid.pipeline, &set)?;
        let spec = mix::spec::resolve(&cf, std::slice::from_ref(&mix_name))?
            .pop()
            .expect("one mix");
        let plan = Plan::for_selection(crate::config::load(&grid.pipeline, &set)?, None)?;
        prepared.push((v.clone(), cf, plan, spec));
    }
    let dirs = if a.from.is_empty() && a.history.is_none() {
        vec![grid
            .from
            .clone()
            .unwrap_or_else(|| prepared[0].2.output.clone())]
    } else {
        a.from.clone()
    };
    if (dirs.len() > 1 || a.history.is_some()) && grid.output.is_none() {
        return Err(CliError::Config(format!(
            "{}: output: an ablation of several runs needs its own folder (output = \"...\")",
            a.grid.display()
        )));
    }
    let pool = super::mix::pool(a.threads, base.raw.executor.threads)?;
    pool.install(|| -> Result<(), CliError> {
        let run = StoredRun::open_many(&base, &dirs, a.history.as_deref())?;
        let stem = a
            .grid
            .file_stem()
            .map_or("grid".into(), |s| s.to_string_lossy().into_owned());
        let (dest, prefix): (std::sync::Arc<dyn stages::Store>, String) = match &grid.output {
            Some(o) => (
                crate::storage::open_store(o, &base.raw.storage, &run.scratch)
                    .map_err(|e| CliError::Failed(anyhow!("{o}: {e}")))?,
                String::new(),
            ),
            None => (run.store.clone(), format!("ablate/{stem}")),
        };
        let join = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            }
        };
        let mut results = Vec::new();
        for (v, cf, plan, spec) in &prepared {
            let r = mix::make(&run, cf, plan, spec, dest.as_ref(), &join(&v.name))?;
            if !a.quiet {
                println!(
                    "variant {} ({}) -> {}: {} tokens, {} documents; selection {:.2} s, write {:.2} s",
                    v.name,
                    if v.set.is_empty() { "no change".to_string() } else { v.set.join(" ") },
                    r.location,
                    r.summary.report.tokens,
                    r.summary.report.documents,
                    r.select_seconds,
                    r.write_seconds
                );
            }
            results.push((v.clone(), r));
        }
        let cmp = Comparison::new(&mix_name, &results);
        let table = cmp.to_table();
        let put = |name: &str, bytes: &[u8]| {
            let p = join(name);
            dest.put(&p, bytes)
                .map_err(|e| CliError::Failed(anyhow!("{p}: {e}")))
        };
        put(
            "comparison.json",
            serde_json::to_string_pretty(&cmp)
                .expect("serializable")
                .as_bytes(),
        )?;
        put("comparison.txt", table.as_bytes())?;
        print!("{table}");
        if !a.quiet {
            println!("comparison: {}", {
                let root = dest.root();
                let p = join("comparison.txt");
                format!("{}/{p}", root.trim_end_matches('/'))
            });
        }
        Ok(())
    })
}
