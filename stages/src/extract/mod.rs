//! `extract.html`: main-content extraction from HTML (the `html` a WARC reader decoded) to text.
//!
//! The page is parsed once ([`dom`]: a tokenizer and forgiving tree builder written for this
//! job), scored and rendered ([`content`]) with boilerplate words from [`hints`]. The text keeps
//! headings, paragraphs and list items as lines, table rows as tab-separated lines, code blocks
//! with their line breaks and indentation, and math as TeX; Markdown markers are off by default
//! (Llama 3 found they hurt). The stage sets the document's text, puts the `<title>` in
//! `metadata["title"]`, and clears `html` so that HTML never flows further. Documents that
//! arrive without HTML (text sources) pass through untouched.
//!
//! Pathological pages never panic or hang: size, node, depth and time limits drop them, each
//! under its own reason. Design, measurements and the quality log: `docs/extract.md`.

pub mod blocks;
pub mod content;
pub mod dom;
mod entities;
pub mod gbdt;
pub mod hints;
pub mod restore;
pub mod train;

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Declare, Declared, Sig, F32, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

pub use content::{Extraction, Options};
pub use hints::Boiler;

/// `[stages.extract]` (`type = "extract.html"`): main-content extraction settings.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractConfig {
    /// Pages with more bytes of HTML are dropped as `too_large`.
    pub max_html_bytes: u64,
    /// Pages that parse into more nodes (elements and text runs) are dropped as `too_many_nodes`.
    pub max_nodes: u64,
    /// Pages that nest elements deeper than this are dropped as `too_deep`.
    pub max_depth: u64,
    /// Time budget per page in milliseconds; pages over it are dropped as `timeout`
    /// (0: no budget).
    pub timeout_ms: u64,
    /// Boilerplate kinds to keep instead of dropping: any of `nav`, `header`, `footer`,
    /// `sidebar`, `comments`, `share`, `cookie`, `ads`, `related`.
    pub keep: Vec<String>,
    /// Write Markdown markers (`#` headings, `**` bold, `-` list items, code fences).
    pub markdown: bool,
    /// Put the page's `<h1>` headline first when it lies outside the main content (off by
    /// default: the `<title>` is in `metadata["title"]`, and the headline outside the content
    /// is as often a site logo).
    pub headline: bool,
    /// Pages whose extracted text has fewer characters are dropped as `empty`.
    pub min_chars: u64,
    /// Prune the chosen content with the learned block scorer (`blocks.model`: boosted trees).
    /// On by default: cross-validated by site it raises precision and F1 on news and blog
    /// pages with recall held (docs/extract.md), at about a quarter of the extraction time.
    pub block_model: bool,
    /// Add back lines outside the chosen content that the learned restore (`restore.model`)
    /// finds to be content (a lead paragraph or heading beside the body). On by default:
    /// cross-validated by site it raises recall on every set (news/blog 0.9694 -> 0.9707 on
    /// trafilatura-eval) with precision and F1 above the rules' (docs/extract.md).
    pub restore: bool,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        ExtractConfig {
            max_html_bytes: 16 << 20,
            max_nodes: 2_000_000,
            max_depth: 2048,
            timeout_ms: 5000,
            keep: Vec::new(),
            markdown: false,
            headline: false,
            min_chars: 1,
            block_model: true,
            restore: true,
        }
    }
}

/// Below this many characters of chosen content, a page with `<noscript>` is read again
/// with scripting off.
const NOSCRIPT_RETRY_CHARS: usize = 200;

fn has_noscript(html: &str) -> bool {
    let b = html.as_bytes();
    memchr::memmem::find_iter(b, b"<").any(|i| {
        b.get(i + 1..i + 9)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"noscript"))
    })
}

/// Why a page yields no text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    TooLarge,
    TooManyNodes,
    TooDeep,
    Timeout,
}

impl Failure {
    pub fn reason(self) -> &'static str {
        match self {
            Failure::TooLarge => "too_large",
            Failure::TooManyNodes => "too_many_nodes",
            Failure::TooDeep => "too_deep",
            Failure::Timeout => "timeout",
        }
    }
}

/// A configured extractor, usable outside the pipeline (`curate extract`, benchmarks).
#[derive(Clone, Debug)]
pub struct Extractor {
    cfg: ExtractConfig,
    opts: Options,
}

/// One page's result: the extraction and the parse figures.
#[derive(Clone, Debug)]
pub struct PageResult {
    pub extraction: Extraction,
    pub nodes: usize,
    pub depth: usize,
}

impl Extractor {
    /// Validates a config (naming the offending key).
    pub fn new(cfg: ExtractConfig) -> Result<Self, ConfigError> {
        let mut opts = Options {
            markdown: cfg.markdown,
            headline: cfg.headline,
            ..Options::default()
        };
        for k in &cfg.keep {
            let b = Boiler::from_name(k).ok_or_else(|| {
                let names: Vec<_> = Boiler::ALL.iter().map(|b| b.name()).collect();
                ConfigError::new(
                    "keep",
                    format!("unknown boilerplate kind {k:?}: expected one of {names:?}"),
                )
            })?;
            opts.drop &= !b.bit();
        }
        if !cfg.block_model {
            opts.model = None;
        }
        if cfg.restore {
            opts.restore = Some(std::sync::Arc::new(restore::builtin().clone()));
        }
        if cfg.max_depth == 0 {
            return Err(ConfigError::new("max_depth", "must be at least 1"));
        }
        if cfg.max_nodes == 0 {
            return Err(ConfigError::new("max_nodes", "must be at least 1"));
        }
        Ok(Extractor { cfg, opts })
    }

    pub fn config(&self) -> &ExtractConfig {
        &self.cfg
    }

    /// The same extractor with another block scorer (none: the rules alone).
    pub fn with_model(mut self, model: Option<std::sync::Arc<blocks::Model>>) -> Self {
        self.opts.model = model;
        self
    }

    /// The same extractor with another restore model (none: off).
    pub fn with_restore(mut self, model: Option<std::sync::Arc<blocks::Model>>) -> Self {
        self.opts.restore = model;
        self
    }

    /// The same extractor, keeping each content line's text, features and score in
    /// [`Extraction::lines`] (for training the block scorer).
    pub fn collecting_lines(mut self) -> Self {
        self.opts.collect_lines = true;
        self
    }

    /// Extracts the main content of one page.
    pub fn extract(&self, html: &str) -> Result<PageResult, Failure> {
        if html.len() as u64 > self.cfg.max_html_bytes {
            return Err(Failure::TooLarge);
        }
        let start = Instant::now();
        let deadline =
            (self.cfg.timeout_ms > 0).then(|| start + Duration::from_millis(self.cfg.timeout_ms));
        let limits = dom::Limits {
            // One more level than allowed, so that going past the limit is seen.
            max_depth: self.cfg.max_depth as usize + 1,
            max_nodes: self.cfg.max_nodes as usize + 1,
            deadline,
            scripting: true,
        };
        let mut r = self.run(html, &limits, deadline)?;
        // Pages that render their text with JavaScript often carry it in <noscript> too:
        // when the scripted view has almost no content, read the page as a reader without
        // JavaScript would, and keep that view if it holds more.
        if r.extraction.content_chars < NOSCRIPT_RETRY_CHARS && has_noscript(html) {
            let limits = dom::Limits {
                scripting: false,
                ..limits
            };
            let plain = self.run(html, &limits, deadline)?;
            if plain.extraction.content_chars > r.extraction.content_chars {
                r = plain;
            }
        }
        Ok(r)
    }

    fn run(
        &self,
        html: &str,
        limits: &dom::Limits,
        deadline: Option<Instant>,
    ) -> Result<PageResult, Failure> {
        let d = dom::Dom::parse(html, limits);
        if d.status.timed_out {
            return Err(Failure::Timeout);
        }
        if d.status.too_many_nodes {
            return Err(Failure::TooManyNodes);
        }
        if d.status.too_deep || d.status.max_depth as u64 > self.cfg.max_depth {
            return Err(Failure::TooDeep);
        }
        let extraction = content::extract_page(&d, &self.opts);
        if deadline.is_some_and(|dl| Instant::now() > dl) {
            return Err(Failure::Timeout);
        }
        Ok(PageResult {
            extraction,
            nodes: d.nodes.len(),
            depth: d.status.max_depth,
        })
    }
}

pub static DEF: StageDef = StageDef {
    kind: "extract.html",
    about: "Main-content extraction from HTML: drops boilerplate, keeps headings, lists, tables, code and math (TeX)",
    example: "keep = [\"comments\"]\nmarkdown = false\nmax_html_bytes = 16777216\ntimeout_ms = 5000",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: ExtractConfig = args.parse()?;
    let mut d = Declare::new(args.name);
    let sig = Sigs {
        chars: d.signal("chars", "characters of extracted text"),
        link_density: d.signal(
            "link_density",
            "link text / text of the chosen content (non-whitespace characters)",
        ),
        content_frac: d.signal(
            "content_frac",
            "visible text of the chosen content / visible text of the page",
        ),
        nodes: d.signal("nodes", "parsed nodes (elements and text runs)"),
        depth: d.signal("depth", "deepest element nesting"),
        code_blocks: d.signal("code_blocks", "code blocks (<pre>) kept"),
        math: d.signal("math", "math expressions kept as TeX"),
        second_opinion: d.signal(
            "second_opinion",
            "0: content looked right; 1: looked wrong (short for the page or mostly links), kept after a second opinion; 2: replaced by the second opinion",
        ),
    };
    // Pages that cannot be extracted within the limits, then pages with too little text.
    for f in [
        Failure::TooLarge,
        Failure::TooManyNodes,
        Failure::TooDeep,
        Failure::Timeout,
    ] {
        d.reason(f.reason());
    }
    d.reason("empty");
    Ok(Built::Map(Box::new(ExtractStage {
        name: args.name.to_string(),
        ex: Extractor::new(cfg)?,
        sig,
        declared: d.finish(),
    })))
}

struct Sigs {
    chars: Sig<I64>,
    link_density: Sig<F32>,
    content_frac: Sig<F32>,
    nodes: Sig<I64>,
    depth: Sig<I64>,
    code_blocks: Sig<I64>,
    math: Sig<I64>,
    second_opinion: Sig<I64>,
}

/// The pipeline stage around an [`Extractor`].
pub struct ExtractStage {
    name: String,
    ex: Extractor,
    sig: Sigs,
    declared: Declared,
}

impl Stage for ExtractStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(html) = doc.html.take() else {
            return Outcome::Keep;
        };
        let r = match self.ex.extract(&html) {
            Ok(r) => r,
            Err(f) => {
                self.sig.chars.set(&mut doc.signals, 0);
                return Outcome::Drop(f.reason());
            }
        };
        let e = r.extraction;
        let chars = e.text.chars().count();
        let (s, sig) = (&self.sig, &mut doc.signals);
        s.chars.set(sig, chars as i64);
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        s.link_density
            .set(sig, ratio(e.content_link_chars, e.content_chars));
        s.content_frac
            .set(sig, ratio(e.content_chars, e.page_chars));
        s.nodes.set(sig, r.nodes as i64);
        s.depth.set(sig, r.depth as i64);
        s.code_blocks.set(sig, e.code_blocks as i64);
        s.math.set(sig, e.math as i64);
        s.second_opinion.set(sig, e.second_opinion as i64);
        if !e.title.is_empty() {
            doc.metadata.insert("title".into(), e.title);
        }
        doc.set_text(e.text);
        if (chars as u64) < self.ex.cfg.min_chars.max(1) {
            return Outcome::Drop("empty");
        }
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests;
