//! The side files of `dedup.semantic` under `work/<stage>/`, fixed-width little-endian rows
//! behind an 16-byte header (magic, two u32):
//!
//! | file | written by | rows |
//! |---|---|---|
//! | `emb/part-P.bin` + `emb/part-P.json` (row count) | collector of partition P | quality f32, chars u32, code, payload |
//! | `plan.json`, `centroids.bin` | step `centroids` | the two-level centroid tree ([`Tree`](super::kmeans::Tree)) |
//! | `groups/g-G/range-R.bin` | step `assign`, task R | row u32, cluster u32, quality f32, chars u32, key u32, partition u32, code, payload; sorted by (cluster, key, partition, row) |
//! | `decisions/g-G/range-R.bin` | step `dedup`, task G | an index of 257 u64 (rows before each partition of the range), then row u32, cluster u32, nearest_sim f32, verified_sim f32, dropped u32, sorted by (partition, row) |
//!
//! The *payload* is a fixed number of bytes per row (the header's second number; 0 when the
//! stage verifies nothing) that the steps carry from the collector to the dedup step
//! untouched: the verifier's token ids ([`put_tokens`]) when `verify_model` is set.
//!
//! Side files are per *range* of [`RANGE`] partitions, not per partition: their number and the
//! readers a dedup task opens grow with partitions / 256 (as MinHash's steps do), and an
//! applier reads its own rows of a decision file by two ranged reads (index, then its slice).
//!
//! An embedding is stored as a *code*: a scale f32 and `dim` int8 components (unit vectors:
//! 260 B at 256 dims instead of 1 KB; the cosine error is about 1e-3, far below the margins
//! dedup thresholds work at). Readers dequantize and renormalize, so identical codes give
//! identical vectors wherever they are read. Clusters are dealt to `groups` (cluster mod
//! groups); one dedup task streams its group cluster by cluster.

use std::io::{self, Read, Write};

use stages::{Error, Result, Store};

pub const EMB_MAGIC: &[u8; 8] = b"CSEMEMB2";
pub const GROUP_MAGIC: &[u8; 8] = b"CSEMGRP2";
pub const DECISION_MAGIC: &[u8; 8] = b"CSEMDEC2";
/// Bytes of one decision row.
pub const DECISION_ROW: usize = 20;
pub const CENTROID_MAGIC: &[u8; 8] = b"CSEMTRE1";

pub fn emb_path(dir: &str, p: usize) -> String {
    format!("{dir}/emb/part-{p:05}.bin")
}
pub fn emb_meta_path(dir: &str, p: usize) -> String {
    format!("{dir}/emb/part-{p:05}.json")
}
/// Most partitions per range of side files (fewer when partitions are big: [`Plan::range`]).
pub const RANGE: usize = 256;
pub fn group_path(dir: &str, g: usize, range: usize) -> String {
    format!("{dir}/groups/g-{g:05}/range-{range:05}.bin")
}
pub fn decision_path(dir: &str, g: usize, range: usize) -> String {
    format!("{dir}/decisions/g-{g:05}/range-{range:05}.bin")
}

/// Bytes of a decision file's header and index.
pub const DECISION_INDEX: usize = 16 + (RANGE + 1) * 8;

/// One decision: `(partition, row, cluster, nearest_sim, verified_sim, dropped)`.
pub type DecisionRow = (u32, u32, u32, f32, f32, u32);

/// A decision file of one range from its rows (any order; partitions `first..first + RANGE`
/// at most).
pub fn decision_bytes(first: usize, rows: &mut [DecisionRow]) -> Vec<u8> {
    rows.sort_by_key(|r| (r.0, r.1));
    let mut before = vec![0u64; RANGE + 1];
    for r in rows.iter() {
        before[r.0 as usize - first + 1] += 1;
    }
    for i in 1..=RANGE {
        before[i] += before[i - 1];
    }
    let mut out = Vec::with_capacity(DECISION_INDEX + DECISION_ROW * rows.len());
    out.extend_from_slice(&header(DECISION_MAGIC, RANGE as u32, 0));
    before
        .iter()
        .for_each(|b| out.extend_from_slice(&b.to_le_bytes()));
    for &(_, row, cluster, sim, verified, drop) in rows.iter() {
        out.extend_from_slice(&row.to_le_bytes());
        out.extend_from_slice(&cluster.to_le_bytes());
        out.extend_from_slice(&sim.to_le_bytes());
        out.extend_from_slice(&verified.to_le_bytes());
        out.extend_from_slice(&drop.to_le_bytes());
    }
    out
}

/// The rows of the `slot`-th partition of one decision file's range ([`DECISION_ROW`] bytes
/// each: row, cluster, nearest_sim, verified_sim, dropped), by two ranged reads; empty when the
/// file does not exist.
pub fn read_decisions(store: &dyn Store, path: &str, slot: usize) -> Result<Vec<u8>> {
    let read = |start: u64, len: u64| -> io::Result<Vec<u8>> {
        let mut b = Vec::with_capacity(len as usize);
        store.open_range(path, start, len)?.read_to_end(&mut b)?;
        Ok(b)
    };
    let index = match read(0, DECISION_INDEX as u64) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    read_header(&index, DECISION_MAGIC, path)?;
    if index.len() < DECISION_INDEX {
        return Err(Error::other(format!("{path}: truncated index")));
    }
    let at = |i: usize| u64::from_le_bytes(index[16 + i * 8..24 + i * 8].try_into().expect("8"));
    if slot >= RANGE {
        return Err(Error::other(format!("{path}: no slot {slot}")));
    }
    let (from, to) = (at(slot), at(slot + 1));
    if to <= from {
        return Ok(Vec::new());
    }
    let width = DECISION_ROW as u64;
    let b = read(DECISION_INDEX as u64 + from * width, (to - from) * width)
        .map_err(|e| Error::io(path, e))?;
    if b.len() as u64 != (to - from) * width {
        return Err(Error::other(format!("{path}: truncated rows")));
    }
    Ok(b)
}
pub fn plan_path(dir: &str) -> String {
    format!("{dir}/plan.json")
}
pub fn centroids_path(dir: &str) -> String {
    format!("{dir}/centroids.bin")
}

/// What the `centroids` step decided, for the steps after it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    pub rows: u64,
    pub dim: usize,
    pub clusters: usize,
    pub groups: usize,
    pub sample: usize,
    pub iterations: usize,
    /// Top-level clusters of the tree.
    pub coarse: usize,
    /// Streamed Lloyd passes over all rows after the fit on the sample.
    pub passes: usize,
    /// Partitions per range of side files (1 to [`RANGE`]): as many as let an assign task's
    /// rows take a quarter of the memory budget.
    pub range: usize,
    /// Payload bytes per row (the verifier's tokens; 0 without one).
    #[serde(default)]
    pub payload: usize,
}

impl Plan {
    /// Ranges of `partitions` partitions (one assign task each).
    pub fn ranges(&self, partitions: usize) -> usize {
        partitions.div_ceil(self.range.max(1)).max(1)
    }
}

/// Per-partition row count of the collector's output.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EmbMeta {
    pub rows: u64,
    pub dim: usize,
    /// Payload bytes per row.
    #[serde(default)]
    pub payload: usize,
}

pub fn header(magic: &[u8; 8], a: u32, b: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(magic);
    h[8..12].copy_from_slice(&a.to_le_bytes());
    h[12..].copy_from_slice(&b.to_le_bytes());
    h
}

/// Checks a header and returns its two numbers.
pub fn read_header(bytes: &[u8], magic: &[u8; 8], path: &str) -> Result<(u32, u32)> {
    if bytes.len() < 16 || &bytes[..8] != magic {
        return Err(Error::other(format!(
            "{path}: not a {} file",
            String::from_utf8_lossy(magic)
        )));
    }
    Ok((u32_at(bytes, 8), u32_at(bytes, 12)))
}

#[inline]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

#[inline]
pub fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn put_f32s(out: &mut Vec<u8>, v: &[f32]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

pub fn f32s(b: &[u8], out: &mut Vec<f32>) {
    out.extend(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4"))),
    );
}

/// A whole object, or `None` when it does not exist.
pub fn read_opt(store: &dyn Store, path: &str) -> Result<Option<Vec<u8>>> {
    match store.read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub fn read_json<T: serde::de::DeserializeOwned>(store: &dyn Store, path: &str) -> Result<T> {
    let b = store.read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&b).map_err(|e| Error::other(format!("{path}: {e}")))
}

pub fn put_json<T: serde::Serialize>(store: &dyn Store, path: &str, v: &T) -> Result<()> {
    store
        .put(path, &serde_json::to_vec_pretty(v).expect("serializable"))
        .map_err(|e| Error::io(path, e))
}

/// Streams the rows of an embedding file: `(row, quality, chars, embedding)`.
pub struct EmbReader {
    inner: Box<dyn Read + Send>,
    dim: usize,
    row: u32,
    buf: Vec<u8>,
    path: String,
}

impl EmbReader {
    pub fn open(store: &dyn Store, path: &str) -> Result<EmbReader> {
        let mut inner = store.open(path).map_err(|e| Error::io(path, e))?;
        let mut h = [0u8; 16];
        inner.read_exact(&mut h).map_err(|e| Error::io(path, e))?;
        let (dim, payload) = read_header(&h, EMB_MAGIC, path)?;
        let dim = dim as usize;
        Ok(EmbReader {
            inner,
            dim,
            row: 0,
            buf: vec![0; 8 + code_len(dim) + payload as usize],
            path: path.to_string(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The code (scale and int8 components) of the row last read.
    pub fn code(&self) -> &[u8] {
        &self.buf[8..8 + code_len(self.dim)]
    }

    /// The payload of the row last read.
    pub fn payload(&self) -> &[u8] {
        &self.buf[8 + code_len(self.dim)..]
    }

    /// The next row into `emb` (cleared first): `(row, quality, chars)`, or `None` at the end.
    pub fn next_into(&mut self, emb: &mut Vec<f32>) -> Result<Option<(u32, f32, u32)>> {
        match read_full(&mut self.inner, &mut self.buf) {
            Ok(0) => return Ok(None),
            Ok(n) if n == self.buf.len() => {}
            Ok(_) => {
                return Err(Error::other(format!(
                    "{}: truncated at row {}",
                    self.path, self.row
                )))
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        }
        dequantize(&self.buf[8..8 + code_len(self.dim)], emb);
        let r = self.row;
        self.row += 1;
        Ok(Some((r, f32_at(&self.buf, 0), u32_at(&self.buf, 4))))
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes an embedding row: its numbers, the code of `emb`, then `payload` (as many bytes as
/// the file's header says).
pub fn write_emb_row(
    w: &mut dyn Write,
    quality: f32,
    chars: u32,
    emb: &[f32],
    payload: &[u8],
    scratch: &mut Vec<u8>,
) -> io::Result<()> {
    scratch.clear();
    scratch.extend_from_slice(&quality.to_le_bytes());
    scratch.extend_from_slice(&chars.to_le_bytes());
    quantize(emb, scratch);
    scratch.extend_from_slice(payload);
    w.write_all(scratch)
}

/// Payload bytes of at most `max` token ids of `width` bytes each (2 when the vocabulary fits
/// 16 bits, else 4): the width (one byte), a u16 count, then `max` ids, zero-padded so that
/// rows stay fixed-width.
pub fn tokens_len(max: usize, width: usize) -> usize {
    3 + width * max
}

/// The id width for a vocabulary of `vocab` tokens.
pub fn token_width(vocab: usize) -> usize {
    if vocab <= 1 << 16 {
        2
    } else {
        4
    }
}

/// Appends the payload of `ids` (at most `max`; more is an error, not a silent cut, since the
/// verifier must see what its tokenizer made).
pub fn put_tokens(ids: &[u32], max: usize, width: usize, out: &mut Vec<u8>) -> io::Result<()> {
    if ids.len() > max || max > u16::MAX as usize {
        return Err(io::Error::other(format!(
            "{} token ids do not fit a payload of {max}",
            ids.len()
        )));
    }
    out.push(width as u8);
    out.extend_from_slice(&(ids.len() as u16).to_le_bytes());
    for &i in ids {
        match width {
            2 => {
                let i = u16::try_from(i)
                    .map_err(|_| io::Error::other(format!("token id {i} over 16 bits")))?;
                out.extend_from_slice(&i.to_le_bytes());
            }
            _ => out.extend_from_slice(&i.to_le_bytes()),
        }
    }
    out.resize(out.len() + width * (max - ids.len()), 0);
    Ok(())
}

/// The token ids of a payload that [`put_tokens`] wrote; `None` when it is malformed.
pub fn get_tokens(payload: &[u8]) -> Option<Vec<u32>> {
    let width = *payload.first()? as usize;
    let n = u16::from_le_bytes(payload.get(1..3)?.try_into().ok()?) as usize;
    let ids = payload.get(3..3 + width * n)?;
    match width {
        2 => Some(
            ids.chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as u32)
                .collect(),
        ),
        4 => Some(
            ids.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4")))
                .collect(),
        ),
        _ => None,
    }
}

/// Bytes of one code: scale f32 and `dim` int8.
pub fn code_len(dim: usize) -> usize {
    4 + dim
}

/// Appends the code of `emb`: scale `max|x| / 127`, components rounded to int8.
pub fn quantize(emb: &[f32], out: &mut Vec<u8>) {
    let max = emb.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max.is_finite() { max / 127.0 } else { 0.0 };
    out.extend_from_slice(&scale.to_le_bytes());
    out.extend(emb.iter().map(|&x| {
        let q = if scale > 0.0 {
            (x / scale).round()
        } else {
            0.0
        };
        q.clamp(-127.0, 127.0) as i8 as u8
    }));
}

/// The unit vector of a code into `out` (cleared first); a zero code gives a zero vector.
pub fn dequantize(code: &[u8], out: &mut Vec<f32>) {
    out.clear();
    let scale = f32_at(code, 0);
    out.extend(code[4..].iter().map(|&b| b as i8 as f32 * scale));
    let n = out.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if n > 1e-12 {
        out.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
    }
}

/// Bytes of one group row: row, cluster, quality, chars, key, partition, the code, then the
/// payload.
pub fn group_row_len(dim: usize, payload: usize) -> usize {
    24 + code_len(dim) + payload
}

/// Streams the rows of one group file (`None` at the end); rows are fixed-width.
pub struct GroupReader {
    inner: Box<dyn Read + Send>,
    dim: usize,
    /// The current row's bytes (valid after `advance` returned true).
    pub buf: Vec<u8>,
    path: String,
}

impl GroupReader {
    /// Opens a group file; `None` when this range sent no row to the group.
    pub fn open(store: &dyn Store, path: &str) -> Result<Option<GroupReader>> {
        let mut inner = match store.open(path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut h = [0u8; 16];
        inner.read_exact(&mut h).map_err(|e| Error::io(path, e))?;
        let (dim, payload) = read_header(&h, GROUP_MAGIC, path)?;
        Ok(Some(GroupReader {
            inner,
            dim: dim as usize,
            buf: vec![0; group_row_len(dim as usize, payload as usize)],
            path: path.to_string(),
        }))
    }

    /// Reads the next row into `buf`; false at the end.
    pub fn advance(&mut self) -> Result<bool> {
        match read_full(&mut self.inner, &mut self.buf) {
            Ok(0) => Ok(false),
            Ok(n) if n == self.buf.len() => Ok(true),
            Ok(_) => Err(Error::other(format!("{}: truncated row", self.path))),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// The current row's code.
    pub fn code(&self) -> &[u8] {
        &self.buf[24..24 + code_len(self.dim)]
    }

    /// The current row's payload.
    pub fn payload(&self) -> &[u8] {
        &self.buf[24 + code_len(self.dim)..]
    }

    /// `(cluster, key, partition, row)`: the merge order of a group's files.
    pub fn order(&self) -> (u32, u32, u32, u32) {
        (
            u32_at(&self.buf, 4),
            u32_at(&self.buf, 16),
            u32_at(&self.buf, 20),
            u32_at(&self.buf, 0),
        )
    }
}
