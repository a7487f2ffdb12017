//! Supervised training of fastText classifiers, written as fastText `.bin` files.
//!
//! The algorithm is fastText's: the hidden vector is the mean of the input rows of a line's
//! features (words, character n-grams, word n-grams), the output layer is a softmax (or
//! hierarchical softmax, or one sigmoid per label), plain SGD with a learning rate decaying
//! linearly to zero over all epochs, the input gradient divided by the feature count. Two
//! choices differ, both for reproducible quality: examples are shuffled with the seed at every
//! epoch (fastText reads its file in order, so a file sorted by label trains badly), and a line's
//! features are computed once, not again at every epoch (faster; same features). One thread
//! with one seed gives byte-identical models.

use std::collections::HashMap;

use super::args::{Args, LossKind, ModelKind};
use super::dict::{is_space, Dictionary, Entry, EntryKind, Scratch, EOS, LABEL_PREFIX};
use super::matrix::{axpy, dot, Dense, Matrix};
use super::preprocess::Preprocess;
use super::FastText;
use crate::error::{Error, Result};

/// Training hyper-parameters. The defaults are `curate train fasttext`'s (chosen on the
/// validation splits of the shared classifier data: `docs/classifiers.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub epoch: u32,
    pub lr: f32,
    pub dim: usize,
    /// Longest word n-gram (1: words only).
    pub word_ngrams: u32,
    /// Hash buckets shared by word and character n-grams.
    pub buckets: u32,
    /// Words seen fewer times are left out of the vocabulary.
    pub min_count: u32,
    /// Character n-gram lengths (`maxn = 0`: none).
    pub minn: u32,
    pub maxn: u32,
    pub loss: LossKind,
    pub seed: u64,
    pub preprocess: Preprocess,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epoch: 25,
            lr: 0.5,
            dim: 32,
            word_ngrams: 1,
            buckets: 200_000,
            min_count: 2,
            minn: 0,
            maxn: 0,
            loss: LossKind::Softmax,
            seed: 1,
            preprocess: Preprocess::default(),
        }
    }
}

impl TrainOptions {
    /// Checks ranges; the error names the option.
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        let bad = |k: &'static str, m: &str| Err((k, m.to_string()));
        if self.epoch == 0 || self.epoch > 10_000 {
            return bad("epoch", "must be in 1..=10000");
        }
        if !(self.lr > 0.0 && self.lr <= 10.0) {
            return bad("lr", "must be in (0, 10]");
        }
        if self.dim == 0 || self.dim > 4096 {
            return bad("dim", "must be in 1..=4096");
        }
        if self.word_ngrams == 0 || self.word_ngrams > 10 {
            return bad("word-ngrams", "must be in 1..=10");
        }
        if self.buckets > 100_000_000 {
            return bad("buckets", "at most 100000000");
        }
        if self.maxn > 0 && (self.minn == 0 || self.minn > self.maxn || self.maxn > 16) {
            return bad("minn", "needs 1 <= minn <= maxn <= 16");
        }
        if self.loss == LossKind::Ns {
            return bad(
                "loss",
                "negative sampling is for word vectors; use softmax, hs or ova",
            );
        }
        Ok(())
    }
}

/// What training saw, for the command's report.
#[derive(Clone, Debug, Default)]
pub struct TrainReport {
    pub examples: usize,
    pub skipped_empty: usize,
    pub words: usize,
    pub labels: Vec<(String, usize)>,
    pub tokens: u64,
    pub seconds: f64,
    /// Mean loss over the last epoch.
    pub last_epoch_loss: f64,
}

/// A deterministic generator (SplitMix64) for initialization and shuffling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[-a, a)`.
    fn uniform(&mut self, a: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * a
    }
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// Collects examples, then trains.
pub struct Trainer {
    opts: TrainOptions,
    texts: Vec<String>,
    labels: Vec<u32>,
    label_names: Vec<String>,
    label_ids: HashMap<String, u32>,
    skipped_empty: usize,
    buf: String,
}

impl Trainer {
    pub fn new(opts: TrainOptions) -> Trainer {
        Trainer {
            opts,
            texts: Vec::new(),
            labels: Vec::new(),
            label_names: Vec::new(),
            label_ids: HashMap::new(),
            skipped_empty: 0,
            buf: String::new(),
        }
    }

    /// Adds one example (the text is normalized now and only its bounded prefix is kept).
    /// Returns false (and counts it) when the normalized text is empty.
    pub fn add(&mut self, label: &str, text: &str) -> bool {
        self.opts.preprocess.apply(text, &mut self.buf);
        if self.buf.is_empty() {
            self.skipped_empty += 1;
            return false;
        }
        let next = self.label_names.len() as u32;
        let id = *self.label_ids.entry(label.to_string()).or_insert(next);
        if id == next {
            self.label_names.push(label.to_string());
        }
        self.labels.push(id);
        self.texts.push(self.buf.clone());
        true
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// Builds the dictionary and trains on one thread.
    pub fn train(self) -> Result<(FastText, TrainReport)> {
        let start = std::time::Instant::now();
        let o = self.opts.clone();
        o.validate()
            .map_err(|(k, m)| Error::Run(format!("--{k}: {m}")))?;
        if self.label_names.len() < 2 {
            return Err(Error::Run(format!(
                "training needs at least two labels, found {:?}",
                self.label_names
            )));
        }
        // Vocabulary: counts and first appearance (ties sort by it, so the order is stable).
        let mut counts: HashMap<&str, (i64, usize)> = HashMap::new();
        let mut ntokens: i64 = 0;
        for t in &self.texts {
            for tok in t.split(|c: char| c.is_ascii() && is_space(c as u8)) {
                if tok.is_empty() || tok.starts_with(LABEL_PREFIX) {
                    continue;
                }
                let n = counts.len();
                counts.entry(tok).or_insert((0, n)).0 += 1;
                ntokens += 1;
            }
            ntokens += 2; // the end-of-line token and the label
        }
        let lines = self.texts.len() as i64;
        let mut words: Vec<(&str, i64, usize)> = counts
            .iter()
            .filter(|(w, (c, _))| *c >= o.min_count as i64 && **w != EOS)
            .map(|(w, (c, f))| (*w, *c, *f))
            .collect();
        words.push((EOS, lines, 0));
        words.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(b.0)));
        let mut label_counts = vec![0i64; self.label_names.len()];
        for &l in &self.labels {
            label_counts[l as usize] += 1;
        }
        let mut label_order: Vec<usize> = (0..self.label_names.len()).collect();
        label_order.sort_by(|&a, &b| label_counts[b].cmp(&label_counts[a]).then(a.cmp(&b)));
        let mut row_of_label = vec![0u32; self.label_names.len()];
        for (row, &l) in label_order.iter().enumerate() {
            row_of_label[l] = row as u32;
        }
        let mut entries: Vec<Entry> = words
            .iter()
            .map(|(w, c, _)| Entry {
                word: w.as_bytes().to_vec(),
                count: *c,
                kind: EntryKind::Word,
            })
            .collect();
        let nwords = entries.len();
        for &l in &label_order {
            entries.push(Entry {
                word: format!("{LABEL_PREFIX}{}", self.label_names[l]).into_bytes(),
                count: label_counts[l],
                kind: EntryKind::Label,
            });
        }
        drop(counts);
        let bucket = if o.word_ngrams <= 1 && o.maxn == 0 {
            0
        } else {
            o.buckets as i32
        };
        let args = Args {
            dim: o.dim as i32,
            epoch: o.epoch as i32,
            min_count: o.min_count as i32,
            word_ngrams: o.word_ngrams as i32,
            loss: o.loss,
            model: ModelKind::Supervised,
            bucket,
            minn: if o.maxn == 0 { 0 } else { o.minn as i32 },
            maxn: o.maxn as i32,
            ..Args::default()
        };
        let dict = Dictionary::new(
            entries,
            ntokens,
            None,
            args.bucket,
            args.minn,
            args.maxn,
            args.word_ngrams,
        )
        .map_err(Error::Run)?;

        // Features of every example, computed once.
        let mut feats: Vec<i32> = Vec::new();
        let mut offsets: Vec<usize> = Vec::with_capacity(self.texts.len() + 1);
        let mut example_tokens: Vec<u32> = Vec::with_capacity(self.texts.len());
        let mut scratch = Scratch::default();
        offsets.push(0);
        let texts = self.texts;
        for t in &texts {
            let n = dict.line_features(t.as_bytes(), &mut feats, &mut scratch);
            example_tokens.push(n as u32 + 1);
            offsets.push(feats.len());
        }
        drop(texts);
        let targets: Vec<u32> = self
            .labels
            .iter()
            .map(|&l| row_of_label[l as usize])
            .collect();

        let dim = o.dim;
        let nlabels = self.label_names.len();
        let mut rng = Rng(o.seed ^ 0x5EED_F00D_CAFE_0001);
        let mut input = Dense::zeros(nwords + bucket as usize, dim);
        let a = 1.0 / dim as f32;
        for v in &mut input.data {
            *v = rng.uniform(a);
        }
        let mut output = Dense::zeros(nlabels, dim);
        let tree = (o.loss == LossKind::Hs).then(|| super::HsTree::new(&dict.label_counts()));

        let total_tokens = o.epoch as f64 * example_tokens.iter().map(|&t| t as f64).sum::<f64>();
        let mut seen_tokens = 0f64;
        let mut order: Vec<u32> = (0..targets.len() as u32).collect();
        let mut hidden = vec![0f32; dim];
        let mut grad = vec![0f32; dim];
        let mut out = vec![0f32; nlabels];
        let mut last_loss = 0f64;
        for _ in 0..o.epoch {
            for i in (1..order.len()).rev() {
                let j = rng.below(i + 1);
                order.swap(i, j);
            }
            let mut epoch_loss = 0f64;
            let mut counted = 0usize;
            for &e in &order {
                let e = e as usize;
                let lr = o.lr * (1.0 - (seen_tokens / total_tokens) as f32).max(0.0);
                seen_tokens += example_tokens[e] as f64;
                let f = &feats[offsets[e]..offsets[e + 1]];
                if f.is_empty() {
                    continue;
                }
                hidden.iter_mut().for_each(|h| *h = 0.0);
                for &id in f {
                    axpy(&mut hidden, 1.0, input.row(id as usize));
                }
                let inv = (1.0 / f.len() as f64) as f32;
                hidden.iter_mut().for_each(|h| *h *= inv);
                grad.iter_mut().for_each(|g| *g = 0.0);
                let target = targets[e] as usize;
                let loss = match (&tree, o.loss) {
                    (Some(tree), _) => {
                        let mut loss = 0f64;
                        for (&node, &right) in tree.paths[target].iter().zip(&tree.codes[target]) {
                            loss += binary_logistic(
                                &mut output,
                                node as usize,
                                right,
                                lr,
                                &hidden,
                                &mut grad,
                            );
                        }
                        loss
                    }
                    (None, LossKind::Ova) => {
                        let mut loss = 0f64;
                        for l in 0..nlabels {
                            loss += binary_logistic(
                                &mut output,
                                l,
                                l == target,
                                lr,
                                &hidden,
                                &mut grad,
                            );
                        }
                        loss
                    }
                    _ => {
                        let mut max = f32::NEG_INFINITY;
                        for (l, p) in out.iter_mut().enumerate() {
                            *p = dot(output.row(l), &hidden);
                            max = max.max(*p);
                        }
                        let mut z = 0f32;
                        for p in out.iter_mut() {
                            *p = (*p - max).exp();
                            z += *p;
                        }
                        for (l, p) in out.iter_mut().enumerate() {
                            *p /= z;
                            let alpha = lr * ((l == target) as u8 as f32 - *p);
                            axpy(&mut grad, alpha, output.row(l));
                            axpy(output.row_mut(l), alpha, &hidden);
                        }
                        -((out[target] + 1e-5) as f64).ln()
                    }
                };
                epoch_loss += loss;
                counted += 1;
                grad.iter_mut().for_each(|g| *g *= inv);
                for &id in f {
                    axpy(input.row_mut(id as usize), 1.0, &grad);
                }
            }
            last_loss = epoch_loss / counted.max(1) as f64;
        }

        let report = TrainReport {
            examples: targets.len(),
            skipped_empty: self.skipped_empty,
            words: nwords,
            labels: label_order
                .iter()
                .map(|&l| (self.label_names[l].clone(), label_counts[l] as usize))
                .collect(),
            tokens: ntokens as u64,
            seconds: start.elapsed().as_secs_f64(),
            last_epoch_loss: last_loss,
        };
        let model = FastText::assemble(args, dict, Matrix::Dense(input), Matrix::Dense(output))
            .map_err(Error::Run)?;
        Ok((model, report))
    }
}

/// One binary logistic unit (hierarchical softmax node or one-vs-all label): updates the
/// output row and accumulates the input gradient; returns its loss.
#[inline]
fn binary_logistic(
    output: &mut Dense,
    row: usize,
    label: bool,
    lr: f32,
    hidden: &[f32],
    grad: &mut [f32],
) -> f64 {
    let score = super::sigmoid(dot(output.row(row), hidden));
    let alpha = lr * (label as u8 as f32 - score);
    axpy(grad, alpha, output.row(row));
    axpy(output.row_mut(row), alpha, hidden);
    let p = if label { score } else { 1.0 - score };
    -((p + 1e-5) as f64).ln()
}
