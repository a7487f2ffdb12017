//! JSONL.zst documents: one JSON object per line with the document's fields and its signals.

use stages::{Document, Error, ObjectWriter, Result, Verdict};

use super::DocSink;

/// The JSON form of a document (also used by `curate inspect`).
pub fn doc_json(d: &Document) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), d.id.clone().into());
    m.insert("url".into(), d.url.clone().into());
    m.insert(
        "crawl_date".into(),
        d.crawl_date.map_or(serde_json::Value::Null, Into::into),
    );
    m.insert(
        "source".into(),
        serde_json::json!({"file": &*d.source.file, "offset": d.source.offset}),
    );
    m.insert("text".into(), d.text().into());
    m.insert(
        "metadata".into(),
        serde_json::to_value(&d.metadata).unwrap_or_default(),
    );
    m.insert("signals".into(), d.signals.to_json());
    match &d.verdict {
        Verdict::Kept => {
            m.insert("verdict".into(), "kept".into());
        }
        Verdict::Dropped { stage, reason } => {
            m.insert("verdict".into(), "dropped".into());
            m.insert("drop_stage".into(), (&**stage).into());
            m.insert("drop_reason".into(), (&**reason).into());
        }
    }
    if let Some(f) = super::flags_text(d) {
        m.insert("flags".into(), f.into());
    }
    serde_json::Value::Object(m)
}

/// Writes documents as zstd-compressed JSON lines.
pub struct JsonlSink {
    enc: Option<zstd::stream::write::Encoder<'static, Box<dyn ObjectWriter>>>,
    docs: u64,
    bytes: u64,
}

impl JsonlSink {
    pub fn new(out: Box<dyn ObjectWriter>, level: i32) -> Result<Self> {
        let enc = zstd::stream::write::Encoder::new(out, level)?;
        Ok(JsonlSink {
            enc: Some(enc),
            docs: 0,
            bytes: 0,
        })
    }
}

impl DocSink for JsonlSink {
    fn write(&mut self, docs: &[&Document]) -> Result<()> {
        use std::io::Write;
        let enc = self.enc.as_mut().expect("open");
        for d in docs {
            let mut line =
                serde_json::to_vec(&doc_json(d)).map_err(|e| Error::other(e.to_string()))?;
            line.push(b'\n');
            enc.write_all(&line)?;
            self.bytes += line.len() as u64;
            self.docs += 1;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(u64, u64)> {
        let out = self.enc.take().expect("open").finish()?;
        out.finish()?;
        Ok((self.docs, self.bytes))
    }
}
