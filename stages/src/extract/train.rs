//! Training and cross-validation of the learned block scorer ([`super::blocks`]) on the
//! annotated extraction sets in `../shared` (run by `stages/examples/extract_cv.rs`).
//!
//! Labels come from the content lines the rules choose (the model only prunes those): on
//! CleanEval a line is content when most of its word pairs are in the hand-cleaned text; on
//! trafilatura-eval a line that holds a "must contain" snippet is content and one that holds
//! a "must not contain" snippet is boilerplate (other lines carry no label there). Each page
//! weighs the same in training, as each page does in the metrics.
//!
//! Cross-validation splits pages by site (registrable domain) into folds: each page is
//! extracted by a model trained on the folds that do not hold its site, so no figure is scored
//! on a site the model has seen. [`write_cv`] writes the predictions of the rules alone, the
//! cross-validated and the in-sample model per dataset, plus `pages.jsonl` (site, fold,
//! news/blog flag); `benches/peers/extract_cv.py DIR` scores them with the peers' scorer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::blocks::{self, Example, Model, TrainOptions};
use super::content::{PageLine, Place, ScoredLine};
use super::{ExtractConfig, Extractor};
use crate::read::{read_docs, Format, ReadEvent, ReadOptions};

/// What the gold says about a page.
pub enum Gold {
    /// trafilatura-eval: snippets the text must and must not contain.
    Snippets {
        with: Vec<String>,
        without: Vec<String>,
    },
    /// CleanEval: the hand-cleaned text.
    Text(String),
}

pub struct Page {
    /// `trafeval` or `cleaneval`.
    pub dataset: &'static str,
    /// The id the scorer keys the page by (URL for trafeval, file stem for CleanEval).
    pub id: String,
    pub site: String,
    pub news: bool,
    pub html: String,
    pub gold: Gold,
}

/// Reads both annotated sets from the shared folder (trafilatura-eval: annotated pages of
/// the WARC; CleanEval: pages with a gold file).
pub fn load_sets(shared: &Path) -> Result<Vec<Page>, String> {
    let mut pages = load_trafeval(shared)?;
    pages.extend(load_cleaneval(shared)?);
    Ok(pages)
}

/// One page's lines under the rules alone, labelled, with what the rules' text scores.
#[derive(Clone, Debug, Default)]
pub struct Labelled {
    /// The lines the model may drop (an element that is one line), in page order; lines the
    /// gold says nothing about have weight 0 (they count for the threshold, not in training).
    pub examples: Vec<Example>,
    /// Whether the content has more than one line (one line is never pruned).
    pub prunable: bool,
    /// The rules' text: gold units found, boilerplate units kept, gold units in all.
    pub found: f32,
    pub kept_bad: f32,
    pub gold: f32,
    /// Scored as trafilatura-eval is (snippet counts summed over pages) or as CleanEval is
    /// (precision and recall per page, averaged).
    pub snippets: bool,
    /// The lines around the content that the restore may add back (weight 0: the gold says
    /// nothing of them); `pos` and `neg` count only what the rules' text lacks.
    pub restore: Vec<Example>,
    /// Every line of the page under the rules and where they left it (for the breakdown of
    /// missed gold text and the restore's candidates).
    pub page: Vec<PageLine>,
}

/// The labelled lines of each page, under the rules alone (in page order).
pub fn examples(pages: &[Page]) -> Vec<Labelled> {
    let collect = Extractor::new(ExtractConfig::default())
        .expect("default config")
        .with_model(None)
        .collecting_lines();
    pages
        .par_iter()
        .map(|p| match collect.extract(&p.html) {
            Ok(r) => Labelled {
                page: r.extraction.page_lines,
                restore: label_restore(&r.extraction.text, &r.extraction.restore_lines, &p.gold),
                ..label(&r.extraction.text, &r.extraction.lines, &p.gold)
            },
            Err(_) => Labelled::default(),
        })
        .collect()
}

/// Trains on the pages `keep` selects (examples concatenated in page order).
pub fn train_on(examples: &[Labelled], keep: impl Fn(usize) -> bool, opts: &TrainOptions) -> Model {
    train_picked(examples, keep, opts, |l| &l.examples)
}

/// Trains on the weighted examples `pick` takes from each page `keep` selects.
fn train_picked(
    examples: &[Labelled],
    keep: impl Fn(usize) -> bool,
    opts: &TrainOptions,
    pick: impl Fn(&Labelled) -> &[Example],
) -> Model {
    let ex: Vec<Example> = examples
        .iter()
        .enumerate()
        .filter(|(k, _)| keep(*k))
        .flat_map(|(_, l)| pick(l).iter().filter(|e| e.weight > 0.0).cloned())
        .collect();
    blocks::train(&ex, opts)
}

/// The score the pages `keep` selects would get with the lines whose probability (`probs`,
/// per page and line) is below `threshold` dropped: the mean over the datasets present of
/// snippet F1 (counts summed over pages) and of F1 from mean precision and mean recall per
/// page, each reckoned from the rules' text and the labelled lines. A proxy of the scorer's
/// figures, for choosing a threshold without scoring text.
#[derive(Clone, Debug, PartialEq)]
pub struct Proxy {
    /// The mean F1.
    pub score: f64,
    /// Recall per dataset present (snippet sets first).
    pub recall: Vec<f64>,
    /// Precision per dataset present (snippet sets first).
    pub precision: Vec<f64>,
}

impl Proxy {
    /// How much lower the lowest-falling recall is than `base`'s.
    pub fn recall_loss(&self, base: &Proxy) -> f64 {
        base.recall
            .iter()
            .zip(&self.recall)
            .map(|(b, r)| b - r)
            .fold(0.0, f64::max)
    }

    /// How much lower the lowest-falling precision is than `base`'s.
    pub fn precision_loss(&self, base: &Proxy) -> f64 {
        base.precision
            .iter()
            .zip(&self.precision)
            .map(|(b, p)| b - p)
            .fold(0.0, f64::max)
    }
}

/// [`Proxy`] of the pages `keep` selects with lines under the thresholds dropped.
pub fn proxy_score(
    examples: &[Labelled],
    probs: &[Vec<f32>],
    (threshold, prose_threshold): (f32, f32),
    keep: impl Fn(usize) -> bool,
) -> Proxy {
    aggregate(examples, keep, |i, l| {
        page_pruned(l, &probs[i], (threshold, prose_threshold))
    })
}

/// One page's gold units found and boilerplate units kept once its lines scoring under the
/// thresholds (`probs`, one per labelled line) are pruned.
fn page_pruned(
    l: &Labelled,
    probs: &[f32],
    (threshold, prose_threshold): (f32, f32),
) -> (f64, f64) {
    let (mut found, mut bad) = (l.found as f64, l.kept_bad as f64);
    if l.prunable {
        for (e, &p) in l.examples.iter().zip(probs) {
            let cut = if e.x[blocks::PROSE] > 0.5 {
                prose_threshold
            } else {
                threshold
            };
            if p < cut {
                found -= e.pos as f64;
                bad -= e.neg as f64;
            }
        }
    }
    (found, bad)
}

/// [`Proxy`] of the pages `keep` selects with the restore's lines (`probs`, per page and
/// line of [`Labelled::restore`]) at or above the thresholds added to the rules' text, or
/// to `base` (gold units found and boilerplate units kept per page: the text the block
/// scorer left, [`pruned_units`]).
pub fn restore_proxy(
    examples: &[Labelled],
    base: Option<&[(f64, f64)]>,
    probs: &[Vec<f32>],
    (threshold, prose_threshold): (f32, f32),
    keep: impl Fn(usize) -> bool,
) -> Proxy {
    aggregate(examples, keep, |i, l| {
        let (mut found, mut bad) = match base {
            Some(b) => b[i],
            None => (l.found as f64, l.kept_bad as f64),
        };
        for (e, &p) in l.restore.iter().zip(&probs[i]) {
            let cut = if e.x[blocks::PROSE] > 0.5 {
                prose_threshold
            } else {
                threshold
            };
            if p >= cut {
                found += e.pos as f64;
                bad += e.neg as f64;
            }
        }
        (found, bad)
    })
}

/// The proxy figures of the pages `keep` selects, with each page's gold units found and
/// boilerplate units kept as `units` reckons them (from the rules' own).
fn aggregate(
    examples: &[Labelled],
    keep: impl Fn(usize) -> bool,
    units: impl Fn(usize, &Labelled) -> (f64, f64),
) -> Proxy {
    let (mut tp, mut fp, mut fneg) = (0f64, 0f64, 0f64);
    let (mut sp, mut sr, mut pages) = (0f64, 0f64, 0usize);
    let mut any_snippets = false;
    for (i, l) in examples.iter().enumerate() {
        if !keep(i) {
            continue;
        }
        let (found, bad) = units(i, l);
        let (found, bad) = (found.max(0.0), bad.max(0.0));
        let gold = l.gold as f64;
        if l.snippets {
            any_snippets = true;
            tp += found;
            fp += bad;
            fneg += (gold - found).max(0.0);
        } else {
            pages += 1;
            if found + bad > 0.0 {
                sp += found / (found + bad);
            }
            if gold > 0.0 {
                sr += (found / gold).min(1.0);
            }
        }
    }
    let mut parts = Vec::new();
    let mut recall = Vec::new();
    let mut precision = Vec::new();
    if any_snippets && tp + fp + fneg > 0.0 {
        parts.push(2.0 * tp / (2.0 * tp + fp + fneg));
        recall.push(tp / (tp + fneg).max(1e-12));
        precision.push(tp / (tp + fp).max(1e-12));
    }
    if pages > 0 {
        let (p, r) = (sp / pages as f64, sr / pages as f64);
        parts.push(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        });
        recall.push(r);
        precision.push(p);
    }
    Proxy {
        score: parts.iter().sum::<f64>() / parts.len().max(1) as f64,
        recall,
        precision,
    }
}

/// The thresholds tried when one is chosen by cross-validation (0: no line dropped).
pub fn threshold_grid() -> Vec<f32> {
    std::iter::once(0.0)
        .chain((0..=40).map(|k| (10 + 2 * k) as f32 / 100.0))
        .collect()
}

/// The thresholds (other lines, prose lines) from [`threshold_grid`] with the best
/// [`proxy_score`] on the pages `keep` selects among those whose recall (on each dataset)
/// is at most `max_recall_loss` below that of the rules alone, and that score. On a tie the
/// lower thresholds win (fewer lines dropped); (0, 0), the rules alone, always qualifies.
pub fn choose_threshold(
    examples: &[Labelled],
    probs: &[Vec<f32>],
    max_recall_loss: f64,
    keep: impl Fn(usize) -> bool,
) -> ((f32, f32), f64) {
    let grid = threshold_grid();
    let base = proxy_score(examples, probs, (0.0, 0.0), &keep);
    let mut best = ((0.0f32, 0.0f32), base.score);
    for &t in &grid {
        for &tp in &grid {
            let s = proxy_score(examples, probs, (t, tp), &keep);
            if s.score > best.1 + 1e-12 && s.recall_loss(&base) <= max_recall_loss {
                best = ((t, tp), s.score);
            }
        }
    }
    best
}

/// Each page's gold units found and boilerplate units kept once the block scorer (line
/// probabilities `probs`; a page without them keeps the rules' figures) has pruned its lines
/// under the thresholds, as [`proxy_score`] reckons them.
pub fn pruned_units(
    examples: &[Labelled],
    probs: &[Vec<f32>],
    (threshold, prose_threshold): (f32, f32),
) -> Vec<(f64, f64)> {
    examples
        .iter()
        .zip(probs)
        .map(|(l, pr)| page_pruned(l, pr, (threshold, prose_threshold)))
        .collect()
}

/// How the restore is trained ([`write_cv`]).
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub train: TrainOptions,
    /// Choose its thresholds on top of the block scorer's pruning (as each nested choice saw
    /// it) instead of the rules' text.
    pub on_trees: bool,
}

/// The restore's thresholds: 0.30 to 0.98, and 2 (never).
pub fn restore_grid() -> Vec<f32> {
    (0..=34)
        .map(|k| (30 + 2 * k) as f32 / 100.0)
        .chain(std::iter::once(2.0))
        .collect()
}

/// How far the restore may lower the proxy precision (on each dataset) below the rules':
/// set once, before any outer fold was scored.
pub const RESTORE_PRECISION_LOSS: f64 = 0.002;

/// The restore thresholds (other lines, prose lines) from [`restore_grid`] with the best
/// [`restore_proxy`] on the pages `keep` selects among those whose precision falls at most
/// `max_precision_loss` below the rules' alone, and that score. On a tie the higher
/// thresholds win (fewer lines added); (2, 2), nothing added, always qualifies.
pub fn choose_restore(
    examples: &[Labelled],
    units: Option<&[(f64, f64)]>,
    probs: &[Vec<f32>],
    max_precision_loss: f64,
    keep: impl Fn(usize) -> bool,
) -> ((f32, f32), f64) {
    let grid = restore_grid();
    let base = restore_proxy(examples, units, probs, (2.0, 2.0), &keep);
    let mut best = ((2.0f32, 2.0f32), base.score);
    for &t in grid.iter().rev() {
        for &tp in grid.iter().rev() {
            let s = restore_proxy(examples, units, probs, (t, tp), &keep);
            if s.score > best.1 + 1e-12 && s.precision_loss(&base) <= max_precision_loss {
                best = ((t, tp), s.score);
            }
        }
    }
    best
}

/// Trains the restore on the pages `keep` selects.
pub fn train_restore(
    examples: &[Labelled],
    keep: impl Fn(usize) -> bool,
    opts: &TrainOptions,
) -> Model {
    train_picked(examples, keep, opts, |l| &l.restore)
}

/// Each page's restore probabilities under `m` (pages `keep` does not select stay empty).
fn restore_probs_of(
    examples: &[Labelled],
    m: &Model,
    keep: impl Fn(usize) -> bool,
    out: &mut [Vec<f32>],
) {
    for (i, l) in examples.iter().enumerate() {
        if keep(i) {
            out[i] = l.restore.iter().map(|e| m.prob(&e.x)).collect();
        }
    }
}

/// Each page's line probabilities under `m` (pages `keep` does not select stay empty).
fn probs_of(examples: &[Labelled], m: &Model, keep: impl Fn(usize) -> bool, out: &mut [Vec<f32>]) {
    for (i, l) in examples.iter().enumerate() {
        if keep(i) {
            out[i] = l.examples.iter().map(|e| m.prob(&e.x)).collect();
        }
    }
}

/// The fold of a page: its site hashed, so that a site's pages share one.
pub fn fold_of(p: &Page, k: u64) -> u64 {
    fnv1a(p.site.as_bytes()) % k
}

/// Writes the predictions of the rules (`rules.*.jsonl`), of models trained without each
/// page's fold (`cv.*.jsonl`) and of the model trained on all pages (`insample.*.jsonl`), and
/// `pages.jsonl`; returns the model trained on all pages.
///
/// With `choose` the training configuration (one of `configs`) and the thresholds are chosen
/// by nested cross-validation: for the model that scores fold `f`, each other fold `g` is
/// scored by models (one per configuration) trained without `f` and `g`, and the
/// configuration and thresholds with the best [`proxy_score`] over those predictions are
/// taken, under the first configuration's recall guard (fold `f` is never looked at). The
/// all-pages model takes what is best over the cross-validated predictions of the fold
/// models. Without `choose`, the first configuration and its thresholds.
///
/// With `restore`, the restore ([`super::restore`]) is trained and cross-validated the same
/// way on top (nested CV for its thresholds under [`RESTORE_PRECISION_LOSS`]), and `DIR/restore`
/// gets the same files for the block scorer plus the restore; the all-pages restore is
/// returned beside the block scorer.
pub fn write_cv(
    pages: &[Page],
    examples: &[Labelled],
    k: u64,
    configs: &[TrainOptions],
    choose: bool,
    restore: Option<&RestoreOptions>,
    dir: &Path,
) -> Result<(Model, Option<Model>), String> {
    if configs.is_empty() {
        return Err("no training configuration".into());
    }
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(io)?;
    let base = Extractor::new(ExtractConfig::default()).expect("default config");
    let rules = base.clone().with_model(None);
    let fold: Vec<u64> = pages.iter().map(|p| fold_of(p, k)).collect();
    // Without a choice there is nothing to choose a configuration by: the first one.
    let configs = if choose { configs } else { &configs[..1] };
    let guard = configs[0].max_recall_loss;
    let (kk, n) = (k as usize, pages.len());
    // inner[c][f][i]: page i's line probabilities under configuration c trained without f and
    // i's fold; outer[c][i]: under c trained without i's fold (models[c][f]).
    let mut inner = vec![vec![vec![Vec::new(); n]; kk]; configs.len()];
    let mut outer = vec![vec![Vec::new(); n]; configs.len()];
    let mut models: Vec<Vec<Model>> = Vec::new();
    for (c, opts) in configs.iter().enumerate() {
        if choose {
            for a in 0..k {
                for b in a + 1..k {
                    let m = train_on(examples, |i| fold[i] != a && fold[i] != b, opts);
                    let (fa, fb) = (a as usize, b as usize);
                    probs_of(examples, &m, |i| fold[i] == b, &mut inner[c][fa]);
                    probs_of(examples, &m, |i| fold[i] == a, &mut inner[c][fb]);
                }
            }
        }
        let ms: Vec<Model> = (0..k)
            .map(|f| train_on(examples, |i| fold[i] != f, opts))
            .collect();
        for (f, m) in ms.iter().enumerate() {
            probs_of(examples, m, |i| fold[i] == f as u64, &mut outer[c]);
        }
        models.push(ms);
    }
    // The configuration and thresholds with the best proxy (the first configuration on a
    // tie).
    let best = |probs: &[&Vec<Vec<f32>>], keep: &dyn Fn(usize) -> bool| {
        let mut best = (0, choose_threshold(examples, probs[0], guard, keep));
        for (c, p) in probs.iter().enumerate().skip(1) {
            let x = choose_threshold(examples, p, guard, keep);
            if x.1 > best.1 .1 {
                best = (c, x);
            }
        }
        best
    };
    let mut cv_text: Vec<String> = vec![String::new(); n];
    // The block scorer that wrote each fold's cross-validated text.
    let mut fold_models: Vec<Model> = Vec::new();
    let mut fold_units: Vec<Option<Vec<(f64, f64)>>> = Vec::new();
    for f in 0..k {
        let (c, (t, tp)) = if choose {
            let (c, ((t, tp), s)) = best(
                &inner.iter().map(|x| &x[f as usize]).collect::<Vec<_>>(),
                &|i| fold[i] != f,
            );
            eprintln!(
                "fold {f}: configuration {c}, thresholds {t:.2}, prose {tp:.2} (inner-CV proxy {s:.4})"
            );
            (c, (t, tp))
        } else {
            (0, (configs[0].threshold, configs[0].prose_threshold))
        };
        let mut m = models[c][f as usize].clone();
        (m.threshold, m.prose_threshold) = (t, tp);
        fold_models.push(m.clone());
        // The pages other than f as fold f's choice saw them pruned (only with a choice).
        fold_units.push(choose.then(|| pruned_units(examples, &inner[c][f as usize], (t, tp))));
        let ex = base.clone().with_model(Some(Arc::new(m)));
        let idx: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        let texts: Vec<String> = idx
            .par_iter()
            .map(|&i| text_of(&ex, &pages[i].html))
            .collect();
        for (i, t) in idx.into_iter().zip(texts) {
            cv_text[i] = t;
        }
    }
    for l in breakdown(pages, examples, &cv_text) {
        eprintln!("{l}");
    }
    let mut o = configs[0].clone();
    let mut all_c = 0;
    if choose {
        let rules = proxy_score(examples, &outer[0], (0.0, 0.0), |_| true);
        eprintln!("rules alone: proxy {:.4}", rules.score);
        let (c, ((t, tp), s)) = best(&outer.iter().collect::<Vec<_>>(), &|_| true);
        eprintln!(
            "all pages: configuration {c}, thresholds {t:.2}, prose {tp:.2} (CV proxy {s:.4})"
        );
        o = configs[c].clone();
        (o.threshold, o.prose_threshold) = (t, tp);
        all_c = c;
    }
    let all = train_on(examples, |_| true, &o);
    let insample = base.clone().with_model(Some(Arc::new(all.clone())));
    let (rules_text, in_text): (Vec<String>, Vec<String>) = pages
        .par_iter()
        .map(|p| (text_of(&rules, &p.html), text_of(&insample, &p.html)))
        .unzip();
    write_variants(dir, pages, &fold, &rules_text, &cv_text, &in_text)?;
    let Some(RestoreOptions {
        train: ropts,
        on_trees,
    }) = restore
    else {
        return Ok((all, None));
    };
    // What the restore's thresholds are chosen on top of: the rules' text, or (`on_trees`)
    // the block scorer's pruning as each choice saw it.
    let on = *on_trees && choose;
    let all_units =
        on.then(|| pruned_units(examples, &outer[all_c], (o.threshold, o.prose_threshold)));
    // The restore, nested the same way: inner[f][i] is page i's line probabilities under the
    // restore trained without f and i's fold, outer[i] without i's fold.
    let mut inner = vec![vec![Vec::new(); n]; kk];
    let mut outer = vec![Vec::new(); n];
    let units = |f: usize| if on { fold_units[f].as_deref() } else { None };
    for a in 0..k {
        for b in a + 1..k {
            let m = train_restore(examples, |i| fold[i] != a && fold[i] != b, ropts);
            restore_probs_of(examples, &m, |i| fold[i] == b, &mut inner[a as usize]);
            restore_probs_of(examples, &m, |i| fold[i] == a, &mut inner[b as usize]);
        }
    }
    let guard = RESTORE_PRECISION_LOSS;
    let mut cv_r: Vec<String> = vec![String::new(); n];
    for f in 0..k {
        let ((t, tp), sc) = choose_restore(
            examples,
            units(f as usize),
            &inner[f as usize],
            guard,
            |i| fold[i] != f,
        );
        let mut r = train_restore(examples, |i| fold[i] != f, ropts);
        restore_probs_of(examples, &r, |i| fold[i] == f, &mut outer);
        eprintln!("restore fold {f}: thresholds {t:.2}, prose {tp:.2} (inner-CV proxy {sc:.4})");
        (r.threshold, r.prose_threshold) = (t, tp);
        let ex = base
            .clone()
            .with_model(Some(Arc::new(fold_models[f as usize].clone())))
            .with_restore(Some(Arc::new(r)));
        let idx: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        let texts: Vec<String> = idx
            .par_iter()
            .map(|&i| text_of(&ex, &pages[i].html))
            .collect();
        for (i, t) in idx.into_iter().zip(texts) {
            cv_r[i] = t;
        }
    }
    let au = all_units.as_deref();
    let none = restore_proxy(examples, au, &outer, (2.0, 2.0), |_| true);
    let ((t, tp), sc) = choose_restore(examples, au, &outer, guard, |_| true);
    let chosen = restore_proxy(examples, au, &outer, (t, tp), |_| true);
    eprintln!(
        "restore, all pages: thresholds {t:.2}, prose {tp:.2} (CV proxy {sc:.4} against {:.4}; \
         P {:?} -> {:?}, R {:?} -> {:?})",
        none.score, none.precision, chosen.precision, none.recall, chosen.recall
    );
    let mut r_all = train_restore(examples, |_| true, ropts);
    (r_all.threshold, r_all.prose_threshold) = (t, tp);
    let in_r_ex = insample.with_restore(Some(Arc::new(r_all.clone())));
    let in_r: Vec<String> = pages
        .par_iter()
        .map(|p| text_of(&in_r_ex, &p.html))
        .collect();
    for l in breakdown(pages, examples, &cv_r) {
        eprintln!("with the restore: {l}");
    }
    write_variants(
        &dir.join("restore"),
        pages,
        &fold,
        &rules_text,
        &cv_r,
        &in_r,
    )?;
    Ok((all, Some(r_all)))
}

/// Writes the three variants' texts (`rules`, `cv`, `insample`, per dataset) and
/// `pages.jsonl` to `dir`.
fn write_variants(
    dir: &Path,
    pages: &[Page],
    fold: &[u64],
    rules_text: &[String],
    cv_text: &[String],
    in_text: &[String],
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(io)?;
    let write = |name: &str, rows: &mut dyn Iterator<Item = serde_json::Value>| {
        let path = dir.join(name);
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        for v in rows {
            serde_json::to_writer(&mut w, &v).map_err(|e| e.to_string())?;
            w.write_all(b"\n").map_err(io)?;
        }
        w.flush().map_err(io)
    };
    for (variant, texts) in [
        ("rules", rules_text),
        ("cv", cv_text),
        ("insample", in_text),
    ] {
        for ds in ["trafeval", "cleaneval"] {
            write(
                &format!("{variant}.{ds}.jsonl"),
                &mut pages
                    .iter()
                    .zip(texts.iter())
                    .filter(|(p, _)| p.dataset == ds)
                    .map(|(p, t)| serde_json::json!({"id": p.id, "text": t})),
            )?;
        }
    }
    write(
        "pages.jsonl",
        &mut pages.iter().zip(fold).map(|(p, f)| {
            serde_json::json!({"dataset": p.dataset, "id": p.id, "site": p.site, "fold": f, "news": p.news})
        }),
    )
}

/// Where the gold text that `texts` (one per page) misses lies among the page's lines under
/// the rules (what [`Labelled::page`] holds), as shares of all gold units: per dataset, on
/// all pages and on the news/blog subset. trafilatura-eval counts missed snippets (the
/// scorer sums them over pages); CleanEval counts gold words per page (the scorer averages
/// recall over pages). A gold unit in a line the rules wrote but `texts` lacks was pruned by
/// the model that wrote `texts`; one found in no line is text the extractor never sees as
/// one line (split over lines, or in attributes and markup it does not read).
pub fn breakdown(pages: &[Page], examples: &[Labelled], texts: &[String]) -> Vec<String> {
    let bucket = |l: &PageLine, written: bool| -> String {
        match l.place {
            Place::Content if written => "written".into(),
            Place::Content => "pruned by the model".into(),
            Place::ModelPruned => "pruned by the model".into(),
            Place::Pruned => "pruned by the rules inside".into(),
            Place::BoilerInside => "boilerplate inside".into(),
            Place::BoilerOutside => "boilerplate outside".into(),
            Place::Hidden => "hidden or script".into(),
            Place::Outside => format!(
                "outside: {}, {}{}",
                if l.before { "before" } else { "after" },
                match l.up {
                    0..=1 => "sibling of the root",
                    2..=3 => "2-3 levels up",
                    _ => "4+ levels up",
                },
                if l.level > 0 { ", heading" } else { "" }
            ),
        }
    };
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    for ds in ["trafeval", "cleaneval"] {
        for news_only in [false, true] {
            // Missed gold units per bucket, and the gold units in all.
            let mut miss: BTreeMap<String, f64> = BTreeMap::new();
            let (mut total, mut n_pages) = (0f64, 0usize);
            for ((p, l), t) in pages.iter().zip(examples).zip(texts) {
                if p.dataset != ds || (news_only && !p.news) {
                    continue;
                }
                n_pages += 1;
                let text = norm(t);
                match &p.gold {
                    Gold::Snippets { with, .. } => {
                        // The page's lines joined as the scorer reads a text, with where
                        // each starts.
                        let mut joined = String::new();
                        let mut starts = Vec::new();
                        for pl in &l.page {
                            if !joined.is_empty() {
                                joined.push(' ');
                            }
                            starts.push(joined.len());
                            joined.push_str(&pl.text);
                        }
                        for w in with.iter().map(|s| norm(s)).filter(|s| !s.is_empty()) {
                            total += 1.0;
                            if text.contains(&w) {
                                continue;
                            }
                            let b = match joined.find(&w) {
                                Some(at) => {
                                    let k = starts.partition_point(|&s| s <= at) - 1;
                                    let pl = &l.page[k];
                                    let written = text.contains(&pl.text);
                                    bucket(pl, written)
                                }
                                None => "in no line".into(),
                            };
                            *miss.entry(b).or_default() += 1.0;
                        }
                    }
                    Gold::Text(g) => {
                        let gt = tokens(g);
                        if gt.is_empty() {
                            continue;
                        }
                        let uni: HashSet<&str> = gt.iter().copied().collect();
                        let bi: HashSet<(&str, &str)> =
                            gt.windows(2).map(|w| (w[0], w[1])).collect();
                        let hits = |s: &str| {
                            let tk = tokens(s);
                            match tk.len() {
                                0 => 0.0,
                                1 => uni.contains(tk[0]) as u32 as f64,
                                n => {
                                    tk.windows(2).filter(|w| bi.contains(&(w[0], w[1]))).count()
                                        as f64
                                        / (n - 1) as f64
                                        * n as f64
                                }
                            }
                        };
                        let gold = gt.len() as f64;
                        let found: f64 = t.lines().map(hits).sum();
                        let lost = (1.0 - found / gold).clamp(0.0, 1.0);
                        total += 1.0;
                        let mut by: BTreeMap<String, f64> = BTreeMap::new();
                        for pl in &l.page {
                            let written = text.contains(&pl.text);
                            if written && matches!(pl.place, Place::Content | Place::Outside) {
                                continue;
                            }
                            let h = hits(&pl.text);
                            if h > 0.0 {
                                *by.entry(bucket(pl, written)).or_default() += h / gold;
                            }
                        }
                        // Shares of this page's lost recall (scaled down where lines repeat
                        // gold words), the rest found in no line.
                        let sum: f64 = by.values().sum();
                        let scale = if sum > lost { lost / sum } else { 1.0 };
                        for (k, v) in by {
                            *miss.entry(k).or_default() += v * scale;
                        }
                        *miss.entry("in no line".into()).or_default() += lost - sum * scale;
                    }
                }
            }
            let lost: f64 = miss.values().sum();
            let t = total.max(1.0);
            let sum = |f: &dyn Fn(&str) -> bool| -> f64 {
                miss.iter()
                    .filter(|(k, _)| f(k))
                    .map(|(_, v)| v)
                    .sum::<f64>()
                    / t
            };
            let outside = sum(&|k| k.starts_with("outside"));
            let inside = sum(&|k| k.contains("inside"));
            out.push(format!(
                "missed gold, {ds} {} ({n_pages} pages): recall lost {:.4} = outside the content \
                 {outside:.4} ({:.0}%: before it {:.4}, in a sibling of the root {:.4}, headings \
                 {:.4}) + boilerplate outside {:.4} + inside, pruned by the rules or as \
                 boilerplate {inside:.4} + pruned by the model {:.4} + hidden or script {:.4} + \
                 in no line {:.4}",
                if news_only { "news/blog" } else { "all" },
                lost / t,
                100.0 * outside * t / lost.max(1e-12),
                sum(&|k| k.starts_with("outside: before")),
                sum(&|k| k.starts_with("outside") && k.contains("sibling")),
                sum(&|k| k.starts_with("outside") && k.ends_with("heading")),
                sum(&|k| k == "boilerplate outside"),
                sum(&|k| k == "pruned by the model"),
                sum(&|k| k == "hidden or script"),
                sum(&|k| k == "in no line"),
            ));
        }
    }
    out
}

fn text_of(ex: &Extractor, html: &str) -> String {
    ex.extract(html)
        .map(|r| r.extraction.text)
        .unwrap_or_default()
}

/// The labelled lines of one page (only lines the model may drop: an element that is one
/// line), and what the rules' `text` scores.
fn label(text: &str, lines: &[ScoredLine], gold: &Gold) -> Labelled {
    let mut out = Labelled {
        prunable: lines.len() > 1,
        ..Labelled::default()
    };
    match gold {
        Gold::Snippets { with, without } => {
            // As the scorer reads texts: whitespace runs are one space.
            let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            let with: Vec<String> = with
                .iter()
                .map(|s| norm(s))
                .filter(|s| !s.is_empty())
                .collect();
            let without: Vec<String> = without
                .iter()
                .map(|s| norm(s))
                .filter(|s| !s.is_empty())
                .collect();
            let text = norm(text);
            let count =
                |t: &str, set: &[String]| set.iter().filter(|s| t.contains(s.as_str())).count();
            out.snippets = true;
            out.found = count(&text, &with) as f32;
            out.kept_bad = count(&text, &without) as f32;
            out.gold = with.len() as f32;
            let mut n = 0usize;
            for l in lines.iter().filter(|l| l.whole) {
                let (pos, neg) = (count(&l.text, &with), count(&l.text, &without));
                // Only a line the gold speaks of one way is a training label.
                let labelled = (pos > 0) != (neg > 0);
                n += labelled as usize;
                out.examples.push(Example {
                    x: l.x.clone(),
                    content: pos > 0,
                    weight: if labelled { 1.0 } else { 0.0 },
                    pos: pos as f32,
                    neg: neg as f32,
                });
            }
            out.examples
                .iter_mut()
                .for_each(|e| e.weight /= n.max(1) as f32);
        }
        Gold::Text(t) => {
            let gold_tokens = tokens(t);
            let unigrams: HashSet<&str> = gold_tokens.iter().copied().collect();
            let bigrams: HashSet<(&str, &str)> =
                gold_tokens.windows(2).map(|w| (w[0], w[1])).collect();
            out.gold = gold_tokens.len() as f32;
            let mut total = 0f32;
            for l in lines {
                let tk = tokens(&l.text);
                if tk.is_empty() {
                    continue;
                }
                let hit = if tk.len() == 1 {
                    unigrams.contains(tk[0]) as u32 as f32
                } else {
                    let n = tk
                        .windows(2)
                        .filter(|w| bigrams.contains(&(w[0], w[1])))
                        .count();
                    n as f32 / (tk.len() - 1) as f32
                };
                let n = tk.len() as f32;
                out.found += hit * n;
                out.kept_bad += (1.0 - hit) * n;
                if !l.whole {
                    continue;
                }
                total += n;
                out.examples.push(Example {
                    x: l.x.clone(),
                    content: hit >= 0.5,
                    weight: n,
                    pos: hit * n,
                    neg: (1.0 - hit) * n,
                });
            }
            out.examples
                .iter_mut()
                .for_each(|e| e.weight /= total.max(1.0));
        }
    }
    out
}

/// The restore's labelled lines of one page (only a whole element may be added); `pos` and
/// `neg` count what adding the line brings that the rules' `text` lacks. trafilatura-eval
/// lines are labelled as [`label`] labels the content's (by snippets the text lacks);
/// CleanEval lines by the 4-word shingles they would add beside the content, not by word
/// pairs (a short line outside the content shares a word pair with the gold by chance).
fn label_restore(text: &str, lines: &[ScoredLine], gold: &Gold) -> Vec<Example> {
    let mut out = Vec::new();
    match gold {
        Gold::Snippets { with, without } => {
            let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
            let text = norm(text);
            // Only snippets the text lacks: a line that brings one already there adds nothing.
            let missing = |set: &[String]| -> Vec<String> {
                set.iter()
                    .map(|s| norm(s))
                    .filter(|s| !s.is_empty() && !text.contains(s.as_str()))
                    .collect()
            };
            let (with, without) = (missing(with), missing(without));
            let count =
                |t: &str, set: &[String]| set.iter().filter(|s| t.contains(s.as_str())).count();
            let mut n = 0usize;
            for l in lines.iter().filter(|l| l.whole) {
                let (pos, neg) = (count(&l.text, &with), count(&l.text, &without));
                let labelled = (pos > 0) != (neg > 0);
                n += labelled as usize;
                out.push(Example {
                    x: l.x.clone(),
                    content: pos > 0,
                    weight: if labelled { 1.0 } else { 0.0 },
                    pos: pos as f32,
                    neg: neg as f32,
                });
            }
            out.iter_mut().for_each(|e| e.weight /= n.max(1) as f32);
        }
        Gold::Text(t) => {
            // As the shingle metric reads a text: 4-word shingles, counted as a multiset, less
            // those the rules' text already holds (a line that repeats the text adds nothing
            // the gold wants). A line adds the shingles that hold any of its words where it
            // would be written: beside the content, so those that reach into the content's
            // first (or last) words too. A short line is gold only when it also sits beside
            // that content in the gold, not when its two words occur somewhere by chance.
            let gold_tokens = tokens(t);
            let mut left: HashMap<&[&str], i32> = HashMap::new();
            for n in 1..=4 {
                for w in gold_tokens.windows(n) {
                    *left.entry(w).or_default() += 1;
                }
            }
            let text_tokens = tokens(text);
            for n in 1..=4 {
                for w in text_tokens.windows(n) {
                    if let Some(c) = left.get_mut(w) {
                        *c -= 1;
                    }
                }
            }
            let head = &text_tokens[..text_tokens.len().min(3)];
            let tail = &text_tokens[text_tokens.len().saturating_sub(3)..];
            let before = blocks::n_features();
            let mut total = 0f32;
            for l in lines.iter().filter(|l| l.whole) {
                let tk = tokens(&l.text);
                if tk.is_empty() {
                    continue;
                }
                // The line with the content's words on the side it would join.
                let (seq, mine): (Vec<&str>, std::ops::Range<usize>) = if l.x[before] > 0.5 {
                    (tk.iter().chain(head).copied().collect(), 0..tk.len())
                } else {
                    let k = tail.len();
                    (tail.iter().chain(&tk).copied().collect(), k..k + tk.len())
                };
                let size = seq.len().min(4);
                // Shingles holding at least one of the line's words.
                let shingles: Vec<&[&str]> = seq
                    .windows(size)
                    .enumerate()
                    .filter(|(s, _)| *s < mine.end && s + size > mine.start)
                    .map(|(_, w)| w)
                    .collect();
                let found = shingles
                    .iter()
                    .filter(|w| left.get(*w).is_some_and(|&c| c > 0))
                    .count();
                let hit = found as f32 / shingles.len().max(1) as f32;
                let n = tk.len() as f32;
                total += n;
                out.push(Example {
                    x: l.x.clone(),
                    content: hit >= 0.5,
                    weight: n,
                    pos: hit * n,
                    neg: (1.0 - hit) * n,
                });
            }
            out.iter_mut().for_each(|e| e.weight /= total.max(1.0));
        }
    }
    out
}

/// Word tokens as the shingle metric reads them (runs of letters, digits and `_`).
fn tokens(s: &str) -> Vec<&str> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect()
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &c| {
        (h ^ c as u64).wrapping_mul(0x100000001b3)
    })
}

/// The site of a URL: its host without `www.`, cut to the registrable part (the last two
/// labels, three under `co.uk`-style second levels), so that a site's pages share a fold.
pub fn site_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    let n = labels.len();
    let keep = if n >= 3
        && matches!(
            labels[n - 2],
            "co" | "com" | "org" | "net" | "ac" | "gov" | "edu" | "or" | "ne"
        ) {
        3
    } else {
        2
    };
    labels[n.saturating_sub(keep)..].join(".")
}

/// Whether a URL reads as a news article or a blog post: a news or blog word in the host or
/// path, or a date in the path (`/2012/05/31/`). The subset is chosen by URL only, before any
/// extraction.
pub fn is_news_or_blog(url: &str) -> bool {
    let u = url.to_ascii_lowercase();
    let rest = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
    const WORDS: &[&str] = &[
        "news",
        "blog",
        "article",
        "story",
        "stories",
        "post",
        "press",
        "times",
        "herald",
        "journal",
        "daily",
        "tribune",
        "gazette",
        "magazine",
        "zeitung",
        "nachrichten",
        "aktuell",
        "wordpress",
        "blogspot",
        "blogger",
        "medium.com",
        "politi",
        "report",
        "artikel",
        "wiadomosci",
        "actualite",
    ];
    if WORDS.iter().any(|w| rest.contains(w)) {
        return true;
    }
    // A year segment in the path: /2012/ or -2012- between 1995 and 2029.
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    path.split(|c: char| !c.is_ascii_digit())
        .any(|d| d.len() == 4 && ("1995".."2030").contains(&d))
}

fn read_gz(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut v)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(v)
    } else {
        Ok(raw)
    }
}

fn load_trafeval(shared: &Path) -> Result<Vec<Page>, String> {
    let ev_path = shared.join("data/extraction/trafilatura-eval/evaldata.json");
    let ev: BTreeMap<String, serde_json::Value> = serde_json::from_slice(
        &std::fs::read(&ev_path).map_err(|e| format!("{}: {e}", ev_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", ev_path.display()))?;
    let warc = shared.join("data/warc/trafilatura-eval-pages.warc.gz");
    let strs = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut pages = Vec::new();
    let file = std::fs::File::open(&warc).map_err(|e| format!("{}: {e}", warc.display()))?;
    let source: Arc<str> = Arc::from(warc.to_string_lossy().as_ref());
    let opts = ReadOptions {
        max_record_bytes: usize::MAX,
        ..ReadOptions::default()
    };
    for ev_doc in read_docs(Format::Warc, source, Box::new(file), 0, None, &opts) {
        let ReadEvent::Doc(d) = ev_doc else { continue };
        let (Some(html), Some(g)) = (d.html, ev.get(&d.url)) else {
            continue;
        };
        pages.push(Page {
            dataset: "trafeval",
            site: site_of(&d.url),
            news: is_news_or_blog(&d.url),
            id: d.url,
            html,
            gold: Gold::Snippets {
                with: strs(&g["with"]),
                without: strs(&g["without"]),
            },
        });
    }
    // Keyed by URL: a URL the WARC holds twice is one page.
    pages.sort_by(|a, b| a.id.cmp(&b.id));
    pages.dedup_by(|a, b| a.id == b.id);
    Ok(pages)
}

fn load_cleaneval(shared: &Path) -> Result<Vec<Page>, String> {
    let dir = shared.join("data/extraction/cleaneval-final");
    let mut pages = Vec::new();
    let html_dir = dir.join("html");
    let mut files: Vec<_> = std::fs::read_dir(&html_dir)
        .map_err(|e| format!("{}: {e}", html_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".html.gz"))
        .collect();
    files.sort();
    for f in files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        let id = name.split('.').next().unwrap_or_default().to_string();
        let gold_path = dir.join("gold").join(format!("{id}.txt.gz"));
        if !gold_path.exists() {
            continue;
        }
        let html = crate::read::charset::decode_html(&read_gz(&f)?, None, "").text;
        let raw = read_gz(&gold_path)?;
        let text = crate::read::charset::decode_html(&raw, None, "").text;
        let text = text.trim_start_matches('\u{feff}');
        let (url, body) = match text.trim_start().strip_prefix("URL:") {
            Some(r) => r.split_once('\n').unwrap_or((r, "")),
            None => ("", text),
        };
        let url = url.trim();
        let mut gold = String::new();
        // The <p>, <h>, <l> block marks of the gold are line breaks.
        for (k, piece) in body.split('<').enumerate() {
            let rest = match piece.split_once('>') {
                Some((tag, rest))
                    if matches!(
                        tag.trim().trim_start_matches('/').trim(),
                        "p" | "h" | "l" | "P" | "H" | "L"
                    ) =>
                {
                    gold.push('\n');
                    rest
                }
                _ => {
                    if k > 0 {
                        gold.push('<');
                    }
                    piece
                }
            };
            gold.push_str(rest);
        }
        pages.push(Page {
            dataset: "cleaneval",
            site: site_of(url),
            news: is_news_or_blog(url),
            id,
            html,
            gold: Gold::Text(gold),
        });
    }
    Ok(pages)
}
