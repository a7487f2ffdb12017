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
use super::history::{self, HistRec};
use super::keep::Keep;
use super::keys::{key_path, Index, IndexStep, KeyFileWriter};
use super::records::{record, Record, RecordWriter, Source};
use super::DocSignals;
use crate::declare::Declared;
use crate::error::{Error, Result};
use crate::stage::{Applier, Collector, GlobalStage, GlobalStep, PartitionCtx, StepCtx};
use crate::stats::StepStats;
use crate::Document;

/// One keyed document: sorted by key, then rank (the survivor first), then input order. `id`
/// (xxh3-128 of the stable id) names the document in the dedup history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyRec {
    pub key: u128,
    pub rank: u64,
    pub doc: u64,
    pub id: u128,
}
record!(KeyRec {
    key: u128,
    rank: u64,
    doc: u64,
    id: u128
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
                    id: history::id_hash(&doc.id),
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

/// One task per shard: groups of equal keys across all partitions, and against the dedup
/// history when the run has one ([`history`]): the history's best copy of a key (smallest
/// rank; ties go to the earlier night) beats tonight's copies of equal or worse rank, and a
/// better copy tonight retracts it. Tonight's survivors go to the new generation.
struct GroupsStep {
    name: String,
    shards: usize,
}

/// Tonight's side of the history: the sorted history of this shard, tonight's survivors and
/// retractions.
struct HistorySide {
    peek: Option<HistRec>,
    source: Box<dyn Source<HistRec>>,
    out: RecordWriter<Box<dyn crate::store::ObjectWriter>>,
    /// Streamed (64 KiB buffer), so that a night of many recrawls holds none in memory.
    retractions: std::io::BufWriter<Box<dyn crate::store::ObjectWriter>>,
    stage: String,
}

impl HistorySide {
    /// The history's best copy of `key` (the first in its order), skipping smaller keys.
    fn lookup(&mut self, key: u128) -> std::io::Result<Option<HistRec>> {
        while let Some(h) = self.peek {
            if h.key >= key {
                break;
            }
            self.peek = self.source.next_record()?;
        }
        let best = self.peek.filter(|h| h.key == key);
        while let Some(h) = self.peek {
            if h.key != key {
                break;
            }
            self.peek = self.source.next_record()?;
        }
        Ok(best)
    }
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
        let snap = history::snapshot(ctx.store.as_ref()).map_err(io)?;
        let mut hist = match &snap {
            Some(snap) => {
                let hs = history::shard_sources(&ctx.store, snap, &self.name, self.shards, task)
                    .map_err(io)?;
                st.count("history_inputs", hs.len() as u64);
                let mut source = merge(hs, fan_in(budget / 4), &scratch).map_err(io)?;
                let peek = source.next_record().map_err(io)?;
                let path = history::out_shard_path(&ctx.dir, task);
                let w = ctx.store.create(&path).map_err(|e| Error::io(&path, e))?;
                let rpath = history::retractions_path(&ctx.dir, task);
                let r = ctx.store.create(&rpath).map_err(|e| Error::io(&rpath, e))?;
                Some(HistorySide {
                    peek,
                    source,
                    out: RecordWriter::new(w),
                    retractions: std::io::BufWriter::with_capacity(1 << 16, r),
                    stage: self.name.clone(),
                })
            }
            None => None,
        };
        let merge_budget = if hist.is_some() {
            budget / 4
        } else {
            budget / 2
        };
        let mut merged = merge(sources, fan_in(merge_budget), &scratch).map_err(io)?;
        let mut router =
            Router::<DocDecision>::new(ctx.store.clone(), &ctx.dir, format!("groups-{task:05}"));
        let mut group = GroupBuffer::<KeyRec>::new(&scratch, budget / 4);
        let (mut keys, mut groups, mut dups) = (0u64, 0u64, 0u64);
        let (mut seen, mut retracted) = (0u64, 0u64);
        let mut flush = |first: Option<KeyRec>,
                         group: &mut GroupBuffer<KeyRec>,
                         router: &mut Router<DocDecision>,
                         hist: &mut Option<HistorySide>| {
            let Some(first) = first else {
                return std::io::Result::Ok(());
            };
            let past = match hist {
                Some(h) => h.lookup(first.key)?,
                None => None,
            };
            // Ties go to the earlier night: tonight wins only with a strictly better rank.
            let tonight_wins = past.is_none_or(|p| first.rank < p.rank);
            if let Some(h) = hist.as_mut() {
                if tonight_wins {
                    h.out.write(&HistRec {
                        key: first.key,
                        rank: first.rank,
                        id: first.id,
                    })?;
                }
                if let (true, Some(p)) = (tonight_wins, past) {
                    retracted += 1;
                    let line = serde_json::json!({
                        "id_xxh3": format!("{:032x}", p.id),
                        "stage": h.stage,
                        "reason": "superseded",
                        "by_id_xxh3": format!("{:032x}", first.id),
                    });
                    use std::io::Write;
                    writeln!(h.retractions, "{line}")?;
                }
            }
            if past.is_some() {
                seen += 1;
            }
            let size = group.len() + past.is_some() as u64;
            if size > 1 {
                groups += 1;
                dups += size - 1;
                let rep = match (tonight_wins, past) {
                    (false, Some(p)) => history::history_rep(p.id),
                    _ => first.doc,
                };
                group.drain(|r| {
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
            Ok(())
        };
        let mut first: Option<KeyRec> = None;
        while let Some(r) = merged.next_record().map_err(io)? {
            if first.map(|f| f.key) != Some(r.key) {
                flush(first, &mut group, &mut router, &mut hist).map_err(io)?;
                keys += 1;
                first = Some(r);
            }
            group.push(r).map_err(io)?;
        }
        flush(first, &mut group, &mut router, &mut hist).map_err(io)?;
        router.finish().map_err(io)?;
        if let Some(h) = hist {
            let path = history::out_shard_path(&ctx.dir, task);
            st.count("history_written", h.out.written());
            h.out
                .into_inner()
                .and_then(|w| w.finish())
                .map_err(|e| Error::io(&path, e))?;
            let path = history::retractions_path(&ctx.dir, task);
            h.retractions
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|w| w.finish())
                .map_err(|e| Error::io(&path, e))?;
            st.count("history_matches", seen);
            st.count("retracted", retracted);
        }
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

    fn declared(&self) -> Option<&Declared> {
        Some(&self.inner.signals.declared)
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
                name: self.inner.name.clone(),
                shards: self.inner.shards,
            }),
            DecideStep::<DocDecision>::boxed(),
        ]
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        self.inner.signals.applier(ctx)
    }
}
