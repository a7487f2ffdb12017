//! Quality filters: each computes signals from the shared text views and judges them against
//! thresholds from its config.
//!
//! The heuristic filters (Gopher repetition and quality, C4, FineWeb) follow the definitions of
//! the papers as datatrove 0.10.1 implements them, with the same defaults, so that published
//! thresholds mean the same thing here; `docs/heuristics.md` gives the definitions and the
//! measured agreement. [`kl`] scores a document's token distribution against a reference.

pub mod c4;
pub mod fineweb;
pub mod gopher_quality;
pub mod gopher_repetition;
pub mod kl;
pub mod length;

/// Reason and signal names for n-gram sizes, which must be `&'static str` (n = 1..=16).
pub(crate) const NGRAM_SIZES: std::ops::RangeInclusive<usize> = 1..=16;

/// Builds a stage from a TOML section body, for tests.
#[cfg(test)]
pub(crate) fn build_for_test(
    def: &crate::stage::StageDef,
    name: &str,
    toml: &str,
) -> Result<Box<dyn crate::Stage>, crate::ConfigError> {
    let t: toml::Table = toml.parse().expect("valid TOML");
    let args = crate::StageArgs {
        name,
        table: &t,
        base_dir: std::path::Path::new("."),
        purpose: crate::Purpose::Run,
        seed: 0,
    };
    match (def.build)(&args)? {
        crate::Built::Map(s) => Ok(s),
        crate::Built::Global(_) => panic!("{} is a global stage", def.kind),
    }
}
