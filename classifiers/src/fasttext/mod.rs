//! fastText models: reading `.bin`/`.ftz`, inference, and training.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::TextClassifier;

/// Loads a fastText model file.
pub fn load(path: &Path) -> Result<Box<dyn TextClassifier>> {
    Err(Error::format(path, "fastText models are not supported yet"))
}
