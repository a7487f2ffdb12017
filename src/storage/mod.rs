//! Storage: local folders and S3-compatible object stores, for inputs and outputs.
//!
//! Local paths use the filesystem directly. `s3://bucket/prefix` URIs go through
//! `object_store` with endpoint, region and credentials from `[storage]` or the usual AWS
//! environment variables, and retries with exponential backoff and decorrelated jitter on
//! throttling (503 SlowDown), 5xx and dropped connections. Streaming reads that break mid-body
//! resume from the last byte received with a range request.

pub mod s3;

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use stages::{LocalStore, Store};

use crate::config::raw::StorageSection;

/// The process-wide async runtime used for object-store calls from synchronous code.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("curate-io")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// An input object: its location and size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputObject {
    pub uri: String,
    pub size: u64,
}

/// Opens the output store for a folder path or an `s3://` URI.
pub fn open_store(root: &str, cfg: &StorageSection, scratch: &Path) -> io::Result<Arc<dyn Store>> {
    if root.starts_with("s3://") {
        Ok(Arc::new(s3::S3Store::new(root, cfg, scratch)?))
    } else {
        let p = root.strip_prefix("file://").unwrap_or(root);
        Ok(Arc::new(LocalStore::new(p)?))
    }
}

/// Expands input locations: local files, globs, folders (every file under it) and `s3://`
/// prefixes. The result is sorted and de-duplicated, so partition numbering is deterministic.
pub fn list_inputs(locations: &[String], cfg: &StorageSection) -> io::Result<Vec<InputObject>> {
    let mut out = Vec::new();
    for loc in locations {
        if loc.starts_with("s3://") {
            out.extend(s3::list(loc, cfg)?);
            continue;
        }
        let loc = loc.strip_prefix("file://").unwrap_or(loc);
        if loc.contains(['*', '?', '[']) {
            let paths = glob::glob(loc).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bad glob {loc:?}: {e}"),
                )
            })?;
            let mut n = 0;
            for p in paths {
                let p = p.map_err(io::Error::from)?;
                if p.is_file() {
                    out.push(local_object(&p)?);
                    n += 1;
                }
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no file matches {loc:?}"),
                ));
            }
        } else {
            let p = PathBuf::from(loc);
            if p.is_dir() {
                let mut files = Vec::new();
                walk_dir(&p, &mut files)?;
                for f in files {
                    out.push(local_object(&f)?);
                }
            } else if p.is_file() {
                out.push(local_object(&p)?);
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("input not found: {loc}"),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    out.dedup_by(|a, b| a.uri == b.uri);
    Ok(out)
}

fn walk_dir(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk_dir(&p, out)?;
        } else if !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn local_object(p: &Path) -> io::Result<InputObject> {
    let size = std::fs::metadata(p)?.len();
    let abs = std::path::absolute(p)?;
    Ok(InputObject {
        uri: abs.to_string_lossy().into_owned(),
        size,
    })
}

/// Reads a Common Crawl listing file (`warc.paths.gz`: one key per line) and resolves each key
/// against `base_uri`.
pub fn read_listing(
    listing: &str,
    base_uri: &str,
    cfg: &StorageSection,
) -> io::Result<Vec<String>> {
    let raw = open_read(listing, 0, cfg)?;
    let r = stages::read::decompress(raw)?;
    let mut keys = Vec::new();
    for line in io::BufReader::new(r).lines_compat() {
        let line = line?;
        let k = line.trim();
        if k.is_empty() || k.starts_with('#') {
            continue;
        }
        keys.push(join_uri(base_uri, k));
    }
    Ok(keys)
}

/// Joins a base URI or folder and a relative key.
pub fn join_uri(base: &str, key: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{}", key.trim_start_matches('/'))
    } else {
        format!("{base}/{}", key.trim_start_matches('/'))
    }
}

trait LinesCompat {
    fn lines_compat(self) -> io::Lines<Self>
    where
        Self: Sized;
}
impl<R: io::BufRead> LinesCompat for R {
    fn lines_compat(self) -> io::Lines<Self> {
        self.lines()
    }
}

/// Opens an input for streaming reads from byte `start`.
pub fn open_read(uri: &str, start: u64, cfg: &StorageSection) -> io::Result<Box<dyn Read + Send>> {
    if uri.starts_with("s3://") {
        return Ok(Box::new(s3::ObjectReader::open(uri, start, cfg)?));
    }
    let p = uri.strip_prefix("file://").unwrap_or(uri);
    let mut f = std::fs::File::open(p)?;
    if start > 0 {
        f.seek(SeekFrom::Start(start))?;
    }
    Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
}

/// A readable, seekable input (for aligning byte ranges to record starts).
pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Opens an input for random access.
pub fn open_seekable(uri: &str, size: u64, cfg: &StorageSection) -> io::Result<Box<dyn ReadSeek>> {
    if uri.starts_with("s3://") {
        return Ok(Box::new(s3::RangeReader::new(uri, size, cfg)?));
    }
    let p = uri.strip_prefix("file://").unwrap_or(uri);
    Ok(Box::new(io::BufReader::with_capacity(
        1 << 16,
        std::fs::File::open(p)?,
    )))
}
