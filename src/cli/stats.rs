//! `curate stats`: print the merged stats of a run, or of several runs as one corpus (the
//! nights of a dedup history: their funnels summed, earlier nights' retracted documents out).

use std::collections::BTreeSet;

use anyhow::anyhow;

use super::CliError;
use crate::stats::RunStats;

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// The run's output folder or URI; several: one corpus of many runs (nightly runs).
    #[arg(num_args = 0..)]
    pub output: Vec<String>,
    /// Every run a dedup history holds, as one corpus (with any runs given above).
    #[arg(long)]
    pub history: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn read_stats(output: &str) -> Result<(RunStats, Vec<u8>), CliError> {
    let scratch = std::env::temp_dir().join("curate-scratch");
    let store = crate::storage::open_store(output, &Default::default(), &scratch)
        .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    let bytes = store
        .read("stats.json")
        .map_err(|e| CliError::Failed(anyhow!("{output}/stats.json: {e}")))?;
    let stats: RunStats = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Failed(anyhow!("{output}/stats.json: {e}")))?;
    let retractions = match store.read("retractions.jsonl") {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(CliError::Failed(anyhow!("{output}/retractions.jsonl: {e}"))),
    };
    Ok((stats, retractions))
}

pub fn run(a: StatsArgs) -> Result<(), CliError> {
    let scratch = std::env::temp_dir().join("curate-scratch");
    // The runs in corpus order (nights in the order they ran), however they were given.
    let runs: Vec<String> = if a.output.len() == 1 && a.history.is_none() {
        a.output.clone()
    } else {
        crate::corpus::list_runs(
            &a.output,
            a.history.as_deref(),
            &Default::default(),
            &scratch,
        )
        .map_err(super::engine_error)?
        .into_iter()
        .map(|r| r.dir)
        .collect()
    };
    if runs.is_empty() {
        return Err(CliError::Config(
            "give a run's output, several, or --history".into(),
        ));
    }
    if runs.len() == 1 && a.history.is_none() {
        let (stats, _) = read_stats(&runs[0])?;
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&stats).expect("serializable")
            );
        } else {
            print!("{}", stats.table());
        }
        return Ok(());
    }
    // Several runs: sum each (phase, stage) over the runs, in the first run's order.
    let mut total: Option<RunStats> = None;
    let mut retracted = BTreeSet::new();
    // Sites a later night retracted whole (`safety.domains` across nights).
    let mut sites = BTreeSet::new();
    let mut kept = 0u64;
    for r in &runs {
        let (s, retr) = read_stats(r)?;
        for l in String::from_utf8_lossy(&retr).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if let Some(id) = v["id_xxh3"].as_str() {
                    retracted.insert(id.to_string());
                }
                if let Some(d) = v["domain"].as_str() {
                    sites.insert(d.to_string());
                }
            }
        }
        kept += s
            .phases
            .iter()
            .rev()
            .find(|p| p.name.starts_with("map"))
            .map_or(0, |p| p.docs_written);
        match &mut total {
            None => total = Some(s),
            Some(t) => {
                t.wall_seconds += s.wall_seconds;
                for p in s.phases {
                    let Some(tp) = t.phases.iter_mut().find(|q| q.name == p.name) else {
                        t.phases.push(p);
                        continue;
                    };
                    tp.units += p.units;
                    tp.docs_written += p.docs_written;
                    tp.bytes_written += p.bytes_written;
                    tp.seconds += p.seconds;
                    tp.steps.extend(p.steps);
                    for st in p.stages {
                        match tp.stages.iter_mut().find(|x| x.name == st.name) {
                            Some(x) => x.merge(&st),
                            None => tp.stages.push(st),
                        }
                    }
                }
            }
        }
    }
    let total = total.expect("at least one run");
    let corpus = kept.saturating_sub(retracted.len() as u64);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "runs": runs, "kept": kept, "retracted": retracted.len(),
                "retracted_sites": sites.len(),
                "corpus_documents": corpus, "stats": total,
            })
        );
    } else {
        print!("{}", total.table());
        println!(
            "corpus: {} runs, {kept} documents kept, {} retracted by later runs, {corpus} in the corpus",
            runs.len(),
            retracted.len()
        );
        if !sites.is_empty() {
            println!(
                "sites retracted by later runs: {} (their pages in earlier runs are not subtracted above; inspect and mix leave them out)",
                sites.len()
            );
        }
    }
    Ok(())
}
