//! The interface every text classifier serves through: label names and batch probabilities.
//!
//! fastText files and ONNX model directories both load through [`load_model`], so `curate
//! classify` and the classifier stages do not care which kind a path names.

use std::path::Path;

use crate::error::Result;

/// A loaded text classifier.
pub trait TextClassifier: Send + Sync {
    /// Label names, in the order of each probability vector.
    fn labels(&self) -> &[String];
    /// One probability vector per text (softmax over labels, or independent sigmoid scores for
    /// multi-label models), in the order of [`TextClassifier::labels`].
    fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// The model family, for reports: `fasttext`, `onnx` or `static`.
    fn kind(&self) -> &'static str;
}

/// Loads a model: a directory is a static model with a head (`static.json`, see
/// [`crate::static_embed`]) or an ONNX model (`model.onnx`, `tokenizer.json` and its config), a
/// file is a fastText `.bin`/`.ftz`.
pub fn load_model(path: &Path) -> Result<Box<dyn TextClassifier>> {
    if crate::static_embed::is_static(path) {
        Ok(Box::new(crate::static_embed::StaticClassifier::open(path)?))
    } else if path.is_dir() {
        crate::onnx::load(path)
    } else {
        crate::fasttext::load(path)
    }
}
