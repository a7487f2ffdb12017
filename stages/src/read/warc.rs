//! WARC reader (1.0, 1.1, 0.18; WET): a streaming record parser over plain, gzip, zstd or LZ4
//! input that yields one document per page record and one named skip per other record.
//!
//! Streaming: the reader holds one decoded window (grown to at most one record plus
//! [`MAX_HEADER_BYTES`] and a read chunk); records it does not keep (other types, over
//! `max_record_bytes`) are passed over without being buffered.
//!
//! Robustness: a record's declared length is trusted, but after it the reader only accepts a
//! `WARC/` line, skipping blank lines, and otherwise scans forward to the next line that starts
//! with `WARC/` (resynchronisation). A header that does not parse is skipped as
//! `bad_warc_header` the same way. A stream that ends inside a record skips it as
//! `truncated_record` (`truncated_gzip` when the compressed stream is cut); undecodable
//! compressed data skips the record as `corrupt_gzip` and resumes at the next member.
//!
//! Offsets: a record's offset is its own byte offset in a plain file and the offset of the
//! gzip member (zstd/LZ4 frame) holding its first byte in a compressed one;
//! [`crate::read::align`] finds the same offsets from an arbitrary byte position.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use crate::document::{Document, SourceRef};
use crate::read::arc;
use crate::read::codec::{Codec, DecodeError, Source};
use crate::read::record::{self, RecordInfo};
use crate::read::{http, Format, ReadEvent, ReadOptions};

/// Longest WARC header block accepted.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Free window space offered to the source per read (at least): one Common Crawl record (1 MiB
/// payload cap plus headers), so that a whole gzip member decodes in one call.
const READ_CHUNK: usize = (1 << 20) + (64 << 10);
const INITIAL_WINDOW: usize = 2 * READ_CHUNK;

/// Skip reasons of record types that are not documents.
fn type_reason(t: &[u8]) -> &'static str {
    const TYPES: &[&str] = &[
        "warcinfo",
        "request",
        "metadata",
        "revisit",
        "conversion",
        "response",
        "resource",
        "continuation",
    ];
    TYPES
        .iter()
        .find(|n| n.as_bytes().eq_ignore_ascii_case(t))
        .copied()
        .unwrap_or("unknown_record_type")
}

/// Every reason a WARC or WET reader can skip a record for.
pub const SKIP_REASONS: &[&str] = &[
    // record types that are not documents
    "warcinfo",
    "request",
    "metadata",
    "revisit",
    "conversion",
    "response",
    "resource",
    "continuation",
    "unknown_record_type",
    "arc_filedesc",
    // framing
    "bad_warc_header",
    "too_large",
    "truncated_record",
    "truncated_gzip",
    "truncated_zstd",
    "truncated_lz4",
    "corrupt_gzip",
    "corrupt_zstd",
    "corrupt_lz4",
    "read_error",
    // HTTP
    "bad_http_header",
    "bad_http_status",
    "http_informational",
    "http_no_content",
    "http_partial_content",
    "http_redirect",
    "http_not_modified",
    "http_client_error",
    "http_server_error",
    // payload
    "not_html",
    "binary_payload",
    "empty_payload",
];

/// Metadata keys WARC/WET documents may carry (each present when known):
/// - `warc_type`: `response`, `resource` or `conversion`;
/// - `http_status`: the HTTP status code (responses);
/// - `content_type`: media type of the payload as declared (HTTP, or WARC for resources), no
///   parameters, lower case; `payload_type`: WARC-Identified-Payload-Type (the crawler's sniffing);
/// - `content_encoding`: the Content-Encoding that was undone (`gzip`, `deflate`, `br`, `zstd`);
/// - `charset` (encoding_rs name, e.g. `UTF-8`, `GBK`, `EUC-JP`) and `charset_source` (`bom`,
///   `http`, `meta`, `utf8_valid`, `detected`);
/// - `ip`: WARC-IP-Address; `warc_truncated`: WARC-Truncated (the crawler cut the payload);
/// - `languages`: WARC-Identified-Content-Language (WET); `refers_to`: WARC-Refers-To (WET: the
///   id of the response record the text came from).
pub const METADATA_KEYS: &[&str] = &[
    "warc_type",
    "http_status",
    "content_type",
    "payload_type",
    "content_encoding",
    "charset",
    "charset_source",
    "ip",
    "warc_truncated",
    "languages",
    "refers_to",
];

/// Header fields of one record, as byte ranges into the record (empty when absent).
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// Header length, including the empty line that ends it (ARC: the header line).
    pub len: usize,
    /// An ARC record (one header line; no type, no record id).
    pub arc: bool,
    pub version: Range<usize>,
    pub warc_type: Range<usize>,
    pub record_id: Range<usize>,
    pub target_uri: Range<usize>,
    pub date: Range<usize>,
    pub content_type: Range<usize>,
    pub payload_type: Range<usize>,
    pub ip: Range<usize>,
    pub truncated: Range<usize>,
    pub refers_to: Range<usize>,
    pub language: Range<usize>,
    pub content_length: u64,
}

/// Parses a header block (`hdr` starts with `WARC/` and ends after the empty line).
pub fn parse_header(hdr: &[u8]) -> Result<Header, &'static str> {
    let bad = "bad_warc_header";
    let first_end = memchr::memchr(b'\n', hdr).ok_or(bad)?;
    let version = hdr[..first_end].trim_ascii_end();
    // `WARC/1.0`, `WARC/1.1`, `WARC/0.18`: digits and dots only.
    if version.len() < 6
        || !version.starts_with(b"WARC/")
        || !version[5..]
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.')
        || !version[5].is_ascii_digit()
    {
        return Err(bad);
    }
    let base = hdr.as_ptr() as usize;
    let span = |s: &[u8]| {
        let a = s.as_ptr() as usize - base;
        a..a + s.len()
    };
    let mut h = Header {
        len: hdr.len(),
        version: span(version),
        ..Default::default()
    };
    let mut length = None;
    for line in hdr[first_end + 1..].split(|&b| b == b'\n') {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue; // folded continuation of a field we do not read
        }
        let Some((name, value)) = http::split_header(line) else {
            continue;
        };
        let field = |n: &str| n.as_bytes().eq_ignore_ascii_case(name);
        let slot = if field("WARC-Type") {
            &mut h.warc_type
        } else if field("Content-Length") {
            let digits =
                value.iter().all(u8::is_ascii_digit) && !value.is_empty() && value.len() <= 18;
            if !digits {
                return Err(bad);
            }
            length = Some(
                value
                    .iter()
                    .fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')),
            );
            continue;
        } else if field("WARC-Record-ID") {
            &mut h.record_id
        } else if field("WARC-Target-URI") {
            &mut h.target_uri
        } else if field("WARC-Date") {
            &mut h.date
        } else if field("Content-Type") {
            &mut h.content_type
        } else if field("WARC-Identified-Payload-Type") {
            &mut h.payload_type
        } else if field("WARC-IP-Address") {
            &mut h.ip
        } else if field("WARC-Truncated") {
            &mut h.truncated
        } else if field("WARC-Refers-To") {
            &mut h.refers_to
        } else if field("WARC-Identified-Content-Language") {
            &mut h.language
        } else {
            continue;
        };
        if slot.start == slot.end {
            *slot = span(value);
        }
    }
    h.content_length = length.ok_or(bad)?;
    Ok(h)
}

/// `<urn:uuid:x>` -> `urn:uuid:x` (and ` <http://a b> ` -> `http://a%20b`): trims, drops one
/// pair of angle brackets, percent-encodes spaces (as warcio does).
pub fn clean_uri(v: &[u8]) -> String {
    let v = v.trim_ascii();
    let v = match (v.first(), v.last()) {
        (Some(b'<'), Some(b'>')) if v.len() >= 2 => v[1..v.len() - 1].trim_ascii(),
        _ => v,
    };
    let s = String::from_utf8_lossy(v);
    if s.contains(' ') {
        s.replace(' ', "%20")
    } else {
        s.into_owned()
    }
}

/// A low-level view of one record, for callers that want headers rather than documents.
#[derive(Debug)]
pub struct RawRecord<'a> {
    /// Offset of the record (see the module docs).
    pub offset: u64,
    /// Header bytes.
    pub header: &'a [u8],
    pub fields: &'a Header,
    /// The block, when the record was read; `None` when it was passed over (too large).
    pub block: Option<&'a [u8]>,
}

/// Streaming WARC/WET reader; an iterator of [`ReadEvent`]s.
pub struct WarcReader {
    format: Format,
    file: Arc<str>,
    opts: ReadOptions,
    src: Source,
    codec: Codec,
    buf: Vec<u8>,
    head: usize,
    tail: usize,
    /// Stream position (decoded bytes since `start`) of `buf[0]`.
    base: u64,
    /// (stream position, file offset) of member starts, for compressed input.
    marks: VecDeque<(u64, u64)>,
    start: u64,
    end: Option<u64>,
    eof: bool,
    done: bool,
    /// Whether the input is ARC rather than WARC (decided at the first record).
    arc: Option<bool>,
    hdr: Header,
    /// Header bytes of the last record passed over (for [`WarcReader::next_record`]).
    hdr_bytes: Vec<u8>,
}

#[allow(clippy::large_enum_variant)] // moved once per record
enum Step {
    Event(ReadEvent),
    End,
}

#[allow(clippy::large_enum_variant)] // moved once per record
enum Framed {
    /// The record was read into the window at `at..at + total` (`head` is already past it).
    Read {
        offset: u64,
        at: usize,
        total: usize,
    },
    /// The record was passed over for `reason`.
    Passed {
        offset: u64,
        reason: &'static str,
        total: u64,
    },
    Event(ReadEvent),
    End,
}

impl From<Step> for Framed {
    fn from(s: Step) -> Framed {
        match s {
            Step::Event(ev) => Framed::Event(ev),
            Step::End => Framed::End,
        }
    }
}

impl WarcReader {
    /// Reads records of `input` (positioned at file offset `start`) whose offset is before `end`.
    pub fn new(
        format: Format,
        file: Arc<str>,
        input: Box<dyn Read + Send>,
        start: u64,
        end: Option<u64>,
        opts: ReadOptions,
    ) -> io::Result<WarcReader> {
        let src = Source::new(input, start)?;
        Ok(WarcReader {
            format,
            file,
            codec: src.codec(),
            opts,
            src,
            buf: vec![0; INITIAL_WINDOW],
            head: 0,
            tail: 0,
            base: 0,
            marks: VecDeque::new(),
            start,
            end,
            eof: false,
            done: false,
            arc: None,
            hdr: Header::default(),
            hdr_bytes: Vec::new(),
        })
    }

    /// The most bytes the window may hold: one record plus a header and a read chunk.
    fn window_cap(&self) -> usize {
        self.opts
            .max_record_bytes
            .saturating_add(MAX_HEADER_BYTES + 2 * READ_CHUNK)
    }

    fn compact(&mut self) {
        if self.head > 0 {
            self.buf.copy_within(self.head..self.tail, 0);
            self.base += self.head as u64;
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// Decodes more input into the window; Ok(0) at the end of the input.
    fn fill(&mut self) -> Result<usize, DecodeError> {
        if self.eof {
            return Ok(0);
        }
        if self.head == self.tail {
            // Everything consumed (the usual case between records): decode into the start of
            // the window again, which stays in cache, instead of marching through it.
            self.base += self.tail as u64;
            self.head = 0;
            self.tail = 0;
        }
        if self.buf.len() - self.tail < READ_CHUNK {
            self.compact();
            if self.buf.len() - self.tail < READ_CHUNK {
                let want = (self.tail + READ_CHUNK).max(self.buf.len() * 2);
                let cap = self.window_cap().max(self.tail + READ_CHUNK);
                self.buf.resize(want.min(cap), 0);
            }
        }
        let (n, member) = self.src.read(&mut self.buf[self.tail..])?;
        if n == 0 {
            self.eof = true;
            return Ok(0);
        }
        if self.codec != Codec::Plain && self.marks.back().is_none_or(|&(_, m)| m != member) {
            self.marks.push_back((self.base + self.tail as u64, member));
        }
        self.tail += n;
        Ok(n)
    }

    /// Makes `n` bytes available from `head`; false if the input ends first.
    fn ensure(&mut self, n: usize) -> Result<bool, DecodeError> {
        while self.tail - self.head < n {
            if self.buf.len() - self.head < n + READ_CHUNK {
                self.compact();
                if self.buf.len() < n + READ_CHUNK {
                    self.buf.resize(n + READ_CHUNK, 0);
                }
            }
            if self.fill()? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// File offset of the record whose first byte is at stream position `pos`.
    fn offset_of(&mut self, pos: u64) -> u64 {
        if self.codec == Codec::Plain {
            return self.start + pos;
        }
        while self.marks.len() >= 2 && self.marks[1].0 <= pos {
            self.marks.pop_front();
        }
        self.marks.front().map_or(self.start, |m| m.1)
    }

    /// Moves `head` to the next record start (a `WARC/` line, or an ARC header line in ARC
    /// input); false at the end of the input.
    fn find_start(&mut self) -> Result<bool, DecodeError> {
        loop {
            let ws = self.buf[self.head..self.tail]
                .iter()
                .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0))
                .unwrap_or(self.tail - self.head);
            self.head += ws;
            if self.tail - self.head >= 6 {
                let w = &self.buf[self.head..self.tail];
                if w.starts_with(b"WARC/") {
                    self.arc.get_or_insert(false);
                    return Ok(true);
                }
                if self.arc != Some(false) {
                    let scan = &w[..w.len().min(arc::MAX_ARC_LINE + 1)];
                    match memchr::memchr(b'\n', scan) {
                        Some(nl) if arc::parse_line(&w[..nl]).is_some() => {
                            self.arc = Some(true);
                            return Ok(true);
                        }
                        // ARC input: try the next line.
                        Some(nl) if self.arc == Some(true) => {
                            self.head += nl + 1;
                            continue;
                        }
                        Some(_) => {}
                        None if scan.len() <= arc::MAX_ARC_LINE && !self.eof => {
                            // The line is not complete yet.
                            self.fill()?;
                            continue;
                        }
                        None if self.arc == Some(true) => {
                            self.head += scan.len();
                            continue;
                        }
                        None => {}
                    }
                }
                match memchr::memmem::find(w, b"\nWARC/") {
                    Some(i) => {
                        self.head += i + 1;
                        continue;
                    }
                    None => self.head = self.tail - 5,
                }
            }
            if self.fill()? == 0 {
                self.head = self.tail;
                return Ok(false);
            }
        }
    }

    /// Skip event for a decode error at `offset` (the record being read, else the member).
    fn on_error(&mut self, e: DecodeError, offset: Option<u64>) -> Step {
        let at = offset.unwrap_or_else(|| self.src.member_offset());
        let partial = self.tail > self.head;
        let bytes = (self.tail - self.head) as u64;
        self.head = self.tail;
        let in_range = self.end.is_none_or(|end| at < end);
        let reason = match e {
            DecodeError::Truncated => {
                self.done = true;
                if offset.is_none() && !partial {
                    return Step::End;
                }
                self.codec.truncated_reason()
            }
            DecodeError::Io => {
                self.done = true;
                "read_error"
            }
            DecodeError::Corrupt => {
                if !self.src.resync() {
                    self.done = true;
                }
                self.codec.corrupt_reason()
            }
        };
        if !in_range {
            self.done = true;
            return Step::End;
        }
        Step::Event(ReadEvent::Skip {
            reason,
            offset: at,
            bytes,
        })
    }

    /// Frames the next record: finds its start, parses its header, then reads its block into
    /// the window or passes over it. `docs`: pass over record types that are not documents.
    fn frame(&mut self, docs: bool) -> Framed {
        match self.find_start() {
            Ok(true) => {}
            Ok(false) => return Framed::End,
            Err(e) => return self.on_error(e, None).into(),
        }
        let pos = self.base + self.head as u64;
        let offset = self.offset_of(pos);
        if self.end.is_some_and(|e| offset >= e) {
            return Framed::End;
        }
        if !self.buf[self.head..self.tail].starts_with(b"WARC/") {
            return self.frame_arc(docs, offset);
        }
        let hlen = loop {
            let w = &self.buf[self.head..self.tail];
            if let Some(e) = http::header_end(&w[..w.len().min(MAX_HEADER_BYTES)]) {
                break e;
            }
            if w.len() >= MAX_HEADER_BYTES {
                self.head += 1; // resync from inside the bad header
                return Framed::Event(skip("bad_warc_header", offset, MAX_HEADER_BYTES as u64));
            }
            match self.fill() {
                Ok(0) => {
                    let bytes = (self.tail - self.head) as u64;
                    self.head = self.tail;
                    return Framed::Event(skip("truncated_record", offset, bytes));
                }
                Ok(_) => {}
                Err(e) => return self.on_error(e, Some(offset)).into(),
            }
        };
        self.hdr = match parse_header(&self.buf[self.head..self.head + hlen]) {
            Ok(h) => h,
            Err(reason) => {
                self.head += 1;
                return Framed::Event(skip(reason, offset, hlen as u64));
            }
        };
        let h = &self.hdr;
        let total = hlen as u64 + h.content_length;
        let wtype = &self.buf[self.head + h.warc_type.start..self.head + h.warc_type.end];
        let wanted = !docs
            || match self.format {
                Format::Wet => wtype.eq_ignore_ascii_case(b"conversion"),
                _ => {
                    wtype.eq_ignore_ascii_case(b"response")
                        || wtype.eq_ignore_ascii_case(b"resource")
                }
            };
        let reason = if !wanted {
            Some(type_reason(wtype))
        } else if h.content_length > self.opts.max_record_bytes as u64 {
            Some("too_large")
        } else {
            None
        };
        self.read_or_pass(docs, offset, hlen, total, reason)
    }

    /// Frames an ARC record (`find_start` made sure its header line is in the window).
    fn frame_arc(&mut self, docs: bool, offset: u64) -> Framed {
        let w = &self.buf[self.head..self.tail];
        let nl = memchr::memchr(b'\n', w).unwrap_or(w.len());
        let Some(a) = arc::parse_line(&w[..nl]) else {
            self.head += 1;
            return Framed::Event(skip("bad_warc_header", offset, nl as u64));
        };
        let base = w.as_ptr() as usize;
        let span = |s: &[u8]| {
            let a = s.as_ptr() as usize - base;
            a..a + s.len()
        };
        let filedesc = a.is_filedesc();
        let length = a.length;
        self.hdr = Header {
            len: nl + 1,
            arc: true,
            target_uri: span(a.url),
            ip: span(a.ip),
            date: span(a.date),
            content_type: span(a.content_type),
            content_length: length,
            ..Default::default()
        };
        let reason = if filedesc {
            Some("arc_filedesc")
        } else if docs && self.format == Format::Wet {
            Some("response")
        } else if length > self.opts.max_record_bytes as u64 {
            Some("too_large")
        } else {
            None
        };
        let total = (nl + 1) as u64 + length;
        self.read_or_pass(docs, offset, nl + 1, total, reason)
    }

    /// Reads a framed record's block into the window, or passes over it for `reason`.
    fn read_or_pass(
        &mut self,
        docs: bool,
        offset: u64,
        hlen: usize,
        total: u64,
        reason: Option<&'static str>,
    ) -> Framed {
        if let Some(reason) = reason {
            if !docs {
                self.hdr_bytes.clear();
                self.hdr_bytes
                    .extend_from_slice(&self.buf[self.head..self.head + hlen]);
            }
            return match self.pass_over(offset, total) {
                None => Framed::Passed {
                    offset,
                    reason,
                    total,
                },
                Some(step) => step.into(),
            };
        }
        match self.ensure(total as usize) {
            Ok(true) => {}
            Ok(false) => {
                let bytes = (self.tail - self.head) as u64;
                self.head = self.tail;
                return Framed::Event(skip("truncated_record", offset, bytes));
            }
            Err(e) => return self.on_error(e, Some(offset)).into(),
        }
        let at = self.head;
        self.head += total as usize;
        Framed::Read {
            offset,
            at,
            total: total as usize,
        }
    }

    /// Skips a record's bytes without buffering them; `Some` when the input ends or fails first.
    fn pass_over(&mut self, offset: u64, total: u64) -> Option<Step> {
        let mut left = total;
        loop {
            let have = ((self.tail - self.head) as u64).min(left);
            self.head += have as usize;
            left -= have;
            if left == 0 {
                return None;
            }
            self.compact();
            match self.fill() {
                Ok(0) => return Some(Step::Event(skip("truncated_record", offset, total - left))),
                Ok(_) => {}
                Err(e) => return Some(self.on_error(e, Some(offset))),
            }
        }
    }

    fn step(&mut self) -> Step {
        match self.frame(true) {
            Framed::Read { offset, at, total } => {
                Step::Event(self.document(&self.hdr, &self.buf[at..at + total], offset))
            }
            Framed::Passed {
                offset,
                reason,
                total,
            } => Step::Event(skip(reason, offset, total)),
            Framed::Event(ev) => Step::Event(ev),
            Framed::End => Step::End,
        }
    }

    /// Builds the document of a response/resource/conversion record.
    fn document(&self, h: &Header, rec: &[u8], offset: u64) -> ReadEvent {
        let f = |r: &Range<usize>| &rec[r.clone()];
        let block = &rec[h.len..];
        let url = clean_uri(f(&h.target_uri));
        // ARC records are responses; their content-type field is the payload's.
        let arc_http = h.arc && block.len() >= 5 && block[..5].eq_ignore_ascii_case(b"HTTP/");
        let warc_type: &[u8] = if h.arc { b"response" } else { f(&h.warc_type) };
        let info = RecordInfo {
            warc_type,
            content_type: if arc_http {
                b"application/http"
            } else {
                f(&h.content_type)
            },
            payload_type: f(&h.payload_type),
            url: &url,
        };
        let payload = if self.format == Format::Wet {
            record::text_payload(&info, block)
        } else {
            record::html_payload(&info, block, self.opts.max_record_bytes)
        };
        let p = match payload {
            Ok(p) => p,
            Err(reason) => return skip(reason, offset, rec.len() as u64),
        };
        let id = clean_uri(f(&h.record_id));
        let id = if id.is_empty() {
            Document::content_id(&url, block)
        } else {
            id
        };
        let mut doc = if p.is_html {
            let mut d = Document::new(id, String::new());
            d.html = Some(p.content);
            d
        } else {
            Document::new(id, p.content)
        };
        doc.url = url;
        doc.crawl_date = std::str::from_utf8(f(&h.date))
            .ok()
            .and_then(crate::time::parse_datetime);
        doc.source = SourceRef {
            file: self.file.clone(),
            offset,
        };
        let m = &mut doc.metadata;
        m.insert(
            "warc_type".into(),
            String::from_utf8_lossy(warc_type).to_ascii_lowercase(),
        );
        for (k, v) in p.meta {
            m.insert(k.into(), v);
        }
        for (k, r) in [
            ("ip", &h.ip),
            ("warc_truncated", &h.truncated),
            ("languages", &h.language),
        ] {
            if !r.is_empty() {
                m.insert(k.into(), String::from_utf8_lossy(f(r)).into_owned());
            }
        }
        if !h.refers_to.is_empty() {
            m.insert("refers_to".into(), clean_uri(f(&h.refers_to)));
        }
        ReadEvent::Doc(doc)
    }

    /// The next record's headers (and block when it fits in `max_record_bytes`), without
    /// building a document: a lower-level API for inspection tools and tests. Framing problems
    /// (truncation, bad headers, corrupt data) come back as `Err(skip event)`.
    pub fn next_record(&mut self) -> Option<Result<RawRecord<'_>, ReadEvent>> {
        loop {
            if self.done {
                return None;
            }
            match self.frame(false) {
                Framed::Read { offset, at, total } => {
                    return Some(Ok(RawRecord {
                        offset,
                        header: &self.buf[at..at + self.hdr.len],
                        fields: &self.hdr,
                        block: Some(&self.buf[at + self.hdr.len..at + total]),
                    }))
                }
                Framed::Passed { offset, .. } => {
                    return Some(Ok(RawRecord {
                        offset,
                        header: &self.hdr_bytes,
                        fields: &self.hdr,
                        block: None,
                    }))
                }
                Framed::Event(ev) => return Some(Err(ev)),
                Framed::End => self.done = true,
            }
        }
    }
}

fn skip(reason: &'static str, offset: u64, bytes: u64) -> ReadEvent {
    ReadEvent::Skip {
        reason,
        offset,
        bytes,
    }
}

impl Iterator for WarcReader {
    type Item = ReadEvent;

    fn next(&mut self) -> Option<ReadEvent> {
        while !self.done {
            match self.step() {
                Step::Event(ev) => return Some(ev),
                Step::End => self.done = true,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::align::warc as align;

    fn rec(kind: &str, id: &str, block: &str) -> String {
        format!(
            "WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nWARC-Target-URI: http://x/{id}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{block}\r\n\r\n",
            block.len()
        )
    }

    fn events(data: &[u8], opts: ReadOptions) -> Vec<(String, u64)> {
        WarcReader::new(
            Format::Warc,
            "t".into(),
            Box::new(io::Cursor::new(data.to_vec())),
            0,
            None,
            opts,
        )
        .unwrap()
        .map(|e| match e {
            ReadEvent::Doc(d) => (d.id, d.source.offset),
            ReadEvent::Skip { reason, offset, .. } => (reason.to_string(), offset),
        })
        .collect()
    }

    #[test]
    fn parses_headers_leniently() {
        let hdr = b"WARC/0.18\r\nwarc-type: response\r\nX-Long: a\r\n  folded: continuation\r\nContent-Length:  42 \r\nWARC-Date: 2008-10-294T05:21:46-0700\r\nWARC-Identified-Payload-Type: \r\n\r\n";
        let h = parse_header(hdr).unwrap();
        assert_eq!(h.content_length, 42);
        assert_eq!(&hdr[h.warc_type.clone()], b"response");
        assert_eq!(&hdr[h.version.clone()], b"WARC/0.18");
        assert!(h.payload_type.is_empty());
        assert_eq!(&hdr[h.date.clone()], b"2008-10-294T05:21:46-0700");
        for bad in [
            &b"WARC/1.0\r\nWARC-Type: x\r\n\r\n"[..],
            b"WARC/1.0\r\nContent-Length: -1\r\n\r\n",
            b"WARC/x\r\nContent-Length: 1\r\n\r\n",
            b"WARC/1.0 trailing\r\nContent-Length: 1\r\n\r\n",
        ] {
            assert!(
                parse_header(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cleans_uris() {
        assert_eq!(clean_uri(b" <urn:uuid:ab-c> "), "urn:uuid:ab-c");
        assert_eq!(clean_uri(b"<http://a.b/x y z>"), "http://a.b/x%20y%20z");
        assert_eq!(clean_uri(b"http://a.b/"), "http://a.b/");
        assert_eq!(clean_uri(b"<>"), "");
    }

    #[test]
    fn resyncs_after_junk_and_bad_headers() {
        let a = rec("resource", "a", "<html>a</html>");
        let junk = "garbage that is not a record\r\n";
        let bad = "WARC/1.0\r\nWARC-Type: resource\r\nContent-Length: twelve\r\n\r\n<html>b</html>\r\n\r\n";
        let c = rec("resource", "c", "<html>c</html>");
        let data = format!("{a}{junk}{bad}{c}");
        let ev = events(data.as_bytes(), ReadOptions::default());
        let off_bad = (a.len() + junk.len()) as u64;
        let off_c = off_bad + bad.len() as u64;
        assert_eq!(
            ev,
            vec![
                ("urn:uuid:a".into(), 0),
                ("bad_warc_header".into(), off_bad),
                ("urn:uuid:c".into(), off_c)
            ]
        );
    }

    #[test]
    fn passes_over_large_records_and_reports_truncation() {
        let big = format!("<html>{}</html>", "x".repeat(5000));
        let data = format!(
            "{}{}{}",
            rec("resource", "a", &big),
            rec("request", "b", "GET"),
            rec("resource", "c", "<p>c")
        );
        let opts = ReadOptions {
            max_record_bytes: 1000,
            ..Default::default()
        };
        let ev = events(data.as_bytes(), opts.clone());
        let names: Vec<&str> = ev.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["too_large", "request", "urn:uuid:c"]);
        let cut = &data.as_bytes()[..data.len() - 8];
        let names: Vec<String> = events(cut, opts).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["too_large", "request", "truncated_record"]);
    }

    #[test]
    fn raw_records_expose_headers_and_blocks() {
        let data = format!(
            "{}{}",
            rec("warcinfo", "w", "software: x"),
            rec("response", "r", "HTTP/1.1 200 OK\r\n\r\n<p>")
        );
        let mut r = WarcReader::new(
            Format::Warc,
            "t".into(),
            Box::new(io::Cursor::new(data.into_bytes())),
            0,
            None,
            ReadOptions::default(),
        )
        .unwrap();
        let mut seen = vec![];
        while let Some(Ok(x)) = r.next_record() {
            seen.push((
                String::from_utf8_lossy(&x.header[x.fields.warc_type.clone()]).into_owned(),
                x.block.map(|b| b.len()),
            ));
        }
        assert_eq!(
            seen,
            [
                ("warcinfo".to_string(), Some(11)),
                ("response".to_string(), Some(22))
            ]
        );
    }

    #[test]
    fn align_plain_skips_warc_lines_inside_payloads() {
        let fake = "\r\n\r\nWARC/1.0\r\nContent-Length: 5\r\n\r\nhello and more text after the fake record";
        let a = rec("resource", "a", &format!("<html>{fake}</html>"));
        let b = rec("resource", "b", "<html>b</html>");
        let data = format!("{a}{b}");
        let mut cur = io::Cursor::new(data.as_bytes().to_vec());
        let inside = data.find("WARC/1.0\r\nContent-Length: 5").unwrap() as u64 - 2;
        assert_eq!(align(&mut cur, inside).unwrap(), Some(a.len() as u64));
        assert_eq!(align(&mut cur, 1).unwrap(), Some(a.len() as u64));
        assert_eq!(
            align(&mut cur, a.len() as u64).unwrap(),
            Some(a.len() as u64)
        );
        assert_eq!(align(&mut cur, a.len() as u64 + 1).unwrap(), None);
        assert_eq!(align(&mut cur, 0).unwrap(), Some(0));
    }

    #[test]
    fn wet_reads_conversion_records_only() {
        let data = format!(
            "{}{}",
            rec("conversion", "t", "plain text page"),
            rec("response", "r", "HTTP/1.1 200 OK\r\n\r\n<p>")
        );
        let ev: Vec<ReadEvent> = WarcReader::new(
            Format::Wet,
            "t".into(),
            Box::new(io::Cursor::new(data.into_bytes())),
            0,
            None,
            ReadOptions::default(),
        )
        .unwrap()
        .collect();
        assert!(
            matches!(&ev[0], ReadEvent::Doc(d) if d.text() == "plain text page" && d.html.is_none())
        );
        assert!(matches!(
            ev[1],
            ReadEvent::Skip {
                reason: "response",
                ..
            }
        ));
    }

    #[test]
    fn every_metadata_key_is_listed() {
        let data = format!(
            "{}{}",
            rec("resource", "a", "<html>a</html>"),
            "WARC/1.0\r\nWARC-Type: response\r\nWARC-IP-Address: 1.2.3.4\r\nWARC-Truncated: length\r\nWARC-Identified-Payload-Type: text/html\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: 66\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n\r\n"
        );
        let mut keys = std::collections::BTreeSet::new();
        for e in WarcReader::new(
            Format::Warc,
            "t".into(),
            Box::new(io::Cursor::new(data.into_bytes())),
            0,
            None,
            ReadOptions::default(),
        )
        .unwrap()
        {
            let ReadEvent::Doc(d) = e else {
                panic!("{e:?}")
            };
            keys.extend(d.metadata.into_keys());
        }
        assert!(keys.len() >= 8, "{keys:?}");
        for k in keys {
            assert!(METADATA_KEYS.contains(&k.as_str()), "{k}");
        }
    }

    #[test]
    fn every_reason_is_listed() {
        for t in [
            "warcinfo",
            "request",
            "metadata",
            "revisit",
            "conversion",
            "continuation",
            "foo",
        ] {
            assert!(SKIP_REASONS.contains(&type_reason(t.as_bytes())));
        }
        for s in 100..700 {
            if let Some(r) = record::status_reason(s) {
                assert!(SKIP_REASONS.contains(&r), "{r}");
            }
        }
        for c in [Codec::Plain, Codec::Gzip, Codec::Zstd, Codec::Lz4] {
            assert!(SKIP_REASONS.contains(&c.truncated_reason()));
            assert!(SKIP_REASONS.contains(&c.corrupt_reason()));
        }
    }
}
