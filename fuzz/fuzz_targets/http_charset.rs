//! HTTP response parsing, de-chunking, Content-Encoding and charset decoding over arbitrary
//! bytes: each either decodes or returns an error, within its size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stages::read::{charset, http};

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = http::parse_response(data) {
        let _ = resp.status;
    }
    if let Ok(Some(body)) = http::dechunk(data, LIMIT) {
        assert!(body.len() <= LIMIT);
    }
    for enc in [&b"gzip"[..], b"deflate", b"br", b"zstd", b"gzip, br"] {
        if let Ok((body, _)) = http::decode_content(data, enc, LIMIT) {
            assert!(body.len() <= LIMIT.max(data.len()));
        }
    }
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(0);
    let (ct, body) = data.split_at(split);
    let label = charset::charset_param(ct);
    let d = charset::decode_html(body, label, "http://example.jp/");
    assert!(std::str::from_utf8(d.text.as_bytes()).is_ok());
});
