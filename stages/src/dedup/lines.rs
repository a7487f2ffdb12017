//! `dedup.lines`: ccNet-style line dedup. Lines that occur more than `max_count` times in a
//! bucket of `bucket_docs` documents are removed from every document that has them.
//!
//! Llama 3 removes lines seen more than 6 times in each bucket of 30M documents: navigation,
//! cookie notices and other boilerplate that page-level dedup keeps. Buckets are consecutive
//! runs of documents in input order (global row `r` is in bucket `r / bucket_docs`).
//!
//! ```text
//! map k:  collect   (line hash, doc, line number) per non-blank line, into `shards` sections
//! index             one task: headers -> index.bin
//! count             one task per shard: merged by hash then document; within a (hash,
//!                   bucket) run, once the count passes max_count every occurrence (the held
//!                   ones too) becomes a removal, routed to its partition group
//! decide            removals sorted by document and line, one file per partition
//! map k+1: apply    lines removed; lines_removed, chars_removed, lines_left
//! ```
//!
//! The count step holds at most `max_count + 1` occurrences at a time, so a line repeated a
//! million times costs no memory. With `keep_first = true` the first occurrence in input order
//! stays (dolma's paragraph dedup with `max_count = 0`). Lines are compared normalized
//! (lower-cased words without punctuation, as the shared normalized view) unless
//! `normalize = false`, which compares the text with trailing whitespace removed. Lines without
//! a word (or blank with `normalize = false`) are never counted or removed.

use std::sync::Arc;

use serde::Deserialize;

use super::decisions::{
    doc_key, load_decisions, peak_rss_bytes, task_budget, DecideStep, LineDecision, Router,
    RowCursor,
};
use super::extsort::{fan_in, merge, Scratch};
use super::keys::{key_path, Index, IndexStep, KeyFileWriter};
use super::records::{record, Record, Source};
use crate::config::{check_range, ConfigError, StageArgs};
use crate::declare::{Bound, Declare, Declared, Sig, I64};
use crate::error::{Error, Result};
use crate::stage::StageDef;
use crate::stage::{
    Applier, Built, Collector, GlobalStage, GlobalStep, Outcome, PartitionCtx, StepCtx,
};
use crate::stats::StepStats;
use crate::text::push_lower;
use crate::Document;

/// `[stages.line_dedup]`, `type = "dedup.lines"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDedupConfig {
    /// Documents per bucket (consecutive in input order); counts never cross buckets.
    #[serde(default = "thirty_million")]
    pub bucket_docs: u64,
    /// A line occurring more than this many times in its bucket is removed.
    #[serde(default = "six")]
    pub max_count: u64,
    /// Keep the first occurrence of a removed line (in input order).
    #[serde(default)]
    pub keep_first: bool,
    /// Compare normalized lines (case, punctuation and spacing ignored).
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Sections of the key files: tasks of the `count` step.
    #[serde(default = "shards")]
    pub shards: usize,
}

fn thirty_million() -> u64 {
    30_000_000
}
fn six() -> u64 {
    6
}
fn yes() -> bool {
    true
}
fn shards() -> usize {
    16
}

pub static DEF: StageDef = StageDef {
    kind: "dedup.lines",
    about: "Removes lines repeated more than max_count times per bucket of documents (ccNet)",
    example: "bucket_docs = 30000000\nmax_count = 6",
    build,
};

/// The drop reason of a document whose every line was removed.
pub const EMPTIED: &str = "emptied";

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: LineDedupConfig = args.parse()?;
    check_range("bucket_docs", cfg.bucket_docs, 1, u32::MAX as u64)?;
    check_range("shards", cfg.shards, 1, 65536)?;
    let mut d = Declare::new(args.name);
    let removed = d.signal("lines_removed", "lines removed as repeated in the bucket");
    let chars = d.signal("chars_removed", "characters of the removed lines");
    let left = d.signal::<I64>("lines_left", "non-blank lines left after removal");
    // A page with no line left, once this stage removed some (not a page empty before it).
    d.fixed(left, Bound::Min, 1.0, EMPTIED)
        .only_if(removed, 1.0);
    Ok(Built::Global(Box::new(LineDedup {
        inner: Arc::new(Inner {
            name: args.name.to_string(),
            cfg,
            sig_removed: removed,
            sig_chars: chars,
            sig_left: left,
            declared: d.finish(),
        }),
    })))
}

/// One occurrence of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineRec {
    pub hash: u64,
    pub doc: u64,
    pub line: u32,
}
record!(LineRec {
    hash: u64,
    doc: u64,
    line: u32
});

/// The `dedup.lines` stage.
pub struct LineDedup {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    cfg: LineDedupConfig,
    sig_removed: Sig<I64>,
    sig_chars: Sig<I64>,
    sig_left: Sig<I64>,
    declared: Declared,
}

/// Hashes of a document's countable lines, as `(line number, hash)`.
pub fn line_hashes(doc: &Document, normalize: bool, out: &mut Vec<(u32, u64)>) {
    out.clear();
    let text = doc.text();
    let lines = doc.lines();
    if !normalize {
        for (i, r) in lines.iter().enumerate() {
            let l = text[r.start as usize..r.end as usize].trim_end();
            if !l.trim_start().is_empty() {
                out.push((i as u32, xxhash_rust::xxh3::xxh3_64(l.as_bytes())));
            }
        }
        return;
    }
    // Words never cross a line break (UAX #29 splits at newlines), so one pass over both
    // views assigns each word to its line.
    let words = doc.words();
    let mut w = 0;
    let mut buf = String::new();
    for (i, r) in lines.iter().enumerate() {
        buf.clear();
        while w < words.len() && words[w].start < r.start {
            w += 1;
        }
        while w < words.len() && words[w].end <= r.end {
            if words[w].is_alnum() {
                if !buf.is_empty() {
                    buf.push(' ');
                }
                push_lower(&mut buf, words[w].as_str(text));
            }
            w += 1;
        }
        if !buf.is_empty() {
            out.push((i as u32, xxhash_rust::xxh3::xxh3_64(buf.as_bytes())));
        }
    }
}

struct LineCollector {
    inner: Arc<Inner>,
    ctx: PartitionCtx,
    keys: KeyFileWriter<LineRec>,
    buf: Vec<(u32, u64)>,
}

impl Collector for LineCollector {
    fn collect(&mut self, doc: &Document) -> Result<()> {
        let row = self.keys.row();
        line_hashes(doc, self.inner.cfg.normalize, &mut self.buf);
        if self.buf.is_empty() {
            self.keys.keyless();
        }
        let shards = self.inner.cfg.shards;
        for &(line, hash) in &self.buf {
            let s = ((hash as u128 * shards as u128) >> 64) as usize;
            self.keys.add(
                s,
                LineRec {
                    hash,
                    doc: doc_key(self.ctx.partition, row),
                    line,
                },
            );
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

/// One task per shard: counts each line per bucket and routes the removals.
struct CountStep {
    inner: Arc<Inner>,
}

impl GlobalStep for CountStep {
    fn name(&self) -> &str {
        "count"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(self.inner.cfg.shards)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let io = |e| Error::io(&ctx.dir, e);
        let cfg = &self.inner.cfg;
        let mut st = StepStats::new("count", task);
        let scratch = Scratch::new(&ctx.scratch).map_err(io)?;
        let (index, sources) = Index::open_section::<LineRec>(ctx, task).map_err(io)?;

        st.count("inputs", sources.len() as u64);
        let mut merged = merge(sources, fan_in(task_budget(ctx)), &scratch).map_err(io)?;
        let mut router =
            Router::<LineDecision>::new(ctx.store.clone(), &ctx.dir, format!("count-{task:05}"));
        let bucket = |doc: u64| -> u64 {
            let (p, row) = super::decisions::split_key(doc);
            (index.offsets[p] + row as u64) / cfg.bucket_docs
        };
        let mut current: Option<(u64, u64)> = None;
        let mut count = 0u64;
        let mut held: Vec<LineRec> = Vec::new();
        let mut removing = false;
        let (mut occurrences, mut distinct, mut frequent) = (0u64, 0u64, 0u64);
        while let Some(r) = merged.next_record().map_err(io)? {
            occurrences += 1;
            let k = (r.hash, bucket(r.doc));
            if current != Some(k) {
                current = Some(k);
                distinct += 1;
                count = 0;
                held.clear();
                removing = false;
            }
            count += 1;
            if removing {
                router
                    .route(&LineDecision {
                        doc: r.doc,
                        line: r.line,
                    })
                    .map_err(io)?;
                continue;
            }
            held.push(r);
            if count > cfg.max_count {
                removing = true;
                frequent += 1;
                for (i, h) in held.drain(..).enumerate() {
                    if !(cfg.keep_first && i == 0) {
                        router
                            .route(&LineDecision {
                                doc: h.doc,
                                line: h.line,
                            })
                            .map_err(io)?;
                    }
                }
            }
        }
        let removed = router.finish().map_err(io)?;
        st.count("occurrences", occurrences);
        st.count("distinct_lines", distinct);
        st.count("frequent_lines", frequent);
        st.count("removals", removed);
        st.count("spilled_bytes", scratch.spill.bytes());
        st.peak_rss_bytes = peak_rss_bytes();
        Ok(st)
    }
}

struct LineApplier {
    inner: Arc<Inner>,
    cursor: RowCursor<LineDecision>,
}

impl Applier for LineApplier {
    fn apply(&mut self, doc: &mut Document) -> Outcome {
        let inner = &self.inner;
        let remove = self.cursor.next_row();
        let (mut removed, mut chars) = (0i64, 0i64);
        if !remove.is_empty() {
            let text = doc.text();
            let mut out = String::with_capacity(text.len());
            let mut next = remove.iter().map(|d| d.line).peekable();
            let lines = doc.lines();
            for (i, r) in lines.iter().enumerate() {
                // A line with its terminator: up to the next line's start (or the end).
                let end = lines.get(i + 1).map_or(text.len(), |n| n.start as usize);
                if next.peek() == Some(&(i as u32)) {
                    while next.peek() == Some(&(i as u32)) {
                        next.next();
                    }
                    removed += 1;
                    chars += text[r.start as usize..r.end as usize].chars().count() as i64;
                } else {
                    out.push_str(&text[r.start as usize..end]);
                }
            }
            if !text.ends_with('\n') {
                while out.ends_with('\n') || out.ends_with('\r') {
                    out.pop();
                }
            }
            doc.set_text(out);
        }
        let left = doc.line_strs().filter(|l| !l.trim().is_empty()).count() as i64;
        inner.sig_removed.set(&mut doc.signals, removed);
        inner.sig_chars.set(&mut doc.signals, chars);
        inner.sig_left.set(&mut doc.signals, left);
        inner
            .declared
            .judge(&doc.signals)
            .map_or(Outcome::Keep, Outcome::Drop)
    }
}

impl GlobalStage for LineDedup {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.inner.declared)
    }

    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>> {
        Ok(Box::new(LineCollector {
            inner: self.inner.clone(),
            ctx: ctx.clone(),
            keys: KeyFileWriter::new(self.inner.cfg.shards),
            buf: Vec::new(),
        }))
    }

    fn steps(&self) -> Vec<Box<dyn GlobalStep>> {
        vec![
            Box::new(IndexStep {
                record_size: LineRec::SIZE,
                sections: self.inner.cfg.shards,
            }),
            Box::new(CountStep {
                inner: self.inner.clone(),
            }),
            DecideStep::<LineDecision>::boxed(),
        ]
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        let items = load_decisions::<LineDecision>(ctx.store.as_ref(), &ctx.dir, ctx.partition)?;
        Ok(Box::new(LineApplier {
            inner: self.inner.clone(),
            cursor: RowCursor::new(items),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::{build as build_stage, build_err, doc, run};

    fn page(i: usize) -> String {
        format!(
            "Home | About | Contact\nArticle number {i} talks about its own topic {i}.\n\nCookie notice: we use cookies!\nUnique closing line {}.",
            i * 7
        )
    }

    #[test]
    fn removes_lines_repeated_past_the_threshold_per_bucket() {
        let stage = build_stage(&DEF, "lines", "max_count = 2\nbucket_docs = 3");
        // Bucket 0: docs 0..3, bucket 1: docs 3..6 (across the partition boundary).
        let docs: Vec<_> = (0..6)
            .map(|i| doc(&format!("d{i}"), "", &page(i)))
            .collect();
        let mut parts = vec![docs[..4].to_vec(), docs[4..].to_vec()];
        // In bucket 1 the navigation line differs in case and punctuation only: same line.
        parts[1][0].set_text(page(4).replace("Home | About", "HOME - about"));
        let out = run(stage.as_ref(), parts);
        for (d, o) in out.iter().flatten() {
            assert_eq!(*o, Outcome::Keep);
            assert!(!d.text().contains("Cookie"), "{:?}", d.text());
            assert!(!d.text().contains("About"), "{:?}", d.text());
            assert!(d.text().contains("Unique closing line"));
            assert_eq!(d.signals.i64("lines.lines_removed"), Some(2));
            assert_eq!(d.signals.i64("lines.lines_left"), Some(2));
            // "Home | About | Contact" (22 characters) and the cookie notice (30).
            assert_eq!(d.signals.i64("lines.chars_removed"), Some(52));
        }
        let first = &out[0][0].0;
        assert_eq!(
            first.text(),
            "Article number 0 talks about its own topic 0.\n\nUnique closing line 0."
        );
        // A bucket of 2 documents: each line occurs at most twice, nothing is removed.
        let stage = build_stage(&DEF, "lines", "max_count = 2\nbucket_docs = 2");
        let docs: Vec<_> = (0..6)
            .map(|i| doc(&format!("d{i}"), "", &page(i)))
            .collect();
        let out = run(stage.as_ref(), vec![docs]);
        assert!(out[0]
            .iter()
            .all(|(d, _)| d.signals.i64("lines.lines_removed") == Some(0)));
    }

    #[test]
    fn keep_first_and_emptied_documents() {
        let stage = build_stage(
            &DEF,
            "lines",
            "max_count = 0\nkeep_first = true\nnormalize = false",
        );
        let docs = vec![
            doc("a", "", "same\nsame\nfirst only"),
            doc("b", "", "same\r\nfirst only\r\n"),
            doc("c", "", "Same\n   \nother"),
        ];
        let out = run(stage.as_ref(), vec![docs]);
        let texts: Vec<&str> = out[0].iter().map(|(d, _)| d.text()).collect();
        assert_eq!(texts, vec!["same\nfirst only", "", "Same\n   \nother"]);
        assert_eq!(out[0][1].1, Outcome::Drop(EMPTIED));
        assert_eq!(stage.judge(&out[0][1].0.signals), Outcome::Drop(EMPTIED));
        assert_eq!(out[0][0].0.signals.i64("lines.lines_removed"), Some(1));
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(build_err(&DEF, "bucket_docs = 0").key, "bucket_docs");
        assert_eq!(build_err(&DEF, "max_count = -1").key, "max_count");
        assert_eq!(build_err(&DEF, "shards = 0").key, "shards");
    }
}
