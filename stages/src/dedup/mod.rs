//! Deduplication at crawl scale: URL, exact text, MinHash near-duplicates and ccNet-style lines.
//!
//! Every stage here is a [`GlobalStage`] with the same shape (see `docs/dedup.md`):
//!
//! 1. a **collector** at the end of a map phase writes one key file per partition, its records
//!    sorted into sections ([`keys`]);
//! 2. **steps** across the barrier, each split into tasks: `index` (one task) reads every key
//!    file's header; then one task per section merges that section of every partition with a
//!    bounded-memory k-way merge that spills to local disk ([`extsort`]) and decides; decisions
//!    are routed to the partition that holds each document, and `decide` writes one decision
//!    file per partition ([`decisions`]);
//! 3. an **applier** at the start of the next map phase reads its partition's decisions in row
//!    order and sets signals, drops duplicates or removes lines.
//!
//! Everything goes through the [`Store`] (local folder or S3), every file is a sequence of
//! fixed-size records with a total order, and tasks are fixed by the configuration (sections,
//! partitions), never by the number of workers or threads: the same input and configuration
//! give byte-identical output however the run is split.

pub mod decisions;
pub mod exact;
pub mod extsort;
pub mod history;
pub mod keep;
pub mod keyed;
pub mod keys;
pub mod lines;
pub mod minhash;
pub mod minhash_history;
pub mod records;
pub mod url;
pub mod verify;

use std::path::Path;
use std::sync::Arc;

use decisions::{load_decisions, DocDecision, RowCursor};

use crate::declare::{Bool, Declare, Declared, Sig, I64};
use crate::error::Result;
use crate::signals::Signals;
use crate::stage::{Applier, GlobalStage, Outcome, PartitionCtx, StepCtx};
use crate::store::Store;
use crate::Document;

/// The drop reason of a duplicate document.
pub const DUPLICATE: &str = "duplicate";

/// The signals of a document-level dedup stage, its one rule, and the applier that writes
/// them.
#[derive(Clone, Debug)]
pub struct DocSignals {
    pub cluster_id: Sig<I64>,
    pub cluster_size: Sig<I64>,
    pub duplicate: Sig<Bool>,
    pub declared: Declared,
}

impl DocSignals {
    pub fn new(stage: &str) -> Self {
        let mut d = Declare::new(stage);
        let cluster_id = d.signal(
            "cluster_id",
            "key of the cluster's surviving document (partition << 32 | row); null when unique",
        );
        let cluster_size = d.signal(
            "cluster_size",
            "documents in the cluster, this one included (1 when unique)",
        );
        let duplicate = d.signal(
            "duplicate",
            "a copy of the cluster's surviving document (removed in drop mode)",
        );
        d.flag(duplicate, DUPLICATE);
        DocSignals {
            cluster_id,
            cluster_size,
            duplicate,
            declared: d.finish(),
        }
    }

    /// The applier of partition `ctx.partition`: loads its decisions.
    pub fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        let items = load_decisions::<DocDecision>(ctx.store.as_ref(), &ctx.dir, ctx.partition)?;
        Ok(Box::new(DocApplier {
            cursor: RowCursor::new(items),
            sigs: self.clone(),
        }))
    }

    pub fn judge(&self, s: &Signals) -> Outcome {
        self.declared.judge(s).map_or(Outcome::Keep, Outcome::Drop)
    }
}

struct DocApplier {
    cursor: RowCursor<DocDecision>,
    sigs: DocSignals,
}

impl Applier for DocApplier {
    fn apply(&mut self, doc: &mut Document) -> Outcome {
        let s = &self.sigs;
        match self.cursor.next_row().first() {
            Some(d) => {
                s.cluster_id.set(&mut doc.signals, d.rep as i64);
                s.cluster_size.set(&mut doc.signals, d.size as i64);
                s.duplicate.set(&mut doc.signals, d.dup != 0);
            }
            None => {
                s.cluster_size.set(&mut doc.signals, 1);
                s.duplicate.set(&mut doc.signals, false);
            }
        }
        s.judge(&doc.signals)
    }
}

/// Runs a global stage in this process over in-memory partitions: collect every partition,
/// run every task of every step in order, then apply. Returns each partition's documents with
/// the applier's outcome. The engine does the same across processes and machines; this serves
/// tests, benchmarks and library use.
pub fn run_local(
    stage: &dyn GlobalStage,
    partitions: Vec<Vec<Document>>,
    store: Arc<dyn Store>,
    scratch: &Path,
    seed: u64,
    memory_budget: usize,
) -> Result<Vec<Vec<(Document, Outcome)>>> {
    let n = partitions.len();
    let dir = format!("work/{}", stage.name());
    let pctx = |p: usize| PartitionCtx {
        store: store.clone(),
        dir: dir.clone(),
        partition: p,
        partitions: n,
        scratch: scratch.to_path_buf(),
        seed,
    };
    for (p, docs) in partitions.iter().enumerate() {
        let mut c = stage.collector(&pctx(p))?;
        for d in docs {
            c.collect(d)?;
        }
        c.finish()?;
    }
    let sctx = StepCtx {
        store: store.clone(),
        dir: dir.clone(),
        partitions: n,
        scratch: scratch.to_path_buf(),
        memory_budget,
        threads: 1,
        seed,
    };
    for step in stage.steps() {
        for t in 0..step.tasks(&sctx)? {
            step.run(t, &sctx)?;
        }
    }
    let mut out = Vec::with_capacity(n);
    for (p, docs) in partitions.into_iter().enumerate() {
        let mut a = stage.applier(&pctx(p))?;
        out.push(
            docs.into_iter()
                .map(|mut d| {
                    let o = a.apply(&mut d);
                    (d, o)
                })
                .collect(),
        );
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the stages' unit tests.
    use super::*;
    use crate::config::{Purpose, StageArgs};
    use crate::stage::Built;

    pub fn build(def: &crate::StageDef, name: &str, toml: &str) -> Box<dyn GlobalStage> {
        let t: toml::Table = toml.parse().unwrap();
        let args = StageArgs {
            name,
            table: &t,
            base_dir: Path::new("."),
            purpose: Purpose::Run,
            seed: 7,
        };
        match (def.build)(&args) {
            Ok(Built::Global(g)) => g,
            Ok(_) => panic!("not a global stage"),
            Err(e) => panic!("build failed: {e}"),
        }
    }

    pub fn build_err(def: &crate::StageDef, toml: &str) -> crate::ConfigError {
        let t: toml::Table = toml.parse().unwrap();
        let args = StageArgs {
            name: "s",
            table: &t,
            base_dir: Path::new("."),
            purpose: Purpose::Run,
            seed: 7,
        };
        match (def.build)(&args) {
            Err(e) => e,
            Ok(_) => panic!("expected a config error"),
        }
    }

    /// Runs a stage locally with a small memory budget (so that spills are exercised).
    pub fn run(
        stage: &dyn GlobalStage,
        parts: Vec<Vec<Document>>,
    ) -> Vec<Vec<(Document, Outcome)>> {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(crate::LocalStore::new(dir.path().join("out")).unwrap());
        run_local(
            stage,
            parts,
            store,
            &dir.path().join("scratch"),
            7,
            16 << 20,
        )
        .unwrap()
    }

    pub fn doc(id: &str, url: &str, text: &str) -> Document {
        let mut d = Document::new(id, text);
        d.url = url.to_string();
        d
    }

    #[test]
    fn every_example_builds() {
        for def in [&url::DEF, &exact::DEF, &minhash::DEF, &lines::DEF] {
            let g = build(def, "x", def.example);
            assert!(!g.steps().is_empty(), "{}", def.kind);
            assert!(g.signals().iter().all(|s| s.name.starts_with("x.")));
            assert!(crate::registry::find(&[crate::registry::REGISTRY], def.kind).is_some());
        }
    }
}
