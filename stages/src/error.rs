//! The stages crate's error type: what failed, on which file, at which offset.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Errors that fail a partition or a step (bad records are skipped and counted instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} at byte {offset}: {message}")]
    Format {
        path: PathBuf,
        offset: u64,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn other(msg: impl Into<String>) -> Self {
        Error::Other(msg.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io {
            path: PathBuf::new(),
            source: e,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
