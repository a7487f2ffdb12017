//! Record starts for byte-range partitions: a partition holds the records whose first byte lies
//! in its range, so each reader finds the first record start at or after an arbitrary offset.
//! JSONL starts after the next newline ([`jsonl::align`]); WARC starts at a `WARC/` line whose
//! header parses and whose declared length lands on the next record, or, in a compressed file,
//! at the first member (zstd/LZ4 frame) that decodes to such a line.

use std::io::{self, Read, Seek, SeekFrom};

use crate::read::codec::Codec;
use crate::read::codec::Source;
use crate::read::warc::{parse_header, MAX_HEADER_BYTES};
use crate::read::{arc, http, jsonl, Format};

/// Finds the first record start at or after `offset` in a file of `format` (byte-range
/// partitioning). Returns `None` when no record starts after `offset`.
pub fn align(
    format: Format,
    file: &mut (impl Read + std::io::Seek),
    offset: u64,
) -> std::io::Result<Option<u64>> {
    match format {
        Format::Jsonl => jsonl::align(file, offset),
        Format::Warc | Format::Wet => warc(file, offset),
        Format::Parquet => Ok(if offset == 0 { Some(0) } else { None }),
    }
}

/// Bytes of compressed input probed to see whether a member starts a record.
fn probe_bytes(codec: Codec) -> usize {
    match codec {
        Codec::Lz4 => (4 << 20) + 64,
        Codec::Zstd => 256 << 10,
        _ => 64 << 10,
    }
}

/// First record start at or after `offset` (see the module docs for what a record start is in
/// compressed files). `None` when no record starts there or later.
pub fn warc(file: &mut (impl Read + Seek), offset: u64) -> io::Result<Option<u64>> {
    if offset == 0 {
        return Ok(Some(0));
    }
    file.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 4];
    let n = read_full(file, &mut head)?;
    let codec = Codec::sniff(&head[..n]);
    match codec.magic() {
        Some(magic) => align_member(file, offset, codec, magic),
        None => align_plain(file, offset),
    }
}

fn read_full(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

const SCAN_CHUNK: usize = 256 << 10;

/// Next member (frame) at or after `offset` that decodes to a `WARC/` line.
fn align_member(
    file: &mut (impl Read + Seek),
    offset: u64,
    codec: Codec,
    magic: &[u8],
) -> io::Result<Option<u64>> {
    let mut chunk = vec![0u8; SCAN_CHUNK];
    let mut pos = offset;
    loop {
        file.seek(SeekFrom::Start(pos))?;
        let n = read_full(file, &mut chunk)?;
        if n < magic.len() {
            return Ok(None);
        }
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&chunk[from..n], magic) {
            let cand = pos + (from + i) as u64;
            if probe_member(file, cand, codec)? {
                return Ok(Some(cand));
            }
            from += i + 1;
        }
        if n < chunk.len() {
            return Ok(None);
        }
        pos += (n - (magic.len() - 1)) as u64;
    }
}

/// Whether the member at `at` decodes to a record start.
fn probe_member(file: &mut (impl Read + Seek), at: u64, codec: Codec) -> io::Result<bool> {
    file.seek(SeekFrom::Start(at))?;
    let mut window = vec![0u8; probe_bytes(codec)];
    let n = read_full(file, &mut window)?;
    window.truncate(n);
    let Ok(mut src) = Source::new(Box::new(io::Cursor::new(window)), at) else {
        return Ok(false);
    };
    // Enough for a `WARC/` line or an ARC header line.
    let mut out = vec![0u8; arc::MAX_ARC_LINE + 2];
    let mut got = 0;
    while got < out.len() && !out[..got].contains(&b'\n') {
        match src.read(&mut out[got..]) {
            Ok((0, _)) | Err(_) => break,
            Ok((k, member)) => {
                if member != at {
                    break;
                }
                got += k;
            }
        }
    }
    Ok(is_record_start(&out[..got]))
}

fn is_version_line(b: &[u8]) -> bool {
    b.starts_with(b"WARC/") && b.len() > 5 && b[5].is_ascii_digit()
}

/// Whether `b` starts with a `WARC/` version line or an ARC header line.
fn is_record_start(b: &[u8]) -> bool {
    is_version_line(b)
        || memchr::memchr(b'\n', b).is_some_and(|nl| arc::parse_line(&b[..nl]).is_some())
}

/// Header length and block length of the record starting `b` (WARC or ARC), if it parses.
fn record_lengths(b: &[u8]) -> Option<(usize, u64)> {
    if b.starts_with(b"WARC/") {
        let hlen = http::header_end(b)?;
        let h = parse_header(&b[..hlen]).ok()?;
        return Some((hlen, h.content_length));
    }
    let nl = memchr::memchr(b'\n', b)?;
    arc::parse_line(&b[..nl]).map(|a| (nl + 1, a.length))
}

/// Next plain record start at or after `offset`: a `WARC/` (or, in ARC files, any) line after a
/// line break, whose header parses and whose declared length leads to another record start (or
/// the end of the file).
fn align_plain(file: &mut (impl Read + Seek), offset: u64) -> io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(0))?;
    let mut first = [0u8; 11];
    let k = read_full(file, &mut first)?;
    let arc_file = first[..k].starts_with(b"filedesc://");
    let pat: &[u8] = if arc_file { b"\n" } else { b"\nWARC/" };
    let mut chunk = vec![0u8; SCAN_CHUNK];
    let mut pos = offset - 1;
    loop {
        file.seek(SeekFrom::Start(pos))?;
        let n = read_full(file, &mut chunk)?;
        if n < pat.len() {
            return Ok(None);
        }
        let mut from = 0;
        while let Some(i) = memchr::memmem::find(&chunk[from..n], pat) {
            let cand = pos + (from + i + 1) as u64;
            let rest = &chunk[from + i + 1..n];
            // Cheap in-chunk test first (lines cut by the chunk end go to the full check).
            let plausible = !arc_file || !rest.contains(&b'\n') || is_record_start(rest);
            if plausible && verify_plain(file, cand)? {
                return Ok(Some(cand));
            }
            from += i + 1;
        }
        if n < chunk.len() {
            return Ok(None);
        }
        pos += (n - (pat.len() - 1)) as u64;
    }
}

fn verify_plain(file: &mut (impl Read + Seek), at: u64) -> io::Result<bool> {
    file.seek(SeekFrom::Start(at))?;
    let mut hdr = vec![0u8; MAX_HEADER_BYTES];
    let n = read_full(file, &mut hdr)?;
    let Some((hlen, len)) = record_lengths(&hdr[..n]) else {
        return Ok(false);
    };
    // What follows the block: blank lines, then a record or the end of the file.
    file.seek(SeekFrom::Start(at + hlen as u64 + len))?;
    let mut next = vec![0u8; arc::MAX_ARC_LINE + 64];
    let k = read_full(file, &mut next)?;
    let rest = &next[..k];
    let ws = rest
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(rest.len());
    Ok(ws == rest.len() && k < next.len() || is_record_start(&rest[ws..]))
}
