//! Key files: what a dedup collector writes for one partition, and the index over all of them.
//!
//! A collector sorts its records into `S` sections (a band of a MinHash signature, a hash range
//! of URL keys) and writes one object per partition, `work/<stage>/keys/part-NNNNN.bin`:
//!
//! ```text
//! magic "CURDDUP1" | record_size u32 | sections u32 | rows u64 | keyless u64 | extra_len u64
//! | counts[sections] u64 | section 0 records (sorted) | section 1 ... | extra block
//! ```
//!
//! `rows` counts every document the collector saw (the n-th is row n of the partition in the
//! next phase), `keyless` those it could not key (no URL, no words). The extra block holds
//! per-row data some stages need later (MinHash keeps each row's rank for the keep rule).
//!
//! The first step of every dedup stage reads all headers once and writes the index
//! `work/<stage>/index.bin`: per partition its rows and extra block, then per section the
//! offset and count of that section in every partition (section-major), so the task of
//! section `s` reads only its slice of the index and one byte range of each key file.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::records::{u32_at, u64_at, LazySource, Record, RecordReader, Source};
use crate::store::Store;

const MAGIC: &[u8; 8] = b"CURDDUP1";
const INDEX_MAGIC: &[u8; 8] = b"CURDIDX1";
const FIXED: usize = 8 + 4 + 4 + 8 + 8 + 8;

/// Path of partition `p`'s key file.
pub fn key_path(dir: &str, p: usize) -> String {
    format!("{dir}/keys/part-{p:05}.bin")
}

/// Path of the stage's index.
pub fn index_path(dir: &str) -> String {
    format!("{dir}/index.bin")
}

/// Buffers one partition's records by section; [`KeyFileWriter::finish`] sorts and writes them.
pub struct KeyFileWriter<R: Record> {
    sections: Vec<Vec<R>>,
    rows: u64,
    keyless: u64,
}

impl<R: Record> KeyFileWriter<R> {
    pub fn new(sections: usize) -> Self {
        KeyFileWriter {
            sections: (0..sections).map(|_| Vec::new()).collect(),
            rows: 0,
            keyless: 0,
        }
    }

    /// Counts one document (a row); returns its row number.
    pub fn row(&mut self) -> u32 {
        let r = self.rows as u32;
        self.rows += 1;
        r
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Marks the current document as one without a key.
    pub fn keyless(&mut self) {
        self.keyless += 1;
    }

    pub fn add(&mut self, section: usize, r: R) {
        self.sections[section].push(r);
    }

    /// Sorts every section and writes the file atomically.
    pub fn finish(mut self, store: &dyn Store, path: &str, extra: &[u8]) -> io::Result<()> {
        if self.rows > u32::MAX as u64 {
            return Err(io::Error::other(format!(
                "{path}: {} documents in one partition (the limit is 2^32)",
                self.rows
            )));
        }
        let mut head = Vec::with_capacity(FIXED + 8 * self.sections.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&(R::SIZE as u32).to_le_bytes());
        head.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        head.extend_from_slice(&self.rows.to_le_bytes());
        head.extend_from_slice(&self.keyless.to_le_bytes());
        head.extend_from_slice(&(extra.len() as u64).to_le_bytes());
        for s in &self.sections {
            head.extend_from_slice(&(s.len() as u64).to_le_bytes());
        }
        let mut w = store.create(path)?;
        w.write_all(&head)?;
        let mut buf = Vec::with_capacity(1 << 16);
        for s in &mut self.sections {
            super::extsort::sort(s);
            for r in s.iter() {
                r.put(&mut buf);
                if buf.len() >= 1 << 16 {
                    w.write_all(&buf)?;
                    buf.clear();
                }
            }
            w.write_all(&buf)?;
            buf.clear();
        }
        w.write_all(extra)?;
        w.finish()
    }
}

/// One key file's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHeader {
    pub rows: u64,
    pub keyless: u64,
    pub extra_len: u64,
    pub counts: Vec<u64>,
    pub record_size: u64,
}

impl KeyHeader {
    fn len(&self) -> u64 {
        (FIXED + 8 * self.counts.len()) as u64
    }
    fn extra_offset(&self) -> u64 {
        self.len() + self.counts.iter().sum::<u64>() * self.record_size
    }
}

/// Reads and checks the header of a key file written with `sections` sections of `R`.
pub fn read_header(
    store: &dyn Store,
    path: &str,
    record_size: usize,
    sections: usize,
) -> io::Result<KeyHeader> {
    let want = FIXED + 8 * sections;
    let mut b = Vec::with_capacity(want);
    store
        .open_range(path, 0, want as u64)?
        .read_to_end(&mut b)?;
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {m}"));
    if b.len() < FIXED || &b[..8] != MAGIC {
        return Err(bad("not a dedup key file".into()));
    }
    let (rs, s) = (u32_at(&b, 8) as usize, u32_at(&b, 12) as usize);
    if rs != record_size || s != sections {
        return Err(bad(format!(
            "written with {s} sections of {rs}-byte records, expected {sections} of {record_size} \
             (the stage's configuration changed since the collect phase; delete work/ to rerun)"
        )));
    }
    if b.len() < want {
        return Err(bad("truncated header".into()));
    }
    Ok(KeyHeader {
        rows: u64_at(&b, 16),
        keyless: u64_at(&b, 24),
        extra_len: u64_at(&b, 32),
        counts: (0..sections).map(|i| u64_at(&b, FIXED + 8 * i)).collect(),
        record_size: rs as u64,
    })
}

/// Per-partition facts from the index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionMeta {
    pub rows: u64,
    pub keyless: u64,
    pub extra_offset: u64,
    pub extra_len: u64,
}

/// Lazy record sources, one per partition.
pub type Sources<R> = Vec<Box<dyn Source<R>>>;

/// The index of a stage's key files.
#[derive(Clone, Debug)]
pub struct Index {
    pub sections: usize,
    pub parts: Vec<PartitionMeta>,
    /// First global row of each partition (a prefix sum of rows), plus the total at the end.
    pub offsets: Vec<u64>,
    path: String,
}

impl Index {
    /// Reads every key file's header and writes the index. Returns totals (rows, keyless).
    pub fn build(
        store: &Arc<dyn Store>,
        dir: &str,
        partitions: usize,
        record_size: usize,
        sections: usize,
    ) -> io::Result<(u64, u64)> {
        use rayon::prelude::*;
        let headers: Vec<KeyHeader> = (0..partitions)
            .into_par_iter()
            .map(|p| read_header(store.as_ref(), &key_path(dir, p), record_size, sections))
            .collect::<io::Result<_>>()?;
        let mut out = Vec::with_capacity(24 + partitions * (32 + 16 * sections));
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(partitions as u64).to_le_bytes());
        out.extend_from_slice(&(sections as u64).to_le_bytes());
        for h in &headers {
            for v in [h.rows, h.keyless, h.extra_offset(), h.extra_len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        for s in 0..sections {
            for h in &headers {
                let off = h.len() + h.counts[..s].iter().sum::<u64>() * h.record_size;
                out.extend_from_slice(&off.to_le_bytes());
                out.extend_from_slice(&h.counts[s].to_le_bytes());
            }
        }
        store.put(&index_path(dir), &out)?;
        Ok((
            headers.iter().map(|h| h.rows).sum(),
            headers.iter().map(|h| h.keyless).sum(),
        ))
    }

    /// Loads the per-partition part of the index.
    pub fn load(store: &dyn Store, dir: &str) -> io::Result<Index> {
        let path = index_path(dir);
        let mut head = Vec::new();
        store.open_range(&path, 0, 24)?.read_to_end(&mut head)?;
        if head.len() < 24 || &head[..8] != INDEX_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: not a dedup index"),
            ));
        }
        let (partitions, sections) = (u64_at(&head, 8) as usize, u64_at(&head, 16) as usize);
        let mut b = Vec::new();
        store
            .open_range(&path, 24, 32 * partitions as u64)?
            .read_to_end(&mut b)?;
        if b.len() != 32 * partitions {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{path}: truncated"),
            ));
        }
        let parts: Vec<PartitionMeta> = (0..partitions)
            .map(|p| PartitionMeta {
                rows: u64_at(&b, 32 * p),
                keyless: u64_at(&b, 32 * p + 8),
                extra_offset: u64_at(&b, 32 * p + 16),
                extra_len: u64_at(&b, 32 * p + 24),
            })
            .collect();
        let mut offsets = Vec::with_capacity(partitions + 1);
        let mut acc = 0u64;
        for m in &parts {
            offsets.push(acc);
            acc += m.rows;
        }
        offsets.push(acc);
        Ok(Index {
            sections,
            parts,
            offsets,
            path,
        })
    }

    pub fn partitions(&self) -> usize {
        self.parts.len()
    }

    /// Total documents over all partitions.
    pub fn total_rows(&self) -> u64 {
        *self.offsets.last().unwrap_or(&0)
    }

    /// `(offset, count)` of section `s` in every partition's key file.
    pub fn section(&self, store: &dyn Store, s: usize) -> io::Result<Vec<(u64, u64)>> {
        let p = self.partitions() as u64;
        let start = 24 + 32 * p + 16 * p * s as u64;
        let mut b = Vec::new();
        store
            .open_range(&self.path, start, 16 * p)?
            .read_to_end(&mut b)?;
        if b.len() as u64 != 16 * p {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: truncated section table", self.path),
            ));
        }
        Ok((0..p as usize)
            .map(|i| (u64_at(&b, 16 * i), u64_at(&b, 16 * i + 8)))
            .collect())
    }

    /// The index in a step's folder and lazy sources over its section `s`: what every
    /// per-section task opens with.
    pub fn open_section<R: Record>(
        ctx: &crate::stage::StepCtx,
        s: usize,
    ) -> io::Result<(Index, Sources<R>)> {
        let index = Index::load(ctx.store.as_ref(), &ctx.dir)?;
        let sources = index.section_sources::<R>(&ctx.store, &ctx.dir, s)?;
        Ok((index, sources))
    }

    /// Lazy sources over section `s` of every partition, in partition order.
    pub fn section_sources<R: Record>(
        &self,
        store: &Arc<dyn Store>,
        dir: &str,
        s: usize,
    ) -> io::Result<Vec<Box<dyn Source<R>>>> {
        let table = self.section(store.as_ref(), s)?;
        Ok(table
            .into_iter()
            .enumerate()
            .filter(|(_, (_, n))| *n > 0)
            .map(|(p, (off, n))| {
                let store = store.clone();
                let path = key_path(dir, p);
                Box::new(LazySource::new(move || {
                    let r = store.open_range(&path, off, n * R::SIZE as u64)?;
                    Ok(
                        Box::new(RecordReader::<R>::new(r, path, super::extsort::READ_BUF))
                            as Box<dyn Source<R>>,
                    )
                })) as Box<dyn Source<R>>
            })
            .collect())
    }

    /// Opens partition `p`'s extra block.
    pub fn open_extra(
        &self,
        store: &dyn Store,
        dir: &str,
        p: usize,
    ) -> io::Result<Box<dyn Read + Send>> {
        let m = &self.parts[p];
        store.open_range(&key_path(dir, p), m.extra_offset, m.extra_len)
    }

    /// The partition of a global row.
    pub fn partition_of(&self, global: u64) -> usize {
        // offsets is non-decreasing; the last partition whose first row is <= global.
        self.offsets[..self.parts.len()].partition_point(|&o| o <= global) - 1
    }
}

/// The first step of every dedup stage: one task that reads all key file headers and writes
/// the index.
pub struct IndexStep {
    pub record_size: usize,
    pub sections: usize,
}

impl crate::stage::GlobalStep for IndexStep {
    fn name(&self) -> &str {
        "index"
    }

    fn tasks(&self, _ctx: &crate::stage::StepCtx) -> crate::Result<usize> {
        Ok(1)
    }

    fn run(
        &self,
        task: usize,
        ctx: &crate::stage::StepCtx,
    ) -> crate::Result<crate::stats::StepStats> {
        let (rows, keyless) = Index::build(
            &ctx.store,
            &ctx.dir,
            ctx.partitions,
            self.record_size,
            self.sections,
        )
        .map_err(|e| crate::Error::io(&ctx.dir, e))?;
        let mut st = crate::stats::StepStats::new("index", task);
        st.count("partitions", ctx.partitions as u64);
        st.count("documents", rows);
        st.count("keyless", keyless);
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::records::record;
    use crate::store::LocalStore;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct R1 {
        k: u64,
    }
    record!(R1 { k: u64 });

    #[test]
    fn write_index_and_read_sections() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path()).unwrap());
        for p in 0..3u64 {
            let mut w = KeyFileWriter::<R1>::new(2);
            for i in 0..(p * 10) {
                w.row();
                w.add((i % 2) as usize, R1 { k: 100 - i });
            }
            w.row();
            w.keyless();
            w.finish(
                store.as_ref(),
                &key_path("work/x", p as usize),
                &[p as u8; 3],
            )
            .unwrap();
        }
        assert_eq!(
            Index::build(&store, "work/x", 3, 8, 2).unwrap(),
            (1 + 11 + 21, 3)
        );
        let idx = Index::load(store.as_ref(), "work/x").unwrap();
        assert_eq!(idx.offsets, vec![0, 1, 12, 33]);
        assert_eq!(idx.partition_of(0), 0);
        assert_eq!(idx.partition_of(1), 1);
        assert_eq!(idx.partition_of(11), 1);
        assert_eq!(idx.partition_of(12), 2);
        let mut srcs = idx.section_sources::<R1>(&store, "work/x", 1).unwrap();
        assert_eq!(srcs.len(), 2, "the empty partition has no source");
        let mut got = Vec::new();
        while let Some(r) = srcs[1].next_record().unwrap() {
            got.push(r.k);
        }
        // Odd i of partition 2: 100 - i for i in 1, 3, ..., 19, sorted.
        let mut want: Vec<u64> = (1..20u64).step_by(2).map(|i| 100 - i).collect();
        want.sort();
        assert_eq!(got, want);
        let mut extra = Vec::new();
        idx.open_extra(store.as_ref(), "work/x", 2)
            .unwrap()
            .read_to_end(&mut extra)
            .unwrap();
        assert_eq!(extra, vec![2; 3]);
        // A changed configuration is named, not misread.
        let e = read_header(store.as_ref(), &key_path("work/x", 0), 8, 3).unwrap_err();
        assert!(e.to_string().contains("configuration changed"), "{e}");
    }
}
