//! Run accounting: per-partition stats files and their merge into `stats.json`.
//!
//! Each partition writes `stats/<phase>/part-NNNNN.json` just before its completion marker;
//! each global-step task writes `stats/<step>/task-NNNNN.json`. Merging sums them per phase and
//! stage, in pipeline order, and checks `docs_in = docs_out + sum(dropped)` for every stage.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use stages::{StageStats, StepStats, Store};

/// What one partition of a map phase did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartitionStats {
    pub phase: String,
    pub partition: usize,
    /// Input URI and byte range (first phase) or the previous phase's file.
    pub input: String,
    /// `read` first, then one entry per stage in pipeline order.
    pub stages: Vec<StageStats>,
    pub docs_written: u64,
    pub bytes_written: u64,
    pub dropped_written: u64,
    pub seconds: f64,
}

/// Merged stats of one phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PhaseStats {
    pub name: String,
    /// Partitions (map phases) or tasks (global steps) merged.
    pub units: usize,
    pub stages: Vec<StageStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepStats>,
    pub docs_written: u64,
    pub bytes_written: u64,
    /// Sum of the units' wall-clock seconds (CPU-ish time when units ran in parallel).
    pub seconds: f64,
}

impl PhaseStats {
    /// A global step's counters over its tasks (stats.json keeps every task) and its summed
    /// seconds: counters add up, except maxima (`largest_*`, `max_*`, `peak_*`).
    pub fn step_totals(&self) -> (BTreeMap<&str, u64>, f64) {
        let mut sum: BTreeMap<&str, u64> = BTreeMap::new();
        let mut secs = 0.0;
        for step in &self.steps {
            secs += step.seconds;
            for (k, v) in &step.counters {
                let e = sum.entry(k.as_str()).or_default();
                if ["largest", "max", "peak"].iter().any(|m| k.starts_with(m)) {
                    *e = (*e).max(*v);
                } else {
                    *e += v;
                }
            }
        }
        (sum, secs)
    }
}

/// Merged stats of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunStats {
    pub pipeline: String,
    pub version: String,
    pub phases: Vec<PhaseStats>,
    /// Wall-clock seconds of the invocation that merged the stats.
    #[serde(default)]
    pub wall_seconds: f64,
}

impl RunStats {
    /// Stages whose counts do not add up (should be empty).
    pub fn unbalanced(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.phases {
            for s in &p.stages {
                if !s.balanced() {
                    out.push(format!("{}/{}", p.name, s.name));
                }
            }
        }
        out
    }

    /// Documents that entered the first phase (records read) and left the last one.
    pub fn funnel(&self) -> (u64, u64) {
        let first = self
            .phases
            .first()
            .and_then(|p| p.stages.first())
            .map_or(0, |s| s.docs_in);
        let last = self
            .phases
            .iter()
            .rev()
            .find(|p| p.steps.is_empty())
            .map_or(0, |p| p.docs_written);
        (first, last)
    }

    /// A terminal table: one row per stage.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<10} {:<22} {:>10} {:>10} {:>10} {:>9} {:>9} {:>8} {:>10}  top drop reasons",
            "phase", "stage", "in", "out", "dropped", "MB in", "MB out", "sec", "docs/s"
        );
        for p in &self.phases {
            for st in &p.stages {
                let mut reasons: Vec<(&String, &u64)> = st.dropped.iter().collect();
                reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                let top: Vec<String> = reasons
                    .iter()
                    .take(3)
                    .map(|(r, n)| format!("{r}={n}"))
                    .collect();
                let mut flagged: Vec<String> =
                    st.flagged.iter().map(|(r, n)| format!("{r}={n}")).collect();
                flagged.truncate(3);
                let extra = if flagged.is_empty() {
                    String::new()
                } else {
                    format!(" (tagged: {})", flagged.join(" "))
                };
                let rate = if st.seconds > 0.0 {
                    st.docs_in as f64 / st.seconds
                } else {
                    0.0
                };
                let _ = writeln!(
                    s,
                    "{:<10} {:<22} {:>10} {:>10} {:>10} {:>9.2} {:>9.2} {:>8.2} {:>10.0}  {}{}",
                    p.name,
                    st.name,
                    st.docs_in,
                    st.docs_out,
                    st.dropped_total(),
                    st.bytes_in as f64 / 1e6,
                    st.bytes_out as f64 / 1e6,
                    st.seconds,
                    rate,
                    top.join(" "),
                    extra
                );
            }
            if !p.steps.is_empty() {
                let (sum, secs) = p.step_totals();
                let c: Vec<String> = sum.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(
                    s,
                    "{:<10} {:<22} {:>5} task{} {:>8.2}s  {}",
                    p.name,
                    p.steps[0].name,
                    p.steps.len(),
                    if p.steps.len() == 1 { " " } else { "s" },
                    secs,
                    c.join(" ")
                );
            }
        }
        let (a, b) = self.funnel();
        let _ = writeln!(s, "records read: {a}   documents written: {b}");
        s
    }
}

/// Merges per-unit stats files of a phase.
pub fn merge_phase(store: &dyn Store, phase: &str) -> std::io::Result<PhaseStats> {
    let mut ps = PhaseStats {
        name: phase.to_string(),
        ..Default::default()
    };
    let mut order: Vec<String> = Vec::new();
    let mut by_name: BTreeMap<String, StageStats> = BTreeMap::new();
    for path in store.list(&format!("stats/{phase}"))? {
        let bytes = store.read(&path)?;
        if path
            .rsplit('/')
            .next()
            .is_some_and(|f| f.starts_with("task-"))
        {
            let st: StepStats = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
            ps.seconds += st.seconds;
            ps.units += 1;
            ps.steps.push(st);
            continue;
        }
        let part: PartitionStats = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
        ps.units += 1;
        ps.docs_written += part.docs_written;
        ps.bytes_written += part.bytes_written;
        ps.seconds += part.seconds;
        for st in part.stages {
            if !by_name.contains_key(&st.name) {
                order.push(st.name.clone());
            }
            by_name
                .entry(st.name.clone())
                .or_insert_with(|| StageStats::new(&st.name))
                .merge(&st);
        }
    }
    ps.stages = order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .collect();
    Ok(ps)
}
