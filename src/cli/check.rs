//! `curate check`: validate a pipeline and print the plan.

use stages::Purpose;

use super::{load_plan, CliError, PipelineArgs};
use crate::config::plan::{Mode, Phase};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Do not list inputs (skip network access).
    #[arg(long)]
    pub offline: bool,
}

pub fn run(a: CheckArgs) -> Result<(), CliError> {
    let plan = load_plan(&a.pipeline, Purpose::Select)?;
    // (load_plan validated `[mix]`; resolved again here to list the mixes.)
    let mixes = crate::mix::spec::resolve(&plan.config, &[])?;
    println!("pipeline {} (seed {})", plan.name, plan.seed);
    println!("input:  {}", plan.inputs.join(", "));
    if let Some(l) = &plan.config.raw.input.listing {
        println!(
            "        listing {l} (base {})",
            plan.config.raw.input.base_uri.as_deref().unwrap_or("")
        );
    }
    println!(
        "output: {} ({:?})",
        plan.output, plan.config.raw.output.format
    );
    if !a.offline {
        match crate::runner::list_partitions(&plan) {
            Ok(parts) => {
                let bytes: u64 = parts
                    .iter()
                    .map(|p| p.end.unwrap_or(p.size) - p.start)
                    .sum();
                println!(
                    "partitions: {} ({:.1} MB of input)",
                    parts.len(),
                    bytes as f64 / 1e6
                );
            }
            Err(e) => return Err(CliError::Config(format!("input: {e}"))),
        }
    }
    println!("phases:");
    for ph in &plan.phases {
        match ph {
            Phase::Map {
                index,
                apply,
                stages,
                collect,
            } => {
                println!("  map{index}:");
                if let Some(a) = apply {
                    println!("    apply   {}", plan.slots[*a].name);
                }
                for s in stages {
                    let slot = &plan.slots[*s];
                    let mut mode = if slot.mode == Mode::Tag { " (tag)" } else { "" }.to_string();
                    if let Some(l) = &slot.languages {
                        mode.push_str(&format!(" (only {})", l.join(",")));
                    }
                    let sigs: Vec<String> = slot
                        .built
                        .signals()
                        .iter()
                        .map(|s| s.name.to_string())
                        .collect();
                    println!(
                        "    stage   {:<20} {:<26}{mode} signals: {}",
                        slot.name,
                        slot.kind,
                        sigs.join(", ")
                    );
                }
                if let Some(c) = collect {
                    println!("    collect {}", plan.slots[*c].name);
                }
            }
            Phase::Step { name, .. } => println!("  {name} (global step)"),
        }
    }
    if plan.config.raw.mix.is_some() {
        for m in &mixes {
            println!(
                "mix {}: buckets {}",
                m.name,
                m.planner
                    .shares
                    .iter()
                    .map(|(b, s)| format!("{b} {s}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    println!("ok");
    Ok(())
}
