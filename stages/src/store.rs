//! Output storage: a local folder or an object-store prefix, with atomic writes.
//!
//! Stages and the runner write through [`Store`] with paths relative to the run's output root
//! (`docs/part-00042.parquet`, `work/minhash/band-03/part-00042.bin`). A writer's bytes become
//! visible only when [`ObjectWriter::finish`] succeeds: locally a `.tmp` file renamed into
//! place, on S3 a completed multipart upload. A writer dropped without `finish` leaves nothing,
//! so a killed run never shows a partial object as complete.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A writer whose bytes become visible atomically on `finish`.
pub trait ObjectWriter: Write + Send {
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Storage for a run's outputs and intermediate files.
pub trait Store: Send + Sync {
    /// A human-readable root (a path or `s3://bucket/prefix`).
    fn root(&self) -> String;
    /// Reads a whole object.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Opens an object for streaming reads.
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send>>;
    /// Opens the bytes `start..start + len` of an object for streaming reads (global stages
    /// read one section of each partition's key file). The default reads from the beginning
    /// and discards the bytes before `start`; stores override it with a seek or a range request.
    fn open_range(&self, path: &str, start: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let mut r = self.open(path)?;
        let skipped = io::copy(&mut (&mut r).take(start), &mut io::sink())?;
        if skipped < start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{path}: range starts at {start}, past the end ({skipped} bytes)"),
            ));
        }
        Ok(Box::new(r.take(len)))
    }
    /// Whether an object exists.
    fn exists(&self, path: &str) -> io::Result<bool>;
    /// Object paths under a prefix (a folder), recursively, sorted, relative to the root.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Starts an atomic write.
    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>>;
    /// Writes a whole object atomically.
    fn put(&self, path: &str, bytes: &[u8]) -> io::Result<()> {
        let mut w = self.create(path)?;
        w.write_all(bytes)?;
        w.finish()
    }
    /// Deletes an object (no error when absent).
    fn delete(&self, path: &str) -> io::Result<()>;
    /// The local path of an object when the store is a local folder (fast paths, mmap).
    fn local_path(&self, _path: &str) -> Option<PathBuf> {
        None
    }
}

/// A store in a local folder.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(LocalStore { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// Removes `*.tmp` files older than `min_age` left by killed runs (younger ones may belong
    /// to a worker that is still writing).
    pub fn clean_temporaries(&self, min_age: std::time::Duration) -> io::Result<usize> {
        fn walk(dir: &Path, n: &mut usize, min_age: std::time::Duration) -> io::Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                let p = e.path();
                if e.file_type()?.is_dir() {
                    walk(&p, n, min_age)?;
                } else if p.extension().is_some_and(|x| x == "tmp") {
                    let age = e.metadata()?.modified()?.elapsed().unwrap_or_default();
                    if age >= min_age {
                        fs::remove_file(&p)?;
                        *n += 1;
                    }
                }
            }
            Ok(())
        }
        let mut n = 0;
        walk(&self.root, &mut n, min_age)?;
        Ok(n)
    }
}

struct LocalWriter {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<BufWriter<fs::File>>,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.as_mut().expect("write after finish").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("flush after finish").flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn finish(mut self: Box<Self>) -> io::Result<()> {
        let f = self.file.take().expect("finish twice");
        let f = f.into_inner().map_err(|e| e.into_error())?;
        // Durable before visible: the rename must never expose a file whose bytes are not on disk.
        f.sync_all()?;
        drop(f);
        fs::rename(&self.tmp, &self.dest)
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Store for LocalStore {
    fn root(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.full(path))
    }

    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 16,
            fs::File::open(self.full(path))?,
        )))
    }

    fn open_range(&self, path: &str, start: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        use std::io::{Seek, SeekFrom};
        let mut f = fs::File::open(self.full(path))?;
        f.seek(SeekFrom::Start(start))?;
        // Small buffers: a k-way merge holds one reader per partition.
        let cap = (len as usize).clamp(512, 1 << 16);
        Ok(Box::new(io::BufReader::with_capacity(cap, f.take(len))))
    }

    fn exists(&self, path: &str) -> io::Result<bool> {
        Ok(self.full(path).exists())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
            let rd = match fs::read_dir(dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for e in rd {
                let e = e?;
                let p = e.path();
                if e.file_type()?.is_dir() {
                    walk(root, &p, out)?;
                } else if p.extension().is_none_or(|x| x != "tmp") {
                    let rel = p.strip_prefix(root).expect("under root");
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
            Ok(())
        }
        let mut out = Vec::new();
        walk(&self.root, &self.full(prefix), &mut out)?;
        out.sort();
        Ok(out)
    }

    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let dest = self.full(path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        // Unique per writer: concurrent workers may write the same object (identical bytes).
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = dest.clone().into_os_string();
        tmp.push(format!(".{}-{seq}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let file = fs::File::create(&tmp)?;
        Ok(Box::new(LocalWriter {
            tmp,
            dest,
            file: Some(BufWriter::with_capacity(1 << 16, file)),
        }))
    }

    fn delete(&self, path: &str) -> io::Result<()> {
        match fs::remove_file(self.full(path)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn local_path(&self, path: &str) -> Option<PathBuf> {
        Some(self.full(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStore::new(dir.path()).unwrap();
        {
            let mut w = s.create("a/b.bin").unwrap();
            w.write_all(b"partial").unwrap();
            // dropped without finish: nothing visible
        }
        assert!(!s.exists("a/b.bin").unwrap());
        assert!(s.list("").unwrap().is_empty());
        s.put("a/b.bin", b"whole").unwrap();
        s.put("a/c/d.bin", b"x").unwrap();
        assert_eq!(s.list("a").unwrap(), vec!["a/b.bin", "a/c/d.bin"]);
        assert_eq!(s.read("a/b.bin").unwrap(), b"whole");
        let mut part = Vec::new();
        s.open_range("a/b.bin", 1, 3)
            .unwrap()
            .read_to_end(&mut part)
            .unwrap();
        assert_eq!(part, b"hol");
        // The trait's default (used by stores without a seek) gives the same bytes.
        struct Plain(LocalStore);
        impl Store for Plain {
            fn root(&self) -> String {
                self.0.root()
            }
            fn read(&self, p: &str) -> io::Result<Vec<u8>> {
                self.0.read(p)
            }
            fn open(&self, p: &str) -> io::Result<Box<dyn Read + Send>> {
                self.0.open(p)
            }
            fn exists(&self, p: &str) -> io::Result<bool> {
                self.0.exists(p)
            }
            fn list(&self, p: &str) -> io::Result<Vec<String>> {
                self.0.list(p)
            }
            fn create(&self, p: &str) -> io::Result<Box<dyn ObjectWriter>> {
                self.0.create(p)
            }
            fn delete(&self, p: &str) -> io::Result<()> {
                self.0.delete(p)
            }
        }
        let plain = Plain(s.clone());
        let mut part = Vec::new();
        plain
            .open_range("a/b.bin", 1, 3)
            .unwrap()
            .read_to_end(&mut part)
            .unwrap();
        assert_eq!(part, b"hol");
        assert!(plain.open_range("a/b.bin", 9, 1).is_err());
    }
}
