//! Candidate verification for `dedup.minhash`: a pair of documents that shares a band is kept
//! only when their whole signatures agree on at least `verify_threshold` of their values.
//!
//! LSH finds a pair of Jaccard similarity `s` with probability `1 - (1 - s^rows)^bands`, a
//! curve with a long tail below its threshold (14 x 8 finds 5% of the pairs at 0.5). The share
//! of equal values over all `bands * rows` hashes estimates `s` itself (standard deviation
//! `sqrt(s (1 - s) / (bands * rows))`, 0.047 at 0.5 for 112 hashes), so checking it cuts the
//! tail while a candidate at 0.8 passes a 0.7 threshold with probability 0.997.
//!
//! Checking a pair needs both documents' signatures, which live in different partitions, so
//! verification is a two-hop join through the [`Store`], bounded by the memory budget:
//!
//! - the collector writes `sigs/part-NNNNN.bin`: a 16-byte header (magic, hashes), then one
//!   fixed-size row per document in row order, a 16-bit fingerprint of each signature value
//!   (zeros for documents without a signature; two different values share a fingerprint with
//!   probability 2^-16, which moves an estimate over 112 hashes by 0.00002 on average);
//! - `pairs` routes every candidate `(a, b)` (document keys, `a` first in key order) to the
//!   group of partitions holding `a` (`cand/routed/group-G/pairs-T.bin`);
//! - `sign` (one task per group) sorts its candidates, drops repeats (a pair shares several
//!   bands), reads `a`'s fingerprints in one forward pass over each partition's file and routes
//!   `(b, a, fingerprints of a)` to the group holding `b` (`half/routed/...`);
//! - `verify` (one task per group) sorts those by `b`, reads `b`'s fingerprints the same way,
//!   counts equal values, and writes the pairs that pass as global rows
//!   (`pairs/verify-T.bin`), which `components` reads as it reads unverified pairs.

use std::io::{self, Read, Write};

use super::decisions::{
    groups, peak_rss_bytes, routed_dir, split_key, task_budget, Decision, Router,
};
use super::extsort::{ExtSorter, Scratch};
use super::keys::Index;
use super::records::{record, u32_at, u64_at, PairRec, Record, RecordReader, RecordWriter, Source};
use crate::error::{Error, Result};
use crate::stage::{GlobalStep, StepCtx};
use crate::stats::StepStats;
use crate::store::{ObjectWriter, Store};

const SIG_MAGIC: &[u8; 8] = b"CURDSIG1";
const SIG_HEADER: u64 = 16;

/// The largest signature (`bands * rows`) that verification carries (8 KiB of fingerprints
/// per candidate pair at most).
pub const MAX_VERIFY_HASHES: usize = 4096;

/// Path of partition `p`'s fingerprint file.
pub fn sig_path(dir: &str, p: usize) -> String {
    format!("{dir}/sigs/part-{p:05}.bin")
}

/// The 16-bit fingerprint of a signature value (all 64 bits folded in).
#[inline]
pub fn fingerprint(v: u64) -> u16 {
    let x = v ^ (v >> 32);
    (x ^ (x >> 16)) as u16
}

/// The number of equal values a pair needs over `hashes` values to pass `threshold`.
pub fn min_equal(hashes: usize, threshold: f64) -> usize {
    // The margin keeps products that are whole numbers (0.75 * 200) from rounding up.
    ((threshold * hashes as f64) - 1e-9).ceil().max(0.0) as usize
}

/// Writes one partition's fingerprints, one row per document.
pub struct SigWriter {
    out: Box<dyn ObjectWriter>,
    buf: Vec<u8>,
    hashes: usize,
}

impl SigWriter {
    pub fn create(store: &dyn Store, path: &str, hashes: usize) -> io::Result<Self> {
        let out = store.create(path)?;
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(SIG_MAGIC);
        buf.extend_from_slice(&(hashes as u32).to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        Ok(SigWriter { out, buf, hashes })
    }

    /// The next row: a signature's fingerprints, or zeros for a document without one.
    pub fn push(&mut self, sig: Option<&[u64]>) -> io::Result<()> {
        match sig {
            Some(sig) => {
                debug_assert_eq!(sig.len(), self.hashes);
                for &v in sig {
                    self.buf.extend_from_slice(&fingerprint(v).to_le_bytes());
                }
            }
            None => self.buf.resize(self.buf.len() + 2 * self.hashes, 0),
        }
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.out.finish()
    }
}

/// Reads rows of one partition's fingerprint file in ascending order (one forward pass).
struct SigReader {
    input: Box<dyn Read + Send>,
    next: u32,
    width: usize,
    path: String,
}

impl SigReader {
    fn open(store: &dyn Store, dir: &str, p: usize, rows: u64, hashes: usize) -> io::Result<Self> {
        let path = sig_path(dir, p);
        let mut head = Vec::with_capacity(SIG_HEADER as usize);
        store
            .open_range(&path, 0, SIG_HEADER)?
            .read_to_end(&mut head)?;
        let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: {m}"));
        if head.len() != SIG_HEADER as usize || &head[..8] != SIG_MAGIC {
            return Err(bad("not a MinHash fingerprint file".into()));
        }
        let written = u32_at(&head, 8) as usize;
        if written != hashes {
            return Err(bad(format!(
                "written with {written} hashes per signature, expected {hashes} (the stage's \
                 configuration changed since the collect phase; delete work/ to rerun)"
            )));
        }
        let width = 2 * hashes;
        let input = store.open_range(&path, SIG_HEADER, rows * width as u64)?;
        Ok(SigReader {
            input,
            next: 0,
            width,
            path,
        })
    }

    /// Reads row `row` (not before the last one read) into `out[..width]`.
    fn read(&mut self, row: u32, out: &mut [u8]) -> io::Result<()> {
        let bad =
            |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {m}", self.path));
        if row < self.next {
            return Err(bad("rows requested out of order"));
        }
        let skip = (row - self.next) as u64 * self.width as u64;
        if io::copy(&mut (&mut self.input).take(skip), &mut io::sink())? != skip {
            return Err(bad("truncated (fewer rows than the key file)"));
        }
        self.input
            .read_exact(&mut out[..self.width])
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => bad("truncated (fewer rows than the key file)"),
                _ => e,
            })?;
        self.next = row + 1;
        Ok(())
    }
}

/// Opens partitions' fingerprint files in ascending order, one at a time.
pub(crate) struct SigCursor<'a> {
    ctx: &'a StepCtx,
    index: &'a Index,
    hashes: usize,
    open: Option<(usize, SigReader)>,
}

impl<'a> SigCursor<'a> {
    pub(crate) fn new(ctx: &'a StepCtx, index: &'a Index, hashes: usize) -> Self {
        SigCursor {
            ctx,
            index,
            hashes,
            open: None,
        }
    }

    /// Reads document `doc`'s fingerprints (documents in ascending key order) into `out`.
    pub(crate) fn read(&mut self, doc: u64, out: &mut [u8]) -> Result<()> {
        let (p, row) = split_key(doc);
        if p >= self.index.partitions() || row as u64 >= self.index.parts[p].rows {
            return Err(Error::other(format!(
                "{}: candidate for a document outside the index",
                self.ctx.dir
            )));
        }
        if self.open.as_ref().map(|o| o.0) != Some(p) {
            let r = SigReader::open(
                self.ctx.store.as_ref(),
                &self.ctx.dir,
                p,
                self.index.parts[p].rows,
                self.hashes,
            )
            .map_err(|e| Error::io(sig_path(&self.ctx.dir, p), e))?;
            self.open = Some((p, r));
        }
        let (_, r) = self.open.as_mut().expect("opened above");
        r.read(row, out).map_err(|e| Error::io(&r.path, e))
    }
}

/// A candidate pair of documents (document keys), routed to the group holding `a`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CandRec {
    pub a: u64,
    pub b: u64,
}
record!(CandRec { a: u64, b: u64 });

impl Decision for CandRec {
    fn doc(&self) -> u64 {
        self.a
    }
}

/// A candidate pair with `a`'s fingerprints (`N` bytes, padded), routed to the group of `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HalfRec<const N: usize> {
    b: u64,
    a: u64,
    sig: [u8; N],
}

impl<const N: usize> Record for HalfRec<N> {
    const SIZE: usize = 16 + N;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.b.to_le_bytes());
        out.extend_from_slice(&self.a.to_le_bytes());
        out.extend_from_slice(&self.sig);
    }
    fn get(b: &[u8]) -> Self {
        HalfRec {
            b: u64_at(b, 0),
            a: u64_at(b, 8),
            sig: b[16..16 + N].try_into().expect("N bytes"),
        }
    }
}

impl<const N: usize> Decision for HalfRec<N> {
    fn doc(&self) -> u64 {
        self.b
    }
}

/// Where `pairs` routes candidates for `sign`.
pub fn candidates_dir(dir: &str) -> String {
    format!("{dir}/cand")
}

fn halves_dir(dir: &str) -> String {
    format!("{dir}/half")
}

/// Records carry fingerprints in a few padded widths (powers of two from 64 bytes), so that
/// each width is one compiled record type.
pub(crate) fn width_class(hashes: usize) -> usize {
    (2 * hashes).next_power_of_two().max(64)
}

macro_rules! by_width {
    ($hashes:expr, $f:ident ( $($arg:expr),* )) => {
        match width_class($hashes) {
            64 => $f::<64>($($arg),*),
            128 => $f::<128>($($arg),*),
            256 => $f::<256>($($arg),*),
            512 => $f::<512>($($arg),*),
            1024 => $f::<1024>($($arg),*),
            2048 => $f::<2048>($($arg),*),
            4096 => $f::<4096>($($arg),*),
            8192 => $f::<8192>($($arg),*),
            w => Err(Error::other(format!("no record width for {w}-byte fingerprints"))),
        }
    };
}
pub(crate) use by_width;

/// Sorted records of every file routed to one group under `dir`.
pub(crate) fn routed_sorted<R: Record + Decision>(
    ctx: &StepCtx,
    dir: &str,
    group: usize,
    scratch: &Scratch,
    budget: usize,
    st: &mut StepStats,
) -> Result<Box<dyn Source<R>>> {
    let mut sorter = ExtSorter::<R>::new(scratch, budget);
    let files = ctx.store.list(&routed_dir(dir, group))?;
    for f in &files {
        let mut r = RecordReader::<R>::new(ctx.store.open(f)?, f.clone(), 1 << 16);
        while let Some(d) = r.next_record()? {
            sorter.push(d)?;
        }
    }
    st.count("routed_files", files.len() as u64);
    Ok(sorter.finish()?)
}

/// `sign`: one task per partition group; attaches `a`'s fingerprints to each distinct pair.
pub struct SignStep {
    pub hashes: usize,
}

impl GlobalStep for SignStep {
    fn name(&self) -> &str {
        "sign"
    }

    fn tasks(&self, ctx: &StepCtx) -> Result<usize> {
        Ok(groups(ctx.partitions))
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        by_width!(self.hashes, sign(self.hashes, task, ctx))
    }
}

fn sign<const N: usize>(hashes: usize, task: usize, ctx: &StepCtx) -> Result<StepStats> {
    let mut st = StepStats::new("sign", task);
    let scratch = Scratch::new(&ctx.scratch).map_err(|e| Error::io(&ctx.scratch, e))?;
    let budget = task_budget(ctx);
    let index = Index::load(ctx.store.as_ref(), &ctx.dir).map_err(|e| Error::io(&ctx.dir, e))?;
    let mut sorted = routed_sorted::<CandRec>(
        ctx,
        &candidates_dir(&ctx.dir),
        task,
        &scratch,
        budget / 2,
        &mut st,
    )?;
    let mut router = Router::<HalfRec<N>>::new(
        ctx.store.clone(),
        &halves_dir(&ctx.dir),
        format!("sign-{task:05}"),
    );
    let mut sigs = SigCursor {
        ctx,
        index: &index,
        hashes,
        open: None,
    };
    let mut half = HalfRec {
        b: 0,
        a: 0,
        sig: [0u8; N],
    };
    let (mut last, mut current) = (None, None);
    let (mut distinct, mut repeats) = (0u64, 0u64);
    while let Some(c) = sorted.next_record()? {
        if last == Some(c) {
            repeats += 1;
            continue;
        }
        last = Some(c);
        distinct += 1;
        if current != Some(c.a) {
            sigs.read(c.a, &mut half.sig)?;
            current = Some(c.a);
        }
        half.a = c.a;
        half.b = c.b;
        router.route(&half)?;
    }
    router.finish()?;
    st.count("candidates", distinct);
    st.count("repeats", repeats);
    st.count("spilled_bytes", scratch.spill.bytes());
    st.peak_rss_bytes = peak_rss_bytes();
    Ok(st)
}

/// `verify`: one task per partition group; compares `b`'s fingerprints with the carried `a`'s
/// and writes the pairs that pass.
pub struct VerifyStep {
    pub hashes: usize,
    pub min_equal: usize,
}

impl GlobalStep for VerifyStep {
    fn name(&self) -> &str {
        "verify"
    }

    fn tasks(&self, ctx: &StepCtx) -> Result<usize> {
        Ok(groups(ctx.partitions))
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        by_width!(self.hashes, verify(self.hashes, self.min_equal, task, ctx))
    }
}

/// How many of the first `hashes` fingerprints agree.
pub(crate) fn equal_values(x: &[u8], y: &[u8], hashes: usize) -> usize {
    x[..2 * hashes]
        .chunks_exact(2)
        .zip(y[..2 * hashes].chunks_exact(2))
        .filter(|(a, b)| a == b)
        .count()
}

fn verify<const N: usize>(
    hashes: usize,
    min_equal: usize,
    task: usize,
    ctx: &StepCtx,
) -> Result<StepStats> {
    let io = |e| Error::io(&ctx.dir, e);
    let mut st = StepStats::new("verify", task);
    let scratch = Scratch::new(&ctx.scratch).map_err(|e| Error::io(&ctx.scratch, e))?;
    let budget = task_budget(ctx);
    let index = Index::load(ctx.store.as_ref(), &ctx.dir).map_err(io)?;
    let mut sorted = routed_sorted::<HalfRec<N>>(
        ctx,
        &halves_dir(&ctx.dir),
        task,
        &scratch,
        budget / 2,
        &mut st,
    )?;
    let path = format!("{}/pairs/verify-{task:05}.bin", ctx.dir);
    let mut out = RecordWriter::new(ctx.store.create(&path).map_err(io)?);
    let global = |d: u64| -> u32 {
        let (p, row) = split_key(d);
        (index.offsets[p] + row as u64) as u32
    };
    let mut sigs = SigCursor {
        ctx,
        index: &index,
        hashes,
        open: None,
    };
    let mut sig_b = [0u8; N];
    let mut current = None;
    let (mut candidates, mut rejected) = (0u64, 0u64);
    // Estimated similarity of the pairs that pass, in hundredths (a summary for the stats).
    let mut similarity = 0u64;
    while let Some(h) = sorted.next_record()? {
        candidates += 1;
        if current != Some(h.b) {
            sigs.read(h.b, &mut sig_b)?;
            current = Some(h.b);
        }
        let equal = equal_values(&h.sig, &sig_b, hashes);
        if equal >= min_equal {
            similarity += (100 * equal / hashes) as u64;
            out.write(&PairRec {
                a: global(h.a),
                b: global(h.b),
            })
            .map_err(io)?;
        } else {
            rejected += 1;
        }
    }
    st.count("candidates", candidates);
    st.count("verified", out.written());
    st.count("rejected", rejected);
    st.count("similarity_percent_sum", similarity);
    out.into_inner().and_then(|w| w.finish()).map_err(io)?;
    st.count("spilled_bytes", scratch.spill.bytes());
    st.peak_rss_bytes = peak_rss_bytes();
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_fingerprints() {
        assert_eq!(min_equal(112, 0.7), 79);
        assert_eq!(min_equal(200, 0.75), 150);
        assert_eq!(min_equal(112, 0.0), 0);
        assert_eq!(min_equal(112, 1.0), 112);
        assert_eq!(width_class(112), 256);
        assert_eq!(width_class(10), 64);
        assert_eq!(width_class(MAX_VERIFY_HASHES), 8192);
        // Values that differ only in high bits still get different fingerprints.
        assert_ne!(fingerprint(1), fingerprint(1 | 1 << 40));
        let x = [1u8, 2, 3, 4, 5, 6];
        let y = [1u8, 2, 3, 5, 5, 6];
        assert_eq!(equal_values(&x, &y, 3), 2);
    }
}
