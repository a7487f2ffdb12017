//! `filter.kl`: token-distribution KL divergence from a reference corpus (Llama 3, section
//! 3.1.1: documents with an excess of outlier tokens, such as markup, spam lists or gibberish,
//! are far from the distribution of the training corpus).
//!
//! Tokens are the shared word view, identified by their word hash (case-sensitive, punctuation
//! tokens included) and folded into `2^bits` buckets, so that a reference of any corpus size
//! fits in `4 * 2^bits` bytes. `curate kl-ref build` counts a reference corpus into a
//! [`KlReference`] file; the stage loads it once.
//!
//! For a document with token distribution `p` (empirical counts over its tokens) and the
//! reference `q`, the stage writes `kl = sum_t p(t) ln(p(t) / q(t))` in nats. `q` is smoothed
//! additively: `q(b) = (count(b) + alpha) / (total + alpha * 2^bits)`, so that a token the
//! reference never saw costs a large but finite amount (`alpha` is stored in the file, 0.5 by
//! default). Also written: the cross-entropy `sum p ln(1/q)`, the fraction of tokens unseen in
//! the reference and the token count. KL grows as a document gets shorter (a short
//! document's distribution is sparse), so `min_tokens` leaves short documents unjudged.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Purpose, StageArgs};
use crate::declare::{Declare, Declared, Sig, F64, I64};
use crate::error::{Error, Result};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

const MAGIC: &[u8; 8] = b"CURATEKL";
const VERSION: u32 = 1;

/// A reference token distribution: counts of word hashes folded into `2^bits` buckets.
#[derive(Clone, Debug, PartialEq)]
pub struct KlReference {
    pub bits: u32,
    /// Additive smoothing constant used when scoring.
    pub alpha: f64,
    /// Documents counted.
    pub docs: u64,
    /// Tokens counted.
    pub total: u64,
    pub counts: Vec<u32>,
}

impl KlReference {
    /// An empty reference with `2^bits` buckets (`bits` in 8..=26).
    pub fn new(bits: u32, alpha: f64) -> Self {
        KlReference {
            bits,
            alpha,
            docs: 0,
            total: 0,
            counts: vec![0; 1 << bits],
        }
    }

    #[inline]
    fn bucket(&self, hash: u64) -> usize {
        (hash >> (64 - self.bits)) as usize
    }

    /// Counts the tokens of one document.
    pub fn add(&mut self, doc: &Document) {
        for &h in doc.word_hashes() {
            let b = self.bucket(h);
            self.counts[b] = self.counts[b].saturating_add(1);
        }
        self.total += doc.word_hashes().len() as u64;
        self.docs += 1;
    }

    /// Adds another reference's counts (same `bits`).
    pub fn merge(&mut self, other: &KlReference) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.total += other.total;
        self.docs += other.docs;
    }

    /// Writes the file: magic, version, bits, alpha, docs, total, then the counts (all
    /// little-endian).
    pub fn write(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&self.bits.to_le_bytes())?;
        w.write_all(&self.alpha.to_le_bytes())?;
        w.write_all(&self.docs.to_le_bytes())?;
        w.write_all(&self.total.to_le_bytes())?;
        let mut buf = Vec::with_capacity(self.counts.len() * 4);
        for c in &self.counts {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        w.write_all(&buf)
    }

    /// Reads a file written by [`KlReference::write`].
    pub fn read(mut r: impl Read, path: &Path) -> Result<Self> {
        let bad = |m: &str| Error::Format {
            path: path.to_path_buf(),
            offset: 0,
            message: m.to_string(),
        };
        let mut head = [0u8; 40];
        r.read_exact(&mut head).map_err(|e| Error::io(path, e))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a curate KL reference (bad magic)"));
        }
        let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().expect("8 bytes"));
        if u32_at(8) != VERSION {
            return Err(bad("unsupported KL reference version"));
        }
        let bits = u32_at(12);
        if !(8..=26).contains(&bits) {
            return Err(bad("bucket bits out of range 8..=26"));
        }
        let alpha = f64::from_bits(u64_at(16));
        let (docs, total) = (u64_at(24), u64_at(32));
        let mut raw = vec![0u8; 4 << bits];
        r.read_exact(&mut raw).map_err(|e| Error::io(path, e))?;
        let counts = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        if alpha.is_nan() || alpha <= 0.0 {
            return Err(bad("smoothing alpha must be > 0"));
        }
        Ok(KlReference {
            bits,
            alpha,
            docs,
            total,
            counts,
        })
    }

    /// Smoothed log-probabilities per bucket, for scoring.
    pub fn log_probs(&self) -> Vec<f32> {
        let denom = self.total as f64 + self.alpha * self.counts.len() as f64;
        self.counts
            .iter()
            .map(|&c| ((c as f64 + self.alpha) / denom).ln() as f32)
            .collect()
    }
}

/// A loaded reference, ready to score.
pub struct KlScorer {
    bits: u32,
    /// Smoothed log-probability per bucket.
    log_q: Vec<f32>,
    /// Whether the reference saw each bucket, one bit per bucket (2^18 buckets take 32 KiB:
    /// with the table above, this stays in a core's L2 cache).
    seen: Vec<u64>,
    /// `c ln c` for small counts (most distinct tokens of a document occur a few times).
    c_ln_c: Vec<f64>,
}

/// The scores of one document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KlScore {
    pub tokens: usize,
    pub kl: f64,
    pub cross_entropy: f64,
    pub unseen_frac: f64,
}

impl KlScorer {
    pub fn new(r: &KlReference) -> Self {
        KlScorer {
            bits: r.bits,
            log_q: r.log_probs(),
            seen: {
                let mut bits = vec![0u64; r.counts.len().div_ceil(64)];
                for (i, &c) in r.counts.iter().enumerate() {
                    bits[i / 64] |= ((c > 0) as u64) << (i % 64);
                }
                bits
            },
            c_ln_c: (0..256).map(|c| c as f64 * (c as f64).ln()).collect(),
        }
    }

    /// Scores a document's tokens (see the module docs).
    pub fn score(&self, doc: &Document) -> KlScore {
        let hashes = doc.word_hashes();
        let n = hashes.len();
        if n == 0 {
            return KlScore::default();
        }
        // Cross-entropy needs no grouping; the entropy term needs a count per bucket, kept in
        // a small open-addressing table reused across documents.
        let (mut ce, mut unseen) = (0.0f64, 0usize);
        let entropy_sum = COUNTS.with(|cell| {
            let table = &mut *cell.borrow_mut();
            let cap = (2 * n).next_power_of_two().max(16);
            table.clear();
            table.resize(cap, (u32::MAX, 0));
            let mask = cap - 1;
            // Two loops: the table reads of the first are independent of one another, so
            // their cache misses overlap.
            for &h in hashes {
                let b = (h >> (64 - self.bits)) as usize;
                ce -= self.log_q[b] as f64;
                unseen += (!self.seen[b / 64] >> (b % 64) & 1) as usize;
            }
            for &h in hashes {
                let b = (h >> (64 - self.bits)) as u32;
                let mut k = (b.wrapping_mul(0x9E37_79B9) as usize) & mask;
                loop {
                    let slot = &mut table[k];
                    if slot.0 == b {
                        slot.1 += 1;
                        break;
                    }
                    if slot.0 == u32::MAX {
                        *slot = (b, 1);
                        break;
                    }
                    k = (k + 1) & mask;
                }
            }
            let s: f64 = table
                .iter()
                .filter(|s| s.0 != u32::MAX)
                .map(|s| match self.c_ln_c.get(s.1 as usize) {
                    Some(&v) => v,
                    None => s.1 as f64 * (s.1 as f64).ln(),
                })
                .sum();
            if table.capacity() > 1 << 22 {
                *table = Vec::new();
            }
            s
        });
        let nf = n as f64;
        // sum_t p ln p = (1/n) sum_b c_b ln c_b - ln n
        let neg_entropy = entropy_sum / nf - nf.ln();
        let cross_entropy = ce / nf;
        KlScore {
            tokens: n,
            kl: (neg_entropy + cross_entropy).max(0.0),
            cross_entropy,
            unseen_frac: unseen as f64 / nf,
        }
    }
}

thread_local! {
    /// Per-document bucket counts, reused (cleared, not freed) between documents.
    static COUNTS: std::cell::RefCell<Vec<(u32, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `[stages.kl]`: KL divergence from a reference token distribution.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlConfig {
    /// The reference file written by `curate kl-ref build` (relative to the config file).
    pub reference: String,
    /// Documents whose KL divergence exceeds this (nats) are outliers.
    pub max_kl: f64,
    /// Documents with fewer tokens are not judged (their KL is unreliable).
    #[serde(default = "default_min_tokens")]
    pub min_tokens: u64,
}

fn default_min_tokens() -> u64 {
    100
}

pub static DEF: StageDef = StageDef {
    kind: "filter.kl",
    about: "Token-distribution KL divergence from a reference corpus (Llama 3): flags outlier documents",
    example: "reference = \"kl-ref.bin\"\nmax_kl = 6.0\nmin_tokens = 100",
    build,
};

pub struct Kl {
    name: String,
    scorer: Option<Arc<KlScorer>>,
    sig_kl: Sig<F64>,
    sig_ce: Sig<F64>,
    sig_unseen: Sig<F64>,
    sig_tokens: Sig<I64>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: KlConfig = args.parse()?;
    if cfg.max_kl.is_nan() || cfg.max_kl < 0.0 {
        return Err(ConfigError::new("max_kl", "must be a number >= 0"));
    }
    let path = args.resolve_path("reference", &cfg.reference)?;
    let scorer = if args.purpose == Purpose::Run {
        let f = std::fs::File::open(&path)
            .map_err(|e| ConfigError::new("reference", format!("{}: {e}", path.display())))?;
        let r = KlReference::read(std::io::BufReader::new(f), &path)
            .map_err(|e| ConfigError::new("reference", e.to_string()))?;
        Some(Arc::new(KlScorer::new(&r)))
    } else {
        None
    };
    let mut d = Declare::new(args.name);
    let kl = d.signal::<F64>("kl", "KL(doc || reference), nats");
    let ce = d.signal::<F64>(
        "cross_entropy",
        "cross-entropy to the reference, nats per token",
    );
    let unseen = d.signal::<F64>("unseen_frac", "fraction of tokens the reference never saw");
    let tokens = d.signal::<I64>("tokens", "tokens scored");
    // Too few tokens say nothing about a page's distribution.
    d.max(kl, Some(cfg.max_kl), "max_kl", "kl_outlier")
        .only_if(tokens, cfg.min_tokens as f64);
    Ok(Built::Map(Box::new(Kl {
        name: args.name.to_string(),
        scorer,
        sig_kl: kl,
        sig_ce: ce,
        sig_unseen: unseen,
        sig_tokens: tokens,
        declared: d.finish(),
    })))
}

impl Stage for Kl {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(scorer) = &self.scorer else {
            return Outcome::Keep;
        };
        let s = scorer.score(doc);
        let sig = &mut doc.signals;
        self.sig_kl.set(sig, s.kl);
        self.sig_ce.set(sig, s.cross_entropy);
        self.sig_unseen.set(sig, s.unseen_frac);
        self.sig_tokens.set(sig, s.tokens as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prose(i: usize) -> String {
        format!(
            "The keepers of lighthouse number {i} wrote in their log every night. They noted \
             the weather, the ships that passed and the state of the lamp, and in the morning \
             they cleaned the glass and trimmed the wick before they went to sleep. The work \
             was hard, but the families that lived in the towers were proud of it."
        )
    }

    #[test]
    fn reference_round_trips_and_outliers_score_high() {
        let mut r = KlReference::new(16, 0.5);
        for i in 0..200 {
            r.add(&Document::new("r", prose(i)));
        }
        let mut buf = Vec::new();
        r.write(&mut buf).unwrap();
        let back = KlReference::read(&buf[..], Path::new("mem")).unwrap();
        assert_eq!(back, r);
        assert!(KlReference::read(
            &b"not a reference at all, nope, no........"[..],
            Path::new("x")
        )
        .is_err());

        let sc = KlScorer::new(&r);
        let normal = sc.score(&Document::new("n", prose(7)));
        let markup = sc.score(&Document::new(
            "m",
            "<div class=\"x\"><span>{{ item }}</span></div> | | | {% endfor %} ".repeat(8),
        ));
        let gibberish = sc.score(&Document::new("g", "qzx vbnm wkrt plok zzyq ".repeat(10)));
        assert!(
            normal.kl < markup.kl && normal.kl < gibberish.kl,
            "{normal:?} {markup:?} {gibberish:?}"
        );
        assert!(gibberish.unseen_frac > 0.9 && normal.unseen_frac == 0.0);
        // KL is never negative, and cross-entropy = KL + entropy.
        assert!(normal.kl >= 0.0 && normal.cross_entropy > normal.kl);
    }

    #[test]
    fn stage_reads_the_reference_and_judges() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = KlReference::new(12, 0.5);
        for i in 0..50 {
            r.add(&Document::new("r", prose(i)));
        }
        r.write(std::fs::File::create(dir.path().join("ref.bin")).unwrap())
            .unwrap();
        let build = |body: &str| crate::kit::build_in(&DEF, "kl", body, Purpose::Run, dir.path());
        let Ok(Built::Map(s)) = build(&DEF.example.replace("kl-ref.bin", "ref.bin")) else {
            panic!("build")
        };
        let mut d = Document::new("g", "qzx vbnm wkrt plok zzyq ".repeat(30));
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("kl_outlier"));
        let mut d = Document::new("p", format!("{} {}", prose(3), prose(4)));
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Keep, "{:?}", d.signals);
        // A missing reference names the key.
        let e = build("reference = \"nope.bin\"\nmax_kl = 1.0")
            .err()
            .unwrap();
        assert_eq!(e.key, "reference");
    }
}
