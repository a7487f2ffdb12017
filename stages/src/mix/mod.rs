//! Mixing: which bucket each document belongs to, which documents (and how many copies of
//! each) make up a training mix, and the benchmark decontamination that guards it.

pub mod bucket;
pub mod decontam;
pub mod plan;
pub mod topic_rules;

pub use bucket::BUCKET_SIGNAL;
pub use plan::{
    plan, plan_by_language, BucketOptions, BucketReport, Candidate, LanguageCount, MixConfig,
    MixPlan, MixReport, Sampling,
};
