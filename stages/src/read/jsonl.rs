//! JSONL reader: one document per line (`{"id", "text", "url"?, "crawl_date"?, ...}`), plain,
//! gzip or zstd. Other string fields become metadata; numeric fields are kept as metadata too.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use crate::document::{Document, SourceRef};
use crate::read::{decompress, ReadEvent, ReadOptions};

/// Every reason the JSONL reader skips a line for.
pub const SKIP_REASONS: &[&str] = &["invalid_json", "missing_text", "too_large", "read_error"];

pub struct JsonlReader {
    source: Arc<str>,
    lines: Option<Box<dyn BufRead + Send>>,
    offset: u64,
    end: Option<u64>,
    opts: ReadOptions,
    buf: Vec<u8>,
    /// Compressed input: offsets are line numbers of the decompressed stream, ranges unsupported.
    compressed: bool,
}

impl JsonlReader {
    pub fn new(
        source: Arc<str>,
        input: Box<dyn Read + Send>,
        start: u64,
        end: Option<u64>,
        opts: ReadOptions,
    ) -> Self {
        let lower = source.to_ascii_lowercase();
        let compressed =
            lower.ends_with(".gz") || lower.ends_with(".zst") || lower.ends_with(".zstd");
        let lines: Option<Box<dyn BufRead + Send>> = match decompress(input) {
            Ok(r) => Some(Box::new(BufReader::with_capacity(1 << 16, r))),
            Err(_) => None,
        };
        JsonlReader {
            source,
            lines,
            offset: start,
            end,
            opts,
            buf: Vec::new(),
            compressed,
        }
    }
}

/// Parses one JSON line into a document.
pub fn parse_line(
    line: &[u8],
    source: &Arc<str>,
    offset: u64,
    opts: &ReadOptions,
) -> Result<Document, &'static str> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|_| "invalid_json")?;
    let serde_json::Value::Object(mut m) = v else {
        return Err("invalid_json");
    };
    let text = match m.remove(&opts.text_field) {
        Some(serde_json::Value::String(s)) => s,
        _ => return Err("missing_text"),
    };
    let url = match m.remove(&opts.url_field) {
        Some(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    let id = match m.remove(&opts.id_field) {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => Document::content_id(&url, text.as_bytes()),
    };
    let mut doc = Document::new(id, text);
    doc.url = url;
    doc.source = SourceRef {
        file: source.clone(),
        offset,
    };
    for key in ["crawl_date", "date", "timestamp"] {
        match m.get(key) {
            Some(serde_json::Value::Number(n)) => {
                doc.crawl_date = n.as_i64();
                break;
            }
            Some(serde_json::Value::String(s)) => {
                if let Some(t) = crate::time::parse_datetime(s) {
                    doc.crawl_date = Some(t);
                    break;
                }
            }
            _ => {}
        }
    }
    for (k, v) in m {
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Null => continue,
            other => other.to_string(),
        };
        doc.metadata.insert(k, s);
    }
    Ok(doc)
}

impl Iterator for JsonlReader {
    type Item = ReadEvent;

    fn next(&mut self) -> Option<ReadEvent> {
        loop {
            let lines = self.lines.as_mut()?;
            if !self.compressed && self.end.is_some_and(|e| self.offset >= e) {
                return None;
            }
            self.buf.clear();
            let at = self.offset;
            let n = match lines.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(n) => n,
                Err(_) => {
                    self.lines = None;
                    return Some(ReadEvent::Skip {
                        reason: "read_error",
                        offset: at,
                        bytes: 0,
                    });
                }
            };
            self.offset += n as u64;
            let line = trim_ascii(&self.buf);
            if line.is_empty() {
                continue;
            }
            if line.len() > self.opts.max_record_bytes {
                return Some(ReadEvent::Skip {
                    reason: "too_large",
                    offset: at,
                    bytes: n as u64,
                });
            }
            return Some(match parse_line(line, &self.source, at, &self.opts) {
                Ok(d) => ReadEvent::Doc(d),
                Err(reason) => ReadEvent::Skip {
                    reason,
                    offset: at,
                    bytes: n as u64,
                },
            });
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &b[s..e]
}

/// First line start at or after `offset` (uncompressed files only).
pub fn align(file: &mut (impl Read + Seek), offset: u64) -> std::io::Result<Option<u64>> {
    if offset == 0 {
        return Ok(Some(0));
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut r = BufReader::new(file);
    let mut skipped = Vec::new();
    let n = r.read_until(b'\n', &mut skipped)?;
    if n == 0 {
        return Ok(None);
    }
    let at = offset - 1 + n as u64;
    let more = !r.fill_buf()?.is_empty();
    Ok(if more { Some(at) } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_skips_bad_ones() {
        let data = b"{\"id\":\"a\",\"text\":\"hello\",\"url\":\"http://x\",\"lang\":\"en\"}\nnot json\n\n{\"text\":\"no id\"}\n{\"id\":1}\n";
        let r = JsonlReader::new(
            "mem".into(),
            Box::new(&data[..]),
            0,
            None,
            ReadOptions::default(),
        );
        let ev: Vec<ReadEvent> = r.collect();
        assert_eq!(ev.len(), 4);
        match &ev[0] {
            ReadEvent::Doc(d) => {
                assert_eq!(d.id, "a");
                assert_eq!(d.text(), "hello");
                assert_eq!(d.url, "http://x");
                assert_eq!(d.metadata.get("lang").map(String::as_str), Some("en"));
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            ev[1],
            ReadEvent::Skip {
                reason: "invalid_json",
                ..
            }
        ));
        assert!(matches!(&ev[2], ReadEvent::Doc(d) if d.id.starts_with("xxh3:")));
        assert!(matches!(
            ev[3],
            ReadEvent::Skip {
                reason: "missing_text",
                ..
            }
        ));
    }

    #[test]
    fn ranges_cover_every_line_once() {
        let mut data = Vec::new();
        for i in 0..100 {
            data.extend_from_slice(format!("{{\"id\":\"{i}\",\"text\":\"t{i}\"}}\n").as_bytes());
        }
        let len = data.len() as u64;
        let mut cur = std::io::Cursor::new(data.clone());
        let mut bounds = vec![];
        for cut in [0, 333, 777, 1200] {
            if let Some(a) = align(&mut cur, cut).unwrap() {
                bounds.push(a);
            }
        }
        bounds.dedup();
        let mut ids = vec![];
        for (i, &s) in bounds.iter().enumerate() {
            let e = bounds.get(i + 1).copied().unwrap_or(len);
            let r = JsonlReader::new(
                "m".into(),
                Box::new(std::io::Cursor::new(data[s as usize..].to_vec())),
                s,
                Some(e),
                ReadOptions::default(),
            );
            for ev in r {
                if let ReadEvent::Doc(d) = ev {
                    ids.push(d.id);
                }
            }
        }
        assert_eq!(ids, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    }
}
