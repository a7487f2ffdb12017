//! The input and output matrices of a model: dense `f32`, or product-quantized (`.ftz`).

use std::io::Write;

use super::binio::{put_f32s, put_i64, Reader};

/// Centroids per sub-quantizer (fastText uses 8-bit codes).
const KSUB: usize = 256;

/// A row-major dense matrix.
#[derive(Clone, Debug)]
pub struct Dense {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Dense {
    pub fn zeros(rows: usize, cols: usize) -> Dense {
        Dense {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    #[inline]
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    fn read(r: &mut Reader) -> Result<Dense, String> {
        let rows = r.i64()?;
        let cols = r.i64()?;
        let rows = r.count("matrix rows", rows, r.remaining())?;
        let cols = r.count("matrix columns", cols, 1 << 20)?;
        let n = rows
            .checked_mul(cols)
            .filter(|n| n.saturating_mul(4) <= r.remaining())
            .ok_or_else(|| format!("matrix {rows}x{cols} is larger than the file"))?;
        Ok(Dense {
            rows,
            cols,
            data: r.f32s(n)?,
        })
    }

    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        put_i64(w, self.rows as i64)?;
        put_i64(w, self.cols as i64)?;
        put_f32s(w, &self.data)
    }
}

/// fastText's `ProductQuantizer`: each row is split into `nsubq` slices, each slice coded by one
/// byte naming one of 256 centroids.
#[derive(Clone, Debug)]
struct Pq {
    nsubq: usize,
    dsub: usize,
    lastdsub: usize,
    centroids: Vec<f32>,
}

impl Pq {
    fn read(r: &mut Reader) -> Result<Pq, String> {
        let dim = r.i32()?;
        let nsubq = r.i32()?;
        let dsub = r.i32()?;
        let lastdsub = r.i32()?;
        let dim = r.count("quantizer dimension", dim as i64, 1 << 20)?;
        let nsubq = r.count("sub-quantizers", nsubq as i64, dim.max(1))?;
        let dsub = r.count("sub-quantizer size", dsub as i64, dim.max(1))?;
        let lastdsub = r.count("last sub-quantizer size", lastdsub as i64, dim.max(1))?;
        if nsubq == 0 || (nsubq - 1) * dsub + lastdsub != dim {
            return Err("inconsistent product quantizer".into());
        }
        Ok(Pq {
            nsubq,
            dsub,
            lastdsub,
            centroids: r.f32s(dim * KSUB)?,
        })
    }

    #[inline]
    fn centroid(&self, m: usize, code: u8) -> &[f32] {
        let i = code as usize;
        if m == self.nsubq - 1 {
            let at = m * KSUB * self.dsub + i * self.lastdsub;
            &self.centroids[at..at + self.lastdsub]
        } else {
            let at = (m * KSUB + i) * self.dsub;
            &self.centroids[at..at + self.dsub]
        }
    }

    #[inline]
    fn add_code(&self, x: &mut [f32], codes: &[u8], alpha: f32) {
        for (m, &code) in codes.iter().enumerate() {
            let c = self.centroid(m, code);
            let at = m * self.dsub;
            for (xi, ci) in x[at..at + c.len()].iter_mut().zip(c) {
                *xi += alpha * ci;
            }
        }
    }

    #[inline]
    fn mul_code(&self, x: &[f32], codes: &[u8], alpha: f32) -> f32 {
        let mut res = 0.0f32;
        for (m, &code) in codes.iter().enumerate() {
            let c = self.centroid(m, code);
            let at = m * self.dsub;
            for (xi, ci) in x[at..at + c.len()].iter().zip(c) {
                res += xi * ci;
            }
        }
        res * alpha
    }
}

/// fastText's `QuantMatrix`: product-quantized rows, optionally with quantized row norms.
#[derive(Clone, Debug)]
pub struct Quant {
    rows: usize,
    cols: usize,
    codes: Vec<u8>,
    pq: Pq,
    norms: Option<(Vec<u8>, Pq)>,
}

impl Quant {
    fn read(r: &mut Reader) -> Result<Quant, String> {
        let qnorm = r.bool()?;
        let rows = r.i64()?;
        let cols = r.i64()?;
        let codesize = r.i32()?;
        let rows = r.count("matrix rows", rows, r.remaining())?;
        let cols = r.count("matrix columns", cols, 1 << 20)?;
        let codesize = r.count("code size", codesize as i64, r.remaining())?;
        let codes = r.bytes(codesize)?.to_vec();
        let pq = Pq::read(r)?;
        if pq.centroids.len() != cols * KSUB || codes.len() != rows * pq.nsubq {
            return Err("quantized matrix sizes disagree".into());
        }
        let norms = if qnorm {
            let codes = r.bytes(rows)?.to_vec();
            let npq = Pq::read(r)?;
            if npq.nsubq != 1 || npq.lastdsub != 1 {
                return Err("bad norm quantizer".into());
            }
            Some((codes, npq))
        } else {
            None
        };
        Ok(Quant {
            rows,
            cols,
            codes,
            pq,
            norms,
        })
    }

    #[inline]
    fn norm(&self, i: usize) -> f32 {
        match &self.norms {
            Some((codes, npq)) => npq.centroid(0, codes[i])[0],
            None => 1.0,
        }
    }

    #[inline]
    fn codes(&self, i: usize) -> &[u8] {
        &self.codes[i * self.pq.nsubq..(i + 1) * self.pq.nsubq]
    }
}

/// Either kind of matrix.
#[derive(Clone, Debug)]
pub enum Matrix {
    Dense(Dense),
    Quant(Quant),
}

impl Matrix {
    pub fn read(r: &mut Reader, quantized: bool) -> Result<Matrix, String> {
        Ok(if quantized {
            Matrix::Quant(Quant::read(r)?)
        } else {
            Matrix::Dense(Dense::read(r)?)
        })
    }

    pub fn rows(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.rows,
            Matrix::Quant(q) => q.rows,
        }
    }

    pub fn cols(&self) -> usize {
        match self {
            Matrix::Dense(d) => d.cols,
            Matrix::Quant(q) => q.cols,
        }
    }

    /// `x += row(i)`.
    #[inline]
    pub fn add_row_to(&self, x: &mut [f32], i: usize) {
        match self {
            Matrix::Dense(d) => {
                for (xi, ri) in x.iter_mut().zip(d.row(i)) {
                    *xi += ri;
                }
            }
            Matrix::Quant(q) => q.pq.add_code(x, q.codes(i), q.norm(i)),
        }
    }

    /// `row(i) . x`.
    #[inline]
    pub fn dot_row(&self, x: &[f32], i: usize) -> f32 {
        match self {
            Matrix::Dense(d) => dot(d.row(i), x),
            Matrix::Quant(q) => q.pq.mul_code(x, q.codes(i), q.norm(i)),
        }
    }
}

/// `x += sum of the rows named in ids`. Rows are scattered over a large matrix, so the cost is
/// memory latency: rows a few ids ahead are prefetched while the current one is added.
#[inline]
pub fn sum_rows(m: &Dense, ids: &[i32], x: &mut [f32]) {
    const AHEAD: usize = 8;
    let cols = m.cols;
    for (k, &id) in ids.iter().enumerate() {
        if let Some(&next) = ids.get(k + AHEAD) {
            prefetch(&m.data, next as usize * cols, cols);
        }
        let row = &m.data[id as usize * cols..id as usize * cols + cols];
        for (xi, ri) in x.iter_mut().zip(row) {
            *xi += ri;
        }
    }
}

/// Hints the cache lines of `data[at..at + len]` into cache (a no-op off x86-64).
#[inline(always)]
fn prefetch(data: &[f32], at: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if at + len <= data.len() {
            let mut off = 0;
            while off < len {
                // SAFETY: the address lies inside `data` (checked above); prefetch never faults.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch(data.as_ptr().add(at + off) as *const i8, _MM_HINT_T0);
                }
                off += 16;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at, len);
}

/// Dot product in eight lanes (vectorizes; differs from a sequential sum by rounding only).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, ra) = a.split_at(a.len() / 8 * 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `y += a * x`.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}
