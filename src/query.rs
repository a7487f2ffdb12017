//! SQL conditions over stored documents (`inspect --where`, a mix's `where`), evaluated on the
//! batches of the one Parquet reader ([`crate::io::row_groups`]).
//!
//! DataFusion is the expression engine here, not a reader: a condition is parsed and
//! type-checked against a file's schema, tells which columns it needs (so the reader projects
//! them along with the caller's own), and is evaluated batch by batch; a column that one file
//! lacks reads as null there. Signal columns have
//! dotted names (`gopher_quality.word_count`); [`quote_signals`] lets users write them bare.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::DFSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use stages::{Error, Result};

/// A SQL condition as the user wrote it (bare signal names are quoted per table schema).
pub struct Condition {
    sql: String,
    ctx: SessionContext,
}

/// A condition bound to a table's schema: the columns it reads and its compiled form.
pub struct Bound {
    /// Top-level columns the condition reads (project them with the caller's own).
    pub columns: Vec<String>,
    /// The table's fields of those columns, in that order: what the expression is compiled for.
    schema: SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
}

impl Condition {
    pub fn new(sql: &str) -> Condition {
        Condition {
            sql: sql.to_string(),
            ctx: SessionContext::new(),
        }
    }

    /// The condition as written.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// Parses and type-checks the condition against a table's schema (every column any of its
    /// files has: [`crate::io::stored::table_schema`]). The error is the user's (unknown
    /// column, syntax, not a boolean): callers report it as configuration.
    pub fn bind(&self, table: &Schema) -> std::result::Result<Bound, String> {
        let df = DFSchema::try_from(table.clone()).map_err(|e| e.to_string())?;
        let names: Vec<String> = table.fields().iter().map(|f| f.name().clone()).collect();
        let expr = self
            .ctx
            .parse_sql_expr(&quote_signals(&self.sql, &names), &df)
            .map_err(|e| e.to_string())?;
        let mut columns: Vec<String> = expr
            .column_refs()
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        columns.sort();
        columns.dedup();
        let fields: Vec<Field> = columns
            .iter()
            .filter_map(|c| table.field_with_name(c).ok().cloned())
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let sub = DFSchema::try_from(schema.as_ref().clone()).map_err(|e| e.to_string())?;
        let expr = self
            .ctx
            .create_physical_expr(expr, &sub)
            .map_err(|e| e.to_string())?;
        match expr.data_type(&schema) {
            Ok(DataType::Boolean | DataType::Null) => {}
            Ok(t) => return Err(format!("not a condition: it gives {t}, not true or false")),
            Err(e) => return Err(e.to_string()),
        }
        Ok(Bound {
            columns,
            schema,
            expr,
        })
    }
}

impl Bound {
    /// Whether each row of `batch` (one file's rows, projected to at least the columns it has
    /// of [`Bound::columns`]) satisfies the condition. A column the file lacks is null, as
    /// in a table of files with different columns; null counts as false.
    pub fn eval(&self, batch: &RecordBatch) -> Result<Vec<bool>> {
        let n = batch.num_rows();
        let cols: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .map(|f| match batch.column_by_name(f.name()) {
                Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
                Some(c) => arrow::compute::cast(c, f.data_type())
                    .map_err(|e| Error::other(format!("condition: column {}: {e}", f.name()))),
                None => Ok(new_null_array(f.data_type(), n)),
            })
            .collect::<Result<_>>()?;
        let input = RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )
        .map_err(|e| Error::other(format!("condition: {e}")))?;
        let v = self
            .expr
            .evaluate(&input)
            .and_then(|v| v.into_array(n))
            .map_err(df_err)?;
        if let Some(b) = v.as_any().downcast_ref::<BooleanArray>() {
            Ok((0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect())
        } else if v.null_count() == v.len() {
            Ok(vec![false; n])
        } else {
            Err(Error::other(format!(
                "condition gave {}, not a boolean",
                v.data_type()
            )))
        }
    }
}

fn df_err(e: datafusion::error::DataFusionError) -> Error {
    Error::other(format!("condition: {e}"))
}

/// Double-quotes known dotted column names written bare in SQL (outside string literals and
/// quoted identifiers), so that `quality.hq < 0.2` means the column `"quality.hq"`.
pub fn quote_signals(sql: &str, columns: &[String]) -> String {
    let mut names: Vec<&String> = columns.iter().filter(|c| c.contains('.')).collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'.';
    while i < b.len() {
        let c = b[i];
        if c == b'\'' || c == b'"' {
            let end = sql[i + 1..]
                .find(c as char)
                .map_or(b.len(), |e| i + 1 + e + 1);
            out.push_str(&sql[i..end]);
            i = end;
            continue;
        }
        if i == 0 || !ident(b[i - 1]) {
            if let Some(n) = names.iter().find(|n| {
                sql[i..].starts_with(n.as_str()) && !b.get(i + n.len()).is_some_and(|&c| ident(c))
            }) {
                out.push('"');
                out.push_str(n);
                out.push('"');
                i += n.len();
                continue;
            }
        }
        let ch = sql[i..].chars().next().expect("char");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, StringArray};
    use arrow::datatypes::Field;

    #[test]
    fn quotes_bare_signal_names_only() {
        let cols = vec![
            "id".to_string(),
            "quality.hq".to_string(),
            "quality.hq_raw".to_string(),
            "gopher.words".to_string(),
        ];
        assert_eq!(
            quote_signals("quality.hq < 0.2", &cols),
            "\"quality.hq\" < 0.2"
        );
        assert_eq!(
            quote_signals("quality.hq_raw>1 and gopher.words=3", &cols),
            "\"quality.hq_raw\">1 and \"gopher.words\"=3"
        );
        assert_eq!(
            quote_signals("\"quality.hq\" = 'quality.hq'", &cols),
            "\"quality.hq\" = 'quality.hq'"
        );
        assert_eq!(quote_signals("x.quality.hq = 1", &cols), "x.quality.hq = 1");
    }

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("quality.hq", DataType::Float32, true),
            Field::new("langid.lang", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Float32Array::from(vec![
                    Some(0.1),
                    Some(0.5),
                    None,
                    Some(0.05),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("en"),
                    Some("en"),
                    Some("en"),
                    Some("de"),
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn evaluates_on_batches_with_nulls_false_and_coerced_types() {
        let b = batch();
        let c = Condition::new("quality.hq < 0.2 AND langid.lang = 'en'");
        let bound = c.bind(&b.schema()).unwrap();
        assert_eq!(bound.columns, vec!["langid.lang", "quality.hq"]);
        // Evaluated on the projection the reader yields (only the columns it reads).
        let proj = b.project(&[2, 1]).unwrap();
        assert_eq!(bound.eval(&proj).unwrap(), vec![true, false, false, false]);
        // A file without one of the columns: null there, so the condition is false.
        let without = b.project(&[0, 2]).unwrap();
        assert_eq!(bound.eval(&without).unwrap(), vec![false; 4]);
        let or = Condition::new("quality.hq < 0.2 OR langid.lang = 'de'")
            .bind(&b.schema())
            .unwrap();
        assert_eq!(or.eval(&without).unwrap(), vec![false, false, false, true]);
    }

    #[test]
    fn user_errors_name_the_problem() {
        let b = batch();
        let e = Condition::new("nosuch > 1")
            .bind(&b.schema())
            .err()
            .unwrap();
        assert!(e.contains("nosuch"), "{e}");
        let e = Condition::new("quality.hq + 1")
            .bind(&b.schema())
            .err()
            .unwrap();
        assert!(e.contains("not a condition"), "{e}");
        assert!(Condition::new("quality.hq <").bind(&b.schema()).is_err());
    }
}
