//! ARC record header lines (the Internet Archive format of Common Crawl's 2008-2012 crawls),
//! read by the WARC reader when a file starts with one.
//!
//! An ARC record is one header line, then `length` bytes (for http URLs: the HTTP response),
//! then a newline. Version 1 lines have five fields, `URL IP-address Archive-date Content-type
//! Archive-length` (the URL may contain spaces, so fields are taken from the right, as warcio
//! does); version 2 lines have ten: `URL IP date type Result-code Checksum Location Offset
//! Filename length`. The first record of a file is `filedesc://...` (file metadata).

/// Longest ARC header line accepted.
pub const MAX_ARC_LINE: usize = 8 << 10;

/// Fields of an ARC header line (sub-slices of the line).
#[derive(Debug, PartialEq, Eq)]
pub struct ArcHeader<'a> {
    pub url: &'a [u8],
    pub ip: &'a [u8],
    /// `YYYYMMDDhhmmss`.
    pub date: &'a [u8],
    pub content_type: &'a [u8],
    pub length: u64,
}

impl ArcHeader<'_> {
    /// The file-description record that opens an ARC file.
    pub fn is_filedesc(&self) -> bool {
        self.url.starts_with(b"filedesc://")
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn number(b: &[u8]) -> Option<u64> {
    if !digits(b) || b.len() > 18 {
        return None;
    }
    Some(b.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

fn is_date(b: &[u8]) -> bool {
    digits(b) && (12..=17).contains(&b.len())
}

/// Parses one header line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_line(line: &[u8]) -> Option<ArcHeader<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || line.len() > MAX_ARC_LINE || line[0].is_ascii_whitespace() {
        return None;
    }
    // Version 2: ten fields, the URL first (no spaces), the date third.
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    if fields.len() == 10 && is_date(fields[2]) && number(fields[9]).is_some() {
        return Some(ArcHeader {
            url: fields[0],
            ip: fields[1],
            date: fields[2],
            content_type: fields[3],
            length: number(fields[9])?,
        });
    }
    // Version 1: the last four fields, the URL is the rest.
    let n = fields.len();
    if n < 5 {
        return None;
    }
    let (ip, date, ctype, len) = (fields[n - 4], fields[n - 3], fields[n - 2], fields[n - 1]);
    if !is_date(date) || ctype.is_empty() || ip.is_empty() {
        return None;
    }
    let url_end = ip.as_ptr() as usize - line.as_ptr() as usize - 1;
    let url = &line[..url_end];
    // A URL has a scheme (`http:`, `dns:`, `filedesc:`...).
    let colon = memchr::memchr(b':', url)?;
    if colon == 0
        || !url[..colon]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    Some(ArcHeader {
        url,
        ip,
        date,
        content_type: ctype,
        length: number(len)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_lines() {
        let h =
            parse_line(b"http://www.example.com/a b.html 10.0.0.1 20080430204825 text/html 1234")
                .unwrap();
        assert_eq!(h.url, b"http://www.example.com/a b.html");
        assert_eq!(
            (h.ip, h.date, h.content_type, h.length),
            (
                &b"10.0.0.1"[..],
                &b"20080430204825"[..],
                &b"text/html"[..],
                1234
            )
        );
        assert!(!h.is_filedesc());
        let h = parse_line(b"filedesc://x.arc 0.0.0.0 20080430204825 text/plain 75\r").unwrap();
        assert!(h.is_filedesc());
        let h = parse_line(b"http://e.com/ 1.2.3.4 20080430204825 text/html 200 0123abc http://e.com/r 42 x.arc 99").unwrap();
        assert_eq!((h.url, h.length), (&b"http://e.com/"[..], 99));
        for bad in [
            &b"WARC/1.0"[..],
            b"HTTP/1.1 200 OK",
            b"Content-Type: text/html; charset=utf-8",
            b"hello world this is a sentence",
            b"noscheme 1.2.3.4 20080430204825 text/html 5",
            b"http://e.com/ 1.2.3.4 2008 text/html 5",
            b"http://e.com/ 1.2.3.4 20080430204825 text/html -5",
        ] {
            assert_eq!(parse_line(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
