//! The stage registry: one line per stage kind, from `type = "family.name"` to its builder.
//!
//! Adding a stage takes one file, one line here and its TOML section. Stages of the
//! `classifiers` crate register in that crate's own list; the engine looks in both.

use crate::config::{ConfigError, StageArgs};
use crate::stage::Built;

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

/// The stages of this crate.
pub static REGISTRY: &[&StageDef] = &[
    &crate::filter::length::DEF,
    &crate::import::DEF,
    &crate::mix::bucket::DEF,
    &crate::mix::decontam::DEF,
    &crate::tokenize::count::DEF,
];

/// Finds a stage kind by full kind or short name.
pub fn find<'a>(defs: &[&'a [&'a StageDef]], kind: &str) -> Option<&'a StageDef> {
    defs.iter()
        .flat_map(|d| d.iter())
        .find(|d| d.kind == kind || d.short_name() == kind)
        .copied()
}
