//! One partition of a map phase: read, run the stages over batches, write, commit.
//!
//! A reader thread fills a bounded queue of document batches (I/O and decompression overlap
//! with compute); the partition's worker runs each stage over the live documents of a batch in
//! parallel (documents keep their order), then writes kept documents to `docs`, dropped ones to
//! `dropped`, and hands kept ones to the collector of a following global stage. Outputs become
//! visible atomically, then the stats file, then the completion marker.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use stages::read::{ReadEvent, ReadOptions};
use stages::{
    Applier, Built, Collector, Document, Error, Outcome, PartitionCtx, Result, StageStats, Verdict,
};

use super::Runner;
use crate::config::plan::{Mode, Phase};
use crate::config::raw::OutputFormat;
use crate::io::{jsonl::JsonlSink, parquet::ParquetSink, DocSink};
use crate::partition::{part_name, PartitionSpec};
use crate::stats::PartitionStats;

/// The drop reason of a document whose stage panicked (always a drop, even in tag mode: the
/// stage wrote no trustworthy signals).
pub const STAGE_PANIC: &str = "stage_panic";

/// Where a map phase's partitions read from.
enum Source {
    /// The run's input (first phase): WARC, WET, JSONL or Parquet.
    Input(PartitionSpec),
    /// The previous map phase's intermediate Parquet file.
    Previous(String),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Input(spec) => spec.describe(),
            Source::Previous(path) => path.clone(),
        }
    }
}

/// The global stages a map phase serves: one that applies its verdicts before the stages, one
/// that collects the phase's output after them.
struct Hooks {
    apply: Option<(usize, Box<dyn Applier>)>,
    collect: Option<Box<dyn Collector>>,
}

/// Where a partition's documents go: kept ones to `docs` (the run's output format in the last
/// phase, intermediate Parquet before), dropped ones to `dropped/` (opened on the first).
struct Sinks {
    docs: Box<dyn DocSink>,
    dropped: Option<Box<dyn DocSink>>,
    dropped_path: String,
    write_dropped: bool,
    signals: Vec<stages::signals::SignalSpec>,
}

impl Sinks {
    fn write(
        &mut self,
        runner: &Runner<'_>,
        kept: &[&Document],
        dropped: &[&Document],
    ) -> Result<()> {
        self.docs.write(kept)?;
        if dropped.is_empty() || !self.write_dropped {
            return Ok(());
        }
        if self.dropped.is_none() {
            let out = &runner.plan.config.raw.output;
            self.dropped = Some(Box::new(ParquetSink::new(
                runner.store.create(&self.dropped_path)?,
                self.signals.clone(),
                false,
                out.compression_level,
                out.row_group_rows,
            )?));
        }
        self.dropped.as_mut().expect("dropped sink").write(dropped)
    }

    /// Commits the files; returns (documents written, bytes written, dropped written).
    fn finish(self) -> Result<(u64, u64, u64)> {
        let (n, bytes) = self.docs.finish()?;
        let dropped = match self.dropped {
            Some(d) => d.finish()?.0,
            None => 0,
        };
        Ok((n, bytes, dropped))
    }
}

impl Runner<'_> {
    /// Runs partition `p` of map phase `index`: a reader thread fills a bounded queue of
    /// batches ([`Self::read_batches`]); each batch goes through the passes
    /// ([`Self::process_batch`]) and into the sinks. Returns the partition's stats.
    pub(super) fn run_map_partition(&self, phase: &Phase, p: usize) -> Result<PartitionStats> {
        let Phase::Map {
            index,
            apply,
            stages: stage_slots,
            collect,
        } = phase
        else {
            unreachable!("map phase")
        };
        let t0 = Instant::now();
        let name = part_name(p);
        let source = if *index == 0 {
            Source::Input(self.partitions[p].clone())
        } else {
            Source::Previous(format!("work/map{}/docs/{name}.parquet", index - 1))
        };
        let mut hooks = self.open_hooks(*apply, *collect, p)?;
        let mut sinks = self.open_sinks(*index, &name)?;
        // Stats: `read` (first phase) or `load`, then one per stage.
        let mut read_stats = StageStats::new(if *index == 0 { "read" } else { "load" });
        let mut stage_stats: Vec<StageStats> = apply
            .iter()
            .chain(stage_slots)
            .map(|s| StageStats::new(&self.plan.slots[*s].name))
            .collect();
        let exec = &self.plan.config.raw.executor;
        let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<Document>>>(exec.queue_batches);

        std::thread::scope(|scope| -> Result<()> {
            let source = &source;
            let read_name = read_stats.name.clone();
            let reader = scope.spawn(move || self.read_batches(source, read_name, tx));
            let mut failure = None;
            for batch in rx.iter() {
                let done = batch.and_then(|mut batch| {
                    self.process_batch(&mut batch, &mut hooks, stage_slots, &mut stage_stats);
                    let (kept, dropped): (Vec<&Document>, Vec<&Document>) =
                        batch.iter().partition(|d| d.verdict.is_kept());
                    if let Some(c) = hooks.collect.as_mut() {
                        kept.iter().try_for_each(|d| c.collect(d))?;
                        dropped.iter().try_for_each(|d| c.dropped(d))?;
                    }
                    sinks.write(self, &kept, &dropped)
                });
                if let Err(e) = done {
                    failure = Some(e);
                    break;
                }
            }
            // Stop the reader if we broke out early, then collect its counts.
            drop(rx);
            read_stats = reader
                .join()
                .map_err(|_| Error::other("reader thread panicked"))?;
            failure.map_or(Ok(()), Err)
        })?;

        let (docs_written, bytes, dropped_written) = sinks.finish()?;
        if let Some(c) = hooks.collect {
            c.finish()?;
        }
        let mut all = vec![read_stats];
        all.extend(stage_stats);
        Ok(PartitionStats {
            phase: phase.name(),
            partition: p,
            input: source.describe(),
            stages: all,
            docs_written,
            bytes_written: bytes,
            dropped_written,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Opens the applier and collector of the global stages around a map phase.
    fn open_hooks(&self, apply: Option<usize>, collect: Option<usize>, p: usize) -> Result<Hooks> {
        let global = |slot: usize| match &self.plan.slots[slot].built {
            Built::Global(g) => Some(g),
            Built::Map(_) => None,
        };
        let ctx = |slot: usize| PartitionCtx {
            store: self.store.clone(),
            dir: format!("work/{}", self.plan.slots[slot].name),
            partition: p,
            partitions: self.partitions.len(),
            scratch: self.scratch.clone(),
            seed: self.plan.seed,
        };
        let apply = match apply.and_then(|a| Some((a, global(a)?))) {
            Some((a, g)) => Some((a, g.applier(&ctx(a))?)),
            None => None,
        };
        let collect = match collect.and_then(|c| Some((c, global(c)?))) {
            Some((c, g)) => Some(g.collector(&ctx(c))?),
            None => None,
        };
        Ok(Hooks { apply, collect })
    }

    /// Opens the sinks of partition `name` of map phase `index`: the last phase writes the
    /// run's documents, earlier ones intermediate Parquet (with HTML while an extraction
    /// stage is still to come).
    fn open_sinks(&self, index: usize, name: &str) -> Result<Sinks> {
        let out = &self.plan.config.raw.output;
        let last = index == self.plan.last_map();
        let signals = self.plan.signals_through(index);
        let docs: Box<dyn DocSink> = match (last, out.format) {
            (true, OutputFormat::Jsonl) => Box::new(JsonlSink::new(
                self.store.create(&format!("docs/{name}.jsonl.zst"))?,
                out.compression_level,
            )?),
            _ => {
                let path = if last {
                    format!("docs/{name}.parquet")
                } else {
                    format!("work/map{index}/docs/{name}.parquet")
                };
                Box::new(ParquetSink::new(
                    self.store.create(&path)?,
                    signals.clone(),
                    !last && self.html_flows_past(index),
                    out.compression_level,
                    out.row_group_rows,
                )?)
            }
        };
        Ok(Sinks {
            docs,
            dropped: None,
            dropped_path: format!("dropped/map{index}/{name}.parquet"),
            write_dropped: out.write_dropped,
            signals,
        })
    }

    /// The batch source of both input kinds (the run's input as read events, or the previous
    /// phase's documents): sends batches of `executor.batch_docs` documents to `tx`, counting
    /// documents and skipped records under `read_name`, until the input ends, an error (sent
    /// in place of a batch) or the receiver hangs up.
    fn read_batches(
        &self,
        source: &Source,
        read_name: String,
        tx: crossbeam_channel::Sender<Result<Vec<Document>>>,
    ) -> StageStats {
        let mut rs = StageStats::new(read_name);
        let batch_docs = self.plan.config.raw.executor.batch_docs;
        let events: Box<dyn Iterator<Item = Result<ReadEvent>> + Send> = match source {
            Source::Input(spec) => match self.open_partition(spec) {
                Ok(events) => Box::new(events.map(Ok)),
                Err(e) => Box::new(std::iter::once(Err(e))),
            },
            Source::Previous(path) => {
                match crate::io::row_groups::ParquetFile::from_store(self.store.as_ref(), path)
                    .and_then(|f| crate::io::parquet::ParquetDocs::of(&f, batch_docs))
                {
                    Ok(docs) => Box::new(docs.map(|d| d.map(ReadEvent::Doc))),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            }
        };
        // Input bytes are the page as read (its HTML when it has one); loaded documents count
        // their text.
        let loaded = matches!(source, Source::Previous(_));
        let mut batch = Vec::with_capacity(batch_docs);
        for ev in events {
            match ev {
                Ok(ReadEvent::Doc(d)) => {
                    rs.docs_in += 1;
                    rs.docs_out += 1;
                    let b = match &d.html {
                        Some(h) if !loaded => h.len(),
                        _ => d.text().len(),
                    } as u64;
                    rs.bytes_in += b;
                    rs.bytes_out += b;
                    batch.push(d);
                    if batch.len() >= batch_docs
                        && tx
                            .send(Ok(std::mem::replace(
                                &mut batch,
                                Vec::with_capacity(batch_docs),
                            )))
                            .is_err()
                    {
                        return rs;
                    }
                }
                Ok(ReadEvent::Skip { reason, bytes, .. }) => {
                    rs.docs_in += 1;
                    rs.bytes_in += bytes;
                    rs.drop(reason);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return rs;
                }
            }
        }
        if !batch.is_empty() {
            let _ = tx.send(Ok(batch));
        }
        rs
    }

    /// The passes over one batch: the applied global stage's verdicts, then each map stage in
    /// order over the documents still kept.
    fn process_batch(
        &self,
        batch: &mut [Document],
        hooks: &mut Hooks,
        stage_slots: &[usize],
        stage_stats: &mut [StageStats],
    ) {
        let mut si = 0;
        if let Some((slot, app)) = hooks.apply.as_mut() {
            self.apply_pass(*slot, app.as_mut(), batch, &mut stage_stats[0]);
            si = 1;
        }
        for (k, &slot) in stage_slots.iter().enumerate() {
            self.run_stage(slot, batch, &mut stage_stats[si + k]);
        }
    }

    /// Applies a global stage's verdicts to every document of a batch, in input order.
    fn apply_pass(
        &self,
        slot: usize,
        app: &mut dyn Applier,
        batch: &mut [Document],
        st: &mut StageStats,
    ) {
        let t = Instant::now();
        for d in batch.iter_mut() {
            st.docs_in += 1;
            st.bytes_in += d.text().len() as u64;
            let o = app.apply(d);
            self.record(slot, d, o, st);
        }
        st.seconds += t.elapsed().as_secs_f64();
    }

    /// Runs one map stage over the live documents of a batch.
    fn run_stage(&self, slot: usize, batch: &mut [Document], st: &mut StageStats) {
        let Built::Map(stage) = &self.plan.slots[slot].built else {
            return;
        };
        let t = Instant::now();
        let scope = &self.plan.slots[slot];
        let mut live: Vec<&mut Document> = Vec::with_capacity(batch.len());
        for d in batch.iter_mut().filter(|d| d.verdict.is_kept()) {
            if scope.applies_to(&d.signals) {
                live.push(d);
            } else {
                // Outside the stage's `only_languages` or `when`: passes through, counted as in
                // and out (and as `not_scored` when a `when` condition is set).
                if scope.when.is_some() {
                    *st.counters.entry("not_scored".into()).or_default() += 1;
                }
                let bytes = d.html.as_ref().map_or(d.text().len(), |h| h.len()) as u64;
                st.docs_in += 1;
                st.docs_out += 1;
                st.bytes_in += bytes;
                st.bytes_out += bytes;
            }
        }
        if scope.when.is_some() {
            *st.counters.entry("scored".into()).or_default() += live.len() as u64;
        }
        st.docs_in += live.len() as u64;
        st.bytes_in += live
            .iter()
            .map(|d| d.html.as_ref().map_or(d.text().len(), |h| h.len()) as u64)
            .sum::<u64>();
        let outcomes: Vec<Outcome> = if stage.batched() {
            match std::panic::catch_unwind(AssertUnwindSafe(|| stage.process_batch(&mut live))) {
                Ok(o) if o.len() == live.len() => o
                    .into_iter()
                    .zip(live.iter())
                    .map(|(o, d)| {
                        if o.is_keep() {
                            stage.judge(&d.signals)
                        } else {
                            o
                        }
                    })
                    .collect(),
                _ => vec![Outcome::Drop(STAGE_PANIC); live.len()],
            }
        } else {
            let run = |d: &mut &mut Document| -> Outcome {
                match std::panic::catch_unwind(AssertUnwindSafe(|| stage.process(d))) {
                    Ok(Outcome::Keep) => stage.judge(&d.signals),
                    Ok(o) => o,
                    Err(_) => Outcome::Drop(STAGE_PANIC),
                }
            };
            if self.threads > 1 && live.len() > 1 {
                live.par_iter_mut().with_min_len(4).map(run).collect()
            } else {
                live.iter_mut().map(run).collect()
            }
        };
        for (d, o) in live.into_iter().zip(outcomes) {
            self.record(slot, d, o, st);
        }
        st.seconds += t.elapsed().as_secs_f64();
    }

    /// Applies an outcome to a document and counts it.
    fn record(&self, slot: usize, d: &mut Document, o: Outcome, st: &mut StageStats) {
        let s = &self.plan.slots[slot];
        match o {
            Outcome::Keep => {}
            Outcome::Drop(reason) if s.mode == Mode::Tag && reason != STAGE_PANIC => {
                *st.flagged.entry(reason.to_string()).or_default() += 1;
                d.flags
                    .push((self.slot_names[slot].clone(), Arc::from(reason)));
            }
            Outcome::Drop(reason) => {
                if reason == STAGE_PANIC {
                    tracing::error!("stage {} panicked on document {}; dropped", s.name, d.id);
                }
                st.drop(reason);
                d.verdict = Verdict::Dropped {
                    stage: self.slot_names[slot].clone(),
                    reason: Arc::from(reason),
                };
                return;
            }
        }
        st.docs_out += 1;
        st.bytes_out += d.html.as_ref().map_or(d.text().len(), |h| h.len()) as u64;
    }

    /// Opens the reader of a first-phase partition, aligning its byte range to record starts.
    fn open_partition(
        &self,
        spec: &PartitionSpec,
    ) -> Result<Box<dyn Iterator<Item = ReadEvent> + Send>> {
        let cfg = &self.plan.config.raw.storage;
        let input = &self.plan.config.raw.input;
        let opts = ReadOptions {
            max_record_bytes: input.max_record_bytes.0 as usize,
            text_field: input.text_field.clone(),
            id_field: input.id_field.clone(),
            url_field: input.url_field.clone(),
        };
        if spec.format == stages::read::Format::Parquet {
            return crate::io::input_parquet::read_partition(
                &spec.uri,
                spec.size,
                spec.row_groups,
                cfg,
                &crate::io::input_parquet::Columns::from_input(input),
                self.plan.config.raw.executor.batch_docs,
            );
        }
        let (start, end) = if spec.start == 0 && spec.end.is_none() {
            (Some(0), None)
        } else {
            let mut f = crate::storage::open_seekable(&spec.uri, spec.size, cfg)
                .map_err(|e| Error::io(&spec.uri, e))?;
            let s = stages::read::align(spec.format, &mut f, spec.start)
                .map_err(|e| Error::io(&spec.uri, e))?;
            let e = match spec.end {
                Some(e) => stages::read::align(spec.format, &mut f, e)
                    .map_err(|e2| Error::io(&spec.uri, e2))?,
                None => None,
            };
            (s, e)
        };
        let Some(start) = start else {
            return Ok(Box::new(std::iter::empty()));
        };
        if end.is_some_and(|e| e <= start) {
            return Ok(Box::new(std::iter::empty()));
        }
        let r = crate::storage::open_read(&spec.uri, start, cfg)
            .map_err(|e| Error::io(&spec.uri, e))?;
        Ok(stages::read::read_docs(
            spec.format,
            Arc::from(spec.uri.as_str()),
            r,
            start,
            end,
            &opts,
        ))
    }

    /// Whether documents leaving map phase `index` still need their HTML (an extraction stage
    /// runs in a later phase).
    fn html_flows_past(&self, index: usize) -> bool {
        let mut later = false;
        for ph in &self.plan.phases {
            if let Phase::Map {
                index: i, stages, ..
            } = ph
            {
                if *i > index
                    && stages
                        .iter()
                        .any(|s| self.plan.slots[*s].kind.starts_with("extract."))
                {
                    later = true;
                }
            }
        }
        later
    }
}
