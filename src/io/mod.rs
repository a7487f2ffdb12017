//! Document I/O: the Parquet codec (`parquet`: signals as typed columns), the one Parquet reader
//! (`row_groups`), Parquet input (`input_parquet`), a run's stored documents read back
//! (`stored`), JSONL.zst outputs and labelled records.

pub mod input_parquet;
pub mod jsonl;
pub mod parquet;
pub mod records;
pub mod row_groups;
pub mod stored;

use stages::{Document, Result};

/// A sink of documents for one partition; `finish` makes its file visible atomically.
pub trait DocSink: Send {
    fn write(&mut self, docs: &[&Document]) -> Result<()>;
    /// Commits the file; returns (documents, bytes written).
    fn finish(self: Box<Self>) -> Result<(u64, u64)>;
}

/// Text of the flags column: `stage:reason` joined by commas.
pub fn flags_text(doc: &Document) -> Option<String> {
    if doc.flags.is_empty() {
        return None;
    }
    Some(
        doc.flags
            .iter()
            .map(|(s, r)| format!("{s}:{r}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// Parses the flags column back.
pub fn parse_flags(s: &str) -> Vec<(std::sync::Arc<str>, std::sync::Arc<str>)> {
    s.split(',')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (a, b) = f.split_once(':').unwrap_or((f, ""));
            (a.into(), b.into())
        })
        .collect()
}
