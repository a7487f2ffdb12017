//! Decisions: what the global steps decide about each document, routed to the partition that
//! holds it, and read back by the stage's applier.
//!
//! Steps decide in key order (all copies of a URL, a MinHash cluster), but appliers read in
//! row order, one partition at a time. So the deciding step routes each decision to the group
//! of partitions its document belongs to (`work/<stage>/routed/group-GGGGG/<task>.bin`, groups
//! of [`PARTITIONS_PER_GROUP`]), and the last step, `decide`, sorts each group by document and
//! writes one file per partition (`work/<stage>/decisions/part-NNNNN.bin`, empty when nothing
//! was decided), which the applier loads whole.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use super::extsort::{ExtSorter, Scratch};
use super::records::{record, Record, RecordReader, RecordWriter, Source};
use crate::error::{Error, Result};
use crate::stage::{GlobalStep, StepCtx};
use crate::stats::StepStats;
use crate::store::{ObjectWriter, Store};

/// Partitions per routing group (one `decide` task each).
pub const PARTITIONS_PER_GROUP: usize = 256;

/// The key of a document: its partition and its row in that partition.
pub fn doc_key(partition: usize, row: u32) -> u64 {
    ((partition as u64) << 32) | row as u64
}

/// `(partition, row)` of a document key.
pub fn split_key(key: u64) -> (usize, u32) {
    ((key >> 32) as usize, key as u32)
}

/// Number of routing groups (and `decide` tasks) for `partitions` partitions.
pub fn groups(partitions: usize) -> usize {
    partitions.div_ceil(PARTITIONS_PER_GROUP)
}

/// A decision about one document (or one line of it).
pub trait Decision: Record {
    /// The document key ([`doc_key`]).
    fn doc(&self) -> u64;
}

/// A document-level decision: its cluster (the representative's key), the cluster's size, and
/// whether this document is a duplicate to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocDecision {
    pub doc: u64,
    pub rep: u64,
    pub size: u32,
    pub dup: u32,
}
record!(DocDecision {
    doc: u64,
    rep: u64,
    size: u32,
    dup: u32
});

impl Decision for DocDecision {
    fn doc(&self) -> u64 {
        self.doc
    }
}

/// A line to remove from a document (its index in the document's lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineDecision {
    pub doc: u64,
    pub line: u32,
}
record!(LineDecision {
    doc: u64,
    line: u32
});

impl Decision for LineDecision {
    fn doc(&self) -> u64 {
        self.doc
    }
}

pub(crate) fn routed_dir(dir: &str, group: usize) -> String {
    format!("{dir}/routed/group-{group:05}")
}

/// Path of partition `p`'s decision file.
pub fn decision_path(dir: &str, p: usize) -> String {
    format!("{dir}/decisions/part-{p:05}.bin")
}

/// Routes one task's decisions to their partition groups.
pub struct Router<D: Decision> {
    store: Arc<dyn Store>,
    dir: String,
    from: String,
    writers: BTreeMap<usize, RecordWriter<Box<dyn ObjectWriter>>>,
    routed: u64,
    _d: std::marker::PhantomData<D>,
}

impl<D: Decision> Router<D> {
    /// `from` names the producing task (`groups-00003`); a rerun overwrites the same files.
    pub fn new(store: Arc<dyn Store>, dir: &str, from: String) -> Self {
        Router {
            store,
            dir: dir.to_string(),
            from,
            writers: BTreeMap::new(),
            routed: 0,
            _d: std::marker::PhantomData,
        }
    }

    pub fn route(&mut self, d: &D) -> io::Result<()> {
        let group = split_key(d.doc()).0 / PARTITIONS_PER_GROUP;
        let w = match self.writers.entry(group) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let path = format!("{}/{}.bin", routed_dir(&self.dir, group), self.from);
                e.insert(RecordWriter::new(self.store.create(&path)?))
            }
        };
        self.routed += 1;
        w.write(d)
    }

    /// Commits every routed file; returns the number of decisions.
    pub fn finish(self) -> io::Result<u64> {
        for (_, w) in self.writers {
            w.into_inner()?.finish()?;
        }
        Ok(self.routed)
    }
}

/// The last step of every dedup stage: per partition group, sort the routed decisions by
/// document and write one decision file per partition.
pub struct DecideStep<D: Decision> {
    _d: std::marker::PhantomData<fn() -> D>,
}

impl<D: Decision> DecideStep<D> {
    pub fn boxed() -> Box<dyn GlobalStep> {
        Box::new(DecideStep::<D> {
            _d: std::marker::PhantomData,
        })
    }
}

/// The memory one task may use: the executor's budget is shared by the tasks running at once.
pub fn task_budget(ctx: &StepCtx) -> usize {
    (ctx.memory_budget / ctx.threads.max(1)).max(16 << 20)
}

impl<D: Decision> GlobalStep for DecideStep<D> {
    fn name(&self) -> &str {
        "decide"
    }

    fn tasks(&self, ctx: &StepCtx) -> Result<usize> {
        Ok(groups(ctx.partitions))
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let mut st = StepStats::new("decide", task);
        let scratch = Scratch::new(&ctx.scratch).map_err(|e| Error::io(&ctx.scratch, e))?;
        let budget = task_budget(ctx);
        let mut sorter = ExtSorter::<D>::new(&scratch, budget / 2);
        let files = ctx.store.list(&routed_dir(&ctx.dir, task))?;
        for f in &files {
            let mut r = RecordReader::<D>::new(ctx.store.open(f)?, f.clone(), 1 << 16);
            while let Some(d) = r.next_record()? {
                sorter.push(d)?;
            }
        }
        let mut sorted = sorter.finish()?;
        let first = task * PARTITIONS_PER_GROUP;
        let end = (first + PARTITIONS_PER_GROUP).min(ctx.partitions);
        let mut next = sorted.next_record()?;
        let mut decisions = 0u64;
        for p in first..end {
            let path = decision_path(&ctx.dir, p);
            let mut w = RecordWriter::new(ctx.store.create(&path)?);
            while let Some(d) = next {
                let dp = split_key(d.doc()).0;
                if dp < p {
                    return Err(Error::other(format!(
                        "{}: decision for partition {dp} routed to group {task}",
                        ctx.dir
                    )));
                }
                if dp > p {
                    break;
                }
                w.write(&d)?;
                decisions += 1;
                next = sorted.next_record()?;
            }
            w.into_inner()?.finish()?;
        }
        if let Some(d) = next {
            return Err(Error::other(format!(
                "{}: decision for partition {} is outside group {task}",
                ctx.dir,
                split_key(d.doc()).0
            )));
        }
        st.count("routed_files", files.len() as u64);
        st.count("decisions", decisions);
        st.count("partitions", (end - first.min(end)) as u64);
        st.count("spilled_runs", scratch.spill.runs());
        st.count("spilled_bytes", scratch.spill.bytes());
        st.peak_rss_bytes = peak_rss_bytes();
        Ok(st)
    }
}

/// Loads partition `p`'s decisions (sorted by row).
pub fn load_decisions<D: Decision>(store: &dyn Store, dir: &str, p: usize) -> Result<Vec<D>> {
    let path = decision_path(dir, p);
    let mut bytes = Vec::new();
    store
        .open(&path)
        .and_then(|mut r| r.read_to_end(&mut bytes))
        .map_err(|e| Error::io(&path, e))?;
    let mut r = RecordReader::<D>::new(Box::new(io::Cursor::new(bytes)), path.clone(), 1 << 16);
    let mut out = Vec::new();
    while let Some(d) = r.next_record().map_err(|e| Error::io(&path, e))? {
        if split_key(d.doc()).0 != p {
            return Err(Error::other(format!(
                "{path}: decision for another partition"
            )));
        }
        out.push(d);
    }
    Ok(out)
}

/// Walks a partition's decisions row by row, in the applier's order.
pub struct RowCursor<D> {
    items: Vec<D>,
    at: usize,
    row: u32,
}

impl<D: Decision> RowCursor<D> {
    pub fn new(items: Vec<D>) -> Self {
        RowCursor {
            items,
            at: 0,
            row: 0,
        }
    }

    /// The decisions of the next row (empty for most rows).
    pub fn next_row(&mut self) -> &[D] {
        let row = self.row;
        self.row += 1;
        // Decisions for rows already passed cannot occur (files are sorted); skip defensively.
        while self.at < self.items.len() && split_key(self.items[self.at].doc()).1 < row {
            self.at += 1;
        }
        let start = self.at;
        while self.at < self.items.len() && split_key(self.items[self.at].doc()).1 == row {
            self.at += 1;
        }
        &self.items[start..self.at]
    }
}

/// Peak resident memory of this process (VmHWM), in bytes; 0 where unknown.
pub fn peak_rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
