//! The document model: one page with its identity, text, metadata, signals and verdict.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::signals::Signals;
use crate::text::{TextViews, Word};

/// Where a document came from: the input file (or object URI) and the byte offset of its record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRef {
    pub file: Arc<str>,
    pub offset: u64,
}

/// Whether a document is kept, or dropped by a stage for a named reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Verdict {
    #[default]
    Kept,
    Dropped {
        stage: Arc<str>,
        reason: Arc<str>,
    },
}

impl Verdict {
    pub fn is_kept(&self) -> bool {
        matches!(self, Verdict::Kept)
    }
}

/// One page flowing through the pipeline.
///
/// `html` holds the decoded payload of a web page until an extraction stage turns it into
/// `text`; documents read from text sources (WET, JSONL, Parquet) start with `text` set.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// Stable id: the WARC-Record-ID, the id field of a JSONL/Parquet row, else a content hash.
    pub id: String,
    pub url: String,
    /// Crawl time in seconds since the Unix epoch (UTC), when known.
    pub crawl_date: Option<i64>,
    pub source: SourceRef,
    /// Decoded (UTF-8) HTML payload, before extraction.
    pub html: Option<String>,
    text: String,
    /// Free-form string metadata (content type, charset, HTTP status, title, ...).
    pub metadata: BTreeMap<String, String>,
    pub signals: Signals,
    pub verdict: Verdict,
    /// Checks failed by stages in tag mode, as `(stage, reason)`: the document kept flowing.
    pub flags: Vec<(Arc<str>, Arc<str>)>,
    views: TextViews,
}

impl Document {
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Replaces the text and invalidates the cached views.
    pub fn set_text(&mut self, text: String) {
        self.text = text;
        self.views.clear();
    }

    /// Takes the text out (leaving it empty) and invalidates the cached views.
    pub fn take_text(&mut self) -> String {
        self.views.clear();
        std::mem::take(&mut self.text)
    }

    /// Line byte ranges of the text (computed once).
    pub fn lines(&self) -> &[std::ops::Range<u32>] {
        self.views.lines(&self.text)
    }

    /// Line byte ranges as Python's `str.splitlines()` cuts them (computed once).
    pub fn py_lines(&self) -> &[std::ops::Range<u32>] {
        self.views.py_lines(&self.text)
    }

    /// Iterator over the line strings.
    pub fn line_strs(&self) -> impl Iterator<Item = &str> {
        let t = &self.text;
        self.lines()
            .iter()
            .map(move |r| &t[r.start as usize..r.end as usize])
    }

    /// Word tokens of the text (computed once).
    pub fn words(&self) -> &[Word] {
        self.views.words(&self.text)
    }

    /// xxh3 hash of each word, parallel to [`Document::words`] (computed once).
    pub fn word_hashes(&self) -> &[u64] {
        self.views.word_hashes(&self.text)
    }

    /// Paragraph byte ranges: blocks between blank lines (computed once).
    pub fn paragraphs(&self) -> &[std::ops::Range<u32>] {
        self.views.paragraphs(&self.text)
    }

    /// Length of the text in Unicode scalar values (computed once).
    pub fn char_count(&self) -> usize {
        self.views.char_count(&self.text)
    }

    /// Normalized text (computed once): lower-cased letter-and-digit runs joined by single spaces.
    pub fn normalized(&self) -> &str {
        self.views.normalized(&self.text)
    }

    /// The document's language from the LID signal, if a language-ID stage ran.
    pub fn lang(&self) -> Option<&str> {
        self.signals.str(crate::LANG_SIGNAL)
    }

    /// An id derived from content when the source has none: xxh3 of URL and text.
    pub fn content_id(url: &str, text: &[u8]) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(url.as_bytes());
        h.update(&[0]);
        h.update(text);
        format!("xxh3:{:032x}", h.digest128())
    }
}
