//! A run's stored document files (`docs/`, `dropped/`) read back through the one Parquet
//! reader: the first documents that match a condition, in stored order.
//!
//! `inspect` and the report's examples ask "the first k documents such that ...": each file is
//! scanned once for its key columns (source file, offset, id), the grouping columns and the
//! condition's columns (never the text), a bounded heap per group keeps the k smallest keys,
//! and only those rows are then read whole with a row selection. Memory is k rows per group
//! plus one batch per file being read, whatever the run's size.

use std::collections::{BTreeMap, BinaryHeap};

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{Field, Schema, SchemaRef};
use rayon::prelude::*;
use stages::{Document, Error, Result, Store};

use super::parquet::{from_batch, TextCol};
use super::row_groups::{rows_selection, ParquetFile};
use crate::query::{Bound, Condition};

/// Rows read per batch by these scans.
const BATCH_ROWS: usize = 4096;

/// The Parquet files of a run's kept (`docs/`) or dropped (`dropped/`) documents, sorted.
pub fn list(store: &dyn Store, table: &str) -> Result<Vec<String>> {
    let mut files: Vec<String> = store
        .list(table)
        .map_err(|e| Error::io(table, e))?
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .collect();
    files.sort();
    Ok(files)
}

/// The schema of a table made of `files`: every top-level column any of them has, in order of
/// first appearance (a column's type is that of its first file). Only footers are read.
pub fn table_schema(store: &dyn Store, files: &[String]) -> Result<Schema> {
    let schemas: Vec<SchemaRef> = files
        .par_iter()
        .map(|f| Ok(ParquetFile::from_store(store, f)?.schema().clone()))
        .collect::<Result<_>>()?;
    let mut fields: Vec<Field> = Vec::new();
    for s in &schemas {
        for f in s.fields() {
            if !fields.iter().any(|x| x.name() == f.name()) {
                fields.push(f.as_ref().clone().with_nullable(true));
            }
        }
    }
    Ok(Schema::new(fields))
}

/// Why [`first_rows`] failed: the condition (the user's to fix) or reading.
#[derive(Debug)]
pub enum RowsError {
    Condition(String),
    Read(Error),
}

impl From<Error> for RowsError {
    fn from(e: Error) -> Self {
        RowsError::Read(e)
    }
}

/// Stored order of a row: source file, offset, id; then where it is (file, row).
type Key = (String, i64, String, usize, usize);

/// The first `k` documents of `files` (by source file, source offset, id) for which `cond`
/// holds, per value of the `group_by` columns (one group, keyed `[]`, when there are none).
/// Groups come sorted; documents within one in stored order.
pub fn first_rows(
    store: &dyn Store,
    files: &[String],
    cond: Option<&Condition>,
    group_by: &[&str],
    k: usize,
) -> std::result::Result<BTreeMap<Vec<String>, Vec<Document>>, RowsError> {
    if k == 0 || files.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bound = match cond {
        Some(c) => Some(
            c.bind(&table_schema(store, files)?)
                .map_err(|e| RowsError::Condition(format!("{}: {e}", c.sql())))?,
        ),
        None => None,
    };
    // Pass 1, a file per task: the k smallest keys per group.
    let per_file: Vec<BTreeMap<Vec<String>, BinaryHeap<Key>>> = files
        .par_iter()
        .enumerate()
        .map(|(fi, path)| smallest_keys(store, fi, path, bound.as_ref(), group_by, k))
        .collect::<std::result::Result<_, _>>()?;
    let mut best: BTreeMap<Vec<String>, BinaryHeap<Key>> = BTreeMap::new();
    for m in per_file {
        for (g, heap) in m {
            let b = best.entry(g).or_default();
            for key in heap {
                push_bounded(b, key, k);
            }
        }
    }
    // Pass 2: read the chosen rows whole, a file at a time.
    let mut wanted: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for heap in best.values() {
        for key in heap.iter() {
            wanted.entry(key.3).or_default().push(key.4);
        }
    }
    let mut docs: BTreeMap<(usize, usize), Document> = wanted
        .into_par_iter()
        .map(|(fi, mut rows)| {
            rows.sort_unstable();
            rows.dedup();
            read_rows(store, &files[fi], &rows).map(|docs| {
                rows.into_iter()
                    .map(|r| (fi, r))
                    .zip(docs)
                    .collect::<Vec<_>>()
            })
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(best
        .into_iter()
        .map(|(g, heap)| {
            let list = heap
                .into_sorted_vec()
                .into_iter()
                .filter_map(|key| docs.remove(&(key.3, key.4)))
                .collect();
            (g, list)
        })
        .collect())
}

fn push_bounded(heap: &mut BinaryHeap<Key>, key: Key, k: usize) {
    if heap.len() < k {
        heap.push(key);
    } else if heap.peek().is_some_and(|top| key < *top) {
        heap.pop();
        heap.push(key);
    }
}

/// One file's k smallest keys per group among the rows that match.
fn smallest_keys(
    store: &dyn Store,
    fi: usize,
    path: &str,
    bound: Option<&Bound>,
    group_by: &[&str],
    k: usize,
) -> Result<BTreeMap<Vec<String>, BinaryHeap<Key>>> {
    let file = ParquetFile::from_store(store, path)?;
    let mut cols: Vec<&str> = vec!["source_file", "source_offset", "id"];
    cols.extend(group_by);
    if let Some(b) = bound {
        cols.extend(b.columns.iter().map(String::as_str));
    }
    let reader = file.batches(None, Some(&cols), None, BATCH_ROWS)?;
    let mut out: BTreeMap<Vec<String>, BinaryHeap<Key>> = BTreeMap::new();
    let mut row0 = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| Error::other(format!("{path}: {e}")))?;
        let n = batch.num_rows();
        let keep = match bound {
            Some(b) => b.eval(&batch)?,
            None => vec![true; n],
        };
        let text = |name: &str| batch.column_by_name(name).and_then(TextCol::new);
        let (sfile, id) = (text("source_file"), text("id"));
        let offset = batch
            .column_by_name("source_offset")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned());
        let groups: Vec<Option<TextCol>> = group_by.iter().map(|g| text(g)).collect();
        for (i, _) in keep.iter().enumerate().filter(|(_, &k)| k) {
            let g: Vec<String> = groups
                .iter()
                .map(|c| c.as_ref().and_then(|c| c.get(i)).unwrap_or("").to_string())
                .collect();
            let key = (
                sfile
                    .as_ref()
                    .and_then(|c| c.get(i))
                    .unwrap_or("")
                    .to_string(),
                offset
                    .as_ref()
                    .filter(|a| a.is_valid(i))
                    .map_or(0, |a| a.value(i)),
                id.as_ref().and_then(|c| c.get(i)).unwrap_or("").to_string(),
                fi,
                row0 + i,
            );
            push_bounded(out.entry(g).or_default(), key, k);
        }
        row0 += n;
    }
    Ok(out)
}

/// The documents at `rows` (sorted, distinct) of one stored file, in row order.
pub fn read_rows(store: &dyn Store, path: &str, rows: &[usize]) -> Result<Vec<Document>> {
    let file = ParquetFile::from_store(store, path)?;
    let total = file.num_rows() as usize;
    let rows32: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
    let reader = file.batches(None, None, Some(rows_selection(&rows32, total)?), 256)?;
    let mut out = Vec::with_capacity(rows.len());
    for batch in reader {
        let batch = batch.map_err(|e| Error::other(format!("{path}: {e}")))?;
        out.extend(from_batch(&batch)?);
    }
    if out.len() != rows.len() {
        return Err(Error::other(format!(
            "{path}: read {} of {} selected rows",
            out.len(),
            rows.len()
        )));
    }
    Ok(out)
}
