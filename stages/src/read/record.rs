//! From one WARC record to a document: which records are documents, what their payload is
//! (HTTP response, resource, WET conversion), whether it is a web page, and its decoded text.
//!
//! The decisions, in order, each failing one a named skip reason:
//! 1. record type: `response` and `resource` (WARC) or `conversion` (WET) are documents;
//!    everything else is skipped under its type's name (`warcinfo`, `request`, ...);
//! 2. HTTP status: 2xx pages only (`http_redirect`, `http_client_error`, ...);
//! 3. declared type: WARC-Identified-Payload-Type (the crawler's own sniffing) when present,
//!    else the HTTP (or WARC, for resources) Content-Type: HTML is read, uninformative types
//!    are sniffed, anything else is `not_html`;
//! 4. body: de-chunked and decompressed (a declared encoding that fails keeps the raw body);
//! 5. bytes: magic numbers and NUL/control bytes make it `binary_payload`, whitespace only
//!    `empty_payload`;
//! 6. charset found and the page decoded to UTF-8 (see [`charset`](super::charset)).

use std::borrow::Cow;

use crate::read::charset::{self, CharsetSource};
use crate::read::http::{self, BodyError};
use crate::read::sniff::{self, TypeClass};

/// What a record yields: the page (HTML or text) and its metadata, or a skip reason.
pub struct Payload {
    pub content: String,
    /// `true`: HTML (goes to `Document::html`), `false`: plain text (WET).
    pub is_html: bool,
    pub meta: Vec<(&'static str, String)>,
}

/// Skip reason for an HTTP status that is not a page.
pub fn status_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        200..=203 | 207..=299 => return None,
        204 | 205 => "http_no_content",
        206 => "http_partial_content",
        304 => "http_not_modified",
        300..=399 => "http_redirect",
        400..=499 => "http_client_error",
        500..=599 => "http_server_error",
        100..=199 => "http_informational",
        _ => "bad_http_status",
    })
}

/// Header fields of the record that matter here.
pub struct RecordInfo<'a> {
    pub warc_type: &'a [u8],
    pub content_type: &'a [u8],
    pub payload_type: &'a [u8],
    pub url: &'a str,
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

/// A `response` or `resource` record's block to an HTML page.
pub fn html_payload(rec: &RecordInfo, block: &[u8], limit: usize) -> Result<Payload, &'static str> {
    let mut meta = Vec::with_capacity(6);
    let is_response = rec.warc_type.eq_ignore_ascii_case(b"response");
    let is_http = is_response
        && (sniff::find_ci(rec.content_type, b"application/http").is_some()
            || (rec.content_type.is_empty()
                && block.len() >= 5
                && block[..5].eq_ignore_ascii_case(b"HTTP/")));
    type Parts<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);
    let (declared, body, transfer, encoding): Parts = if is_http {
        let r = http::parse_response(block)?;
        meta.push(("http_status", r.status.to_string()));
        if let Some(reason) = status_reason(r.status) {
            return Err(reason);
        }
        (
            r.content_type.unwrap_or(b""),
            r.body,
            r.transfer_encoding,
            r.content_encoding,
        )
    } else {
        (rec.content_type, block, None, None)
    };
    let essence = sniff::mime_essence(declared);
    if !essence.is_empty() {
        meta.push(("content_type", lower(essence)));
    }
    let payload_type = sniff::mime_essence(rec.payload_type);
    let class = if payload_type.is_empty() {
        sniff::classify_type(declared)
    } else {
        meta.push(("payload_type", lower(payload_type)));
        sniff::classify_type(payload_type)
    };
    if class == TypeClass::Other {
        return Err("not_html");
    }
    let too_large = |_: BodyError| "too_large";
    let mut body: Cow<[u8]> = Cow::Borrowed(body);
    if transfer.is_some_and(|t| sniff::find_ci(t, b"chunked").is_some()) {
        if let Some(d) = http::dechunk(&body, limit).map_err(too_large)? {
            body = Cow::Owned(d);
        }
    }
    if let Some(enc) = encoding {
        let (decoded, applied) = http::decode_content(&body, enc, limit).map_err(too_large)?;
        if let Some(a) = applied {
            meta.push(("content_encoding", a.to_string()));
            body = Cow::Owned(decoded.into_owned());
        }
    }
    if sniff::looks_binary(&body) {
        return Err("binary_payload");
    }
    if body.trim_ascii().is_empty() {
        return Err("empty_payload");
    }
    if class == TypeClass::Unknown && !sniff::looks_like_html(&body) {
        return Err("not_html");
    }
    let http_charset = charset::charset_param(declared);
    let d = charset::decode_html(&body, http_charset, rec.url);
    meta.push(("charset", d.encoding.name().to_string()));
    meta.push(("charset_source", d.source.as_str().to_string()));
    Ok(Payload {
        content: d.text,
        is_html: true,
        meta,
    })
}

/// A WET `conversion` record's block (UTF-8 text) to a text document.
pub fn text_payload(rec: &RecordInfo, block: &[u8]) -> Result<Payload, &'static str> {
    if block.trim_ascii().is_empty() {
        return Err("empty_payload");
    }
    let mut meta = Vec::with_capacity(3);
    let essence = sniff::mime_essence(rec.content_type);
    if !essence.is_empty() {
        meta.push(("content_type", lower(essence)));
    }
    let (text, source) = match std::str::from_utf8(block) {
        Ok(s) => (s.to_owned(), CharsetSource::Utf8),
        Err(_) => {
            let d = charset::decode_html(block, charset::charset_param(rec.content_type), rec.url);
            (d.text, d.source)
        }
    };
    if source != CharsetSource::Utf8 {
        meta.push(("charset_source", source.as_str().to_string()));
    }
    Ok(Payload {
        content: text,
        is_html: false,
        meta,
    })
}
