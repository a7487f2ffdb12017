//! Training a linear head on pooled embeddings (`curate train head`), and the metrics it reports.
//!
//! Multinomial logistic regression: features standardised (mean 0, variance 1 per dimension,
//! folded back into the weights at the end so the head applies to raw embeddings), classes
//! weighted inversely to their frequency (optional), L2 penalty, full-batch Adam for a fixed
//! number of steps. Gradients are summed per fixed block of rows in block order, so the result
//! is identical whatever the thread count. Labels come from any column, so a teacher's labels
//! (a fastText model, an LLM run elsewhere) train a student the same way.

use rayon::prelude::*;

use super::config::Head;

/// Hyper-parameters of [`fit`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeadOptions {
    pub steps: usize,
    pub lr: f64,
    pub l2: f64,
    /// Weight classes inversely to their frequency.
    pub balance: bool,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            steps: 400,
            lr: 0.05,
            l2: 1e-3,
            balance: true,
        }
    }
}

const BLOCK: usize = 512;

/// Fits a head: `x` rows of width `dim`, `y` label indices into `labels`.
pub fn fit(x: &[Vec<f32>], y: &[usize], labels: &[String], o: &HeadOptions) -> Head {
    let n = x.len();
    let c = labels.len();
    assert!(n > 0 && c > 1 && y.len() == n);
    let d = x[0].len();
    // Standardisation.
    let mut mean = vec![0f64; d];
    for r in x {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut sd = vec![0f64; d];
    for r in x {
        for ((s, &v), m) in sd.iter_mut().zip(r).zip(&mean) {
            *s += (v as f64 - m).powi(2);
        }
    }
    sd.iter_mut()
        .for_each(|s| *s = (*s / n as f64).sqrt().max(1e-6));
    let z: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            r.iter()
                .zip(&mean)
                .zip(&sd)
                .map(|((&v, m), s)| (v as f64 - m) / s)
                .collect()
        })
        .collect();
    let mut counts = vec![0usize; c];
    for &l in y {
        counts[l] += 1;
    }
    let cw: Vec<f64> = counts
        .iter()
        .map(|&k| {
            if o.balance && k > 0 {
                n as f64 / (c as f64 * k as f64)
            } else {
                1.0
            }
        })
        .collect();
    let wsum: f64 = y.iter().map(|&l| cw[l]).sum();

    // Parameters: c x (d + 1), bias last.
    let p = d + 1;
    let mut w = vec![0f64; c * p];
    let (mut m1, mut m2) = (vec![0f64; c * p], vec![0f64; c * p]);
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    for step in 1..=o.steps {
        let blocks: Vec<Vec<f64>> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut g = vec![0f64; c * p];
                let mut logit = vec![0f64; c];
                for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                    let zi = &z[i];
                    for (k, l) in logit.iter_mut().enumerate() {
                        let row = &w[k * p..(k + 1) * p];
                        *l = row[d] + row[..d].iter().zip(zi).map(|(a, b)| a * b).sum::<f64>();
                    }
                    let mx = logit.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = logit.iter().map(|v| (v - mx).exp()).collect();
                    let s: f64 = e.iter().sum();
                    let wi = cw[y[i]] / wsum;
                    for k in 0..c {
                        let r = (e[k] / s - if k == y[i] { 1.0 } else { 0.0 }) * wi;
                        let gk = &mut g[k * p..(k + 1) * p];
                        for (gj, &zj) in gk[..d].iter_mut().zip(zi) {
                            *gj += r * zj;
                        }
                        gk[d] += r;
                    }
                }
                g
            })
            .collect();
        let mut g = vec![0f64; c * p];
        for bg in &blocks {
            for (a, b) in g.iter_mut().zip(bg) {
                *a += b;
            }
        }
        for k in 0..c {
            for j in 0..d {
                g[k * p + j] += o.l2 * w[k * p + j];
            }
        }
        let (c1, c2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        for i in 0..c * p {
            m1[i] = b1 * m1[i] + (1.0 - b1) * g[i];
            m2[i] = b2 * m2[i] + (1.0 - b2) * g[i] * g[i];
            w[i] -= o.lr * (m1[i] / c1) / ((m2[i] / c2).sqrt() + eps);
        }
    }
    // Fold the standardisation in: w·(x - mean)/sd + b = (w/sd)·x + (b - Σ w mean/sd).
    let mut weight = Vec::with_capacity(c);
    let mut bias = Vec::with_capacity(c);
    for k in 0..c {
        let row = &w[k * p..(k + 1) * p];
        let mut b = row[d];
        let mut r = Vec::with_capacity(d);
        for j in 0..d {
            let v = row[j] / sd[j];
            b -= v * mean[j];
            r.push(v as f32);
        }
        weight.push(r);
        bias.push(b as f32);
    }
    Head {
        labels: labels.to_vec(),
        weight,
        bias,
    }
}

/// Per-label precision, recall, F1 and one-vs-rest ROC AUC, accuracy and macro-F1.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Metrics {
    pub docs: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub labels: Vec<LabelMetrics>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct LabelMetrics {
    pub label: String,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub auc: f64,
}

/// Metrics of probability rows `p` against true label indices `y`.
pub fn evaluate(p: &[Vec<f32>], y: &[usize], labels: &[String]) -> Metrics {
    let argmax = |r: &[f32]| {
        r.iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > r[b] { i } else { b })
    };
    let pred: Vec<usize> = p.iter().map(|r| argmax(r)).collect();
    let n = y.len();
    let correct = pred.iter().zip(y).filter(|(a, b)| a == b).count();
    let mut per = Vec::new();
    for (k, l) in labels.iter().enumerate() {
        let tp = pred
            .iter()
            .zip(y)
            .filter(|(a, b)| **a == k && **b == k)
            .count() as f64;
        let fp = pred
            .iter()
            .zip(y)
            .filter(|(a, b)| **a == k && **b != k)
            .count() as f64;
        let fn_ = pred
            .iter()
            .zip(y)
            .filter(|(a, b)| **a != k && **b == k)
            .count() as f64;
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        let scored: Vec<(f32, bool)> = p.iter().zip(y).map(|(r, &t)| (r[k], t == k)).collect();
        per.push(LabelMetrics {
            label: l.clone(),
            support: y.iter().filter(|&&t| t == k).count(),
            precision,
            recall,
            f1,
            auc: roc_auc(&scored),
        });
    }
    Metrics {
        docs: n,
        accuracy: if n > 0 {
            correct as f64 / n as f64
        } else {
            0.0
        },
        macro_f1: per.iter().map(|m| m.f1).sum::<f64>() / labels.len().max(1) as f64,
        labels: per,
    }
}

/// ROC AUC of scores for the positives (`true`), ties counted half (Mann-Whitney U).
pub fn roc_auc(scored: &[(f32, bool)]) -> f64 {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0f64, 0usize);
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_separable_classes_and_scores_them() {
        // Three classes along three axes, shifted and scaled (standardisation must cope).
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..90 {
            let k = i % 3;
            let mut r = vec![5.0f32, -3.0, 100.0];
            r[k] += 2.0 + (i as f32 * 0.37).sin() * 0.5;
            x.push(r);
            y.push(k);
        }
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let h = fit(&x, &y, &labels, &HeadOptions::default());
        let mut logits = Vec::new();
        let p: Vec<Vec<f32>> = x
            .iter()
            .map(|r| {
                h.apply(r, &mut logits);
                crate::onnx::activate(&logits, crate::onnx::Activation::Softmax)
            })
            .collect();
        let m = evaluate(&p, &y, &labels);
        assert_eq!(m.accuracy, 1.0);
        assert_eq!(m.macro_f1, 1.0);
        assert!(m.labels.iter().all(|l| l.auc == 1.0 && l.support == 30));
        // Deterministic whatever the pool size.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let h3 = pool.install(|| fit(&x, &y, &labels, &HeadOptions::default()));
        assert_eq!(h.weight, h3.weight);
    }

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), 1.0);
        assert_eq!(roc_auc(&[(0.9, false), (0.1, true)]), 0.0);
        assert_eq!(roc_auc(&[(0.5, false), (0.5, true)]), 0.5);
        assert!(roc_auc(&[(0.5, true)]).is_nan());
    }
}
