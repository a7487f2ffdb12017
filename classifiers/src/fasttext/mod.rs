//! fastText models in pure Rust: reading `.bin` and quantized `.ftz` files, inference identical
//! to fastText's (`predict` with `k` and a threshold), training of supervised models
//! ([`train`]) that writes `.bin` files fastText itself loads, and the `classify.fasttext` stage.
//!
//! Layout of a model file (fastText version 12): magic and version, [`args::Args`], the
//! [`dict::Dictionary`], the input matrix (dense or product-quantized), the output matrix.
//! A line's features are its word ids, their character n-grams and word n-grams hashed into
//! `bucket` extra input rows; the hidden vector is their mean; the output layer is a softmax,
//! a hierarchical softmax over a Huffman tree of label counts, or one sigmoid per label.
//! Why not the C++ `fasttext` crate: `docs/classifiers.md`.

pub mod args;
mod binio;
pub mod dict;
pub mod matrix;
pub mod preprocess;
pub mod stage;
pub mod train;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::TextClassifier;
use args::{Args, LossKind, ModelKind};
use binio::{put_bool, put_i32, Reader};
use dict::{Dictionary, Scratch};
use matrix::Matrix;
pub use preprocess::Preprocess;

const MAGIC: i32 = 793_712_314;
const VERSION: i32 = 12;

/// A loaded fastText model.
pub struct FastText {
    pub args: Args,
    pub dict: Dictionary,
    input: Matrix,
    output: Matrix,
    labels: Vec<String>,
    tree: Option<HsTree>,
}

/// Reusable buffers for inference on one thread.
#[derive(Default)]
pub struct Session {
    text: String,
    feats: Vec<i32>,
    hidden: Vec<f32>,
    scratch: Scratch,
    probs: Vec<f32>,
}

/// fastText's `std_log`: the log it ranks and thresholds predictions by.
#[inline]
fn std_log(x: f32) -> f32 {
    (x + 1e-5).ln()
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-(x as f64)).exp())) as f32
}

/// fastText's table sigmoid (512 steps over [-8, 8]), which its one-vs-all `predict` uses.
#[inline]
fn table_sigmoid(x: f32) -> f32 {
    if x < -8.0 {
        0.0
    } else if x > 8.0 {
        1.0
    } else {
        let i = ((x + 8.0) * 512.0 / 8.0 / 2.0) as i64;
        let xi = (i * 16) as f32 / 512.0 - 8.0;
        (1.0 / (1.0 + (-xi).exp() as f64)) as f32
    }
}

impl FastText {
    /// Reads a `.bin` or `.ftz` file.
    pub fn load(path: &Path) -> Result<FastText> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        FastText::from_bytes(&bytes).map_err(|m| Error::format(path, m))
    }

    /// Parses a model from the bytes of its file.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<FastText, String> {
        let mut r = Reader::new(bytes);
        if r.i32().ok() != Some(MAGIC) {
            return Err("not a fastText model (bad magic number)".into());
        }
        let version = r.i32()?;
        if !(11..=VERSION).contains(&version) {
            return Err(format!("unsupported fastText file version {version}"));
        }
        let mut args = Args::read(&mut r)?;
        if version == 11 && args.model == ModelKind::Supervised {
            // Version 11 supervised models had no character n-grams.
            args.maxn = 0;
        }
        if args.model != ModelKind::Supervised {
            return Err("a word-vector model, not a supervised classifier".into());
        }
        let dict = Dictionary::read(&mut r, args.bucket, args.minn, args.maxn, args.word_ngrams)?;
        let quant_input = r.bool()?;
        let input = Matrix::read(&mut r, quant_input)?;
        if !quant_input && dict.is_pruned() {
            return Err("a pruned dictionary with a dense input matrix".into());
        }
        let qout = r.bool()?;
        let output = Matrix::read(&mut r, quant_input && qout)?;
        FastText::assemble(args, dict, input, output)
    }

    /// Checks shapes and builds the label tree.
    fn assemble(
        args: Args,
        dict: Dictionary,
        input: Matrix,
        output: Matrix,
    ) -> std::result::Result<FastText, String> {
        let dim = args.dim as usize;
        let nlabels = dict.nlabels();
        if nlabels == 0 {
            return Err("the model has no labels".into());
        }
        if input.cols() != dim || output.cols() != dim {
            return Err(format!(
                "matrix width {}/{} differs from dim {dim}",
                input.cols(),
                output.cols()
            ));
        }
        let pruned_rows = input.rows() < dict.nwords() + args.bucket as usize;
        if input.rows() < dict.nwords() || (!dict.is_pruned() && pruned_rows) {
            return Err(format!(
                "input matrix has {} rows, {} words and {} buckets expected",
                input.rows(),
                dict.nwords(),
                args.bucket
            ));
        }
        if output.rows() != nlabels {
            return Err(format!(
                "output matrix has {} rows for {nlabels} labels",
                output.rows()
            ));
        }
        let tree = (args.loss == LossKind::Hs).then(|| HsTree::new(&dict.label_counts()));
        let labels = dict.labels();
        Ok(FastText {
            args,
            dict,
            input,
            output,
            labels,
            tree,
        })
    }

    /// Writes the model in fastText's `.bin` layout (version 12).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |e| Error::io(path, e);
        let tmp = path.with_extension("bin.tmp");
        {
            let f = std::fs::File::create(&tmp).map_err(io)?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
            self.write(&mut w).map_err(io)?;
            w.flush().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        let (Matrix::Dense(input), Matrix::Dense(output)) = (&self.input, &self.output) else {
            return Err(std::io::Error::other(
                "writing quantized models is not supported",
            ));
        };
        put_i32(w, MAGIC)?;
        put_i32(w, VERSION)?;
        self.args.write(w)?;
        self.dict.write(w)?;
        put_bool(w, false)?;
        input.write(w)?;
        put_bool(w, false)?;
        output.write(w)
    }

    /// Label names (without `__label__`), in output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn dim(&self) -> usize {
        self.args.dim as usize
    }

    /// Feature ids of a normalized line.
    pub fn features(&self, line: &str, s: &mut Session) {
        s.feats.clear();
        self.dict
            .line_features(line.as_bytes(), &mut s.feats, &mut s.scratch);
    }

    /// The hidden vector of the features in `s.feats` (their mean input row), as fastText
    /// computes it. Returns false for a line without features.
    fn hidden(&self, s: &mut Session) -> bool {
        let dim = self.dim();
        s.hidden.clear();
        s.hidden.resize(dim, 0.0);
        if s.feats.is_empty() {
            return false;
        }
        match &self.input {
            Matrix::Dense(d) => matrix::sum_rows(d, &s.feats, &mut s.hidden),
            m => {
                for &f in &s.feats {
                    m.add_row_to(&mut s.hidden, f as usize);
                }
            }
        }
        let inv = (1.0 / s.feats.len() as f64) as f32;
        for h in &mut s.hidden {
            *h *= inv;
        }
        true
    }

    /// Probability of every label for the hidden vector in `s.hidden`, into `s.probs`: softmax,
    /// the product of branch probabilities down the Huffman tree (hierarchical softmax), or
    /// independent sigmoids (one-vs-all).
    fn output_probs(&self, s: &mut Session) {
        let n = self.labels.len();
        s.probs.clear();
        s.probs.resize(n, 0.0);
        match (&self.tree, self.args.loss) {
            (Some(tree), _) => tree.leaf_probs(&self.output, &s.hidden, &mut s.probs),
            (None, LossKind::Ova) => {
                for (i, p) in s.probs.iter_mut().enumerate() {
                    *p = table_sigmoid(self.output.dot_row(&s.hidden, i));
                }
            }
            _ => softmax_into(&self.output, &s.hidden, &mut s.probs),
        }
    }

    /// Probabilities of all labels for a raw text, normalized by `pre` first.
    pub fn probabilities(&self, text: &str, pre: &Preprocess, s: &mut Session) -> Vec<f32> {
        let mut t = std::mem::take(&mut s.text);
        pre.apply(text, &mut t);
        self.features(&t, s);
        s.text = t;
        if !self.hidden(s) {
            return vec![0.0; self.labels.len()];
        }
        self.output_probs(s);
        s.probs.clone()
    }

    /// The output layer before normalization (`output * hidden`, one value per output row):
    /// label logits for softmax and one-vs-all models. Ranking by a logit difference does not
    /// saturate the way `f32` probabilities do near 0 and 1.
    pub fn logits(&self, text: &str, pre: &Preprocess, s: &mut Session) -> Vec<f32> {
        let mut t = std::mem::take(&mut s.text);
        pre.apply(text, &mut t);
        self.features(&t, s);
        s.text = t;
        self.hidden(s);
        (0..self.output.rows())
            .map(|i| self.output.dot_row(&s.hidden, i))
            .collect()
    }

    /// fastText's `predict` on one normalized line: the `k` best labels (all when `k` is 0)
    /// whose probability is at least `threshold`, best first, as `(probability, label index)`.
    /// Scores are fastText's: `exp` of the summed `log(p + 1e-5)` along the path, so they equal
    /// what Python fastText's `predict` returns.
    pub fn predict_line(
        &self,
        line: &str,
        k: usize,
        threshold: f32,
        s: &mut Session,
    ) -> Vec<(f32, usize)> {
        self.features(line, s);
        if !self.hidden(s) {
            return Vec::new();
        }
        let k = if k == 0 { self.labels.len() } else { k };
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(k + 1);
        match &self.tree {
            Some(tree) => tree.dfs(
                &self.output,
                &s.hidden,
                k,
                std_log(threshold),
                tree.root(),
                0.0,
                &mut best,
            ),
            None => {
                self.output_probs(s);
                for (i, &p) in s.probs.iter().enumerate() {
                    if p < threshold {
                        continue;
                    }
                    push_best(&mut best, k, std_log(p), i);
                }
            }
        }
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best.into_iter().map(|(l, i)| (l.exp(), i)).collect()
    }

    /// [`FastText::predict_line`] on a raw text normalized by `pre`.
    pub fn predict(
        &self,
        text: &str,
        pre: &Preprocess,
        k: usize,
        threshold: f32,
        s: &mut Session,
    ) -> Vec<(f32, usize)> {
        let mut t = std::mem::take(&mut s.text);
        pre.apply(text, &mut t);
        let out = self.predict_line(&t, k, threshold, s);
        s.text = t;
        out
    }
}

/// Keeps the `k` best `(score, label)` pairs (a small sorted list; `k` is small in practice).
#[inline]
fn push_best(best: &mut Vec<(f32, usize)>, k: usize, score: f32, label: usize) {
    if best.len() == k {
        let worst = best
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .0.total_cmp(&b.1 .0));
        let (wi, w) = worst
            .map(|(i, w)| (i, w.0))
            .unwrap_or((0, f32::NEG_INFINITY));
        if score <= w {
            return;
        }
        best.swap_remove(wi);
    }
    best.push((score, label));
}

/// Softmax of `output * hidden` into `probs` (max-subtracted, as fastText).
fn softmax_into(output: &Matrix, hidden: &[f32], probs: &mut [f32]) {
    let mut max = f32::NEG_INFINITY;
    for (i, p) in probs.iter_mut().enumerate() {
        *p = output.dot_row(hidden, i);
        max = max.max(*p);
    }
    let mut z = 0.0f32;
    for p in probs.iter_mut() {
        *p = (*p - max).exp();
        z += *p;
    }
    for p in probs.iter_mut() {
        *p /= z;
    }
}

/// The Huffman tree of hierarchical softmax, built from label counts as fastText builds it.
#[derive(Clone, Debug)]
pub struct HsTree {
    /// Per node: left and right child (-1 for leaves).
    left: Vec<i32>,
    right: Vec<i32>,
    /// Per leaf: the internal nodes on the path to the root (as output rows) and the branch
    /// taken at each (true: right).
    pub paths: Vec<Vec<u32>>,
    pub codes: Vec<Vec<bool>>,
    osz: usize,
}

impl HsTree {
    pub fn new(counts: &[i64]) -> HsTree {
        let osz = counts.len();
        let nodes = 2 * osz - 1;
        let mut count = vec![1e15 as i64; nodes];
        let mut parent = vec![-1i32; nodes];
        let mut left = vec![-1i32; nodes];
        let mut right = vec![-1i32; nodes];
        let mut binary = vec![false; nodes];
        count[..osz].copy_from_slice(counts);
        let mut leaf = osz as i64 - 1;
        let mut node = osz;
        for i in osz..nodes {
            let mut mini = [0usize; 2];
            for m in &mut mini {
                if leaf >= 0 && count[leaf as usize] < count[node] {
                    *m = leaf as usize;
                    leaf -= 1;
                } else {
                    *m = node;
                    node += 1;
                }
            }
            left[i] = mini[0] as i32;
            right[i] = mini[1] as i32;
            count[i] = count[mini[0]] + count[mini[1]];
            parent[mini[0]] = i as i32;
            parent[mini[1]] = i as i32;
            binary[mini[1]] = true;
        }
        let mut paths = Vec::with_capacity(osz);
        let mut codes = Vec::with_capacity(osz);
        for i in 0..osz {
            let (mut p, mut c) = (Vec::new(), Vec::new());
            let mut j = i;
            while parent[j] != -1 {
                p.push((parent[j] as usize - osz) as u32);
                c.push(binary[j]);
                j = parent[j] as usize;
            }
            paths.push(p);
            codes.push(c);
        }
        HsTree {
            left,
            right,
            paths,
            codes,
            osz,
        }
    }

    fn root(&self) -> usize {
        2 * self.osz - 2
    }

    /// Exact leaf probabilities: the product of the branch sigmoids along each path.
    fn leaf_probs(&self, output: &Matrix, hidden: &[f32], probs: &mut [f32]) {
        if self.osz == 1 {
            probs[0] = 1.0;
            return;
        }
        let inner: Vec<f32> = (0..self.osz - 1)
            .map(|n| sigmoid(output.dot_row(hidden, n)))
            .collect();
        for (leaf, p) in probs.iter_mut().enumerate() {
            let mut v = 1.0f32;
            for (&n, &right) in self.paths[leaf].iter().zip(&self.codes[leaf]) {
                let f = inner[n as usize];
                v *= if right { f } else { 1.0 - f };
            }
            *p = v;
        }
    }

    /// fastText's depth-first search for the `k` best leaves, pruning by score.
    #[allow(clippy::too_many_arguments)]
    fn dfs(
        &self,
        output: &Matrix,
        hidden: &[f32],
        k: usize,
        log_threshold: f32,
        node: usize,
        score: f32,
        best: &mut Vec<(f32, usize)>,
    ) {
        if score < log_threshold {
            return;
        }
        if best.len() == k {
            let worst = best.iter().map(|b| b.0).fold(f32::INFINITY, f32::min);
            if score < worst {
                return;
            }
        }
        if self.left[node] == -1 && self.right[node] == -1 {
            push_best(best, k, score, node);
            return;
        }
        let f = sigmoid(output.dot_row(hidden, node - self.osz));
        let (l, r) = (self.left[node] as usize, self.right[node] as usize);
        self.dfs(
            output,
            hidden,
            k,
            log_threshold,
            l,
            score + std_log(1.0 - f),
            best,
        );
        self.dfs(
            output,
            hidden,
            k,
            log_threshold,
            r,
            score + std_log(f),
            best,
        );
    }
}

/// Label names of a model file's bytes, reading only its header and dictionary.
pub fn labels_from_bytes(bytes: &[u8]) -> std::result::Result<Vec<String>, String> {
    let mut r = Reader::new(bytes);
    if r.i32().ok() != Some(MAGIC) {
        return Err("not a fastText model (bad magic number)".into());
    }
    let version = r.i32()?;
    if !(11..=VERSION).contains(&version) {
        return Err(format!("unsupported fastText file version {version}"));
    }
    let args = Args::read(&mut r)?;
    // No n-grams: only the entries are needed.
    let dict = Dictionary::read(&mut r, 0, 0, 0, 1)?;
    if dict.nlabels() == 0 || args.model != ModelKind::Supervised {
        return Err("not a supervised fastText classifier".into());
    }
    Ok(dict.labels())
}

/// A fastText model serving [`TextClassifier`], with the text normalization it was trained with.
pub struct FastTextClassifier {
    pub model: Arc<FastText>,
    pub preprocess: Preprocess,
}

impl TextClassifier for FastTextClassifier {
    fn labels(&self) -> &[String] {
        self.model.labels()
    }

    fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut s = Session::default();
        Ok(texts
            .iter()
            .map(|t| self.model.probabilities(t, &self.preprocess, &mut s))
            .collect())
    }

    fn kind(&self) -> &'static str {
        "fasttext"
    }
}

/// Loads a fastText model file, serving with curate's default normalization
/// ([`Preprocess::default`]: lower-case, collapsed whitespace, bounded prefix).
pub fn load(path: &Path) -> Result<Box<dyn TextClassifier>> {
    Ok(Box::new(FastTextClassifier {
        model: Arc::new(FastText::load(path)?),
        preprocess: Preprocess::default(),
    }))
}
