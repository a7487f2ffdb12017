//! The Arrow <-> document codec: document files have fixed columns (id, url, crawl_date,
//! source, text, metadata, verdict) plus one typed column per declared signal, zstd-compressed,
//! readable by pyarrow, DuckDB and DataFusion. Text and signals share row groups, so selection
//! reads signal columns only. [`TextCol`] and [`SignalCol`] read a column as text or as signal
//! values for every decoder (this file's `from_batch`, Parquet input, selection, the mix).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float32Array, Float32Builder, Float64Array,
    Float64Builder, Int64Array, Int64Builder, LargeStringArray, LargeStringBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use stages::signals::{SignalRef, SignalSpec, SignalType};
use stages::{Document, Error, ObjectWriter, Result, SourceRef, Verdict};

use super::DocSink;

/// Columns every document file has, before the signal columns.
pub const BASE_COLUMNS: &[&str] = &[
    "id",
    "url",
    "crawl_date",
    "source_file",
    "source_offset",
    "text",
    "html",
    "metadata",
    "verdict",
    "drop_stage",
    "drop_reason",
    "flags",
];

fn arrow_type(t: SignalType) -> DataType {
    match t {
        SignalType::F32 => DataType::Float32,
        SignalType::F64 => DataType::Float64,
        SignalType::I64 => DataType::Int64,
        SignalType::Bool => DataType::Boolean,
        SignalType::Str => DataType::Utf8,
    }
}

/// The Arrow schema of a document file with these signals.
pub fn schema(signals: &[SignalSpec], with_html: bool) -> SchemaRef {
    let mut f = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new(
            "crawl_date",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("source_file", DataType::Utf8, false),
        Field::new("source_offset", DataType::Int64, false),
        Field::new("text", DataType::LargeUtf8, false),
    ];
    if with_html {
        f.push(Field::new("html", DataType::LargeUtf8, true));
    }
    f.extend([
        Field::new("metadata", DataType::Utf8, false),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("drop_stage", DataType::Utf8, true),
        Field::new("drop_reason", DataType::Utf8, true),
        Field::new("flags", DataType::Utf8, true),
    ]);
    for s in signals {
        f.push(Field::new(s.name.as_ref(), arrow_type(s.ty), true));
    }
    Arc::new(Schema::new(f))
}

/// Builds a record batch of documents.
pub fn to_batch(
    schema: &SchemaRef,
    signals: &[SignalSpec],
    docs: &[&Document],
) -> Result<RecordBatch> {
    let n = docs.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let mut sb = StringBuilder::with_capacity(n, n * 40);
    docs.iter().for_each(|d| sb.append_value(&d.id));
    cols.push(Arc::new(sb.finish()));
    let mut sb = StringBuilder::with_capacity(n, n * 60);
    docs.iter().for_each(|d| sb.append_value(&d.url));
    cols.push(Arc::new(sb.finish()));
    // Milliseconds: Parquet has no second-precision timestamp type that every reader maps back.
    let mut tb = TimestampMillisecondBuilder::with_capacity(n);
    docs.iter()
        .for_each(|d| tb.append_option(d.crawl_date.map(|s| s * 1000)));
    cols.push(Arc::new(tb.finish().with_timezone("UTC")));
    let mut sb = StringBuilder::with_capacity(n, n * 40);
    docs.iter().for_each(|d| sb.append_value(&*d.source.file));
    cols.push(Arc::new(sb.finish()));
    let mut ib = Int64Builder::with_capacity(n);
    docs.iter()
        .for_each(|d| ib.append_value(d.source.offset as i64));
    cols.push(Arc::new(ib.finish()));
    let total: usize = docs.iter().map(|d| d.text().len()).sum();
    let mut lb = LargeStringBuilder::with_capacity(n, total);
    docs.iter().for_each(|d| lb.append_value(d.text()));
    cols.push(Arc::new(lb.finish()));
    if schema.column_with_name("html").is_some() {
        let total: usize = docs
            .iter()
            .map(|d| d.html.as_ref().map_or(0, |h| h.len()))
            .sum();
        let mut lb = LargeStringBuilder::with_capacity(n, total);
        docs.iter()
            .for_each(|d| lb.append_option(d.html.as_deref()));
        cols.push(Arc::new(lb.finish()));
    }
    let mut sb = StringBuilder::with_capacity(n, n * 20);
    for d in docs {
        sb.append_value(
            serde_json::to_string(&d.metadata).map_err(|e| Error::other(e.to_string()))?,
        );
    }
    cols.push(Arc::new(sb.finish()));
    let mut v = StringBuilder::with_capacity(n, n * 5);
    let mut st = StringBuilder::with_capacity(n, 0);
    let mut re = StringBuilder::with_capacity(n, 0);
    for d in docs {
        match &d.verdict {
            Verdict::Kept => {
                v.append_value("kept");
                st.append_null();
                re.append_null();
            }
            Verdict::Dropped { stage, reason } => {
                v.append_value("dropped");
                st.append_value(&**stage);
                re.append_value(&**reason);
            }
        }
    }
    cols.push(Arc::new(v.finish()));
    cols.push(Arc::new(st.finish()));
    cols.push(Arc::new(re.finish()));
    let mut fl = StringBuilder::with_capacity(n, 0);
    docs.iter()
        .for_each(|d| fl.append_option(super::flags_text(d)));
    cols.push(Arc::new(fl.finish()));
    for s in signals {
        let name = s.name.as_ref();
        let col: ArrayRef = match s.ty {
            SignalType::F32 => {
                let mut b = Float32Builder::with_capacity(n);
                docs.iter()
                    .for_each(|d| b.append_option(d.signals.f64(name).map(|x| x as f32)));
                Arc::new(b.finish())
            }
            SignalType::F64 => {
                let mut b = Float64Builder::with_capacity(n);
                docs.iter()
                    .for_each(|d| b.append_option(d.signals.f64(name)));
                Arc::new(b.finish())
            }
            SignalType::I64 => {
                let mut b = Int64Builder::with_capacity(n);
                docs.iter()
                    .for_each(|d| b.append_option(d.signals.i64(name)));
                Arc::new(b.finish())
            }
            SignalType::Bool => {
                let mut b = BooleanBuilder::with_capacity(n);
                docs.iter()
                    .for_each(|d| b.append_option(d.signals.bool(name)));
                Arc::new(b.finish())
            }
            SignalType::Str => {
                let mut b = StringBuilder::with_capacity(n, n * 4);
                docs.iter()
                    .for_each(|d| b.append_option(d.signals.str(name)));
                Arc::new(b.finish())
            }
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| Error::other(format!("building record batch: {e}")))
}

/// Writer properties shared by every document file (fixed, so output bytes are reproducible).
pub fn writer_properties(level: i32, row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(level).unwrap_or_default(),
        ))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_created_by(format!("curate {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes documents of one partition to a Parquet object.
pub struct ParquetSink {
    writer: Option<ArrowWriter<Counted>>,
    schema: SchemaRef,
    signals: Vec<SignalSpec>,
    docs: u64,
}

/// The object being written, counting its bytes: the footer is written by `into_inner`, after
/// which the Arrow writer can no longer say how big the file is.
struct Counted {
    inner: Box<dyn ObjectWriter>,
    bytes: u64,
}

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Adapter: `ArrowWriter` needs `Write + Send`; `Box<dyn ObjectWriter>` is both.
impl ParquetSink {
    pub fn new(
        out: Box<dyn ObjectWriter>,
        signals: Vec<SignalSpec>,
        with_html: bool,
        level: i32,
        row_group_rows: usize,
    ) -> Result<Self> {
        let schema = schema(&signals, with_html);
        let writer = ArrowWriter::try_new(
            Counted {
                inner: out,
                bytes: 0,
            },
            schema.clone(),
            Some(writer_properties(level, row_group_rows)),
        )
        .map_err(|e| Error::other(format!("parquet writer: {e}")))?;
        Ok(ParquetSink {
            writer: Some(writer),
            schema,
            signals,
            docs: 0,
        })
    }
}

impl DocSink for ParquetSink {
    fn write(&mut self, docs: &[&Document]) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let batch = to_batch(&self.schema, &self.signals, docs)?;
        self.writer
            .as_mut()
            .expect("open")
            .write(&batch)
            .map_err(|e| Error::other(format!("parquet write: {e}")))?;
        self.docs += docs.len() as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(u64, u64)> {
        let w = self.writer.take().expect("open");
        let out = w
            .into_inner()
            .map_err(|e| Error::other(format!("parquet close: {e}")))?;
        let total = out.bytes.max(1);
        out.inner.finish()?;
        Ok((self.docs, total))
    }
}

/// Reads document files back (intermediate phases, selection, inspection).
pub struct ParquetDocs {
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pending: std::vec::IntoIter<Document>,
    source: String,
}

impl ParquetDocs {
    /// Every document of a file in memory, in batches of `batch_rows`.
    pub fn open(bytes: bytes::Bytes, source: &str, batch_rows: usize) -> Result<Self> {
        Self::of(
            &super::row_groups::ParquetFile::from_bytes(bytes, source)?,
            batch_rows,
        )
    }

    /// Every document of an open file, in batches of `batch_rows`.
    pub fn of(file: &super::row_groups::ParquetFile, batch_rows: usize) -> Result<Self> {
        Ok(ParquetDocs {
            reader: file.batches(None, None, None, batch_rows)?,
            pending: Vec::new().into_iter(),
            source: file.name().to_string(),
        })
    }
}

impl Iterator for ParquetDocs {
    type Item = Result<Document>;
    fn next(&mut self) -> Option<Result<Document>> {
        loop {
            if let Some(d) = self.pending.next() {
                return Some(Ok(d));
            }
            match self.reader.next()? {
                Ok(batch) => match from_batch(&batch) {
                    Ok(docs) => self.pending = docs.into_iter(),
                    Err(e) => return Some(Err(e)),
                },
                Err(e) => return Some(Err(Error::other(format!("{}: {e}", self.source)))),
            }
        }
    }
}

fn str_col<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
}

fn get_str(a: Option<&StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| !a.is_null(i)).map(|a| a.value(i))
}

/// A column read as text, whatever its type: `Utf8` and `LargeUtf8` as they are; string
/// views, dictionaries, numbers, booleans and dates cast to `Utf8`.
pub struct TextCol(ArrayRef);

impl TextCol {
    /// `None` when the column does not cast to text.
    pub fn new(a: &ArrayRef) -> Option<TextCol> {
        match a.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => Some(TextCol(a.clone())),
            _ => arrow::compute::cast(a, &DataType::Utf8).ok().map(TextCol),
        }
    }

    /// Any column as text: nested types (lists, structs, maps) as Arrow displays them.
    pub fn display(a: &ArrayRef) -> Option<TextCol> {
        TextCol::new(a).or_else(|| {
            let f = arrow::util::display::ArrayFormatter::try_new(
                a.as_ref(),
                &arrow::util::display::FormatOptions::default(),
            )
            .ok()?;
            let mut b = StringBuilder::with_capacity(a.len(), a.len() * 8);
            for i in 0..a.len() {
                if a.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(f.value(i).to_string());
                }
            }
            Some(TextCol(Arc::new(b.finish())))
        })
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        if self.0.is_null(i) {
            return None;
        }
        let any = self.0.as_any();
        match any.downcast_ref::<StringArray>() {
            Some(a) => Some(a.value(i)),
            None => any.downcast_ref::<LargeStringArray>().map(|a| a.value(i)),
        }
    }
}

/// A typed view of one signal column (the types [`schema`] writes).
pub enum SignalCol<'b> {
    F32(&'b Float32Array),
    F64(&'b Float64Array),
    I64(&'b Int64Array),
    Bool(&'b BooleanArray),
    Str(&'b StringArray),
}

impl<'b> SignalCol<'b> {
    /// `None` for a column of another type.
    pub fn new(a: &'b dyn Array) -> Option<SignalCol<'b>> {
        let any = a.as_any();
        if let Some(a) = any.downcast_ref::<Float32Array>() {
            Some(SignalCol::F32(a))
        } else if let Some(a) = any.downcast_ref::<Float64Array>() {
            Some(SignalCol::F64(a))
        } else if let Some(a) = any.downcast_ref::<Int64Array>() {
            Some(SignalCol::I64(a))
        } else if let Some(a) = any.downcast_ref::<BooleanArray>() {
            Some(SignalCol::Bool(a))
        } else {
            any.downcast_ref::<StringArray>().map(SignalCol::Str)
        }
    }

    /// Row `i`'s value (`None` when null). `F32` widens to `F64`, as signals hold it.
    pub fn get(&self, i: usize) -> Option<SignalRef<'b>> {
        match self {
            SignalCol::F32(a) => (!a.is_null(i)).then(|| SignalRef::F64(a.value(i) as f64)),
            SignalCol::F64(a) => (!a.is_null(i)).then(|| SignalRef::F64(a.value(i))),
            SignalCol::I64(a) => (!a.is_null(i)).then(|| SignalRef::I64(a.value(i))),
            SignalCol::Bool(a) => (!a.is_null(i)).then(|| SignalRef::Bool(a.value(i))),
            SignalCol::Str(a) => (!a.is_null(i)).then(|| SignalRef::Str(a.value(i))),
        }
    }
}

/// Converts a record batch of a document file into documents.
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<Document>> {
    let n = batch.num_rows();
    let id = str_col(batch, "id");
    let url = str_col(batch, "url");
    let date = batch
        .column_by_name("crawl_date")
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>());
    let sfile = str_col(batch, "source_file");
    let soff = batch
        .column_by_name("source_offset")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>());
    let text = batch
        .column_by_name("text")
        .and_then(TextCol::new)
        .ok_or_else(|| Error::other("document file without a text column"))?;
    let html = batch.column_by_name("html").and_then(TextCol::new);
    let meta = str_col(batch, "metadata");
    let verdict = str_col(batch, "verdict");
    let dstage = str_col(batch, "drop_stage");
    let dreason = str_col(batch, "drop_reason");
    let flags = str_col(batch, "flags");
    let schema = batch.schema();
    let sig_cols: Vec<(SignalCol, &str)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| !BASE_COLUMNS.contains(&f.name().as_str()))
        .filter_map(|(f, c)| Some((SignalCol::new(c.as_ref())?, f.name().as_str())))
        .collect();
    let mut files: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut d = Document::new(
            get_str(id, i).unwrap_or_default(),
            text.get(i).unwrap_or_default(),
        );
        d.url = get_str(url, i).unwrap_or_default().to_string();
        d.crawl_date = date
            .filter(|a| !a.is_null(i))
            .map(|a| a.value(i).div_euclid(1000));
        let f = get_str(sfile, i).unwrap_or_default();
        let file = files
            .entry(f.to_string())
            .or_insert_with(|| f.into())
            .clone();
        d.source = SourceRef {
            file,
            offset: soff
                .filter(|a| !a.is_null(i))
                .map_or(0, |a| a.value(i) as u64),
        };
        d.html = html.as_ref().and_then(|h| h.get(i)).map(str::to_string);
        if let Some(m) = get_str(meta, i) {
            d.metadata = serde_json::from_str(m).unwrap_or_default();
        }
        if get_str(verdict, i) == Some("dropped") {
            d.verdict = Verdict::Dropped {
                stage: get_str(dstage, i).unwrap_or_default().into(),
                reason: get_str(dreason, i).unwrap_or_default().into(),
            };
        }
        if let Some(f) = get_str(flags, i) {
            d.flags = super::parse_flags(f);
        }
        for (c, name) in &sig_cols {
            if let Some(v) = c.get(i) {
                d.signals.set(name.to_string(), v.to_owned());
            }
        }
        out.push(d);
    }
    Ok(out)
}
