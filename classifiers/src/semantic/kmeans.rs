//! Spherical k-means on unit vectors (cosine similarity), seeded and deterministic.
//!
//! [`fit`]: k-means++ seeding (distance `1 - cos`, squared) with a seeded generator, then Lloyd
//! iterations: assignment in parallel (each row's nearest centroid depends on nothing else),
//! centroid sums in f64 in row order, renormalised. An emptied cluster is re-seeded with the
//! row farthest from its centroid. Same rows, k, seed => same centroids, whatever the threads.
//!
//! [`Tree`]: the clustering of `dedup.semantic` at scale. Fitted on a bounded sample, two
//! levels (`sqrt(k)` coarse clusters, each split in proportion to its share of the sample), so
//! that assigning a row costs `(k1 + k2) x dim` instead of `k x dim` (about 600 dot products
//! instead of 100,000 at k = 10^5). [`Sums`] then refines the fine centroids by streamed Lloyd
//! passes over every row: sums in fixed point (i64), whose addition is exact and so does not
//! depend on the order rows arrive in (threads, tasks, partitioning of the input).

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

/// Fixed-point scale of [`Sums`]: 2^24 per unit, so 10^9 rows of components in [-1, 1] sum
/// below 2^54 (no overflow) and rounding errs by 6e-8 per component at most.
const FIXED: f64 = (1u64 << 24) as f64;

/// Per-cluster sums of unit vectors in fixed point, for a streamed Lloyd pass.
pub struct Sums {
    dim: usize,
    sums: Vec<i64>,
    counts: Vec<u64>,
}

impl Sums {
    pub fn new(k: usize, dim: usize) -> Sums {
        Sums {
            dim,
            sums: vec![0; k * dim],
            counts: vec![0; k],
        }
    }

    pub fn add(&mut self, cluster: usize, x: &[f32]) {
        self.counts[cluster] += 1;
        for (s, &v) in self.sums[cluster * self.dim..(cluster + 1) * self.dim]
            .iter_mut()
            .zip(x)
        {
            *s += (v as f64 * FIXED).round() as i64;
        }
    }

    /// Adds another task's sums (exact: any grouping gives the same totals).
    pub fn merge(&mut self, o: &Sums) {
        self.sums.iter_mut().zip(&o.sums).for_each(|(a, b)| *a += b);
        self.counts
            .iter_mut()
            .zip(&o.counts)
            .for_each(|(a, b)| *a += b);
    }
}

/// Two-level centroids: `coarse` (k1 unit vectors); the fine clusters of coarse cluster `c` are
/// `fine[offsets[c]..offsets[c + 1]]` (rows of `dim`), numbered globally.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    pub dim: usize,
    pub coarse: Vec<f32>,
    pub offsets: Vec<u32>,
    pub fine: Vec<f32>,
}

impl Tree {
    /// Fits about `k` fine clusters on `sample` (`n * dim` unit vectors, in a canonical order).
    /// Returns the tree and the most Lloyd iterations any fit ran.
    pub fn fit(
        sample: &[f32],
        dim: usize,
        k: usize,
        iterations: usize,
        seed: u64,
    ) -> (Tree, usize) {
        let n = sample.len() / dim;
        let k = k.clamp(1, n);
        let k1 = ((k as f64).sqrt().ceil() as usize).clamp(1, k);
        let top = fit(sample, dim, k1, iterations, seed);
        let row = |i: usize| &sample[i * dim..(i + 1) * dim];
        let near: Vec<usize> = (0..n)
            .into_par_iter()
            .with_min_len(64)
            .map(|i| nearest(row(i), &top.centroids, dim).0)
            .collect();
        let mut members: Vec<Vec<f32>> = vec![Vec::new(); k1];
        for (i, &c) in near.iter().enumerate() {
            members[c].extend_from_slice(row(i));
        }
        // Fine clusters in proportion to the coarse cluster's share of the sample.
        let fits: Vec<(Vec<f32>, usize)> = members
            .par_iter()
            .enumerate()
            .map(|(c, rows)| {
                let nc = rows.len() / dim;
                if nc == 0 {
                    return (top.centroids[c * dim..(c + 1) * dim].to_vec(), 0);
                }
                let kc = ((k as f64 * nc as f64 / n as f64).round() as usize).clamp(1, nc);
                let f = fit(rows, dim, kc, iterations, mix64(seed ^ (c as u64 + 1)));
                (f.centroids, f.iterations)
            })
            .collect();
        let mut tree = Tree {
            dim,
            coarse: top.centroids,
            offsets: vec![0],
            fine: Vec::new(),
        };
        let mut iters = top.iterations;
        for (f, it) in fits {
            tree.fine.extend_from_slice(&f);
            tree.offsets.push((tree.fine.len() / dim) as u32);
            iters = iters.max(it);
        }
        (tree, iters)
    }

    /// Number of fine clusters.
    pub fn clusters(&self) -> usize {
        self.fine.len() / self.dim.max(1)
    }

    /// The fine cluster of `x`: the nearest fine centroid under the nearest coarse one.
    pub fn nearest(&self, x: &[f32]) -> usize {
        let (c, _) = nearest(x, &self.coarse, self.dim);
        let (a, b) = (self.offsets[c] as usize, self.offsets[c + 1] as usize);
        a + nearest(x, &self.fine[a * self.dim..b * self.dim], self.dim).0
    }

    /// One Lloyd update of the fine centroids from a streamed pass's sums (coarse ones stay:
    /// they route rows). A cluster no row reached keeps its centroid. Returns how many moved.
    pub fn refine(&mut self, s: &Sums) -> usize {
        let mut moved = 0;
        for (c, dst) in self.fine.chunks_exact_mut(self.dim).enumerate() {
            if s.counts[c] == 0 {
                continue;
            }
            let sum = &s.sums[c * self.dim..(c + 1) * self.dim];
            let n = sum
                .iter()
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt();
            if n == 0.0 {
                continue;
            }
            let before = dst.to_vec();
            for (d, &v) in dst.iter_mut().zip(sum) {
                *d = (v as f64 / n) as f32;
            }
            moved += (before != dst) as usize;
        }
        moved
    }

    /// `k1 + 1` offsets (u32), the coarse and the fine centroids (f32), little-endian.
    pub fn to_bytes(&self, out: &mut Vec<u8>) {
        for o in &self.offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        for x in self.coarse.iter().chain(&self.fine) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    /// The inverse of [`Tree::to_bytes`], `None` when the bytes do not fit `dim` and `k1`.
    pub fn from_bytes(b: &[u8], dim: usize, k1: usize) -> Option<Tree> {
        let word = |i: usize| b.get(i * 4..i * 4 + 4).map(|w| [w[0], w[1], w[2], w[3]]);
        let offsets: Vec<u32> = (0..=k1)
            .map(|i| word(i).map(u32::from_le_bytes))
            .collect::<Option<_>>()?;
        let k = *offsets.last()? as usize;
        let floats = |from: usize, n: usize| -> Option<Vec<f32>> {
            (from..from + n)
                .map(|i| word(i).map(f32::from_le_bytes))
                .collect()
        };
        let coarse = floats(k1 + 1, k1 * dim)?;
        let fine = floats(k1 + 1 + k1 * dim, k * dim)?;
        (b.len() == (k1 + 1 + (k1 + k) * dim) * 4 && offsets.windows(2).all(|w| w[0] <= w[1]))
            .then_some(Tree {
                dim,
                coarse,
                offsets,
                fine,
            })
    }
}

/// A seeded unit direction: rows sort by their projection on it inside a cluster, so that a
/// cluster over the cap splits between neighbours along it (near duplicates project close).
pub fn direction(seed: u64, dim: usize) -> Vec<f32> {
    let mut rng = Rng(mix64(seed ^ 0xd1_2ec7));
    let mut v: Vec<f32> = (0..dim).map(|_| rng.unit() as f32 - 0.5).collect();
    normalize(&mut v);
    v
}

/// An order-preserving u32 of a projection in [-1, 1].
pub fn key(projection: f32) -> u32 {
    ((projection.clamp(-1.0, 1.0) as f64 + 1.0) * 0.5 * u32::MAX as f64) as u32
}

/// Seeded hash of a row's code: the sample keeps the rows of smallest hash, which depends on
/// the rows alone, not on which partition or position holds them.
pub fn code_hash(seed: u64, code: &[u8]) -> u64 {
    let mut h = mix64(seed ^ 0x5a4d_91e5);
    let mut chunks = code.chunks_exact(8);
    for c in &mut chunks {
        h = mix64(h ^ u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    mix64(h ^ u64::from_le_bytes(last) ^ ((code.len() as u64) << 56))
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

    /// The tree finds planted clusters, round-trips through bytes, and a streamed pass gives
    /// the same sums whatever the order and grouping of the rows.
    #[test]
    fn tree_and_fixed_point_sums() {
        let centers = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.6, 0.8, 0.0],
        ];
        let rows = blobs(&centers, 40, 3);
        let (t, _) = Tree::fit(&rows, 3, 4, 30, 9);
        assert_eq!(t.offsets.len(), 3, "k1 = ceil(sqrt(4))");
        assert_eq!(t.clusters(), 4);
        let mut b = Vec::new();
        t.to_bytes(&mut b);
        assert_eq!(Tree::from_bytes(&b, 3, 2).as_ref(), Some(&t));
        assert_eq!(Tree::from_bytes(&b[..b.len() - 4], 3, 2), None);
        // Rows of one center share a cluster.
        for blob in rows.chunks_exact(3 * 40) {
            let first = t.nearest(&blob[..3]);
            assert!(blob.chunks_exact(3).all(|r| t.nearest(r) == first));
        }
        // One pass in row order vs reversed rows summed in three tasks.
        let n = rows.len() / 3;
        let mut one = Sums::new(4, 3);
        for r in rows.chunks_exact(3) {
            one.add(t.nearest(r), r);
        }
        let mut parts: Vec<Sums> = (0..3).map(|_| Sums::new(4, 3)).collect();
        for i in (0..n).rev() {
            let r = &rows[i * 3..i * 3 + 3];
            parts[i % 3].add(t.nearest(r), r);
        }
        let mut all = Sums::new(4, 3);
        for p in &parts {
            all.merge(p);
        }
        assert_eq!((&one.sums, &one.counts), (&all.sums, &all.counts));
        let (mut a, mut c) = (t.clone(), t.clone());
        a.refine(&one);
        c.refine(&all);
        assert_eq!(a, c);
    }

    #[test]
    fn keys_keep_order() {
        assert!(key(-1.0) < key(-0.5) && key(-0.5) < key(0.0) && key(0.0) < key(0.99));
        assert_eq!(key(2.0), key(1.0));
        let d = direction(1, 5);
        assert!((dot(&d, &d) - 1.0).abs() < 1e-6);
        assert_ne!(code_hash(1, b"abcdefghi"), code_hash(1, b"abcdefghj"));
        assert_ne!(code_hash(1, b"abc"), code_hash(2, b"abc"));
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
    }
}
