//! `curate status`: units done, running, failed and pending per phase, and the merged stats.

use stages::Purpose;

use super::{load_plan, CliError, PipelineArgs};
use crate::runner::{unit_name, Runner};

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

pub fn run(a: StatusArgs) -> Result<(), CliError> {
    let plan = load_plan(&a.pipeline, Purpose::Select)?;
    let runner = Runner::new(&plan, Default::default()).map_err(super::engine_error)?;
    let store = runner.store();
    println!(
        "output {}: {} partitions",
        plan.output,
        runner.partitions().len()
    );
    println!(
        "{:<28} {:>7} {:>7} {:>8} {:>7} {:>8}",
        "phase", "units", "done", "running", "failed", "pending"
    );
    let mut failures = Vec::new();
    for phase in &plan.phases {
        let name = phase.name();
        let units = runner.units(phase).ok();
        let done: std::collections::BTreeSet<String> = store
            .list(&format!("completions/{name}"))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_string))
            .collect();
        let running = store
            .list(&format!("running/{name}"))
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !done.contains(p.rsplit('/').next().unwrap_or("")))
            .count();
        let mut failed = 0;
        for f in store.list(&format!("failed/{name}")).unwrap_or_default() {
            let u = f.rsplit('/').next().unwrap_or("").to_string();
            if done.contains(&u) {
                continue;
            }
            failed += 1;
            let why = store
                .read(&f)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            let err = why
                .as_ref()
                .and_then(|v| v["error"].as_str())
                .unwrap_or("?")
                .to_string();
            failures.push(format!("{name}/{u}: {err}"));
        }
        let (units_s, pending) = match units {
            Some(n) => (
                n.to_string(),
                n.saturating_sub(done.len() + running + failed).to_string(),
            ),
            None => ("?".into(), "?".into()),
        };
        println!(
            "{name:<28} {units_s:>7} {:>7} {running:>8} {failed:>7} {pending:>8}",
            done.len()
        );
        let _ = unit_name;
    }
    if !failures.is_empty() {
        println!("\nfailed units:");
        for f in &failures {
            println!("  {f}");
        }
    }
    if let Ok(b) = store.read("stats.json") {
        if let Ok(stats) = serde_json::from_slice::<crate::stats::RunStats>(&b) {
            println!();
            print!("{}", stats.table());
        }
    }
    Ok(())
}
