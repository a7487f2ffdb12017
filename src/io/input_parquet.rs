//! Parquet input: documents from any Parquet file with a text column (curate's own outputs,
//! or datasets with `id`/`text`/`url` columns). Other string columns become metadata.

use std::sync::Arc;

use arrow::array::{Array, LargeStringArray, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use stages::read::{ReadEvent, ReadOptions};
use stages::{Document, Error, Result, SourceRef};

use crate::config::raw::StorageSection;

fn col_str(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = batch.column_by_name(name)?;
    if c.is_null(i) {
        return None;
    }
    if let Some(a) = c.as_any().downcast_ref::<StringArray>() {
        Some(a.value(i).to_string())
    } else {
        c.as_any()
            .downcast_ref::<LargeStringArray>()
            .map(|a| a.value(i).to_string())
    }
}

/// Reads a Parquet input into read events (the file is loaded whole: Parquet needs its footer).
pub fn read(
    uri: &str,
    cfg: &StorageSection,
    opts: &ReadOptions,
) -> Result<Box<dyn Iterator<Item = ReadEvent> + Send>> {
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut crate::storage::open_read(uri, 0, cfg).map_err(|e| Error::io(uri, e))?,
        &mut bytes,
    )
    .map_err(|e| Error::io(uri, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.with_batch_size(1024).build())
        .map_err(|e| Error::other(format!("{uri}: not a readable Parquet file: {e}")))?;
    let source: Arc<str> = Arc::from(uri);
    let opts = opts.clone();
    let mut row = 0u64;
    let iter = reader.flat_map(move |batch| -> Vec<ReadEvent> {
        let batch = match batch {
            Ok(b) => b,
            Err(_) => {
                return vec![ReadEvent::Skip {
                    reason: "bad_parquet_batch",
                    offset: row,
                    bytes: 0,
                }]
            }
        };
        // curate's own document files carry signals and verdicts: read them whole.
        if batch.column_by_name("verdict").is_some() && opts.text_field == "text" {
            let docs = crate::io::parquet::from_batch(&batch).unwrap_or_default();
            row += docs.len() as u64;
            return docs.into_iter().map(ReadEvent::Doc).collect();
        }
        let mut out = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let at = row;
            row += 1;
            let Some(text) = col_str(&batch, &opts.text_field, i) else {
                out.push(ReadEvent::Skip {
                    reason: "missing_text",
                    offset: at,
                    bytes: 0,
                });
                continue;
            };
            if text.len() > opts.max_record_bytes {
                out.push(ReadEvent::Skip {
                    reason: "too_large",
                    offset: at,
                    bytes: text.len() as u64,
                });
                continue;
            }
            let url = col_str(&batch, &opts.url_field, i).unwrap_or_default();
            let id = col_str(&batch, &opts.id_field, i)
                .unwrap_or_else(|| Document::content_id(&url, text.as_bytes()));
            let mut d = Document::new(id, text);
            d.url = url;
            d.source = SourceRef {
                file: source.clone(),
                offset: at,
            };
            for f in batch.schema().fields() {
                let n = f.name();
                if n == &opts.text_field || n == &opts.id_field || n == &opts.url_field {
                    continue;
                }
                if let Some(v) = col_str(&batch, n, i) {
                    d.metadata.insert(n.clone(), v);
                }
            }
            out.push(ReadEvent::Doc(d));
        }
        out
    });
    Ok(Box::new(iter))
}
