//! The hyper-parameters block at the head of a fastText model file (`Args::save` in fastText).

use std::io::Write;

use super::binio::{put_f64, put_i32, Reader};

/// fastText's `model_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Cbow = 1,
    SkipGram = 2,
    Supervised = 3,
}

/// fastText's `loss_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    /// Hierarchical softmax over a Huffman tree of label counts.
    Hs = 1,
    /// Negative sampling (word vectors; not used by classifiers here).
    Ns = 2,
    Softmax = 3,
    /// One-vs-all: an independent sigmoid per label (multi-label).
    Ova = 4,
}

impl LossKind {
    pub fn parse(s: &str) -> Option<LossKind> {
        Some(match s {
            "hs" => LossKind::Hs,
            "ns" => LossKind::Ns,
            "softmax" => LossKind::Softmax,
            "ova" | "one-vs-all" => LossKind::Ova,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Hs => "hs",
            LossKind::Ns => "ns",
            LossKind::Softmax => "softmax",
            LossKind::Ova => "ova",
        }
    }
}

/// The stored arguments, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    pub dim: i32,
    pub ws: i32,
    pub epoch: i32,
    pub min_count: i32,
    pub neg: i32,
    pub word_ngrams: i32,
    pub loss: LossKind,
    pub model: ModelKind,
    pub bucket: i32,
    pub minn: i32,
    pub maxn: i32,
    pub lr_update_rate: i32,
    pub t: f64,
}

impl Default for Args {
    /// fastText's own defaults for `supervised`.
    fn default() -> Self {
        Args {
            dim: 100,
            ws: 5,
            epoch: 5,
            min_count: 1,
            neg: 5,
            word_ngrams: 1,
            loss: LossKind::Softmax,
            model: ModelKind::Supervised,
            bucket: 2_000_000,
            minn: 0,
            maxn: 0,
            lr_update_rate: 100,
            t: 1e-4,
        }
    }
}

impl Args {
    pub fn read(r: &mut Reader) -> Result<Args, String> {
        let dim = r.i32()?;
        let ws = r.i32()?;
        let epoch = r.i32()?;
        let min_count = r.i32()?;
        let neg = r.i32()?;
        let word_ngrams = r.i32()?;
        let loss = match r.i32()? {
            1 => LossKind::Hs,
            2 => LossKind::Ns,
            3 => LossKind::Softmax,
            4 => LossKind::Ova,
            v => return Err(format!("unknown loss {v}")),
        };
        let model = match r.i32()? {
            1 => ModelKind::Cbow,
            2 => ModelKind::SkipGram,
            3 => ModelKind::Supervised,
            v => return Err(format!("unknown model kind {v}")),
        };
        let a = Args {
            dim,
            ws,
            epoch,
            min_count,
            neg,
            word_ngrams,
            loss,
            model,
            bucket: r.i32()?,
            minn: r.i32()?,
            maxn: r.i32()?,
            lr_update_rate: r.i32()?,
            t: r.f64()?,
        };
        if !(1..=100_000).contains(&a.dim) {
            return Err(format!("bad dimension {}", a.dim));
        }
        if a.bucket < 0 || a.word_ngrams < 0 || a.maxn < 0 || a.minn < 0 || a.maxn > 64 {
            return Err("bad bucket or n-gram arguments".into());
        }
        Ok(a)
    }

    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        for v in [
            self.dim,
            self.ws,
            self.epoch,
            self.min_count,
            self.neg,
            self.word_ngrams,
            self.loss as i32,
            self.model as i32,
            self.bucket,
            self.minn,
            self.maxn,
            self.lr_update_rate,
        ] {
            put_i32(w, v)?;
        }
        put_f64(w, self.t)
    }
}
