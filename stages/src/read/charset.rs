//! Character encodings of web pages: find the charset, decode to UTF-8.
//!
//! Order (the HTML standard's, plus one guard): a byte-order mark; the HTTP `charset`
//! parameter; a `<meta charset>` / `<meta http-equiv=Content-Type>` in the first
//! [`META_SCAN_BYTES`] (or an XML declaration); else valid UTF-8; else a guess by `chardetng`
//! (hinted by the URL's top-level domain) over the first [`DETECT_BYTES`]. The guard: a page
//! declared in a legacy encoding whose bytes are valid UTF-8 with non-ASCII characters is
//! UTF-8 (servers that default to ISO-8859-1 mislabel UTF-8 pages far more often than legacy
//! text happens to be valid UTF-8).

use encoding_rs::{Encoding, UTF_8};

/// Bytes scanned for `<meta>` charset declarations (the HTML standard says 1024; pages with
/// long heads put it later, so scan a little more).
pub const META_SCAN_BYTES: usize = 4096;
/// Bytes fed to the detector when nothing is declared.
pub const DETECT_BYTES: usize = 32 << 10;

/// How the charset was found (the `charset_source` metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharsetSource {
    Bom,
    Http,
    Meta,
    /// Valid UTF-8 (nothing declared, or a legacy declaration overruled).
    Utf8,
    /// Guessed by chardetng.
    Detected,
}

impl CharsetSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CharsetSource::Bom => "bom",
            CharsetSource::Http => "http",
            CharsetSource::Meta => "meta",
            CharsetSource::Utf8 => "utf8_valid",
            CharsetSource::Detected => "detected",
        }
    }
}

/// The `charset` parameter of a Content-Type value, unquoted.
pub fn charset_param(content_type: &[u8]) -> Option<&[u8]> {
    let i = crate::read::sniff::find_ci(content_type, b"charset")?;
    let rest = content_type[i + 7..].trim_ascii_start();
    let rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    let rest = rest
        .strip_prefix(b"\"")
        .or_else(|| rest.strip_prefix(b"'"))
        .unwrap_or(rest);
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b',' | b' ' | b'\t' | b'>' | b'/'))
        .unwrap_or(rest.len());
    let v = &rest[..end];
    (!v.is_empty()).then_some(v)
}

/// An encoding from a declared label, ignoring labels that cannot apply to bytes we could read
/// as ASCII (UTF-16 without a BOM, `replacement`, `x-user-defined`).
pub fn usable_label(label: &[u8]) -> Option<&'static Encoding> {
    let e = Encoding::for_label(label.trim_ascii())?;
    if e == encoding_rs::UTF_16LE
        || e == encoding_rs::UTF_16BE
        || e == encoding_rs::REPLACEMENT
        || e == encoding_rs::X_USER_DEFINED
    {
        return None;
    }
    Some(e)
}

/// The charset declared by `<meta>` tags (or an XML declaration) in the first bytes of a page.
pub fn meta_charset(body: &[u8]) -> Option<&'static Encoding> {
    let p = &body[..body.len().min(META_SCAN_BYTES)];
    if p.starts_with(b"<?xml") {
        let end = memchr::memchr(b'>', p).unwrap_or(p.len());
        if let Some(i) = crate::read::sniff::find_ci(&p[..end], b"encoding") {
            if let Some(e) = attr_value(&p[i + 8..end]).and_then(usable_label) {
                return Some(e);
            }
        }
    }
    let mut i = 0;
    while let Some(j) = memchr::memchr(b'<', &p[i..]) {
        let k = i + j + 1;
        let rest = &p[k..];
        if rest.starts_with(b"!--") {
            match memchr::memmem::find(&rest[3..], b"-->") {
                Some(e) => {
                    i = k + 3 + e + 3;
                    continue;
                }
                None => return None,
            }
        }
        if rest.len() > 5
            && rest[..4].eq_ignore_ascii_case(b"meta")
            && matches!(rest[4], b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/')
        {
            let end = memchr::memchr(b'>', rest).unwrap_or(rest.len());
            if let Some(e) = meta_tag_charset(&rest[4..end]) {
                return Some(e);
            }
            i = k + end;
        } else {
            i = k;
        }
    }
    None
}

/// The charset of one `<meta ...>` tag's attributes: `charset=X`, or `http-equiv=content-type`
/// with `content="...; charset=X"`.
fn meta_tag_charset(attrs: &[u8]) -> Option<&'static Encoding> {
    let mut charset = None;
    let mut content = None;
    let mut pragma = false;
    let mut i = 0;
    while i < attrs.len() {
        // attribute name
        while i < attrs.len() && matches!(attrs[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/') {
            i += 1;
        }
        let ns = i;
        while i < attrs.len()
            && !matches!(attrs[i], b'=' | b' ' | b'\t' | b'\n' | b'\r' | 0x0c | b'/')
        {
            i += 1;
        }
        let name = &attrs[ns..i];
        while i < attrs.len() && matches!(attrs[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
            i += 1;
        }
        let mut value: &[u8] = b"";
        if i < attrs.len() && attrs[i] == b'=' {
            i += 1;
            while i < attrs.len() && matches!(attrs[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
                i += 1;
            }
            if i < attrs.len() && matches!(attrs[i], b'"' | b'\'') {
                let q = attrs[i];
                let vs = i + 1;
                let ve = memchr::memchr(q, &attrs[vs..]).map_or(attrs.len(), |e| vs + e);
                value = &attrs[vs..ve];
                i = ve + 1;
            } else {
                let vs = i;
                while i < attrs.len() && !matches!(attrs[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0c) {
                    i += 1;
                }
                value = &attrs[vs..i];
            }
        }
        if name.is_empty() {
            i += 1;
            continue;
        }
        if name.eq_ignore_ascii_case(b"charset") && charset.is_none() {
            charset = Some(value);
        } else if name.eq_ignore_ascii_case(b"content") && content.is_none() {
            content = Some(value);
        } else if name.eq_ignore_ascii_case(b"http-equiv") {
            pragma |= value.trim_ascii().eq_ignore_ascii_case(b"content-type");
        }
    }
    if let Some(c) = charset {
        if let Some(e) = usable_label(c) {
            return Some(e);
        }
    }
    if pragma {
        return content.and_then(charset_param).and_then(usable_label);
    }
    None
}

fn attr_value(s: &[u8]) -> Option<&[u8]> {
    let s = s.trim_ascii_start().strip_prefix(b"=")?.trim_ascii_start();
    let q = *s.first()?;
    if q == b'"' || q == b'\'' {
        let e = memchr::memchr(q, &s[1..])?;
        Some(&s[1..1 + e])
    } else {
        None
    }
}

/// The top-level domain of a URL's host (a chardetng hint), lower-case ASCII only.
pub fn url_tld(url: &str) -> Option<&[u8]> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = host.split(':').next()?.trim_end_matches('.');
    let tld = host.rsplit('.').next()?;
    (!tld.is_empty()
        && tld
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some(tld.as_bytes())
}

/// Whether bytes contain anything outside ASCII.
fn has_non_ascii(b: &[u8]) -> bool {
    !b.is_ascii()
}

/// A decoded page.
pub struct Decoded {
    pub text: String,
    pub encoding: &'static Encoding,
    pub source: CharsetSource,
}

/// Decodes a page to UTF-8 (see the module docs for the order of evidence). `http_charset` is
/// the HTTP Content-Type's charset parameter, `url` the page URL (for the detector's hint).
/// Malformed sequences become U+FFFD.
pub fn decode_html(body: &[u8], http_charset: Option<&[u8]>, url: &str) -> Decoded {
    if let Some((enc, bom)) = Encoding::for_bom(body) {
        let (text, _) = enc.decode_without_bom_handling(&body[bom..]);
        return Decoded {
            text: text.into_owned(),
            encoding: enc,
            source: CharsetSource::Bom,
        };
    }
    let declared = http_charset
        .and_then(usable_label)
        .map(|e| (e, CharsetSource::Http))
        .or_else(|| meta_charset(body).map(|e| (e, CharsetSource::Meta)));
    if let Some((enc, source)) = declared {
        if enc == UTF_8 {
            return Decoded {
                text: utf8_lossy(body),
                encoding: UTF_8,
                source,
            };
        }
        if enc.is_ascii_compatible() && has_non_ascii(body) {
            if let Ok(s) = std::str::from_utf8(body) {
                return Decoded {
                    text: s.to_owned(),
                    encoding: UTF_8,
                    source: CharsetSource::Utf8,
                };
            }
        }
        let (text, _) = enc.decode_without_bom_handling(body);
        return Decoded {
            text: text.into_owned(),
            encoding: enc,
            source,
        };
    }
    if let Ok(s) = std::str::from_utf8(body) {
        return Decoded {
            text: s.to_owned(),
            encoding: UTF_8,
            source: CharsetSource::Utf8,
        };
    }
    let mut det = chardetng::EncodingDetector::new();
    let sample = &body[..body.len().min(DETECT_BYTES)];
    det.feed(sample, sample.len() == body.len());
    let enc = det.guess(url_tld(url), true);
    let (text, _) = enc.decode_without_bom_handling(body);
    Decoded {
        text: text.into_owned(),
        encoding: enc,
        source: CharsetSource::Detected,
    }
}

/// UTF-8 bytes to a String, malformed sequences replaced.
pub fn utf8_lossy(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_declared_charsets() {
        assert_eq!(
            charset_param(b"text/html; charset=\"EUC-JP\""),
            Some(&b"EUC-JP"[..])
        );
        assert_eq!(
            charset_param(b"text/html;Charset = utf-8;x"),
            Some(&b"utf-8"[..])
        );
        assert_eq!(charset_param(b"text/html"), None);
        let m = |s: &str| meta_charset(s.as_bytes()).map(|e| e.name());
        assert_eq!(m("<html><head><meta charset=\"gb2312\">"), Some("GBK"));
        assert_eq!(
            m("<!-- <meta charset=koi8-r> --><META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=windows-1251'>"),
            Some("windows-1251")
        );
        assert_eq!(
            m("<meta content='text/html; charset=EUC-JP'>"),
            None,
            "no http-equiv"
        );
        assert_eq!(
            m("<meta charset=utf-16>"),
            None,
            "utf-16 cannot be declared in-band"
        );
        assert_eq!(
            m("<?xml version='1.0' encoding='Shift_JIS'?><html>"),
            Some("Shift_JIS")
        );
        assert_eq!(
            m("<meta name=x><meta charset=iso-8859-2 />"),
            Some("ISO-8859-2")
        );
    }

    #[test]
    fn decodes_by_evidence_order() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("日本語のテキストです。");
        let html = [
            &b"<html><head><meta charset=shift_jis></head><body>"[..],
            &sjis,
            b"</body>",
        ]
        .concat();
        let d = decode_html(&html, None, "http://example.jp/");
        assert!(d.text.contains("日本語のテキストです。"));
        assert_eq!(
            (d.encoding.name(), d.source),
            ("Shift_JIS", CharsetSource::Meta)
        );
        // HTTP beats meta.
        let d = decode_html(&html, Some(b"EUC-JP"), "");
        assert_eq!(d.source, CharsetSource::Http);
        // Valid UTF-8 overrules a legacy declaration.
        let d = decode_html("<p>café</p>".as_bytes(), Some(b"iso-8859-1"), "");
        assert_eq!(
            (d.text.as_str(), d.source),
            ("<p>café</p>", CharsetSource::Utf8)
        );
        // BOM beats everything.
        let d = decode_html(b"\xef\xbb\xbf<p>x", Some(b"koi8-r"), "");
        assert_eq!((d.text.as_str(), d.source), ("<p>x", CharsetSource::Bom));
        // Undeclared legacy bytes are detected.
        let (cp, _, _) =
            encoding_rs::WINDOWS_1251.encode("Привет, как дела? Это русский текст о погоде.");
        let d = decode_html(&cp, None, "http://example.ru/x");
        assert_eq!(d.source, CharsetSource::Detected);
        assert_eq!(d.encoding.name(), "windows-1251");
        assert!(d.text.contains("русский"));
    }

    #[test]
    fn tld_hint() {
        assert_eq!(url_tld("http://user@www.Example.jp:80/x"), Some(&b"jp"[..]));
        assert_eq!(url_tld("http://EXAMPLE.JP/"), None);
        assert_eq!(url_tld("http://www.example.jp:80/x"), Some(&b"jp"[..]));
        assert_eq!(url_tld("https://a.b.ru?q"), Some(&b"ru"[..]));
    }
}
