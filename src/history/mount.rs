//! A run's store with the dedup history mounted under [`MOUNT`]: global steps read the
//! history's generations through the same `Store` they read their own files with, locally or
//! on S3, without a second handle in the stage contract.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use stages::dedup::history::MOUNT;
use stages::{ObjectWriter, Store};

/// Routes `@history/...` to the history's store and everything else to the run's.
pub struct MountStore {
    pub run: Arc<dyn Store>,
    pub history: Arc<dyn Store>,
}

impl MountStore {
    fn route<'a>(&'a self, path: &'a str) -> (&'a dyn Store, &'a str) {
        match path.strip_prefix(MOUNT) {
            Some(rest) => (self.history.as_ref(), rest),
            None => (self.run.as_ref(), path),
        }
    }
}

impl Store for MountStore {
    fn root(&self) -> String {
        self.run.root()
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let (s, p) = self.route(path);
        s.read(p)
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let (s, p) = self.route(path);
        s.open(p)
    }
    fn open_range(&self, path: &str, start: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let (s, p) = self.route(path);
        s.open_range(p, start, len)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        let (s, p) = self.route(path);
        s.exists(p)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        match prefix.strip_prefix(MOUNT) {
            Some(rest) => Ok(self
                .history
                .list(rest)?
                .into_iter()
                .map(|f| format!("{MOUNT}{f}"))
                .collect()),
            None => self.run.list(prefix),
        }
    }
    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let (s, p) = self.route(path);
        s.create(p)
    }
    fn delete(&self, path: &str) -> io::Result<()> {
        let (s, p) = self.route(path);
        s.delete(p)
    }
    fn local_path(&self, path: &str) -> Option<PathBuf> {
        let (s, p) = self.route(path);
        s.local_path(p)
    }
}
