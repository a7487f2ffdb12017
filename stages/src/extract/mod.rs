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
pub mod hints;
pub mod train;

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::signals::{SignalSpec, SignalType};
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
    /// Prune the chosen content with the learned block scorer (`blocks.model`). Off by default:
    /// cross-validated by site it is neutral (docs/extract.md) and costs about a third of the
    /// extraction time.
    pub block_model: bool,
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
            block_model: false,
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
    let n = args.name;
    Ok(Built::Map(Box::new(ExtractStage {
        name: n.to_string(),
        ex: Extractor::new(cfg)?,
        sig: Sigs {
            chars: format!("{n}.chars"),
            link_density: format!("{n}.link_density"),
            content_frac: format!("{n}.content_frac"),
            nodes: format!("{n}.nodes"),
            depth: format!("{n}.depth"),
            code_blocks: format!("{n}.code_blocks"),
            math: format!("{n}.math"),
            second_opinion: format!("{n}.second_opinion"),
        },
    })))
}

struct Sigs {
    chars: String,
    link_density: String,
    content_frac: String,
    nodes: String,
    depth: String,
    code_blocks: String,
    math: String,
    second_opinion: String,
}

/// The pipeline stage around an [`Extractor`].
pub struct ExtractStage {
    name: String,
    ex: Extractor,
    sig: Sigs,
}

impl Stage for ExtractStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn signals(&self) -> Vec<SignalSpec> {
        let s = &self.sig;
        vec![
            SignalSpec::new(
                s.chars.clone(),
                SignalType::I64,
                "characters of extracted text",
            ),
            SignalSpec::new(
                s.link_density.clone(),
                SignalType::F32,
                "link text / text of the chosen content (non-whitespace characters)",
            ),
            SignalSpec::new(
                s.content_frac.clone(),
                SignalType::F32,
                "visible text of the chosen content / visible text of the page",
            ),
            SignalSpec::new(
                s.nodes.clone(),
                SignalType::I64,
                "parsed nodes (elements and text runs)",
            ),
            SignalSpec::new(s.depth.clone(), SignalType::I64, "deepest element nesting"),
            SignalSpec::new(
                s.code_blocks.clone(),
                SignalType::I64,
                "code blocks (<pre>) kept",
            ),
            SignalSpec::new(
                s.math.clone(),
                SignalType::I64,
                "math expressions kept as TeX",
            ),
            SignalSpec::new(
                s.second_opinion.clone(),
                SignalType::I64,
                "0: content looked right; 1: looked wrong (short for the page or mostly links), kept after a second opinion; 2: replaced by the second opinion",
            ),
        ]
    }

    fn reasons(&self) -> Vec<&'static str> {
        vec![
            "too_large",
            "too_many_nodes",
            "too_deep",
            "timeout",
            "empty",
        ]
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(html) = doc.html.take() else {
            return Outcome::Keep;
        };
        let r = match self.ex.extract(&html) {
            Ok(r) => r,
            Err(f) => {
                doc.signals.set_i64(self.sig.chars.clone(), 0);
                return Outcome::Drop(f.reason());
            }
        };
        let e = r.extraction;
        let chars = e.text.chars().count();
        let s = &self.sig;
        doc.signals.set_i64(s.chars.clone(), chars as i64);
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        doc.signals.set_f64(
            s.link_density.clone(),
            ratio(e.content_link_chars, e.content_chars),
        );
        doc.signals
            .set_f64(s.content_frac.clone(), ratio(e.content_chars, e.page_chars));
        doc.signals.set_i64(s.nodes.clone(), r.nodes as i64);
        doc.signals.set_i64(s.depth.clone(), r.depth as i64);
        doc.signals
            .set_i64(s.code_blocks.clone(), e.code_blocks as i64);
        doc.signals.set_i64(s.math.clone(), e.math as i64);
        doc.signals
            .set_i64(s.second_opinion.clone(), e.second_opinion as i64);
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
