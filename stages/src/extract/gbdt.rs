//! Small gradient-boosted trees for the block scorer ([`super::blocks`]): depth-limited
//! regression trees fitted to the gradient of the log loss (Newton leaves, as XGBoost does),
//! so that the model can read interactions a linear model cannot (a link-dense line near the
//! end of the content, a short line under a caption class, a line between two headings).
//!
//! Training bins each feature once (up to [`TreeOptions::bins`] cut points taken from the
//! sorted values), then grows each tree depth-first from per-bin sums of gradient and
//! Hessian. Features are searched in parallel but each one's sums run in example order, and
//! ties between splits go to the first feature and the lowest cut, so the same examples
//! always give the same trees. A forest is written as text (one node per line, in preorder, features by
//! name) and read back by [`Forest::parse`].

/// One node of a tree, in preorder: a split's left child follows it, `right` is the index of
/// its right child.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Split { feature: u16, at: f32, right: u32 },
    Leaf(f32),
}

/// A sum of trees over the feature vector: the log-odds that a line is content.
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    pub base: f32,
    pub trees: Vec<Vec<Node>>,
}

impl Forest {
    /// The log-odds of `x`: a feature at or below a split's cut goes left.
    pub fn margin(&self, x: &[f32]) -> f32 {
        let mut z = self.base;
        for t in &self.trees {
            let mut i = 0usize;
            loop {
                match t[i] {
                    Node::Leaf(v) => {
                        z += v;
                        break;
                    }
                    Node::Split { feature, at, right } => {
                        i = if x[feature as usize] <= at {
                            i + 1
                        } else {
                            right as usize
                        };
                    }
                }
            }
        }
        z
    }

    /// The forest as text: `base B`, then per tree a `tree` line and its nodes in preorder
    /// (`split FEATURE CUT` or `leaf VALUE`).
    pub fn to_text(&self, names: &[String]) -> String {
        let mut s = format!("base {}\n", self.base);
        for t in &self.trees {
            s.push_str("tree\n");
            for n in t {
                match n {
                    Node::Split { feature, at, .. } => {
                        s.push_str(&format!("split {} {}\n", names[*feature as usize], at))
                    }
                    Node::Leaf(v) => s.push_str(&format!("leaf {v}\n")),
                }
            }
        }
        s
    }

    /// Reads [`Forest::to_text`]'s lines (`lines` yields line number and text, comments and
    /// other keys already taken out); errors name the line.
    pub fn parse<'a>(
        lines: impl Iterator<Item = (usize, &'a str)>,
        names: &[String],
    ) -> Result<Forest, String> {
        let mut base = None;
        let mut trees: Vec<Vec<Node>> = Vec::new();
        // The line each tree starts on (for errors).
        let mut starts: Vec<usize> = Vec::new();
        for (no, line) in lines {
            let toks: Vec<&str> = line.split_whitespace().collect();
            let key = toks.first().copied().unwrap_or("");
            let bad = |what: &str| format!("line {no}: {what}");
            let value = |k: usize, what: &str| -> Result<f32, String> {
                toks.get(k)
                    .ok_or_else(|| bad(&format!("{key} without {what}")))?
                    .parse::<f32>()
                    .map_err(|e| bad(&format!("{key}: {e}")))
            };
            match key {
                "base" => base = Some(value(1, "a value")?),
                "tree" => {
                    trees.push(Vec::new());
                    starts.push(no);
                }
                "leaf" => {
                    let v = value(1, "a value")?;
                    trees
                        .last_mut()
                        .ok_or_else(|| bad("node before `tree`"))?
                        .push(Node::Leaf(v));
                }
                "split" => {
                    let name = toks.get(1).copied().unwrap_or("");
                    let feature = names
                        .iter()
                        .position(|n| n == name)
                        .ok_or_else(|| bad(&format!("unknown feature {name:?}")))?;
                    let at = value(2, "a cut")?;
                    trees
                        .last_mut()
                        .ok_or_else(|| bad("node before `tree`"))?
                        .push(Node::Split {
                            feature: feature as u16,
                            at,
                            right: 0,
                        });
                }
                _ => return Err(bad(&format!("unknown key {key:?}"))),
            }
        }
        for (t, no) in trees.iter_mut().zip(&starts) {
            // Where each node's subtree ends, from the back: a leaf is one node, a split is
            // itself, its left subtree and then its right one.
            let n = t.len();
            let mut end = vec![usize::MAX; n + 1];
            for i in (0..n).rev() {
                end[i] = match t[i] {
                    Node::Leaf(_) => i + 1,
                    Node::Split { .. } => {
                        let r = end[i + 1];
                        if r >= n {
                            usize::MAX
                        } else {
                            end[r]
                        }
                    }
                };
            }
            if n == 0 || end[0] != n {
                return Err(format!("line {no}: the tree is not one complete tree"));
            }
            for i in 0..n {
                let r = end[i + 1] as u32;
                if let Node::Split { right, .. } = &mut t[i] {
                    *right = r;
                }
            }
        }
        Ok(Forest {
            base: base.ok_or("no base line")?,
            trees,
        })
    }
}

/// Boosting settings.
#[derive(Clone, Debug)]
pub struct TreeOptions {
    pub trees: usize,
    pub depth: usize,
    /// Shrinkage of each tree's leaves.
    pub rate: f64,
    /// L2 penalty on leaf values (in units of summed Hessian).
    pub lambda: f64,
    /// A child needs at least this summed Hessian.
    pub min_child: f64,
    /// Cut points per feature (at most 255).
    pub bins: usize,
}

impl Default for TreeOptions {
    fn default() -> Self {
        TreeOptions {
            trees: 60,
            depth: 4,
            rate: 0.2,
            lambda: 1.0,
            min_child: 0.2,
            bins: 32,
        }
    }
}

impl TreeOptions {
    /// The configurations nested cross-validation chooses from (`train::write_cv`), fixed
    /// before any of them was scored: the default, more and deeper trees with a smaller
    /// step, and fewer, shallower ones.
    pub fn candidates() -> Vec<TreeOptions> {
        let d = TreeOptions::default();
        vec![
            d.clone(),
            TreeOptions {
                trees: 120,
                depth: 5,
                rate: 0.1,
                ..d.clone()
            },
            TreeOptions {
                trees: 40,
                depth: 3,
                rate: 0.3,
                ..d
            },
        ]
    }
}

/// Cut points of one feature: a value at or below `cuts[b]` (and above `cuts[b - 1]`) is in
/// bin `b`; values above the last cut are in the last bin.
fn cuts_of(values: &mut [f32], bins: usize) -> Vec<f32> {
    values.sort_by(f32::total_cmp);
    let mut uniq: Vec<f32> = values.to_vec();
    uniq.dedup();
    if uniq.len() <= bins + 1 {
        uniq.pop();
        return uniq;
    }
    let n = values.len();
    let max = values[n - 1];
    let mut cuts: Vec<f32> = Vec::new();
    for q in 1..=bins {
        let v = values[(q * n / (bins + 1)).min(n - 1)];
        if v < max && cuts.last().is_none_or(|&c| v > c) {
            cuts.push(v);
        }
    }
    cuts
}

/// Fits a forest to labelled, weighted feature vectors (`y`: the line is content).
pub fn train(xs: &[&[f32]], y: &[bool], w: &[f32], opts: &TreeOptions) -> Forest {
    let n = xs.len();
    let d = xs.first().map_or(0, |x| x.len());
    let bins = opts.bins.clamp(1, 255);
    // Per feature: its cuts and each example's bin (column-major).
    let cols: Vec<(Vec<f32>, Vec<u8>)> = (0..d)
        .map(|f| {
            let mut v: Vec<f32> = xs.iter().map(|x| x[f]).collect();
            let cuts = cuts_of(&mut v, bins);
            let b = xs
                .iter()
                .map(|x| cuts.partition_point(|c| *c < x[f]) as u8)
                .collect();
            (cuts, b)
        })
        .collect();
    let wsum: f64 = w.iter().map(|&v| v as f64).sum::<f64>().max(1e-12);
    let pos: f64 = y
        .iter()
        .zip(w)
        .filter(|(y, _)| **y)
        .map(|(_, &v)| v as f64)
        .sum();
    let rate = (pos / wsum).clamp(1e-4, 1.0 - 1e-4);
    let base = (rate / (1.0 - rate)).ln() as f32;
    let mut z = vec![base as f64; n];
    let mut trees = Vec::with_capacity(opts.trees);
    let mut g = vec![0f64; n];
    let mut h = vec![0f64; n];
    for _ in 0..opts.trees {
        for i in 0..n {
            let p = 1.0 / (1.0 + (-z[i]).exp());
            let t = if y[i] { 1.0 } else { 0.0 };
            g[i] = w[i] as f64 * (p - t);
            h[i] = w[i] as f64 * (p * (1.0 - p)).max(1e-6);
        }
        let mut tree = Vec::new();
        let idx: Vec<u32> = (0..n as u32).collect();
        grow(&cols, &g, &h, idx, 0, opts, &mut tree);
        // Leaves as the file writes them (f32), so a trained forest scores as its file does.
        for (i, z) in z.iter_mut().enumerate() {
            *z += leaf_of(&tree, &cols, i) as f64;
        }
        trees.push(tree);
    }
    Forest { base, trees }
}

/// The leaf value an example of the training set reaches (by its bins, which agree with the
/// cuts: a bin at or below `b` is a value at or below `cuts[b]`).
fn leaf_of(tree: &[Node], cols: &[(Vec<f32>, Vec<u8>)], i: usize) -> f32 {
    let mut k = 0usize;
    loop {
        match tree[k] {
            Node::Leaf(v) => return v,
            Node::Split { feature, at, right } => {
                let (cuts, b) = &cols[feature as usize];
                let bin = b[i] as usize;
                let left = bin < cuts.len() && cuts[bin] <= at;
                k = if left { k + 1 } else { right as usize };
            }
        }
    }
}

/// Grows one subtree over the examples `idx`, appending its nodes in preorder.
fn grow(
    cols: &[(Vec<f32>, Vec<u8>)],
    g: &[f64],
    h: &[f64],
    idx: Vec<u32>,
    depth: usize,
    opts: &TreeOptions,
    out: &mut Vec<Node>,
) {
    let (gs, hs) = idx.iter().fold((0f64, 0f64), |(a, b), &i| {
        (a + g[i as usize], b + h[i as usize])
    });
    let leaf = |gs: f64, hs: f64| Node::Leaf((-gs / (hs + opts.lambda) * opts.rate) as f32);
    if depth >= opts.depth || hs < 2.0 * opts.min_child {
        out.push(leaf(gs, hs));
        return;
    }
    let parent = gs * gs / (hs + opts.lambda);
    // Best split per feature (features in parallel; each one's sums in example order).
    use rayon::prelude::*;
    let best = cols
        .par_iter()
        .enumerate()
        .map(|(f, (cuts, b))| {
            let nb = cuts.len() + 1;
            let mut hg = vec![0f64; nb];
            let mut hh = vec![0f64; nb];
            for &i in &idx {
                let k = b[i as usize] as usize;
                hg[k] += g[i as usize];
                hh[k] += h[i as usize];
            }
            let (mut gl, mut hl) = (0f64, 0f64);
            let mut best: Option<(f64, usize, usize)> = None;
            for k in 0..nb - 1 {
                gl += hg[k];
                hl += hh[k];
                let (gr, hr) = (gs - gl, hs - hl);
                if hl < opts.min_child || hr < opts.min_child {
                    continue;
                }
                let gain = gl * gl / (hl + opts.lambda) + gr * gr / (hr + opts.lambda) - parent;
                if best.is_none_or(|(bg, _, _)| gain > bg) {
                    best = Some((gain, f, k));
                }
            }
            best
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .fold(None, |acc: Option<(f64, usize, usize)>, c| match acc {
            Some(a) if a.0 >= c.0 => Some(a),
            _ => Some(c),
        });
    let Some((_, f, k)) = best.filter(|b| b.0 > 1e-9) else {
        out.push(leaf(gs, hs));
        return;
    };
    let (cuts, b) = &cols[f];
    let (left, right): (Vec<u32>, Vec<u32>) =
        idx.iter().partition(|&&i| b[i as usize] as usize <= k);
    // The parent's list is not needed below this split.
    drop(idx);
    let here = out.len();
    out.push(Node::Split {
        feature: f as u16,
        at: cuts[k],
        right: 0,
    });
    grow(cols, g, h, left, depth + 1, opts, out);
    let r = out.len() as u32;
    if let Node::Split { right, .. } = &mut out[here] {
        *right = r;
    }
    grow(cols, g, h, right, depth + 1, opts, out);
}
