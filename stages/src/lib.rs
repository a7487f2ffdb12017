//! # stages: curate's document model, stage contracts, readers and stages
//!
//! Words used throughout (see `docs/architecture.md`):
//! - a [`Document`] is one page: stable id, URL, crawl date, source, text, metadata, typed
//!   [`Signals`] and a [`Verdict`];
//! - a [`Stage`] is a pure function of one document that adds signals and may drop it for a
//!   named reason; its [`Stage::judge`] gives the verdict from signals alone, so thresholds can
//!   change without recomputing;
//! - a [`GlobalStage`] (dedup) collects keys before a phase barrier, runs global steps across
//!   it, and applies decisions after it;
//! - a partition is the unit of work and commit; the engine (crate `curate`) runs partitions,
//!   writes outputs atomically through a [`Store`], and counts everything in [`StageStats`].
//!
//! A stage declares its signals and threshold rules once ([`declare`]); its signals, drop
//! reasons, thresholds and verdicts all come from that table:
//!
//! ```
//! use stages::declare::{count, Declare, Declared, Sig, I64};
//! use stages::{Document, Outcome, Stage};
//!
//! struct MinChars {
//!     chars: Sig<I64>,
//!     declared: Declared,
//! }
//! impl MinChars {
//!     fn new(min: u64) -> Self {
//!         let mut d = Declare::new("min_chars");
//!         let chars = d.signal("chars", "characters of text");
//!         d.min(chars, count(Some(min)), "min", "too_short");
//!         MinChars { chars, declared: d.finish() }
//!     }
//! }
//! impl Stage for MinChars {
//!     fn name(&self) -> &str { "min_chars" }
//!     fn declared(&self) -> Option<&Declared> { Some(&self.declared) }
//!     fn process(&self, doc: &mut Document) -> Outcome {
//!         let n = doc.text().chars().count() as i64;
//!         self.chars.set(&mut doc.signals, n);
//!         Outcome::Keep
//!     }
//! }
//! let mut doc = Document::new("d1", "hello");
//! let stage = MinChars::new(10);
//! stage.process(&mut doc);
//! assert_eq!(stage.reasons(), ["too_short"]);
//! assert_eq!(stage.judge(&doc.signals), Outcome::Drop("too_short"));
//! ```

pub mod clean;
pub mod config;
pub mod declare;
pub mod dedup;
pub mod describe;
pub mod document;
pub mod error;
pub mod extract;
pub mod filter;
pub mod import;
#[cfg(test)]
pub(crate) mod kit;
pub mod lang_rules;
pub mod mix;
pub mod read;
pub mod registry;
pub mod safety;
pub mod signals;
pub mod stage;
pub mod stats;
pub mod store;
pub mod text;
pub mod time;
pub mod tokenize;

pub use config::{ConfigError, Purpose, StageArgs};
pub use document::{Document, SourceRef, Verdict};
pub use error::{Error, Result};
pub use signals::{SignalRef, SignalSpec, SignalType, SignalValue, Signals};
pub use stage::StageDef;
pub use stage::{
    Applier, Built, Collector, GlobalStage, GlobalStep, Outcome, PartitionCtx, Stage, StepCtx,
};
pub use stats::{StageStats, StepStats};
pub use store::{LocalStore, ObjectWriter, Store};

/// The signal holding a document's language code (set by the language-ID stage).
pub const LANG_SIGNAL: &str = "lang";
/// The signal holding the language-ID confidence.
pub const LANG_SCORE_SIGNAL: &str = "lang_score";
