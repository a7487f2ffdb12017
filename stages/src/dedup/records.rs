//! Fixed-size little-endian binary records: what collectors write, steps merge and appliers read.
//!
//! Every file a dedup stage keeps is a sequence of one record type, so a reader needs no index
//! to find the n-th record and a k-way merge needs only a small buffer per input. Records are
//! `Ord` with a total order (the document key is always part of it), which is what makes every
//! sort and merge deterministic whatever the number of tasks or threads.

use std::io::{self, Read, Write};

/// A fixed-size record.
pub trait Record: Copy + Ord + Send + Sync + 'static {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Appends exactly `SIZE` bytes.
    fn put(&self, out: &mut Vec<u8>);
    /// Decodes from exactly `SIZE` bytes.
    fn get(b: &[u8]) -> Self;
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A bare `u64` (MinHash keeps each row's rank in a block of them).
impl Record for u64 {
    const SIZE: usize = 8;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        u64_at(b, 0)
    }
}

/// A source of records in ascending order (a file, a merge, a sort).
pub trait Source<R>: Send {
    fn next_record(&mut self) -> io::Result<Option<R>>;
}

impl<R, S: Source<R> + ?Sized> Source<R> for Box<S> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        (**self).next_record()
    }
}

/// Buffered writer of records.
pub struct RecordWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    written: u64,
}

const WRITE_BUF: usize = 1 << 16;

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W) -> Self {
        RecordWriter {
            out,
            buf: Vec::with_capacity(WRITE_BUF),
            written: 0,
        }
    }

    pub fn write<R: Record>(&mut self, r: &R) -> io::Result<()> {
        r.put(&mut self.buf);
        self.written += 1;
        if self.buf.len() >= WRITE_BUF {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes the buffer and returns the inner writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(self.out)
    }
}

/// Buffered reader of records from any byte stream; a trailing partial record is an error.
pub struct RecordReader<R: Record> {
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    what: String,
    _r: std::marker::PhantomData<R>,
}

impl<R: Record> RecordReader<R> {
    /// `what` names the input in errors; `buf_bytes` is the read buffer (rounded to records).
    pub fn new(input: Box<dyn Read + Send>, what: impl Into<String>, buf_bytes: usize) -> Self {
        let cap = (buf_bytes / R::SIZE).max(1) * R::SIZE;
        RecordReader {
            input,
            buf: vec![0; cap],
            pos: 0,
            len: 0,
            eof: false,
            what: what.into(),
            _r: std::marker::PhantomData,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        // Keep a partial record at the front, then fill the rest.
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        while self.len < R::SIZE && !self.eof {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", self.what))),
            }
        }
        Ok(())
    }
}

impl<R: Record> Source<R> for RecordReader<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        if self.len - self.pos < R::SIZE {
            self.refill()?;
            if self.len < R::SIZE {
                if self.len > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: truncated record ({} trailing bytes, records are {})",
                            self.what,
                            self.len,
                            R::SIZE
                        ),
                    ));
                }
                return Ok(None);
            }
        }
        let r = R::get(&self.buf[self.pos..self.pos + R::SIZE]);
        self.pos += R::SIZE;
        Ok(Some(r))
    }
}

/// Records held in memory, in order.
pub struct VecSource<R> {
    items: std::vec::IntoIter<R>,
}

impl<R> VecSource<R> {
    pub fn new(items: Vec<R>) -> Self {
        VecSource {
            items: items.into_iter(),
        }
    }
}

impl<R: Send> Source<R> for VecSource<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        Ok(self.items.next())
    }
}

/// Opens a source (a file, a byte range of an object).
pub type Opener<R> = Box<dyn FnOnce() -> io::Result<Box<dyn Source<R>>> + Send>;

/// A source that opens its input on first use, so that a merge over thousands of inputs holds
/// buffers only for the ones it is reading.
pub struct LazySource<R> {
    open: Option<Opener<R>>,
    inner: Option<Box<dyn Source<R>>>,
}

impl<R> LazySource<R> {
    pub fn new(open: impl FnOnce() -> io::Result<Box<dyn Source<R>>> + Send + 'static) -> Self {
        LazySource {
            open: Some(Box::new(open)),
            inner: None,
        }
    }
}

impl<R: Send> Source<R> for LazySource<R> {
    fn next_record(&mut self) -> io::Result<Option<R>> {
        if let Some(open) = self.open.take() {
            self.inner = Some(open()?);
        }
        match self.inner.as_mut() {
            Some(s) => {
                let r = s.next_record()?;
                if r.is_none() {
                    // Release the buffer as soon as the input is exhausted.
                    self.inner = None;
                }
                Ok(r)
            }
            None => Ok(None),
        }
    }
}

/// Implements [`Record`] for a struct of little-endian integer fields, in declaration order.
macro_rules! record {
    ($name:ident { $($field:ident : $ty:ty),+ $(,)? }) => {
        impl $crate::dedup::records::Record for $name {
            const SIZE: usize = 0 $(+ std::mem::size_of::<$ty>())+;
            fn put(&self, out: &mut Vec<u8>) {
                $(out.extend_from_slice(&self.$field.to_le_bytes());)+
            }
            fn get(b: &[u8]) -> Self {
                let mut at = 0;
                $(
                    let $field = <$ty>::from_le_bytes(
                        b[at..at + std::mem::size_of::<$ty>()].try_into().expect("field bytes"),
                    );
                    at += std::mem::size_of::<$ty>();
                )+
                let _ = at;
                $name { $($field),+ }
            }
        }
    };
}
pub(crate) use record;

/// Two documents (global rows) that share a band key (`dedup.minhash`), or that its
/// verification step confirmed as near-duplicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PairRec {
    pub a: u32,
    pub b: u32,
}
record!(PairRec { a: u32, b: u32 });

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct T {
        a: u64,
        b: u32,
    }
    record!(T { a: u64, b: u32 });

    #[test]
    fn round_trip_and_truncation() {
        let mut w = RecordWriter::new(Vec::new());
        for i in 0..10_000u64 {
            w.write(&T {
                a: i * 3,
                b: i as u32,
            })
            .unwrap();
        }
        assert_eq!(w.written(), 10_000);
        let bytes = w.into_inner().unwrap();
        assert_eq!(bytes.len(), 10_000 * T::SIZE);
        let mut r = RecordReader::<T>::new(Box::new(io::Cursor::new(bytes.clone())), "t", 100);
        let mut n = 0;
        while let Some(t) = r.next_record().unwrap() {
            assert_eq!(
                t,
                T {
                    a: n * 3,
                    b: n as u32
                }
            );
            n += 1;
        }
        assert_eq!(n, 10_000);
        let cut = bytes[..bytes.len() - 5].to_vec();
        let mut r = RecordReader::<T>::new(Box::new(io::Cursor::new(cut)), "cut", 64);
        let err = loop {
            match r.next_record() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("truncation not detected"),
                Err(e) => break e,
            }
        };
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
