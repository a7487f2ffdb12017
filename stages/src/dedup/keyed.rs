//! Group-by-key dedup, shared by `dedup.url` and `dedup.exact`: every document with the same
//! 128-bit key is a copy; the keep rule picks the survivor.
//!
//! ```text
//! map k:  collect   key -> (key, rank, doc) into one of `shards` sections by key hash
//! index             one task: headers of all key files -> index.bin
//! groups            one task per shard: k-way merge of that section of every partition,
//!                   groups of equal keys -> a decision per copy, routed by partition group
//! decide            one task per 256 partitions: decisions sorted by row, one file each
//! map k+1: apply    cluster_id, cluster_size, duplicate; duplicates dropped
//! ```
//!
//! Keys are 128-bit (xxh3), so that an accidental collision among the 3 billion documents of a
//! crawl (about 1 in 10^20 with 128 bits, but 1 in 4 with 64) never removes a unique page.

use std::sync::Arc;

use super::decisions::{doc_key, task_budget, DecideStep, DocDecision, Router};
use super::extsort::{fan_in, merge, GroupBuffer, Scratch};
use super::keep::Keep;
use super::keys::{key_path, Index, IndexStep, KeyFileWriter};
use super::records::{record, Record, Source};
use super::DocSignals;
use crate::error::{Error, Result};
use crate::signals::SignalSpec;
use crate::stage::{Applier, Collector, GlobalStage, GlobalStep, Outcome, PartitionCtx, StepCtx};
use crate::stats::StepStats;
use crate::{Document, Signals};

/// One keyed document: sorted by key, then rank (the survivor first), then input order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRec {
    pub key: u128,
    pub rank: u64,
    pub doc: u64,
}
record!(KeyRec {
    key: u128,
    rank: u64,
    doc: u64
});

/// How a stage keys a document (`None`: the document has no key and is never a duplicate).
pub type KeyFn = dyn Fn(&Document) -> Option<u128> + Send + Sync;

/// A group-by-key dedup stage.
pub struct KeyedDedup {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    shards: usize,
    keep: Keep,
    key: Box<KeyFn>,
    signals: DocSignals,
}

impl KeyedDedup {
    pub fn new(name: &str, shards: usize, keep: Keep, key: Box<KeyFn>) -> Self {
        KeyedDedup {
            inner: Arc::new(Inner {
                name: name.to_string(),
                shards,
                keep,
                key,
                signals: DocSignals::new(name),
            }),
        }
    }
}

/// The shard of a key: its top 64 bits scaled to `0..shards`.
fn shard(key: u128, shards: usize) -> usize {
    (((key >> 64) as u64 as u128 * shards as u128) >> 64) as usize
}

struct KeyCollector {
    inner: Arc<Inner>,
    ctx: PartitionCtx,
    keys: KeyFileWriter<KeyRec>,
}

impl Collector for KeyCollector {
    fn collect(&mut self, doc: &Document) -> Result<()> {
        let row = self.keys.row();
        match (self.inner.key)(doc) {
            Some(key) => self.keys.add(
                shard(key, self.inner.shards),
                KeyRec {
                    key,
                    rank: self.inner.keep.rank(doc),
                    doc: doc_key(self.ctx.partition, row),
                },
            ),
            None => self.keys.keyless(),
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let path = key_path(&self.ctx.dir, self.ctx.partition);
        self.keys
            .finish(self.ctx.store.as_ref(), &path, &[])
            .map_err(|e| Error::io(&path, e))
    }
}

/// One task per shard: groups of equal keys across all partitions.
struct GroupsStep {
    shards: usize,
}

impl GlobalStep for GroupsStep {
    fn name(&self) -> &str {
        "groups"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(self.shards)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let io = |e| Error::io(&ctx.dir, e);
        let mut st = StepStats::new("groups", task);
        let scratch = Scratch::new(&ctx.scratch).map_err(io)?;
        let budget = task_budget(ctx);
        let (_, sources) = Index::open_section::<KeyRec>(ctx, task).map_err(io)?;

        st.count("inputs", sources.len() as u64);
        let mut merged = merge(sources, fan_in(budget / 2), &scratch).map_err(io)?;
        let mut router =
            Router::<DocDecision>::new(ctx.store.clone(), &ctx.dir, format!("groups-{task:05}"));
        let mut group = GroupBuffer::<KeyRec>::new(&scratch, budget / 4);
        let (mut keys, mut groups, mut dups) = (0u64, 0u64, 0u64);
        let mut flush = |group: &mut GroupBuffer<KeyRec>, router: &mut Router<DocDecision>| {
            let size = group.len();
            if size > 1 {
                groups += 1;
                dups += size - 1;
                let mut rep = None;
                group.drain(|r| {
                    let rep = *rep.get_or_insert(r.doc);
                    router.route(&DocDecision {
                        doc: r.doc,
                        rep,
                        size: size.min(u32::MAX as u64) as u32,
                        dup: (r.doc != rep) as u32,
                    })
                })?;
            } else {
                group.drain(|_| Ok(()))?;
            }
            std::io::Result::Ok(())
        };
        let mut last: Option<u128> = None;
        while let Some(r) = merged.next_record().map_err(io)? {
            if last != Some(r.key) {
                flush(&mut group, &mut router).map_err(io)?;
                keys += 1;
                last = Some(r.key);
            }
            group.push(r).map_err(io)?;
        }
        flush(&mut group, &mut router).map_err(io)?;
        router.finish().map_err(io)?;
        st.count("keys", keys);
        st.count("groups_with_copies", groups);
        st.count("duplicates", dups);
        st.count("spilled_bytes", scratch.spill.bytes());
        st.peak_rss_bytes = super::decisions::peak_rss_bytes();
        Ok(st)
    }
}

impl GlobalStage for KeyedDedup {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn signals(&self) -> Vec<SignalSpec> {
        self.inner.signals.specs()
    }

    fn reasons(&self) -> Vec<&'static str> {
        vec![super::DUPLICATE]
    }

    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>> {
        Ok(Box::new(KeyCollector {
            inner: self.inner.clone(),
            ctx: ctx.clone(),
            keys: KeyFileWriter::new(self.inner.shards),
        }))
    }

    fn steps(&self) -> Vec<Box<dyn GlobalStep>> {
        vec![
            Box::new(IndexStep {
                record_size: KeyRec::SIZE,
                sections: self.inner.shards,
            }),
            Box::new(GroupsStep {
                shards: self.inner.shards,
            }),
            DecideStep::<DocDecision>::boxed(),
        ]
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        self.inner.signals.applier(ctx)
    }

    fn judge(&self, signals: &Signals) -> Outcome {
        self.inner.signals.judge(signals)
    }
}
