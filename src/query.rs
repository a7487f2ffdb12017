//! SQL over a run's outputs (DataFusion): the `docs` table (kept documents) and the `dropped`
//! table (documents dropped by any phase), with one column per signal.
//!
//! Signal columns have dotted names (`gopher_quality.word_count`); [`quote_signals`] lets users
//! write them bare in `--where` clauses.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use stages::{Error, Result, Store};

use crate::config::raw::StorageSection;

/// A DataFusion session over one run's outputs.
pub struct RunTables {
    pub ctx: SessionContext,
    /// Column names of the `docs` table.
    pub columns: Vec<String>,
    pub has_docs: bool,
    pub has_dropped: bool,
}

fn df_err(e: datafusion::error::DataFusionError) -> Error {
    Error::other(format!("query: {e}"))
}

/// Maps a store-relative path to what DataFusion reads (an `s3://` URL or a local path).
pub type Locate = Box<dyn Fn(&str) -> String + Send + Sync>;

/// A DataFusion session that can read a run output's files (the output's object store
/// registered when it is on S3), with `target_partitions` partitions per scan.
pub fn session(
    output: &str,
    storage: &StorageSection,
    target_partitions: usize,
) -> Result<(SessionContext, Locate)> {
    let mut cfg = SessionConfig::new()
        .with_target_partitions(target_partitions.max(1))
        .with_repartition_file_scans(target_partitions > 1);
    // Read strings as the types they were written with (not Utf8View): documents convert back.
    cfg.options_mut().execution.parquet.schema_force_view_types = false;
    let ctx = SessionContext::new_with_config(cfg);
    let locate = locator(&ctx, output, storage)?;
    Ok((ctx, locate))
}

/// What DataFusion reads for the store paths of the run output `output`, its object store
/// registered in `ctx` when it is on S3 (several outputs can share one session).
pub fn locator(ctx: &SessionContext, output: &str, storage: &StorageSection) -> Result<Locate> {
    Ok(if output.starts_with("s3://") {
        let (bucket, prefix) = crate::storage::s3::parse_uri(output)?;
        let client = crate::storage::s3::client(&bucket, storage)?;
        let url =
            url::Url::parse(&format!("s3://{bucket}")).map_err(|e| Error::other(e.to_string()))?;
        ctx.register_object_store(&url, client);
        Box::new(move |p: &str| {
            if prefix.is_empty() {
                format!("s3://{bucket}/{p}")
            } else {
                format!("s3://{bucket}/{prefix}/{p}")
            }
        })
    } else {
        let root = std::path::absolute(output).map_err(|e| Error::io(output, e))?;
        Box::new(move |p: &str| root.join(p).to_string_lossy().into_owned())
    })
}

/// Opens the `docs` and `dropped` tables of a run output (local folder or `s3://` prefix).
pub fn open(output: &str, storage: &StorageSection, store: &Arc<dyn Store>) -> Result<RunTables> {
    let (ctx, locate) = session(output, storage, 2)?;
    let list = |prefix: &str| -> Result<Vec<String>> {
        Ok(store
            .list(prefix)?
            .into_iter()
            .filter(|p| p.ends_with(".parquet"))
            .map(|p| locate(&p))
            .collect())
    };
    let docs = list("docs")?;
    let dropped = list("dropped")?;
    let mut columns = Vec::new();
    crate::storage::runtime().block_on(async {
        if !docs.is_empty() {
            let df = ctx
                .read_parquet(docs.clone(), ParquetReadOptions::default())
                .await
                .map_err(df_err)?;
            columns = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            ctx.register_table("docs", df.into_view()).map_err(df_err)?;
        }
        if !dropped.is_empty() {
            let df = ctx
                .read_parquet(dropped.clone(), ParquetReadOptions::default())
                .await
                .map_err(df_err)?;
            if columns.is_empty() {
                columns = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
            }
            ctx.register_table("dropped", df.into_view())
                .map_err(df_err)?;
        }
        Ok::<(), Error>(())
    })?;
    Ok(RunTables {
        ctx,
        columns,
        has_docs: !docs.is_empty(),
        has_dropped: !dropped.is_empty(),
    })
}

impl RunTables {
    /// Runs a SQL query and collects the batches.
    pub fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let sql = quote_signals(sql, &self.columns);
        crate::storage::runtime().block_on(async {
            let df = self.ctx.sql(&sql).await.map_err(df_err)?;
            df.collect().await.map_err(df_err)
        })
    }
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
}
