//! The one Parquet reader: opens a file by its footer (a local file in place, an S3 object by
//! ranged reads, or bytes already in memory) and reads chosen row groups with chosen columns,
//! one bounded batch at a time.
//!
//! Input, the runner's intermediate phases, the mix, training records and `inspect` all read
//! through it. A reader holds the footer, one page per projected column and one batch; it never
//! holds a whole file, so a file of any size streams in the memory of its largest page set.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::reader::{ChunkReader, Length};
use stages::{Error, Result, Store};

use crate::config::raw::StorageSection;
use crate::storage::ReadSeek;

/// Where a file's bytes come from.
enum Chunks {
    /// A local file, read in place.
    File(File),
    /// A remote object read by ranges (seek + read under a lock: one reader per file).
    Remote(Arc<Mutex<Box<dyn ReadSeek>>>, u64),
    /// A file already in memory.
    Bytes(Bytes),
}

impl Chunks {
    /// Another handle on the same bytes (a reader per row-group pass).
    fn handle(&self) -> std::io::Result<Chunks> {
        Ok(match self {
            Chunks::File(f) => Chunks::File(f.try_clone()?),
            Chunks::Remote(r, n) => Chunks::Remote(r.clone(), *n),
            Chunks::Bytes(b) => Chunks::Bytes(b.clone()),
        })
    }
}

/// A reader at an offset of a remote object: each read seeks first, since other readers of
/// the same object move its position.
struct RemoteRead {
    inner: Arc<Mutex<Box<dyn ReadSeek>>>,
    pos: u64,
}

impl Read for RemoteRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut r = self.inner.lock().expect("remote reader lock");
        r.seek(SeekFrom::Start(self.pos))?;
        let n = r.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        match self {
            Chunks::File(f) => f.len(),
            Chunks::Remote(_, n) => *n,
            Chunks::Bytes(b) => b.len() as u64,
        }
    }
}

impl ChunkReader for Chunks {
    type T = Box<dyn Read + Send>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(match self {
            Chunks::File(f) => Box::new(f.get_read(start)?),
            Chunks::Remote(r, _) => Box::new(std::io::BufReader::with_capacity(
                1 << 16,
                RemoteRead {
                    inner: r.clone(),
                    pos: start,
                },
            )),
            Chunks::Bytes(b) => Box::new(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Chunks::File(f) => f.get_bytes(start, length),
            Chunks::Remote(r, _) => {
                let mut r = r.lock().expect("remote reader lock");
                r.seek(SeekFrom::Start(start))?;
                let mut buf = vec![0u8; length];
                r.read_exact(&mut buf)?;
                Ok(buf.into())
            }
            Chunks::Bytes(b) => b.get_bytes(start, length),
        }
    }
}

/// Why a file could not be opened as Parquet.
#[derive(Debug)]
pub enum OpenError {
    /// The bytes are not a readable Parquet file (no magic, truncated, corrupt footer): bad
    /// input, to be skipped and counted.
    NotParquet(String),
    /// The storage failed (missing file, network): the partition fails and is retried.
    Io(Error),
}

impl From<OpenError> for Error {
    fn from(e: OpenError) -> Error {
        match e {
            OpenError::NotParquet(m) => Error::other(m),
            OpenError::Io(e) => e,
        }
    }
}

/// An open Parquet file: its footer, schema and a handle on its bytes.
pub struct ParquetFile {
    chunks: Chunks,
    meta: ArrowReaderMetadata,
    name: String,
}

impl ParquetFile {
    /// Opens an input file (local path, `file://` or `s3://`) of `size` bytes (0: unknown),
    /// reading only its footer.
    pub fn open(
        uri: &str,
        size: u64,
        cfg: &StorageSection,
    ) -> std::result::Result<Self, OpenError> {
        let chunks = if uri.starts_with("s3://") {
            let io = |e| OpenError::Io(Error::io(uri, e));
            // Listing entries carry no size: one HEAD finds where the footer is.
            let size = match size {
                0 => crate::storage::s3::size(uri, cfg).map_err(io)?,
                n => n,
            };
            let r = crate::storage::open_seekable(uri, size, cfg).map_err(io)?;
            Chunks::Remote(Arc::new(Mutex::new(r)), size)
        } else {
            let p = uri.strip_prefix("file://").unwrap_or(uri);
            Chunks::File(File::open(p).map_err(|e| OpenError::Io(Error::io(uri, e)))?)
        };
        Self::from_chunks(chunks, uri)
    }

    /// Opens a file of a run's store: in place when the store is local, else fetched whole
    /// (the store's files are partitions, written by curate at a bounded size).
    pub fn from_store(store: &dyn Store, path: &str) -> Result<Self> {
        let chunks = match store.local_path(path) {
            Some(p) => Chunks::File(File::open(&p).map_err(|e| Error::io(&p, e))?),
            None => Chunks::Bytes(store.read(path).map_err(|e| Error::io(path, e))?.into()),
        };
        Ok(Self::from_chunks(chunks, path)?)
    }

    /// Opens a file read into memory.
    pub fn from_bytes(bytes: Bytes, name: &str) -> Result<Self> {
        Ok(Self::from_chunks(Chunks::Bytes(bytes), name)?)
    }

    fn from_chunks(chunks: Chunks, name: &str) -> std::result::Result<Self, OpenError> {
        // The page index (when written) lets row selections skip pages; it is optional.
        let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&chunks, opts).map_err(|e| classify(e, name))?;
        Ok(ParquetFile {
            chunks,
            meta,
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> &SchemaRef {
        self.meta.schema()
    }

    pub fn metadata(&self) -> &Arc<ParquetMetaData> {
        self.meta.metadata()
    }

    pub fn num_rows(&self) -> u64 {
        self.metadata().file_metadata().num_rows().max(0) as u64
    }

    pub fn num_row_groups(&self) -> usize {
        self.metadata().num_row_groups()
    }

    /// Rows of row group `rg`.
    pub fn row_group_rows(&self, rg: usize) -> u64 {
        self.metadata().row_group(rg).num_rows().max(0) as u64
    }

    /// The byte span `start..end` of each row group's column chunks, in file order (its
    /// length is what reading the row group costs).
    pub fn row_group_spans(&self) -> Vec<(u64, u64)> {
        self.metadata()
            .row_groups()
            .iter()
            .map(|rg| {
                let spans = rg.columns().iter().map(|c| {
                    let (start, len) = c.byte_range();
                    (start, start + len)
                });
                spans.fold((u64::MAX, 0), |(a, b), (s, e)| (a.min(s), b.max(e)))
            })
            .map(|(a, b)| (a.min(b), b))
            .collect()
    }

    /// A batch reader over `row_groups` (all when `None`), projected to the top-level
    /// `columns` present in the file (all when `None`), optionally restricted to a row
    /// selection, yielding batches of at most `batch_rows` rows.
    pub fn batches(
        &self,
        row_groups: Option<Vec<usize>>,
        columns: Option<&[&str]>,
        selection: Option<RowSelection>,
        batch_rows: usize,
    ) -> Result<ParquetRecordBatchReader> {
        let err = |e: ParquetError| Error::other(format!("{}: {e}", self.name));
        let chunks = self.chunks.handle().map_err(|e| Error::io(&self.name, e))?;
        let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, self.meta.clone())
            .with_batch_size(batch_rows.max(1));
        if let Some(cols) = columns {
            // Arrow's top-level fields are the Parquet schema's roots, in order.
            let roots: Vec<usize> = self
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| cols.contains(&f.name().as_str()))
                .map(|(i, _)| i)
                .collect();
            b = b.with_projection(ProjectionMask::roots(self.meta.parquet_schema(), roots));
        }
        if let Some(rgs) = row_groups {
            b = b.with_row_groups(rgs);
        }
        if let Some(sel) = selection {
            b = b.with_row_selection(sel);
        }
        b.build().map_err(err)
    }
}

/// Storage errors stay errors; anything else about the bytes means "not a Parquet file".
fn classify(e: ParquetError, name: &str) -> OpenError {
    if let ParquetError::External(inner) = &e {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if io.kind() != std::io::ErrorKind::UnexpectedEof {
                return OpenError::Io(Error::io(
                    name,
                    std::io::Error::new(io.kind(), io.to_string()),
                ));
            }
        }
    }
    OpenError::NotParquet(format!("{name}: not a readable Parquet file: {e}"))
}

/// A row selection of sorted distinct rows out of `total`.
pub fn rows_selection(rows: &[u32], total: usize) -> Result<RowSelection> {
    let mut sel = Vec::new();
    let mut at = 0usize;
    for &r in rows {
        let r = r as usize;
        if r < at || r >= total {
            return Err(Error::other(format!("row {r} out of order or range")));
        }
        if r > at {
            sel.push(RowSelector::skip(r - at));
        }
        sel.push(RowSelector::select(1));
        at = r + 1;
    }
    if at < total {
        sel.push(RowSelector::skip(total - at));
    }
    Ok(RowSelection::from(sel))
}

/// Groups consecutive row groups of `sizes` bytes into ranges of at most `budget` bytes (a
/// row group larger than the budget is a range of its own). Returns `start..end` ranges.
pub fn group_row_groups(sizes: &[u64], budget: u64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut acc) = (0usize, 0u64);
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && acc + s > budget {
            out.push((start, i));
            start = i;
            acc = 0;
        }
        acc += s;
    }
    if start < sizes.len() {
        out.push((start, sizes.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_groups_grouped_under_budget() {
        assert_eq!(
            group_row_groups(&[4, 4, 4, 10, 1, 1], 8),
            vec![(0, 2), (2, 3), (3, 4), (4, 6)]
        );
        assert_eq!(group_row_groups(&[], 8), vec![]);
        assert_eq!(group_row_groups(&[100], 8), vec![(0, 1)]);
    }
}
