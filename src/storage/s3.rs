//! S3-compatible object storage through `object_store`: the output [`Store`], streaming and
//! ranged input readers, and listing.
//!
//! Uploads are staged in a local scratch file and become visible only when complete: a single
//! PUT for small objects, a completed multipart upload for large ones (an aborted or killed
//! upload is never visible). Reads that fail mid-stream resume from the last byte received.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use stages::{ObjectWriter, Store};

use super::{runtime, InputObject};
use crate::config::raw::StorageSection;

/// Splits `s3://bucket/key` into bucket and key.
pub fn parse_uri(uri: &str) -> io::Result<(String, String)> {
    let rest = uri.strip_prefix("s3://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not an s3:// URI: {uri}"),
        )
    })?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no bucket in {uri}"),
        ));
    }
    Ok((bucket.to_string(), key.trim_end_matches('/').to_string()))
}

fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { path, .. } => {
            io::Error::new(io::ErrorKind::NotFound, format!("not found: {path}"))
        }
        other => io::Error::other(other.to_string()),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The client for one bucket (cached per bucket and settings).
pub fn client(bucket: &str, cfg: &StorageSection) -> io::Result<Arc<dyn ObjectStore>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let key = format!("{bucket}|{cfg:?}");
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().expect("cache lock").get(&key) {
        return Ok(c.clone());
    }
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = cfg
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"));
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e);
    }
    let region = cfg
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    b = b.with_region(region);
    if let Some(k) = &cfg.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(k) = &cfg.secret_access_key {
        b = b.with_secret_access_key(k);
    }
    if let Some(t) = &cfg.session_token {
        b = b.with_token(t);
    }
    let allow_http = cfg.allow_http.unwrap_or_else(|| {
        endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
    });
    b = b.with_allow_http(allow_http);
    b = b.with_virtual_hosted_style_request(cfg.virtual_hosted_style.unwrap_or(false));
    b = b.with_retry(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: cfg.max_retries.unwrap_or(10),
        retry_timeout: Duration::from_secs(cfg.retry_timeout_s.unwrap_or(180)),
    });
    b = b.with_client_options(
        ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(Duration::from_secs(10))
            .with_timeout(Duration::from_secs(120)),
    );
    let store: Arc<dyn ObjectStore> = Arc::new(b.build().map_err(to_io)?);
    cache.lock().expect("cache lock").insert(key, store.clone());
    Ok(store)
}

/// Lists the objects under an `s3://bucket/prefix` (or the single object it names).
/// The size of one object (a HEAD request).
pub fn size(uri: &str, cfg: &StorageSection) -> io::Result<u64> {
    let (bucket, key) = parse_uri(uri)?;
    let store = client(&bucket, cfg)?;
    let meta = runtime()
        .block_on(store.head(&ObjPath::from(key.as_str())))
        .map_err(to_io)?;
    Ok(meta.size)
}

pub fn list(uri: &str, cfg: &StorageSection) -> io::Result<Vec<InputObject>> {
    let (bucket, key) = parse_uri(uri)?;
    let store = client(&bucket, cfg)?;
    let prefix = ObjPath::from(key.as_str());
    let metas: Vec<object_store::ObjectMeta> = runtime().block_on(async {
        let p = if key.is_empty() { None } else { Some(&prefix) };
        let mut out = Vec::new();
        let mut s = store.list(p);
        while let Some(m) = s.next().await {
            out.push(m.map_err(to_io)?);
        }
        io::Result::Ok(out)
    })?;
    let mut out: Vec<InputObject> = metas
        .into_iter()
        .map(|m| InputObject {
            uri: format!("s3://{bucket}/{}", m.location),
            size: m.size,
        })
        .collect();
    if out.is_empty() && !key.is_empty() {
        // Not a prefix: maybe a single object.
        let meta = runtime().block_on(store.head(&prefix)).map_err(to_io)?;
        out.push(InputObject {
            uri: format!("s3://{bucket}/{key}"),
            size: meta.size,
        });
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(out)
}

/// A streaming reader over an object from a start offset; resumes after dropped connections.
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    pos: u64,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    chunk: Bytes,
    retries_left: usize,
    eof: bool,
}

impl ObjectReader {
    pub fn open(uri: &str, start: u64, cfg: &StorageSection) -> io::Result<Self> {
        let (bucket, key) = parse_uri(uri)?;
        let store = client(&bucket, cfg)?;
        let mut r = ObjectReader {
            store,
            path: ObjPath::from(key.as_str()),
            pos: start,
            stream: None,
            chunk: Bytes::new(),
            retries_left: cfg.max_retries.unwrap_or(10),
            eof: false,
        };
        r.connect()?;
        Ok(r)
    }

    fn connect(&mut self) -> io::Result<()> {
        let opts = GetOptions {
            range: (self.pos > 0).then_some(GetRange::Offset(self.pos)),
            ..Default::default()
        };
        match runtime().block_on(self.store.get_opts(&self.path, opts)) {
            Ok(r) => {
                self.stream = Some(r.into_stream());
                Ok(())
            }
            // A range starting at the end of the object: nothing left.
            Err(object_store::Error::Generic { source, .. })
                if source.to_string().contains("Range") && self.pos > 0 =>
            {
                self.eof = true;
                Ok(())
            }
            Err(e) => Err(to_io(e)),
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.chunk.is_empty() {
                let n = buf.len().min(self.chunk.len());
                buf[..n].copy_from_slice(&self.chunk[..n]);
                self.chunk = self.chunk.slice(n..);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.eof {
                return Ok(0);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(0);
            };
            match runtime().block_on(stream.next()) {
                Some(Ok(b)) => self.chunk = b,
                None => {
                    self.eof = true;
                    return Ok(0);
                }
                Some(Err(e)) => {
                    // The body broke mid-stream: resume from the last byte received.
                    if self.retries_left == 0 {
                        return Err(to_io(e));
                    }
                    self.retries_left -= 1;
                    tracing::warn!(
                        "read of {} broke at byte {}: {e}; resuming",
                        self.path,
                        self.pos
                    );
                    std::thread::sleep(Duration::from_millis(200));
                    self.stream = None;
                    self.connect()?;
                }
            }
        }
    }
}

/// A seekable reader that fetches windows of an object with range requests.
pub struct RangeReader {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    size: u64,
    pos: u64,
    window_start: u64,
    window: Bytes,
}

const WINDOW: u64 = 1 << 20;

impl RangeReader {
    pub fn new(uri: &str, size: u64, cfg: &StorageSection) -> io::Result<Self> {
        let (bucket, key) = parse_uri(uri)?;
        Ok(RangeReader {
            store: client(&bucket, cfg)?,
            path: ObjPath::from(key.as_str()),
            size,
            pos: 0,
            window_start: 0,
            window: Bytes::new(),
        })
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size {
            return Ok(0);
        }
        let in_window = self.pos >= self.window_start
            && self.pos < self.window_start + self.window.len() as u64;
        if !in_window {
            let end = (self.pos + WINDOW).min(self.size);
            self.window = runtime()
                .block_on(self.store.get_range(&self.path, self.pos..end))
                .map_err(to_io)?;
            self.window_start = self.pos;
        }
        let off = (self.pos - self.window_start) as usize;
        let n = buf.len().min(self.window.len() - off);
        buf[..n].copy_from_slice(&self.window[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.size as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if p < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}

/// The output store on an S3 prefix.
pub struct S3Store {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: String,
    scratch: PathBuf,
    part_size: usize,
}

impl S3Store {
    pub fn new(root: &str, cfg: &StorageSection, scratch: &Path) -> io::Result<Self> {
        let (bucket, prefix) = parse_uri(root)?;
        std::fs::create_dir_all(scratch)?;
        Ok(S3Store {
            store: client(&bucket, cfg)?,
            bucket,
            prefix,
            scratch: scratch.to_path_buf(),
            part_size: cfg
                .multipart_part_size
                .map(|b| b.0 as usize)
                .unwrap_or(8 << 20)
                .max(5 << 20),
        })
    }

    fn key(&self, path: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(path)
        } else {
            ObjPath::from(format!("{}/{}", self.prefix, path))
        }
    }
}

impl Store for S3Store {
    fn root(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let key = self.key(path);
        runtime()
            .block_on(async { self.store.get(&key).await?.bytes().await })
            .map(|b| b.to_vec())
            .map_err(to_io)
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let key = self.key(path);
        let mut r = ObjectReader {
            store: self.store.clone(),
            path: key,
            pos: 0,
            stream: None,
            chunk: Bytes::new(),
            retries_left: 10,
            eof: false,
        };
        r.connect()?;
        Ok(Box::new(io::BufReader::with_capacity(1 << 20, r)))
    }

    fn open_range(&self, path: &str, start: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        // A ranged GET from `start` (resumed like `open` if the body breaks), cut at `len`.
        let mut r = ObjectReader {
            store: self.store.clone(),
            path: self.key(path),
            pos: start,
            stream: None,
            chunk: Bytes::new(),
            retries_left: 10,
            eof: false,
        };
        if len > 0 {
            r.connect()?;
        }
        Ok(Box::new(io::BufReader::with_capacity(
            (len as usize).clamp(512, 1 << 16),
            r.take(len),
        )))
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        match runtime().block_on(self.store.head(&self.key(path))) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let full = self.key(prefix.trim_end_matches('/'));
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out: Vec<String> = runtime().block_on(async {
            let mut out = Vec::new();
            let mut s = self.store.list(Some(&full));
            while let Some(m) = s.next().await {
                let m = m.map_err(to_io)?;
                let loc = m.location.to_string();
                out.push(loc.strip_prefix(&strip).unwrap_or(&loc).to_string());
            }
            io::Result::Ok(out)
        })?;
        out.sort();
        Ok(out)
    }

    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let tmp = tempfile::NamedTempFile::new_in(&self.scratch)?;
        Ok(Box::new(S3Writer {
            store: self.store.clone(),
            key: self.key(path),
            file: Some(io::BufWriter::with_capacity(1 << 20, tmp)),
            part_size: self.part_size,
        }))
    }

    fn delete(&self, path: &str) -> io::Result<()> {
        match runtime().block_on(self.store.delete(&self.key(path))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io(e)),
        }
    }
}

/// Stages bytes in a local temporary file; `finish` uploads them atomically.
struct S3Writer {
    store: Arc<dyn ObjectStore>,
    key: ObjPath,
    file: Option<io::BufWriter<tempfile::NamedTempFile>>,
    part_size: usize,
}

impl Write for S3Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("write after finish").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("flush after finish").flush()
    }
}

impl ObjectWriter for S3Writer {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let w = self.file.take().expect("finish twice");
        let tmp = w.into_inner().map_err(|e| e.into_error())?;
        let mut f = tmp.reopen()?;
        let size = f.metadata()?.len() as usize;
        let store = self.store.clone();
        let key = self.key.clone();
        let part = self.part_size;
        if size <= part {
            let mut buf = Vec::with_capacity(size);
            f.read_to_end(&mut buf)?;
            runtime()
                .block_on(store.put(&key, PutPayload::from(buf)))
                .map_err(to_io)?;
            return Ok(());
        }
        runtime().block_on(async move {
            let mut up = store.put_multipart(&key).await.map_err(to_io)?;
            let result: io::Result<()> = async {
                let mut left = size;
                while left > 0 {
                    let n = left.min(part);
                    let mut buf = vec![0u8; n];
                    f.read_exact(&mut buf)?;
                    up.put_part(PutPayload::from(buf)).await.map_err(to_io)?;
                    left -= n;
                }
                up.complete().await.map_err(to_io)?;
                Ok(())
            }
            .await;
            if result.is_err() {
                let _ = up.abort().await;
            }
            result
        })
    }
}
