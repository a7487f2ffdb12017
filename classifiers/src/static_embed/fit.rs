//! Step 5 of [`super::distill`]: the token table fitted so that a document's sum of token
//! vectors points where the teacher's embedding of that document points (the "tokenlearn"
//! idea; our own formulation).
//!
//! Per-token distillation embeds each token alone, so it cannot know how the teacher weighs
//! tokens in context (an English navigation line on a German page moves MiniLM's embedding far
//! more than its share of tokens). Here the teacher embeds real windows of text (`[CLS]`, up to
//! `max_tokens` tokens, `[SEP]`: exactly what the static model sums), and the table `E`
//! (vocabulary x dims) is the ridge solution
//!
//! ```text
//! min_E  sum_w || a_w E - z_w ||^2  +  lambda || E - E0 R ||^2
//! ```
//!
//! where `a_w` is window `w`'s tokens weighted by position over the window's total weight (the
//! model's weighted mean; a plain mean without position weights), `z_w` the teacher's
//! unit embedding projected on the top `dims` axes of the targets' (uncentred) second moment,
//! so that dot products of the `z` keep the teacher's cosines, and `E0 R` the distilled table
//! carried into that space by the least-squares map `R` (`a_w E0 R ~ z_w`). Tokens the windows
//! never show keep their distilled row (mapped); frequent ones are set by the data. `lambda`
//! is relative to the mean diagonal of `A'A` over the tokens seen.
//!
//! The normal equations `(A'A + lambda I) E = A'Z + lambda E0 R` are solved by conjugate
//! gradients with a diagonal preconditioner, a fixed number of iterations, every product and
//! sum in a fixed order (fixed blocks, rows computed independently), so the table is the same
//! for any thread count.
//!
//! Optionally ([`FitOptions::pairs`]) a second solve adds difference rows for the pairs of
//! windows the first one puts closer than the teacher does; docs/onnx.md measures it (about
//! one pair of the agreement evaluation), so it is off by default.

use rayon::prelude::*;

use super::is_zero;

/// Settings of the fit.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Most windows the teacher embeds (evenly spaced over all windows of the fit texts).
    pub windows: usize,
    /// Most windows taken from one text.
    pub per_text: usize,
    /// Pull toward the distilled table, relative to the mean diagonal of `A'A`.
    pub lambda: f64,
    /// Conjugate-gradient iterations.
    pub iterations: usize,
    /// Mixed windows added: the head of one window joined to the tail of another from a
    /// different place, so that the fit sees texts of two kinds at once (a page and a
    /// navigation block, two languages) and learns how much each kind's tokens weigh against
    /// the other's; whole windows of one kind cannot tell it (every target has unit length).
    pub mixed: usize,
    /// Pair rows (0: none): after a first solve, the `pairs` pairs of windows the table puts
    /// closest together relative to the teacher (static cosine at least `pair_min_cosine`,
    /// the largest excess over the teacher's cosine first) are added as difference rows
    /// `(a_i - a_j) E ~ z_i - z_j`, weighted `pair_weight`, and the system solved again from
    /// the first solution: a loss on what tells two windows apart, where a sum of token
    /// vectors is most likely to call different texts one.
    pub pairs: usize,
    pub pair_weight: f64,
    pub pair_min_cosine: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            windows: 6000,
            per_text: 4,
            lambda: 0.05,
            iterations: 60,
            mixed: 3000,
            pairs: 0,
            pair_weight: 1.0,
            pair_min_cosine: 0.8,
        }
    }
}

/// What the fit measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FitReport {
    pub windows: usize,
    pub tokens_fitted: usize,
    /// Mean cosine between the windows' static and (projected) teacher embeddings, before
    /// (distilled table mapped by `R`) and after the fit: in-sample.
    pub cosine_before: f64,
    pub cosine_after: f64,
    /// Relative residual of the normal equations at the end.
    pub residual: f64,
    pub teacher_seconds: f64,
    /// Pair rows added ([`FitOptions::pairs`]) and the mean excess of the static cosine over
    /// the teacher's on them, before and after the second solve (in-sample).
    #[serde(skip_serializing_if = "is_zero")]
    pub pairs: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair_excess_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair_excess_after: Option<f64>,
}

/// The windows of `ids` (a whole text's token ids): consecutive runs of `max_tokens`, at most
/// `per_text`, the last one kept only if it has at least a quarter of a window.
pub fn text_windows(ids: &[u32], max_tokens: usize, per_text: usize, out: &mut Vec<Vec<u32>>) {
    let min = (max_tokens / 4).max(8);
    for w in ids.chunks(max_tokens.max(1)).take(per_text) {
        if w.len() >= min.min(max_tokens) {
            out.push(w.to_vec());
        }
    }
}

/// At most `n` of `windows`, evenly spaced, in order.
pub fn spread(windows: Vec<Vec<u32>>, n: usize) -> Vec<Vec<u32>> {
    if windows.len() <= n {
        return windows;
    }
    let len = windows.len();
    let mut keep = vec![false; len];
    for i in 0..n {
        keep[i * len / n] = true;
    }
    windows
        .into_iter()
        .zip(keep)
        .filter_map(|(w, k)| k.then_some(w))
        .collect()
}

/// `n` mixed windows of `windows` ([`FitOptions::mixed`]): window `i`'s first 1/4, 1/2 or 3/4
/// (in turn) then the rest from window `j`, `i` and `j` far apart in the list.
pub fn mixed(windows: &[Vec<u32>], n: usize, max_tokens: usize) -> Vec<Vec<u32>> {
    let len = windows.len();
    if len < 2 {
        return Vec::new();
    }
    (0..n)
        .map(|k| {
            let i = k * len / n.max(1) % len;
            let j = (i + len / 2 + k % 7) % len;
            let (a, b) = (&windows[i], &windows[j]);
            let h = (max_tokens * (1 + k % 3) / 4).min(a.len());
            let mut w = a[..h].to_vec();
            w.extend(b.iter().take(max_tokens - h));
            w
        })
        .collect()
}

/// Sparse rows: (token, weight) sorted by token.
/// A sparse matrix given by its lists of (column, weight) per row, times a dense `x` with `d`
/// columns: one output row per list, each a task.
fn spmm(lists: &[Vec<(u32, f64)>], x: &[f64], d: usize) -> Vec<f64> {
    let mut out = vec![0f64; lists.len() * d];
    out.par_chunks_mut(d)
        .zip(lists.par_iter())
        .for_each(|(o, l)| {
            for &(t, v) in l {
                let row = &x[t as usize * d..(t as usize + 1) * d];
                o.iter_mut().zip(row).for_each(|(a, b)| *a += v * b);
            }
        });
    out
}

struct Sparse {
    rows: Vec<Vec<(u32, f64)>>,
    /// The transpose: per token, (row, weight) sorted by row.
    cols: Vec<Vec<(u32, f64)>>,
}

impl Sparse {
    /// Rows: each window's tokens weighted by position (`weights`, 1 past its end) over the
    /// window's total weight, the weighted mean the static model takes (up to its length).
    fn new(windows: &[Vec<u32>], vocab: usize, weights: &[f32]) -> Sparse {
        let rows: Vec<Vec<(u32, f64)>> = windows
            .iter()
            .map(|w| {
                let wt = |p: usize| weights.get(p).map_or(1.0, |&x| x as f64);
                let mut ids: Vec<(u32, f64)> =
                    w.iter().enumerate().map(|(p, &id)| (id, wt(p))).collect();
                ids.sort_by_key(|x| x.0);
                let n = (0..w.len()).map(wt).sum::<f64>().max(1e-12);
                let mut r: Vec<(u32, f64)> = Vec::new();
                for (id, x) in ids {
                    if id as usize >= vocab {
                        continue;
                    }
                    match r.last_mut() {
                        Some((t, c)) if *t == id => *c += x / n,
                        _ => r.push((id, x / n)),
                    }
                }
                r
            })
            .collect();
        Sparse::from_rows(rows, vocab)
    }

    fn from_rows(rows: Vec<Vec<(u32, f64)>>, vocab: usize) -> Sparse {
        let mut cols = vec![Vec::new(); vocab];
        for (i, r) in rows.iter().enumerate() {
            for &(t, v) in r {
                cols[t as usize].push((i as u32, v));
            }
        }
        Sparse { rows, cols }
    }

    /// The diagonal of `A'A`, per token.
    fn diag(&self) -> Vec<f64> {
        self.cols
            .iter()
            .map(|c| c.iter().map(|&(_, v)| v * v).sum())
            .collect()
    }

    /// `A X` (rows x d).
    fn mul(&self, x: &[f64], d: usize) -> Vec<f64> {
        spmm(&self.rows, x, d)
    }

    /// `A' Y` (vocab x d).
    fn mul_t(&self, y: &[f64], d: usize) -> Vec<f64> {
        spmm(&self.cols, y, d)
    }
}

/// Frobenius inner product, summed per fixed block then in block order (thread-count free).
fn fdot(a: &[f64], b: &[f64]) -> f64 {
    a.par_chunks(1 << 14)
        .zip(b.par_chunks(1 << 14))
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        .collect::<Vec<f64>>()
        .iter()
        .sum()
}

/// Solves the symmetric positive definite `k x k` system `M X = B` (`B`: `k x m`, row-major)
/// by Cholesky; `M` gets `eps * trace / k` added to its diagonal.
fn solve_spd(mut m: Vec<f64>, k: usize, mut b: Vec<f64>, cols: usize, eps: f64) -> Vec<f64> {
    let tr: f64 = (0..k).map(|i| m[i * k + i]).sum::<f64>() / k as f64;
    for i in 0..k {
        m[i * k + i] += eps * tr.max(1e-300);
    }
    // L L' = M, L in the lower triangle of m.
    for j in 0..k {
        let mut s = m[j * k + j];
        for p in 0..j {
            s -= m[j * k + p] * m[j * k + p];
        }
        let l = s.max(1e-300).sqrt();
        m[j * k + j] = l;
        for i in j + 1..k {
            let mut s = m[i * k + j];
            for p in 0..j {
                s -= m[i * k + p] * m[j * k + p];
            }
            m[i * k + j] = s / l;
        }
    }
    for c in 0..cols {
        // Forward then backward substitution on column c.
        for i in 0..k {
            let mut s = b[i * cols + c];
            for p in 0..i {
                s -= m[i * k + p] * b[p * cols + c];
            }
            b[i * cols + c] = s / m[i * k + i];
        }
        for i in (0..k).rev() {
            let mut s = b[i * cols + c];
            for p in i + 1..k {
                s -= m[p * k + i] * b[p * cols + c];
            }
            b[i * cols + c] = s / m[i * k + i];
        }
    }
    b
}

/// `X' Y` for row-major `X` (`n x p`) and `Y` (`n x q`): `p x q`, summed per fixed block.
fn gram(x: &[f64], p: usize, y: &[f64], q: usize) -> Vec<f64> {
    let n = x.len() / p;
    let blocks: Vec<Vec<f64>> = (0..n.div_ceil(256))
        .into_par_iter()
        .map(|b| {
            let mut g = vec![0f64; p * q];
            for r in b * 256..((b + 1) * 256).min(n) {
                let (xr, yr) = (&x[r * p..(r + 1) * p], &y[r * q..(r + 1) * q]);
                for (i, &xi) in xr.iter().enumerate() {
                    g[i * q..(i + 1) * q]
                        .iter_mut()
                        .zip(yr)
                        .for_each(|(a, &yj)| *a += xi * yj);
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f64; p * q];
    for b in &blocks {
        g.iter_mut().zip(b).for_each(|(a, x)| *a += x);
    }
    g
}

fn mean_cosine(a: &[f64], b: &[f64], d: usize) -> f64 {
    let n = a.len() / d;
    let s: f64 = a
        .chunks_exact(d)
        .zip(b.chunks_exact(d))
        .map(|(x, y)| cosine(x, y))
        .sum();
    s / n.max(1) as f64
}

fn cosine(x: &[f64], y: &[f64]) -> f64 {
    let (xy, xx, yy) = x.iter().zip(y).fold((0.0, 0.0, 0.0), |s, (p, q)| {
        (s.0 + p * q, s.1 + p * p, s.2 + q * q)
    });
    xy / (xx * yy).sqrt().max(1e-300)
}

/// Fits `table` (`vocab x dims`, the distilled rows) to the teacher's unit embeddings
/// `targets` (`windows.len() x teacher_dim`) of `windows`; returns the new table.
pub fn fit(
    table: &[f32],
    dims: usize,
    windows: &[Vec<u32>],
    targets: &[f32],
    teacher_dim: usize,
    weights: &[f32],
    opts: &FitOptions,
) -> (Vec<f32>, FitReport) {
    let vocab = table.len() / dims;
    let n = windows.len();
    let a = Sparse::new(windows, vocab, weights);
    // Target axes: the top `dims` of the targets' second moment, so z_i . z_j ~ y_i . y_j.
    let axes = super::linalg::top_axes(targets, teacher_dim, dims);
    let z: Vec<f64> = targets
        .par_chunks(teacher_dim)
        .flat_map_iter(|y| {
            axes.chunks_exact(teacher_dim)
                .map(|u| u.iter().zip(y).map(|(a, &b)| a * b as f64).sum::<f64>())
                .collect::<Vec<_>>()
        })
        .collect();
    // R: the distilled table carried into the target space, least squares on the windows.
    let e0: Vec<f64> = table.iter().map(|&x| x as f64).collect();
    let b0 = a.mul(&e0, dims);
    let r = solve_spd(
        gram(&b0, dims, &b0, dims),
        dims,
        gram(&b0, dims, &z, dims),
        dims,
        1e-6,
    );
    let prior: Vec<f64> = e0
        .par_chunks(dims)
        .flat_map_iter(|row| {
            (0..dims)
                .map(|j| (0..dims).map(|i| row[i] * r[i * dims + j]).sum::<f64>())
                .collect::<Vec<_>>()
        })
        .collect();
    let cosine_before = mean_cosine(&a.mul(&prior, dims), &z, dims);
    // Lambda relative to the mean diagonal of A'A over the tokens seen.
    let diag = a.diag();
    let seen = diag.iter().filter(|&&x| x > 0.0).count();
    let lambda = opts.lambda * diag.iter().sum::<f64>() / seen.max(1) as f64;
    let (mut x, mut residual) = solve(&a, &z, dims, lambda, &prior, prior.clone(), opts.iterations);
    let cosine_after = mean_cosine(&a.mul(&x, dims), &z, dims);
    let mut report = FitReport {
        windows: n,
        tokens_fitted: seen,
        cosine_before,
        cosine_after,
        residual,
        teacher_seconds: 0.0,
        ..Default::default()
    };
    if opts.pairs > 0 {
        let pairs = hard_pairs(&a.mul(&x, dims), &z, dims, opts.pairs, opts.pair_min_cosine);
        if !pairs.is_empty() {
            let excess = |x: &[f64]| pair_excess(&a.mul(x, dims), &z, dims, &pairs);
            report.pairs = pairs.len();
            report.pair_excess_before = Some(excess(&x));
            let w = opts.pair_weight.max(0.0).sqrt();
            let mut rows = a.rows.clone();
            let mut zz = z.clone();
            for &(i, j) in &pairs {
                rows.push(difference(&a.rows[i], &a.rows[j], w));
                let (zi, zj) = (&z[i * dims..(i + 1) * dims], &z[j * dims..(j + 1) * dims]);
                zz.extend(zi.iter().zip(zj).map(|(p, q)| w * (p - q)));
            }
            let a2 = Sparse::from_rows(rows, vocab);
            (x, residual) = solve(&a2, &zz, dims, lambda, &prior, x, opts.iterations);
            report.residual = residual;
            report.pair_excess_after = Some(excess(&x));
            report.cosine_after = mean_cosine(&a.mul(&x, dims), &z, dims);
        }
    }
    (x.iter().map(|&v| v as f32).collect(), report)
}

/// Solves `(A'A + lambda I) X = A'Z + lambda prior` by preconditioned conjugate gradients from
/// `x`, `iterations` steps; returns `X` and the relative residual.
fn solve(
    a: &Sparse,
    z: &[f64],
    dims: usize,
    lambda: f64,
    prior: &[f64],
    mut x: Vec<f64>,
    iterations: usize,
) -> (Vec<f64>, f64) {
    let diag = a.diag();
    let op = |x: &[f64]| -> Vec<f64> {
        let mut y = a.mul_t(&a.mul(x, dims), dims);
        y.par_iter_mut().zip(x).for_each(|(p, q)| *p += lambda * q);
        y
    };
    let precond = |r: &[f64]| -> Vec<f64> {
        r.par_chunks(dims)
            .zip(diag.par_iter())
            .flat_map_iter(|(row, &g)| row.iter().map(move |x| x / (g + lambda)))
            .collect()
    };
    let mut rhs = a.mul_t(z, dims);
    rhs.par_iter_mut()
        .zip(prior)
        .for_each(|(p, q)| *p += lambda * q);
    let ax = op(&x);
    let mut res: Vec<f64> = rhs.iter().zip(&ax).map(|(b, q)| b - q).collect();
    let mut zr = precond(&res);
    let mut p = zr.clone();
    let mut rz = fdot(&res, &zr);
    let bnorm = fdot(&rhs, &rhs).sqrt().max(1e-300);
    for _ in 0..iterations {
        let ap = op(&p);
        let pap = fdot(&p, &ap);
        if pap <= 0.0 || rz <= 0.0 {
            break;
        }
        let alpha = rz / pap;
        x.par_iter_mut().zip(&p).for_each(|(v, q)| *v += alpha * q);
        res.par_iter_mut()
            .zip(&ap)
            .for_each(|(v, q)| *v -= alpha * q);
        zr = precond(&res);
        let rz_new = fdot(&res, &zr);
        let beta = rz_new / rz;
        rz = rz_new;
        p.par_iter_mut()
            .zip(&zr)
            .for_each(|(v, q)| *v = q + beta * *v);
    }
    let residual = fdot(&res, &res).sqrt() / bnorm;
    (x, residual)
}

/// Unit rows of `x` (`n x d`), in f32 (for the all-pairs search).
fn unit_rows(x: &[f64], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .flat_map(|r| {
            let n = r.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
            r.iter().map(move |v| (v / n) as f32)
        })
        .collect()
}

fn dot32(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

/// The `k` pairs `(i, j)`, `i < j`, whose static cosine (rows of `s`) is at least `min_cos` and
/// exceeds the teacher's (rows of `z`) the most, at most 8 per `i` (so that one crowd of
/// look-alike windows cannot fill the list); ties broken by `(i, j)`, so the list is the same
/// for any thread count.
fn hard_pairs(s: &[f64], z: &[f64], d: usize, k: usize, min_cos: f64) -> Vec<(usize, usize)> {
    let (su, zu) = (unit_rows(s, d), unit_rows(z, d));
    let n = s.len() / d;
    let per: Vec<Vec<(f32, usize, usize)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (si, zi) = (&su[i * d..(i + 1) * d], &zu[i * d..(i + 1) * d]);
            let mut best: Vec<(f32, usize, usize)> = Vec::new();
            for j in i + 1..n {
                let cs = dot32(si, &su[j * d..(j + 1) * d]);
                if (cs as f64) < min_cos {
                    continue;
                }
                let excess = cs - dot32(zi, &zu[j * d..(j + 1) * d]);
                if excess > 0.0 {
                    best.push((excess, i, j));
                }
            }
            best.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            best.truncate(8);
            best
        })
        .collect();
    let mut all: Vec<(f32, usize, usize)> = per.into_iter().flatten().collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    all.truncate(k);
    all.into_iter().map(|(_, i, j)| (i, j)).collect()
}

/// Mean of (static cosine - teacher cosine) over `pairs`.
fn pair_excess(s: &[f64], z: &[f64], d: usize, pairs: &[(usize, usize)]) -> f64 {
    let cos =
        |x: &[f64], i: usize, j: usize| cosine(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d]);
    let sum: f64 = pairs
        .iter()
        .map(|&(i, j)| cos(s, i, j) - cos(z, i, j))
        .sum();
    sum / pairs.len().max(1) as f64
}

/// `w (a - b)` of two rows sorted by token.
fn difference(a: &[(u32, f64)], b: &[(u32, f64)], w: f64) -> Vec<(u32, f64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        let ta = a.get(i).map_or(u32::MAX, |x| x.0);
        let tb = b.get(j).map_or(u32::MAX, |x| x.0);
        if ta < tb {
            out.push((ta, w * a[i].1));
            i += 1;
        } else if tb < ta {
            out.push((tb, -w * b[j].1));
            j += 1;
        } else {
            out.push((ta, w * (a[i].1 - b[j].1)));
            i += 1;
            j += 1;
        }
    }
    out
}
