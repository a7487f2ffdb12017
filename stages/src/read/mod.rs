//! Readers: turn input files (WARC, WET, JSONL) into documents, skipping bad records by reason.
//!
//! A reader never fails a run on a bad record: a truncated gzip member, a broken WARC header,
//! an unreadable body or a payload that is not a web page becomes a [`ReadEvent::Skip`] with a
//! named reason, counted by the runner under the `read` stage. Only an input that cannot be
//! opened at all fails its partition.
//!
//! Large files are split into byte ranges: a reader started at `start` reads the records whose
//! first byte lies in `start..end` (see [`align`] for finding record starts).
//!
//! Modules: [`warc`] frames WARC/WET records (the reader and `align`), [`codec`] decodes
//! plain/gzip/zstd/LZ4 input with member offsets ([`fastgz`] is its libdeflate fast path),
//! [`record`] turns a record into a document, using [`http`] (status, headers, chunked and
//! content-encoded bodies), [`sniff`] (is it a web page?) and [`charset`] (decoding to UTF-8);
//! [`jsonl`] reads JSON lines. [`skip_reasons`] lists every skip reason of a format and
//! [`warc::METADATA_KEYS`] the metadata WARC documents carry. Design notes and measurements:
//! `docs/readers.md`.

use std::io::Read;
use std::sync::Arc;

use crate::document::Document;

pub mod align;
pub mod arc;
pub mod charset;
pub mod codec;
pub mod fastgz;
pub mod http;
pub mod jsonl;
pub mod record;
pub mod sniff;
pub mod warc;

pub use align::align;

/// Input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// WARC 1.0/1.1 (and 0.18), `response` (and `resource`) records of HTML pages.
    Warc,
    /// WET: WARC `conversion` records holding extracted plain text.
    Wet,
    /// JSON lines `{"id", "text", "url"?, ...}`.
    Jsonl,
    /// Parquet with a text column, read by row group by the engine (`curate::io::input_parquet`).
    Parquet,
}

impl Format {
    /// Guesses the format from a file name (`.warc.gz`, `.wet.gz`, `.jsonl.zst`, `.parquet`, ...).
    pub fn from_path(path: &str) -> Option<Format> {
        let p = path.to_ascii_lowercase();
        let p = p
            .trim_end_matches(".gz")
            .trim_end_matches(".zst")
            .trim_end_matches(".lz4")
            .trim_end_matches(".zstd");
        if p.ends_with(".wet") {
            Some(Format::Wet)
        } else if p.ends_with(".warc") || p.ends_with(".arc") {
            Some(Format::Warc)
        } else if p.ends_with(".jsonl") || p.ends_with(".json") || p.ends_with(".ndjson") {
            Some(Format::Jsonl)
        } else if p.ends_with(".parquet") {
            Some(Format::Parquet)
        } else {
            None
        }
    }
}

/// Reader settings.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Records (WARC payloads, JSONL lines) larger than this are skipped as `too_large`.
    pub max_record_bytes: usize,
    /// JSONL: the field holding the text.
    pub text_field: String,
    /// JSONL: the field holding the id (a content hash when absent).
    pub id_field: String,
    /// JSONL: the field holding the URL.
    pub url_field: String,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_record_bytes: 8 << 20,
            text_field: "text".into(),
            id_field: "id".into(),
            url_field: "url".into(),
        }
    }
}

/// What a reader yields: a document, or a record skipped for a named reason.
// Documents are moved once per record; boxing them would add an allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ReadEvent {
    Doc(Document),
    Skip {
        /// Named reason, e.g. `truncated_gzip`, `bad_warc_header`, `not_html`, `invalid_json`.
        reason: &'static str,
        /// Offset of the record in the input.
        offset: u64,
        /// Bytes of the record (as far as known).
        bytes: u64,
    },
}

/// Opens a document stream over `input`, which is positioned at byte `start` of the file named
/// `source`; records starting at or after `end` are not read. Compression is detected from the
/// first bytes (gzip, zstd, lz4 frames) and applies to the whole range.
pub fn read_docs(
    format: Format,
    source: Arc<str>,
    input: Box<dyn Read + Send>,
    start: u64,
    end: Option<u64>,
    opts: &ReadOptions,
) -> Box<dyn Iterator<Item = ReadEvent> + Send> {
    match format {
        Format::Jsonl => Box::new(jsonl::JsonlReader::new(
            source,
            input,
            start,
            end,
            opts.clone(),
        )),
        Format::Warc | Format::Wet => {
            match warc::WarcReader::new(format, source, input, start, end, opts.clone()) {
                Ok(r) => Box::new(r),
                Err(_) => Box::new(std::iter::once(ReadEvent::Skip {
                    reason: "read_error",
                    offset: start,
                    bytes: 0,
                })),
            }
        }
        // Parquet needs random access (its footer is at the end): the engine reads it by row
        // group (`curate::io::input_parquet`). A stream handed here is skipped and counted, not read.
        Format::Parquet => Box::new(std::iter::once(ReadEvent::Skip {
            reason: "not_parquet",
            offset: start,
            bytes: 0,
        })),
    }
}

/// Every skip reason a reader of `format` can report (for stats schemas and documentation).
pub fn skip_reasons(format: Format) -> &'static [&'static str] {
    match format {
        Format::Warc | Format::Wet => warc::SKIP_REASONS,
        Format::Jsonl => jsonl::SKIP_REASONS,
        // The engine's Parquet reader (`curate::io::input_parquet::SKIP_REASONS`).
        Format::Parquet => &[
            "not_parquet",
            "no_text_column",
            "bad_row_group",
            "missing_text",
            "too_large",
        ],
    }
}

/// Wraps a reader in a decompressor chosen by magic bytes (gzip, zstd, lz4 frame), else plain.
pub fn decompress(mut input: Box<dyn Read + Send>) -> std::io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        let k = input.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    let chained: Box<dyn Read + Send> =
        Box::new(std::io::Cursor::new(head[..n].to_vec()).chain(input));
    Ok(if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Box::new(flate2::read::MultiGzDecoder::new(
            std::io::BufReader::with_capacity(1 << 16, chained),
        ))
    } else if n == 4 && head == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::new(chained)?)
    } else if n == 4 && head == [0x04, 0x22, 0x4d, 0x18] {
        Box::new(lz4_flex::frame::FrameDecoder::new(chained))
    } else {
        chained
    })
}
