//! The linear algebra of distillation and fitting: column means, principal axes (PCA) and a
//! Jacobi eigensolver, in f64 and deterministic (fixed summation order).

use rayon::prelude::*;

pub(crate) fn column_mean(rows: &[f32], d: usize) -> Vec<f64> {
    let n = (rows.len() / d).max(1);
    let mut m = vec![0f64; d];
    for r in rows.chunks_exact(d) {
        for (a, &x) in m.iter_mut().zip(r) {
            *a += x as f64;
        }
    }
    m.iter_mut().for_each(|a| *a /= n as f64);
    m
}

/// The top `k` eigenvectors (one per row, by decreasing eigenvalue) of the uncentred second
/// moment of `rows`: the directions every row shares.
pub(crate) fn top_axes(rows: &[f32], d: usize, k: usize) -> Vec<f64> {
    let n = (rows.len() / d).max(1);
    let parts = rows
        .par_chunks(d * 1024)
        .map(|block| {
            let mut c = vec![0f64; d * d];
            for r in block.chunks_exact(d) {
                for i in 0..d {
                    let ri = r[i] as f64;
                    for (cj, &rj) in c[i * d..(i + 1) * d][i..].iter_mut().zip(&r[i..]) {
                        *cj += ri * rj as f64;
                    }
                }
            }
            c
        })
        .collect::<Vec<_>>();
    let mut a = vec![0f64; d * d];
    for c in &parts {
        a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
    }
    for i in 0..d {
        for j in i..d {
            let v = a[i * d + j] / n as f64;
            a[i * d + j] = v;
            a[j * d + i] = v;
        }
    }
    let (values, vecs) = jacobi_eigen(a, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&x, &y| values[y].total_cmp(&values[x]).then(x.cmp(&y)));
    order[..k]
        .iter()
        .flat_map(|&c| (0..d).map(|r| vecs[r * d + c]).collect::<Vec<_>>())
        .collect()
}

/// The top `k` principal axes of `rows` (`k * d`, one axis per row, by decreasing variance)
/// and the share of the variance they explain.
pub fn pca(rows: &[f32], d: usize, k: usize) -> (Vec<f64>, f64) {
    let n = rows.len() / d;
    let mean = column_mean(rows, d);
    // Covariance, accumulated per fixed block of rows then summed in block order.
    let cov = rows
        .par_chunks(d * 1024)
        .map(|block| {
            let mut c = vec![0f64; d * d];
            let mut z = vec![0f64; d];
            for r in block.chunks_exact(d) {
                for ((zi, &x), m) in z.iter_mut().zip(r).zip(&mean) {
                    *zi = x as f64 - m;
                }
                for i in 0..d {
                    let zi = z[i];
                    let row = &mut c[i * d..(i + 1) * d];
                    for (cj, &zj) in row[i..].iter_mut().zip(&z[i..]) {
                        *cj += zi * zj;
                    }
                }
            }
            c
        })
        .collect::<Vec<_>>();
    let mut a = vec![0f64; d * d];
    for c in &cov {
        a.iter_mut().zip(c).for_each(|(x, y)| *x += y);
    }
    for i in 0..d {
        for j in i..d {
            let v = a[i * d + j] / n.max(1) as f64;
            a[i * d + j] = v;
            a[j * d + i] = v;
        }
    }
    let (values, vecs) = jacobi_eigen(a, d);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&x, &y| values[y].total_cmp(&values[x]).then(x.cmp(&y)));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let kept: f64 = order[..k].iter().map(|&i| values[i].max(0.0)).sum();
    let mut axes = Vec::with_capacity(k * d);
    for &c in &order[..k] {
        // Column c of the eigenvector matrix; sign fixed so the largest entry is positive.
        let col: Vec<f64> = (0..d).map(|r| vecs[r * d + c]).collect();
        let big = col
            .iter()
            .copied()
            .fold(0f64, |b, x| if x.abs() > b.abs() { x } else { b });
        let s = if big < 0.0 { -1.0 } else { 1.0 };
        axes.extend(col.iter().map(|x| x * s));
    }
    (axes, if total > 0.0 { kept / total } else { 0.0 })
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric
/// `d x d` matrix, by cyclic Jacobi rotations.
pub fn jacobi_eigen(mut a: Vec<f64>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0f64; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..60 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-13 * norm.max(1e-300) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}
