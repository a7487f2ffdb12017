//! The error type of the classifiers crate: model files that cannot be read or run.

use std::path::PathBuf;

/// A model that cannot be loaded or run, with the file it came from.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a model of the expected format (or a version we do not read).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// Inference or training failed.
    #[error("{0}")]
    Run(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
