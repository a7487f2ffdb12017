//! The shared stage test kit: builds a stage from a TOML section the way the engine does, runs
//! it over real pages (per-document stages directly; global stages through collector, steps
//! and applier in one partition), and checks the stage contract that every registered kind
//! keeps (see [`contract`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::config::{ConfigError, Purpose, StageArgs};
use crate::signals::{SignalType, SignalValue};
use crate::stage::{Built, GlobalStage, Outcome, PartitionCtx, Stage, StageDef, StepCtx};
use crate::store::LocalStore;
use crate::Document;

/// Builds `def` as stage `name` from a TOML section body (to process documents, seed 0, paths
/// relative to the crate folder, where tests run).
pub fn build(def: &StageDef, name: &str, toml: &str) -> Result<Built, ConfigError> {
    build_for(def, name, toml, Purpose::Run)
}

/// [`build`] for a given purpose.
pub fn build_for(
    def: &StageDef,
    name: &str,
    toml: &str,
    purpose: Purpose,
) -> Result<Built, ConfigError> {
    build_in(def, name, toml, purpose, Path::new("."))
}

/// [`build`] for a given purpose, with paths relative to `base_dir`.
pub fn build_in(
    def: &StageDef,
    name: &str,
    toml: &str,
    purpose: Purpose,
    base_dir: &Path,
) -> Result<Built, ConfigError> {
    let table: toml::Table = toml
        .parse()
        .unwrap_or_else(|e| panic!("{}: not TOML: {e}", def.kind));
    (def.build)(&StageArgs {
        name,
        table: &table,
        base_dir,
        purpose,
        seed: 0,
    })
}

/// A per-document stage named by its kind's short name.
pub fn map(def: &StageDef, toml: &str) -> Box<dyn Stage> {
    match build(def, def.short_name(), toml) {
        Ok(Built::Map(s)) => s,
        Ok(Built::Global(_)) => panic!("{} is a global stage", def.kind),
        Err(e) => panic!("{}: {e}", def.kind),
    }
}

/// A per-document stage `name` built from `toml`, or the error it gives.
pub fn stage(def: &StageDef, name: &str, toml: &str) -> Result<Box<dyn Stage>, ConfigError> {
    match build(def, name, toml)? {
        Built::Map(s) => Ok(s),
        Built::Global(_) => panic!("{} is a global stage", def.kind),
    }
}

/// The error a section gives (panics when it builds).
pub fn build_err(def: &StageDef, toml: &str) -> ConfigError {
    match build(def, def.short_name(), toml) {
        Ok(_) => panic!("{}: {toml:?} builds", def.kind),
        Err(e) => e,
    }
}

/// Up to `n` real pages (id, url, text) of the extracted-WARC corpus in `../shared`.
pub fn pages(n: usize) -> Option<Vec<Document>> {
    let recs = crate::tokenize::testdata::corpus_records()?;
    Some(
        recs.iter()
            .filter_map(|v| {
                let mut d = Document::new(v["id"].as_str()?, v["text"].as_str()?);
                d.url = v["url"].as_str().unwrap_or_default().to_string();
                Some(d)
            })
            .take(n)
            .collect(),
    )
}

/// Up to `n` real HTML pages (CleanEval) in `../shared`, as documents to extract (bytes that
/// are not UTF-8 are replaced, as the WARC reader does).
pub fn html_pages(n: usize) -> Option<Vec<Document>> {
    use std::io::Read;
    let dir = crate::tokenize::testdata::shared()?.join("data/extraction/cleaneval-final/html");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        testkit::skip!(None; "{} is absent", dir.display())
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    let mut out = Vec::new();
    for p in names.into_iter().take(n) {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        let mut d = Document::new(name.clone(), "");
        d.url = format!("http://cleaneval.example/{name}");
        d.html = Some(String::from_utf8_lossy(&bytes).into_owned());
        out.push(d);
    }
    Some(out)
}

/// Runs a global stage over `docs` as one partition in a scratch store: every document is
/// collected, every step's tasks run, then the applier decides each document in order.
pub fn run_global(g: &dyn GlobalStage, docs: &mut [Document]) -> Vec<Outcome> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path().join("out")).unwrap());
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let pctx = PartitionCtx {
        store: store.clone(),
        dir: format!("work/{}", g.name()),
        partition: 0,
        partitions: 1,
        scratch: scratch.clone(),
        seed: 0,
    };
    let mut c = g.collector(&pctx).unwrap();
    for d in docs.iter() {
        c.collect(d).unwrap();
    }
    c.finish().unwrap();
    let sctx = StepCtx {
        store,
        dir: pctx.dir.clone(),
        partitions: 1,
        scratch,
        memory_budget: 64 << 20,
        threads: 1,
        seed: 0,
    };
    for step in g.steps() {
        for t in 0..step.tasks(&sctx).unwrap() {
            step.run(t, &sctx).unwrap();
        }
    }
    let mut a = g.applier(&pctx).unwrap();
    docs.iter_mut().map(|d| a.apply(d)).collect()
}

/// What one run of a stage over pages gave: per page, its outcome, signals and text.
#[derive(Debug, PartialEq)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    /// Whether a page's drop came from `process` (not a threshold on signals).
    pub process_drops: Vec<bool>,
    pub signals: Vec<BTreeMap<String, SignalValue>>,
    pub texts: Vec<String>,
}

/// Builds `def` from `toml` and runs it over `pages` (drop mode: a per-document stage's
/// verdict is `process`, then `judge` on its signals when `process` kept the page).
pub fn run(def: &StageDef, toml: &str, pages: &[Document], base_dir: &Path) -> Result<Run, String> {
    let mut docs = pages.to_vec();
    let mut process_drops = vec![false; docs.len()];
    let built = build_in(def, def.short_name(), toml, Purpose::Run, base_dir);
    let outcomes = match built.map_err(|e| format!("{}: {e}", def.kind))? {
        Built::Map(s) => docs
            .iter_mut()
            .zip(&mut process_drops)
            .map(|(d, by_process)| match s.process(d) {
                Outcome::Keep => s.judge(&d.signals),
                drop => {
                    *by_process = true;
                    drop
                }
            })
            .collect(),
        Built::Global(g) => run_global(g.as_ref(), &mut docs),
    };
    Ok(Run {
        outcomes,
        process_drops,
        signals: docs
            .iter()
            .map(|d| {
                d.signals
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect()
            })
            .collect(),
        texts: docs.iter().map(|d| d.text().to_string()).collect(),
    })
}

/// What [`contract`] saw: pages in, kept, dropped per reason.
#[derive(Debug, Default)]
pub struct Counts {
    pub pages: usize,
    pub kept: usize,
    pub dropped: BTreeMap<&'static str, usize>,
}

fn type_holds(ty: SignalType, v: &SignalValue) -> bool {
    matches!(
        (ty, v),
        (SignalType::F32 | SignalType::F64, SignalValue::F64(_))
            | (SignalType::I64, SignalValue::I64(_))
            | (SignalType::Bool, SignalValue::Bool(_))
            | (SignalType::Str, SignalValue::Str(_))
    )
}

/// The stage contract, checked for `def` built from `toml` on `pages`:
/// - its signals and reasons are those of its declared table ([`crate::declare`]);
/// - it writes only signals it declares, each with its declared type, and each declared
///   signal on at least one page;
/// - every drop reason it gives is one it declares;
/// - in = kept + dropped;
/// - tag mode keeps what drop mode drops: a per-document stage's threshold verdict comes
///   back the same when its stored signals alone are re-judged (what tag mode and `curate mix`
///   rely on);
/// - a second build over the same pages gives the same outcomes, signals and texts.
///
/// Paths in `toml` are relative to `base_dir`.
pub fn contract(
    def: &StageDef,
    toml: &str,
    pages: &[Document],
    base_dir: &Path,
) -> Result<Counts, String> {
    let kind = def.kind;
    let built = build_in(def, def.short_name(), toml, Purpose::Run, base_dir)
        .map_err(|e| format!("{kind}: {e}"))?;
    let (specs, reasons, table) = match &built {
        Built::Map(s) => (s.signals(), s.reasons(), s.declared()),
        Built::Global(g) => (g.signals(), g.reasons(), g.declared()),
    };
    // One table per stage: signals and reasons are the declared ones, not restated.
    let Some(table) = table else {
        return Err(format!(
            "{kind}: declares no signal table (Stage::declared)"
        ));
    };
    if specs != table.signals() || reasons != table.reasons() {
        return Err(format!(
            "{kind}: signals or reasons restated beside its declared table"
        ));
    }
    let declared: BTreeMap<&str, SignalType> =
        specs.iter().map(|s| (s.name.as_ref(), s.ty)).collect();
    let first = run(def, toml, pages, base_dir)?;
    let mut counts = Counts {
        pages: pages.len(),
        ..Default::default()
    };
    let mut written = BTreeSet::new();
    for (i, (page, out)) in pages.iter().zip(&first.outcomes).enumerate() {
        for (k, v) in &first.signals[i] {
            if page.signals.get(k) == Some(v) {
                continue; // there before the stage ran
            }
            let Some(&ty) = declared.get(k.as_str()) else {
                return Err(format!("{kind}: writes undeclared signal {k} ({v:?})"));
            };
            if !type_holds(ty, v) {
                return Err(format!("{kind}: signal {k} declared {ty:?}, written {v:?}"));
            }
            written.insert(k.clone());
        }
        match out {
            Outcome::Keep => counts.kept += 1,
            Outcome::Drop(r) => {
                if !reasons.contains(r) {
                    return Err(format!("{kind}: drops for undeclared reason {r:?}"));
                }
                *counts.dropped.entry(r).or_default() += 1;
            }
        }
    }
    if let Some(never) = declared.keys().find(|k| !written.contains(**k)) {
        return Err(format!(
            "{kind}: declared signal {never} written on none of {} pages",
            pages.len()
        ));
    }
    if counts.kept + counts.dropped.values().sum::<usize>() != counts.pages {
        return Err(format!("{kind}: in != kept + dropped: {counts:?}"));
    }
    if let Built::Map(s) = &built {
        for (i, out) in first.outcomes.iter().enumerate() {
            let mut stored = crate::Signals::new();
            for (k, v) in &first.signals[i] {
                if declared.contains_key(k.as_str()) {
                    stored.set(k.clone(), v.clone());
                }
            }
            let again = s.judge(&stored);
            if !first.process_drops[i] && again != *out {
                return Err(format!(
                    "{kind}: page {i}: re-judging its stored signals gives {again:?}, the run {out:?}"
                ));
            }
        }
    }
    let second = run(def, toml, pages, base_dir)?;
    if second != first {
        return Err(format!("{kind}: a second run over the same pages differs"));
    }
    Ok(counts)
}
