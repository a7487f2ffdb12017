//! Parquet input (`format = "parquet"`): documents from any Parquet file with a text column,
//! such as FineWeb-style datasets (`text`, `id`, `url`, `dump`, `date`, `language`, ...) or
//! curate's own document files (read back whole, with their signals and verdicts).
//!
//! A partition is a file or a range of its row groups (see `partition.rs`); it streams one
//! row group at a time, reading only the mapped columns, so memory stays at one row group's
//! pages and one batch whatever the file's size. Columns map by name: `text_field`,
//! `id_field`, `url_field`, `date_field` (default: the first of `crawl_date`, `date`,
//! `timestamp`); every other column (or only `metadata_fields`, when set) becomes document
//! metadata, carried to the output. Bad input is skipped and counted, never fatal:
//! `not_parquet` (the footer cannot be read: truncated or not Parquet; one per partition),
//! `no_text_column` (one per partition), `bad_row_group` (each row of a row group whose pages
//! cannot be decoded), `missing_text` (null text) and `too_large`: the list is
//! `stages::read::skip_reasons(Format::Parquet)`.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use stages::read::{ReadEvent, ReadOptions};
use stages::{Document, Result, SourceRef};

use super::parquet::TextCol;
use super::row_groups::{OpenError, ParquetFile};
use crate::config::raw::{InputSection, StorageSection};

/// Date columns tried in order when `date_field` is not set (as the JSONL reader does).
const DATE_COLUMNS: &[&str] = &["crawl_date", "date", "timestamp"];

/// How columns map to documents.
#[derive(Clone, Debug)]
pub struct Columns {
    pub text: String,
    pub id: String,
    pub url: String,
    /// The crawl date column (`None`: the first of [`DATE_COLUMNS`] present).
    pub date: Option<String>,
    /// The columns kept as metadata (`None`: every other column).
    pub metadata: Option<Vec<String>>,
    pub max_record_bytes: usize,
}

impl Columns {
    pub fn from_input(input: &InputSection) -> Self {
        Columns {
            text: input.text_field.clone(),
            id: input.id_field.clone(),
            url: input.url_field.clone(),
            date: input.date_field.clone(),
            metadata: input.metadata_fields.clone(),
            max_record_bytes: input.max_record_bytes.0 as usize,
        }
    }

    pub fn from_read_options(opts: &ReadOptions) -> Self {
        Columns {
            text: opts.text_field.clone(),
            id: opts.id_field.clone(),
            url: opts.url_field.clone(),
            date: None,
            metadata: None,
            max_record_bytes: opts.max_record_bytes,
        }
    }
}

/// Reads a whole Parquet file (for commands outside a run: training, references).
pub fn read(
    uri: &str,
    cfg: &StorageSection,
    opts: &ReadOptions,
) -> Result<Box<dyn Iterator<Item = ReadEvent> + Send>> {
    let file = ParquetFile::open(uri, 0, cfg)?;
    Ok(Box::new(Rows::new(
        file,
        None,
        Columns::from_read_options(opts),
        1024,
    )))
}

/// Reads a partition of a Parquet input: row groups `row_groups` (all when `None`) of the
/// file `uri` of `size` bytes. A file that is not Parquet yields one `not_parquet` skip; only
/// a storage failure is an error.
pub fn read_partition(
    uri: &str,
    size: u64,
    row_groups: Option<(usize, usize)>,
    cfg: &StorageSection,
    cols: &Columns,
    batch_rows: usize,
) -> Result<Box<dyn Iterator<Item = ReadEvent> + Send>> {
    match ParquetFile::open(uri, size, cfg) {
        Ok(file) => Ok(Box::new(Rows::new(
            file,
            row_groups,
            cols.clone(),
            batch_rows,
        ))),
        Err(OpenError::NotParquet(msg)) => {
            tracing::warn!("{msg}; skipped");
            Ok(Box::new(std::iter::once(ReadEvent::Skip {
                reason: "not_parquet",
                offset: 0,
                bytes: size,
            })))
        }
        Err(OpenError::Io(e)) => Err(e),
    }
}

/// The documents of a range of row groups, one row group at a time.
struct Rows {
    file: ParquetFile,
    cols: Columns,
    source: Arc<str>,
    /// Curate's own document file: rows decode whole through the codec.
    own: bool,
    /// Top-level columns to read (`None`: all).
    projection: Option<Vec<String>>,
    date: Option<String>,
    groups: std::ops::Range<usize>,
    /// The current row group's reader and its rows not yet read.
    reader: Option<(ParquetRecordBatchReader, u64)>,
    /// File row number of the next row.
    row: u64,
    batch_rows: usize,
    pending: VecDeque<ReadEvent>,
}

impl Rows {
    fn new(
        file: ParquetFile,
        row_groups: Option<(usize, usize)>,
        cols: Columns,
        batch_rows: usize,
    ) -> Self {
        let n = file.num_row_groups();
        let (a, b) = row_groups.unwrap_or((0, n));
        let groups = a.min(n)..b.min(n);
        let row = (0..groups.start).map(|g| file.row_group_rows(g)).sum();
        let schema = file.schema().clone();
        let has = |c: &str| schema.column_with_name(c).is_some();
        let own = cols.text == "text" && has("verdict") && has("source_file");
        let date = match &cols.date {
            Some(d) => Some(d.clone()).filter(|d| has(d)),
            None => DATE_COLUMNS.iter().find(|c| has(c)).map(|c| c.to_string()),
        };
        let projection = match (&cols.metadata, own) {
            (Some(meta), false) => {
                let mut p = vec![cols.text.clone(), cols.id.clone(), cols.url.clone()];
                p.extend(date.clone());
                p.extend(meta.iter().cloned());
                Some(p)
            }
            _ => None,
        };
        let mut pending = VecDeque::new();
        if !has(&cols.text) {
            tracing::warn!(
                "{}: no column {:?} (columns: {}); skipped",
                file.name(),
                cols.text,
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            pending.push_back(ReadEvent::Skip {
                reason: "no_text_column",
                offset: row,
                bytes: 0,
            });
        }
        let groups = if pending.is_empty() { groups } else { 0..0 };
        Rows {
            source: Arc::from(file.name()),
            file,
            cols,
            own,
            projection,
            date,
            groups,
            reader: None,
            row,
            batch_rows,
            pending,
        }
    }

    /// Counts the unread rows of the current row group as `bad_row_group`.
    fn skip_rest(&mut self, left: u64, why: &dyn std::fmt::Display) {
        tracing::warn!(
            "{}: row group unreadable after row {} ({why}); {left} row(s) skipped",
            self.source,
            self.row
        );
        for _ in 0..left {
            self.pending.push_back(ReadEvent::Skip {
                reason: "bad_row_group",
                offset: self.row,
                bytes: 0,
            });
            self.row += 1;
        }
    }

    fn decode(&mut self, batch: &RecordBatch) {
        if self.own {
            match super::parquet::from_batch(batch) {
                Ok(docs) => {
                    self.row += docs.len() as u64;
                    self.pending.extend(docs.into_iter().map(ReadEvent::Doc));
                }
                Err(e) => self.skip_rest(batch.num_rows() as u64, &e),
            }
            return;
        }
        let col = |name: &str| batch.column_by_name(name).and_then(TextCol::new);
        let (text, id, url) = (
            col(&self.cols.text),
            col(&self.cols.id),
            col(&self.cols.url),
        );
        let date = self
            .date
            .as_deref()
            .and_then(|d| batch.column_by_name(d))
            .map(dates);
        let mapped = [&self.cols.text, &self.cols.id, &self.cols.url];
        let meta: Vec<(&str, TextCol)> = batch
            .schema_ref()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| !mapped.contains(&f.name()))
            .filter(|(f, _)| {
                self.cols
                    .metadata
                    .as_ref()
                    .is_none_or(|m| m.contains(f.name()))
            })
            .filter_map(|(f, c)| Some((f.name().as_str(), TextCol::display(c)?)))
            .collect();
        for i in 0..batch.num_rows() {
            let at = self.row;
            self.row += 1;
            let Some(t) = text.as_ref().and_then(|t| t.get(i)) else {
                self.pending.push_back(ReadEvent::Skip {
                    reason: "missing_text",
                    offset: at,
                    bytes: 0,
                });
                continue;
            };
            if t.len() > self.cols.max_record_bytes {
                self.pending.push_back(ReadEvent::Skip {
                    reason: "too_large",
                    offset: at,
                    bytes: t.len() as u64,
                });
                continue;
            }
            let url = url.as_ref().and_then(|u| u.get(i)).unwrap_or_default();
            let id = match id.as_ref().and_then(|c| c.get(i)) {
                Some(id) => id.to_string(),
                None => Document::content_id(url, t.as_bytes()),
            };
            let mut d = Document::new(id, t);
            d.url = url.to_string();
            d.source = SourceRef {
                file: self.source.clone(),
                offset: at,
            };
            d.crawl_date = date.as_ref().and_then(|c| c.get(i));
            for (name, c) in &meta {
                if let Some(v) = c.get(i) {
                    d.metadata.insert(name.to_string(), v.to_string());
                }
            }
            self.pending.push_back(ReadEvent::Doc(d));
        }
    }
}

impl Iterator for Rows {
    type Item = ReadEvent;

    fn next(&mut self) -> Option<ReadEvent> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let Some((reader, left)) = self.reader.as_mut() else {
                let g = self.groups.next()?;
                let rows = self.file.row_group_rows(g);
                let cols: Option<Vec<&str>> = self
                    .projection
                    .as_ref()
                    .map(|p| p.iter().map(String::as_str).collect());
                match self
                    .file
                    .batches(Some(vec![g]), cols.as_deref(), None, self.batch_rows)
                {
                    Ok(r) => self.reader = Some((r, rows)),
                    Err(e) => self.skip_rest(rows, &e),
                }
                continue;
            };
            // A decoder that panics on corrupt pages must not take the run down: the row
            // group is then counted as bad like any other decoding error.
            let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
                .unwrap_or_else(|_| {
                    Some(Err(arrow::error::ArrowError::ParquetError(
                        "the Parquet decoder panicked".into(),
                    )))
                });
            match next {
                Some(Ok(batch)) => {
                    *left = left.saturating_sub(batch.num_rows() as u64);
                    self.decode(&batch);
                }
                Some(Err(e)) => {
                    let left = *left;
                    self.reader = None;
                    self.skip_rest(left, &e);
                }
                None => {
                    let left = *left;
                    self.reader = None;
                    if left > 0 {
                        self.skip_rest(left, &"fewer rows than its footer says");
                    }
                }
            }
        }
    }
}

/// Crawl dates in seconds: timestamps and dates of any unit, integers (seconds) and strings
/// (parsed as the JSONL reader parses them).
fn dates(c: &ArrayRef) -> DateCol {
    match c.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            match TextCol::new(c) {
                Some(t) => DateCol::Text(t),
                None => DateCol::None,
            }
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            arrow::compute::cast(c, &DataType::Timestamp(TimeUnit::Second, None))
                .and_then(|s| arrow::compute::cast(&s, &DataType::Int64))
                .map_or(DateCol::None, DateCol::Seconds)
        }
        DataType::Int32 | DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            arrow::compute::cast(c, &DataType::Int64).map_or(DateCol::None, DateCol::Seconds)
        }
        _ => DateCol::None,
    }
}

enum DateCol {
    Text(TextCol),
    Seconds(ArrayRef),
    None,
}

impl DateCol {
    fn get(&self, i: usize) -> Option<i64> {
        match self {
            DateCol::Text(t) => t.get(i).and_then(stages::time::parse_datetime),
            DateCol::Seconds(a) => {
                let a = a.as_any().downcast_ref::<Int64Array>()?;
                (!a.is_null(i)).then(|| a.value(i))
            }
            DateCol::None => None,
        }
    }
}
