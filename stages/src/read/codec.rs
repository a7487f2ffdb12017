//! Decoded byte sources for record readers: plain, gzip (multi-member), zstd and LZ4 frames.
//!
//! A [`Source`] decodes incrementally and tells, for every chunk it returns, the file offset of
//! the gzip member (zstd or LZ4 frame) the chunk came from. Record readers use it to give each
//! record the offset of its member, which is what Common Crawl indexes point at and what
//! byte-range partitions can seek to. Each `read` returns bytes of one member only, so member
//! boundaries are exact. After corrupt compressed data, [`Source::resync`] skips to the next
//! member header, so that one bad member costs one record, not the rest of the file.

use std::io::{self, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// Compression of an input, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    Plain,
    Gzip,
    Zstd,
    Lz4,
}

pub const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b, 0x08];
pub const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
pub const LZ4_MAGIC: &[u8] = &[0x04, 0x22, 0x4d, 0x18];

impl Codec {
    /// The codec whose magic number starts `head` (at least 4 bytes when available).
    pub fn sniff(head: &[u8]) -> Codec {
        if head.starts_with(&GZIP_MAGIC[..2]) {
            Codec::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Codec::Zstd
        } else if head.starts_with(LZ4_MAGIC) {
            Codec::Lz4
        } else {
            Codec::Plain
        }
    }

    /// The magic number that starts each member (frame), if compressed.
    pub fn magic(self) -> Option<&'static [u8]> {
        match self {
            Codec::Plain => None,
            Codec::Gzip => Some(GZIP_MAGIC),
            Codec::Zstd => Some(ZSTD_MAGIC),
            Codec::Lz4 => Some(LZ4_MAGIC),
        }
    }

    /// Skip reason for a stream that ends inside a member.
    pub fn truncated_reason(self) -> &'static str {
        match self {
            Codec::Plain => "truncated_record",
            Codec::Gzip => "truncated_gzip",
            Codec::Zstd => "truncated_zstd",
            Codec::Lz4 => "truncated_lz4",
        }
    }

    /// Skip reason for undecodable compressed data.
    pub fn corrupt_reason(self) -> &'static str {
        match self {
            Codec::Plain => "read_error",
            Codec::Gzip => "corrupt_gzip",
            Codec::Zstd => "corrupt_zstd",
            Codec::Lz4 => "corrupt_lz4",
        }
    }
}

/// Why a [`Source`] could not deliver more bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a member (or frame).
    Truncated,
    /// The compressed data cannot be decoded (call [`Source::resync`] to go on).
    Corrupt,
    /// The underlying reader failed.
    Io,
}

/// Input buffer over the raw (compressed) reader, tracking the file offset of its next byte.
pub struct InBuf {
    input: Box<dyn Read + Send>,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

const IN_BUF: usize = 1 << 20;
/// Compressed bytes kept buffered at a member start so that whole members reach libdeflate.
const FAST_MIN_INPUT: usize = 512 << 10;

impl InBuf {
    fn new(input: Box<dyn Read + Send>, offset: u64, head: &[u8]) -> InBuf {
        let mut buf = vec![0u8; IN_BUF.max(head.len())];
        buf[..head.len()].copy_from_slice(head);
        InBuf {
            input,
            buf,
            pos: 0,
            len: head.len(),
            offset,
            eof: false,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.len]
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len - self.pos);
        self.pos += n;
        self.offset += n as u64;
    }

    /// Reads more input, keeping unconsumed bytes; returns the number of new bytes (0 at EOF).
    fn fill(&mut self) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        if self.len == self.buf.len() {
            return Ok(0);
        }
        loop {
            match self.input.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.len += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Makes at least `n` bytes available unless the input ends first.
    fn fill_to(&mut self, n: usize) -> io::Result<()> {
        while self.len - self.pos < n {
            if self.fill()? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Skips to the next occurrence of `magic` (not at the current position when `skip_here`);
    /// false at EOF.
    fn seek_magic(&mut self, magic: &[u8], skip_here: bool) -> io::Result<bool> {
        let mut from = usize::from(skip_here);
        loop {
            if let Some(i) = memchr::memmem::find(self.data().get(from..).unwrap_or(&[]), magic) {
                self.consume(from + i);
                return Ok(true);
            }
            let keep = magic.len() - 1;
            let drop = (self.len - self.pos)
                .saturating_sub(keep)
                .max(from.min(self.len - self.pos));
            self.consume(drop);
            from = 0;
            if self.fill()? == 0 {
                let n = self.len - self.pos;
                self.consume(n);
                return Ok(false);
            }
        }
    }
}

impl Read for InBuf {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.len {
            if out.len() >= self.buf.len() && !self.eof {
                // Large reads bypass the buffer.
                let n = self.input.read(out)?;
                if n == 0 {
                    self.eof = true;
                }
                self.offset += n as u64;
                return Ok(n);
            }
            self.fill()?;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.consume(n);
        Ok(n)
    }
}

enum Inner {
    Plain,
    Gzip {
        z: Box<Decompress>,
        in_member: bool,
        /// Whole-member fast path (see [`crate::read::fastgz`]).
        fast: Option<crate::read::fastgz::Inflater>,
    },
    Zstd {
        z: Box<zstd::stream::raw::Decoder<'static>>,
        in_frame: bool,
    },
    Lz4 {
        dec: Option<Box<lz4_flex::frame::FrameDecoder<InBuf>>>,
        in_frame: bool,
    },
}

/// A decoded byte stream with member offsets (see the module docs).
pub struct Source {
    codec: Codec,
    inb: Option<InBuf>,
    inner: Inner,
    /// File offset of the member being decoded.
    member: u64,
    finished: bool,
}

impl Source {
    /// Wraps `input`, whose first byte is at file offset `start`; the codec is sniffed from the
    /// first bytes.
    pub fn new(mut input: Box<dyn Read + Send>, start: u64) -> io::Result<Source> {
        let mut head = [0u8; 4];
        let mut n = 0;
        while n < 4 {
            match input.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let codec = Codec::sniff(&head[..n]);
        let inb = InBuf::new(input, start, &head[..n]);
        let (inb, inner) = match codec {
            Codec::Plain => (Some(inb), Inner::Plain),
            Codec::Gzip => (
                Some(inb),
                Inner::Gzip {
                    z: Box::new(Decompress::new_gzip(15)),
                    in_member: false,
                    fast: crate::read::fastgz::Inflater::new(),
                },
            ),
            Codec::Zstd => (
                Some(inb),
                Inner::Zstd {
                    z: Box::new(zstd::stream::raw::Decoder::new()?),
                    in_frame: false,
                },
            ),
            Codec::Lz4 => (
                None,
                Inner::Lz4 {
                    dec: Some(Box::new(lz4_flex::frame::FrameDecoder::new(inb))),
                    in_frame: false,
                },
            ),
        };
        Ok(Source {
            codec,
            inb,
            inner,
            member: start,
            finished: false,
        })
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// File offset of the member being (or last) decoded: where an error was met.
    pub fn member_offset(&self) -> u64 {
        self.member
    }

    /// Decodes into `out`; returns the number of bytes (0 at the end of the input) and the file
    /// offset of the member they came from (for plain input: the offset of the first byte).
    pub fn read(&mut self, out: &mut [u8]) -> Result<(usize, u64), DecodeError> {
        if self.finished || out.is_empty() {
            return Ok((0, self.member));
        }
        let r = self.read_inner(out);
        if let Err(DecodeError::Truncated | DecodeError::Io) = r {
            self.finished = true;
        }
        r
    }

    fn read_inner(&mut self, out: &mut [u8]) -> Result<(usize, u64), DecodeError> {
        let io = |_| DecodeError::Io;
        match &mut self.inner {
            Inner::Plain => {
                let inb = self.inb.as_mut().expect("plain input");
                let at = inb.offset;
                let n = loop {
                    match inb.read(out) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => return Err(DecodeError::Io),
                    }
                };
                self.member = at;
                Ok((n, at))
            }
            Inner::Gzip { z, in_member, fast } => {
                let inb = self.inb.as_mut().expect("gzip input");
                loop {
                    if !*in_member {
                        inb.fill_to(2).map_err(io)?;
                        // Zero padding between or after members is tolerated.
                        let zeros = inb.data().iter().take_while(|&&b| b == 0).count();
                        if zeros > 0 {
                            inb.consume(zeros);
                            continue;
                        }
                        let d = inb.data();
                        if d.is_empty() {
                            return Ok((0, self.member));
                        }
                        if !d.starts_with(&GZIP_MAGIC[..2]) {
                            self.member = inb.offset; // junk between members
                            return Err(DecodeError::Corrupt);
                        }
                        self.member = inb.offset;
                        if let Some(f) = fast.as_mut() {
                            if inb.data().len() < FAST_MIN_INPUT {
                                inb.fill_to(FAST_MIN_INPUT).map_err(io)?;
                            }
                            if let Some((used, made)) = f.gzip_member(inb.data(), out) {
                                inb.consume(used);
                                if made > 0 {
                                    return Ok((made, self.member));
                                }
                                continue;
                            }
                        }
                        z.reset(true);
                        *in_member = true;
                    }
                    if inb.data().is_empty() && inb.fill().map_err(io)? == 0 {
                        return Err(DecodeError::Truncated);
                    }
                    let (i0, o0) = (z.total_in(), z.total_out());
                    let st = z.decompress(inb.data(), out, FlushDecompress::None);
                    let used = (z.total_in() - i0) as usize;
                    let made = (z.total_out() - o0) as usize;
                    inb.consume(used);
                    match st {
                        Ok(Status::StreamEnd) => {
                            *in_member = false;
                            if made > 0 {
                                return Ok((made, self.member));
                            }
                        }
                        Ok(_) => {
                            if made > 0 {
                                return Ok((made, self.member));
                            }
                            if used == 0 && !inb.data().is_empty() {
                                // No progress with input and output space: give up on this member.
                                return Err(DecodeError::Corrupt);
                            }
                        }
                        Err(_) => return Err(DecodeError::Corrupt),
                    }
                }
            }
            Inner::Zstd { z, in_frame } => {
                use zstd::stream::raw::Operation;
                let inb = self.inb.as_mut().expect("zstd input");
                loop {
                    if !*in_frame {
                        inb.fill_to(4).map_err(io)?;
                        let d = inb.data();
                        if d.is_empty() {
                            return Ok((0, self.member));
                        }
                        self.member = inb.offset;
                        *in_frame = true;
                    }
                    if inb.data().is_empty() && inb.fill().map_err(io)? == 0 {
                        return Err(DecodeError::Truncated);
                    }
                    let st = z
                        .run_on_buffers(inb.data(), out)
                        .map_err(|_| DecodeError::Corrupt)?;
                    inb.consume(st.bytes_read);
                    if st.remaining == 0 {
                        *in_frame = false;
                    }
                    if st.bytes_written > 0 {
                        return Ok((st.bytes_written, self.member));
                    }
                    if st.bytes_read == 0 && st.remaining != 0 && !inb.data().is_empty() {
                        return Err(DecodeError::Corrupt);
                    }
                }
            }
            Inner::Lz4 { dec, in_frame } => {
                let d = dec.as_mut().expect("lz4 decoder");
                loop {
                    let before = d.get_ref().offset;
                    if !*in_frame {
                        self.member = before;
                    }
                    match d.read(out) {
                        Ok(0) => {
                            if *in_frame {
                                // End of a frame: the decoder starts the next one on the next call.
                                *in_frame = false;
                                continue;
                            }
                            if d.get_ref().offset > before {
                                continue; // an empty or skippable frame
                            }
                            return Ok((0, self.member));
                        }
                        Ok(n) => {
                            *in_frame = true;
                            return Ok((n, self.member));
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(DecodeError::Truncated)
                        }
                        Err(_) => return Err(DecodeError::Corrupt),
                    }
                }
            }
        }
    }

    /// After [`DecodeError::Corrupt`]: skips to the next member header. Returns false when none
    /// is left (the source then reports the end of input).
    pub fn resync(&mut self) -> bool {
        let Some(magic) = self.codec.magic() else {
            self.finished = true;
            return false;
        };
        let member = self.member;
        let seek = |i: &mut InBuf| {
            let here = i.offset == member;
            i.seek_magic(magic, here).unwrap_or(false)
        };
        let found = match &mut self.inner {
            Inner::Plain => false,
            Inner::Gzip { in_member, .. } => {
                *in_member = false;
                self.inb.as_mut().is_some_and(seek)
            }
            Inner::Zstd { z, in_frame } => {
                *in_frame = false;
                let _ = zstd::stream::raw::Operation::reinit(z.as_mut());
                self.inb.as_mut().is_some_and(seek)
            }
            Inner::Lz4 { dec, in_frame } => {
                *in_frame = false;
                match dec.take() {
                    Some(d) => {
                        let mut inb = d.into_inner();
                        let ok = seek(&mut inb);
                        *dec = Some(Box::new(lz4_flex::frame::FrameDecoder::new(inb)));
                        ok
                    }
                    None => false,
                }
            }
        };
        if !found {
            self.finished = true;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(p).unwrap();
            out.extend(e.finish().unwrap());
        }
        out
    }

    fn drain(s: Source) -> (Vec<u8>, Vec<(usize, u64)>, Vec<DecodeError>) {
        drain_with(s, 7)
    }

    /// Reads everything with `chunk`-byte reads: small chunks force the streaming zlib-rs
    /// path, large ones let whole members go through libdeflate.
    fn drain_with(mut s: Source, chunk: usize) -> (Vec<u8>, Vec<(usize, u64)>, Vec<DecodeError>) {
        let mut out = Vec::new();
        let mut marks = Vec::new();
        let mut errs = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match s.read(&mut buf) {
                Ok((0, _)) => break,
                Ok((n, m)) => {
                    if marks.last().is_none_or(|&(_, l)| l != m) {
                        marks.push((out.len(), m));
                    }
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) => {
                    errs.push(e);
                    if e != DecodeError::Corrupt || !s.resync() {
                        break;
                    }
                }
            }
        }
        (out, marks, errs)
    }

    #[test]
    fn gzip_members_report_their_offsets() {
        let data = gz(&[b"first member", b"", b"second"]);
        let second = gz(&[b"first member", b""]).len() as u64;
        let s = Source::new(Box::new(std::io::Cursor::new(data)), 100).unwrap();
        let (out, marks, errs) = drain(s);
        assert_eq!(out, b"first membersecond");
        assert_eq!(marks, vec![(0, 100), (12, 100 + second)]);
        assert!(errs.is_empty());
    }

    #[test]
    fn corrupt_member_is_skipped_and_truncation_reported() {
        let mut data = gz(&[b"aaaaaaaaaaaaaaaaaaaa", b"bbbbbbbbbbbbbbbbbbbbbbbbb"]);
        data[12] ^= 0xff; // inside the first member's deflate data
        data[14] ^= 0x55;
        let mut tail = gz(&[b"cccccccccccccccccccccccccccccccccccc"]);
        tail.truncate(tail.len() - 10);
        data.extend(tail);
        let (out, _, errs) = drain(Source::new(Box::new(std::io::Cursor::new(data)), 0).unwrap());
        let b = [b'b'; 25];
        assert!(out.windows(25).any(|w| w == b), "{out:?}");
        assert_eq!(errs.first(), Some(&DecodeError::Corrupt));
        assert_eq!(errs.last(), Some(&DecodeError::Truncated));
    }

    #[test]
    fn whole_member_path_matches_streaming() {
        let parts: Vec<Vec<u8>> = (0..20)
            .map(|i| format!("record {i} ").repeat(300 + i * 50).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = parts.iter().map(|p| &p[..]).collect();
        let mut data = gz(&refs);
        let whole = parts.concat();
        let open = |d: &Vec<u8>| Source::new(Box::new(std::io::Cursor::new(d.clone())), 0).unwrap();
        let (fast, fast_marks, errs) = drain_with(open(&data), 1 << 20);
        let (slow, slow_marks, _) = drain_with(open(&data), 7);
        assert_eq!(fast, whole);
        assert_eq!(slow, whole);
        assert_eq!(fast_marks.len(), 20);
        assert_eq!(fast_marks, slow_marks);
        assert!(errs.is_empty());
        // A damaged member falls back to streaming, which reports it; the rest is read.
        let second = gz(&refs[..1]).len();
        data[second + 30] ^= 0xff;
        data.truncate(data.len() - 5);
        let (out, _, errs) = drain_with(open(&data), 1 << 20);
        assert_eq!(errs, [DecodeError::Corrupt, DecodeError::Truncated]);
        assert!(out.starts_with(&parts[0]));
        let tail = parts[2..19].concat();
        assert!(out.windows(tail.len()).any(|w| w == tail));
    }

    #[test]
    fn lz4_and_zstd_frames() {
        let mut lz = Vec::new();
        for p in [&b"one frame "[..], b"two frame"] {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(p).unwrap();
            lz.extend(e.finish().unwrap());
        }
        let (out, marks, errs) = drain(Source::new(Box::new(std::io::Cursor::new(lz)), 0).unwrap());
        assert_eq!(out, b"one frame two frame");
        assert_eq!(marks.len(), 2);
        assert!(errs.is_empty());

        let mut zs = zstd::encode_all(&b"zstd one "[..], 1).unwrap();
        let off = zs.len() as u64;
        zs.extend(zstd::encode_all(&b"zstd two"[..], 1).unwrap());
        let (out, marks, errs) = drain(Source::new(Box::new(std::io::Cursor::new(zs)), 0).unwrap());
        assert_eq!(out, b"zstd one zstd two");
        assert_eq!(marks, vec![(0, 0), (9, off)]);
        assert!(errs.is_empty());
    }
}
