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
//!
//! Per language (`per_language = true`, `lang_references = "DIR"`): `curate kl-ref build
//! --by-language` writes one reference per language of a labelled corpus (`DIR/<lang>.bin`),
//! each with its own `max_kl` set where that language's reference text sits (the 95%
//! quantile of its documents' leave-one-out KL: each document scored against the reference
//! without its own counts, so the number is not flattered by the document itself). A page is
//! scored against its language's reference and judged by its `max_kl`; `rules` says which
//! (`neutral` for a language without a reference: not scored, not judged; `en` and pages
//! without a `lang` use `reference` and `max_kl`). `[lang.de] max_kl = 7.5` overrides one
//! language.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, Purpose, StageArgs};
use crate::declare::{Declare, Declared, Sig, Str, F64, I64};
use crate::error::{Error, Result};
use crate::lang_rules::{
    check_override, is_lang_code, LangLimits, LangOverrides, DEFAULT, NEUTRAL,
};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

const MAGIC: &[u8; 8] = b"CURATEKL";
/// Version 2 adds the derived `max_kl` to the header; version 1 files still read.
const VERSION: u32 = 2;

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
    /// The threshold derived from the reference text itself (NaN: none; see the module docs).
    pub max_kl: f64,
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
            max_kl: f64::NAN,
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

    /// Writes the file: magic, version, bits, alpha, docs, total, max_kl, then the counts
    /// (all little-endian).
    pub fn write(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&self.bits.to_le_bytes())?;
        w.write_all(&self.alpha.to_le_bytes())?;
        w.write_all(&self.docs.to_le_bytes())?;
        w.write_all(&self.total.to_le_bytes())?;
        w.write_all(&self.max_kl.to_le_bytes())?;
        let mut buf = Vec::with_capacity(self.counts.len() * 4);
        for c in &self.counts {
            buf.extend_from_slice(&c.to_le_bytes());
        }
        w.write_all(&buf)
    }

    /// Reads a file written by [`KlReference::write`].
    pub fn read(mut r: impl Read, path: &Path) -> Result<Self> {
        let mut head = Self::read_header(&mut r, path)?;
        let mut raw = vec![0u8; 4 << head.bits];
        r.read_exact(&mut raw).map_err(|e| Error::io(path, e))?;
        head.counts = raw
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(head)
    }

    /// Reads only the header (everything but the counts, left empty): what re-judging stored
    /// signals needs of a per-language reference (its `max_kl`).
    pub fn read_header(mut r: impl Read, path: &Path) -> Result<Self> {
        let bad = |m: &str| Error::Format {
            path: path.to_path_buf(),
            offset: 0,
            message: m.to_string(),
        };
        let mut head = [0u8; 48];
        r.read_exact(&mut head[..40])
            .map_err(|e| Error::io(path, e))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a curate KL reference (bad magic)"));
        }
        let u32_at =
            |h: &[u8], i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
        let u64_at =
            |h: &[u8], i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
        let version = u32_at(&head, 8);
        let max_kl = match version {
            1 => f64::NAN,
            2 => {
                r.read_exact(&mut head[40..48])
                    .map_err(|e| Error::io(path, e))?;
                f64::from_bits(u64_at(&head, 40))
            }
            _ => return Err(bad("unsupported KL reference version")),
        };
        let bits = u32_at(&head, 12);
        if !(8..=26).contains(&bits) {
            return Err(bad("bucket bits out of range 8..=26"));
        }
        let alpha = f64::from_bits(u64_at(&head, 16));
        if alpha.is_nan() || alpha <= 0.0 {
            return Err(bad("smoothing alpha must be > 0"));
        }
        Ok(KlReference {
            bits,
            alpha,
            docs: u64_at(&head, 24),
            total: u64_at(&head, 32),
            max_kl,
            counts: Vec::new(),
        })
    }

    /// KL of a document that the reference counted, against the reference without the
    /// document's own counts (leave one out): how far a new document of the same kind sits.
    pub fn leave_one_out_kl(&self, doc: &Document) -> f64 {
        let hashes = doc.word_hashes();
        let n = hashes.len();
        if n == 0 {
            return 0.0;
        }
        let mut buckets: Vec<usize> = hashes.iter().map(|&h| self.bucket(h)).collect();
        buckets.sort_unstable(); // a fixed summation order: the same bits on every run
        let nf = n as f64;
        let denom = (self.total as f64 - nf) + self.alpha * self.counts.len() as f64;
        let kl: f64 = buckets
            .chunk_by(|a, b| a == b)
            .map(|run| {
                let c = run.len() as f64;
                let rest = (self.counts[run[0]] as f64 - c).max(0.0);
                let p = c / nf;
                p * (p / ((rest + self.alpha) / denom)).ln()
            })
            .sum();
        kl.max(0.0)
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
    /// Score each page against its language's reference (`lang_references`); `rules` says which.
    #[serde(default)]
    pub per_language: bool,
    /// The folder of per-language references (`<lang>.bin`, from `curate kl-ref build
    /// --by-language`), relative to the config file.
    #[serde(default)]
    pub lang_references: Option<String>,
    /// Per-language overrides of the derived thresholds: `[lang.de]` `max_kl = 7.5`.
    #[serde(default)]
    pub lang: LangOverrides,
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

/// The per-language references of a stage: a scorer per language (loaded only to run), and
/// the thresholds its rules read.
struct LangRefs {
    scorers: BTreeMap<String, Arc<KlScorer>>,
    limits: LangLimits,
}

pub struct Kl {
    name: String,
    scorer: Option<Arc<KlScorer>>,
    langs: Option<LangRefs>,
    sig_kl: Sig<F64>,
    sig_ce: Sig<F64>,
    sig_unseen: Sig<F64>,
    sig_tokens: Sig<I64>,
    sig_rules: Option<Sig<Str>>,
    declared: Declared,
}

/// Reads one reference file: whole to run, its header only to re-judge stored signals.
fn load_reference(path: &Path, key: &str, whole: bool) -> Result<KlReference, ConfigError> {
    let f = std::fs::File::open(path)
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", path.display())))?;
    let r = std::io::BufReader::new(f);
    if whole {
        KlReference::read(r, path)
    } else {
        KlReference::read_header(r, path)
    }
    .map_err(|e| ConfigError::new(key, e.to_string()))
}

/// Loads the folder of per-language references (`<lang>.bin`; `en` keeps `reference`) and
/// applies the `lang` overrides to their thresholds.
fn load_lang_refs(
    dir: &Path,
    run: bool,
    scale: f64,
    overrides: &LangOverrides,
) -> Result<LangRefs, ConfigError> {
    let key = "lang_references";
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ConfigError::new(key, format!("{}: {e}", dir.display())))?;
    let mut files = BTreeMap::new();
    for e in entries {
        let e = e.map_err(|e| ConfigError::new(key, format!("{}: {e}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(lang) = name.strip_suffix(".bin") {
            if lang != "en" && is_lang_code(lang) {
                files.insert(lang.to_string(), e.path());
            }
        }
    }
    if files.is_empty() {
        return Err(ConfigError::new(
            key,
            format!(
                "{}: no <lang>.bin references (curate kl-ref build --by-language)",
                dir.display()
            ),
        ));
    }
    let mut refs = LangRefs {
        scorers: BTreeMap::new(),
        limits: LangLimits::new(&["max_kl"]),
    };
    for (lang, path) in &files {
        let r = load_reference(path, key, run)?;
        if !r.max_kl.is_nan() {
            refs.limits.set(lang, "max_kl", r.max_kl * scale);
        }
        if run {
            refs.scorers
                .insert(lang.clone(), Arc::new(KlScorer::new(&r)));
        }
    }
    for (lang, values) in overrides {
        for (k, &v) in values {
            let at = format!("lang.{lang}.{k}");
            if k != "max_kl" {
                return Err(ConfigError::new(
                    at,
                    "not a per-language key (expected max_kl)",
                ));
            }
            check_override(lang, k, v)?;
            if !files.contains_key(lang) {
                return Err(ConfigError::new(
                    at,
                    format!("no reference for `{lang}` in {}", dir.display()),
                ));
            }
            refs.limits.set(lang, k, v);
        }
    }
    Ok(refs)
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: KlConfig = args.parse()?;
    if cfg.max_kl.is_nan() || cfg.max_kl < 0.0 {
        return Err(ConfigError::new("max_kl", "must be a number >= 0"));
    }
    let run = args.purpose == Purpose::Run;
    let path = args.resolve_path("reference", &cfg.reference)?;
    // To re-judge stored signals the English file is read only for its header, and only
    // where per-language thresholds are scaled by it.
    let english = if run || cfg.per_language {
        Some(load_reference(&path, "reference", run)?)
    } else {
        None
    };
    let langs = match (cfg.per_language, &cfg.lang_references) {
        (true, Some(dir)) => {
            let dir = args.resolve_path("lang_references", dir)?;
            // A language's threshold sits where English's does relative to its own reference
            // text: max_kl over the English reference's derived value (1 for a version-1
            // file, which has none).
            let scale = match &english {
                Some(e) if e.max_kl > 0.0 => cfg.max_kl / e.max_kl,
                _ => 1.0,
            };
            Some(load_lang_refs(&dir, run, scale, &cfg.lang)?)
        }
        (true, None) => {
            return Err(ConfigError::new(
                "lang_references",
                "per_language = true needs the folder of per-language references",
            ))
        }
        (false, _) if cfg.lang_references.is_some() || !cfg.lang.is_empty() => {
            let key = if cfg.lang.is_empty() {
                "lang_references"
            } else {
                "lang"
            };
            return Err(ConfigError::new(key, "needs `per_language = true`"));
        }
        (false, _) => None,
    };
    let mut d = Declare::new(args.name);
    let kl = d.signal::<F64>("kl", "KL(doc || reference), nats");
    let ce = d.signal::<F64>(
        "cross_entropy",
        "cross-entropy to the reference, nats per token",
    );
    let unseen = d.signal::<F64>("unseen_frac", "fraction of tokens the reference never saw");
    let tokens = d.signal::<I64>("tokens", "tokens scored");
    let rules = langs.as_ref().map(|_| {
        d.signal::<Str>(
            "rules",
            "the reference that scored the page: its language, en/default, or neutral (none)",
        )
    });
    if let (Some(rules), Some(l)) = (rules, &langs) {
        d.per_language(rules, l.limits.clone());
    }
    // Too few tokens say nothing about a page's distribution.
    d.max(kl, Some(cfg.max_kl), "max_kl", "kl_outlier")
        .only_if(tokens, cfg.min_tokens as f64);
    Ok(Built::Map(Box::new(Kl {
        name: args.name.to_string(),
        scorer: english.filter(|_| run).map(|e| Arc::new(KlScorer::new(&e))),
        langs,
        sig_kl: kl,
        sig_ce: ce,
        sig_unseen: unseen,
        sig_tokens: tokens,
        sig_rules: rules,
        declared: d.finish(),
    })))
}

impl Kl {
    /// The reference that scores a page of language `lang`, and the `rules` label.
    fn scorer_for(&self, lang: Option<&str>) -> (&str, Option<&KlScorer>) {
        let english = self.scorer.as_deref();
        let Some(langs) = &self.langs else {
            return (DEFAULT, english);
        };
        match lang {
            None | Some("") => (DEFAULT, english),
            Some("en") => ("en", english),
            Some(l) => {
                let found = langs.scorers.get_key_value(l).or_else(|| {
                    let base = l.split(['-', '_']).next()?;
                    langs.scorers.get_key_value(base)
                });
                match found {
                    Some((k, s)) => (k.as_str(), Some(s.as_ref())),
                    None => (NEUTRAL, None),
                }
            }
        }
    }
}

impl Stage for Kl {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        if self.scorer.is_none() {
            return Outcome::Keep; // built to re-judge stored signals only
        }
        let (label, scorer) = self.scorer_for(doc.lang());
        if let Some(r) = self.sig_rules {
            r.set(&mut doc.signals, label);
        }
        // A language without a reference is neither scored nor judged.
        let Some(scorer) = scorer else {
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
        r.max_kl = 2.5; // NaN (none) would not compare equal to itself
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

    #[test]
    fn leave_one_out_equals_a_reference_built_without_the_document() {
        let mut all = KlReference::new(12, 0.5);
        let mut without = KlReference::new(12, 0.5);
        for i in 0..40 {
            let d = Document::new("r", prose(i));
            all.add(&d);
            if i != 7 {
                without.add(&d);
            }
        }
        let d = Document::new("r", prose(7));
        let loo = all.leave_one_out_kl(&d);
        let direct = KlScorer::new(&without).score(&d).kl;
        assert!((loo - direct).abs() < 1e-5, "{loo} vs {direct}");
        // In-sample scoring flatters the document.
        assert!(KlScorer::new(&all).score(&d).kl < loo);
    }

    #[test]
    fn version_1_files_read_without_a_threshold() {
        let mut r = KlReference::new(8, 0.5);
        r.add(&Document::new("r", prose(1)));
        r.max_kl = 3.5;
        let mut v2 = Vec::new();
        r.write(&mut v2).unwrap();
        // Version 1: the same header without max_kl.
        let mut v1 = v2[..40].to_vec();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&v2[48..]);
        let back = KlReference::read(&v1[..], Path::new("v1")).unwrap();
        assert!(back.max_kl.is_nan());
        assert_eq!(back.counts, r.counts);
        let head = KlReference::read_header(&v2[..], Path::new("v2")).unwrap();
        assert_eq!(
            (head.max_kl, head.total, head.counts.len()),
            (3.5, r.total, 0)
        );
    }

    /// Per language: a page is scored against its language's reference and judged by that
    /// reference's threshold (scaled as English's), a language without one is neutral, and
    /// the thresholds come from the file headers when only re-judging.
    #[test]
    fn per_language_references_judge_their_languages() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &Path, texts: &[String], max_kl: f64| {
            let mut r = KlReference::new(16, 0.5);
            for t in texts {
                r.add(&Document::new("r", t.as_str()));
            }
            r.max_kl = max_kl;
            r.write(std::fs::File::create(path).unwrap()).unwrap();
        };
        let english: Vec<String> = (0..50).map(prose).collect();
        write(&dir.path().join("en.bin"), &english, 3.0);
        let refs = dir.path().join("refs");
        std::fs::create_dir(&refs).unwrap();
        let german: Vec<String> = (0..50)
            .map(|i| format!("Die Wärter des Leuchtturms Nummer {i} schrieben jede Nacht in ihr Buch. Sie notierten das Wetter, die Schiffe und den Zustand der Lampe, und am Morgen putzten sie das Glas, bevor sie schlafen gingen."))
            .collect();
        write(&refs.join("de.bin"), &german, 2.0);
        let body = "reference = \"en.bin\"\nmax_kl = 6.0\nmin_tokens = 20\nper_language = true\nlang_references = \"refs\"";
        let build =
            |body: &str, purpose| crate::kit::build_in(&DEF, "kl", body, purpose, dir.path());
        let Ok(Built::Map(s)) = build(body, Purpose::Run) else {
            panic!("build")
        };
        let judge = |lang: &str, text: &str| {
            let mut d = Document::new("d", text);
            d.signals.set_str(crate::LANG_SIGNAL, lang);
            s.process(&mut d);
            let v = s.judge(&d.signals);
            (
                d.signals.str("kl.rules").unwrap_or("").to_string(),
                d.signals.f64("kl.kl"),
                v,
                d.signals,
            )
        };
        let page = format!("{} {}", german[3], german[4]);
        let (rules, kl, v, _) = judge("de", &page);
        assert_eq!((rules.as_str(), v), ("de", Outcome::Keep));
        // Against English the German page is an outlier; against German it is not.
        let (_, kl_en, v_en, _) = judge("en", &page);
        assert!(
            kl.unwrap() < kl_en.unwrap() && v_en == Outcome::Drop("kl_outlier"),
            "{kl:?} {kl_en:?}"
        );
        // The German threshold is 2.0 x (6.0 / 3.0) = 4.0: gibberish is over it.
        let (_, _, v, signals) = judge("de-AT", &"qzx vbnm wkrt plok zzyq ".repeat(30));
        assert_eq!(v, Outcome::Drop("kl_outlier"));
        // Re-judging stored signals reads the thresholds from the headers alone.
        let Ok(Built::Map(sel)) = build(body, Purpose::Select) else {
            panic!("build")
        };
        assert_eq!(sel.judge(&signals), Outcome::Drop("kl_outlier"));
        let loose = format!("{body}\n[lang.de]\nmax_kl = 1000");
        let Ok(Built::Map(sel)) = build(&loose, Purpose::Select) else {
            panic!("build")
        };
        assert_eq!(sel.judge(&signals), Outcome::Keep);
        // No reference for Swahili: neutral, not scored, not judged.
        let (rules, kl, v, _) = judge("sw", &"qzx vbnm wkrt plok zzyq ".repeat(30));
        assert_eq!((rules.as_str(), kl, v), ("neutral", None, Outcome::Keep));
        // Config errors name their key.
        for (extra, key) in [
            ("\n[lang.sw]\nmax_kl = 5", "lang.sw.max_kl"),
            ("\n[lang.de]\nmin_kl = 5", "lang.de.min_kl"),
        ] {
            let e = build(&format!("{body}{extra}"), Purpose::Select)
                .err()
                .unwrap();
            assert_eq!(e.key, key, "{}", e.message);
        }
        let no_dir = body.replace("lang_references = \"refs\"", "lang_references = \"nope\"");
        assert_eq!(
            build(&no_dir, Purpose::Select).err().unwrap().key,
            "lang_references"
        );
        let off = body.replace("per_language = true", "per_language = false");
        assert_eq!(
            build(&off, Purpose::Select).err().unwrap().key,
            "lang_references"
        );
        let missing = body.replace("lang_references = \"refs\"", "");
        assert_eq!(
            build(&missing, Purpose::Select).err().unwrap().key,
            "lang_references"
        );
    }
}
