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
pub mod wordpiece;

pub use error::{Error, Result};
pub use model::TextClassifier;

/// Loads a model: a directory is a static model with a head (`static.json`, see
/// [`static_embed`]) or an ONNX model (`model.onnx`, `tokenizer.json` and its config), a
/// file is a fastText `.bin`/`.ftz`.
pub fn load_model(path: &std::path::Path) -> Result<Box<dyn TextClassifier>> {
    if static_embed::is_static(path) {
        Ok(Box::new(static_embed::StaticClassifier::open(path)?))
    } else if path.is_dir() {
        onnx::load(path)
    } else {
        fasttext::load(path)
    }
}

/// The stages of this crate.
pub static REGISTRY: &[&stages::StageDef] = &[
    &fasttext::stage::DEF,
    &langid::stage::DEF,
    &onnx::stage::DEF,
    &semantic::DEF,
];
