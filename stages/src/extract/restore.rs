//! The learned restore: lines outside the chosen content that are content after all (a lead
//! paragraph in its own box beside the body, a standfirst, a section heading the layout put
//! in a sibling), added back to the text.
//!
//! The rules ([`super::content`]) choose one content root and the siblings that join it;
//! what they leave out is lost for good, so the block scorer ([`super::blocks`]), which only
//! prunes, cannot raise recall. The restore looks at the lines around the chosen content (up
//! to [`MAX_UP`] levels above its root, not removed as boilerplate), reads the block
//! scorer's features for each (its tags and class/id words up to where it meets the content,
//! text and link density, cues, its neighbours) plus where it sits relative to the content
//! (before or after, how many lines and characters away, how many levels up they meet, its
//! heading level), and a second small forest of boosted trees ([`super::gbdt`]) gives
//! P(content); a line that is one whole element and scores at or above the threshold is
//! written with the content, in document order. The model (`restore.model`) and its two
//! thresholds (prose lines and the others) are chosen by nested cross-validation by site
//! under a precision guard ([`super::train`]), and rebuilt byte for byte by
//! `examples/extract_cv.rs`.

use std::sync::OnceLock;

use super::blocks::{self, LineStats, Model};

/// How many levels above the content root the restore looks for lines: a lead or a
/// heading the layout put beside the body sits a level or two up, rarely more.
pub const MAX_UP: usize = 3;

/// At most this many lines on either side of the content are scored (the nearest ones).
pub const MAX_LINES: usize = 40;

/// Features added to the block scorer's (in this order, after them).
const EXTRA: &[&str] = &[
    "r_before",
    "r_up",
    "r_sibling",
    "r_lines_between_log",
    "r_chars_between_log",
    "r_prose_between",
    "r_adjacent",
    "r_heading_level",
    "r_h1",
    "r_content_chars_log",
    "r_content_prose_share",
    "r_outside_prose_log",
    "r_vs_content",
];

/// Feature names: the block scorer's, then [`EXTRA`].
pub fn names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v = blocks::names().to_vec();
        v.extend(EXTRA.iter().map(|s| s.to_string()));
        v
    })
}

/// Where a candidate line sits relative to the content.
#[derive(Clone, Copy, Debug, Default)]
pub struct Place {
    pub before: bool,
    /// Levels from the content root up to the element holding both.
    pub up: u8,
    /// Outside lines between it and the content, and their characters and prose lines.
    pub lines_between: u32,
    pub chars_between: u32,
    pub prose_between: u32,
    pub h1: bool,
}

/// What the restore reads about the chosen content.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContentFigures {
    pub chars: u32,
    pub prose: u32,
    pub page_prose: u32,
}

/// The feature vectors of candidate lines: the block scorer's features over the candidates
/// as one sequence (`xs`, from [`blocks::features`]), extended by their place.
pub fn extend(xs: &mut [Vec<f32>], lines: &[LineStats], places: &[Place], c: ContentFigures) {
    let ln1 = |x: f32| (1.0 + x).ln();
    let b = |v: bool| if v { 1.0 } else { 0.0 };
    let outside_prose = c.page_prose.saturating_sub(c.prose) as f32;
    for ((x, l), p) in xs.iter_mut().zip(lines).zip(places) {
        x.extend([
            b(p.before),
            (p.up as f32 / MAX_UP as f32).min(1.0),
            b(p.up <= 1),
            ln1(p.lines_between as f32) / 4.0,
            ln1(p.chars_between as f32) / 10.0,
            ln1(p.prose_between as f32) / 3.0,
            b(p.lines_between == 0),
            l.level as f32 / 6.0,
            b(p.h1),
            ln1(c.chars as f32) / 10.0,
            if c.page_prose > 0 {
                c.prose as f32 / c.page_prose as f32
            } else {
                0.0
            },
            ln1(outside_prose) / 10.0,
            if c.chars > 0 {
                (l.chars as f32 / c.chars as f32).min(2.0)
            } else {
                0.0
            },
        ]);
        debug_assert_eq!(x.len(), names().len());
    }
}

/// The restore model shipped with curate (`restore.model`).
pub fn builtin() -> &'static Model {
    static M: OnceLock<Model> = OnceLock::new();
    M.get_or_init(|| {
        Model::parse_with(include_str!("restore.model"), names())
            .expect("the shipped restore.model parses")
    })
}

/// The model file's text.
pub fn to_text(m: &Model) -> String {
    m.to_text_with(
        names(),
        "# curate restore (stages/src/extract/restore.rs): gradient-boosted trees over the\n\
         # features of lines outside the chosen content (log-odds), P(line is content).\n\
         # Rebuild: cargo run -p stages --release --example extract_cv -- ../shared DIR\n\
         #   stages/src/extract/blocks.model stages/src/extract/restore.model\n",
    )
}
