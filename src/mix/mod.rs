//! Mixes: training-ready token shards selected from a finished run's stored signals.
//!
//! `curate mix` (and each variant of `curate ablate`) runs, per mix:
//! 1. [`select`]: the one Parquet reader scans the run's `docs/` and `dropped/` files (signal
//!    columns only), re-derives and re-judges every row with the current config;
//! 2. token counts: from a stored `tokenize.count` signal made with the mix's tokenizer, else
//!    counted from the candidates' text;
//! 3. [`plan::plan_by_language`]: token shares per bucket, budget, sampling, repeats;
//!    per language (the `lang` signal) within buckets that set language options;
//! 4. [`write`]: the picked rows' text is read, tokenized and written as Megatron shards
//!    ([`shards`], [`megatron`]) with a manifest; then `mix_report.json`, `config.toml` and `report.html`.
//!
//! Nothing of the run is rewritten except its `report.html`, which gains the mix's
//! composition. See `docs/mix.md`.

pub mod ablate;
pub mod megatron;
pub mod plan;
pub mod report;
pub mod select;
pub mod shards;
pub mod spec;
pub mod write;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use stages::tokenize::Tokenizer;
use stages::{Error, Store};

use crate::config::{ConfigFile, Plan};
use plan::MixReport;
use select::SelectionStats;
use shards::{Layout, Manifest};
use spec::MixSpec;

/// Why a mix could not be made: bad configuration (exit 2) or failed work (exit 1).
#[derive(Debug)]
pub enum MixError {
    Config(String),
    Failed(Error),
}

impl std::fmt::Display for MixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MixError::Config(m) => write!(f, "{m}"),
            MixError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<crate::config::ConfigError> for MixError {
    fn from(e: crate::config::ConfigError) -> Self {
        MixError::Config(e.to_string())
    }
}

impl From<Error> for MixError {
    fn from(e: Error) -> Self {
        MixError::Failed(e)
    }
}

/// `mix_report.json`: the planner's report plus what selection did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixSummary {
    pub mix: String,
    pub tokenizer: String,
    pub vocab_size: u32,
    pub layout: Layout,
    pub shards: usize,
    pub selection: SelectionStats,
    #[serde(flatten)]
    pub report: MixReport,
}

/// A finished run opened for selection.
pub struct StoredRun {
    /// Where the run's outputs are (folder or URI).
    pub dir: String,
    pub store: Arc<dyn Store>,
    /// The run's own pipeline, from its stored `config.toml` (None when absent).
    pub plan: Option<Plan>,
    pub files: Vec<String>,
    pub kept_files: usize,
    pub scratch: PathBuf,
    /// Several runs as one corpus ([`crate::corpus`]): each file's run, and what later runs
    /// retracted. Empty for one run.
    pub file_runs: Vec<usize>,
    pub retractions: crate::corpus::Retractions,
    /// The runs' locations, in corpus order (one run: its own).
    pub runs: Vec<String>,
}

impl StoredRun {
    /// Opens the run at `dir` (default: the pipeline's output). Its stored config is read
    /// against the pipeline file's folder, so relative resource paths still resolve.
    pub fn open(cf: &ConfigFile, dir: &str) -> Result<StoredRun, MixError> {
        let storage = &cf.raw.storage;
        let scratch = match &cf.raw.executor.scratch {
            Some(s) => cf.base_dir().join(s),
            None => std::env::temp_dir().join("curate-scratch"),
        };
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        let store = crate::storage::open_store(dir, storage, &scratch)
            .map_err(|e| MixError::Failed(Error::io(dir, e)))?;
        let plan = match store.read("config.toml") {
            Ok(b) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                let stored = crate::config::parse(&cf.path, text, &[])
                    .and_then(|c| Plan::for_selection(c, Some(dir)));
                match stored {
                    Ok(p) => Some(p),
                    Err(e) => {
                        tracing::warn!("the run's stored config.toml does not build ({e}): dropped documents cannot be recovered");
                        None
                    }
                }
            }
            Err(_) => None,
        };
        let (files, kept_files) = select::list_files(store.as_ref())?;
        Ok(StoredRun {
            dir: dir.to_string(),
            store,
            plan,
            files,
            kept_files,
            scratch,
            file_runs: Vec::new(),
            retractions: Default::default(),
            runs: vec![dir.to_string()],
        })
    }

    /// Opens several runs (and the runs of a dedup history) as one corpus: their documents
    /// in corpus order ([`crate::corpus::list_runs`]: the same whatever order they are given
    /// in), less those a later run retracted. One run alone opens as [`StoredRun::open`].
    pub fn open_many(
        cf: &ConfigFile,
        dirs: &[String],
        history: Option<&str>,
    ) -> Result<StoredRun, MixError> {
        if dirs.len() == 1 && history.is_none() {
            return Self::open(cf, &dirs[0]);
        }
        let storage = &cf.raw.storage;
        let first = Self::open_scratch(cf)?;
        let runs = crate::corpus::list_runs(dirs, history, storage, &first)?;
        if runs.is_empty() {
            return Err(MixError::Config(
                "no runs: give --from, or a --history with runs".into(),
            ));
        }
        if runs.len() == 1 {
            return Self::open(cf, &runs[0].dir);
        }
        // The nights share the pipeline: the first run's stored config judges dropped rows.
        let base = Self::open(cf, &runs[0].dir)?;
        let retractions = crate::corpus::Retractions::load(&runs)?;
        let (mut kept, mut dropped) = (Vec::new(), Vec::new());
        let (mut kept_runs, mut dropped_runs) = (Vec::new(), Vec::new());
        for (i, r) in runs.iter().enumerate() {
            let (files, k) = select::list_files(r.store.as_ref())?;
            let pre = crate::corpus::run_prefix(i);
            for (j, f) in files.into_iter().enumerate() {
                if j < k {
                    kept.push(format!("{pre}{f}"));
                    kept_runs.push(i);
                } else {
                    dropped.push(format!("{pre}{f}"));
                    dropped_runs.push(i);
                }
            }
        }
        let kept_files = kept.len();
        kept.append(&mut dropped);
        kept_runs.append(&mut dropped_runs);
        let names: Vec<String> = runs.iter().map(|r| r.dir.clone()).collect();
        Ok(StoredRun {
            dir: names.join(","),
            store: Arc::new(crate::corpus::CorpusStore {
                runs: runs.iter().map(|r| r.store.clone()).collect(),
            }),
            plan: base.plan,
            files: kept,
            kept_files,
            scratch: base.scratch,
            file_runs: kept_runs,
            retractions,
            runs: names,
        })
    }

    fn open_scratch(cf: &ConfigFile) -> Result<PathBuf, MixError> {
        let scratch = match &cf.raw.executor.scratch {
            Some(s) => cf.base_dir().join(s),
            None => std::env::temp_dir().join("curate-scratch"),
        };
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io(&scratch, e))?;
        Ok(scratch)
    }

    /// Whether this is a corpus of several runs.
    pub fn is_corpus(&self) -> bool {
        self.runs.len() > 1
    }
}

impl StoredRun {
    /// Scans the stored files and returns the candidates `judge` keeps (see [`select`]).
    pub fn select(
        &self,
        judge: &select::Judge,
        where_sql: Option<&str>,
    ) -> Result<select::Selection, MixError> {
        let retracted = (!self.retractions.is_empty())
            .then_some((&self.retractions, self.file_runs.as_slice()));
        select::select(
            self.store.as_ref(),
            &self.files,
            self.kept_files,
            judge,
            where_sql,
            retracted,
        )
    }
}

/// What one mix produced.
pub struct MixResult {
    pub summary: MixSummary,
    pub manifest: Manifest,
    /// Distinct selected documents (xxh3 of ids), sorted.
    pub keys: Vec<u64>,
    /// Where it was written (root of the destination store and folder).
    pub location: String,
    pub select_seconds: f64,
    pub write_seconds: f64,
}

/// The plan a mix judges with: the pipeline's, with the mix's `[mix.NAME.stages]` overrides.
pub fn plan_for(cf: &ConfigFile, base: &Plan, spec: &MixSpec) -> Result<Option<Plan>, MixError> {
    if spec.stages.is_empty() {
        return Ok(None);
    }
    let mut table = cf.table.clone();
    let stages = table
        .entry("stages")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(st) = stages {
        spec::merge(st, &spec.stages);
    }
    let cf2 = cf.with_table(table)?;
    Ok(Some(Plan::for_selection(cf2, Some(&base.output))?))
}

/// Makes one mix into `dest`/`dir` (the folder is emptied first).
pub fn make(
    run: &StoredRun,
    cf: &ConfigFile,
    plan: &Plan,
    spec: &MixSpec,
    dest: &dyn Store,
    dir: &str,
) -> Result<MixResult, MixError> {
    if dir.trim_matches('/').is_empty() {
        return Err(MixError::Failed(Error::other(
            "a mix needs its own folder (it is emptied first)",
        )));
    }
    let t0 = Instant::now();
    let tok = Tokenizer::from_config(&spec.tokenizer, &plan.base_dir)
        .map_err(|e| MixError::Config(format!("mix.{}.{}: {}", spec.name, e.key, e.message)))?;
    let overridden = plan_for(cf, plan, spec)?;
    let plan = overridden.as_ref().unwrap_or(plan);
    let tokens = select::token_signal(spec, run.plan.as_ref());
    let judge = select::Judge::new(plan, run.plan.as_ref(), spec, tokens.as_deref());
    let mut sel = run.select(&judge, spec.where_sql.as_deref())?;
    sel.stats.token_counts = match &tokens {
        Some(t) if sel.uncounted.is_empty() => format!("signal {t}"),
        Some(t) => format!("signal {t} ({} documents counted)", sel.uncounted.len()),
        None => "counted".to_string(),
    };
    if !sel.uncounted.is_empty() {
        write::count_tokens(&mut sel, run.store.as_ref(), &tok)?;
    }
    let select_seconds = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    // Languages come with the candidates: the report counts tokens per language, and a bucket
    // with language options (the multilingual one) is planned language by language.
    // (A run without language ID has no languages to count.)
    let (langs, lang_names): (&[u16], &[String]) = if sel.languages.iter().all(|l| l.is_empty()) {
        (&[], &[])
    } else {
        (&sel.langs, &sel.languages)
    };
    let mix_plan = plan::plan_by_language(
        &sel.candidates,
        langs,
        &sel.buckets,
        &sel.sources,
        lang_names,
        &spec.planner,
    );
    // Start from an empty folder: a smaller mix must not leave shards of a bigger one.
    for old in dest.list(dir).map_err(|e| Error::io(dir, e))? {
        dest.delete(&old).map_err(|e| Error::io(&old, e))?;
    }
    let scratch = run
        .scratch
        .join(format!("mix-{}-{}", std::process::id(), spec.name));
    let written = write::write(
        &sel,
        &mix_plan,
        run.store.as_ref(),
        &tok,
        dest,
        dir,
        &spec.name,
        spec.layout,
        spec.shard_bytes,
        &scratch,
    )?;
    let summary = MixSummary {
        mix: spec.name.clone(),
        tokenizer: tok.name().to_string(),
        vocab_size: tok.vocab_size(),
        layout: spec.layout,
        shards: written.manifest.shards.len(),
        selection: sel.stats.clone(),
        report: mix_plan.report.clone(),
    };
    let put = |name: &str, bytes: &[u8]| {
        let p = if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        dest.put(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    // The resolved pipeline (after --set) with this mix's own table: enough to remake it.
    let mut resolved = plan.config.table.clone();
    resolved.insert("mix".into(), toml::Value::Table(spec.table.clone()));
    put(
        "config.toml",
        toml::to_string(&resolved).unwrap_or_default().as_bytes(),
    )?;
    put(
        "mix_report.json",
        serde_json::to_string_pretty(&summary)
            .expect("serializable")
            .as_bytes(),
    )?;
    put(
        "report.html",
        report::render(&summary, &written.manifest).as_bytes(),
    )?;
    let location = if dir.is_empty() {
        dest.root()
    } else {
        format!("{}/{dir}", dest.root().trim_end_matches('/'))
    };
    Ok(MixResult {
        summary,
        manifest: written.manifest,
        keys: written.keys,
        location,
        select_seconds,
        write_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// The selection figures in a few lines (for the terminal).
pub fn selection_lines(s: &SelectionStats) -> String {
    let mut out = format!(
        "selection: {} rows ({} kept, {} dropped by the run) -> {} candidates ({} recovered from dropped/); tokens: {}\n",
        s.kept_rows + s.dropped_rows,
        s.kept_rows,
        s.dropped_rows,
        s.candidates,
        s.recovered,
        s.token_counts
    );
    let join = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.rejected.is_empty() {
        out.push_str(&format!("  rejected: {}\n", join(&s.rejected)));
    }
    if !s.not_recoverable.is_empty() {
        out.push_str(&format!(
            "  dropped by the run, not recoverable: {}\n",
            join(&s.not_recoverable)
        ));
    }
    if !s.incomplete.is_empty() {
        out.push_str(&format!(
            "  would pass now but these stages never ran for them (use mode = \"tag\"): {}\n",
            join(&s.incomplete)
        ));
    }
    if s.excluded_by_where > 0 {
        out.push_str(&format!("  excluded by where: {}\n", s.excluded_by_where));
    }
    if s.retracted > 0 {
        out.push_str(&format!("  retracted by a later run: {}\n", s.retracted));
    }
    if s.no_bucket > 0 {
        out.push_str(&format!("  without a bucket: {}\n", s.no_bucket));
    }
    out
}
