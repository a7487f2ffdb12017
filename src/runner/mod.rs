//! The local runner: executes a plan's phases over partitions, resumably.
//!
//! The same code serves one machine (`curate run`: every partition, all threads) and a cluster
//! (`curate run --task i --tasks N`, one worker per array task, optionally `--phase NAME`):
//! a worker takes the units `u % N == i` of each phase, skips units whose completion marker
//! exists, and waits at each barrier until every unit of the phase is complete.
//!
//! Commit protocol of a unit: outputs (atomic writes) -> `stats/<phase>/<unit>.json` ->
//! `completions/<phase>/<unit>`. A unit is done iff its marker exists; a killed run re-runs
//! only units without markers, and since units are deterministic, the rewrite is identical.

use crate::fingerprint;
mod map;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use stages::{Built, Error, Result, StepCtx, Store};

use crate::config::plan::Phase;
use crate::config::Plan;
use crate::partition::{self, part_name, PartitionSpec};
use crate::stats::{merge_phase, PartitionStats, RunStats};
use crate::storage;

/// How this invocation takes part in a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// This worker's index and the number of workers.
    pub task: usize,
    pub tasks: usize,
    /// Run only this phase (by name: `map0`, `minhash.merge`, ...).
    pub phase: Option<String>,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Show progress bars.
    pub progress: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            task: 0,
            tasks: 1,
            phase: None,
            threads: 0,
            progress: false,
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Option<RunStats>,
    /// Units that failed, with their error.
    pub failures: Vec<(String, String)>,
    /// Units skipped because they were already complete.
    pub skipped: usize,
}

/// Executes a plan.
pub struct Runner<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) scratch: PathBuf,
    pub(crate) partitions: Vec<PartitionSpec>,
    pub(crate) threads: usize,
    pub(crate) slot_names: Vec<Arc<str>>,
    /// The dedup history (`[history]`), mounted in `store` for the global steps.
    history: Option<crate::history::History>,
    opts: RunOptions,
}

impl<'a> Runner<'a> {
    /// Opens the output store and lists the input partitions. An output that already holds a
    /// run is resumed only when its fingerprint (input listing, output-deciding config, curate
    /// version) matches this run's; otherwise this fails with [`Error::Config`] naming what
    /// changed, before any work.
    pub fn new(plan: &'a Plan, opts: RunOptions) -> Result<Self> {
        let raw = &plan.config.raw;
        let scratch = match &raw.executor.scratch {
            Some(s) => plan.base_dir.join(s),
            None => std::env::temp_dir().join("curate-scratch"),
        };
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let store = storage::open_store(&plan.output, &raw.storage, &scratch)
            .map_err(|e| Error::io(&plan.output, e))?;
        if let Some(local) = store.local_path("") {
            // A killed run may have left half-written files; they were never visible.
            let _ = stages::LocalStore::new(&local)
                .and_then(|s| s.clean_temporaries(Duration::from_secs(600)));
        }
        let history = match &plan.history {
            Some(h) => Some(crate::history::History::open(h, &raw.storage, &scratch)?),
            None => None,
        };
        let store: Arc<dyn Store> = match &history {
            Some(h) => Arc::new(crate::history::mount::MountStore {
                run: store,
                history: h.store.clone(),
            }),
            None => store,
        };
        let partitions = open_output(plan, store.as_ref(), history.as_ref())?;
        let threads = match (opts.threads, raw.executor.threads) {
            (0, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (0, t) => t,
            (t, _) => t,
        };
        let slot_names = plan
            .slots
            .iter()
            .map(|s| Arc::from(s.name.as_str()))
            .collect();
        Ok(Runner {
            plan,
            store,
            scratch,
            partitions,
            threads,
            slot_names,
            history,
            opts,
        })
    }

    pub fn partitions(&self) -> &[PartitionSpec] {
        &self.partitions
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs the phases this worker owns.
    pub fn run(&self) -> Result<RunOutcome> {
        let t0 = Instant::now();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("curate-{i}"))
            .build()
            .map_err(|e| Error::other(e.to_string()))?;
        self.store
            .put("config.toml", self.plan.config.resolved_toml().as_bytes())?;
        let mut failures = Vec::new();
        let mut skipped = 0;
        let phases: Vec<&Phase> = match &self.opts.phase {
            Some(name) => {
                let p = self
                    .plan
                    .phases
                    .iter()
                    .find(|p| &p.name() == name)
                    .ok_or_else(|| {
                        let names: Vec<String> =
                            self.plan.phases.iter().map(|p| p.name()).collect();
                        Error::other(format!(
                            "no phase named {name}; phases: {}",
                            names.join(", ")
                        ))
                    })?;
                vec![p]
            }
            None => self.plan.phases.iter().collect(),
        };
        for phase in phases {
            let name = phase.name();
            let units = self.units(phase)?;
            let mine: Vec<usize> =
                partition::owned(units, self.opts.task, self.opts.tasks).collect();
            let todo: Vec<usize> = mine.into_iter().filter(|u| !self.done(&name, *u)).collect();
            skipped +=
                partition::owned(units, self.opts.task, self.opts.tasks).count() - todo.len();
            tracing::info!("phase {name}: {units} units, {} to run here", todo.len());
            let bar = self.progress_bar(&name, todo.len());
            let results: Vec<(usize, Result<()>)> = pool.install(|| {
                todo.par_iter()
                    .with_max_len(1)
                    .map(|&u| {
                        let r = self.run_unit(phase, u);
                        if let Some(b) = &bar {
                            b.inc(1);
                        } else if let Err(e) = &r {
                            tracing::error!("{name}/{}: {e}", unit_name(phase, u));
                        } else {
                            tracing::info!("{name}/{} done", unit_name(phase, u));
                        }
                        (u, r)
                    })
                    .collect()
            });
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            for (u, r) in results {
                if let Err(e) = r {
                    failures.push((format!("{name}/{}", unit_name(phase, u)), e.to_string()));
                }
            }
            if !failures.is_empty() {
                // Later phases need every unit of this one.
                break;
            }
            if self.opts.phase.is_none() && self.opts.tasks > 1 {
                self.wait_barrier(phase, units)?;
            }
        }
        let stats = if failures.is_empty() && self.opts.task == 0 && self.all_done()? {
            let stats = self.merge_stats(t0.elapsed().as_secs_f64())?;
            self.commit_history()?;
            Some(stats)
        } else {
            None
        };
        Ok(RunOutcome {
            stats,
            failures,
            skipped,
        })
    }

    /// Number of units (partitions or tasks) of a phase.
    pub fn units(&self, phase: &Phase) -> Result<usize> {
        match phase {
            Phase::Map { .. } => Ok(self.partitions.len()),
            Phase::Step { slot, step, .. } => {
                let Built::Global(g) = &self.plan.slots[*slot].built else {
                    unreachable!("step of a global stage")
                };
                g.steps()[*step].tasks(&self.step_ctx(*slot))
            }
        }
    }

    fn step_ctx(&self, slot: usize) -> StepCtx {
        StepCtx {
            store: self.store.clone(),
            dir: format!("work/{}", self.plan.slots[slot].name),
            partitions: self.partitions.len(),
            scratch: self.scratch.join(format!(
                "{}-{}",
                self.plan.slots[slot].name,
                std::process::id()
            )),
            memory_budget: self.plan.config.raw.executor.memory.0 as usize,
            threads: self.threads,
            seed: self.plan.seed,
        }
    }

    fn marker(phase: &str, unit: &str) -> String {
        format!("completions/{phase}/{unit}")
    }

    fn done(&self, phase: &str, unit: usize) -> bool {
        let p = self.plan.phases.iter().find(|p| p.name() == phase);
        let uname = p
            .map(|p| unit_name(p, unit))
            .unwrap_or_else(|| part_name(unit));
        self.store
            .exists(&Self::marker(phase, &uname))
            .unwrap_or(false)
    }

    /// Runs one unit, keeping `running/` and `failed/` markers for `curate status`.
    fn run_unit(&self, phase: &Phase, u: usize) -> Result<()> {
        let name = phase.name();
        let uname = unit_name(phase, u);
        let running = format!("running/{name}/{uname}");
        let failed = format!("failed/{name}/{uname}");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let info = serde_json::json!({
            "host": host.trim(),
            "pid": std::process::id(),
            "started": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "slurm_job": std::env::var("SLURM_JOB_ID").ok(),
        });
        self.store.put(&running, info.to_string().as_bytes())?;
        let r = self.run_unit_inner(phase, u);
        match &r {
            Ok(()) => {
                let _ = self.store.delete(&failed);
            }
            Err(e) => {
                let mut info = info.clone();
                info["error"] = serde_json::Value::String(e.to_string());
                let _ = self.store.put(&failed, info.to_string().as_bytes());
            }
        }
        let _ = self.store.delete(&running);
        r
    }

    fn run_unit_inner(&self, phase: &Phase, u: usize) -> Result<()> {
        let name = phase.name();
        let uname = unit_name(phase, u);
        match phase {
            Phase::Map { .. } => {
                let st: PartitionStats = self.run_map_partition(phase, u)?;
                self.store.put(
                    &format!("stats/{name}/{uname}.json"),
                    &serde_json::to_vec_pretty(&st).expect("serializable"),
                )?;
            }
            Phase::Step { slot, step, .. } => {
                let Built::Global(g) = &self.plan.slots[*slot].built else {
                    unreachable!()
                };
                let mut ctx = self.step_ctx(*slot);
                ctx.scratch = ctx.scratch.join(format!("task-{u}"));
                std::fs::create_dir_all(&ctx.scratch).map_err(|e| Error::io(&ctx.scratch, e))?;
                let t = Instant::now();
                let mut st = g.steps()[*step].run(u, &ctx)?;
                if st.seconds == 0.0 {
                    st.seconds = t.elapsed().as_secs_f64();
                }
                st.task = u;
                let _ = std::fs::remove_dir_all(&ctx.scratch);
                self.store.put(
                    &format!("stats/{name}/{uname}.json"),
                    &serde_json::to_vec_pretty(&st).expect("serializable"),
                )?;
            }
        }
        self.store.put(&Self::marker(&name, &uname), b"")?;
        Ok(())
    }

    fn wait_barrier(&self, phase: &Phase, units: usize) -> Result<()> {
        let name = phase.name();
        let timeout = Duration::from_secs(self.plan.config.raw.executor.barrier_timeout_s);
        let t = Instant::now();
        loop {
            let done = self.store.list(&format!("completions/{name}"))?.len();
            if done >= units {
                return Ok(());
            }
            if t.elapsed() > timeout {
                return Err(Error::other(format!(
                    "barrier after {name}: {done}/{units} units complete after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Whether every unit of every phase is complete.
    pub fn all_done(&self) -> Result<bool> {
        for phase in &self.plan.phases {
            let units = self.units(phase)?;
            if self
                .store
                .list(&format!("completions/{}", phase.name()))?
                .len()
                < units
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Merges every phase's stats into `stats.json`.
    pub fn merge_stats(&self, wall: f64) -> Result<RunStats> {
        let mut rs = RunStats {
            pipeline: self.plan.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            phases: vec![],
            wall_seconds: wall,
        };
        for phase in &self.plan.phases {
            rs.phases
                .push(merge_phase(self.store.as_ref(), &phase.name())?);
        }
        self.store.put(
            "stats.json",
            &serde_json::to_vec_pretty(&rs).expect("serializable"),
        )?;
        Ok(rs)
    }

    /// Adds this finished run to the dedup history (nothing without `[history]`, or when this
    /// run is already in it). Returns the new generation's name.
    pub fn commit_history(&self) -> Result<Option<String>> {
        let Some(h) = &self.history else {
            return Ok(None);
        };
        let globals: Vec<String> = self
            .plan
            .slots
            .iter()
            .filter(|s| matches!(s.built, Built::Global(_)))
            .map(|s| s.name.clone())
            .collect();
        // The history names runs by an absolute location, so `curate stats --history` finds
        // them from any folder.
        let output = match std::path::Path::new(&self.plan.output) {
            p if crate::config::plan::is_uri(&self.plan.output) || p.is_absolute() => {
                self.plan.output.clone()
            }
            p => std::env::current_dir()
                .map(|d| d.join(p).to_string_lossy().into_owned())
                .unwrap_or_else(|_| self.plan.output.clone()),
        };
        let g =
            crate::history::commit(h, self.store.as_ref(), &output, &globals, &self.partitions)?;
        if let Some(g) = &g {
            tracing::info!("history: committed generation {g}");
        }
        Ok(g)
    }

    fn progress_bar(&self, phase: &str, n: usize) -> Option<indicatif::ProgressBar> {
        if !self.opts.progress || n == 0 {
            return None;
        }
        let b = indicatif::ProgressBar::new(n as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix:>12} [{bar:40}] {pos}/{len} {elapsed_precise} eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        b.set_prefix(phase.to_string());
        Some(b)
    }
}

/// The unit name of a phase: `part-NNNNN` for map phases, `task-NNNNN` for steps.
pub fn unit_name(phase: &Phase, u: usize) -> String {
    match phase {
        Phase::Map { .. } => part_name(u),
        Phase::Step { .. } => format!("task-{u:05}"),
    }
}

/// Checks (or records) the fingerprint of the run in `store` and returns its partitions.
///
/// Every worker of a run computes the same fingerprint and partition list, so concurrent
/// workers opening a fresh output write identical bytes and agree. The fingerprint is
/// written before `partitions.json`: an output with partitions but no fingerprint is not one
/// this version started, and is refused rather than guessed at.
fn open_output(
    plan: &Plan,
    store: &dyn Store,
    history: Option<&crate::history::History>,
) -> Result<Vec<PartitionSpec>> {
    let mut parts = list_partitions(plan)?;
    // With a history: only input files it has not seen, as of the run's snapshot (a resumed
    // run keeps the snapshot of its first start).
    let mut snapshot = None;
    if let Some(h) = history {
        match store.read(stages::dedup::history::SNAPSHOT) {
            Ok(b) => parts = crate::history::only_new(parts, &h.snapshot_inputs(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                parts = crate::history::only_new(parts, &h.inputs()?);
                snapshot = Some(h.snapshot());
            }
            Err(e) => return Err(Error::io(stages::dedup::history::SNAPSHOT, e)),
        }
    }
    let new = fingerprint::Fingerprint::new(&plan.config.table, &parts);
    let refuse = |what: String| {
        Error::Config(stages::ConfigError::new(
            plan.output.clone(),
            format!(
                "{what}\nstart over with a new output path (--output), or add --restart to clear {} and run from scratch",
                plan.output
            ),
        ))
    };
    match store.read(fingerprint::FILE) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                refuse(format!(
                    "{}/{}: unreadable ({e})",
                    plan.output,
                    fingerprint::FILE
                ))
            })?;
            let format = v.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
            if format > fingerprint::FORMAT as u64 {
                return Err(refuse(format!(
                    "{}/{}: written by a newer curate (format {format}; this one reads {})",
                    plan.output,
                    fingerprint::FILE,
                    fingerprint::FORMAT
                )));
            }
            let old: fingerprint::Fingerprint = serde_json::from_value(v).map_err(|e| {
                refuse(format!(
                    "{}/{}: unreadable ({e})",
                    plan.output,
                    fingerprint::FILE
                ))
            })?;
            if old != new {
                let old_parts: Option<Vec<PartitionSpec>> = store
                    .read("partitions.json")
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let diffs = old.differences(&new, old_parts.as_deref(), &parts);
                return Err(refuse(format!(
                    "this output holds a run of a different input or configuration; resuming it would mix two runs:\n  {}",
                    diffs.join("\n  ")
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if store.exists("partitions.json")? || !store.list("completions")?.is_empty() {
                return Err(refuse(format!(
                    "this output holds a run without {} (started by an older curate), so it cannot tell whether this run is the same",
                    fingerprint::FILE
                )));
            }
            store.put(
                fingerprint::FILE,
                &serde_json::to_vec_pretty(&new).expect("serializable"),
            )?;
        }
        Err(e) => {
            return Err(Error::io(
                format!("{}/{}", plan.output, fingerprint::FILE),
                e,
            ))
        }
    }
    if !store.exists("partitions.json")? {
        store.put(
            "partitions.json",
            &serde_json::to_vec_pretty(&parts).expect("serializable"),
        )?;
    }
    if let Some(s) = snapshot {
        store.put(
            stages::dedup::history::SNAPSHOT,
            &serde_json::to_vec_pretty(&s).expect("serializable"),
        )?;
    }
    Ok(parts)
}

/// `--restart`: deletes everything under a run's output so that the run starts from scratch.
/// Refuses a non-empty folder that holds no curate run (a mistyped path must not lose data).
/// Returns the number of files deleted.
pub fn clear_output(plan: &Plan) -> Result<usize> {
    let raw = &plan.config.raw;
    let scratch = std::env::temp_dir().join("curate-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let store = storage::open_store(&plan.output, &raw.storage, &scratch)
        .map_err(|e| Error::io(&plan.output, e))?;
    let files = store.list("")?;
    if files.is_empty() {
        return Ok(0);
    }
    let is_run = store.exists(fingerprint::FILE)?
        || store.exists("partitions.json")?
        || files.iter().any(|f| f.starts_with("completions/"));
    if !is_run {
        return Err(Error::Config(stages::ConfigError::new(
            plan.output.clone(),
            format!(
                "--restart: {} holds {} file(s) but no curate run (no {} or partitions.json); refusing to delete them",
                plan.output,
                files.len(),
                fingerprint::FILE
            ),
        )));
    }
    match store.local_path("") {
        Some(local) => {
            std::fs::remove_dir_all(&local).map_err(|e| Error::io(&local, e))?;
        }
        None => {
            for f in &files {
                store.delete(f)?;
            }
        }
    }
    Ok(files.len())
}

/// With `[history]`, the number of partitions of input files the history has not seen (for a
/// run into an output that has not started yet); `None` otherwise. Reads only.
pub fn new_input_partitions(plan: &Plan) -> Result<Option<usize>> {
    let Some(h) = &plan.history else {
        return Ok(None);
    };
    let raw = &plan.config.raw;
    let scratch = std::env::temp_dir().join("curate-scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
    let out = storage::open_store(&plan.output, &raw.storage, &scratch)
        .map_err(|e| Error::io(&plan.output, e))?;
    if out.exists(fingerprint::FILE)? {
        return Ok(None);
    }
    let hist = crate::history::History::open(h, &raw.storage, &scratch)?;
    Ok(Some(
        crate::history::only_new(list_partitions(plan)?, &hist.inputs()?).len(),
    ))
}

/// Lists the inputs of a plan and splits them into partitions.
pub fn list_partitions(plan: &Plan) -> Result<Vec<PartitionSpec>> {
    let raw = &plan.config.raw;
    let locations = plan.inputs.clone();
    let mut listed = Vec::new();
    if let (Some(listing), Some(base)) = (&raw.input.listing, &raw.input.base_uri) {
        let listing =
            if crate::config::plan::is_uri(listing) || PathBuf::from(listing).is_absolute() {
                listing.clone()
            } else {
                plan.base_dir.join(listing).to_string_lossy().into_owned()
            };
        let mut keys = storage::read_listing(&listing, base, &raw.storage)
            .map_err(|e| Error::io(&listing, e))?;
        if let Some(n) = raw.input.limit_files {
            keys.truncate(n);
        }
        // A crawl lists ~90,000 files: no HEAD per file. Each becomes one whole-file partition.
        listed = keys
            .into_iter()
            .map(|uri| storage::InputObject { uri, size: 0 })
            .collect();
    }
    let mut objects = if locations.is_empty() {
        Vec::new()
    } else {
        storage::list_inputs(&locations, &raw.storage).map_err(|e| Error::other(e.to_string()))?
    };
    objects.extend(listed);
    if let Some(n) = raw.input.limit_files {
        objects.truncate(n);
    }
    let parts = partition::split(&objects, raw.input.format, raw.input.partition_bytes.0)
        .map_err(Error::other)?;
    // Large Parquet files split by row group: only their footers are read here, in parallel
    // (one ranged read each on S3). A file that is not Parquet stays whole (its reader counts
    // it); a storage failure fails the plan, which must not depend on a transient error.
    let big = raw.input.partition_bytes.0;
    let footers: std::collections::HashMap<String, Option<Vec<(u64, u64)>>> = parts
        .iter()
        .filter(|p| p.format == stages::read::Format::Parquet && p.size > big)
        .collect::<Vec<_>>()
        .par_iter()
        .map(|p| {
            use crate::io::row_groups::{OpenError, ParquetFile};
            match ParquetFile::open(&p.uri, p.size, &raw.storage) {
                Ok(f) => Ok((p.uri.clone(), Some(f.row_group_spans()))),
                Err(OpenError::NotParquet(_)) => Ok((p.uri.clone(), None)),
                Err(OpenError::Io(e)) => Err(e),
            }
        })
        .collect::<Result<_>>()?;
    Ok(partition::split_row_groups(parts, big, |uri| {
        footers.get(uri).cloned().flatten()
    }))
}
