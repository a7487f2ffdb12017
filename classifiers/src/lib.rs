//! # classifiers: language ID, fastText and ONNX models, and their training
//!
//! Stages here register in [`REGISTRY`], which the engine reads beside `stages::registry::REGISTRY`.

/// The stages of this crate.
pub static REGISTRY: &[&stages::StageDef] = &[];
