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
pub mod lang_derive;
pub mod length;
pub mod line_length;

/// Reason and signal names for n-gram sizes, which must be `&'static str` (n = 1..=16).
pub(crate) const NGRAM_SIZES: std::ops::RangeInclusive<usize> = 1..=16;
