//! Spherical k-means on unit vectors (cosine similarity), seeded and deterministic.
//!
//! k-means++ seeding (distance `1 - cos`, squared) with a seeded generator, then Lloyd
//! iterations: assignment in parallel (each row's nearest centroid depends on nothing else),
//! centroid sums in f64 in row order, renormalised. An emptied cluster is re-seeded with the
//! row farthest from its centroid. Same rows, k, seed => same centroids, whatever the threads.

use rayon::prelude::*;

/// splitmix64: the seeded generator and hash of this module.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix64(self.0)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Dot product of two equal-length vectors (f32 lanes; the compiler vectorises the chunks).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, ra) = a.split_at(a.len() / 8 * 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Index and similarity of the most similar centroid (first on ties).
pub fn nearest(x: &[f32], centroids: &[f32], dim: usize) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (c, v) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(x, v);
        if s > best.1 {
            best = (c, s);
        }
    }
    best
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if n > 1e-12 {
        v.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
    }
}

/// The result of a fit.
pub struct Fit {
    /// `k * dim` unit vectors.
    pub centroids: Vec<f32>,
    pub iterations: usize,
    /// Rows whose cluster changed in the last iteration.
    pub moved: usize,
}

/// Fits `k` centroids to `rows` (`n * dim` unit vectors).
pub fn fit(rows: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Fit {
    let n = rows.len() / dim;
    assert!(n > 0 && k > 0 && k <= n, "k-means needs 0 < k <= rows");
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let mut rng = Rng(mix64(seed ^ 0x5e3d_ed00_c0de));

    // k-means++ seeding.
    let mut centroids = Vec::with_capacity(k * dim);
    let first = (rng.next() % n as u64) as usize;
    centroids.extend_from_slice(row(first));
    let mut best_sim: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|i| dot(row(i), row(first)))
        .collect();
    while centroids.len() < k * dim {
        let weights: Vec<f64> = best_sim
            .iter()
            .map(|&s| {
                let d = (1.0 - s as f64).max(0.0);
                d * d
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let pick = if total <= 0.0 {
            // Every row sits on a centroid already: take the next row not chosen by index.
            (rng.next() % n as u64) as usize
        } else {
            let mut r = rng.unit() * total;
            let mut pick = n - 1;
            for (i, w) in weights.iter().enumerate() {
                if r < *w {
                    pick = i;
                    break;
                }
                r -= w;
            }
            pick
        };
        let c = row(pick).to_vec();
        best_sim
            .par_iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = b.max(dot(row(i), &c)));
        centroids.extend_from_slice(&c);
    }

    // Lloyd iterations.
    let mut assign = vec![usize::MAX; n];
    let mut iters = 0;
    let mut moved = n;
    while iters < iterations && moved > 0 {
        iters += 1;
        let next: Vec<(usize, f32)> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|i| nearest(row(i), &centroids, dim))
            .collect();
        moved = next
            .iter()
            .zip(&assign)
            .filter(|((c, _), a)| c != *a)
            .count();
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (i, &(c, _)) in next.iter().enumerate() {
            counts[c] += 1;
            for (s, &x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row(i)) {
                *s += x as f64;
            }
        }
        // Empty clusters take the rows farthest from their centroids, farthest first.
        let mut far: Vec<usize> = Vec::new();
        if counts.contains(&0) {
            far = (0..n).collect();
            far.sort_by(|&a, &b| next[a].1.total_cmp(&next[b].1).then(a.cmp(&b)));
        }
        let mut far = far.into_iter();
        for c in 0..k {
            let dst = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                if let Some(i) = far.next() {
                    dst.copy_from_slice(row(i));
                }
                continue;
            }
            for (d, s) in dst.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                *d = *s as f32;
            }
            normalize(dst);
        }
        assign = next.into_iter().map(|(c, _)| c).collect();
    }
    Fit {
        centroids,
        iterations: iters,
        moved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around `centers` with small noise.
    fn blobs(centers: &[[f32; 3]], per: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng(seed);
        let mut out = Vec::new();
        for c in centers {
            for _ in 0..per {
                let mut v: Vec<f32> = c
                    .iter()
                    .map(|&x| x + (rng.unit() as f32 - 0.5) * 0.1)
                    .collect();
                normalize(&mut v);
                out.extend(v);
            }
        }
        out
    }

    #[test]
    fn finds_separated_clusters_deterministically() {
        let centers = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let rows = blobs(&centers, 50, 7);
        let a = fit(&rows, 3, 3, 50, 42);
        assert_eq!(a.moved, 0, "converged");
        // Each centroid lies near one true center, each center has one centroid.
        let mut hit = [false; 3];
        for c in a.centroids.chunks_exact(3) {
            let (i, s) = nearest(c, &centers.concat(), 3);
            assert!(s > 0.99, "{c:?}");
            hit[i] = true;
        }
        assert_eq!(hit, [true; 3]);
        // Same seed, any pool size: identical centroids.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let b = pool.install(|| fit(&rows, 3, 3, 50, 42));
        assert_eq!(a.centroids, b.centroids);
        // More clusters than distinct points still yields k centroids.
        let same = [1.0f32, 0.0, 0.0].repeat(5);
        assert_eq!(fit(&same, 3, 4, 10, 1).centroids.len(), 12);
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
