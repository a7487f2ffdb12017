//! HTTP responses as archived in WARC `response` records: status line, headers, chunked
//! transfer-encoding and Content-Encoding (gzip, deflate, br, zstd).
//!
//! Archives are lenient about what servers sent, so is this module: bare-LF line endings,
//! missing reason phrases, `Content-Encoding: gzip` on bodies the crawler already decoded
//! (ClueWeb09), `Transfer-Encoding: chunked` on bodies that are not chunked: whenever a
//! declared encoding does not decode, the raw body is used.

use std::borrow::Cow;
use std::io::Read;

/// Longest HTTP header block accepted.
pub const MAX_HTTP_HEADER: usize = 64 << 10;

/// A parsed response: status, the headers that matter for decoding, and the raw body.
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub content_type: Option<&'a [u8]>,
    pub content_encoding: Option<&'a [u8]>,
    pub transfer_encoding: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// The end of a header block: index of the first byte after the empty line. Lines may end in
/// CRLF or bare LF.
pub fn header_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let nl = memchr::memchr(b'\n', &b[i..])? + i;
        let line = &b[i..nl];
        if line.is_empty() || line == b"\r" {
            return Some(nl + 1);
        }
        i = nl + 1;
    }
}

/// Splits a header line into trimmed name and value.
pub fn split_header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let c = memchr::memchr(b':', line)?;
    Some((line[..c].trim_ascii(), line[c + 1..].trim_ascii()))
}

/// Parses the status line and headers of an HTTP response. Interim `1xx` responses recorded
/// before the final one (`100 Continue`) are skipped.
pub fn parse_response(block: &[u8]) -> Result<Response<'_>, &'static str> {
    let mut r = parse_one(block)?;
    for _ in 0..4 {
        if !(100..200).contains(&r.status)
            || r.body.len() < 12
            || !r.body[..5].eq_ignore_ascii_case(b"HTTP/")
        {
            break;
        }
        r = parse_one(r.body)?;
    }
    Ok(r)
}

fn parse_one(block: &[u8]) -> Result<Response<'_>, &'static str> {
    if block.len() < 12 || !block[..5].eq_ignore_ascii_case(b"HTTP/") {
        return Err("bad_http_header");
    }
    let (head, body) = match header_end(&block[..block.len().min(MAX_HTTP_HEADER)]) {
        Some(e) => (&block[..e], &block[e..]),
        // Headers cut off by a truncated record: no body.
        None if block.len() <= MAX_HTTP_HEADER => (block, &block[block.len()..]),
        None => return Err("bad_http_header"),
    };
    let first_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let status = parse_status(&head[..first_end]).ok_or("bad_http_header")?;
    let mut r = Response {
        status,
        content_type: None,
        content_encoding: None,
        transfer_encoding: None,
        body,
    };
    for line in head[(first_end + 1).min(head.len())..].split(|&b| b == b'\n') {
        let Some((name, value)) = split_header(line) else {
            continue;
        };
        let slot = match name.len() {
            12 if name.eq_ignore_ascii_case(b"content-type") => &mut r.content_type,
            16 if name.eq_ignore_ascii_case(b"content-encoding") => &mut r.content_encoding,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => &mut r.transfer_encoding,
            _ => continue,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value);
        }
    }
    Ok(r)
}

/// `HTTP/1.1 200 OK` -> 200 (the version may be `1.0`, `1.1`, `2`; the reason may be absent).
fn parse_status(line: &[u8]) -> Option<u16> {
    let sp = memchr::memchr(b' ', line)?;
    let rest = line[sp..].trim_ascii_start();
    if rest.len() < 3 || !rest[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if rest.len() > 3 && rest[3].is_ascii_digit() {
        return None;
    }
    Some(
        rest[..3]
            .iter()
            .fold(0u16, |a, &d| a * 10 + (d - b'0') as u16),
    )
}

/// Why a body could not be decoded within limits.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Decoded body larger than the limit.
    TooLarge,
}

/// Decodes a chunked body. `None` when the body is not validly chunked (the caller keeps the raw
/// body). A body cut off inside a chunk (truncated record) keeps what was received.
pub fn dechunk(body: &[u8], limit: usize) -> Result<Option<Vec<u8>>, BodyError> {
    let mut out = Vec::with_capacity(body.len().min(limit));
    let mut i = 0;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &body[i..]) else {
            // Cut off in a size line: done if at least one chunk came through.
            return Ok((i > 0 && i == body.len() || !out.is_empty()).then_some(out));
        };
        let line = body[i..i + nl].trim_ascii();
        let hex_end = line
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(line.len());
        if hex_end == 0
            || hex_end > 12
            || !(hex_end == line.len() || matches!(line[hex_end], b';' | b' ' | b'\t'))
        {
            return Ok(None);
        }
        let size = line[..hex_end].iter().fold(0usize, |a, &d| {
            a * 16 + (d as char).to_digit(16).unwrap_or(0) as usize
        });
        i += nl + 1;
        if size == 0 {
            return Ok(Some(out));
        }
        let take = size.min(body.len() - i);
        if out.len() + take > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&body[i..i + take]);
        i += take;
        if take < size {
            return Ok(Some(out));
        }
        // Chunk data ends with CRLF (tolerate LF or nothing at the end).
        if body[i..].starts_with(b"\r\n") {
            i += 2;
        } else if body[i..].starts_with(b"\n") {
            i += 1;
        }
        if i >= body.len() {
            return Ok(Some(out));
        }
    }
}

/// Decodes a Content-Encoding. Returns the decoded body (borrowed when nothing was decoded) and
/// the encoding applied, if any; a body that does not decode is returned raw.
pub fn decode_content<'a>(
    body: &'a [u8],
    encoding: &[u8],
    limit: usize,
) -> Result<(Cow<'a, [u8]>, Option<&'static str>), BodyError> {
    // `gzip, br` lists encodings in the order applied; undo them in reverse.
    let mut cur: Cow<'a, [u8]> = Cow::Borrowed(body);
    let mut applied = None;
    for enc in encoding.rsplit(|&b| b == b',') {
        let enc = enc.trim_ascii();
        let name = if enc.eq_ignore_ascii_case(b"gzip") || enc.eq_ignore_ascii_case(b"x-gzip") {
            "gzip"
        } else if enc.eq_ignore_ascii_case(b"deflate") {
            "deflate"
        } else if enc.eq_ignore_ascii_case(b"br") {
            "br"
        } else if enc.eq_ignore_ascii_case(b"zstd") {
            "zstd"
        } else {
            continue; // identity, none, unknown: leave as is
        };
        match decode_one(&cur, name, limit)? {
            Some(v) => {
                cur = Cow::Owned(v);
                applied = Some(name);
            }
            None => break,
        }
    }
    Ok((cur, applied))
}

fn decode_one(body: &[u8], name: &str, limit: usize) -> Result<Option<Vec<u8>>, BodyError> {
    match name {
        "gzip" => {
            if !body.starts_with(&[0x1f, 0x8b]) {
                // Already decoded by the crawler (ClueWeb09 keeps the header).
                return Ok(None);
            }
            inflate(Inflate::Gzip, body, limit)
        }
        "deflate" => {
            // zlib-wrapped per the RFC, raw deflate from many servers.
            let zlib = body.len() >= 2
                && body[0] & 0x0f == 8
                && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
            match inflate(if zlib { Inflate::Zlib } else { Inflate::Raw }, body, limit)? {
                None if zlib => inflate(Inflate::Raw, body, limit),
                r => Ok(r),
            }
        }
        "br" => read_limited(brotli_decompressor::Decompressor::new(body, 4096), limit),
        "zstd" => {
            if !body.starts_with(crate::read::codec::ZSTD_MAGIC) {
                return Ok(None);
            }
            match zstd::stream::read::Decoder::with_buffer(body) {
                Ok(d) => read_limited(d, limit),
                Err(_) => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Inflate {
    Gzip,
    Zlib,
    Raw,
}

/// Inflates `body` (gzip: every member). A stream cut short keeps what was decoded (truncated
/// records); undecodable data gives `None`.
fn inflate(kind: Inflate, body: &[u8], limit: usize) -> Result<Option<Vec<u8>>, BodyError> {
    let mut d = match kind {
        Inflate::Gzip => flate2::Decompress::new_gzip(15),
        Inflate::Zlib => flate2::Decompress::new(true),
        Inflate::Raw => flate2::Decompress::new(false),
    };
    let mut out: Vec<u8> = Vec::new();
    out.reserve_exact((body.len() * 4).clamp(4096, limit.max(4096)));
    let mut pos = 0;
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                return Err(BodyError::TooLarge);
            }
            out.reserve_exact(out.len().min(limit - out.len()).max(4096));
        }
        let (i0, o0) = (d.total_in(), d.total_out());
        let st = d.decompress_vec(&body[pos..], &mut out, flate2::FlushDecompress::None);
        let used = (d.total_in() - i0) as usize;
        let made = (d.total_out() - o0) as usize;
        pos += used;
        match st {
            Ok(flate2::Status::StreamEnd) => {
                if kind == Inflate::Gzip && body[pos..].starts_with(&[0x1f, 0x8b]) {
                    d.reset(true);
                    continue;
                }
                break;
            }
            // Input used up without the end of the stream: a truncated body.
            Ok(_) if pos >= body.len() => break,
            Ok(_) if used == 0 && made == 0 && out.len() < out.capacity() => break,
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok((!out.is_empty()).then_some(out))
}

fn read_limited(r: impl Read, limit: usize) -> Result<Option<Vec<u8>>, BodyError> {
    let mut out = Vec::new();
    match r.take(limit as u64 + 1).read_to_end(&mut out) {
        Ok(_) if out.len() > limit => Err(BodyError::TooLarge),
        Ok(_) => Ok(Some(out)),
        // A cut-off stream keeps what was decoded if that is most of it.
        Err(_) if !out.is_empty() => Ok(Some(out)),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_status_and_headers() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\ntransfer-encoding:  chunked \r\n\r\nbody").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, Some(&b"text/html; charset=UTF-8"[..]));
        assert_eq!(r.transfer_encoding, Some(&b"chunked"[..]));
        assert_eq!(r.body, b"body");
        let r = parse_response(b"HTTP/1.0 404\nServer: x\n\n<html>").unwrap();
        assert_eq!((r.status, r.body), (404, &b"<html>"[..]));
        let r = parse_response(b"HTTP/2 301 Moved\r\nLocation: /x\r\n").unwrap();
        assert_eq!((r.status, r.body), (301, &b""[..]));
        assert!(parse_response(b"GET / HTTP/1.1\r\n\r\n").is_err());
        let r = parse_response(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>",
        )
        .unwrap();
        assert_eq!(
            (r.status, r.body, r.content_type),
            (200, &b"<p>"[..], Some(&b"text/html"[..]))
        );
        assert!(parse_response(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
    }

    #[test]
    fn dechunks_leniently() {
        let b = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
        assert_eq!(
            dechunk(b, 1 << 20).unwrap().unwrap(),
            b"Wikipedia in\r\n\r\nchunks."
        );
        assert_eq!(dechunk(b"<html>not chunked", 1 << 20).unwrap(), None);
        assert_eq!(dechunk(b"a\r\n0123", 1 << 20).unwrap().unwrap(), b"0123");
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n", 1 << 20).unwrap().unwrap(),
            b"Wiki"
        );
        assert_eq!(dechunk(b"4\r\nWiki\r\n", 2), Err(BodyError::TooLarge));
    }

    #[test]
    fn decodes_content_encodings() {
        let text = b"<html>hello hello hello hello</html>".repeat(20);
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&text).unwrap();
        let gz = g.finish().unwrap();
        let (out, how) = decode_content(&gz, b"gzip", 1 << 20).unwrap();
        assert_eq!((&out[..], how), (&text[..], Some("gzip")));
        // Truncated gzip keeps what was decoded.
        let (out, _) = decode_content(&gz[..gz.len() - 6], b"gzip", 1 << 20).unwrap();
        assert_eq!(&out[..], &text[..]);
        // Already decoded body with a stale header stays raw.
        let (out, how) = decode_content(&text, b"gzip", 1 << 20).unwrap();
        assert_eq!((&out[..], how), (&text[..], None));
        // Bomb limit.
        assert_eq!(
            decode_content(&gz, b"gzip", 100).unwrap_err(),
            BodyError::TooLarge
        );
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let raw = z.finish().unwrap();
        assert_eq!(
            &decode_content(&raw, b"deflate", 1 << 20).unwrap().0[..],
            &text[..]
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zl = z.finish().unwrap();
        assert_eq!(
            &decode_content(&zl, b"deflate", 1 << 20).unwrap().0[..],
            &text[..]
        );
        let zs = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            &decode_content(&zs, b"zstd", 1 << 20).unwrap().0[..],
            &text[..]
        );
        // gzip then identity listed: still decoded.
        assert_eq!(
            decode_content(&gz, b"gzip, identity", 1 << 20).unwrap().1,
            Some("gzip")
        );
        // Garbage brotli stays raw.
        assert_eq!(
            decode_content(b"<html>x</html>", b"br", 1 << 20).unwrap().1,
            None
        );
    }
}
