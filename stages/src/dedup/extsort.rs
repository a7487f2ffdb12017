//! External sorting and k-way merging with a memory budget, spilling sorted runs to local disk.
//!
//! Two tools cover every global step of the dedup stages:
//! - [`merge`] merges any number of sorted sources. Above the fan-in that the budget allows it
//!   merges groups of sources into runs on scratch disk first, so a step over 90,000 partitions
//!   holds at most `fan_in` read buffers at once.
//! - [`ExtSorter`] sorts records that arrive in any order: it sorts memory-sized chunks, spills
//!   them as runs and merges the runs.
//!
//! Equal records keep the order of their sources (the heap breaks ties by source index), and
//! every record type of this module has a total order, so results never depend on timing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::records::{LazySource, Record, RecordReader, RecordWriter, Source, VecSource};

/// Read buffer per merged input.
pub const READ_BUF: usize = 64 << 10;

/// How many inputs a merge may read at once within `budget` bytes (two buffers per input:
/// the store's and the record reader's).
pub fn fan_in(budget: usize) -> usize {
    (budget / (4 * READ_BUF)).clamp(4, 8192)
}

/// Spill accounting shared by a step's sorts and merges (reported in step stats).
#[derive(Debug, Default)]
pub struct Spill {
    pub runs: AtomicU64,
    pub bytes: AtomicU64,
}

impl Spill {
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Scratch space of one task: a folder for runs, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
    seq: AtomicU64,
    pub spill: Spill,
}

impl Scratch {
    pub fn new(dir: &Path) -> io::Result<Scratch> {
        // Unique per process and task so that concurrent tasks never share runs.
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = dir.join(format!(
            "dedup-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir)?;
        Ok(Scratch {
            dir,
            seq: AtomicU64::new(0),
            spill: Spill::default(),
        })
    }

    fn run_path(&self) -> PathBuf {
        self.dir.join(format!(
            "run-{:06}.bin",
            self.seq.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Writes a sorted source to a new run file.
    fn write_run<R: Record>(&self, src: &mut dyn Source<R>) -> io::Result<PathBuf> {
        let path = self.run_path();
        let f = fs::File::create(&path)?;
        let mut w = RecordWriter::new(BufWriter::with_capacity(1 << 16, f));
        while let Some(r) = src.next_record()? {
            w.write(&r)?;
        }
        let n = w.written();
        w.into_inner()?.into_inner().map_err(|e| e.into_error())?;
        self.spill.runs.fetch_add(1, Ordering::Relaxed);
        self.spill
            .bytes
            .fetch_add(n * R::SIZE as u64, Ordering::Relaxed);
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A run file read back once and deleted when exhausted or dropped.
struct RunSource<R: Record> {
    reader: Option<RecordReader<R>>,
    path: PathBuf,
}

impl<R: Record> RunSource<R> {
    fn open(path: PathBuf) -> io::Result<Self> {
        let f = fs::File::open(&path)?;
        Ok(RunSource {
            reader: Some(RecordReader::new(
                Box::new(f),
                path.display().to_string(),
                READ_BUF,
            )),
            path,
        })
    }
}

impl<R: Record> Source<R> for RunSource<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(None);
        };
        let next = r.next_record()?;
        if next.is_none() {
            self.reader = None;
            let _ = fs::remove_file(&self.path);
        }
        Ok(next)
    }
}

impl<R: Record> Drop for RunSource<R> {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A k-way merge of sorted sources (ties go to the lower source index).
pub struct Merge<R: Record> {
    sources: Vec<Box<dyn Source<R>>>,
    heap: BinaryHeap<Reverse<(R, usize)>>,
    started: bool,
}

impl<R: Record> Merge<R> {
    fn new(sources: Vec<Box<dyn Source<R>>>) -> Self {
        Merge {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            started: false,
        }
    }
}

impl<R: Record> Source<R> for Merge<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        if !self.started {
            self.started = true;
            for (i, s) in self.sources.iter_mut().enumerate() {
                if let Some(r) = s.next_record()? {
                    self.heap.push(Reverse((r, i)));
                }
            }
        }
        // Replace the top in place (one sift instead of a pop and a push).
        let Some(mut top) = self.heap.peek_mut() else {
            return Ok(None);
        };
        let Reverse((r, i)) = *top;
        match self.sources[i].next_record()? {
            Some(next) => {
                if next < r {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("merge input {i} is not sorted"),
                    ));
                }
                *top = Reverse((next, i));
            }
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
        Ok(Some(r))
    }
}

/// Merges sorted sources, reading at most `fan_in` at once (intermediate runs go to `scratch`).
pub fn merge<R: Record>(
    mut sources: Vec<Box<dyn Source<R>>>,
    fan_in: usize,
    scratch: &Scratch,
) -> io::Result<Box<dyn Source<R>>> {
    let fan_in = fan_in.max(2);
    // A balanced merge tree: each round merges consecutive groups of `fan_in` inputs into one
    // run each. A run holds a contiguous range of inputs, so ties keep their source order.
    while sources.len() > fan_in {
        let mut next: Vec<Box<dyn Source<R>>> = Vec::new();
        let mut it = sources.into_iter();
        loop {
            let chunk: Vec<Box<dyn Source<R>>> = it.by_ref().take(fan_in).collect();
            match chunk.len() {
                0 => break,
                1 => next.extend(chunk),
                _ => {
                    let mut m = Merge::new(chunk);
                    let path = scratch.write_run(&mut m)?;
                    next.push(Box::new(LazySource::new(move || {
                        Ok(Box::new(RunSource::<R>::open(path)?) as Box<dyn Source<R>>)
                    })));
                }
            }
        }
        sources = next;
    }
    Ok(Box::new(Merge::new(sources)))
}

/// Sorts records arriving in any order within a memory budget.
pub struct ExtSorter<'a, R: Record> {
    buf: Vec<R>,
    cap: usize,
    runs: Vec<PathBuf>,
    scratch: &'a Scratch,
    budget: usize,
}

impl<'a, R: Record> ExtSorter<'a, R> {
    pub fn new(scratch: &'a Scratch, budget: usize) -> Self {
        let cap = (budget / std::mem::size_of::<R>().max(1)).max(1024);
        ExtSorter {
            buf: Vec::new(),
            cap,
            runs: Vec::new(),
            scratch,
            budget,
        }
    }

    pub fn push(&mut self, r: R) -> io::Result<()> {
        if self.buf.len() >= self.cap {
            self.spill()?;
        }
        self.buf.push(r);
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        sort(&mut buf);
        let path = self.scratch.write_run(&mut VecSource::new(buf))?;
        self.runs.push(path);
        Ok(())
    }

    /// The records in order.
    pub fn finish(mut self) -> io::Result<Box<dyn Source<R>>> {
        if self.runs.is_empty() {
            let mut buf = std::mem::take(&mut self.buf);
            sort(&mut buf);
            return Ok(Box::new(VecSource::new(buf)));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        let sources: Vec<Box<dyn Source<R>>> = std::mem::take(&mut self.runs)
            .into_iter()
            .map(|p| {
                Box::new(LazySource::new(move || {
                    Ok(Box::new(RunSource::<R>::open(p)?) as Box<dyn Source<R>>)
                })) as Box<dyn Source<R>>
            })
            .collect();
        merge(sources, fan_in(self.budget), self.scratch)
    }
}

/// Sorts in parallel when large (the order is total, so the result is the same).
pub fn sort<R: Record>(v: &mut [R]) {
    if v.len() > 1 << 16 {
        use rayon::slice::ParallelSliceMut;
        v.par_sort_unstable();
    } else {
        v.sort_unstable();
    }
}

/// Members of one group (a key, a cluster) held until the group ends; large groups spill.
pub struct GroupBuffer<'a, R: Record> {
    mem: Vec<R>,
    cap: usize,
    run: Option<(PathBuf, RecordWriter<BufWriter<fs::File>>)>,
    len: u64,
    scratch: &'a Scratch,
}

impl<'a, R: Record> GroupBuffer<'a, R> {
    pub fn new(scratch: &'a Scratch, budget: usize) -> Self {
        GroupBuffer {
            mem: Vec::new(),
            cap: (budget / std::mem::size_of::<R>().max(1)).max(1024),
            run: None,
            len: 0,
            scratch,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, r: R) -> io::Result<()> {
        self.len += 1;
        if self.run.is_none() && self.mem.len() < self.cap {
            self.mem.push(r);
            return Ok(());
        }
        if self.run.is_none() {
            let path = self.scratch.run_path();
            let f = fs::File::create(&path)?;
            self.run = Some((path, RecordWriter::new(BufWriter::new(f))));
        }
        let (_, w) = self.run.as_mut().expect("run");
        w.write(&r)?;
        self.scratch
            .spill
            .bytes
            .fetch_add(R::SIZE as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Calls `f` on every member in push order, then empties the buffer.
    pub fn drain(&mut self, mut f: impl FnMut(&R) -> io::Result<()>) -> io::Result<()> {
        for r in &self.mem {
            f(r)?;
        }
        self.mem.clear();
        if let Some((path, w)) = self.run.take() {
            w.into_inner()?.into_inner().map_err(|e| e.into_error())?;
            self.scratch.spill.runs.fetch_add(1, Ordering::Relaxed);
            let mut src = RunSource::<R>::open(path)?;
            while let Some(r) = src.next_record()? {
                f(&r)?;
            }
        }
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::records::record;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct K {
        k: u64,
        v: u32,
    }
    record!(K { k: u64, v: u32 });

    fn drain(mut s: Box<dyn Source<K>>) -> Vec<K> {
        let mut out = Vec::new();
        while let Some(r) = s.next_record().unwrap() {
            out.push(r);
        }
        out
    }

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn sorter_spills_and_matches_in_memory_sort() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(dir.path()).unwrap();
        let mut seed = 7;
        let items: Vec<K> = (0..50_000)
            .map(|i| K {
                k: lcg(&mut seed) % 1000,
                v: i,
            })
            .collect();
        // A budget of 1,024 records forces ~49 runs and, with fan-in 4, several merge rounds.
        let mut s = ExtSorter::new(&scratch, 1024 * std::mem::size_of::<K>());
        for &r in &items {
            s.push(r).unwrap();
        }
        let got = drain(s.finish().unwrap());
        let mut want = items.clone();
        want.sort();
        assert_eq!(got, want);
        assert!(
            scratch.spill.runs() > 40,
            "spilled {}",
            scratch.spill.runs()
        );
        // Runs are deleted once read.
        let left = fs::read_dir(&scratch.dir).unwrap().count();
        assert_eq!(left, 0, "runs left behind");
    }

    #[test]
    fn bounded_fan_in_merge_equals_full_merge() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(dir.path()).unwrap();
        let mut seed = 3;
        let mut all = Vec::new();
        let mut sources: Vec<Box<dyn Source<K>>> = Vec::new();
        for s in 0..37u32 {
            let mut v: Vec<K> = (0..(lcg(&mut seed) % 300))
                .map(|_| K {
                    k: lcg(&mut seed) % 200,
                    v: s,
                })
                .collect();
            v.sort();
            all.extend(v.iter().copied());
            sources.push(Box::new(VecSource::new(v)));
        }
        let got = drain(merge(sources, 4, &scratch).unwrap());
        all.sort();
        assert_eq!(got, all);
    }

    #[test]
    fn group_buffer_spills_large_groups() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::new(dir.path()).unwrap();
        let mut g = GroupBuffer::new(&scratch, 10 * std::mem::size_of::<K>());
        for i in 0..5000 {
            g.push(K { k: 1, v: i }).unwrap();
        }
        assert_eq!(g.len(), 5000);
        let mut seen = Vec::new();
        g.drain(|r| {
            seen.push(r.v);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        assert!(g.is_empty());
        assert!(scratch.spill.bytes() > 0);
    }
}
