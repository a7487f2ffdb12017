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
    /// The model family, for reports: `fasttext` or `onnx`.
    fn kind(&self) -> &'static str;
}

/// Loads a model: a directory is an ONNX model (`model.onnx`, `tokenizer.json` and its config),
/// a file is a fastText `.bin`/`.ftz`.
pub fn load_model(path: &Path) -> Result<Box<dyn TextClassifier>> {
    if path.is_dir() {
        crate::onnx::load(path)
    } else {
        crate::fasttext::load(path)
    }
}
