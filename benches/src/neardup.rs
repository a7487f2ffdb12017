//! A labelled near-duplicate set built from real texts, for scoring MinHash dedup.
//!
//! No public near-duplicate benchmark of web documents is reachable here, so this module makes
//! one from `../shared/data/corpora/warc-extracted-texts.jsonl.gz` (1,080 real extracted pages,
//! many languages): pages are cut into bases of 200+ words on line boundaries, bases that
//! already resemble each other (5-gram Jaccard >= 0.1) are dropped, and each base gets one
//! variant made by one kind of change at a random strength:
//!
//! - `edit`: words replaced by words from other pages;
//! - `insert`: runs of 6 to 12 words from other pages inserted at random places;
//! - `delete`: runs of 6 to 12 words deleted;
//! - `boilerplate`: navigation, cookie and share lines added before and after, shuffled;
//! - `mixed`: a little of each.
//!
//! The label of a pair is its exact Jaccard similarity: the shingle sets are computed with the
//! stage's own shingling (word 5-grams of the normalized text, each a 64-bit hash; two distinct
//! shingles of one pair collide with probability about 10^-13) and intersected exactly.
//! Everything is seeded: the same seed gives the same set.

use std::collections::HashMap;

use stages::dedup::minhash::MinHasher;
use stages::Document;

/// One labelled pair: a base and its variant.
#[derive(Clone, Debug)]
pub struct Pair {
    pub base: String,
    pub variant: String,
    pub op: &'static str,
    pub jaccard: f64,
}

/// The documents (bases and variants, shuffled) and the labelled pairs.
#[derive(Clone, Debug, Default)]
pub struct NearDupSet {
    pub docs: Vec<(String, String)>,
    pub pairs: Vec<Pair>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Lines a site template adds around content.
const BOILERPLATE: &[&str] = &[
    "Home | News | Sport | Weather | Contact",
    "We use cookies to improve your experience on our website. Accept all cookies",
    "Share this article on Facebook Twitter LinkedIn and WhatsApp",
    "Copyright 2024 Example Media Group. All rights reserved.",
    "Subscribe to our newsletter and never miss a story",
    "Privacy policy Terms of use Accessibility statement Sitemap",
    "Related articles you might also like to read today",
    "Log in or register to post comments",
    "Skip to main content",
    "Follow us on social media for the latest updates",
    "Advertisement",
    "Read more stories from our archive",
    "Top stories of the week selected by our editors",
    "Back to top",
    "Print this page or send it to a friend by email",
    "Most popular topics this month in our community",
];

/// Word 5-gram shingle hashes of a text as the MinHash stage computes them, sorted, unique.
pub fn shingle_set(hasher: &MinHasher, text: &str) -> Vec<u64> {
    let d = Document::new("", text);
    let mut s = Vec::new();
    hasher.shingles(d.normalized(), &mut s);
    s.sort_unstable();
    s.dedup();
    s
}

/// Exact Jaccard similarity of two sorted unique sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - inter;
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Cuts texts into bases of at least `min_words` whitespace words, on line boundaries.
fn bases(texts: &[String], min_words: usize) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for t in texts {
        let mut cur: Vec<String> = Vec::new();
        let mut words = 0;
        for line in t.lines() {
            let n = line.split_whitespace().count();
            if n == 0 {
                continue;
            }
            cur.push(line.to_string());
            words += n;
            if words >= min_words {
                out.push(std::mem::take(&mut cur));
                words = 0;
            }
        }
    }
    out
}

/// Builds the set from real texts. `max_pairs` bounds its size (0: every usable base).
pub fn build(texts: &[String], seed: u64, max_pairs: usize) -> NearDupSet {
    let hasher = MinHasher::new(5, 1, 1, 0);
    let mut rng = Rng(seed ^ 0x6E65_6172_6475_7031);
    // Bases, minus those resembling an earlier one (an inverted index finds candidates).
    let candidates = bases(texts, 200);
    let mut owner: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut sets: Vec<Vec<u64>> = Vec::new();
    let mut kept: Vec<Vec<String>> = Vec::new();
    for lines in candidates {
        let set = shingle_set(&hasher, &lines.join("\n"));
        if set.len() < 150 {
            continue;
        }
        let mut overlap: HashMap<u32, usize> = HashMap::new();
        for s in &set {
            if let Some(o) = owner.get(s) {
                for &b in o {
                    *overlap.entry(b).or_default() += 1;
                }
            }
        }
        let similar = overlap.iter().any(|(&b, &n)| {
            let other = sets[b as usize].len();
            n as f64 / (set.len() + other - n) as f64 >= 0.1
        });
        if similar {
            continue;
        }
        let id = sets.len() as u32;
        for &s in &set {
            owner.entry(s).or_default().push(id);
        }
        sets.push(set);
        kept.push(lines);
    }
    if max_pairs > 0 && kept.len() > max_pairs {
        kept.truncate(max_pairs);
        sets.truncate(max_pairs);
    }
    // A vocabulary of foreign words, for edits and insertions.
    let vocab: Vec<String> = kept
        .iter()
        .flat_map(|l| l.iter().flat_map(|s| s.split_whitespace()))
        .filter(|w| w.chars().count() > 2)
        .map(str::to_string)
        .collect();
    let ops = ["edit", "insert", "delete", "boilerplate", "mixed"];
    let mut set = NearDupSet::default();
    for (i, lines) in kept.iter().enumerate() {
        let op = ops[i % ops.len()];
        // Strength: aimed at a Jaccard spread over 0.2..1, more densely around 0.4..0.95.
        let target = if rng.unit() < 0.5 {
            0.2 + 0.8 * rng.unit()
        } else {
            0.4 + 0.55 * rng.unit()
        };
        let variant = mutate(lines, op, target, &vocab, &mut rng);
        let base_text = lines.join("\n");
        let j = jaccard(&sets[i], &shingle_set(&hasher, &variant));
        let (b, v) = (format!("b{i:05}"), format!("v{i:05}"));
        set.docs.push((b.clone(), base_text));
        set.docs.push((v.clone(), variant));
        set.pairs.push(Pair {
            base: b,
            variant: v,
            op,
            jaccard: j,
        });
    }
    // Shuffle documents so that a pair's two sides land in different partitions.
    for k in (1..set.docs.len()).rev() {
        let r = rng.below(k + 1);
        set.docs.swap(k, r);
    }
    set
}

fn mutate(lines: &[String], op: &str, target: f64, vocab: &[String], rng: &mut Rng) -> String {
    let mut toks: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    let w: usize = toks.iter().map(Vec::len).sum();
    // Shingles to disturb for a replacement-like change of Jaccard `target`.
    let disturbed = (w as f64 * (1.0 - target) / (1.0 + target)).round() as usize;
    let pos = |toks: &Vec<Vec<String>>, rng: &mut Rng| -> (usize, usize) {
        loop {
            let l = rng.below(toks.len());
            if !toks[l].is_empty() {
                return (l, rng.below(toks[l].len()));
            }
        }
    };
    let edit = |toks: &mut Vec<Vec<String>>, n: usize, rng: &mut Rng| {
        for _ in 0..n {
            let (l, k) = pos(toks, rng);
            toks[l][k] = vocab[rng.below(vocab.len())].clone();
        }
    };
    let insert = |toks: &mut Vec<Vec<String>>, n: usize, rng: &mut Rng| {
        let mut added = 0;
        while added < n {
            let run = 6 + rng.below(7);
            let (l, k) = pos(toks, rng);
            let start = rng.below(vocab.len().saturating_sub(run).max(1));
            for (x, word) in vocab[start..(start + run).min(vocab.len())]
                .iter()
                .enumerate()
            {
                toks[l].insert(k + x, word.clone());
            }
            added += run;
        }
    };
    let delete = |toks: &mut Vec<Vec<String>>, n: usize, rng: &mut Rng| {
        let mut removed = 0;
        while removed < n {
            let run = 6 + rng.below(7);
            let (l, k) = pos(toks, rng);
            let end = (k + run).min(toks[l].len());
            removed += end - k;
            toks[l].drain(k..end);
            if toks.iter().all(Vec::is_empty) {
                break;
            }
        }
    };
    let boilerplate = |toks: &mut Vec<Vec<String>>, words: usize, rng: &mut Rng| {
        let mut pool: Vec<&str> = BOILERPLATE.to_vec();
        for k in (1..pool.len()).rev() {
            pool.swap(k, rng.below(k + 1));
        }
        let (mut added, mut k) = (0, 0);
        while added < words {
            let line: Vec<String> = pool[k % pool.len()]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            added += line.len();
            if rng.below(2) == 0 {
                toks.insert(0, line);
            } else {
                toks.push(line);
            }
            k += 1;
        }
    };
    match op {
        "edit" => edit(&mut toks, disturbed.div_ceil(5), rng),
        "insert" => insert(&mut toks, disturbed, rng),
        "delete" => delete(&mut toks, disturbed, rng),
        "boilerplate" => {
            let words = (w as f64 * (1.0 / target.max(0.05) - 1.0)).round() as usize;
            boilerplate(&mut toks, words, rng)
        }
        _ => {
            let third = disturbed / 3;
            edit(&mut toks, third.div_ceil(5), rng);
            delete(&mut toks, third, rng);
            boilerplate(&mut toks, third, rng);
        }
    }
    toks.iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the `text` of every line of a (gzipped) JSONL file.
pub fn read_texts(path: &std::path::Path) -> std::io::Result<Vec<String>> {
    use std::io::Read;
    let bytes = std::fs::read(path)?;
    let mut s = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut s)?;
    } else {
        s = String::from_utf8_lossy(&bytes).into_owned();
    }
    Ok(s.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect())
}

/// Found rates of labelled pairs by Jaccard bucket.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub lo: f64,
    pub hi: f64,
    pub pairs: usize,
    pub found: usize,
    /// Mean probability, by the model given to [`score`], that a pair of this bucket is found.
    pub expected: f64,
}

/// Scores predictions: `same(pair)` says whether the system put both sides in one cluster;
/// `expected(jaccard)` is the probability that a pair is found (e.g.
/// [`MinHasher::found_probability`]).
pub fn score(
    set: &NearDupSet,
    expected: impl Fn(f64) -> f64,
    same: impl Fn(&Pair) -> bool,
) -> Vec<Bucket> {
    let edges = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 1.0001];
    let mut out: Vec<Bucket> = edges
        .windows(2)
        .map(|w| Bucket {
            lo: w[0],
            hi: w[1].min(1.0),
            pairs: 0,
            found: 0,
            expected: 0.0,
        })
        .collect();
    for p in &set.pairs {
        let k = edges
            .windows(2)
            .position(|w| p.jaccard >= w[0] && p.jaccard < w[1])
            .unwrap_or(0);
        out[k].pairs += 1;
        out[k].found += same(p) as usize;
        out[k].expected += expected(p.jaccard);
    }
    for b in &mut out {
        if b.pairs > 0 {
            b.expected /= b.pairs as f64;
        }
    }
    out
}

/// Share of pairs with Jaccard in `lo..hi` that were found (and how many there are).
pub fn rate(set: &NearDupSet, lo: f64, hi: f64, same: impl Fn(&Pair) -> bool) -> (f64, usize) {
    let sel: Vec<&Pair> = set
        .pairs
        .iter()
        .filter(|p| p.jaccard >= lo && p.jaccard < hi)
        .collect();
    let found = sel.iter().filter(|p| same(p)).count();
    (found as f64 / sel.len().max(1) as f64, sel.len())
}
