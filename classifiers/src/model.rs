//! The interface every text classifier serves through: label names and batch probabilities.
//!
//! fastText files, ONNX model directories and static models all load through
//! [`crate::load_model`] (at the crate root, above the model kinds, which implement this trait),
//! so `curate classify` and the classifier stages do not care which kind a path names.

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
