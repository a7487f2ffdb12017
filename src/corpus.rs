//! A corpus of many runs (the nights of a dedup history) read as one: which runs, in which
//! order, their stores behind one [`Store`], and which of their documents later runs retracted.
//! `curate stats`, `mix`, `ablate` and `inspect` take several run folders (or `--history`)
//! through it.
//!
//! Order: a run's night is the commit order its history snapshot (`history.json`) implies
//! (one more than the largest generation it saw; 0 without one), then its location, so the
//! same runs given in any order make one corpus, and nights read in the order they ran.
//! Retractions: a document of run `i` is out when a later run (`j > i`) names its id in its
//! `retractions.jsonl` (the same id kept again by a later run stays in that run), or names its
//! site (`safety.domains` across nights: `{"domain": ...}`; a URL whose host is the domain or
//! ends with `.` + the domain).

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use stages::{Error, ObjectWriter, Result, Store};

use crate::config::raw::StorageSection;

/// One run of a corpus.
pub struct CorpusRun {
    pub dir: String,
    pub store: Arc<dyn Store>,
}

/// The runs of `outputs` and of the history at `history`, deduplicated, in corpus order.
pub fn list_runs(
    outputs: &[String],
    history: Option<&str>,
    storage: &StorageSection,
    scratch: &std::path::Path,
) -> Result<Vec<CorpusRun>> {
    let mut dirs: Vec<String> = outputs.to_vec();
    if let Some(h) = history {
        let hist = crate::history::History::open(h, storage, scratch)?;
        for c in &hist.live {
            dirs.extend(c.runs.iter().cloned());
        }
    }
    let mut keyed = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for d in dirs {
        if !seen.insert(d.clone()) {
            continue;
        }
        let store =
            crate::storage::open_store(&d, storage, scratch).map_err(|e| Error::io(&d, e))?;
        let night = match stages::dedup::history::snapshot(store.as_ref()) {
            Ok(Some(s)) => stages::dedup::minhash_history::tonight_seq(&s),
            Ok(None) => 0,
            Err(e) => return Err(Error::io(&d, e)),
        };
        keyed.push((night, d, store));
    }
    keyed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(keyed
        .into_iter()
        .map(|(_, dir, store)| CorpusRun { dir, store })
        .collect())
}

/// Which documents later runs retracted: id hash (xxh3-128 of the stable id) -> the last run
/// that retracted it.
#[derive(Default)]
pub struct Retractions {
    by: HashMap<u128, usize>,
    /// Retracted sites -> the last run that retracted them.
    domains: HashMap<String, usize>,
}

impl Retractions {
    /// Reads every run's `retractions.jsonl` (absent: none).
    pub fn load(runs: &[CorpusRun]) -> Result<Retractions> {
        let (mut by, mut domains) = (HashMap::new(), HashMap::new());
        for (i, r) in runs.iter().enumerate() {
            let b = match r.store.read("retractions.jsonl") {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("{}/retractions.jsonl", r.dir), e)),
            };
            for (n, l) in String::from_utf8_lossy(&b).lines().enumerate() {
                let v: serde_json::Value = serde_json::from_str(l).map_err(|e| {
                    Error::other(format!("{}/retractions.jsonl:{}: {e}", r.dir, n + 1))
                })?;
                if let Some(d) = v["domain"].as_str() {
                    domains.insert(d.to_ascii_lowercase(), i);
                    continue;
                }
                let id = v["id_xxh3"]
                    .as_str()
                    .and_then(|h| u128::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        Error::other(format!("{}/retractions.jsonl:{}: no id_xxh3", r.dir, n + 1))
                    })?;
                by.insert(id, i);
            }
        }
        Ok(Retractions { by, domains })
    }

    /// Whether document `id` (at `url`) of run `run` is retracted by a later run, by id or
    /// by site.
    pub fn excludes(&self, run: usize, id: &str, url: Option<&str>) -> bool {
        if !self.by.is_empty()
            && self
                .by
                .get(&xxhash_rust::xxh3::xxh3_128(id.as_bytes()))
                .is_some_and(|&j| j > run)
        {
            return true;
        }
        match url {
            Some(u) if !self.domains.is_empty() => self.site_retracted(run, u),
            _ => false,
        }
    }

    /// Whether sites are retracted (then [`Self::excludes`] needs URLs).
    pub fn has_domains(&self) -> bool {
        !self.domains.is_empty()
    }

    fn site_retracted(&self, run: usize, url: &str) -> bool {
        let host =
            stages::safety::url_filter::normalize_domain(stages::safety::url_filter::url_host(url));
        let mut d = host.as_str();
        loop {
            if self.domains.get(d).is_some_and(|&j| j > run) {
                return true;
            }
            match d.find('.') {
                Some(i) => d = &d[i + 1..],
                None => return false,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.by.len() + self.domains.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by.is_empty() && self.domains.is_empty()
    }
}

/// The path prefix of run `i` inside a [`CorpusStore`].
pub fn run_prefix(i: usize) -> String {
    format!("run-{i:04}/")
}

/// Splits a corpus path into (run, path in the run).
pub fn split_path(path: &str) -> Option<(usize, &str)> {
    let rest = path.strip_prefix("run-")?;
    let (i, p) = rest.split_once('/')?;
    Some((i.parse().ok()?, p))
}

/// Every run's store under `run-NNNN/`: what a mix reads documents through.
pub struct CorpusStore {
    pub runs: Vec<Arc<dyn Store>>,
}

impl CorpusStore {
    fn route<'a>(&'a self, path: &'a str) -> io::Result<(&'a dyn Store, &'a str)> {
        match split_path(path) {
            Some((i, p)) if i < self.runs.len() => Ok((self.runs[i].as_ref(), p)),
            _ => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{path}: not a path of a run of this corpus"),
            )),
        }
    }
}

impl Store for CorpusStore {
    fn root(&self) -> String {
        self.runs
            .iter()
            .map(|s| s.root())
            .collect::<Vec<_>>()
            .join(" + ")
    }
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        let (s, p) = self.route(path)?;
        s.read(p)
    }
    fn open(&self, path: &str) -> io::Result<Box<dyn Read + Send>> {
        let (s, p) = self.route(path)?;
        s.open(p)
    }
    fn open_range(&self, path: &str, start: u64, len: u64) -> io::Result<Box<dyn Read + Send>> {
        let (s, p) = self.route(path)?;
        s.open_range(p, start, len)
    }
    fn exists(&self, path: &str) -> io::Result<bool> {
        let (s, p) = self.route(path)?;
        s.exists(p)
    }
    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for (i, s) in self.runs.iter().enumerate() {
            let pre = run_prefix(i);
            if let Some(rest) = prefix.strip_prefix(&pre) {
                out.extend(s.list(rest)?.into_iter().map(|f| format!("{pre}{f}")));
            }
        }
        Ok(out)
    }
    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let (s, p) = self.route(path)?;
        s.create(p)
    }
    fn delete(&self, path: &str) -> io::Result<()> {
        let (s, p) = self.route(path)?;
        s.delete(p)
    }
    fn local_path(&self, path: &str) -> Option<PathBuf> {
        let (s, p) = self.route(path).ok()?;
        s.local_path(p)
    }
}
