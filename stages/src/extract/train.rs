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

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::blocks::{self, Example, Model, TrainOptions};
use super::content::ScoredLine;
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

/// The labelled lines of each page, under the rules alone (in page order).
pub fn examples(pages: &[Page]) -> Vec<Vec<Example>> {
    let collect = Extractor::new(ExtractConfig::default())
        .expect("default config")
        .with_model(None)
        .collecting_lines();
    pages
        .par_iter()
        .map(|p| match collect.extract(&p.html) {
            Ok(r) => label(&r.extraction.lines, &p.gold),
            Err(_) => Vec::new(),
        })
        .collect()
}

/// Trains on the pages `keep` selects (examples concatenated in page order).
pub fn train_on(
    examples: &[Vec<Example>],
    keep: impl Fn(usize) -> bool,
    opts: &TrainOptions,
) -> Model {
    let ex: Vec<Example> = examples
        .iter()
        .enumerate()
        .filter(|(k, _)| keep(*k))
        .flat_map(|(_, e)| e.iter().cloned())
        .collect();
    blocks::train(&ex, opts)
}

/// The fold of a page: its site hashed, so that a site's pages share one.
pub fn fold_of(p: &Page, k: u64) -> u64 {
    fnv1a(p.site.as_bytes()) % k
}

/// Writes the predictions of the rules (`rules.*.jsonl`), of models trained without each
/// page's fold (`cv.*.jsonl`) and of the model trained on all pages (`insample.*.jsonl`), and
/// `pages.jsonl`. Returns the number of lines each variant's model dropped.
pub fn write_cv(
    pages: &[Page],
    examples: &[Vec<Example>],
    k: u64,
    opts: &TrainOptions,
    dir: &Path,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(io)?;
    let base = Extractor::new(ExtractConfig::default()).expect("default config");
    let rules = base.clone().with_model(None);
    let fold: Vec<u64> = pages.iter().map(|p| fold_of(p, k)).collect();
    let mut cv_text: Vec<String> = vec![String::new(); pages.len()];
    for f in 0..k {
        let m = Arc::new(train_on(examples, |i| fold[i] != f, opts));
        let ex = base.clone().with_model(Some(m));
        let idx: Vec<usize> = (0..pages.len()).filter(|&i| fold[i] == f).collect();
        let texts: Vec<String> = idx
            .par_iter()
            .map(|&i| text_of(&ex, &pages[i].html))
            .collect();
        for (i, t) in idx.into_iter().zip(texts) {
            cv_text[i] = t;
        }
    }
    let all = Arc::new(train_on(examples, |_| true, opts));
    let insample = base.with_model(Some(all));
    let (rules_text, in_text): (Vec<String>, Vec<String>) = pages
        .par_iter()
        .map(|p| (text_of(&rules, &p.html), text_of(&insample, &p.html)))
        .unzip();
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
        ("rules", &rules_text),
        ("cv", &cv_text),
        ("insample", &in_text),
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
        &mut pages.iter().zip(&fold).map(|(p, f)| {
            serde_json::json!({"dataset": p.dataset, "id": p.id, "site": p.site, "fold": f, "news": p.news})
        }),
    )
}

fn text_of(ex: &Extractor, html: &str) -> String {
    ex.extract(html)
        .map(|r| r.extraction.text)
        .unwrap_or_default()
}

/// The labelled lines of one page (only lines the model may drop: an element that is one line).
fn label(lines: &[ScoredLine], gold: &Gold) -> Vec<Example> {
    let mut out = Vec::new();
    match gold {
        Gold::Snippets { with, without } => {
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
            for l in lines.iter().filter(|l| l.whole) {
                let pos = with.iter().any(|s| l.text.contains(s.as_str()));
                let neg = without.iter().any(|s| l.text.contains(s.as_str()));
                if pos != neg {
                    out.push(Example {
                        x: l.x.clone(),
                        content: pos,
                        weight: 1.0,
                    });
                }
            }
            let n = out.len() as f32;
            out.iter_mut().for_each(|e| e.weight = 1.0 / n);
        }
        Gold::Text(t) => {
            let gold_tokens = tokens(t);
            let unigrams: HashSet<&str> = gold_tokens.iter().copied().collect();
            let bigrams: HashSet<(&str, &str)> =
                gold_tokens.windows(2).map(|w| (w[0], w[1])).collect();
            let mut total = 0f32;
            for l in lines.iter().filter(|l| l.whole) {
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
                total += tk.len() as f32;
                out.push(Example {
                    x: l.x.clone(),
                    content: hit >= 0.5,
                    weight: tk.len() as f32,
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
