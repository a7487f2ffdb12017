//! What the report draws from the stored documents, read through the one Parquet reader
//! ([`crate::io::row_groups`]): per numeric signal a histogram of kept and dropped documents,
//! per string signal its most frequent values, and examples per drop reason.
//!
//! Two passes over the signal columns only (never the text), a file per task: the first finds
//! each numeric signal's range and counts string values, the second bins. Files are merged in
//! order, so the figures do not depend on the thread count.

use std::collections::HashMap;

use arrow::array::Array;
use rayon::prelude::*;
use stages::{Document, Result, Store};

use crate::io::parquet::{SignalCol, BASE_COLUMNS};
use crate::io::row_groups::ParquetFile;
use crate::io::stored;

/// Rows per batch of the scans.
const BATCH_ROWS: usize = 8192;
/// A string signal with more distinct values than this is not drawn (its counts would grow
/// with the run, and a bar chart of so many values says nothing).
const MAX_VALUES: usize = 50_000;

/// A run's stored document files, as the report reads them.
pub struct StoredDocs<'a> {
    pub store: &'a dyn Store,
    pub docs: Vec<String>,
    pub dropped: Vec<String>,
}

/// One signal as the report draws it.
pub enum Card {
    /// Bins of `width` from `lo`; documents with a value, kept and dropped per bin.
    Histogram {
        n: u64,
        lo: f64,
        width: f64,
        kept: Vec<u64>,
        dropped: Vec<u64>,
    },
    /// The most frequent values with their document counts, most frequent first.
    Values(Vec<(String, u64)>),
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Numeric,
    Text,
}

/// Pass-1 figures of one column in one file.
#[derive(Clone, Default)]
struct Range {
    lo: f64,
    hi: f64,
    n: u64,
    values: HashMap<String, u64>,
    too_many: bool,
}

impl Range {
    fn merge(&mut self, o: Range) {
        if o.n > 0 {
            if self.n == 0 {
                (self.lo, self.hi) = (o.lo, o.hi);
            } else {
                self.lo = self.lo.min(o.lo);
                self.hi = self.hi.max(o.hi);
            }
        }
        self.n += o.n;
        self.too_many |= o.too_many;
        if !self.too_many {
            for (v, c) in o.values {
                *self.values.entry(v).or_default() += c;
            }
            if self.values.len() > MAX_VALUES {
                self.too_many = true;
            }
        }
        if self.too_many {
            self.values = HashMap::new();
        }
    }
}

fn value_f64(col: &SignalCol, i: usize) -> Option<f64> {
    match col {
        SignalCol::F32(a) => a.is_valid(i).then(|| a.value(i) as f64),
        SignalCol::F64(a) => a.is_valid(i).then(|| a.value(i)),
        SignalCol::I64(a) => a.is_valid(i).then(|| a.value(i) as f64),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

impl StoredDocs<'_> {
    /// Lists a run's `docs/` and `dropped/` files.
    pub fn open(store: &dyn Store) -> Result<StoredDocs<'_>> {
        Ok(StoredDocs {
            store,
            docs: stored::list(store, "docs")?,
            dropped: stored::list(store, "dropped")?,
        })
    }

    /// Every file with whether it holds dropped documents, kept ones first.
    fn files(&self) -> Vec<(&str, bool)> {
        self.docs
            .iter()
            .map(|f| (f.as_str(), false))
            .chain(self.dropped.iter().map(|f| (f.as_str(), true)))
            .collect()
    }

    /// The signal columns (not the base columns) in order of first appearance, with their kind.
    fn columns(&self) -> Result<Vec<(String, Kind)>> {
        let all: Vec<String> = self.files().iter().map(|f| f.0.to_string()).collect();
        let schema = stored::table_schema(self.store, &all)?;
        use arrow::datatypes::DataType as T;
        Ok(schema
            .fields()
            .iter()
            .filter(|f| !BASE_COLUMNS.contains(&f.name().as_str()))
            .filter_map(|f| {
                let kind = match f.data_type() {
                    T::Float32 | T::Float64 | T::Int64 => Kind::Numeric,
                    T::Utf8 => Kind::Text,
                    _ => return None,
                };
                Some((f.name().clone(), kind))
            })
            .collect())
    }

    /// The cards of every signal column that has values, in column order.
    pub fn signal_cards(&self, bins: usize) -> Result<Vec<(String, Card)>> {
        let cols = self.columns()?;
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let files = self.files();
        // Pass 1: ranges and value counts.
        let parts: Vec<Vec<Range>> = files
            .par_iter()
            .map(|(path, _)| {
                let mut r = vec![Range::default(); cols.len()];
                self.for_each_batch(path, &names, |ci, col, n| {
                    let acc = &mut r[ci];
                    for i in 0..n {
                        if cols[ci].1 == Kind::Numeric {
                            if let Some(v) = value_f64(col, i) {
                                if acc.n == 0 {
                                    (acc.lo, acc.hi) = (v, v);
                                } else {
                                    acc.lo = acc.lo.min(v);
                                    acc.hi = acc.hi.max(v);
                                }
                                acc.n += 1;
                            }
                        } else if let SignalCol::Str(a) = col {
                            if a.is_valid(i) && !acc.too_many {
                                acc.n += 1;
                                *acc.values.entry(a.value(i).to_string()).or_default() += 1;
                                if acc.values.len() > MAX_VALUES {
                                    acc.too_many = true;
                                    acc.values = HashMap::new();
                                }
                            }
                        }
                    }
                })?;
                Ok(r)
            })
            .collect::<Result<_>>()?;
        let mut ranges = vec![Range::default(); cols.len()];
        for p in parts {
            for (acc, r) in ranges.iter_mut().zip(p) {
                acc.merge(r);
            }
        }
        // Bin layout per numeric column: integer-like small ranges get one bin per value.
        let layout: Vec<Option<(f64, f64, usize)>> = cols
            .iter()
            .zip(&ranges)
            .map(|((_, kind), r)| {
                if *kind != Kind::Numeric || r.n == 0 {
                    return None;
                }
                let (lo, hi) = (r.lo, r.hi);
                let mut nb = bins.max(1);
                let mut width = (hi - lo) / nb as f64;
                if hi - lo < nb as f64 && lo.fract() == 0.0 && hi.fract() == 0.0 {
                    nb = (hi - lo) as usize + 1;
                    width = 1.0;
                }
                if width <= 0.0 {
                    (width, nb) = (1.0, 1);
                }
                Some((lo, width, nb))
            })
            .collect();
        // Pass 2: bins, over the numeric columns that have values.
        let numeric: Vec<usize> = (0..cols.len()).filter(|&c| layout[c].is_some()).collect();
        let num_names: Vec<&str> = numeric.iter().map(|&c| names[c]).collect();
        let zero = || -> Vec<Vec<u64>> {
            numeric
                .iter()
                .map(|&c| vec![0; 2 * layout[c].expect("numeric").2])
                .collect()
        };
        let binned: Vec<Vec<Vec<u64>>> = files
            .par_iter()
            .map(|(path, dropped)| {
                let mut counts = zero();
                if num_names.is_empty() {
                    return Ok(counts);
                }
                self.for_each_batch(path, &num_names, |k, col, n| {
                    let (lo, width, nb) = layout[numeric[k]].expect("numeric");
                    let base = if *dropped { nb } else { 0 };
                    for i in 0..n {
                        if let Some(v) = value_f64(col, i) {
                            let b = (((v - lo) / width).floor().max(0.0) as usize).min(nb - 1);
                            counts[k][base + b] += 1;
                        }
                    }
                })?;
                Ok(counts)
            })
            .collect::<Result<_>>()?;
        let mut totals = zero();
        for part in binned {
            for (t, p) in totals.iter_mut().zip(part) {
                for (a, b) in t.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
        let mut totals = totals.into_iter();
        let mut out = Vec::new();
        for (ci, ((name, kind), r)) in cols.into_iter().zip(ranges).enumerate() {
            match kind {
                Kind::Numeric => {
                    let Some((lo, width, nb)) = layout[ci] else {
                        continue;
                    };
                    let mut both = totals.next().expect("a bin row per numeric column");
                    let dropped = both.split_off(nb);
                    out.push((
                        name,
                        Card::Histogram {
                            n: r.n,
                            lo,
                            width,
                            kept: both,
                            dropped,
                        },
                    ));
                }
                Kind::Text => {
                    if r.too_many || r.values.is_empty() {
                        continue;
                    }
                    let mut v: Vec<(String, u64)> = r.values.into_iter().collect();
                    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    v.truncate(15);
                    out.push((name, Card::Values(v)));
                }
            }
        }
        Ok(out)
    }

    /// Calls `f(index in columns, column, rows)` for each batch of `path` and each of `columns`
    /// the file has.
    fn for_each_batch(
        &self,
        path: &str,
        columns: &[&str],
        mut f: impl FnMut(usize, &SignalCol, usize),
    ) -> Result<()> {
        let file = ParquetFile::from_store(self.store, path)?;
        for batch in file.batches(None, Some(columns), None, BATCH_ROWS)? {
            let batch = batch.map_err(|e| stages::Error::other(format!("{path}: {e}")))?;
            for (ci, name) in columns.iter().enumerate() {
                if let Some(col) = batch
                    .column_by_name(name)
                    .and_then(|c| SignalCol::new(c.as_ref()))
                {
                    f(ci, &col, batch.num_rows());
                }
            }
        }
        Ok(())
    }

    /// The first `k` dropped documents (stored order) of each drop stage and reason.
    pub fn drop_examples(&self, k: usize) -> Result<HashMap<(String, String), Vec<Document>>> {
        let found = stored::first_rows(
            self.store,
            &self.dropped,
            None,
            &["drop_stage", "drop_reason"],
            k,
        )
        .map_err(|e| match e {
            stored::RowsError::Condition(m) => stages::Error::other(m),
            stored::RowsError::Read(e) => e,
        })?;
        Ok(found
            .into_iter()
            .filter_map(|(g, docs)| match <[String; 2]>::try_from(g) {
                Ok([s, r]) => Some(((s, r), docs)),
                Err(_) => None,
            })
            .collect())
    }
}
