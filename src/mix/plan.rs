//! The mix planner: which documents, and how many copies of each, make up a mix.
//!
//! Input: one [`Candidate`] per document that passed selection (its key, bucket, token count,
//! quality score, source) and a [`MixConfig`] (token shares per bucket, total budget, sampling,
//! repeat cap). Output: a [`MixPlan`] (picks with copy counts) and its [`MixReport`].
//!
//! Within a bucket, documents are ranked (by quality, uniformly at random, or randomly weighted
//! by quality) and taken in rank order until the bucket's token target is reached; the last one
//! is taken only if it brings the total closer to the target, and smaller documents further
//! down may still fill the gap. A bucket short of tokens goes round again over the same ranking
//! (a second copy of its best documents, then a third...) up to `max_repeats` copies per
//! document. If even that cannot reach the share, the report says so, and by default the total
//! budget shrinks until every share holds. Random ranks come from a seeded hash of each
//! document's key, so the plan does not depend on input order or thread count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use stages::config::{check_fraction, ConfigError};

/// One selectable document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// A stable key of the document (e.g. xxh3 of its id): seeds its random rank.
    pub key: u64,
    /// Index into the plan's bucket names.
    pub bucket: u16,
    /// Tokens the document will take (BOS/EOS included).
    pub tokens: u32,
    /// Quality score (higher is better).
    pub quality: f32,
    /// Index into the plan's source names (crawl, file, or dataset).
    pub source: u32,
}

/// How documents are ranked within a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Highest quality first (ties in seeded random order).
    #[default]
    Quality,
    /// Seeded uniform random order.
    Uniform,
    /// Seeded random order weighted by quality (Efraimidis-Spirakis keys): better documents
    /// tend to come first without starving the rest.
    Weighted,
}

/// Per-bucket settings that override the mix-wide ones (annealing mixes: stricter quality,
/// more repeats for code and math).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketOptions {
    /// Documents below this quality score are not eligible.
    #[serde(default)]
    pub min_quality: Option<f64>,
    /// Most copies of one document.
    #[serde(default)]
    pub max_repeats: Option<u32>,
    #[serde(default)]
    pub sampling: Option<Sampling>,
    /// Plan this bucket by language (the multilingual bucket): each language's token target
    /// is proportional to `weight x available tokens ^ language_temperature` (1: as the data
    /// are, 0: every language alike; mT5 and XLM-R sample with 0.3)...
    #[serde(default)]
    pub language_temperature: Option<f64>,
    /// ...no language above this share of the bucket (raised to 1 / languages when the
    /// bucket has too few languages to respect it); what a capped language cannot take goes
    /// to the others...
    #[serde(default)]
    pub max_language_share: Option<f64>,
    /// ...and these weights per language code (default 1).
    #[serde(default)]
    pub language_weights: BTreeMap<String, f64>,
}

impl BucketOptions {
    /// Whether the bucket's target is split over languages.
    pub fn by_language(&self) -> bool {
        self.language_temperature.is_some()
            || self.max_language_share.is_some()
            || !self.language_weights.is_empty()
    }
}

/// The Llama 3 mix: general knowledge, math and reasoning, code, multilingual.
pub const DEFAULT_SHARES: &[(&str, f64)] = &[
    ("general", 0.50),
    ("math", 0.25),
    ("code", 0.17),
    ("multilingual", 0.08),
];

/// A mix: token shares per bucket and how to fill them (the `[mix]` section).
///
/// Every numeric key that is not a setting below is a bucket's token share (`code = 0.17`), so
/// `--set mix.code=0.20` changes a share. Shares are normalized to sum to 1.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MixConfig {
    /// Token share per bucket (normalized). Default: general 0.50, math 0.25, code 0.17,
    /// multilingual 0.08.
    pub shares: BTreeMap<String, f64>,
    /// Total token budget; default: the largest budget every share can meet without repeats.
    pub total_tokens: Option<u64>,
    /// Ranking within buckets: `quality` (default), `uniform`, `weighted`.
    pub sampling: Sampling,
    /// Most copies of one document when a bucket is short (default 4: repeating data up to
    /// four epochs costs little, per Muennighoff et al. 2023).
    pub max_repeats: u32,
    /// Documents below this quality score are not eligible (default: all are).
    pub min_quality: Option<f64>,
    /// When a bucket cannot reach its share even with repeats, shrink the total budget so
    /// every share holds (default true); else keep the budget and miss the share.
    pub shrink_when_short: bool,
    /// Per-bucket overrides, `[mix.per_bucket.code]`.
    pub per_bucket: BTreeMap<String, BucketOptions>,
    /// Seed of the random ranks.
    pub seed: u64,
    /// The shares' sum before normalization (reported when it is not 1).
    pub share_sum: f64,
}

impl Default for MixConfig {
    fn default() -> Self {
        MixConfig {
            shares: DEFAULT_SHARES
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            total_tokens: None,
            sampling: Sampling::Quality,
            max_repeats: 4,
            min_quality: None,
            shrink_when_short: true,
            per_bucket: BTreeMap::new(),
            seed: 0,
            share_sum: 1.0,
        }
    }
}

impl MixConfig {
    /// Parses a `[mix]` table (see the struct docs); `seed` comes from the pipeline.
    pub fn from_table(t: &toml::Table, seed: u64) -> Result<MixConfig, ConfigError> {
        let mut c = MixConfig {
            seed,
            ..MixConfig::default()
        };
        let mut shares = BTreeMap::new();
        for (k, v) in t {
            let int = |v: &toml::Value| {
                v.as_integer()
                    .filter(|&i| i >= 0)
                    .ok_or_else(|| ConfigError::new(k, "expected a non-negative integer"))
            };
            match k.as_str() {
                "total_tokens" => c.total_tokens = Some(int(v)? as u64),
                "max_repeats" => {
                    c.max_repeats = int(v)? as u32;
                    if c.max_repeats == 0 {
                        return Err(ConfigError::new(k, "must be at least 1"));
                    }
                }
                "sampling" => {
                    c.sampling = v
                        .clone()
                        .try_into()
                        .map_err(|e| ConfigError::new(k, format!("{e}")))?
                }
                "min_quality" => {
                    c.min_quality = Some(
                        v.as_float()
                            .or(v.as_integer().map(|i| i as f64))
                            .ok_or_else(|| ConfigError::new(k, "expected a number"))?,
                    )
                }
                "shrink_when_short" => {
                    c.shrink_when_short = v
                        .as_bool()
                        .ok_or_else(|| ConfigError::new(k, "expected true or false"))?
                }
                "per_bucket" => {
                    let tab = v
                        .as_table()
                        .ok_or_else(|| ConfigError::new(k, "expected a table"))?;
                    for (b, o) in tab {
                        let o = o.as_table().ok_or_else(|| {
                            ConfigError::new(format!("per_bucket.{b}"), "expected a table")
                        })?;
                        let opts: BucketOptions = stages::config::parse_table(o).map_err(|e| {
                            ConfigError::new(format!("per_bucket.{b}.{}", e.key), e.message)
                        })?;
                        let key = |k: &str| format!("per_bucket.{b}.{k}");
                        if let Some(t) = opts.language_temperature {
                            if !(0.0..=1.0).contains(&t) {
                                return Err(ConfigError::new(
                                    key("language_temperature"),
                                    "must be in 0..=1",
                                ));
                            }
                        }
                        if let Some(m) = opts.max_language_share {
                            if !(m > 0.0 && m <= 1.0) {
                                return Err(ConfigError::new(
                                    key("max_language_share"),
                                    "must be in (0, 1]",
                                ));
                            }
                        }
                        if let Some((l, _)) = opts
                            .language_weights
                            .iter()
                            .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
                        {
                            return Err(ConfigError::new(
                                key(&format!("language_weights.{l}")),
                                "must be a non-negative number",
                            ));
                        }
                        if opts.max_repeats == Some(0) {
                            return Err(ConfigError::new(
                                format!("per_bucket.{b}.max_repeats"),
                                "must be at least 1",
                            ));
                        }
                        c.per_bucket.insert(b.clone(), opts);
                    }
                }
                _ => {
                    let share = v
                        .as_float()
                        .or(v.as_integer().map(|i| i as f64))
                        .ok_or_else(|| {
                            ConfigError::new(
                                k,
                                "unknown setting; a bucket share must be a number in 0..=1",
                            )
                        })?;
                    check_fraction(k, share)?;
                    shares.insert(k.clone(), share);
                }
            }
        }
        // Shares of the default buckets override the defaults one by one; any other bucket
        // name means the config spells out its own set of buckets.
        if shares.keys().all(|k| c.shares.contains_key(k)) {
            c.shares.extend(shares);
        } else {
            c.shares = shares;
        }
        c.shares.retain(|_, v| *v > 0.0);
        let sum: f64 = c.shares.values().sum();
        c.share_sum = sum;
        if sum <= 0.0 {
            return Err(ConfigError::new("shares", "bucket shares sum to 0"));
        }
        for v in c.shares.values_mut() {
            *v /= sum;
        }
        for b in c.per_bucket.keys() {
            if !c.shares.contains_key(b) {
                return Err(ConfigError::new(
                    format!("per_bucket.{b}"),
                    "not a bucket of this mix",
                ));
            }
        }
        Ok(c)
    }

    fn options(&self, bucket: &str) -> (Sampling, u32, Option<f64>) {
        let o = self.per_bucket.get(bucket);
        (
            o.and_then(|o| o.sampling).unwrap_or(self.sampling),
            o.and_then(|o| o.max_repeats).unwrap_or(self.max_repeats),
            o.and_then(|o| o.min_quality).or(self.min_quality),
        )
    }
}

/// Copies and tokens of one source within a bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceCount {
    /// Copies written (a document repeated twice counts twice).
    pub documents: u64,
    pub tokens: u64,
}

/// What one bucket got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketReport {
    pub bucket: String,
    pub target_share: f64,
    pub target_tokens: u64,
    pub tokens: u64,
    pub share: f64,
    /// Distinct documents selected.
    pub documents: u64,
    /// Copies written (documents plus repeats).
    pub copies: u64,
    /// Documents written more than once, and the most copies of one.
    pub repeated_documents: u64,
    pub max_copies: u32,
    pub available_documents: u64,
    pub available_tokens: u64,
    pub sampling: Sampling,
    pub max_repeats: u32,
    pub min_quality: Option<f64>,
    /// Lowest quality score among the selected documents.
    pub lowest_selected_quality: Option<f64>,
    pub sources: BTreeMap<String, SourceCount>,
    /// Tokens per language (the `lang` signal) of the selected copies; with a target when
    /// the bucket is planned by language.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<String, LanguageCount>,
}

/// One language within a bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LanguageCount {
    /// The language's token target when the bucket is planned by language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tokens: Option<u64>,
    pub tokens: u64,
    /// Its share of the bucket's tokens.
    pub share: f64,
    /// Copies written.
    pub documents: u64,
    pub available_tokens: u64,
}

/// The mix report: targets against what was achieved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixReport {
    pub seed: u64,
    /// The budget asked for (after shrinking when a bucket was short).
    pub target_tokens: u64,
    pub requested_tokens: Option<u64>,
    pub tokens: u64,
    pub documents: u64,
    pub copies: u64,
    pub buckets: Vec<BucketReport>,
    /// Candidates in buckets that are not part of the mix.
    pub unused_documents: u64,
    pub warnings: Vec<String>,
}

impl MixReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }

    /// A plain-text table for the terminal.
    pub fn to_table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "{:<14} {:>7} {:>7} {:>15} {:>15} {:>10} {:>10} {:>9} {:>6}\n",
            "bucket",
            "target",
            "share",
            "target tokens",
            "tokens",
            "docs",
            "copies",
            "repeated",
            "max x"
        ));
        for b in &self.buckets {
            s.push_str(&format!(
                "{:<14} {:>6.2}% {:>6.2}% {:>15} {:>15} {:>10} {:>10} {:>9} {:>6}\n",
                b.bucket,
                b.target_share * 100.0,
                b.share * 100.0,
                b.target_tokens,
                b.tokens,
                b.documents,
                b.copies,
                b.repeated_documents,
                b.max_copies
            ));
        }
        s.push_str(&format!(
            "{:<14} {:>7} {:>7} {:>15} {:>15} {:>10} {:>10}\n",
            "total", "", "", self.target_tokens, self.tokens, self.documents, self.copies
        ));
        for b in &self.buckets {
            if b.sources.is_empty() {
                continue;
            }
            let parts: Vec<String> = b
                .sources
                .iter()
                .map(|(k, v)| format!("{k} {} copies/{} tokens", v.documents, v.tokens))
                .collect();
            s.push_str(&format!("sources of {}: {}\n", b.bucket, parts.join(", ")));
        }
        for b in &self.buckets {
            if b.languages.is_empty() || b.languages.keys().all(|l| l.is_empty()) {
                continue;
            }
            let mut v: Vec<(&String, &LanguageCount)> = b.languages.iter().collect();
            v.sort_by(|x, y| y.1.tokens.cmp(&x.1.tokens).then(x.0.cmp(y.0)));
            let parts: Vec<String> = v
                .iter()
                .map(|(l, c)| {
                    let l = if l.is_empty() { "?" } else { l.as_str() };
                    format!("{l} {:.1}% ({} tokens)", c.share * 100.0, c.tokens)
                })
                .collect();
            s.push_str(&format!(
                "languages of {}: {}\n",
                b.bucket,
                parts.join(", ")
            ));
        }
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        s
    }
}

/// A planned mix: per bucket, the picked candidates (indices) with their copy counts, in rank
/// order.
#[derive(Clone, Debug, PartialEq)]
pub struct MixPlan {
    pub buckets: Vec<String>,
    pub picks: Vec<Vec<(u32, u32)>>,
    pub report: MixReport,
}

impl MixPlan {
    /// Every copy of every pick, shuffled across buckets by a seeded hash of (key, copy):
    /// the order to write a mixed shard set in. `(candidate index, copy number)`.
    pub fn shuffled(&self, candidates: &[Candidate], seed: u64) -> Vec<(u32, u32)> {
        let mut all: Vec<(u64, u32, u32)> = self
            .picks
            .iter()
            .flatten()
            .flat_map(|&(i, n)| {
                let key = candidates[i as usize].key;
                (0..n).map(move |c| {
                    (
                        mix_hash(key ^ (c as u64).rotate_left(32), seed ^ 0x5eed),
                        i,
                        c,
                    )
                })
            })
            .collect();
        all.sort_unstable();
        all.into_iter().map(|(_, i, c)| (i, c)).collect()
    }
}

#[inline]
fn mix_hash(key: u64, seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(&key.to_le_bytes(), seed)
}

/// Order-preserving map of an f32 to u32 (larger float, larger integer).
#[inline]
fn f32_order(f: f32) -> u32 {
    let b = if f.is_nan() {
        f32::NEG_INFINITY.to_bits()
    } else {
        f.to_bits()
    };
    if b >> 31 == 1 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Ranks a bucket's eligible candidates: returns indices, best first.
fn rank(cands: &[Candidate], idx: Vec<u32>, sampling: Sampling, seed: u64) -> Vec<u32> {
    let mut keyed: Vec<(u64, u32)> = idx
        .into_iter()
        .map(|i| {
            let c = &cands[i as usize];
            let h = mix_hash(c.key, seed);
            let k = match sampling {
                Sampling::Quality => ((!f32_order(c.quality) as u64) << 32) | (h >> 32),
                Sampling::Uniform => h,
                Sampling::Weighted => {
                    // Efraimidis-Spirakis: smallest -ln(u)/w first, w = quality (floored).
                    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                    let w = (c.quality as f64).max(1e-6);
                    (-u.ln() / w).to_bits()
                }
            };
            (k, i)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, i)| i).collect()
}

struct Filled {
    picks: Vec<(u32, u32)>,
    tokens: u64,
}

/// Takes documents in rank order, round after round, until `target` tokens.
fn fill(cands: &[Candidate], order: &[u32], target: u64, max_repeats: u32) -> Filled {
    let mut copies = vec![0u32; order.len()];
    let mut remaining = target as i64;
    let mut tokens = 0u64;
    'rounds: for _ in 0..max_repeats {
        if remaining <= 0 {
            break;
        }
        let mut took = false;
        for (pos, &i) in order.iter().enumerate() {
            if remaining <= 0 {
                break 'rounds;
            }
            let t = cands[i as usize].tokens as i64;
            // Take it if it brings the total closer to the target.
            if t > 0 && t < 2 * remaining {
                copies[pos] += 1;
                remaining -= t;
                tokens += t as u64;
                took = true;
            }
        }
        if !took {
            break;
        }
    }
    let picks = order
        .iter()
        .zip(&copies)
        .filter(|(_, &c)| c > 0)
        .map(|(&i, &c)| (i, c))
        .collect();
    Filled { picks, tokens }
}

/// Splits a bucket's `target` over languages by `weights` (water-filling): a language gets at
/// most `cap[l]` tokens, and what a capped language cannot take goes to the others in
/// proportion to their weights.
fn split_target(target: f64, weights: &[f64], cap: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; weights.len()];
    let mut active: Vec<usize> = (0..weights.len())
        .filter(|&l| weights[l] > 0.0 && cap[l] > 0.0)
        .collect();
    let mut remaining = target;
    while !active.is_empty() && remaining > 0.0 {
        let w: f64 = active.iter().map(|&l| weights[l]).sum();
        let capped: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&l| remaining * weights[l] / w >= cap[l])
            .collect();
        if capped.is_empty() {
            for &l in &active {
                out[l] = remaining * weights[l] / w;
            }
            break;
        }
        for &l in &capped {
            out[l] = cap[l];
            remaining -= cap[l];
        }
        active.retain(|l| !capped.contains(l));
    }
    out
}

/// A language-planned bucket: its languages' available tokens, weights and share cap.
struct LanguageSplit {
    /// Per language index: available tokens and weight.
    available: Vec<u64>,
    weights: Vec<f64>,
    max_share: f64,
}

impl LanguageSplit {
    /// The most tokens the bucket can give with `repeats` copies per document while no
    /// language passes its share: the largest `x` with `sum_l min(max_share x, A_l r) >= x`.
    fn capacity(&self, repeats: u32) -> f64 {
        let caps: Vec<f64> = self
            .available
            .iter()
            .zip(&self.weights)
            .filter(|(_, &w)| w > 0.0)
            .map(|(&a, _)| a as f64 * repeats as f64)
            .collect();
        let total: f64 = caps.iter().sum();
        let ok = |x: f64| caps.iter().map(|&c| c.min(self.max_share * x)).sum::<f64>() >= x;
        if ok(total) {
            return total;
        }
        let (mut lo, mut hi) = (0.0, total);
        for _ in 0..100 {
            let mid = (lo + hi) / 2.0;
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo.floor()
    }

    fn targets(&self, target: u64, repeats: u32) -> Vec<u64> {
        let cap: Vec<f64> = self
            .available
            .iter()
            .map(|&a| (a as f64 * repeats as f64).min(self.max_share * target as f64))
            .collect();
        split_target(target as f64, &self.weights, &cap)
            .into_iter()
            .map(|t| t.round() as u64)
            .collect()
    }
}

/// Plans a mix over candidates whose `bucket` indexes `bucket_names` and `source` indexes
/// `source_names` (no language names: no bucket is planned by language).
pub fn plan(
    cands: &[Candidate],
    bucket_names: &[String],
    source_names: &[String],
    cfg: &MixConfig,
) -> MixPlan {
    plan_by_language(cands, &[], bucket_names, source_names, &[], cfg)
}

/// [`plan`], with `langs[i]` (candidate i's language) indexing `lang_names`: the report counts tokens per
/// language, and buckets with language options ([`BucketOptions::by_language`]) split their
/// target over languages (temperature, weights, a cap per language), each language's
/// documents ranked and repeated as the bucket's are.
pub fn plan_by_language(
    cands: &[Candidate],
    langs: &[u16],
    bucket_names: &[String],
    source_names: &[String],
    lang_names: &[String],
    cfg: &MixConfig,
) -> MixPlan {
    let mix_buckets: Vec<String> = cfg.shares.keys().cloned().collect();
    // Candidate bucket index -> mix bucket index.
    let map: Vec<Option<usize>> = bucket_names
        .iter()
        .map(|b| mix_buckets.iter().position(|m| m == b))
        .collect();
    let opts: Vec<(Sampling, u32, Option<f64>)> =
        mix_buckets.iter().map(|b| cfg.options(b)).collect();
    // A candidate's language index (0 when none are given).
    let lang_of = |i: usize| langs.get(i).copied().unwrap_or(0) as usize;
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); mix_buckets.len()];
    let mut unused = 0u64;
    let mut available = vec![(0u64, 0u64); mix_buckets.len()];
    let n_langs = lang_names.len().max(1);
    let mut lang_available = vec![vec![0u64; n_langs]; mix_buckets.len()];
    for (i, c) in cands.iter().enumerate() {
        match map.get(c.bucket as usize).copied().flatten() {
            Some(b) => {
                if opts[b].2.is_some_and(|q| (c.quality as f64) < q) {
                    continue;
                }
                members[b].push(i as u32);
                available[b].0 += 1;
                available[b].1 += c.tokens as u64;
                if let Some(a) = lang_available[b].get_mut(lang_of(i)) {
                    *a += c.tokens as u64;
                }
            }
            None => unused += 1,
        }
    }
    let mut warnings = Vec::new();
    // Buckets planned by language, when the candidates carry languages.
    let splits: Vec<Option<LanguageSplit>> = mix_buckets
        .iter()
        .enumerate()
        .map(|(b, name)| {
            let o = cfg.per_bucket.get(name).filter(|o| o.by_language())?;
            if lang_names.is_empty() {
                warnings.push(format!(
                    "bucket {name} has language options but the candidates carry no languages: planned as one"
                ));
                return None;
            }
            let t = o.language_temperature.unwrap_or(1.0);
            let weights: Vec<f64> = lang_available[b]
                .iter()
                .enumerate()
                .map(|(l, &a)| {
                    let w = o.language_weights.get(&lang_names[l]).copied().unwrap_or(1.0);
                    if a == 0 {
                        0.0
                    } else {
                        w * (a as f64).powf(t)
                    }
                })
                .collect();
            let langs = weights.iter().filter(|&&w| w > 0.0).count().max(1);
            let mut max_share = o.max_language_share.unwrap_or(1.0);
            if max_share * (langs as f64) < 1.0 {
                warnings.push(format!(
                    "bucket {name}: {langs} languages cannot hold a cap of {:.1}% each; the cap is raised to {:.1}%",
                    max_share * 100.0,
                    100.0 / langs as f64
                ));
                max_share = 1.0 / langs as f64;
            }
            Some(LanguageSplit {
                available: lang_available[b].clone(),
                weights,
                max_share,
            })
        })
        .collect();
    let orders: Vec<Vec<u32>> = members
        .into_iter()
        .enumerate()
        .map(|(b, m)| rank(cands, m, opts[b].0, cfg.seed))
        .collect();
    let shares: Vec<f64> = mix_buckets.iter().map(|b| cfg.shares[b]).collect();
    if (cfg.share_sum - 1.0).abs() > 1e-9 {
        warnings.push(format!(
            "bucket shares summed to {:.4}; they were scaled to sum to 1",
            cfg.share_sum
        ));
    }

    // The budget: as asked, or the largest that every share meets without repeats.
    let empty: Vec<usize> = (0..mix_buckets.len())
        .filter(|&b| shares[b] > 0.0 && available[b].1 == 0)
        .collect();
    for &b in &empty {
        warnings.push(format!(
            "bucket {} has no eligible documents: its {:.1}% share stays empty",
            mix_buckets[b],
            shares[b] * 100.0
        ));
    }
    let fits = |per_bucket: &dyn Fn(usize) -> f64| -> u64 {
        (0..mix_buckets.len())
            .filter(|&b| shares[b] > 0.0 && !empty.contains(&b))
            .map(|b| per_bucket(b) / shares[b])
            .fold(f64::INFINITY, f64::min)
            .min(u64::MAX as f64 / 2.0) as u64
    };
    // What a bucket can give with `r` copies per document (less when language caps bind).
    let capacity = |b: usize, r: u32| match &splits[b] {
        Some(s) => s.capacity(r),
        None => available[b].1 as f64 * r as f64,
    };
    let mut budget = cfg
        .total_tokens
        .unwrap_or_else(|| fits(&|b| capacity(b, 1)));
    let most = fits(&|b| capacity(b, opts[b].1));
    if budget > most {
        let short: Vec<String> = (0..mix_buckets.len())
            .filter(|&b| shares[b] > 0.0 && !empty.contains(&b))
            .filter(|&b| capacity(b, opts[b].1) < shares[b] * budget as f64)
            .map(|b| {
                let capped = if splits[b].is_some() {
                    ", within the language cap"
                } else {
                    ""
                };
                format!(
                    "{} ({} tokens x {} repeats{capped} = {:.0} < {:.0} for {:.1}%)",
                    mix_buckets[b],
                    available[b].1,
                    opts[b].1,
                    capacity(b, opts[b].1),
                    shares[b] * budget as f64,
                    shares[b] * 100.0
                )
            })
            .collect();
        if cfg.shrink_when_short {
            warnings.push(format!(
                "even with the repeat cap, short buckets: {}; total budget reduced from {budget} to {most} tokens so that shares hold",
                short.join("; ")
            ));
            budget = most;
        } else {
            warnings.push(format!(
                "even with the repeat cap, short buckets: {}; they miss their shares",
                short.join("; ")
            ));
        }
    }

    let mut picks = Vec::with_capacity(mix_buckets.len());
    let mut reports = Vec::with_capacity(mix_buckets.len());
    for (b, name) in mix_buckets.iter().enumerate() {
        let target = (shares[b] * budget as f64).round() as u64;
        let mut lang_targets: Option<Vec<u64>> = None;
        let f = match &splits[b] {
            None => fill(cands, &orders[b], target, opts[b].1),
            Some(split) => {
                // Each language fills its own target from the bucket's ranking.
                let targets = split.targets(target, opts[b].1);
                let mut by_lang: Vec<Vec<u32>> = vec![Vec::new(); targets.len()];
                for &i in &orders[b] {
                    if let Some(v) = by_lang.get_mut(lang_of(i as usize)) {
                        v.push(i);
                    }
                }
                let mut all = Filled {
                    picks: Vec::new(),
                    tokens: 0,
                };
                for (l, order) in by_lang.iter().enumerate() {
                    if targets[l] == 0 || order.is_empty() {
                        continue;
                    }
                    let f = fill(cands, order, targets[l], opts[b].1);
                    all.picks.extend(f.picks);
                    all.tokens += f.tokens;
                }
                // Whole documents rarely land on a small language target (a 20-token target
                // takes no 300-token page): what the languages left goes to the bucket's best
                // documents not yet taken, so the bucket keeps its share.
                if all.tokens < target {
                    let taken: std::collections::HashSet<u32> =
                        all.picks.iter().map(|p| p.0).collect();
                    let rest: Vec<u32> = orders[b]
                        .iter()
                        .copied()
                        .filter(|i| !taken.contains(i))
                        .collect();
                    let f = fill(cands, &rest, target - all.tokens, 1);
                    all.picks.extend(f.picks);
                    all.tokens += f.tokens;
                }
                lang_targets = Some(targets);
                all
            }
        };
        let mut languages: BTreeMap<String, LanguageCount> = BTreeMap::new();
        if !lang_names.is_empty() {
            let mut per_lang = vec![LanguageCount::default(); lang_names.len()];
            for &(i, n) in &f.picks {
                let c = &cands[i as usize];
                if let Some(x) = per_lang.get_mut(lang_of(i as usize)) {
                    x.documents += n as u64;
                    x.tokens += c.tokens as u64 * n as u64;
                }
            }
            for (l, mut x) in per_lang.into_iter().enumerate() {
                x.available_tokens = lang_available[b][l];
                x.target_tokens = lang_targets.as_ref().map(|t| t[l]);
                if x.available_tokens == 0 && x.documents == 0 {
                    continue;
                }
                x.share = if f.tokens > 0 {
                    x.tokens as f64 / f.tokens as f64
                } else {
                    0.0
                };
                languages.insert(lang_names[l].clone(), x);
            }
        }
        let mut sources: BTreeMap<String, SourceCount> = BTreeMap::new();
        let mut per_source: Vec<SourceCount> = vec![SourceCount::default(); source_names.len()];
        let (mut copies, mut repeated, mut max_copies) = (0u64, 0u64, 0u32);
        let mut lowest: Option<f64> = None;
        for &(i, n) in &f.picks {
            let c = &cands[i as usize];
            copies += n as u64;
            repeated += (n > 1) as u64;
            max_copies = max_copies.max(n);
            let q = c.quality as f64;
            lowest = Some(lowest.map_or(q, |l| l.min(q)));
            if let Some(s) = per_source.get_mut(c.source as usize) {
                s.documents += n as u64;
                s.tokens += c.tokens as u64 * n as u64;
            }
        }
        for (s, n) in source_names.iter().zip(per_source) {
            if n.documents > 0 {
                sources.insert(s.clone(), n);
            }
        }
        reports.push(BucketReport {
            bucket: name.clone(),
            target_share: shares[b],
            target_tokens: target,
            tokens: f.tokens,
            share: 0.0,
            documents: f.picks.len() as u64,
            copies,
            repeated_documents: repeated,
            max_copies,
            available_documents: available[b].0,
            available_tokens: available[b].1,
            sampling: opts[b].0,
            max_repeats: opts[b].1,
            min_quality: opts[b].2,
            lowest_selected_quality: lowest,
            sources,
            languages,
        });
        picks.push(f.picks);
    }
    let total: u64 = reports.iter().map(|r| r.tokens).sum();
    for r in &mut reports {
        r.share = if total > 0 {
            r.tokens as f64 / total as f64
        } else {
            0.0
        };
        if total > 0 && (r.share - r.target_share).abs() > 0.005 {
            warnings.push(format!(
                "bucket {}: achieved share {:.2}% differs from the target {:.2}% by more than 0.5 points",
                r.bucket,
                r.share * 100.0,
                r.target_share * 100.0
            ));
        }
    }
    let report = MixReport {
        seed: cfg.seed,
        target_tokens: budget,
        requested_tokens: cfg.total_tokens,
        tokens: total,
        documents: reports.iter().map(|r| r.documents).sum(),
        copies: reports.iter().map(|r| r.copies).sum(),
        buckets: reports,
        unused_documents: unused,
        warnings,
    };
    MixPlan {
        buckets: mix_buckets,
        picks,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Candidates: `n[b]` documents in bucket b, token counts and qualities from a seed.
    fn make(n: &[usize], seed: u64, max_tokens: u32) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for (b, &count) in n.iter().enumerate() {
            for _ in 0..count {
                let r = next();
                out.push(Candidate {
                    key: next(),
                    bucket: b as u16,
                    tokens: 1 + (r % max_tokens as u64) as u32,
                    quality: ((r >> 32) % 1000) as f32 / 1000.0,
                    source: (r >> 50) as u32 % 3,
                });
            }
        }
        out
    }

    fn cfg(t: &str) -> MixConfig {
        MixConfig::from_table(&t.parse().unwrap(), 7).unwrap()
    }

    #[test]
    fn config_defaults_overrides_and_errors() {
        let c = cfg("");
        assert_eq!(c.shares["general"], 0.5);
        assert_eq!(c.max_repeats, 4);
        let c = cfg("code = 0.17\nmath = 0.25\ntotal_tokens = 1000\n[per_bucket.code]\nmin_quality = 0.8\nmax_repeats = 8");
        assert_eq!(c.shares.len(), 4);
        assert_eq!(c.total_tokens, Some(1000));
        assert_eq!(c.options("code"), (Sampling::Quality, 8, Some(0.8)));
        let c = cfg("web = 0.7\nbooks = 0.3\nsampling = 'uniform'");
        assert_eq!(c.shares.keys().collect::<Vec<_>>(), vec!["books", "web"]);
        assert_eq!(c.sampling, Sampling::Uniform);
        let c = cfg("code = 0.20");
        assert!((c.share_sum - 1.03).abs() < 1e-9);
        assert!((c.shares.values().sum::<f64>() - 1.0).abs() < 1e-9);
        let bad = |t: &str| {
            MixConfig::from_table(&t.parse().unwrap(), 0)
                .unwrap_err()
                .key
        };
        assert_eq!(bad("code = 1.5"), "code");
        assert_eq!(bad("max_repeats = 0"), "max_repeats");
        assert_eq!(bad("sampling = 'best'"), "sampling");
        assert_eq!(bad("colour = 'red'"), "colour");
        assert_eq!(bad("[per_bucket.code]\nfoo = 1"), "per_bucket.code.foo");
        assert_eq!(
            bad("[per_bucket.poetry]\nmin_quality = 1"),
            "per_bucket.poetry"
        );
    }

    #[test]
    fn quality_sampling_takes_the_best_documents() {
        let cands = make(&[2000, 2000, 2000, 2000], 3, 500);
        let c = cfg("total_tokens = 400000");
        let p = plan(
            &cands,
            &names(&["general", "math", "code", "multilingual"]),
            &names(&["a", "b", "c"]),
            &c,
        );
        for (b, picks) in p.picks.iter().enumerate() {
            let bucket = p.buckets[b].as_str();
            let bi = ["general", "math", "code", "multilingual"]
                .iter()
                .position(|x| *x == bucket)
                .unwrap();
            let chosen: std::collections::HashSet<u32> = picks.iter().map(|x| x.0).collect();
            // The best document left out was skipped at the boundary: the documents ranked
            // ahead of it, plus it, pass the target.
            let best_left = cands
                .iter()
                .enumerate()
                .filter(|(i, c)| c.bucket as usize == bi && !chosen.contains(&(*i as u32)))
                .max_by(|a, b| a.1.quality.total_cmp(&b.1.quality))
                .unwrap()
                .1;
            let ahead: u64 = picks
                .iter()
                .map(|&(i, _)| &cands[i as usize])
                .filter(|c| c.quality >= best_left.quality)
                .map(|c| c.tokens as u64)
                .sum();
            let target = p.report.buckets[b].target_tokens;
            assert!(ahead + best_left.tokens as u64 >= target, "{bucket}");
            assert!(picks.iter().all(|&(_, n)| n == 1));
        }
        let text = p.report.to_table();
        assert!(
            text.contains("general") && text.contains("sources of code"),
            "{text}"
        );
        let back: MixReport = serde_json::from_str(&p.report.to_json()).unwrap();
        assert_eq!(back, p.report);
    }

    #[test]
    fn short_bucket_repeats_up_to_the_cap_then_warns() {
        // code has 100 docs of <= 100 tokens; the budget asks for far more.
        let cands = make(&[5000, 5000, 100, 5000], 11, 100);
        let bn = names(&["general", "math", "code", "multilingual"]);
        let c = cfg("total_tokens = 200000\nmax_repeats = 3");
        let p = plan(&cands, &bn, &[], &c);
        let code = p
            .report
            .buckets
            .iter()
            .find(|b| b.bucket == "code")
            .unwrap();
        assert_eq!(code.max_copies, 3);
        assert!(p.report.target_tokens < 200000);
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("code") && w.contains("reduced")));
        for b in &p.report.buckets {
            assert!((b.share - b.target_share).abs() <= 0.005, "{b:?}");
        }
        let c = cfg("total_tokens = 200000\nmax_repeats = 3\nshrink_when_short = false");
        let p = plan(&cands, &bn, &[], &c);
        let code = p
            .report
            .buckets
            .iter()
            .find(|b| b.bucket == "code")
            .unwrap();
        assert!(code.share < 0.1);
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("miss their shares")));
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("achieved share")));
    }

    #[test]
    fn empty_bucket_is_reported() {
        let cands = make(&[500, 500, 0, 500], 5, 300);
        let p = plan(
            &cands,
            &names(&["general", "math", "code", "multilingual"]),
            &[],
            &cfg(""),
        );
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("code has no eligible")));
        assert!(p.report.tokens > 0);
    }

    /// A multilingual bucket where one language has most of the text: with a temperature
    /// and a cap, no language passes the cap, smaller languages gain share, a language too
    /// small for its target gives its part to the others, and the bucket still meets its
    /// share of the mix.
    #[test]
    fn multilingual_bucket_is_planned_by_language() {
        let langs = names(&["de", "es", "fr", "ja", "pl", "sw"]);
        // Documents per language in the multilingual bucket (index 3): de dominates, sw is tiny.
        let per_lang = [6000usize, 1500, 1200, 800, 400, 15];
        let mut cands = make(&[3000, 3000, 3000, 0], 21, 400);
        // Candidate i's language: 0 (unused) outside the multilingual bucket.
        let mut lang = vec![0u16; cands.len()];
        cands.extend(make(&[0, 0, 0, per_lang.iter().sum()], 22, 400));
        for (l, &n) in per_lang.iter().enumerate() {
            lang.extend(std::iter::repeat_n(l as u16, n));
        }
        let bn = names(&["general", "math", "code", "multilingual"]);
        let share = |p: &MixPlan, l: &str| {
            let m = p
                .report
                .buckets
                .iter()
                .find(|b| b.bucket == "multilingual")
                .unwrap();
            m.languages.get(l).map_or(0.0, |x| x.share)
        };
        let avail: Vec<f64> = (0..langs.len())
            .map(|l| {
                cands
                    .iter()
                    .zip(&lang)
                    .filter(|(c, &g)| c.bucket == 3 && g as usize == l)
                    .map(|(c, _)| c.tokens as f64)
                    .sum()
            })
            .collect();
        let total_avail: f64 = avail.iter().sum();

        // As the data are (no language options): de takes about 60% of the bucket.
        let c = cfg("total_tokens = 1000000");
        let p = plan_by_language(&cands, &lang, &bn, &[], &langs, &c);
        assert!(share(&p, "de") > 0.55, "{}", share(&p, "de"));
        assert!(p
            .report
            .to_table()
            .contains("languages of multilingual: de"));

        // Temperature 0.3 and a 30% cap, one repeat.
        let c = cfg("total_tokens = 1000000\nmax_repeats = 1\n[per_bucket.multilingual]\nlanguage_temperature = 0.3\nmax_language_share = 0.3");
        let p = plan_by_language(&cands, &lang, &bn, &[], &langs, &c);
        let m = p
            .report
            .buckets
            .iter()
            .find(|b| b.bucket == "multilingual")
            .unwrap();
        assert!((m.share - m.target_share).abs() <= 0.005, "{m:?}");
        for l in &langs {
            let x = &m.languages[l];
            // Within one document (400 tokens) of its target, and none above the cap.
            let t = x.target_tokens.unwrap() as i64;
            assert!((x.tokens as i64 - t).abs() <= 400, "{l}: {x:?}");
            assert!(x.share <= 0.3 + 400.0 / m.tokens as f64, "{l}: {x:?}");
        }
        // The small languages gain share over their part of the data, in order of size.
        for l in 1..5 {
            assert!(
                share(&p, &langs[l]) > avail[l] / total_avail,
                "{}",
                langs[l]
            );
            assert!(share(&p, &langs[l]) >= share(&p, &langs[l + 1]) - 1e-9);
        }
        // Swahili has too little text for its target: all of it is taken, once.
        let sw = &m.languages["sw"];
        assert_eq!(sw.tokens, sw.available_tokens);
        assert!(p.picks[3].iter().all(|&(_, n)| n == 1));
        let back: MixReport = serde_json::from_str(&p.report.to_json()).unwrap();
        assert_eq!(back.buckets[3].languages.len(), 6);
        assert_eq!(
            back.buckets[3].languages["sw"].target_tokens,
            sw.target_tokens
        );

        // Weights move shares; the plan does not depend on input order.
        let c = cfg("total_tokens = 1000000\n[per_bucket.multilingual]\nlanguage_temperature = 0.3\nmax_language_share = 0.3\nlanguage_weights = { ja = 3.0 }");
        let q = plan_by_language(&cands, &lang, &bn, &[], &langs, &c);
        assert!(share(&q, "ja") > share(&p, "ja") + 0.05);
        let (mut rev, mut rev_lang) = (cands.clone(), lang.clone());
        rev.reverse();
        rev_lang.reverse();
        let r = plan_by_language(&rev, &rev_lang, &bn, &[], &langs, &c);
        assert_eq!(r.report, q.report);

        // Too few languages for the cap: raised to 1 / languages, with a warning.
        let (two, two_lang): (Vec<Candidate>, Vec<u16>) = cands
            .iter()
            .copied()
            .zip(lang.iter().copied())
            .filter(|(c, g)| c.bucket != 3 || *g < 2)
            .unzip();
        let c = cfg("[per_bucket.multilingual]\nmax_language_share = 0.1");
        let p = plan_by_language(&two, &two_lang, &bn, &[], &langs, &c);
        assert!(
            p.report
                .warnings
                .iter()
                .any(|w| w.contains("raised to 50.0%")),
            "{:?}",
            p.report.warnings
        );
        assert!((share(&p, "de") - 0.5).abs() < 0.01, "{}", share(&p, "de"));

        // Without languages, the options cannot apply, and the report says so.
        let p = plan(&cands, &bn, &[], &c);
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("carry no languages")));

        // Without languages, the options cannot apply, and the report says so.
        let p = plan(&cands, &bn, &[], &c);
        assert!(p
            .report
            .warnings
            .iter()
            .any(|w| w.contains("carry no languages")));

        let bad = |t: &str| {
            MixConfig::from_table(&t.parse().unwrap(), 0)
                .unwrap_err()
                .key
        };
        assert_eq!(
            bad("[per_bucket.multilingual]\nlanguage_temperature = 2.0"),
            "per_bucket.multilingual.language_temperature"
        );
        assert_eq!(
            bad("[per_bucket.multilingual]\nmax_language_share = 0"),
            "per_bucket.multilingual.max_language_share"
        );
        assert_eq!(
            bad("[per_bucket.multilingual]\nlanguage_weights = { de = -1 }"),
            "per_bucket.multilingual.language_weights.de"
        );
    }

    #[test]
    fn split_target_caps_and_redistributes() {
        let t = split_target(100.0, &[6.0, 3.0, 1.0], &[40.0, 100.0, 5.0]);
        assert_eq!(t[0], 40.0);
        assert_eq!(t[2], 5.0);
        assert!((t[1] - 55.0).abs() < 1e-9);
        // Everything capped: the bucket gets less than its target.
        let t = split_target(100.0, &[1.0, 1.0], &[10.0, 20.0]);
        assert_eq!(t, vec![10.0, 20.0]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn shares_hold_and_plans_are_deterministic(
            sizes in proptest::collection::vec(50usize..3000, 4),
            seed in any::<u64>(),
            max_tokens in 20u32..3000,
            shares in proptest::collection::vec(1u32..100, 4),
            budget_frac in 0.05f64..3.0,
            repeats in 1u32..5,
            sampling in prop_oneof![Just("quality"), Just("uniform"), Just("weighted")],
        ) {
            let cands = make(&sizes, seed, max_tokens);
            let bn = names(&["general", "math", "code", "multilingual"]);
            let total: u64 = cands.iter().map(|c| c.tokens as u64).sum();
            let budget = (total as f64 * budget_frac) as u64;
            let t = format!(
                "general = {}\nmath = {}\ncode = {}\nmultilingual = {}\ntotal_tokens = {budget}\nmax_repeats = {repeats}\nsampling = '{sampling}'",
                shares[0] as f64 / 100.0, shares[1] as f64 / 100.0, shares[2] as f64 / 100.0, shares[3] as f64 / 100.0
            );
            let c = MixConfig::from_table(&t.parse().unwrap(), seed).unwrap();
            let p = plan(&cands, &bn, &[], &c);
            for (b, picks) in p.picks.iter().enumerate() {
                for &(i, n) in picks {
                    prop_assert!(n >= 1 && n <= repeats);
                    prop_assert_eq!(p.buckets[b].as_str(), bn[cands[i as usize].bucket as usize].as_str());
                }
            }
            // The data allow the shares when the budget is many documents long: each bucket
            // then lands within one document of its target.
            if p.report.target_tokens as f64 > 400.0 * max_tokens as f64 {
                for b in &p.report.buckets {
                    prop_assert!((b.share - b.target_share).abs() <= 0.005, "{:?}", b);
                }
            }
            prop_assert!(p.report.tokens <= budget + 4 * max_tokens as u64);
            // Same input in another order, same plan (as a set of document keys and copies).
            let mut rev = cands.clone();
            rev.reverse();
            let q = plan(&rev, &bn, &[], &c);
            let keys = |p: &MixPlan, cs: &[Candidate]| {
                let mut v: Vec<(u64, u32)> = p.picks.iter().flatten().map(|&(i, n)| (cs[i as usize].key, n)).collect();
                v.sort_unstable();
                v
            };
            prop_assert_eq!(keys(&p, &cands), keys(&q, &rev));
            prop_assert_eq!(&p.report.buckets, &q.report.buckets);
            let sh = p.shuffled(&cands, seed);
            prop_assert_eq!(sh.len() as u64, p.report.copies);
        }
    }
}
