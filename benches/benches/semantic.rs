//! Static embeddings (`curate distill`) against the MiniLM teacher they come from, in one run on
//! the same texts: embedding speed, and agreement of semantic dedup decisions.
//!
//! 1. **Model.** The shared all-MiniLM-L6-v2 int8 encoder is distilled (`curate distill`'s defaults:
//!    256 dims, SIF a = 1e-3, two common directions removed)
//!    with token frequencies from the shared classifier train files, validation groups
//!    (`sha1(group) % 4 == 0`) left out ("distilled"), and the same fitted to MiniLM's
//!    embeddings of windows of training text disjoint from the evaluation set (step 5,
//!    [`fit_set`]; "fitted", one per `FIT_LAMBDA` value); or `STATIC_MODEL=DIR` names a model.
//!    Knobs: `FIT_WINDOWS`, `FIT_MIXED`, `FIT_PER_TEXT`, `FIT_ITERATIONS`, `DIMS`, `SIF_A`,
//!    `FIT_CLASS_DOCS`, `FIT_CLEANEVAL=1` (CleanEval's gold texts join the fit texts),
//!    `FIT_LINGUA=1` (so do the language-ID test sentences, 25 to a text); `POOL_BETA=b,..`
//!    scores each model also with attention-like pooling ([`ctx_embed`]);
//!    `DISTILL_CACHE=DIR` keeps MiniLM's outputs between runs; `SKIP_SPEED=1`.
//! 2. **Evaluation set** (seeded, rebuilt the same each run):
//!    - the near-duplicate set of `curate_benches::neardup` from the 1,080 real extracted pages of
//!      `../shared/data/corpora` (the first `EVAL_BASES`, default 1,000, bases of 200+ words; one
//!      variant each by word edits, inserted or deleted runs, template boilerplate lines, or a
//!      mix, at Jaccard 0.2 to 1);
//!    - a *rewrite* of every third base: its sentences reordered (first one kept), one in five
//!      dropped, and every tenth word dropped: the same content in another order, which shares
//!      few word 5-grams with the base (MinHash's blind spot);
//!    - hard negatives: 300 documents of the classifier train files (same-topic technical text,
//!      different source files).
//!
//!    Every pair of documents is compared under both models. Documents are split in two halves
//!    by their group (a base, its variant and its rewrite share one): the static threshold is
//!    calibrated on half A (the highest threshold that finds >= 90% of half A's pairs MiniLM
//!    puts at or above its threshold; `CAL_RECALL` sets the share, a list prints one table
//!    each) and scored on half B, so the scored figures are out-of-sample; a 2-fold
//!    cross-validation inside half A ("cv" columns) is what settings are chosen by. Besides agreement with MiniLM, the table splits the flagged pairs that
//!    MiniLM puts below 0.80 into constructed duplicates (a base and its own variant or
//!    rewrite) and different documents, and gives each model's recall of the constructed
//!    duplicates; the same table is repeated for pairs of English documents (8%+ English stop
//!    words), the language MiniLM was trained on (most pages of the corpus are German).
//! 3. **Speed**: both on one thread, docs/s by wall clock and per CPU-second, on the evaluation
//!    documents and on 2,000 classifier train documents (whole files up to 12,000 characters);
//!    MiniLM on the first `MINILM_DOCS` (default 128) of each, static on all.
//!
//! 4. **Heads** on the classifier validation split (`curate_benches::classdata`: a quarter of
//!    the train files' groups; the kept-aside test files are never read): a linear head
//!    (`curate train head`'s fit) on static embeddings, on MiniLM embeddings, and fastText with
//!    `curate train fasttext`'s defaults, for the topic task (4 classes) and the quality task
//!    (`hq` against web pages). MiniLM embeds at ~20 docs/s, so all three train and score on
//!    the same seeded subsample (`HEAD_DOCS`, default 300 train and 150 validation documents
//!    per class); static and fastText are also run on all documents.
//!
//! Run: cargo bench -p curate-benches --bench semantic (`SKIP_HEADS=1` leaves step 4 out)

use std::path::{Path, PathBuf};
use std::time::Instant;

use classifiers::fasttext::train::{TrainOptions, Trainer};
use classifiers::fasttext::{Preprocess, Session};
use classifiers::onnx::train::{evaluate, fit, HeadOptions};
use classifiers::onnx::{activate, Activation};
use classifiers::onnx::{Encoder, EncoderOptions, Pooling, RuntimeOptions};
use classifiers::static_embed::{distill_with, DistillOptions, PositionWeight, StaticModel};
use curate_benches::classdata::{quality_docs, topic_docs, Doc};
use curate_benches::split::sha1_prefix32;
use curate_benches::{neardup, shared_dir};

fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `(id, group, text)` of the classifier train files, in file order.
fn class_docs(shared: &Path, files: &[&str]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in files {
        let p = shared.join("data/classifiers").join(f);
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()),
            &mut s,
        )
        .unwrap();
        for l in s.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"].as_str().unwrap().to_string();
            let group = id.split('#').next().unwrap().to_string();
            out.push((id, group, v["text"].as_str().unwrap().to_string()));
        }
    }
    out
}

const CLASS_FILES: &[&str] = &[
    "quality-hq-train.jsonl.gz",
    "topic-general-train.jsonl.gz",
    "topic-math-train.jsonl.gz",
    "topic-code-train.jsonl.gz",
    "topic-multilingual-train.jsonl.gz",
];

/// Sentences reordered (the first kept), one in five dropped, every tenth word dropped.
fn rewrite(text: &str, seed: u64) -> String {
    let mut sents: Vec<&str> = text
        .split_inclusive(['.', '!', '?', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut r = seed;
    let mut next = || {
        r = mix64(r);
        r
    };
    for k in (2..sents.len()).rev() {
        let j = 1 + (next() % k as u64) as usize;
        sents.swap(k, j);
    }
    let mut words = Vec::new();
    for (i, s) in sents.iter().enumerate() {
        if i > 0 && next() % 5 == 0 {
            continue;
        }
        for w in s.split_whitespace() {
            if next() % 10 != 0 {
                words.push(w);
            }
        }
    }
    words.join(" ")
}

struct Eval {
    texts: Vec<String>,
    groups: Vec<u64>,
    /// What each document is: `base`, the variant's change (`edit`, `insert`, `delete`,
    /// `boilerplate`, `mixed`), `rewrite` or `negative`.
    kinds: Vec<&'static str>,
}

fn eval_set(shared: &Path) -> Eval {
    let pages = neardup::read_texts(&shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
        .expect("warc-extracted texts");
    // EVAL_BASES bases (default 1,000: ~150 MiniLM pairs at 0.95 per half; at 400 there were
    // 55 and 65, so one pair moved recall by 1.5 points): every pair is compared, and MiniLM
    // embeds every document (~100 s).
    let bases: usize = std::env::var("EVAL_BASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let set = neardup::build(&pages, 20240723, bases);
    let mut texts = Vec::new();
    let mut groups = Vec::new();
    let mut kinds = Vec::new();
    let group_of = |id: &str| id[1..].parse::<u64>().unwrap();
    let ops: std::collections::HashMap<&str, &'static str> = set
        .pairs
        .iter()
        .map(|p| (p.variant.as_str(), p.op))
        .collect();
    let mut bases = Vec::new();
    for (id, t) in &set.docs {
        texts.push(t.clone());
        groups.push(group_of(id));
        kinds.push(ops.get(id.as_str()).copied().unwrap_or("base"));
        if id.starts_with('b') {
            bases.push((group_of(id), t.clone()));
        }
    }
    bases.sort_by_key(|b| b.0);
    for (g, t) in bases.iter().step_by(3) {
        texts.push(rewrite(t, *g));
        groups.push(*g);
        kinds.push("rewrite");
    }
    let mut negs = class_docs(shared, CLASS_FILES);
    negs.retain(|(_, g, _)| sha1_prefix32(g) % 4 != 0);
    negs.sort_by_cached_key(|(id, _, _)| mix64(sha1_prefix32(id) as u64));
    for (i, (_, _, t)) in negs.into_iter().take(300).enumerate() {
        texts.push(t);
        groups.push(1_000_000 + i as u64);
        kinds.push("negative");
    }
    Eval {
        texts,
        groups,
        kinds,
    }
}

/// Training text for the fit (step 5), disjoint from the evaluation set: the corpus pages
/// that share no line with an evaluation base (so no base, variant or rewrite, nor a page
/// cut into the same bases), then `FIT_CLASS_DOCS` (default 1,200) classifier train
/// documents outside the validation groups and outside the groups of the evaluation's
/// negatives, in seeded hash order.
fn fit_set(shared: &Path, eval: &Eval) -> Vec<String> {
    let pages = neardup::read_texts(&shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
        .expect("warc-extracted texts");
    let eval_lines: std::collections::HashSet<&str> = eval
        .texts
        .iter()
        .flat_map(|t| t.lines().map(str::trim).filter(|l| !l.is_empty()))
        .collect();
    let mut out: Vec<String> = pages
        .into_iter()
        .filter(|p| {
            !p.lines()
                .map(str::trim)
                .any(|l| !l.is_empty() && eval_lines.contains(l))
        })
        .collect();
    // FIT_PAGES=0: no corpus pages (the recipe of scripts/train_models.sh, which fits on the
    // classifier train documents only).
    if std::env::var("FIT_PAGES").is_ok_and(|v| v == "0") {
        out.clear();
    }
    let pages = out.len();
    let n: usize = std::env::var("FIT_CLASS_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1200);
    let eval_texts: std::collections::HashSet<&str> =
        eval.texts.iter().map(|s| s.as_str()).collect();
    let mut docs = class_docs(shared, CLASS_FILES);
    let neg_groups: std::collections::HashSet<String> = docs
        .iter()
        .filter(|(_, _, t)| eval_texts.contains(t.as_str()))
        .map(|(_, g, _)| g.clone())
        .collect();
    docs.retain(|(_, g, _)| sha1_prefix32(g) % 4 != 0 && !neg_groups.contains(g));
    docs.sort_by_cached_key(|(id, _, _)| mix64(sha1_prefix32(id) as u64 ^ 0x5eed));
    out.extend(docs.into_iter().take(n).map(|d| d.2));
    let class = out.len() - pages;
    // FIT_CLEANEVAL=1: also CleanEval's hand-cleaned page texts (web pages of many sites,
    // mostly English; nothing the evaluation reads), as `classdata::web_docs` reads them: the
    // URL line and markers dropped, the classifier data's kept-aside test groups left out.
    if std::env::var_os("FIT_CLEANEVAL").is_some() {
        let before = out.len();
        out.extend(
            curate_benches::classdata::web_docs(shared)
                .into_iter()
                .filter(|d| d.id.starts_with("cleaneval/"))
                .map(|d| d.text),
        );
        println!(
            "fit texts: {} CleanEval gold texts (not the test groups)",
            out.len() - before
        );
    }
    // FIT_LINGUA=1: also the language-ID test sentences of 75 languages (Leipzig web
    // sentences; nothing the evaluation reads), 25 sentences of one language to a text, so the
    // fit sees how MiniLM weighs text in languages other than English.
    if std::env::var_os("FIT_LINGUA").is_some() {
        let dir = shared.join("data/langid/lingua-testdata");
        let mut langs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("lingua testdata")
            .map(|e| e.unwrap().path())
            .collect();
        langs.sort();
        let before = out.len();
        for l in langs {
            let mut raw = String::new();
            use std::io::Read;
            flate2::read::GzDecoder::new(std::fs::File::open(l.join("sentences.txt.gz")).unwrap())
                .read_to_string(&mut raw)
                .unwrap();
            let lines: Vec<&str> = raw.lines().filter(|l| !l.trim().is_empty()).collect();
            out.extend(lines.chunks(25).map(|c| c.join(" ")));
        }
        println!(
            "fit texts: {} texts of language-ID sentences",
            out.len() - before
        );
    }
    println!(
        "fit texts: {pages} corpus pages sharing no line with the evaluation set, {} classifier \
         train documents (not validation, not the negatives' groups)",
        class
    );
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One pair of evaluation documents: cosine under each model, whether the two come from one
/// base (a base, its variant, its rewrite: duplicates by construction), whether both are
/// English.
struct EvalPair {
    minilm: f32,
    stat: f32,
    same: bool,
    english: bool,
    /// For a constructed duplicate, what the non-base side is (`rewrite` against the variant:
    /// `variant/rewrite`); `different` otherwise.
    kind: &'static str,
    /// The two documents (indices into the evaluation texts).
    docs: (u32, u32),
    /// Sub-fold of half A (both documents' groups in sub-fold 0 or 1; 2: across), for
    /// choosing settings by cross-validation inside the calibration half.
    fold: u8,
}

/// The static threshold that finds `recall` of the pairs MiniLM puts at or above `tm`.
fn calibrate(ps: &[&EvalPair], tm: f32, recall: f64) -> Option<f32> {
    let mut pos: Vec<f32> = ps
        .iter()
        .filter(|p| p.minilm >= tm)
        .map(|p| p.stat)
        .collect();
    if pos.is_empty() {
        return None;
    }
    pos.sort_by(|x, y| y.total_cmp(x));
    Some(pos[((pos.len() as f64 * recall).ceil() as usize).clamp(1, pos.len()) - 1])
}

/// Recall of MiniLM's pairs at `tm` and the share of flagged pairs below 0.80 under MiniLM,
/// at static threshold `ts`.
fn rates(ps: &[&EvalPair], tm: f32, ts: f32) -> (f64, f64) {
    let pos = ps.iter().filter(|p| p.minilm >= tm).count();
    let found = ps.iter().filter(|p| p.minilm >= tm && p.stat >= ts).count();
    let flagged = ps.iter().filter(|p| p.stat >= ts).count();
    let low = ps.iter().filter(|p| p.stat >= ts && p.minilm < 0.8).count();
    (
        found as f64 / pos.max(1) as f64,
        low as f64 / flagged.max(1) as f64,
    )
}

/// English by stop words: at least 8% of the words are among the most common English ones
/// (the rule the shared classifier data uses for English prose).
fn is_english(t: &str) -> bool {
    const STOP: &[&str] = &[
        "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "was", "on",
        "be", "by", "this", "are", "or", "from", "at", "an", "which", "not", "you", "can", "have",
    ];
    let (mut n, mut hit) = (0usize, 0usize);
    for w in t.split_whitespace() {
        n += 1;
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        hit += STOP.contains(&w.as_str()) as usize;
    }
    n > 0 && hit as f64 / n as f64 >= 0.08
}

/// The agreement table of the pairs `keep` selects: the static threshold calibrated on half A
/// (the highest that finds >= 90% of the pairs MiniLM puts at or above its threshold), scored
/// on half B; then the flagged pairs below 0.80 under MiniLM split into constructed
/// duplicates and different documents, and each model's recall of the constructed duplicates
/// of half B at its own threshold.
fn agreement(
    name: &str,
    texts: &[String],
    a: &[EvalPair],
    b: &[EvalPair],
    cal: f64,
    keep: impl Fn(&EvalPair) -> bool,
) {
    let a: Vec<&EvalPair> = a.iter().filter(|p| keep(p)).collect();
    let b: Vec<&EvalPair> = b.iter().filter(|p| keep(p)).collect();
    let dups = b.iter().filter(|p| p.same).count();
    println!(
        "\n{name}: {} pairs in half B, {dups} of them constructed duplicates",
        b.len()
    );
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11} {:>11} {:>11} {:>11} {:>9} {:>10}",
        "MiniLM t",
        "pos A|B",
        "static t",
        "recall A",
        "recall B",
        "flagged",
        "<0.80 (B)",
        "<0.80 diff",
        "dup rec MLM",
        "dup rec st",
        "cv rec A",
        "cv <0.80 A"
    );
    for tm in [0.95f32, 0.9, 0.85] {
        let Some(ts) = calibrate(&a, tm, cal) else {
            continue;
        };
        // Two-fold cross-validation inside half A: calibrate on one sub-fold, score the other.
        let sub = |f: u8| {
            a.iter()
                .copied()
                .filter(|p| p.fold == f)
                .collect::<Vec<_>>()
        };
        let (s0, s1) = (sub(0), sub(1));
        let mut cv = (0.0, 0.0);
        for (c, e) in [(&s0, &s1), (&s1, &s0)] {
            if let Some(t) = calibrate(c, tm, cal) {
                let (r, l) = rates(e, tm, t);
                cv = (cv.0 + r / 2.0, cv.1 + l / 2.0);
            }
        }
        let recall = |ps: &[&EvalPair]| {
            let p: Vec<_> = ps.iter().filter(|p| p.minilm >= tm).collect();
            (
                p.iter().filter(|p| p.stat >= ts).count() as f64 / p.len().max(1) as f64,
                p.len(),
            )
        };
        let (ra, na) = recall(&a);
        let (rb, nb) = recall(&b);
        let flagged: Vec<_> = b.iter().filter(|p| p.stat >= ts).collect();
        let low = flagged.iter().filter(|p| p.minilm < 0.8).count();
        let low_diff = flagged.iter().filter(|p| p.minilm < 0.8 && !p.same).count();
        let pct = |k: usize| format!("{:.2}%", 100.0 * k as f64 / flagged.len().max(1) as f64);
        let dup_rec = |f: &dyn Fn(&EvalPair) -> bool| {
            b.iter().filter(|&&p| p.same && f(p)).count() as f64 / dups.max(1) as f64
        };
        println!(
            "{:<8.2} {:>9} {:>9.4} {:>9.3} {:>9.3} {:>8} {:>11} {:>11} {:>11.3} {:>11.3} {:>9.3} {:>9.2}%",
            tm,
            format!("{na}|{nb}"),
            ts,
            ra,
            rb,
            flagged.len(),
            pct(low),
            pct(low_diff),
            dup_rec(&|p: &EvalPair| p.minilm >= tm),
            dup_rec(&|p: &EvalPair| p.stat >= ts),
            cv.0,
            100.0 * cv.1,
        );
        if tm == 0.95 {
            breakdown(texts, &b, tm, ts);
        }
    }
}

/// A document's embedding with its tokens weighted by how well each agrees with the plain
/// sum: `w_t = exp(beta * cos(v_t, mean))`, a one-query attention over the window (beta 0 is
/// the plain sum). An experiment: a run of words from elsewhere weighs less than on-topic text.
fn ctx_embed(m: &StaticModel, text: &str, beta: f32) -> Vec<f32> {
    let mut ids = Vec::new();
    m.token_ids(text, m.meta().max_tokens, &mut ids);
    let d = m.dim();
    let mut mean = vec![0f32; d];
    for &id in &ids {
        for (o, x) in mean.iter_mut().zip(m.token_vector(id)) {
            *o += x;
        }
    }
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let mn = norm(&mean);
    let mut out = vec![0f32; d];
    for &id in &ids {
        let v = m.token_vector(id);
        let c = dot(v, &mean) / (norm(v) * mn);
        let w = (beta * c).exp();
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * x;
        }
    }
    let n = norm(&out);
    out.iter_mut().for_each(|x| *x /= n);
    out
}

/// A document's embedding with order in it, an experiment: token `p` of the window weighs
/// `1 + c * exp(-p / tau)` (`POS=c:tau`), and with `k` segments (`SEG=k:w`) the unit sum of
/// each `k`-th of the window is appended, weighted `sqrt(w)` against the whole window's unit
/// sum, so that the cosine is `(cos_all + w * sum of segment cosines) / (1 + k w)`.
fn order_embed(m: &StaticModel, text: &str, pos: (f32, f32), seg: (usize, f32)) -> Vec<f32> {
    let mut ids = Vec::new();
    m.token_ids(text, m.meta().max_tokens, &mut ids);
    let d = m.dim();
    let (k, w) = (seg.0.max(1), seg.1);
    let mut parts = vec![vec![0f32; d]; k + 1];
    let n = ids.len().max(1);
    let (boost, scale) = (pos.0 as f64, pos.1.max(1e-6) as f64);
    let wts = PositionWeight { boost, scale }.weights(ids.len());
    for (p, (&id, &wt)) in ids.iter().zip(&wts).enumerate() {
        let s = 1 + p * k / n;
        for (o, x) in parts[0].iter_mut().zip(m.token_vector(id)) {
            *o += wt * x;
        }
        if seg.0 > 0 {
            for (o, x) in parts[s].iter_mut().zip(m.token_vector(id)) {
                *o += wt * x;
            }
        }
    }
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let mut out = Vec::with_capacity(d * (k + 1));
    for (i, part) in parts.iter().enumerate() {
        if i > 0 && seg.0 == 0 {
            break;
        }
        let f = if i == 0 { 1.0 } else { w.sqrt() } / norm(part);
        out.extend(part.iter().map(|x| x * f));
    }
    let t = norm(&out);
    out.iter_mut().for_each(|x| *x /= t);
    out
}

/// How the harness pools a model's token vectors for the agreement tables.
enum Pool {
    Sum,
    Ctx(f32),
    Order((f32, f32), (usize, f32)),
}

/// The kind of a pair of documents (see [`EvalPair::kind`]).
fn pair_kind(a: &'static str, b: &'static str, same: bool) -> &'static str {
    if !same {
        return "different";
    }
    match (a, b) {
        ("base", k) | (k, "base") => k,
        _ => "variant/rewrite",
    }
}

/// Half B's MiniLM pairs at `tm` missed at static threshold `ts`, and the flagged pairs below
/// 0.80 under MiniLM, by pair kind: where the two models part.
fn breakdown(texts: &[String], b: &[&EvalPair], tm: f32, ts: f32) {
    let mut kinds: Vec<&str> = b.iter().map(|p| p.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut line = String::from("   by kind (MiniLM pairs, missed; flagged, < 0.80):");
    for k in kinds {
        let of = |f: &dyn Fn(&EvalPair) -> bool| b.iter().filter(|p| p.kind == k && f(p)).count();
        let pos = of(&|p| p.minilm >= tm);
        let missed = of(&|p| p.minilm >= tm && p.stat < ts);
        let flagged = of(&|p| p.stat >= ts);
        let low = of(&|p| p.stat >= ts && p.minilm < 0.8);
        if pos + flagged > 0 {
            line.push_str(&format!(" {k} {pos}, {missed}; {flagged}, {low} |"));
        }
    }
    println!("{line}");
    // EXAMPLES=N: the first N flagged pairs of different documents below 0.80 under MiniLM.
    let n: usize = std::env::var("EXAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // EXAMPLES_KIND: another kind than `different` (`insert`, `edit`...), EXAMPLES_CHARS: how
    // much of each text.
    let kind = std::env::var("EXAMPLES_KIND").unwrap_or_else(|_| "different".into());
    let chars: usize = std::env::var("EXAMPLES_CHARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(160);
    let head = |t: &str| {
        t.chars()
            .take(chars)
            .collect::<String>()
            .replace('\n', " / ")
    };
    for p in b
        .iter()
        .filter(|p| p.kind == kind && p.stat >= ts && p.minilm < 0.8)
        .take(n)
    {
        println!(
            "   static {:.3} MiniLM {:.3}\n     [{}]\n     [{}]",
            p.stat,
            p.minilm,
            head(&texts[p.docs.0 as usize]),
            head(&texts[p.docs.1 as usize])
        );
    }
}

/// MiniLM's embeddings of `texts`, kept in `DISTILL_CACHE` (keyed by a hash of the texts)
/// when it is set, so that runs that only change the static model skip the teacher.
fn cached_embed(minilm: &Encoder, texts: &[&str]) -> Vec<Vec<f32>> {
    let dir = std::env::var_os("DISTILL_CACHE").map(PathBuf::from);
    let key = texts.iter().fold(0u64, |h, t| {
        mix64(h ^ sha1_prefix32(t) as u64 ^ t.len() as u64)
    });
    let path = dir.map(|d| d.join(format!("minilm-eval-{key:016x}-{}.f32", texts.len())));
    if let Some(b) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        let d = minilm.dim();
        if b.len() == texts.len() * d * 4 {
            let v: Vec<f32> = b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            return v.chunks(d).map(|c| c.to_vec()).collect();
        }
    }
    let em = minilm.embed(texts).unwrap();
    if let Some(p) = path {
        let b: Vec<u8> = em.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
        let _ = std::fs::write(p, b);
    }
    em
}

/// Docs/s by wall clock and per CPU-second of `f` over `n` documents.
fn timed(n: usize, f: impl FnOnce()) -> (f64, f64) {
    let (w, c) = (Instant::now(), cpu_seconds());
    f();
    let (w, c) = (w.elapsed().as_secs_f64(), cpu_seconds() - c);
    (n as f64 / w, n as f64 / c.max(1e-9))
}

fn main() {
    let Some(shared) = shared_dir() else {
        println!("skipped: ../shared is absent");
        return;
    };
    let Some(lib) = classifiers::testing::ort_library() else {
        println!("skipped: no libonnxruntime.so");
        return;
    };
    let minilm_dir = shared.join("data/models/all-minilm-l6-v2-int8");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let teacher = |normalize: bool| {
        Encoder::open(
            &minilm_dir,
            &EncoderOptions {
                runtime: RuntimeOptions {
                    library: Some(lib.clone()),
                    ..Default::default()
                },
                max_length: Some(128),
                pooling: Some(Pooling::Mean),
                normalize: Some(normalize),
                ..Default::default()
            },
        )
        .unwrap()
    };

    // 1. The static models: distilled (steps 1-4), and fitted to MiniLM's embeddings of
    // training windows (step 5), or `STATIC_MODEL`.
    let eval = eval_set(&shared);
    let tmp = tempfile::tempdir().unwrap();
    let mut models: Vec<(String, StaticModel)> = Vec::new();
    match std::env::var_os("STATIC_MODEL") {
        Some(d) => models.push(("static".into(), StaticModel::open(Path::new(&d)).unwrap())),
        None => {
            let freq: Vec<String> = class_docs(&shared, CLASS_FILES)
                .into_iter()
                .filter(|(_, g, _)| sha1_prefix32(g) % 4 != 0)
                .map(|(_, _, t)| t)
                .collect();
            let fit_texts = fit_set(&shared, &eval);
            let fit_refs: Vec<&str> = fit_texts.iter().map(|s| s.as_str()).collect();
            let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
            let mut opts = DistillOptions {
                cache: std::env::var_os("DISTILL_CACHE").map(PathBuf::from),
                ..Default::default()
            };
            if let Some(w) = env("FIT_WINDOWS") {
                opts.fit.windows = w as usize;
            }
            if let Some(d) = env("DIMS") {
                opts.dims = d as usize;
            }
            if let Some(m) = env("FIT_MIXED") {
                opts.fit.mixed = m as usize;
            }
            // POS_FIT=c:tau: the models' own position weights (0:1 for none).
            if let Ok(v) = std::env::var("POS_FIT") {
                let (c, t) = v.split_once(':').expect("POS_FIT=boost:scale");
                let (c, t): (f64, f64) = (c.parse().unwrap(), t.parse().unwrap());
                opts.position_weight = (c > 0.0).then_some(PositionWeight { boost: c, scale: t });
            }
            if let Some(a) = env("SIF_A") {
                opts.sif_a = a;
            }
            if let Some(p) = env("FIT_PER_TEXT") {
                opts.fit.per_text = p as usize;
            }
            if let Some(i) = env("FIT_ITERATIONS") {
                opts.fit.iterations = i as usize;
            }
            // FIT_PAIRS=k[:weight[:min_cosine]]: difference rows of the k hardest pairs.
            if let Ok(v) = std::env::var("FIT_PAIRS") {
                let mut it = v.split(':').map(|x| x.parse::<f64>().expect("FIT_PAIRS"));
                opts.fit.pairs = it.next().unwrap() as usize;
                opts.fit.pair_weight = it.next().unwrap_or(opts.fit.pair_weight);
                opts.fit.pair_min_cosine = it.next().unwrap_or(opts.fit.pair_min_cosine);
            }
            // FIT_LAMBDA: one fitted model per value of a list (default: the library's).
            let lambdas: Vec<f64> = std::env::var("FIT_LAMBDA")
                .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                .unwrap_or_else(|_| vec![opts.fit.lambda]);
            let mut runs = vec![("distilled".to_string(), 0.0, &[][..])];
            for &l in &lambdas {
                runs.push((format!("fitted, lambda {l}"), l, &fit_refs[..]));
            }
            for (name, lambda, fit) in runs {
                let name = name.as_str();
                opts.fit.lambda = lambda;
                let dir = tmp.path().join(name);
                let t = Instant::now();
                let r = distill_with(
                    &teacher(false),
                    freq.iter().map(|s| s.as_str()),
                    fit,
                    &opts,
                    &dir,
                )
                .unwrap();
                println!(
                    "{name}: {} tokens x {} dims, PCA keeps {:.3} of the variance, {} frequency \
                     tokens from {} texts, {:.1} s ({:.1} s embedding tokens, {threads} threads)",
                    r.vocab,
                    r.dim,
                    r.explained_variance,
                    r.frequency_tokens,
                    r.frequency_documents,
                    t.elapsed().as_secs_f64(),
                    r.embed_seconds
                );
                if let Some(f) = &r.fit {
                    println!(
                        "  fit: {} windows of {} texts, {} tokens seen, lambda {}, {} iterations: \
                         mean cosine to MiniLM {:.3} -> {:.3} (in-sample), residual {:.1e}, \
                         {:.1} s MiniLM",
                        f.windows,
                        fit_refs.len(),
                        f.tokens_fitted,
                        opts.fit.lambda,
                        opts.fit.iterations,
                        f.cosine_before,
                        f.cosine_after,
                        f.residual,
                        f.teacher_seconds
                    );
                    if f.pairs > 0 {
                        println!(
                            "  pair rows: {} pairs (weight {}, static cosine >= {}): mean excess \
                             of the static cosine over MiniLM's {:.3} -> {:.3} (in-sample)",
                            f.pairs,
                            opts.fit.pair_weight,
                            opts.fit.pair_min_cosine,
                            f.pair_excess_before.unwrap_or(0.0),
                            f.pair_excess_after.unwrap_or(0.0)
                        );
                    }
                }
                models.push((name.into(), StaticModel::open(&dir).unwrap()));
            }
        }
    }
    let minilm = teacher(true);

    // 2. Speed, one thread each, same texts (the last model: fitted, or STATIC_MODEL).
    let model = &models.last().unwrap().1;
    let skip_speed = std::env::var_os("SKIP_SPEED").is_some();
    let mut long: Vec<String> = class_docs(&shared, CLASS_FILES)
        .into_iter()
        .map(|d| d.2)
        .collect();
    long.sort_by_cached_key(|t| sha1_prefix32(t));
    long.truncate(2000);
    let minilm_docs: usize = std::env::var("MINILM_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    println!(
        "\nspeed, 1 thread ({} eval documents, mean {:.0} chars; {} train documents, mean {:.0} chars)",
        eval.texts.len(),
        eval.texts.iter().map(|t| t.len()).sum::<usize>() as f64 / eval.texts.len() as f64,
        long.len(),
        long.iter().map(|t| t.len()).sum::<usize>() as f64 / long.len() as f64,
    );
    println!(
        "{:<34} {:>12} {:>14} {:>10}",
        "system / texts", "docs/s wall", "docs/CPU-s", "ratio"
    );
    for (name, texts) in [("eval", &eval.texts), ("train docs", &long)] {
        if skip_speed {
            break;
        }
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let m = minilm_docs.min(refs.len());
        let (mw, mc) = one.install(|| {
            timed(m, || {
                std::hint::black_box(minilm.embed(&refs[..m]).unwrap());
            })
        });
        // Static: best of 3 passes over all texts, one document at a time.
        let mut best = (0f64, 0f64);
        for _ in 0..3 {
            let (w, c) = timed(refs.len(), || {
                let mut ids = Vec::new();
                let mut v = vec![0f32; model.dim()];
                for t in &refs {
                    model.embed_into(t, &mut ids, &mut v);
                    std::hint::black_box(&v);
                }
            });
            if c > best.1 {
                best = (w, c);
            }
        }
        println!(
            "{:<34} {:>12.1} {:>14.1} {:>10}",
            format!("MiniLM int8, {name} ({m})"),
            mw,
            mc,
            "1.0x"
        );
        println!(
            "{:<34} {:>12.0} {:>14.0} {:>9.0}x",
            format!("static, {name} ({})", refs.len()),
            best.0,
            best.1,
            best.1 / mc
        );
        // What `verify_model` adds to the collector: MiniLM's tokenizer on every document (the
        // ids kept for the dedup step), best of 3 passes, one thread.
        let mut tok = (0f64, 0f64);
        for _ in 0..3 {
            let (w, c) = one.install(|| {
                timed(refs.len(), || {
                    for t in &refs {
                        std::hint::black_box(minilm.tokenize(t).unwrap());
                    }
                })
            });
            if c > tok.1 {
                tok = (w, c);
            }
        }
        println!(
            "{:<34} {:>12.0} {:>14.0} {:>10}",
            format!("MiniLM tokenizer, {name} ({})", refs.len()),
            tok.0,
            tok.1,
            ""
        );
    }

    // 3. Agreement.
    let refs: Vec<&str> = eval.texts.iter().map(|s| s.as_str()).collect();
    let t = Instant::now();
    let em = cached_embed(&minilm, &refs);
    println!(
        "\nMiniLM embedded {} eval documents in {:.1} s on {threads} threads",
        refs.len(),
        t.elapsed().as_secs_f64()
    );
    let n = refs.len();
    let half: Vec<bool> = eval.groups.iter().map(|&g| mix64(g) & 1 == 0).collect();
    let sub: Vec<u8> = eval
        .groups
        .iter()
        .map(|&g| (mix64(g) >> 1 & 1) as u8)
        .collect();
    let english: Vec<bool> = refs.iter().map(|t| is_english(t)).collect();
    // CAL_RECALL: the recall on half A that the static threshold is set for (default 0.90,
    // the figure; a list such as `0.9,0.95` prints one table each).
    let cals: Vec<f64> = std::env::var("CAL_RECALL")
        .unwrap_or_else(|_| "0.9".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    // POOL_BETA=b1,b2: each model also with attention-like pooling (see `ctx_embed`).
    let betas: Vec<f32> = std::env::var("POOL_BETA")
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    // POS=c:tau,... and SEG=k:w,...: each model also with order in its embedding (see
    // `order_embed`, which sums the table's rows with its own weights in place of the model's:
    // SEG_POS=1:32 keeps the default model's weights under the parts).
    let pairs_of = |k: &str| -> Vec<(f32, f32)> {
        std::env::var(k)
            .map(|v| {
                v.split(',')
                    .filter_map(|x| {
                        let (a, b) = x.split_once(':')?;
                        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (poss, segs) = (pairs_of("POS"), pairs_of("SEG"));
    // The static threshold of the last model (plain sums), calibrated on half A for MiniLM's
    // 0.95 at the first CAL_RECALL: what the cascade runs of step 5 use.
    let mut cascade_t: Option<f32> = None;
    let mut variants: Vec<(String, &StaticModel, Pool)> = Vec::new();
    for (name, m) in &models {
        variants.push((name.clone(), m, Pool::Sum));
        for &b in &betas {
            let v = (format!("{name}, context pooling beta {b}"), m, Pool::Ctx(b));
            variants.push(v);
        }
        for &p in &poss {
            let v = (
                format!("{name}, position weight {p:?}"),
                m,
                Pool::Order(p, (0, 0.0)),
            );
            variants.push(v);
        }
        // SEG_POS=c:tau: the segment variants with position weights too.
        let sp = pairs_of("SEG_POS").first().copied().unwrap_or((0.0, 1.0));
        for &(k, w) in &segs {
            let v = (
                format!("{name}, {k} segments weight {w}, position {sp:?}"),
                m,
                Pool::Order(sp, (k as usize, w)),
            );
            variants.push(v);
        }
    }
    for (name, m, pool) in &variants {
        let es = match pool {
            Pool::Sum => m.embed(&refs),
            Pool::Ctx(b) => refs.iter().map(|t| ctx_embed(m, t, *b)).collect(),
            Pool::Order(p, s) => refs.iter().map(|t| order_embed(m, t, *p, *s)).collect(),
        };
        // Pairs within each half.
        let mut pairs: [Vec<EvalPair>; 2] = [Vec::new(), Vec::new()];
        for i in 0..n {
            for j in i + 1..n {
                if half[i] == half[j] {
                    pairs[half[i] as usize].push(EvalPair {
                        minilm: dot(&em[i], &em[j]),
                        stat: dot(&es[i], &es[j]),
                        same: eval.groups[i] == eval.groups[j],
                        english: english[i] && english[j],
                        kind: pair_kind(
                            eval.kinds[i],
                            eval.kinds[j],
                            eval.groups[i] == eval.groups[j],
                        ),
                        docs: (i as u32, j as u32),
                        fold: if sub[i] == sub[j] { sub[i] } else { 2 },
                    });
                }
            }
        }
        println!(
            "\n== {name}: pairs: {} in half A, {} in half B; {} documents ({} English)",
            pairs[1].len(),
            pairs[0].len(),
            n,
            english.iter().filter(|&&e| e).count()
        );
        if matches!(pool, Pool::Sum) && std::ptr::eq(*m, &models.last().unwrap().1) {
            let a: Vec<&EvalPair> = pairs[1].iter().collect();
            cascade_t = calibrate(&a, 0.95, cals[0]);
        }
        for &cal in &cals {
            println!("\n-- static threshold calibrated for {cal:.2} of MiniLM's half-A pairs");
            let texts = &eval.texts[..];
            agreement("all pairs", texts, &pairs[1], &pairs[0], cal, |_| true);
            agreement("English pairs", texts, &pairs[1], &pairs[0], cal, |p| {
                p.english
            });
        }
    }

    if std::env::var_os("SKIP_HEADS").is_none() {
        heads(&shared, &models, &minilm);
    }

    // 5. The verified cascade end to end (`CASCADE=1`): `curate run` with `dedup.semantic`.
    if std::env::var_os("CASCADE").is_some() {
        let (Some(bin), Some(ts)) = (curate_binary(), cascade_t) else {
            println!("\ncascade: skipped (build the release binary first: cargo build --release --bin curate)");
            return;
        };
        let model = models.last().unwrap().1.dir().to_path_buf();
        let run = Cascade {
            bin: &bin,
            lib: &lib,
            minilm: &minilm_dir,
            model: &model,
            ts,
            threads,
        };
        let b: Vec<&str> = (0..n).filter(|&i| !half[i]).map(|i| refs[i]).collect();
        let eb: Vec<Vec<f32>> = (0..n)
            .filter(|&i| !half[i])
            .map(|i| em[i].clone())
            .collect();
        let title = "evaluation documents of half B (constructed near-duplicates)";
        run.table(title, &b, &eb, "");
        // Real documents, no variants, after exact and MinHash dedup as in llama3.toml: the
        // corpus pages (web pages), then a seeded sample of `REAL_DOCS` (default 2,000)
        // classifier train documents (files of Debian packages).
        let before = "[stages.exact]\ntype = \"dedup.exact\"\n[stages.minhash]\n\
                      type = \"dedup.minhash\"\nngram = 5\nbands = 14\nrows = 8\n";
        let pages = neardup::read_texts(&shared.join("data/corpora/warc-extracted-texts.jsonl.gz"))
            .unwrap();
        let real_n: usize = std::env::var("REAL_DOCS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000);
        let mut debian: Vec<String> = class_docs(&shared, CLASS_FILES)
            .into_iter()
            .map(|d| d.2)
            .collect();
        debian.sort_by_cached_key(|t| sha1_prefix32(t));
        debian.truncate(real_n);
        let sets = [
            ("corpus pages (real web pages)", &pages),
            (
                "classifier train documents (files of Debian packages)",
                &debian,
            ),
        ];
        for (title, set) in sets {
            let r: Vec<&str> = set.iter().map(|s| s.as_str()).collect();
            let e = cached_embed(&minilm, &r);
            let title = format!("{title}, after exact and MinHash dedup");
            run.table(&title, &r, &e, before);
        }
    }
}

/// Release `curate` beside this bench (target/release/deps/semantic-HASH), or `CURATE_BIN`.
fn curate_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CURATE_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("curate");
    bin.is_file().then_some(bin)
}

/// CPU seconds (user + system) of the waited-for child processes so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// The runs of step 5: the same documents through `dedup.semantic` as MiniLM alone, the static
/// model alone, and the static model with MiniLM checking what it flags.
struct Cascade<'a> {
    bin: &'a Path,
    lib: &'a Path,
    minilm: &'a Path,
    model: &'a Path,
    ts: f32,
    threads: usize,
}

impl Cascade<'_> {
    /// One `curate run`: the ids of the kept documents, the stats, wall and CPU seconds.
    fn run(
        &self,
        dir: &Path,
        name: &str,
        before: &str,
        stage: Option<&str>,
    ) -> (Vec<usize>, serde_json::Value, f64, f64) {
        let semantic = match stage {
            Some(st) => format!(
                "[stages.semantic]\ntype = \"dedup.semantic\"\ncluster_docs = 100000\n\
                 ort_library = {:?}\n{st}",
                self.lib.display().to_string()
            ),
            None => String::new(),
        };
        let toml = format!(
            "[pipeline]\nname = \"cascade\"\nseed = 7\n[input]\npaths = [\"in.jsonl\"]\nformat = \"jsonl\"\n\
             [output]\npath = \"{name}\"\nformat = \"jsonl\"\nwrite_dropped = false\n\
             [executor]\nthreads = {}\n{before}{semantic}",
            self.threads,
        );
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(&p, toml).unwrap();
        let (t, c) = (Instant::now(), children_cpu());
        let out = std::process::Command::new(self.bin)
            .args(["run", p.to_str().unwrap(), "-q"])
            .output()
            .unwrap();
        let (wall, cpu) = (t.elapsed().as_secs_f64(), children_cpu() - c);
        assert!(
            out.status.success(),
            "curate run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let o = dir.join(name);
        let mut kept = Vec::new();
        let mut stack = vec![o.join("docs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().ends_with(".jsonl.zst") {
                    let mut s = String::new();
                    let f = std::fs::File::open(&p).unwrap();
                    std::io::Read::read_to_string(&mut zstd::Decoder::new(f).unwrap(), &mut s)
                        .unwrap();
                    for l in s.lines() {
                        let v: serde_json::Value = serde_json::from_str(l).unwrap();
                        kept.push(v["id"].as_str().unwrap()[1..].parse().unwrap());
                    }
                }
            }
        }
        kept.sort_unstable();
        let stats = serde_json::from_slice(&std::fs::read(o.join("stats.json")).unwrap()).unwrap();
        (kept, stats, wall, cpu)
    }

    /// The table of one document set: each system's drops against MiniLM's own. `before`:
    /// stages ahead of the semantic one; what they drop is left out of the counts.
    fn table(&self, title: &str, texts: &[&str], em: &[Vec<f32>], before: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let mut input = String::new();
        for (i, t) in texts.iter().enumerate() {
            input.push_str(&serde_json::json!({"id": format!("d{i}"), "text": t}).to_string());
            input.push('\n');
        }
        std::fs::write(tmp.path().join("in.jsonl"), input).unwrap();
        let (m, st) = (
            self.minilm.display().to_string(),
            self.model.display().to_string(),
        );
        // The documents that reach the semantic stage.
        let mut reach = vec![true; texts.len()];
        if !before.is_empty() {
            let (kept, _, _, _) = self.run(tmp.path(), "before", before, None);
            reach = vec![false; texts.len()];
            kept.iter().for_each(|&k| reach[k] = true);
        }
        let n = reach.iter().filter(|&&r| r).count();
        let systems = [
            ("MiniLM alone, 0.95", format!("model = {m:?}\nthreshold = 0.95\n")),
            (
                "static alone",
                format!("model = {st:?}\nthreshold = {}\n", self.ts),
            ),
            (
                "static + MiniLM check 0.80",
                format!(
                    "model = {st:?}\nthreshold = {}\nverify_model = {m:?}\nverify_threshold = 0.8\n",
                    self.ts
                ),
            ),
            (
                "static + MiniLM check 0.95",
                format!(
                    "model = {st:?}\nthreshold = {}\nverify_model = {m:?}\nverify_threshold = 0.95\n",
                    self.ts
                ),
            ),
        ];
        println!(
            "\ncascade, end to end (`curate run`, {} threads, one cluster), {title}: {n} of {} \
             documents reach the semantic stage, static threshold {:.4}",
            self.threads,
            texts.len(),
            self.ts
        );
        println!(
            "{:<28} {:>8} {:>14} {:>16} {:>15} {:>9} {:>9} {:>11} {:>7}",
            "system",
            "dropped",
            "MiniLM's found",
            "drops < 0.80",
            "MiniLM embeds",
            "wall s",
            "CPU s",
            "docs/CPU-s",
            "ratio"
        );
        let mut reference: Option<(Vec<bool>, f64)> = None;
        for (i, (name, stage)) in systems.iter().enumerate() {
            let out = format!("s{i}");
            let (kept, stats, wall, cpu) = self.run(tmp.path(), &out, before, Some(stage));
            let mut dropped = reach.clone();
            kept.iter().for_each(|&k| dropped[k] = false);
            // A drop MiniLM would not make: no kept document within 0.80 under MiniLM.
            let low = (0..texts.len())
                .filter(|&d| dropped[d])
                .filter(|&d| kept.iter().all(|&k| dot(&em[d], &em[k]) < 0.8))
                .count();
            let nd = dropped.iter().filter(|&&d| d).count();
            let embedded = if i == 0 {
                n as u64
            } else {
                find_counter(&stats, "verify_embedded")
            };
            let (found, ratio) = match &reference {
                Some((r, c)) => {
                    let both = (0..texts.len()).filter(|&d| r[d] && dropped[d]).count();
                    let all = r.iter().filter(|&&d| d).count();
                    (
                        format!("{both}/{all}"),
                        format!("{:.1}x", c / cpu.max(1e-9)),
                    )
                }
                None => ("-".into(), "1.0x".into()),
            };
            println!(
                "{:<28} {:>8} {:>14} {:>16} {:>15} {:>9.1} {:>9.1} {:>11.1} {:>7}",
                name,
                nd,
                found,
                format!("{low} ({:.2}%)", 100.0 * low as f64 / nd.max(1) as f64),
                format!("{embedded} ({:.1}%)", 100.0 * embedded as f64 / n as f64),
                wall,
                cpu,
                n as f64 / cpu.max(1e-9),
                ratio
            );
            if i == 0 {
                reference = Some((dropped, cpu));
            }
        }
    }
}

/// The sum of every counter named `key` anywhere in a stats document.
fn find_counter(v: &serde_json::Value, key: &str) -> u64 {
    match v {
        serde_json::Value::Object(m) => m
            .iter()
            .map(|(k, x)| {
                if k == key {
                    x.as_u64().unwrap_or(0)
                } else {
                    find_counter(x, key)
                }
            })
            .sum(),
        serde_json::Value::Array(a) => a.iter().map(|x| find_counter(x, key)).sum(),
        _ => 0,
    }
}

/// Accuracy, macro-F1 and (two classes) the AUC of the first label, as printed columns.
fn scores(p: &[Vec<f32>], y: &[usize], labels: &[String]) -> String {
    let m = evaluate(p, y, labels);
    let auc = if labels.len() == 2 {
        format!("{:.3}", m.labels[0].auc)
    } else {
        "-".into()
    };
    format!("{:>9.3} {:>9.3} {:>8}", m.accuracy, m.macro_f1, auc)
}

/// A linear head fitted on `train` embeddings, its probabilities on `val` embeddings.
fn head_probs(xt: &[Vec<f32>], yt: &[usize], xv: &[Vec<f32>], labels: &[String]) -> Vec<Vec<f32>> {
    let h = fit(xt, yt, labels, &HeadOptions::default());
    let mut logits = Vec::new();
    xv.iter()
        .map(|v| {
            h.apply(v, &mut logits);
            activate(&logits, Activation::Softmax)
        })
        .collect()
}

/// fastText (`curate train fasttext` defaults) trained on `train`, probabilities on `val` in
/// the order of `labels`.
fn fasttext_probs(train: &[&Doc], val: &[&Doc], labels: &[String]) -> Vec<Vec<f32>> {
    let mut t = Trainer::new(TrainOptions::default());
    for d in train {
        t.add(&d.label, &d.text);
    }
    let (m, _) = t.train().unwrap();
    let pre = Preprocess::default();
    let mut s = Session::default();
    val.iter()
        .map(|d| {
            let p = m.probabilities(&d.text, &pre, &mut s);
            labels
                .iter()
                .map(|l| m.labels().iter().position(|x| x == l).map_or(0.0, |i| p[i]))
                .collect()
        })
        .collect()
}

/// Per class, the first `n` documents of `set` by a seeded hash of their id.
fn subsample<'a>(set: &[&'a Doc], n: usize, labels: &[String]) -> Vec<&'a Doc> {
    let mut s = set.to_vec();
    s.sort_by_cached_key(|d| mix64(sha1_prefix32(&d.id) as u64));
    let mut taken = vec![0usize; labels.len()];
    s.retain(|d| {
        let k = labels.iter().position(|l| *l == d.label).unwrap();
        taken[k] += 1;
        taken[k] <= n
    });
    s
}

fn texts_of<'a>(s: &[&'a Doc]) -> Vec<&'a str> {
    s.iter().map(|d| d.text.as_str()).collect()
}

/// Step 4: static head vs MiniLM head vs fastText on the validation split.
fn heads(shared: &Path, models: &[(String, StaticModel)], minilm: &Encoder) {
    let per_class: usize = std::env::var("HEAD_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    println!(
        "\nheads on the validation split (train groups with sha1 % 4 != 0; subsample: {per_class} \
         train + {} validation documents per class, seeded)",
        per_class / 2
    );
    println!(
        "{:<10} {:<34} {:>11} {:>9} {:>9} {:>8}",
        "task", "model (documents)", "train|val", "accuracy", "macro-F1", "AUC"
    );
    for (task, docs) in [
        ("topic", topic_docs(shared)),
        ("quality", quality_docs(shared)),
    ] {
        let mut labels: Vec<String> = docs.iter().map(|d| d.label.clone()).collect();
        labels.sort();
        labels.dedup();
        let idx = |d: &Doc| labels.iter().position(|l| *l == d.label).unwrap();
        let (train, val): (Vec<&Doc>, Vec<&Doc>) = docs.iter().partition(|d| !d.is_val());
        let (st, sv) = (
            subsample(&train, per_class, &labels),
            subsample(&val, per_class / 2, &labels),
        );
        let texts = texts_of;
        let ys = |s: &[&Doc]| s.iter().map(|d| idx(d)).collect::<Vec<_>>();
        let row = |name: String, t: &[&Doc], v: &[&Doc], p: Vec<Vec<f32>>| {
            println!(
                "{:<10} {:<34} {:>11} {}",
                task,
                name,
                format!("{}|{}", t.len(), v.len()),
                scores(&p, &ys(v), &labels)
            );
        };
        // The subsample: all three; every document: the two cheap models.
        for (t, v, all) in [(&st, &sv, false), (&train, &val, true)] {
            let suffix = if all { ", all" } else { "" };
            if !all {
                let (mt, mv) = (
                    minilm.embed(&texts(t)).unwrap(),
                    minilm.embed(&texts(v)).unwrap(),
                );
                row(
                    "MiniLM int8 + head".into(),
                    t,
                    v,
                    head_probs(&mt, &ys(t), &mv, &labels),
                );
            }
            for (name, model) in models {
                let (xt, xv) = (model.embed(&texts(t)), model.embed(&texts(v)));
                row(
                    format!("static ({name}) + head{suffix}"),
                    t,
                    v,
                    head_probs(&xt, &ys(t), &xv, &labels),
                );
            }
            row(
                format!("fastText{suffix}"),
                t,
                v,
                fasttext_probs(t, v, &labels),
            );
        }
    }
}
