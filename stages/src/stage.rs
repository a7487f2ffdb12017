//! The stage contracts: per-document stages, and global stages that cross a phase barrier.
//!
//! Most work fits the per-document shape ([`Stage`]): a pure function of one document plus
//! read-only resources (word lists, models), run in any order. A stage computes its signals in
//! [`Stage::process`] and gives its verdict from those signals alone in [`Stage::judge`], so
//! that selection can re-judge stored signals with new thresholds without re-running the stage.
//!
//! Work that needs global knowledge (dedup clustering, line counts over a bucket) is a
//! [`GlobalStage`]: a [`Collector`] sees every document at the end of the phase before the
//! barrier and writes keys to storage, [`GlobalStep`]s run across the barrier as
//! `--task i --tasks N` workers, and an [`Applier`] decides each document in the next phase.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{ConfigError, StageArgs};
use crate::declare::Declared;
use crate::document::Document;
use crate::error::Result;
use crate::signals::{SignalSpec, Signals};
use crate::stats::StepStats;
use crate::store::Store;

/// A stage's decision about one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Keep,
    /// Drop, with a reason from the stage's declared [`Stage::reasons`].
    Drop(&'static str),
}

impl Outcome {
    pub fn is_keep(&self) -> bool {
        matches!(self, Outcome::Keep)
    }
}

/// A per-document stage.
pub trait Stage: Send + Sync {
    /// The instance name (the key of its `[stages.NAME]` section).
    fn name(&self) -> &str;

    /// The stage's declared signals and threshold rules ([`crate::declare`]): when present,
    /// `signals`, `reasons`, `thresholds` and `judge` come from it.
    fn declared(&self) -> Option<&Declared> {
        None
    }

    /// The signals this stage writes, declared before any document is seen.
    fn signals(&self) -> Vec<SignalSpec> {
        self.declared().map(Declared::signals).unwrap_or_default()
    }

    /// Every reason this stage may drop a document for.
    fn reasons(&self) -> Vec<&'static str> {
        self.declared().map(Declared::reasons).unwrap_or_default()
    }

    /// Computes signals (and may edit the text, recording what it removed as counts). May drop
    /// for reasons that are not thresholds on signals (unparsable page, empty extraction).
    fn process(&self, doc: &mut Document) -> Outcome;

    /// Whether the runner should hand this stage whole batches ([`Stage::process_batch`], which
    /// then parallelizes internally) instead of calling `process` per document in parallel.
    fn batched(&self) -> bool {
        false
    }

    /// Processes a batch of live documents in order; stages that gain from batching (ONNX
    /// models) override it and return `true` from [`Stage::batched`]. One outcome per document.
    fn process_batch(&self, docs: &mut [&mut Document]) -> Vec<Outcome> {
        docs.iter_mut().map(|d| self.process(d)).collect()
    }

    /// The threshold verdict from this stage's signals alone. The runner calls it after
    /// `process`; selection calls it again over stored signals when thresholds change.
    fn judge(&self, signals: &Signals) -> Outcome {
        self.declared()
            .and_then(|d| d.judge(signals))
            .map_or(Outcome::Keep, Outcome::Drop)
    }

    /// Configured thresholds as `(signal, value)`, drawn on the report's histograms.
    fn thresholds(&self) -> Vec<(String, f64)> {
        self.declared()
            .map(Declared::thresholds)
            .unwrap_or_default()
    }

    /// Whether this stage's signals are a pure function of other stages' signals (a mix
    /// bucket from language and topic scores). Selection then re-derives them with
    /// [`Stage::derive`] under the current config instead of trusting the stored values.
    fn derives(&self) -> bool {
        false
    }

    /// Recomputes this stage's derived signals from the others (see [`Stage::derives`]).
    fn derive(&self, _signals: &mut Signals) {}
}

/// Context of one partition for collectors and appliers of a global stage.
#[derive(Clone)]
pub struct PartitionCtx {
    /// Where the stage keeps its files (the run's output store).
    pub store: Arc<dyn Store>,
    /// The stage's own folder in the store, e.g. `work/minhash`.
    pub dir: String,
    /// This partition's index and the number of partitions in the phase.
    pub partition: usize,
    pub partitions: usize,
    /// Local scratch folder for spills.
    pub scratch: PathBuf,
    /// Seed from the pipeline config.
    pub seed: u64,
}

/// Context of a global step.
#[derive(Clone)]
pub struct StepCtx {
    pub store: Arc<dyn Store>,
    pub dir: String,
    /// Number of partitions of the phase the collectors ran in.
    pub partitions: usize,
    pub scratch: PathBuf,
    /// Memory budget for this task, in bytes (spill to `scratch` above it).
    pub memory_budget: usize,
    pub threads: usize,
    pub seed: u64,
}

/// Sees, in order, every document that leaves the phase before a barrier.
pub trait Collector: Send {
    /// Called once per document, in output order: the n-th call is row n of the partition.
    fn collect(&mut self, doc: &Document) -> Result<()>;
    /// Called for each document a stage of this phase dropped (not a row of the partition's
    /// output), for collectors that count drops; most ignore them.
    fn dropped(&mut self, _doc: &Document) -> Result<()> {
        Ok(())
    }
    /// Writes the partition's side outputs (atomically).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// One global step between phases, split into independent tasks.
pub trait GlobalStep: Send + Sync {
    fn name(&self) -> &str;
    /// How many tasks this step splits into (may read what earlier steps wrote).
    fn tasks(&self, ctx: &StepCtx) -> Result<usize>;
    /// Runs one task; must be idempotent (a re-run after a crash overwrites its outputs).
    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats>;
}

/// Decides each document of one partition in the phase after a barrier.
pub trait Applier: Send {
    /// Called once per document in input order: the n-th call is row n of the partition.
    fn apply(&mut self, doc: &mut Document) -> Outcome;
}

/// A stage that needs global knowledge: collect, steps across the barrier, apply.
pub trait GlobalStage: Send + Sync {
    fn name(&self) -> &str;
    /// The stage's declared signals and rules (see [`Stage::declared`]).
    fn declared(&self) -> Option<&Declared> {
        None
    }
    /// Signals the applier writes.
    fn signals(&self) -> Vec<SignalSpec> {
        self.declared().map(Declared::signals).unwrap_or_default()
    }
    fn reasons(&self) -> Vec<&'static str> {
        self.declared().map(Declared::reasons).unwrap_or_default()
    }
    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>>;
    fn steps(&self) -> Vec<Box<dyn GlobalStep>>;
    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>>;
    /// The threshold verdict from stored signals (see [`Stage::judge`]).
    fn judge(&self, signals: &Signals) -> Outcome {
        self.declared()
            .and_then(|d| d.judge(signals))
            .map_or(Outcome::Keep, Outcome::Drop)
    }

    /// Configured thresholds as `(signal, value)` (see [`Stage::thresholds`]).
    fn thresholds(&self) -> Vec<(String, f64)> {
        self.declared()
            .map(Declared::thresholds)
            .unwrap_or_default()
    }
}

/// What a registry entry builds from a config section.
pub enum Built {
    Map(Box<dyn Stage>),
    Global(Box<dyn GlobalStage>),
}

impl Built {
    pub fn name(&self) -> &str {
        match self {
            Built::Map(s) => s.name(),
            Built::Global(s) => s.name(),
        }
    }
    pub fn signals(&self) -> Vec<SignalSpec> {
        match self {
            Built::Map(s) => s.signals(),
            Built::Global(s) => s.signals(),
        }
    }
    pub fn reasons(&self) -> Vec<&'static str> {
        match self {
            Built::Map(s) => s.reasons(),
            Built::Global(s) => s.reasons(),
        }
    }
    pub fn judge(&self, signals: &Signals) -> Outcome {
        match self {
            Built::Map(s) => s.judge(signals),
            Built::Global(s) => s.judge(signals),
        }
    }
    pub fn thresholds(&self) -> Vec<(String, f64)> {
        match self {
            Built::Map(s) => s.thresholds(),
            Built::Global(s) => s.thresholds(),
        }
    }
    /// Whether selection re-derives this stage's signals ([`Stage::derives`]).
    pub fn derives(&self) -> bool {
        matches!(self, Built::Map(s) if s.derives())
    }
    /// Re-derives this stage's signals from the others ([`Stage::derive`]).
    pub fn derive(&self, signals: &mut Signals) {
        if let Built::Map(s) = self {
            s.derive(signals)
        }
    }
}

/// A stage kind: its name, a one-line description, an example section body, and its builder.
pub struct StageDef {
    /// `family.name`, e.g. `filter.gopher_quality`.
    pub kind: &'static str,
    pub about: &'static str,
    /// A TOML section body that builds this stage (tests parse every example).
    pub example: &'static str,
    pub build: fn(&StageArgs) -> Result<Built, ConfigError>,
}

impl StageDef {
    /// The part after the dot: `[stages.gopher_quality]` needs no `type` when its name is this.
    pub fn short_name(&self) -> &'static str {
        self.kind.rsplit('.').next().unwrap_or(self.kind)
    }
}
