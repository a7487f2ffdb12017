//! The `extract.html` stage over arbitrary bytes, with its default limits: every page is kept
//! with text or dropped under one of the stage's reasons; nothing panics or hangs, and the
//! documented invariants of the output hold.
//!
//! An input is a page as the stage receives it: its bytes as lossy UTF-8 in `html`. A leading
//! byte 0x00-0x03 is a mode instead: bit 0 switches the rendering options (Markdown markers,
//! headline, boilerplate kept; the limits stay the defaults), bit 1 decodes the rest as a page
//! body the way `curate extract` decodes a file (BOM, `<meta>` charset, detection). Decoding
//! runs only when asked because the charset detector costs as much as the extraction under
//! instrumentation, and the `http_charset` target covers it on its own.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stages::config::Purpose;
use stages::read::charset;
use stages::stage::{Built, Outcome, Stage};
use stages::{Document, StageArgs};

const DEFAULTS: &str = "";
const OPTIONS: &str =
    "markdown = true\nheadline = true\nkeep = [\"nav\", \"comments\", \"related\"]";

fn build(section: &str) -> Box<dyn Stage> {
    let table: toml::Table = section.parse().expect("section");
    let args = StageArgs {
        name: "extract",
        table: &table,
        base_dir: std::path::Path::new("."),
        purpose: Purpose::Run,
        seed: 0,
    };
    match (stages::extract::DEF.build)(&args) {
        Ok(Built::Map(s)) => s,
        _ => panic!("extract.html does not build from {section:?}"),
    }
}

fn stage(options: bool) -> &'static dyn Stage {
    static PLAIN: OnceLock<Box<dyn Stage>> = OnceLock::new();
    static RICH: OnceLock<Box<dyn Stage>> = OnceLock::new();
    if options {
        RICH.get_or_init(|| build(OPTIONS)).as_ref()
    } else {
        PLAIN.get_or_init(|| build(DEFAULTS)).as_ref()
    }
}

fn check(stage: &dyn Stage, html: &str) {
    let mut doc = Document::new("fuzz", "");
    doc.html = Some(html.to_string());
    let outcome = stage.process(&mut doc);
    // The stage clears `html` whatever the outcome, so that HTML never flows further.
    assert!(doc.html.is_none(), "html left on the document");
    if let Outcome::Drop(reason) = outcome {
        assert!(
            stage.reasons().contains(&reason),
            "undeclared reason {reason:?}"
        );
    }
    let text = doc.text();
    assert!(std::str::from_utf8(text.as_bytes()).is_ok());
    let chars = doc.signals.i64("extract.chars").expect("chars signal");
    assert_eq!(chars as usize, text.chars().count(), "chars signal");
    if outcome == Outcome::Keep {
        assert!(chars >= 1, "kept a page without text");
        for name in ["extract.link_density", "extract.content_frac"] {
            let v = doc.signals.f64(name).expect("ratio signal");
            assert!(v.is_finite() && v >= 0.0, "{name} = {v}");
        }
        // The line view every later stage reads covers the text (word segmentation is left
        // out: it doubles the cost of an execution and is not the extractor's code).
        let n = text.len();
        for r in doc.lines() {
            assert!(
                r.start <= r.end && r.end as usize <= n,
                "line {r:?} outside {n} bytes"
            );
        }
        assert_eq!(doc.line_strs().count(), doc.lines().len());
    }
}

fuzz_target!(|data: &[u8]| {
    let (mode, page) = match data.split_first() {
        Some((&m, rest)) if m < 4 => (m, rest),
        _ => (0, data),
    };
    let stage = stage(mode & 1 == 1);
    if mode & 2 == 2 {
        check(stage, &charset::decode_html(page, None, "").text);
    } else {
        check(stage, &String::from_utf8_lossy(page));
    }
});
