//! Payload classification: is a record a web page? From declared media types (HTTP
//! Content-Type, WARC-Identified-Payload-Type) and from the bytes themselves (magic numbers of
//! binary formats, NUL and control bytes, the WHATWG "text/html" sniffing patterns).

/// The media type without parameters, trimmed (`text/html; charset=x` -> `text/html`).
pub fn mime_essence(content_type: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', content_type).unwrap_or(content_type.len());
    content_type[..end].trim_ascii()
}

/// What a declared media type says about a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeClass {
    /// An HTML page (`text/html`, `application/xhtml+xml`).
    Html,
    /// Absent or uninformative (`application/octet-stream`, `unknown/unknown`, ...): sniff.
    Unknown,
    /// Anything else (images, PDF, JSON, plain text, ...).
    Other,
}

/// Classifies a media type (with or without parameters), ASCII case-insensitively.
pub fn classify_type(content_type: &[u8]) -> TypeClass {
    let e = mime_essence(content_type);
    const HTML: &[&[u8]] = &[
        b"text/html",
        b"application/xhtml+xml",
        b"application/xhtml",
        b"application/vnd.wap.xhtml+xml",
        b"text/xhtml",
    ];
    const UNKNOWN: &[&[u8]] = &[
        b"",
        b"application/octet-stream",
        b"binary/octet-stream",
        b"application/unknown",
        b"unknown/unknown",
        b"application/x-unknown-content-type",
        b"*/*",
        b"content/unknown",
        b"none",
    ];
    if HTML.iter().any(|t| t.eq_ignore_ascii_case(e)) {
        TypeClass::Html
    } else if UNKNOWN.iter().any(|t| t.eq_ignore_ascii_case(e)) || !e.contains(&b'/') {
        TypeClass::Unknown
    } else {
        TypeClass::Other
    }
}

/// Magic numbers of binary formats that show up in web crawls (checked at the payload start).
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"%PDF-", "pdf"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (b"%!PS", "postscript"),
    (b"{\\rtf", "rtf"),
    (b"\x7fELF", "elf"),
    (b"\xca\xfe\xba\xbe", "java_class"),
    (b"\x00asm", "wasm"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"fLaC", "flac"),
    (b"wOFF", "woff"),
    (b"wOF2", "woff2"),
    (b"OTTO", "otf"),
    (b"\x00\x01\x00\x00\x00", "ttf"),
    (b"FWS", "swf"),
    (b"CWS", "swf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x1aE\xdf\xa3", "matroska"),
    (b"8BPS", "psd"),
];

/// The binary format whose magic number starts `body`, if any (RIFF and ISO media included).
pub fn binary_magic(body: &[u8]) -> Option<&'static str> {
    for (m, name) in MAGIC {
        if body.starts_with(m) {
            return Some(name);
        }
    }
    if body.len() >= 12 && body.starts_with(b"RIFF") {
        return Some("riff");
    }
    if body.len() >= 12 && &body[4..8] == b"ftyp" {
        return Some("iso_media");
    }
    None
}

/// Bytes examined by the binary and HTML sniffers.
pub const SNIFF_BYTES: usize = 1024;

/// Whether a payload is binary: a known magic number, a NUL byte, or more than 2% of control
/// bytes (other than whitespace and ESC, used by ISO-2022 encodings) in the first bytes.
/// Payloads starting with a UTF-16 byte-order mark are text.
pub fn looks_binary(body: &[u8]) -> bool {
    if binary_magic(body).is_some() {
        return true;
    }
    if body.starts_with(b"\xff\xfe") || body.starts_with(b"\xfe\xff") {
        return false;
    }
    let head = &body[..body.len().min(SNIFF_BYTES)];
    if memchr::memchr(0, head).is_some() {
        return true;
    }
    let ctl = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    ctl * 50 > head.len()
}

/// Whether a payload of unknown type is HTML, by the WHATWG MIME sniffing patterns: after
/// optional BOM and whitespace, a tag such as `<!DOCTYPE HTML`, `<html`, `<head`, `<body`,
/// `<div`, `<p`, `<!--` ... followed by a space or `>`; or an XML declaration followed by an
/// `<html` element within the first bytes.
pub fn looks_like_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(SNIFF_BYTES)];
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0c))
        .unwrap_or(head.len());
    let h = &head[start..];
    const TAGS: &[&[u8]] = &[
        b"<!doctype html",
        b"<html",
        b"<head",
        b"<script",
        b"<iframe",
        b"<h1",
        b"<div",
        b"<font",
        b"<table",
        b"<a",
        b"<style",
        b"<title",
        b"<b",
        b"<body",
        b"<br",
        b"<p",
        b"<meta",
        b"<link",
    ];
    for t in TAGS {
        if h.len() > t.len()
            && h[..t.len()].eq_ignore_ascii_case(t)
            && matches!(
                h[t.len()],
                b' ' | b'>' | b'\t' | b'\n' | b'\r' | 0x0c | b'/'
            )
        {
            return true;
        }
    }
    if h.starts_with(b"<!--") {
        return true;
    }
    if h.len() >= 5 && h[..5].eq_ignore_ascii_case(b"<?xml") {
        return find_ci(h, b"<html").is_some();
    }
    false
}

/// ASCII case-insensitive search for a lower-case needle.
pub fn find_ci(hay: &[u8], needle_lower: &[u8]) -> Option<usize> {
    let first = needle_lower[0];
    let upper = first.to_ascii_uppercase();
    let mut i = 0;
    while i + needle_lower.len() <= hay.len() {
        let j = memchr::memchr2(first, upper, &hay[i..=hay.len() - needle_lower.len()])?;
        let k = i + j;
        if hay[k..k + needle_lower.len()].eq_ignore_ascii_case(needle_lower) {
            return Some(k);
        }
        i = k + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_types() {
        assert_eq!(classify_type(b"text/html; charset=UTF-8"), TypeClass::Html);
        assert_eq!(classify_type(b" Application/XHTML+XML "), TypeClass::Html);
        assert_eq!(classify_type(b""), TypeClass::Unknown);
        assert_eq!(
            classify_type(b"application/octet-stream"),
            TypeClass::Unknown
        );
        assert_eq!(classify_type(b"garbage"), TypeClass::Unknown);
        assert_eq!(classify_type(b"image/png"), TypeClass::Other);
        assert_eq!(classify_type(b"text/plain"), TypeClass::Other);
    }

    #[test]
    fn sniffs_binary_and_html() {
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(looks_binary(b"%PDF-1.4\n"));
        assert!(looks_binary(b"<html>\0</html>"));
        assert!(!looks_binary("<html><body>héllo</body></html>".as_bytes()));
        assert!(!looks_binary(b"\xff\xfe<\0h\0"));
        assert!(looks_like_html(b"\xef\xbb\xbf\r\n  <!DOCTYPE html><html>"));
        assert!(looks_like_html(b"<HTML>\n<HEAD>"));
        assert!(looks_like_html(b"<p>para"));
        assert!(looks_like_html(
            b"<?xml version=\"1.0\"?>\n<!DOCTYPE x>\n<html xmlns=\"\">"
        ));
        assert!(!looks_like_html(b"{\"json\": true}"));
        assert!(!looks_like_html(b"<pre>code"));
        assert!(!looks_like_html(b"plain text <html> later"));
        assert_eq!(find_ci(b"xx<HtMl", b"<html"), Some(2));
    }
}
