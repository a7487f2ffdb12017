//! ONNX sequence-classification models served through onnxruntime.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::TextClassifier;

/// Loads an ONNX model directory.
pub fn load(path: &Path) -> Result<Box<dyn TextClassifier>> {
    Err(Error::format(path, "ONNX models are not supported yet"))
}
