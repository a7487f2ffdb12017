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

/// Where a map phase's partitions read from.
enum Source {
    Input(PartitionSpec),
    Previous(String),
}

impl Runner<'_> {
    /// Runs partition `p` of map phase `index`. Returns its stats.
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
        let last = *index == self.plan.last_map();
        let signals = self.plan.signals_through(*index);
        let pctx = |slot: usize| PartitionCtx {
            store: self.store.clone(),
            dir: format!("work/{}", self.plan.slots[slot].name),
            partition: p,
            partitions: self.partitions.len(),
            scratch: self.scratch.clone(),
            seed: self.plan.seed,
        };
        let mut applier: Option<Box<dyn Applier>> = match apply {
            Some(a) => match &self.plan.slots[*a].built {
                Built::Global(g) => Some(g.applier(&pctx(*a))?),
                Built::Map(_) => None,
            },
            None => None,
        };
        let mut collector: Option<Box<dyn Collector>> = match collect {
            Some(c) => match &self.plan.slots[*c].built {
                Built::Global(g) => Some(g.collector(&pctx(*c))?),
                Built::Map(_) => None,
            },
            None => None,
        };

        // Sinks: the last phase writes the run's documents; earlier ones intermediate Parquet.
        let out_cfg = &self.plan.config.raw.output;
        let with_html = !last && self.html_flows_past(*index);
        let docs_path = if last {
            match out_cfg.format {
                OutputFormat::Parquet => format!("docs/{name}.parquet"),
                OutputFormat::Jsonl => format!("docs/{name}.jsonl.zst"),
            }
        } else {
            format!("work/map{index}/docs/{name}.parquet")
        };
        let mut sink: Box<dyn DocSink> = if last && out_cfg.format == OutputFormat::Jsonl {
            Box::new(JsonlSink::new(
                self.store.create(&docs_path)?,
                out_cfg.compression_level,
            )?)
        } else {
            Box::new(ParquetSink::new(
                self.store.create(&docs_path)?,
                signals.clone(),
                with_html,
                out_cfg.compression_level,
                out_cfg.row_group_rows,
            )?)
        };
        let mut dropped_sink: Option<Box<dyn DocSink>> = None;
        let dropped_path = format!("dropped/map{index}/{name}.parquet");

        // Stats: `read` (first phase) or `load`, then one per stage.
        let mut read_stats = StageStats::new(if *index == 0 { "read" } else { "load" });
        let mut stage_stats: Vec<StageStats> = Vec::new();
        if let Some(a) = apply {
            stage_stats.push(StageStats::new(&self.plan.slots[*a].name));
        }
        for s in stage_slots {
            stage_stats.push(StageStats::new(&self.plan.slots[*s].name));
        }
        let batch_docs = self.plan.config.raw.executor.batch_docs;
        let queue = self.plan.config.raw.executor.queue_batches;
        let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<Document>>>(queue);
        let mut docs_written = 0u64;
        let mut dropped_written = 0u64;
        let input_desc = match &source {
            Source::Input(spec) => spec.describe(),
            Source::Previous(path) => path.clone(),
        };

        let result: Result<()> = std::thread::scope(|scope| {
            // Reader thread: turns the input into batches, counting skipped records.
            let read_name = read_stats.name.clone();
            let source = &source;
            let reader = scope.spawn(move || -> StageStats {
                let tx = tx;
                let mut rs = StageStats::new(read_name);
                let send = |b: Result<Vec<Document>>| tx.send(b).is_ok();
                match source {
                    Source::Input(spec) => {
                        let events = match self.open_partition(spec) {
                            Ok(e) => e,
                            Err(e) => {
                                send(Err(e));
                                return rs;
                            }
                        };
                        let mut batch = Vec::with_capacity(batch_docs);
                        for ev in events {
                            rs.docs_in += 1;
                            match ev {
                                ReadEvent::Doc(d) => {
                                    rs.docs_out += 1;
                                    let b =
                                        d.html.as_ref().map_or(d.text().len(), |h| h.len()) as u64;
                                    rs.bytes_in += b;
                                    rs.bytes_out += b;
                                    batch.push(d);
                                    if batch.len() >= batch_docs
                                        && !send(Ok(std::mem::replace(
                                            &mut batch,
                                            Vec::with_capacity(batch_docs),
                                        )))
                                    {
                                        return rs;
                                    }
                                }
                                ReadEvent::Skip { reason, bytes, .. } => {
                                    rs.bytes_in += bytes;
                                    rs.drop(reason);
                                }
                            }
                        }
                        if !batch.is_empty() {
                            send(Ok(batch));
                        }
                    }
                    Source::Previous(path) => {
                        let docs = match crate::io::row_groups::ParquetFile::from_store(
                            self.store.as_ref(),
                            path,
                        )
                        .and_then(|f| crate::io::parquet::ParquetDocs::of(&f, batch_docs))
                        {
                            Ok(d) => d,
                            Err(e) => {
                                send(Err(e));
                                return rs;
                            }
                        };
                        let mut batch = Vec::with_capacity(batch_docs);
                        for d in docs {
                            match d {
                                Ok(d) => {
                                    rs.docs_in += 1;
                                    rs.docs_out += 1;
                                    let b = d.text().len() as u64;
                                    rs.bytes_in += b;
                                    rs.bytes_out += b;
                                    batch.push(d);
                                    if batch.len() >= batch_docs
                                        && !send(Ok(std::mem::replace(
                                            &mut batch,
                                            Vec::with_capacity(batch_docs),
                                        )))
                                    {
                                        return rs;
                                    }
                                }
                                Err(e) => {
                                    send(Err(e));
                                    return rs;
                                }
                            }
                        }
                        if !batch.is_empty() {
                            send(Ok(batch));
                        }
                    }
                }
                rs
            });
            let mut failure = None;
            for batch in rx.iter() {
                let mut batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                let mut si = 0;
                if let Some(app) = applier.as_mut() {
                    let slot = apply.expect("apply slot");
                    let st = &mut stage_stats[0];
                    let t = Instant::now();
                    for d in batch.iter_mut() {
                        st.docs_in += 1;
                        st.bytes_in += d.text().len() as u64;
                        let o = app.apply(d);
                        self.record(slot, d, o, st);
                    }
                    st.seconds += t.elapsed().as_secs_f64();
                    si = 1;
                }
                for (k, &slot) in stage_slots.iter().enumerate() {
                    let st = &mut stage_stats[si + k];
                    self.run_stage(slot, &mut batch, st);
                }
                let (kept, dropped): (Vec<&Document>, Vec<&Document>) =
                    batch.iter().partition(|d| d.verdict.is_kept());
                if let Some(c) = collector.as_mut() {
                    for d in &kept {
                        c.collect(d)?;
                    }
                    for d in &dropped {
                        c.dropped(d)?;
                    }
                }
                sink.write(&kept)?;
                if !dropped.is_empty() && out_cfg.write_dropped {
                    if dropped_sink.is_none() {
                        dropped_sink = Some(Box::new(ParquetSink::new(
                            self.store.create(&dropped_path)?,
                            signals.clone(),
                            false,
                            out_cfg.compression_level,
                            out_cfg.row_group_rows,
                        )?));
                    }
                    dropped_sink
                        .as_mut()
                        .expect("dropped sink")
                        .write(&dropped)?;
                }
            }
            // Stop the reader if we broke out early, then collect its counts.
            drop(rx);
            read_stats = reader
                .join()
                .map_err(|_| Error::other("reader thread panicked"))?;
            match failure {
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        result?;

        let (n, bytes) = sink.finish()?;
        docs_written += n;
        if let Some(ds) = dropped_sink {
            dropped_written += ds.finish()?.0;
        }
        if let Some(c) = collector {
            c.finish()?;
        }
        let mut all = vec![read_stats];
        all.extend(stage_stats);
        Ok(PartitionStats {
            phase: phase.name(),
            partition: p,
            input: input_desc,
            stages: all,
            docs_written,
            bytes_written: bytes,
            dropped_written,
            seconds: t0.elapsed().as_secs_f64(),
        })
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
                _ => vec![Outcome::Drop("stage_panic"); live.len()],
            }
        } else {
            let run = |d: &mut &mut Document| -> Outcome {
                match std::panic::catch_unwind(AssertUnwindSafe(|| stage.process(d))) {
                    Ok(Outcome::Keep) => stage.judge(&d.signals),
                    Ok(o) => o,
                    Err(_) => Outcome::Drop("stage_panic"),
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
            Outcome::Drop(reason) if s.mode == Mode::Tag && reason != "stage_panic" => {
                *st.flagged.entry(reason.to_string()).or_default() += 1;
                d.flags
                    .push((self.slot_names[slot].clone(), Arc::from(reason)));
            }
            Outcome::Drop(reason) => {
                if reason == "stage_panic" {
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
