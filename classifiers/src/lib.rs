//! # classifiers: language ID, fastText and ONNX models, and their training
//!
//! Every model serves through [`TextClassifier`] (label names and batch probabilities) and
//! loads through [`load_model`]. Stages here register in [`REGISTRY`], which the engine reads
//! beside `stages::registry::REGISTRY`.

pub mod error;
pub mod fasttext;
pub mod langid;
pub mod model;
pub mod onnx;
pub mod semantic;
pub mod static_embed;
#[doc(hidden)]
pub mod testing;

pub use error::{Error, Result};
pub use model::{load_model, TextClassifier};

/// The stages of this crate.
pub static REGISTRY: &[&stages::StageDef] = &[
    &fasttext::stage::DEF,
    &langid::stage::DEF,
    &onnx::stage::DEF,
    &semantic::DEF,
];
