//! Labelled records for training and classification commands: `(id, text, label)` rows of
//! JSONL (plain, gzip, zstd, LZ4) or Parquet files, fields chosen by name. A row that cannot be
//! read is an `Err` with a named reason, in its place, so callers can keep one output per input.

use std::io::BufRead;
use std::path::Path;

use super::parquet::TextCol;
use anyhow::{anyhow, Context};

/// One row.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// 0-based row number in its file.
    pub row: u64,
    pub id: Option<String>,
    pub text: Option<String>,
    pub label: Option<String>,
}

/// Which fields to read.
#[derive(Clone, Debug)]
pub struct Fields {
    pub id: String,
    pub text: String,
    pub label: Option<String>,
}

pub type Rows = Box<dyn Iterator<Item = std::result::Result<Record, (u64, &'static str)>>>;

/// Opens a JSONL or Parquet file (chosen by extension: `.parquet`, else JSON lines).
pub fn open(path: &Path, fields: &Fields) -> anyhow::Result<Rows> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".parquet") {
        parquet_rows(path, fields)
    } else {
        jsonl_rows(path, fields)
    }
}

fn json_str(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn jsonl_rows(path: &Path, fields: &Fields) -> anyhow::Result<Rows> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let input =
        stages::read::decompress(Box::new(f)).with_context(|| format!("{}", path.display()))?;
    let lines = std::io::BufReader::with_capacity(1 << 16, input).split(b'\n');
    let fields = fields.clone();
    let mut row = 0u64;
    Ok(Box::new(lines.filter_map(move |line| {
        let at = row;
        row += 1;
        let line = match line {
            Ok(l) => l,
            Err(_) => return Some(Err((at, "read_error"))),
        };
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            row -= 1;
            return None;
        }
        let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(&line)
        else {
            return Some(Err((at, "invalid_json")));
        };
        Some(Ok(Record {
            row: at,
            id: json_str(m.get(&fields.id)),
            text: json_str(m.get(&fields.text)),
            label: fields.label.as_ref().and_then(|l| json_str(m.get(l))),
        }))
    })))
}

fn parquet_rows(path: &Path, fields: &Fields) -> anyhow::Result<Rows> {
    let name = path.to_string_lossy();
    let file = super::row_groups::ParquetFile::open(&name, 0, &Default::default())
        .map_err(|e| anyhow!("{}", stages::Error::from(e)))?;
    let mut cols = vec![fields.id.as_str(), fields.text.as_str()];
    cols.extend(fields.label.as_deref());
    let reader = file
        .batches(None, Some(&cols), None, 1024)
        .map_err(|e| anyhow!("{e}"))?;
    let fields = fields.clone();
    let mut row = 0u64;
    Ok(Box::new(reader.flat_map(move |batch| {
        let mut out = Vec::new();
        let batch = match batch {
            Ok(b) => b,
            Err(_) => {
                out.push(Err((row, "bad_parquet_batch")));
                return out;
            }
        };
        // Any column type that casts to text (strings, integers, booleans) is accepted.
        let col = |name: &str| batch.column_by_name(name).and_then(TextCol::new);
        let (ids, texts) = (col(&fields.id), col(&fields.text));
        let labels = fields.label.as_deref().and_then(col);
        let get =
            |a: &Option<TextCol>, i: usize| a.as_ref().and_then(|a| a.get(i)).map(str::to_string);
        for i in 0..batch.num_rows() {
            out.push(Ok(Record {
                row,
                id: get(&ids, i),
                text: get(&texts, i),
                label: get(&labels, i),
            }));
            row += 1;
        }
        out
    })))
}
