//! Mixing stages: which bucket each document belongs to, and the benchmark decontamination
//! that guards a training mix. Planning and writing the mix itself is the engine's
//! (`curate::mix`).

pub mod bucket;
pub mod decontam;
pub mod topic_rules;

pub use bucket::BUCKET_SIGNAL;
