//! The learned block scorer: per-line features of the content the rules chose, and a small
//! model that says which of those lines are boilerplate the rules kept (a byline, an author
//! bio, a newsletter box, a photo credit, a related-story teaser, a comment count).
//!
//! The rules ([`super::content`]) choose the content; the model only prunes lines from it,
//! which is where the rules lose (precision on news pages). Features are what boilerpipe,
//! dragnet and web2text read: text and link density, length, punctuation, the tags and the
//! class/id words between the line and the content root (with the boilerplate kinds of
//! [`super::hints`]), position in the content, and the neighbouring lines. The shipped model
//! (`blocks.model`) is gradient-boosted trees ([`super::gbdt`]; a logistic model over the same
//! features reads the same file format, `model linear`), with two thresholds (prose lines and
//! the others) chosen by nested cross-validation by site ([`super::train`]). It is trained by
//! `examples/extract_cv.rs` from the annotated sets in `../shared` and rebuilt byte for byte by
//! the same command: both trainers sum in a fixed order, so they are deterministic.

use std::sync::OnceLock;

use super::dom::{AttrKey, Dom, Tag};
use super::gbdt::{self, Forest, TreeOptions};
use super::hints::{class_hint, for_words, Boiler};

/// Class and id words looked for between a line and the content root (each a feature).
const CLASS_WORDS: &[&str] = &[
    "author",
    "byline",
    "bio",
    "about",
    "profile",
    "avatar",
    "subscribe",
    "subscription",
    "newsletter",
    "signup",
    "promo",
    "cta",
    "caption",
    "credit",
    "credits",
    "photo",
    "image",
    "img",
    "media",
    "figure",
    "related",
    "more",
    "recommended",
    "popular",
    "read",
    "comment",
    "comments",
    "teaser",
    "tags",
    "tag",
    "share",
    "social",
    "meta",
    "date",
    "time",
    "info",
    "footer",
    "header",
    "note",
    "notes",
    "disclaimer",
    "box",
    "widget",
    "card",
    "list",
    "item",
    "title",
    "summary",
    "lead",
    "intro",
    "content",
    "body",
    "text",
    "entry",
    "article",
    "story",
    "post",
    "main",
    "column",
    "col",
    "row",
    "wrapper",
    "container",
    "inner",
    "block",
    "section",
    "links",
    "link",
    "nav",
    "menu",
    "sidebar",
    "ad",
    "ads",
    "sponsor",
    "embed",
    "quote",
    "callout",
    "aside",
    "inline",
    "description",
    "desc",
    "source",
    "headline",
    "sub",
    "small",
];

/// Text cues of a line (lowercased; checked on the first 160 bytes).
const CUES: &[(&str, &[&str])] = &[
    (
        "cue_by",
        &["by ", "von ", "par ", "written by", "posted by", "autor"],
    ),
    (
        "cue_photo",
        &[
            "photo",
            "foto",
            "image",
            "credit",
            "getty",
            "reuters",
            "afp",
            "shutterstock",
            "istock",
            "bild:",
        ],
    ),
    (
        "cue_subscribe",
        &[
            "subscribe",
            "newsletter",
            "sign up",
            "signup",
            "inbox",
            "e-mail",
            "email",
            "register",
            "abonn",
        ],
    ),
    ("cue_comment", &["comment", "kommentar", "repl", "respon"]),
    (
        "cue_more",
        &[
            "read more",
            "related",
            "more from",
            "see also",
            "recommended",
            "you may also",
            "also read",
            "further reading",
            "more stories",
            "more on",
            "read next",
            "mehr zum",
            "lesen sie",
        ],
    ),
    (
        "cue_share",
        &[
            "share",
            "follow",
            "tweet",
            "facebook",
            "twitter",
            "linkedin",
            "whatsapp",
            "pinterest",
            "instagram",
        ],
    ),
    (
        "cue_posted",
        &[
            "posted",
            "published",
            "updated",
            "min read",
            "last modified",
            "veröffentlicht",
            "aktualisiert",
        ],
    ),
    (
        "cue_ad",
        &[
            "advertisement",
            "sponsored",
            "anzeige",
            "werbung",
            "affiliate",
        ],
    ),
    (
        "cue_rights",
        &["all rights reserved", "copyright", "reprint", "permission"],
    ),
    ("cue_click", &["click", "here", "hier", "download"]),
    (
        "cue_tags",
        &["tags:", "tagged", "filed under", "categories", "category:"],
    ),
];

/// The searchers of [`CUES`], built once (a substring search set up per line and pattern
/// cost more than the search).
fn cue_finders() -> &'static [Vec<memchr::memmem::Finder<'static>>] {
    static F: OnceLock<Vec<Vec<memchr::memmem::Finder<'static>>>> = OnceLock::new();
    F.get_or_init(|| {
        CUES.iter()
            .map(|(_, pats)| pats.iter().map(memchr::memmem::Finder::new).collect())
            .collect()
    })
}

/// The number of features (the bias is feature 0).
pub fn n_features() -> usize {
    names().len()
}

/// Feature names, in the order of the feature vector.
pub fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<String> = [
            "bias",
            "chars_log",
            "link_density",
            // PROSE
            "prose",
            "ends_sentence",
            "sentence_ends_per_word",
            "commas_per_word",
            "digit_share",
            "upper_word_share",
            "word_len",
            "heading",
            "tag_p",
            "tag_li",
            "tag_cell",
            "tag_div",
            "tag_blockquote",
            "tag_dd_dt",
            "tag_other",
            "styled_share",
            "small_share",
            "has_pipe",
            "has_at",
            "pos",
            "first",
            "last",
            "near_start",
            "near_end",
            "prev_chars_log",
            "next_chars_log",
            "prev_link_density",
            "next_link_density",
            "prev_heading",
            "next_heading",
            "lines_log",
            "content_chars_log",
            "share_of_content",
            "depth",
            "in_root_part",
            "in_li",
            "in_table",
            "in_blockquote",
            "in_figure",
            "in_header",
            "in_footer",
            "in_section",
            "in_aside",
            "in_list",
            "short",
            "very_short",
            "chars_before",
            "prose_before",
            "prose_after",
            "prev_prose",
            "next_prose",
            "prev_ends_sentence",
            "next_ends_sentence",
            "hinted",
            "prev_hinted",
            "next_hinted",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(Boiler::ALL.iter().map(|b| format!("kind_{}", b.name())));
        v.extend(CLASS_WORDS.iter().map(|w| format!("class_{w}")));
        v.extend(CUES.iter().map(|(n, _)| n.to_string()));
        v
    })
}

/// Lines of the chosen content, as [`super::content`] sees them before writing.
#[derive(Clone, Debug, Default)]
pub struct LineStats {
    /// The block element of the line.
    pub node: usize,
    /// Whether the element is this line only (a line the model may drop).
    pub whole: bool,
    pub level: u8,
    pub chars: u32,
    pub link: u32,
    /// Characters inside `<em>`, `<i>`, `<strong>`, `<b>` / inside `<small>`, `<sub>`, `<sup>`.
    pub styled: u32,
    pub small: u32,
    pub words: u32,
    pub sentence_ends: u32,
    pub commas: u32,
    pub digits: u32,
    pub upper_words: u32,
    pub word_chars: u32,
    /// The start of the text, lowercased (up to 160 bytes).
    pub head: String,
    /// The whole text, whitespace-folded (kept only when asked: training labels it).
    pub text: String,
    pub ends_sentence: bool,
    /// Whether the line lies in the best-scoring element (not a sibling that joined it).
    pub in_root: bool,
}

const HEAD_BYTES: usize = 160;

impl LineStats {
    /// Adds the text of one text node.
    pub fn add_text(&mut self, t: &str, chars: u32, link: bool, styled: bool, small: bool) {
        self.chars += chars;
        if link {
            self.link += chars;
        }
        if styled {
            self.styled += chars;
        }
        if small {
            self.small += chars;
        }
        for w in t.split_whitespace() {
            self.words += 1;
            let mut cs = w.chars();
            if cs.next().is_some_and(|c| c.is_uppercase()) {
                self.upper_words += 1;
            }
            self.word_chars += w.chars().count() as u32;
        }
        for b in t.bytes() {
            match b {
                b'.' | b'!' | b'?' => self.sentence_ends += 1,
                b',' | b';' => self.commas += 1,
                b'0'..=b'9' => self.digits += 1,
                _ => {}
            }
        }
        if self.head.len() < HEAD_BYTES {
            if !self.head.is_empty() {
                self.head.push(' ');
            }
            for c in t.split_whitespace().flat_map(|w| w.chars().chain([' '])) {
                if self.head.len() >= HEAD_BYTES {
                    break;
                }
                self.head.extend(c.to_lowercase());
            }
            while self.head.ends_with(' ') {
                self.head.pop();
            }
        }
        if let Some(last) = t.split_whitespace().last() {
            self.ends_sentence = last.ends_with([
                '.', '!', '?', '"', '\u{201c}', '\u{201d}', '\u{bb}', ')', '\u{2026}', ':',
            ]);
        }
    }
}

/// Context of a line: what lies between its element and the content root.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub kinds: u16,
    /// Bit `j`: [`CLASS_WORDS`]`[j]` is a class or id word on the way.
    pub words: u128,
    pub depth: u32,
    pub in_li: bool,
    pub in_table: bool,
    pub in_blockquote: bool,
    pub in_figure: bool,
    pub in_header: bool,
    pub in_footer: bool,
    pub in_section: bool,
    pub in_aside: bool,
    pub in_list: bool,
}

const _: () = assert!(CLASS_WORDS.len() <= 128);

/// How many levels above a line are read for its context.
const CONTEXT_LEVELS: usize = 10;

/// The class/id marks of the previous line's element and its ancestors: the lines of one
/// content share most ancestors, so each element's class and id are read once, not once per
/// line below it.
#[derive(Default)]
pub struct ContextCache {
    chain: Vec<(u32, u16, u128)>,
    next: Vec<(u32, u16, u128)>,
}

/// The boilerplate kinds and class words that an element's class and id name.
fn marks(dom: &Dom, i: u32) -> (u16, u128) {
    static INDEX: OnceLock<Vec<(&'static str, u8)>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut v: Vec<(&'static str, u8)> = CLASS_WORDS
            .iter()
            .enumerate()
            .map(|(j, w)| (*w, j as u8))
            .collect();
        v.sort_unstable();
        v
    });
    let (mut kinds, mut words) = (0u16, 0u128);
    for key in [AttrKey::Class, AttrKey::Id] {
        if let Some(v) = dom.attr(i, key) {
            if let Some(k) = class_hint(v) {
                kinds |= k.bit();
            }
            for_words(v, |w| {
                if let Ok(k) = index.binary_search_by(|(x, _)| (*x).cmp(w)) {
                    words |= 1u128 << index[k].1;
                }
            });
        }
    }
    (kinds, words)
}

/// Reads the tags and class/id words from `node` up to (and with) `root`.
pub fn context(dom: &Dom, node: usize, root: usize, cache: &mut ContextCache) -> Context {
    let mut c = Context::default();
    let mut i = node as u32;
    cache.next.clear();
    for _ in 0..CONTEXT_LEVELS {
        let n = dom.node(i);
        match n.tag {
            Tag::Li => c.in_li = true,
            Tag::Td | Tag::Th | Tag::Table => c.in_table = true,
            Tag::Blockquote => c.in_blockquote = true,
            Tag::Figure | Tag::Figcaption => c.in_figure = true,
            Tag::Header => c.in_header = true,
            Tag::Footer => c.in_footer = true,
            Tag::Section => c.in_section = true,
            Tag::Aside => c.in_aside = true,
            Tag::Ul | Tag::Ol | Tag::Dl => c.in_list = true,
            _ => {}
        }
        let (k, w) = match cache.chain.iter().find(|e| e.0 == i) {
            Some(&(_, k, w)) => (k, w),
            None => marks(dom, i),
        };
        cache.next.push((i, k, w));
        c.kinds |= k;
        c.words |= w;
        if i as usize == root || n.parent == super::dom::NONE {
            break;
        }
        c.depth += 1;
        i = n.parent;
    }
    std::mem::swap(&mut cache.chain, &mut cache.next);
    c
}

fn ln1(x: f32) -> f32 {
    (1.0 + x).ln()
}

fn ratio(a: u32, b: u32) -> f32 {
    if b == 0 {
        0.0
    } else {
        a as f32 / b as f32
    }
}

/// The feature vectors of a content's lines.
pub fn features(dom: &Dom, lines: &[LineStats], ctx: &[Context]) -> Vec<Vec<f32>> {
    let nl = lines.len();
    let total: u32 = lines.iter().map(|l| l.chars).sum();
    let prose = |l: &LineStats| l.chars >= 80 && l.link * 10 < 3 * l.chars;
    // Prose lines before each line and after it (neighbours beyond the next line: a byline or
    // a credit sits before the first paragraph or after the last).
    let first_prose = lines.iter().position(prose).unwrap_or(nl);
    let last_prose = lines.iter().rposition(prose);
    let mut before = 0u32;
    let mut out = Vec::with_capacity(nl);
    for (j, l) in lines.iter().enumerate() {
        let c = &ctx[j];
        let mut x = Vec::with_capacity(n_features());
        let tag = dom.node(l.node as u32).tag;
        let prev = j.checked_sub(1).map(|p| &lines[p]);
        let next = lines.get(j + 1);
        let ld = |l: Option<&LineStats>| l.map_or(0.0, |l| ratio(l.link, l.chars));
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        x.extend([
            1.0,
            ln1(l.chars as f32) / 8.0,
            ratio(l.link, l.chars),
            b(l.chars >= 80 && l.link * 10 < 3 * l.chars),
            b(l.ends_sentence),
            ratio(l.sentence_ends, l.words).min(1.0),
            ratio(l.commas, l.words).min(1.0),
            ratio(l.digits, l.chars),
            ratio(l.upper_words, l.words),
            ratio(l.word_chars, l.words) / 10.0,
            b(l.level > 0),
            b(tag == Tag::P),
            b(tag == Tag::Li),
            b(matches!(tag, Tag::Td | Tag::Th)),
            b(tag == Tag::Div),
            b(tag == Tag::Blockquote),
            b(matches!(tag, Tag::Dd | Tag::Dt)),
            b(!matches!(
                tag,
                Tag::P
                    | Tag::Li
                    | Tag::Td
                    | Tag::Th
                    | Tag::Div
                    | Tag::Blockquote
                    | Tag::Dd
                    | Tag::Dt
            ) && l.level == 0),
            ratio(l.styled, l.chars),
            ratio(l.small, l.chars),
            b(l.head.contains('|')),
            b(l.head.contains('@')),
            if nl > 1 {
                j as f32 / (nl - 1) as f32
            } else {
                0.0
            },
            b(j == 0),
            b(j + 1 == nl),
            b(j < 3),
            b(j + 3 >= nl),
            prev.map_or(0.0, |p| ln1(p.chars as f32) / 8.0),
            next.map_or(0.0, |p| ln1(p.chars as f32) / 8.0),
            ld(prev),
            ld(next),
            b(prev.is_some_and(|p| p.level > 0)),
            b(next.is_some_and(|p| p.level > 0)),
            ln1(nl as f32) / 6.0,
            ln1(total as f32) / 10.0,
            ratio(l.chars, total),
            (c.depth as f32 / CONTEXT_LEVELS as f32).min(1.0),
            b(l.in_root),
            b(c.in_li),
            b(c.in_table),
            b(c.in_blockquote),
            b(c.in_figure),
            b(c.in_header),
            b(c.in_footer),
            b(c.in_section),
            b(c.in_aside),
            b(c.in_list),
            b(l.chars < 40),
            b(l.chars < 15),
            ratio(before, total),
            b(first_prose < j),
            b(last_prose.is_some_and(|k| k > j)),
            b(prev.is_some_and(prose)),
            b(next.is_some_and(prose)),
            b(prev.is_some_and(|p| p.ends_sentence)),
            b(next.is_some_and(|p| p.ends_sentence)),
            b(c.kinds != 0),
            b(j > 0 && ctx[j - 1].kinds != 0),
            b(ctx.get(j + 1).is_some_and(|c| c.kinds != 0)),
        ]);
        before += l.chars;
        x.extend(Boiler::ALL.iter().map(|k| b(c.kinds & k.bit() != 0)));
        x.extend((0..CLASS_WORDS.len()).map(|j| b(c.words >> j & 1 == 1)));
        let head = l.head.as_bytes();
        x.extend(
            cue_finders()
                .iter()
                .map(|fs| b(fs.iter().any(|f| f.find(head).is_some()))),
        );
        debug_assert_eq!(x.len(), n_features());
        out.push(x);
    }
    out
}

/// How a model turns a line's features into the log-odds that the line is content.
#[derive(Clone, Debug, PartialEq)]
pub enum Scorer {
    /// Logistic regression: one weight per feature.
    Linear(Vec<f32>),
    /// Gradient-boosted trees ([`super::gbdt`]).
    Trees(Forest),
}

/// A model over the line features: P(the line is content), and the threshold below which a
/// line is dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub scorer: Scorer,
    /// Lines whose probability of being content is below this are dropped ...
    pub threshold: f32,
    /// ... and prose lines (the `prose` feature) below this one (0: never).
    pub prose_threshold: f32,
}

/// The index of the `prose` feature (a line of 80 characters or more, under 30% links).
pub const PROSE: usize = 3;

impl Model {
    /// The threshold for a line with features `x`.
    pub fn cut(&self, x: &[f32]) -> f32 {
        if x[PROSE] > 0.5 {
            self.prose_threshold
        } else {
            self.threshold
        }
    }

    /// The probability that a line is content.
    pub fn prob(&self, x: &[f32]) -> f32 {
        let z: f32 = match &self.scorer {
            Scorer::Linear(w) => w.iter().zip(x).map(|(w, v)| w * v).sum(),
            Scorer::Trees(f) => f.margin(x),
        };
        1.0 / (1.0 + (-z).exp())
    }

    /// Reads a model file: `threshold T`, `model linear` or `model trees` (linear when
    /// absent), then for a linear model one `name weight` line per feature, in order, and for
    /// trees the forest ([`Forest::to_text`]); `#` starts a comment.
    pub fn parse(s: &str) -> Result<Model, String> {
        Model::parse_with(s, names())
    }

    /// [`Model::parse`] over another feature list (the restore's, [`super::restore`]).
    pub fn parse_with(s: &str, names: &[String]) -> Result<Model, String> {
        let mut threshold = None;
        let mut prose_threshold = None;
        let mut trees = false;
        let mut weights = Vec::new();
        let mut rest: Vec<(usize, &str)> = Vec::new();
        for (no, line) in s.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            if k == "model" {
                trees = match v.trim() {
                    "linear" => false,
                    "trees" => true,
                    other => return Err(format!("line {}: unknown model {other:?}", no + 1)),
                };
                continue;
            }
            if trees && k != "threshold" && k != "prose_threshold" {
                rest.push((no + 1, line));
                continue;
            }
            if v.is_empty() {
                return Err(format!("line {}: expected `name value`", no + 1));
            }
            let v: f32 = v
                .trim()
                .parse()
                .map_err(|e| format!("line {}: {k}: {e}", no + 1))?;
            if k == "threshold" {
                threshold = Some(v);
                continue;
            }
            if k == "prose_threshold" {
                prose_threshold = Some(v);
                continue;
            }
            let want = names
                .get(weights.len())
                .ok_or_else(|| format!("line {}: {k}: more weights than features", no + 1))?;
            if want != k {
                return Err(format!(
                    "line {}: expected feature {want}, found {k}",
                    no + 1
                ));
            }
            weights.push(v);
        }
        let threshold = threshold.ok_or("no threshold line")?;
        let prose_threshold = prose_threshold.unwrap_or(threshold);
        if trees {
            let f = Forest::parse(rest.into_iter(), names)?;
            return Ok(Model {
                scorer: Scorer::Trees(f),
                threshold,
                prose_threshold,
            });
        }
        if weights.len() != names.len() {
            return Err(format!(
                "{} weights for {} features",
                weights.len(),
                names.len()
            ));
        }
        Ok(Model {
            scorer: Scorer::Linear(weights),
            threshold,
            prose_threshold,
        })
    }

    /// The model file's text (what [`Model::parse`] reads).
    pub fn to_text(&self) -> String {
        let what = match self.scorer {
            Scorer::Linear(_) => "logistic regression over line features",
            Scorer::Trees(_) => "gradient-boosted trees over line features (log-odds)",
        };
        self.to_text_with(
            names(),
            &format!(
                "# curate block scorer (stages/src/extract/blocks.rs): {what},\n\
                 # P(line is content). Rebuild: cargo run -p stages --release --example\n\
                 #   extract_cv -- ../shared DIR stages/src/extract/blocks.model\n"
            ),
        )
    }

    /// The file's text over another feature list, after a `header` of comment lines.
    pub fn to_text_with(&self, names: &[String], header: &str) -> String {
        let mut s = header.to_string();
        s.push_str(&format!("threshold {}\n", self.threshold));
        s.push_str(&format!("prose_threshold {}\n", self.prose_threshold));
        match &self.scorer {
            Scorer::Linear(w) => {
                s.push_str("model linear\n");
                for (n, w) in names.iter().zip(w) {
                    s.push_str(&format!("{n} {w:.5}\n"));
                }
            }
            Scorer::Trees(f) => {
                s.push_str("model trees\n");
                s.push_str(&f.to_text(names));
            }
        }
        s
    }

    /// The model shipped with curate (`blocks.model`).
    pub fn builtin() -> &'static Model {
        static M: OnceLock<Model> = OnceLock::new();
        M.get_or_init(|| {
            Model::parse(include_str!("blocks.model")).expect("the shipped blocks.model parses")
        })
    }
}

/// One labelled line for training.
#[derive(Clone, Debug)]
pub struct Example {
    pub x: Vec<f32>,
    pub content: bool,
    pub weight: f32,
    /// What keeping the line is worth to the page's score: gold units it brings (snippets
    /// to find, or content words) and boilerplate units it brings (snippets not to find, or
    /// words outside the gold). Used to choose a threshold ([`super::train`]).
    pub pos: f32,
    pub neg: f32,
}

/// Training settings.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// L2 penalty (on every weight but the bias), per unit of total example weight.
    pub l2: f64,
    pub iterations: usize,
    pub threshold: f32,
    pub prose_threshold: f32,
    /// When thresholds are chosen by cross-validation: how far the recall (a proxy of each
    /// dataset's, [`super::train::proxy_score`]) may fall below the rules' own.
    pub max_recall_loss: f64,
    /// Boosted trees instead of the logistic model (`l2` and `iterations` then unused).
    pub trees: Option<TreeOptions>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            l2: 0.01,
            iterations: 25,
            threshold: 0.5,
            prose_threshold: 0.5,
            max_recall_loss: 0.0005,
            trees: None,
        }
    }
}

/// Fits the logistic model by Newton's method (sequential sums in example order: the same
/// examples always give the same weights). Features are sparse (mostly 0/1 flags), so the
/// Hessian is accumulated over each example's nonzero features only.
pub fn train(examples: &[Example], opts: &TrainOptions) -> Model {
    if let Some(t) = &opts.trees {
        let xs: Vec<&[f32]> = examples.iter().map(|e| e.x.as_slice()).collect();
        let y: Vec<bool> = examples.iter().map(|e| e.content).collect();
        let w: Vec<f32> = examples.iter().map(|e| e.weight).collect();
        return Model {
            scorer: Scorer::Trees(gbdt::train(&xs, &y, &w, t)),
            threshold: opts.threshold,
            prose_threshold: opts.prose_threshold,
        };
    }
    let d = n_features();
    let mut w = vec![0f64; d];
    let total: f64 = examples
        .iter()
        .map(|e| e.weight as f64)
        .sum::<f64>()
        .max(1e-9);
    let lambda = opts.l2 * total;
    let nz: Vec<Vec<(usize, f64)>> = examples
        .iter()
        .map(|e| {
            e.x.iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(k, v)| (k, *v as f64))
                .collect()
        })
        .collect();
    for _ in 0..opts.iterations {
        let mut g = vec![0f64; d];
        let mut h = vec![0f64; d * d];
        for (e, x) in examples.iter().zip(&nz) {
            let z: f64 = x.iter().map(|&(k, v)| w[k] * v).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let y = if e.content { 1.0 } else { 0.0 };
            let wt = e.weight as f64;
            let r = wt * (p - y);
            let s = wt * (p * (1.0 - p)).max(1e-6);
            for &(a, va) in x {
                g[a] += r * va;
                for &(b, vb) in x {
                    if b <= a {
                        h[a * d + b] += s * va * vb;
                    }
                }
            }
        }
        for k in 1..d {
            g[k] += lambda * w[k];
            h[k * d + k] += lambda;
        }
        // A small ridge on the bias too, so that a singular Hessian (a flag never set) solves.
        h[0] += 1e-9 * total;
        for k in 0..d {
            h[k * d + k] += 1e-9;
        }
        let step = cholesky_solve(&mut h, &g, d);
        let mut change = 0f64;
        for k in 0..d {
            w[k] -= step[k];
            change = change.max(step[k].abs());
        }
        if change < 1e-7 {
            break;
        }
    }
    Model {
        // Rounded as the model file writes them, so that a trained model and the file it
        // writes score alike.
        scorer: Scorer::Linear(
            w.iter()
                .map(|v| format!("{:.5}", v).parse().unwrap_or(0.0))
                .collect(),
        ),
        threshold: opts.threshold,
        prose_threshold: opts.prose_threshold,
    }
}

/// Solves `H s = g` for a symmetric positive definite `H` given by its lower triangle.
fn cholesky_solve(h: &mut [f64], g: &[f64], d: usize) -> Vec<f64> {
    for j in 0..d {
        let mut s = h[j * d + j];
        for k in 0..j {
            s -= h[j * d + k] * h[j * d + k];
        }
        let l = s.max(1e-12).sqrt();
        h[j * d + j] = l;
        for i in j + 1..d {
            let mut s = h[i * d + j];
            for k in 0..j {
                s -= h[i * d + k] * h[j * d + k];
            }
            h[i * d + j] = s / l;
        }
    }
    let mut y = vec![0f64; d];
    for i in 0..d {
        let mut s = g[i];
        for k in 0..i {
            s -= h[i * d + k] * y[k];
        }
        y[i] = s / h[i * d + i];
    }
    let mut x = vec![0f64; d];
    for i in (0..d).rev() {
        let mut s = y[i];
        for k in i + 1..d {
            s -= h[k * d + i] * x[k];
        }
        x[i] = s / h[i * d + i];
    }
    x
}
