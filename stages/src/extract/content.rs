//! Main-content selection over a parsed page, and its rendering to text.
//!
//! Four linear passes over the arena (parents precede children, so forward passes push flags
//! down and reverse passes sum counts up; nothing recurses):
//!
//! 1. **Hard removal**: elements that never hold readable text (`script`, `style`, forms'
//!    controls, embedded media, `head`) and hidden ones (`hidden`, `aria-hidden`, inline
//!    `display:none`), plus the rendered copies of math that is kept as TeX.
//! 2. **Boilerplate**: elements whose tag, ARIA role or class/id words name a kind of
//!    boilerplate ([`super::hints`]) and whose kind the config drops, unless the element holds
//!    most of the page's text (a wrapper `<div class="has-sidebar">` is not a sidebar) or holds
//!    the declared main content (`<main>`, `role=main`, `itemprop=articleBody`).
//! 3. **Scoring**: each block (the text whose nearest block-level ancestor is one element)
//!    gets a value: its text that is not link text, minus a penalty for link text and a fixed
//!    cost per block, so prose counts for and menus, link lists and crumbs count against.
//!    Summed over subtrees, the element with the highest sum is the main content: the smallest
//!    container that gathers the prose without the link clusters around it.
//! 4. **Rendering**: the chosen element (and the page's headline when it sits just outside,
//!    and the lines around it that the learned restore, [`super::restore`], adds back) is
//!    written as lines: one per paragraph, heading, list item and table row (cells
//!    tab-separated); `<pre>` keeps its line breaks and indentation; math becomes TeX.

use unicode_normalization_alignments::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use std::sync::Arc;

use super::blocks::{self, LineStats, Model};
use super::dom::{AttrKey, Dom, Node, Tag, NONE};
use super::hints::{class_hint, names_teaser, role_hint, style_hides, tag_hint, Boiler};
use super::restore;

/// Extraction settings (from the stage config).
#[derive(Clone, Debug)]
pub struct Options {
    /// Boilerplate kinds to drop (bits of [`Boiler::bit`]).
    pub drop: u16,
    /// Write Markdown markers (`#` headings, `**` bold, `-` list items, code fences).
    pub markdown: bool,
    /// Prepend the page's headline (`<h1>`) when it lies outside the chosen content.
    pub headline: bool,
    /// The learned block scorer that prunes lines from the chosen content (none: rules only).
    pub model: Option<Arc<Model>>,
    /// Keep each content line's text, features and score in [`Extraction::lines`] (training).
    pub collect_lines: bool,
    /// Take the whole page minus boilerplate as the content (the second opinion's selection).
    pub whole_page: bool,
    /// The learned restore that adds back lines outside the chosen content (none: off).
    pub restore: Option<Arc<Model>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            drop: Boiler::ALL.iter().fold(0, |m, b| m | b.bit()),
            markdown: false,
            headline: false,
            model: Some(Arc::new(Model::builtin().clone())),
            collect_lines: false,
            whole_page: false,
            restore: None,
        }
    }
}

/// What extraction produced.
#[derive(Clone, Debug, Default)]
pub struct Extraction {
    pub text: String,
    /// The `<title>`, whitespace-folded.
    pub title: String,
    /// Non-whitespace characters of the page's visible text, and of the chosen content.
    pub page_chars: usize,
    pub content_chars: usize,
    /// Link text characters of the chosen content.
    pub content_link_chars: usize,
    /// `<pre>` blocks written.
    pub code_blocks: usize,
    /// Math expressions written as TeX.
    pub math: usize,
    /// Elements removed as boilerplate.
    pub boilerplate_nodes: usize,
    /// Lines of the chosen content that the block scorer dropped.
    pub model_dropped: usize,
    /// Prose characters (blocks of running text) of the page after boilerplate removal, and
    /// of the chosen content.
    pub page_prose: usize,
    pub content_prose: usize,
    /// 0: the first selection looked right; 1: it looked wrong, and the second opinion did
    /// not beat it; 2: the second opinion replaced it.
    pub second_opinion: u8,
    /// The content's lines as the block scorer saw them (with [`Options::collect_lines`]).
    pub lines: Vec<ScoredLine>,
    /// Lines outside the chosen content that the restore added back.
    pub restored: usize,
    /// The lines around the content as the restore saw them (with [`Options::collect_lines`]:
    /// `dropped` says restored).
    pub restore_lines: Vec<ScoredLine>,
    /// Every line of the page and where extraction left it (with [`Options::collect_lines`]):
    /// where missed text is, and the candidates of the restore.
    pub page_lines: Vec<PageLine>,
}

/// Where extraction left a line of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// Never text (script, style) or hidden.
    Hidden,
    /// Removed as boilerplate (pass 2) outside the chosen content.
    BoilerOutside,
    /// Removed as boilerplate inside the chosen content.
    BoilerInside,
    /// Not removed, but outside the chosen content (the restore's candidates).
    Outside,
    /// Inside the chosen content, pruned by the rules (link lists, dangling lines).
    Pruned,
    /// Inside the chosen content, pruned by the block model.
    ModelPruned,
    /// Written.
    Content,
}

/// One line of the page (a block's text), for diagnosis and the restore's training.
#[derive(Clone, Debug)]
pub struct PageLine {
    /// The text, whitespace-folded.
    pub text: String,
    pub place: Place,
    /// The line's block element.
    pub node: usize,
    /// Before the content root in document order.
    pub before: bool,
    /// Levels from the content root up to the lowest element holding both it and the line
    /// (1: the line is in a sibling of the root; 0: inside the root).
    pub up: u8,
    /// Heading level (0: not a heading).
    pub level: u8,
}

/// One line of the chosen content, scored (kept for training and diagnosis).
#[derive(Clone, Debug, Default)]
pub struct ScoredLine {
    /// The text, whitespace-folded.
    pub text: String,
    pub x: Vec<f32>,
    /// P(content) under the model in use (1 without one).
    pub p: f32,
    /// The element is this line only (the model may drop it).
    pub whole: bool,
    pub dropped: bool,
}

/// Inside the content, a block whose link text exceeds this share of its text is a link list.
const LINK_LIST_DENSITY: f32 = 0.6;
/// The fixed cost of one block in the content score (in characters): many tiny blocks (menus,
/// crumbs) cost more than they bring.
const BLOCK_COST: f32 = 20.0;
/// The share of the page's prose that an article-body container must hold to be the content.
const BODY_PROSE_SHARE: f32 = 0.6;

/// How many ancestor levels of the chosen element are searched for sibling content, and the
/// share of the chosen element's score a sibling must reach.
const SIBLING_LEVELS: usize = 5;
const SIBLING_SHARE: f32 = 0.02;

const REMOVED: u8 = 1;
const LINK: u8 = 2;
const PRE: u8 = 4;
const IN_ARTICLE: u8 = 8;
const PROTECT: u8 = 16;
/// Removed as a box that a heading introduces (related links, share bar, comments, ads).
const BOXED: u8 = 32;
/// Removed as a box of links away, comments or share buttons: a heading just before it
/// introduces it.
const INTRO: u8 = 64;
/// ... and that box was named so by its class, tag or role (not found by link density).
const NAMED_BOX: u8 = 128;

/// Elements whose content is never text a reader sees.
fn never_text(tag: Tag) -> bool {
    use Tag::*;
    matches!(
        tag,
        Head | Title
            | Style
            | Noscript
            | Template
            | Iframe
            | Object
            | Embed
            | Applet
            | Canvas
            | Svg
            | Select
            | Option
            | Optgroup
            | Button
            | Input
            | Textarea
            | Map
            | Audio
            | Video
            | Source
            | Track
            | Link
            | Meta
            | Base
            | Noembed
            | Noframes
            | Frameset
            | Frame
            | Param
            | Keygen
            | Rp
            // Ruby annotations (furigana readings) sit above the text, not in it.
            | Rt
    )
}

/// Rendered duplicates of math that is kept as TeX (MathJax output and previews, KaTeX HTML).
fn is_math_rendering(class: &str) -> bool {
    class.contains("MathJax") || class.contains("katex-html") || class.contains("MJX")
}

/// Non-whitespace characters of a string.
fn visible_chars(s: &str) -> u32 {
    let b = s.as_bytes();
    if b.is_ascii() {
        b.iter().filter(|c| !c.is_ascii_whitespace()).count() as u32
    } else {
        s.chars().filter(|c| !c.is_whitespace()).count() as u32
    }
}

fn is_block(tag: Tag) -> bool {
    !tag.is_inline() && !matches!(tag, Tag::Br | Tag::Img | Tag::Wbr | Tag::Math | Tag::Script)
}

/// Content this short (non-whitespace characters) after boilerplate removal makes
/// [`extract_page`] look again with reader comments kept.
pub const SHORT_CONTENT: usize = 1000;
/// How much more than three times the content the comments view must hold to win.
const COMMENTS_MARGIN: usize = 1000;

/// [`extract`], and when it finds almost nothing but comments were dropped, the same with
/// comments kept: on a forum thread or a Q&A page the posts are the content, and themes mark
/// them up as comments.
pub fn extract_page(dom: &Dom, opts: &Options) -> Extraction {
    let ex = second_opinion(dom, opts, extract(dom, opts));
    let comments = Boiler::Comments.bit();
    if ex.content_chars >= SHORT_CONTENT || opts.drop & comments == 0 {
        return ex;
    }
    let keep = Options {
        drop: opts.drop & !comments,
        ..opts.clone()
    };
    let alt = extract(dom, &keep);
    // The comments must be most of what there is to read, not a reply form under a short post.
    if alt.content_chars > 3 * ex.content_chars + COMMENTS_MARGIN {
        alt
    } else {
        ex
    }
}

/// Pages with at least this much prose (characters) get a second opinion when the first
/// selection looks wrong.
const SECOND_OPINION_PROSE: usize = 400;

/// trafilatura's fallback idea: when the chosen content looks wrong for the page (it holds
/// under half of the page's prose, or it is mostly links), the whole page minus boilerplate is
/// scored too, and it wins when it holds at least twice the prose and is not mostly links.
fn second_opinion(dom: &Dom, opts: &Options, mut ex: Extraction) -> Extraction {
    if opts.whole_page || ex.page_prose < SECOND_OPINION_PROSE {
        return ex;
    }
    let short = ex.content_prose * 2 < ex.page_prose;
    let linky = ex.content_link_chars * 2 > ex.content_chars;
    if !(short || linky) {
        return ex;
    }
    let alt = extract(
        dom,
        &Options {
            whole_page: true,
            ..opts.clone()
        },
    );
    if alt.content_prose >= 2 * ex.content_prose
        && alt.content_link_chars * 10 < 3 * alt.content_chars
    {
        Extraction {
            second_opinion: 2,
            ..alt
        }
    } else {
        ex.second_opinion = 1;
        ex
    }
}

/// Per-node figures that the passes share (indexed by node; a block's own text counts at
/// the block).
struct Figures {
    /// Nearest block ancestor of each node.
    block: Vec<u32>,
    /// Visible characters of each text node, counted once.
    tchars: Vec<u32>,
    /// Visible characters per subtree.
    chars: Vec<u32>,
    /// Text of each block itself, and the link text among it.
    own: Vec<u32>,
    own_link: Vec<u32>,
    /// Prose characters per subtree.
    prose: Vec<u32>,
    /// Link characters per subtree.
    links: Vec<u32>,
}

/// Runs the four passes over `dom`: context, boilerplate, scores and the choice of the
/// content, then renders it.
pub fn extract(dom: &Dom, opts: &Options) -> Extraction {
    let n = dom.nodes.len();
    let mut ex = Extraction::default();
    let mut flags = vec![0u8; n];
    let title_node = mark_context(dom, &mut flags);
    if title_node != NONE {
        ex.title = title_text(dom, title_node);
    }
    // What each pass removed, kept only to say where a line was lost (training, diagnosis).
    let snap = |flags: &[u8]| opts.collect_lines.then(|| flags.to_vec());
    let hard = snap(&flags);
    let mut f = measure(dom, &mut flags);
    ex.page_chars = f.chars[0] as usize;
    remove_boilerplate(dom, opts, &mut flags, &f, &mut ex);
    let boiler = snap(&flags);
    let (link, score) = score_blocks(dom, &flags, &mut f);
    let root = choose_root(dom, opts, &flags, &score, &f.prose);
    let parts = join_parts(dom, opts, root, &flags, &f, &link, &score);
    let (block, tchars, chars, prose) = (&f.block, &f.tchars, &f.chars, &f.prose);
    for &r in &parts {
        prune_link_lists(dom, r, &mut flags, chars, &link);
    }
    drop_dangling(dom, &parts, &mut flags, block, tchars, chars);
    let pruned = snap(&flags);
    if opts.model.is_some() || opts.collect_lines {
        score_lines(
            dom, root, &parts, &mut flags, block, tchars, chars, opts, &mut ex,
        );
    }
    if let (Some(hard), Some(boiler), Some(pruned)) = (&hard, &boiler, &pruned) {
        let seen = [hard.as_slice(), boiler, pruned, &flags];
        ex.page_lines = page_lines(dom, root, &parts, &seen, block, tchars);
    }
    ex.content_chars = parts.iter().map(|&r| chars[r] as usize).sum();
    ex.page_prose = prose[0] as usize;
    ex.content_prose = parts.iter().map(|&r| prose[r] as usize).sum();
    ex.content_link_chars = parts.iter().map(|&r| link[r] as usize).sum();
    let mut parts = parts;
    if root != 0 && (opts.restore.is_some() || opts.collect_lines) {
        let extra = restore_lines(
            dom, root, &parts, &flags, block, tchars, chars, opts, &mut ex,
        );
        parts.extend(extra);
        parts.sort_unstable();
    }

    ex.text = render_content(dom, opts, root, &parts, &flags, chars, &link, &mut ex);
    ex
}

/// Pass 1: hard removal (scripts, hidden elements), link, pre and article context; returns
/// the page's `<title>` node (`NONE` without one).
fn mark_context(dom: &Dom, flags: &mut [u8]) -> u32 {
    let nodes = &dom.nodes;
    let n = nodes.len();
    let mut title_node = NONE;
    for i in 1..n {
        let node = &nodes[i];
        let p = node.parent as usize;
        let mut f = flags[p] & (REMOVED | LINK | PRE | IN_ARTICLE);
        match node.tag {
            Tag::Text => {}
            tag => {
                if tag == Tag::Title && title_node == NONE {
                    title_node = i as u32;
                }
                let hidden = || {
                    dom.attr(i as u32, AttrKey::Hidden).is_some()
                        || dom
                            .attr(i as u32, AttrKey::AriaHidden)
                            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
                        || dom.attr(i as u32, AttrKey::Style).is_some_and(style_hides)
                        || dom
                            .attr(i as u32, AttrKey::Class)
                            .is_some_and(is_math_rendering)
                };
                let tex_script = tag == Tag::Script && node.first_child != NONE;
                if (never_text(tag) || (tag == Tag::Script && !tex_script))
                    || (node.start != node.end && hidden())
                {
                    f |= REMOVED;
                }
                match tag {
                    Tag::A if dom.attr(i as u32, AttrKey::Href).is_some() => f |= LINK,
                    Tag::Pre | Tag::Listing | Tag::Xmp | Tag::Plaintext => f |= PRE,
                    Tag::Article | Tag::Main => f |= IN_ARTICLE,
                    _ => {}
                }
            }
        }
        flags[i] = f;
    }
    title_node
}

/// The text of the `<title>` element.
fn title_text(dom: &Dom, title_node: u32) -> String {
    let mut t = Out::new(false);
    for c in dom.children(title_node) {
        t.text(dom.text_of(&dom.nodes[c as usize]));
    }
    t.finish()
}

/// Text per subtree and per block before boilerplate removal, and the protect marks of
/// declared main content.
fn measure(dom: &Dom, flags: &mut [u8]) -> Figures {
    let nodes = &dom.nodes;
    let n = nodes.len();
    let mut block = vec![0u32; n];
    for i in 1..n {
        let node = &nodes[i];
        block[i] = if node.tag != Tag::Text && is_block(node.tag) {
            i as u32
        } else {
            block[node.parent as usize]
        };
    }
    // Text per subtree and per block before boilerplate removal: the guard that keeps a
    // "boilerplate" element holding most of the page's prose (a layout wrapper with an
    // unlucky class), and the protect marks of declared main content.
    let mut chars = vec![0u32; n];
    let mut own = vec![0u32; n];
    let mut own_link = vec![0u32; n];
    let mut prose = vec![0u32; n];
    let mut links = vec![0u32; n];
    // Visible characters of each text node, counted once.
    let mut tchars = vec![0u32; n];
    for i in 1..n {
        if flags[i] & REMOVED == 0 && nodes[i].tag == Tag::Text {
            let c = visible_chars(dom.text_of(&nodes[i]));
            tchars[i] = c;
            chars[i] = c;
            own[block[i] as usize] += c;
            if flags[i] & LINK != 0 {
                own_link[block[i] as usize] += c;
                links[i] = c;
            }
        }
    }
    for i in (1..n).rev() {
        if flags[i] & REMOVED != 0 {
            continue;
        }
        let node = &nodes[i];
        if node.tag != Tag::Text {
            if is_prose(own[i], own_link[i]) {
                prose[i] += own[i] - own_link[i];
            }
            if node.tag == Tag::Main
                || dom
                    .attr(i as u32, AttrKey::Role)
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case("main"))
                || dom
                    .attr(i as u32, AttrKey::Itemprop)
                    .is_some_and(|r| r.contains("articleBody"))
            {
                flags[i] |= PROTECT;
            }
        }
        let p = node.parent as usize;
        chars[p] += chars[i];
        links[p] += links[i];
        prose[p] += prose[i];
        flags[p] |= flags[i] & PROTECT;
    }
    Figures {
        block,
        tchars,
        chars,
        own,
        own_link,
        prose,
        links,
    }
}

/// Pass 2: boilerplate (menus, headers, related boxes, consent banners, ...) is removed,
/// unless it holds most of the page's prose.
fn remove_boilerplate(
    dom: &Dom,
    opts: &Options,
    flags: &mut [u8],
    f: &Figures,
    ex: &mut Extraction,
) {
    let nodes = &dom.nodes;
    let n = nodes.len();
    let (block, chars, own, own_link, prose, links) =
        (&f.block, &f.chars, &f.own, &f.own_link, &f.prose, &f.links);
    let holds_most = |i: usize| {
        if prose[0] > 0 {
            prose[i] * 2 >= prose[0]
        } else {
            chars[i] as f64 >= 0.6 * chars[0] as f64
        }
    };

    for i in 1..n {
        let node = &nodes[i];
        let p = node.parent as usize;
        flags[i] |= flags[p] & REMOVED;
        if flags[i] & REMOVED != 0 || node.tag == Tag::Text {
            continue;
        }
        if matches!(node.tag, Tag::Html | Tag::Body | Tag::Main | Tag::Article)
            || flags[i] & PROTECT != 0
        {
            continue;
        }
        // Site headers are made of a logo and short links: one holding a prose block is an
        // article's lead. (A menu with prose in it is still a menu: the prose is the site's
        // blurb.)
        let kind = boiler_kind(dom, i as u32, node, flags[i])
            .filter(|&k| !(k == Boiler::Header && prose[i] > 0));
        // A dateline or a name marked up inside a sentence ("<span class=dateline>KOBE -
        // </span>A total of ...") is part of the sentence.
        let in_sentence = || {
            let b = block[i] as usize;
            node.tag.is_inline() && is_prose(own[b], own_link[b]) && chars[i] * 2 < own[b]
        };
        let kind = kind
            .filter(|&k| !(k == Boiler::Meta && in_sentence()))
            .or_else(|| {
                // A teaser that links elsewhere announces another article.
                (links[i] * 10 >= chars[i]
                    && links[i] > 0
                    && [AttrKey::Class, AttrKey::Id]
                        .into_iter()
                        .any(|k| dom.attr(i as u32, k).is_some_and(names_teaser)))
                .then_some(Boiler::Related)
            });
        if let Some(k) = kind {
            // A consent banner is never the content, even when it says more than a short
            // post; but a wrapper of most of the page with a `cookies-accepted` class is the
            // page.
            let banner = k == Boiler::Cookie && chars[i] * 2 < chars[0];
            if opts.drop & k.bit() != 0 && (banner || !holds_most(i)) {
                flags[i] |= REMOVED;
                if matches!(
                    k,
                    Boiler::Related | Boiler::Share | Boiler::Comments | Boiler::Ads
                ) {
                    flags[i] |= BOXED;
                }
                if matches!(k, Boiler::Related | Boiler::Share | Boiler::Comments) {
                    flags[i] |= INTRO | NAMED_BOX;
                }
                ex.boilerplate_nodes += 1;
            }
        }
    }
}

/// Pass 3: block values and subtree scores over what is left; `chars`, `own`, `own_link`
/// and `prose` are counted again without the boilerplate. Returns link characters and
/// scores per subtree.
fn score_blocks(dom: &Dom, flags: &[u8], f: &mut Figures) -> (Vec<u32>, Vec<f32>) {
    let nodes = &dom.nodes;
    let n = nodes.len();
    let Figures {
        block,
        tchars,
        chars,
        own,
        own_link,
        prose,
        ..
    } = f;
    let mut link = vec![0u32; n];
    let mut score = vec![0f32; n];
    for v in [&mut *chars, &mut *own, &mut *own_link] {
        v.iter_mut().for_each(|c| *c = 0);
    }
    for i in 1..n {
        if flags[i] & REMOVED == 0 && nodes[i].tag == Tag::Text {
            let c = tchars[i];
            let b = block[i] as usize;
            own[b] += c;
            chars[i] = c;
            if flags[i] & LINK != 0 {
                own_link[b] += c;
                link[i] = c;
            }
        }
    }
    for i in (1..n).rev() {
        if flags[i] & REMOVED != 0 {
            continue;
        }
        prose[i] = 0;
        if own[i] > 0 {
            score[i] += block_value(own[i], own_link[i]);
            if is_prose(own[i], own_link[i]) {
                prose[i] = own[i] - own_link[i];
            }
        }
        let p = nodes[i].parent as usize;
        score[p] += score[i];
        chars[p] += chars[i];
        link[p] += link[i];
    }
    // prose[] is only summed once all children are in: add children to parents afterwards.
    prose[0] = 0;
    for i in (1..n).rev() {
        if flags[i] & REMOVED == 0 {
            let p = nodes[i].parent as usize;
            prose[p] += prose[i];
        }
    }
    (link, score)
}

/// The main content: the best-scoring element, or a container inside or around it that
/// names itself the article body and holds most of the prose; the whole page (`0`) when
/// nothing scores or `whole_page` is set.
fn choose_root(dom: &Dom, opts: &Options, flags: &[u8], score: &[f32], prose: &[u32]) -> usize {
    let nodes = &dom.nodes;
    let n = nodes.len();
    // Choose the main content: the best-scoring element.
    let mut root = 0usize;
    let mut best = f32::MIN;
    for i in 1..n {
        if flags[i] & REMOVED == 0 && nodes[i].tag != Tag::Text && score[i] > best {
            best = score[i];
            root = i;
        }
    }
    if best <= 0.0 || opts.whole_page {
        root = 0;
    }
    // A container that names itself the article body (`entry-content`, `article-body`,
    // `itemprop=articleBody`) and holds most of the prose is the content, whether it lies
    // inside the best-scoring element (which then also held boilerplate) or around it.
    if root != 0 && !opts.whole_page {
        let total = prose[0];
        let mut body = NONE;
        for i in 1..n {
            if flags[i] & REMOVED == 0
                && nodes[i].tag != Tag::Text
                && total > 0
                && (prose[i] as f32) >= BODY_PROSE_SHARE * total as f32
                && names_body(dom, i as u32)
            {
                body = i as u32; // the deepest such container wins (later in document order)
            }
        }
        if body != NONE {
            root = body as usize;
        }
    }
    root
}

/// The parts of the content, in document order: the root, and siblings or same-class boxes
/// that hold the rest of a body the layout split.
fn join_parts(
    dom: &Dom,
    opts: &Options,
    root: usize,
    flags: &[u8],
    f: &Figures,
    link: &[u32],
    score: &[f32],
) -> Vec<usize> {
    let nodes = &dom.nodes;
    let n = nodes.len();
    let (chars, prose) = (&f.chars, &f.prose);
    // Content split over siblings (a lead in its own box, the body continued after an
    // inline ad, a layout that puts each section in its own column): siblings of the chosen
    // element and of its nearest ancestors that hold prose and score positively join it, in
    // document order; their negative-scoring neighbours (menus, link boxes) stay out.
    let mut parts = vec![root];
    let mut a = root;
    for _ in 0..SIBLING_LEVELS {
        if a == 0 || opts.whole_page || nodes[a].parent == NONE || nodes[a].parent == 0 {
            break;
        }
        let p = nodes[a].parent;
        for c in dom.children(p).map(|c| c as usize) {
            if c == a || flags[c] & REMOVED != 0 || nodes[c].tag == Tag::Text {
                continue;
            }
            let prose_box = prose[c] > 0 && score[c] > SIBLING_SHARE * score[root];
            // Inside an article, a list or a table of plain text beside the body (a recipe's
            // ingredients, a product's data sheet) is part of it, short lines and all.
            let data_box = flags[c] & IN_ARTICLE != 0
                && chars[c] >= 40
                && link[c] * 5 < chars[c]
                && holds_data(dom, c);
            if prose_box || data_box {
                parts.push(c);
            }
        }
        a = p as usize;
    }
    // A body that the layout cuts into several boxes of one kind (ads or a share bar between
    // them) repeats the chosen element's tag and class: every such box with prose joins.
    if root != 0 {
        if let Some(class) = dom
            .attr(root as u32, AttrKey::Class)
            .filter(|c| !c.trim().is_empty())
        {
            // Nodes inside or above a part already chosen (parts are disjoint subtrees).
            let mut covered = vec![false; n];
            for &r in &parts {
                let e = dom.subtree_end(r as u32) as usize;
                covered[r..e].iter_mut().for_each(|c| *c = true);
                let mut a = nodes[r].parent;
                while a != NONE && !covered[a as usize] {
                    covered[a as usize] = true;
                    a = nodes[a as usize].parent;
                }
            }
            let mut extra = Vec::new();
            // Candidates come in document order: one inside the last box taken is skipped.
            let mut taken_until = 0usize;
            for i in 1..n {
                if i >= taken_until
                    && !covered[i]
                    && flags[i] & REMOVED == 0
                    && nodes[i].tag == nodes[root].tag
                    && prose[i] > 0
                    && dom.attr(i as u32, AttrKey::Class) == Some(class)
                {
                    extra.push(i);
                    taken_until = dom.subtree_end(i as u32) as usize;
                }
            }
            parts.extend(extra);
        }
    }
    parts.sort_unstable();
    parts
}

/// Renders the parts (after the headline, when the content lacks one) as text.
#[allow(clippy::too_many_arguments)]
fn render_content(
    dom: &Dom,
    opts: &Options,
    root: usize,
    parts: &[usize],
    flags: &[u8],
    chars: &[u32],
    link: &[u32],
    ex: &mut Extraction,
) -> String {
    let nodes = &dom.nodes;
    let mut out = Out::new(opts.markdown);
    // The headline: the last <h1> before the content, when the content does not hold one.
    let mut headline = NONE as usize;
    if opts.headline && root != 0 {
        let end = dom.subtree_end(root as u32) as usize;
        let inside = (root..end).any(|i| nodes[i].tag == Tag::H1 && flags[i] & REMOVED == 0);
        if !inside {
            if let Some(h) = (1..root).rev().find(|&i| {
                nodes[i].tag == Tag::H1
                    && flags[i] & REMOVED == 0
                    && chars[i] >= 3
                    && link[i] * 2 < chars[i]
            }) {
                render(dom, h as u32, flags, opts, &mut out, ex);
                out.block();
                headline = h;
            }
        }
    }
    // (A headline the restore also added is written once.)
    for &r in parts.iter().filter(|&&r| r != headline) {
        render(dom, r as u32, flags, opts, &mut out, ex);
        out.block();
    }
    out.finish()
}

/// Inside the chosen content, drops link lists (teasers, "related" boxes, tag lists: blocks
/// whose text is mostly link text) and the short lead-in just before one ("Read more:", a
/// heading over the list).
fn prune_link_lists(dom: &Dom, root: usize, flags: &mut [u8], chars: &[u32], link: &[u32]) {
    let nodes = &dom.nodes;
    let end = dom.subtree_end(root as u32) as usize;
    // The previous element sibling of each node, found in document order.
    let mut last_elem = vec![NONE; end - root];
    for i in root + 1..end {
        let node = &nodes[i];
        let p = node.parent as usize;
        flags[i] |= flags[p] & REMOVED;
        if node.tag == Tag::Text {
            continue;
        }
        let prev = last_elem[p - root];
        last_elem[p - root] = i as u32;
        // The heading of a box removed as boilerplate ("Related articles", "3 comments").
        if flags[i] & BOXED != 0 && flags[p] & REMOVED == 0 && prev != NONE {
            let pv = prev as usize;
            if nodes[pv].tag.is_heading() {
                flags[pv] |= REMOVED;
            }
        }
        if flags[i] & (REMOVED | PRE) != 0 || node.tag.is_inline() || chars[i] == 0 {
            continue;
        }
        if ((link[i] as f32) > LINK_LIST_DENSITY * chars[i] as f32 && chars[i] < 4000)
            || (i != root && is_teaser_group(dom, i, chars, link))
        {
            flags[i] |= REMOVED | INTRO;
            if prev != NONE {
                let pv = prev as usize;
                let lead_in = nodes[pv].tag.is_heading()
                    || (chars[pv] < 60 && link[pv] == 0 && ends_with_colon(dom, pv));
                if lead_in && flags[pv] & REMOVED == 0 {
                    flags[pv] |= REMOVED;
                }
            }
        }
    }
}

/// One block of the content as it will be written: its element, heading level (0: not a
/// heading) and visible characters.
struct Line {
    node: usize,
    level: u8,
    chars: u32,
    /// The text, kept only while the line is short (dates, credits, scraps).
    text: String,
    /// A removed box of related links, comments or share buttons follows.
    intro: bool,
    /// ... one that its markup named so.
    named_box: bool,
}

/// Lines up to this many visible characters at the end of the content are scraps unless they
/// end a sentence.
const TRAILING_SCRAP: u32 = 25;

/// Whether a block is an item of a list or a table, or code: short lines are their nature.
fn in_list_or_table(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Li | Tag::Td | Tag::Th | Tag::Dd | Tag::Dt | Tag::Tr | Tag::Pre | Tag::Caption
    )
}

/// Whether a line is a scrap: a few words that end no sentence and hold no figure, outside
/// lists, tables and code (whose items are short by nature).
fn is_scrap(l: &Line, nodes: &[Node]) -> bool {
    l.level == 0
        && l.chars <= TRAILING_SCRAP
        && !in_list_or_table(nodes[l.node].tag)
        && !ends_sentence(&l.text)
        && !l.text.bytes().any(|b| b.is_ascii_digit())
}

/// Whether a line ends like a sentence (or a quotation, or a parenthesis).
fn ends_sentence(t: &str) -> bool {
    t.trim_end().ends_with([
        '.', ',', '!', '?', '"', '\u{201c}', '\u{201d}', '\u{bb}', ')', '\u{2026}',
    ])
}

/// Lines up to this many visible characters are looked at as possible date lines.
const DATE_LINE_CHARS: u32 = 40;
/// Lines are kept as text up to this many visible characters (for the checks on short lines).
const LINE_TEXT_CHARS: u32 = 120;
/// A line this short with a copyright sign is a credit ("Photo: X / © Agency").
const CREDIT_LINE_CHARS: u32 = 120;

/// Whether a short line is a date stamp: a numeric date or time ("04.05.2021",
/// "2020-04-03", "12:35") with at most three words around it ("Published: 03.04.2020").
pub(crate) fn is_date_line(t: &str) -> bool {
    let words = t
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_alphabetic()))
        .count();
    if words > 3 {
        return false;
    }
    // Digit groups and the separator before each: a date is d.d.d / d/d/d / d-d-d (day or
    // year first), a time d:d.
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let mut groups = 0;
        let mut sep = 0u8;
        let mut first = 0;
        let mut j = i;
        loop {
            let s = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let len = j - s;
            if len == 0 || len > 4 {
                break;
            }
            groups += 1;
            if groups == 1 {
                first = len;
            }
            if groups == 2 && sep == b':' && len == 2 && first <= 2 {
                // A clock time: hours to 23, minutes to 59 (not a score of 50:50).
                let num = |s: usize, e: usize| {
                    t[s..e]
                        .bytes()
                        .fold(0u32, |v, d| v * 10 + (d - b'0') as u32)
                };
                let (h, m) = (num(i, i + first), num(j - 2, j));
                if h <= 23 && m <= 59 {
                    return true;
                }
                break;
            }
            // Day, month, year or year, month, day (not a phone number: 158-23-2012).
            if groups == 2 && len > 2 {
                break;
            }
            if groups == 3 {
                return sep != b':'
                    && ((first <= 2 && (len == 2 || len == 4)) || (first == 4 && len <= 2));
            }
            match b.get(j) {
                Some(&c @ (b'.' | b'/' | b'-' | b':')) if sep == 0 || sep == c => {
                    sep = c;
                    j += 1;
                    // "04. 05. 2021"
                    if b.get(j) == Some(&b' ') && c == b'.' {
                        j += 1;
                    }
                }
                _ => break,
            }
        }
        i = j.max(i + 1);
    }
    false
}

/// Headings longer than this (visible characters) are a lead set in large type, not a title.
const SHORT_HEADING: u32 = 50;

/// Inline styling between text node `i` and its block `b` (a few levels at most): (emphasis,
/// small print).
fn inline_style(nodes: &[Node], i: usize, b: usize) -> (bool, bool) {
    let (mut styled, mut small) = (false, false);
    let mut a = nodes[i].parent;
    for _ in 0..8 {
        if a == NONE || a as usize == b {
            break;
        }
        match nodes[a as usize].tag {
            Tag::Em | Tag::I | Tag::Strong | Tag::B => styled = true,
            Tag::Small | Tag::Sub | Tag::Sup => small = true,
            _ => {}
        }
        a = nodes[a as usize].parent;
    }
    (styled, small)
}

fn heading_level(tag: Tag) -> u8 {
    match tag {
        Tag::H1 => 1,
        Tag::H2 => 2,
        Tag::H3 => 3,
        Tag::H4 => 4,
        Tag::H5 => 5,
        Tag::H6 => 6,
        _ => 0,
    }
}

/// Drops what introduces nothing: a heading whose section is empty (the next line is a
/// heading of the same or a higher level, or the content ends) and a short lead-in ending in
/// `:` that ends the content. They are what is left of a box removed after them ("More on
/// this topic", "About the author", "Share this:").
fn drop_dangling(
    dom: &Dom,
    parts: &[usize],
    flags: &mut [u8],
    block: &[u32],
    tchars: &[u32],
    chars: &[u32],
) {
    let nodes = &dom.nodes;
    let mut lines: Vec<Line> = Vec::new();
    for &r in parts {
        let end = dom.subtree_end(r as u32) as usize;
        let mut i = r;
        while i < end {
            if flags[i] & REMOVED != 0 && i != r {
                if flags[i] & INTRO != 0 {
                    if let Some(l) = lines.last_mut() {
                        l.intro = true;
                        l.named_box |= flags[i] & NAMED_BOX != 0;
                    }
                }
                i = dom.subtree_end(i as u32) as usize;
                continue;
            }
            if nodes[i].tag == Tag::Text && tchars[i] > 0 {
                let b = block[i] as usize;
                let t = dom.text_of(&nodes[i]);
                match lines.last_mut() {
                    Some(l) if l.node == b => {
                        l.chars += tchars[i];
                        if l.chars <= LINE_TEXT_CHARS {
                            l.text.push(' ');
                            l.text.push_str(t);
                        }
                    }
                    _ => lines.push(Line {
                        intro: false,
                        named_box: false,
                        node: b,
                        level: heading_level(nodes[b].tag),
                        chars: tchars[i],
                        text: if tchars[i] <= LINE_TEXT_CHARS {
                            t.to_string()
                        } else {
                            String::new()
                        },
                    }),
                }
            }
            i += 1;
        }
    }
    // Content that is one heading, or headings only, is left as it is.
    if lines.iter().all(|l| l.level > 0) {
        return;
    }
    let mut keep = vec![true; lines.len()];
    // Credits anywhere: a short line with a copyright sign.
    for (j, l) in lines.iter().enumerate() {
        if l.level == 0
            && l.chars <= CREDIT_LINE_CHARS
            && !in_list_or_table(nodes[l.node].tag)
            && l.text.contains('\u{a9}')
        {
            keep[j] = false;
        }
    }
    // Date stamps among the first and the last lines (a byline's date, "Updated 12:35").
    let nl = lines.len();
    for j in (0..nl.min(2)).chain(nl.saturating_sub(2)..nl) {
        let l = &lines[j];
        if l.chars <= DATE_LINE_CHARS
            && !in_list_or_table(nodes[l.node].tag)
            && is_date_line(&l.text)
        {
            keep[j] = false;
        }
    }
    // A leading scrap (a section label, a back link) before the first heading or text.
    if let Some(l) = lines.first() {
        if nl > 1 && is_scrap(l, nodes) {
            keep[0] = false;
        }
    }
    // Trailing lead-ins and headings, from the end.
    let mut k = lines.len();
    while k > 1 {
        let l = &lines[k - 1];
        if !keep[k - 1] {
            k -= 1;
            continue;
        }
        let lead_in = l.level == 0 && l.chars < 60 && ends_with_colon(dom, l.node);
        // A scrap of a few words after the text that ends no sentence: a button label, an
        // "Advertisement" tag, a back link.
        let scrap = is_scrap(l, nodes);
        if (l.level > 0 && l.chars <= SHORT_HEADING) || lead_in || scrap {
            keep[k - 1] = false;
            k -= 1;
        } else {
            break;
        }
    }
    // Empty sections: the next kept line is a heading of the same or a higher level, or
    // what followed was a box removed as related links, comments or share buttons.
    for j in 0..k {
        let l = lines[j].level;
        if l > 0
            && lines[j].chars <= SHORT_HEADING
            && (lines[j].intro
                || lines[j + 1..k]
                    .first()
                    .is_some_and(|n| n.level > 0 && n.level <= l))
        {
            keep[j] = false;
        }
        // "Share this article:" just before the removed share bar.
        if l == 0
            && lines[j].named_box
            && lines[j].chars < 60
            && ends_with_colon(dom, lines[j].node)
        {
            keep[j] = false;
        }
    }
    for (l, keep) in lines.iter().zip(keep) {
        // Only an element that is this one line goes: a block whose own text is followed by
        // more blocks (`<div>date<p>...</p></div>`) stays.
        if !keep && chars[l.node] == l.chars {
            flags[l.node] |= REMOVED;
        }
    }
}

/// Content with more lines than this is not scored by the block model.
const MODEL_MAX_LINES: usize = 2000;

/// Runs the block scorer over the lines of the chosen content (after the rules have pruned
/// it) and drops the lines it finds to be boilerplate.
#[allow(clippy::too_many_arguments)]
fn score_lines(
    dom: &Dom,
    root: usize,
    parts: &[usize],
    flags: &mut [u8],
    block: &[u32],
    tchars: &[u32],
    chars: &[u32],
    opts: &Options,
    ex: &mut Extraction,
) {
    let nodes = &dom.nodes;
    let root_end = dom.subtree_end(root as u32) as usize;
    let mut lines: Vec<LineStats> = Vec::new();
    for &r in parts {
        let end = dom.subtree_end(r as u32) as usize;
        let mut i = r;
        while i < end {
            if flags[i] & REMOVED != 0 && i != r {
                i = dom.subtree_end(i as u32) as usize;
                continue;
            }
            if nodes[i].tag == Tag::Text && tchars[i] > 0 {
                let b = block[i] as usize;
                let t = dom.text_of(&nodes[i]);
                if lines.last().is_none_or(|l| l.node != b) {
                    // The model's cost is per line: content of thousands of lines (a data
                    // dump, a 10 MB page) is left to the rules.
                    if lines.len() >= MODEL_MAX_LINES && !opts.collect_lines {
                        return;
                    }
                    lines.push(LineStats {
                        node: b,
                        level: heading_level(nodes[b].tag),
                        in_root: (root..root_end).contains(&b) || root == 0,
                        ..LineStats::default()
                    });
                }
                let (styled, small) = inline_style(nodes, i, b);
                let l = lines.last_mut().expect("pushed above");
                l.add_text(t, tchars[i], flags[i] & LINK != 0, styled, small);
                if opts.collect_lines {
                    if !l.text.is_empty() {
                        l.text.push(' ');
                    }
                    l.text.extend(t.split_whitespace().flat_map(|w| [w, " "]));
                    while l.text.ends_with(' ') {
                        l.text.pop();
                    }
                }
            }
            i += 1;
        }
    }
    for l in &mut lines {
        l.whole = chars[l.node] == l.chars;
    }
    if lines.is_empty() {
        return;
    }
    // Lines come in document order and parts are sorted: the part of each line is found by a
    // pointer that only moves forward (linear in lines + parts).
    let mut k = 0usize;
    let mut cache = blocks::ContextCache::default();
    let ctx: Vec<_> = lines
        .iter()
        .map(|l| {
            while k + 1 < parts.len() && parts[k + 1] <= l.node {
                k += 1;
            }
            let r = parts
                .get(k)
                .copied()
                .filter(|&r| r <= l.node)
                .unwrap_or(root);
            blocks::context(dom, l.node, r, &mut cache)
        })
        .collect();
    let xs = blocks::features(dom, &lines, &ctx);
    // Content that is a single line stays whole: the model prunes, it does not empty a page.
    let prunable = lines.len() > 1;
    for (l, x) in lines.into_iter().zip(xs) {
        let p = opts.model.as_ref().map_or(1.0, |m| m.prob(&x));
        let drop = prunable
            && l.whole
            && opts
                .model
                .as_ref()
                .is_some_and(|m| p < m.cut(&x) && flags[l.node] & REMOVED == 0);
        if drop {
            flags[l.node] |= REMOVED;
            ex.model_dropped += 1;
        }
        if opts.collect_lines {
            ex.lines.push(ScoredLine {
                text: l.text,
                x,
                p,
                whole: l.whole,
                dropped: drop,
            });
        }
    }
}

/// The restore ([`super::restore`]): scores the lines around the chosen content (up to
/// [`restore::MAX_UP`] levels above the root, the [`restore::MAX_LINES`] nearest on either
/// side, not removed) and returns the block elements of those it adds back (a whole element
/// scoring at or above its threshold).
#[allow(clippy::too_many_arguments)]
fn restore_lines(
    dom: &Dom,
    root: usize,
    parts: &[usize],
    flags: &[u8],
    block: &[u32],
    tchars: &[u32],
    chars: &[u32],
    opts: &Options,
    ex: &mut Extraction,
) -> Vec<usize> {
    let nodes = &dom.nodes;
    // The root's ancestors (with their subtree ends), nearest first.
    let mut anc = vec![(root, dom.subtree_end(root as u32) as usize)];
    let mut a = root;
    while anc.len() <= restore::MAX_UP {
        let p = nodes[a].parent;
        if p == NONE || p == 0 {
            break;
        }
        a = p as usize;
        anc.push((a, dom.subtree_end(p) as usize));
    }
    let (top, top_end) = *anc.last().expect("holds the root");
    if top == root {
        // Nothing around the root but the document itself.
        return Vec::new();
    }
    let mut lines: Vec<LineStats> = Vec::new();
    let (mut i, mut k) = (top + 1, 0usize);
    while i < top_end {
        while k < parts.len() && parts[k] < i {
            k += 1;
        }
        if parts.get(k) == Some(&i) || flags[i] & REMOVED != 0 {
            i = dom.subtree_end(i as u32) as usize;
            continue;
        }
        if nodes[i].tag == Tag::Text && tchars[i] > 0 {
            let b = block[i] as usize;
            if lines.last().is_none_or(|l| l.node != b) {
                lines.push(LineStats {
                    node: b,
                    level: heading_level(nodes[b].tag),
                    ..LineStats::default()
                });
            }
            let (styled, small) = inline_style(nodes, i, b);
            let l = lines.last_mut().expect("pushed above");
            let t = dom.text_of(&nodes[i]);
            l.add_text(t, tchars[i], flags[i] & LINK != 0, styled, small);
            if opts.collect_lines {
                for w in t.split_whitespace() {
                    if !l.text.is_empty() {
                        l.text.push(' ');
                    }
                    l.text.push_str(w);
                }
            }
        }
        i += 1;
    }
    // The nearest lines on either side.
    let split = lines.partition_point(|l| l.node < root);
    let from = split.saturating_sub(restore::MAX_LINES);
    let to = (split + restore::MAX_LINES).min(lines.len());
    let lines: Vec<LineStats> = lines.drain(from..to).collect();
    let split = split - from;
    if lines.is_empty() {
        return Vec::new();
    }
    let is_prose = |l: &LineStats| is_prose(l.chars, l.link);
    let mut places = vec![restore::Place::default(); lines.len()];
    // Between a line and the content: the lines after it (before the content) or before it
    // (after the content), counted outward from the content.
    let mut fill = |before: bool, order: &mut dyn Iterator<Item = usize>| {
        let (mut n, mut c, mut p) = (0u32, 0u32, 0u32);
        for j in order {
            places[j] = restore::Place {
                before,
                lines_between: n,
                chars_between: c,
                prose_between: p,
                ..places[j]
            };
            n += 1;
            c += lines[j].chars;
            p += is_prose(&lines[j]) as u32;
        }
    };
    fill(true, &mut (0..split).rev());
    fill(false, &mut (split..lines.len()));
    let mut cache = blocks::ContextCache::default();
    let ctx: Vec<_> = lines
        .iter()
        .zip(&mut places)
        .map(|(l, pl)| {
            let up = anc
                .iter()
                .position(|&(s, e)| (s..e).contains(&l.node))
                .unwrap_or(anc.len() - 1);
            pl.up = up as u8;
            pl.h1 = nodes[l.node].tag == Tag::H1;
            blocks::context(dom, l.node, anc[up].0, &mut cache)
        })
        .collect();
    let mut xs = blocks::features(dom, &lines, &ctx);
    let figures = restore::ContentFigures {
        chars: ex.content_chars as u32,
        prose: ex.content_prose as u32,
        page_prose: ex.page_prose as u32,
    };
    restore::extend(&mut xs, &lines, &places, figures);
    let mut out = Vec::new();
    for (l, x) in lines.into_iter().zip(xs) {
        let whole = chars[l.node] == l.chars;
        let p = opts.restore.as_ref().map_or(0.0, |m| m.prob(&x));
        let add = whole && opts.restore.as_ref().is_some_and(|m| p >= m.cut(&x));
        if add {
            out.push(l.node);
            ex.restored += 1;
        }
        if opts.collect_lines {
            ex.restore_lines.push(ScoredLine {
                text: l.text,
                x,
                p,
                whole,
                dropped: add,
            });
        }
    }
    out
}

/// Every line of the page in document order, placed by the flags after each pass (`seen`:
/// after hard removal, after boilerplate removal, after the rules' pruning, at the end).
fn page_lines(
    dom: &Dom,
    root: usize,
    parts: &[usize],
    seen: &[&[u8]; 4],
    block: &[u32],
    tchars: &[u32],
) -> Vec<PageLine> {
    let nodes = &dom.nodes;
    let spans: Vec<(usize, usize)> = parts
        .iter()
        .map(|&r| (r, dom.subtree_end(r as u32) as usize))
        .collect();
    // The root's ancestors with their subtree ends, nearest first.
    let mut anc = Vec::new();
    let mut a = root as u32;
    while a != NONE {
        anc.push((a as usize, dom.subtree_end(a) as usize));
        if a == 0 {
            break;
        }
        a = nodes[a as usize].parent;
    }
    // Removed after each pass: marked or under a marked ancestor (parents come first).
    let gone: Vec<Vec<bool>> = seen
        .iter()
        .map(|f| {
            let mut g = vec![false; nodes.len()];
            for i in 1..nodes.len() {
                g[i] = f[i] & REMOVED != 0 || g[nodes[i].parent as usize];
            }
            g
        })
        .collect();
    let mut out: Vec<PageLine> = Vec::new();
    for i in 1..nodes.len() {
        if nodes[i].tag != Tag::Text {
            continue;
        }
        let t = dom.text_of(&nodes[i]);
        if t.trim().is_empty() {
            continue;
        }
        let b = block[i] as usize;
        if out.last().is_none_or(|l| l.node != b) {
            let inside = root == 0 || spans.iter().any(|&(s, e)| (s..e).contains(&b));
            let removed = |k: usize| gone[k][i];
            let place = if removed(0) || tchars[i] == 0 {
                Place::Hidden
            } else if removed(1) {
                if inside {
                    Place::BoilerInside
                } else {
                    Place::BoilerOutside
                }
            } else if !inside {
                Place::Outside
            } else if removed(2) {
                Place::Pruned
            } else if removed(3) {
                Place::ModelPruned
            } else {
                Place::Content
            };
            let up = anc
                .iter()
                .position(|&(s, e)| (s..e).contains(&b))
                .unwrap_or(anc.len());
            out.push(PageLine {
                text: String::new(),
                place,
                node: b,
                before: b < root,
                up: up.min(255) as u8,
                level: heading_level(nodes[b].tag),
            });
        }
        let l = out.last_mut().expect("pushed above");
        for w in t.split_whitespace() {
            if !l.text.is_empty() {
                l.text.push(' ');
            }
            l.text.push_str(w);
        }
    }
    out
}

/// Whether an element is or holds a list or a table (looked for among its first nodes).
fn holds_data(dom: &Dom, i: usize) -> bool {
    let end = dom.subtree_end(i as u32) as usize;
    (i..end)
        .take(256)
        .any(|k| matches!(dom.nodes[k].tag, Tag::Ul | Tag::Ol | Tag::Dl | Tag::Table))
}

/// Whether an element is a group of teasers: at least three child items, nearly all of them
/// holding a link, short on average, and a third or more of the text in links (a "more on
/// this" box of headline links with a line of standfirst each).
fn is_teaser_group(dom: &Dom, i: usize, chars: &[u32], link: &[u32]) -> bool {
    if (link[i] as f32) < TEASER_LINK_SHARE * chars[i] as f32 {
        return false;
    }
    let (mut items, mut linked) = (0u32, 0u32);
    for c in dom.children(i as u32).map(|c| c as usize) {
        if dom.nodes[c].tag == Tag::Text || chars[c] == 0 {
            continue;
        }
        items += 1;
        if link[c] > 0 {
            linked += 1;
        }
    }
    items >= 3 && linked * 10 >= items * 8 && chars[i] < TEASER_ITEM_CHARS * items
}

/// A teaser group's share of link text, and the mean characters of one of its items.
const TEASER_LINK_SHARE: f32 = 0.4;
const TEASER_ITEM_CHARS: u32 = 150;

/// Whether the text of a block ends with a colon (a lead-in such as "See also:").
fn ends_with_colon(dom: &Dom, i: usize) -> bool {
    let end = dom.subtree_end(i as u32) as usize;
    // Looks at the last few nodes only: a lead-in is short, and the scan stays bounded.
    (i..end)
        .rev()
        .take(64)
        .map(|k| &dom.nodes[k])
        .filter(|n| n.tag == Tag::Text)
        .map(|n| dom.text_of(n).trim_end())
        .find(|t| !t.is_empty())
        .is_some_and(|t| t.ends_with(':'))
}

/// Whether an element's class, id or `itemprop` names it the body of an article or post.
fn names_body(dom: &Dom, i: u32) -> bool {
    if dom
        .attr(i, AttrKey::Itemprop)
        .is_some_and(|v| v.contains("articleBody") || v.contains("articlebody"))
    {
        return true;
    }
    [AttrKey::Class, AttrKey::Id].into_iter().any(|key| {
        dom.attr(i, key).is_some_and(|v| {
            v.split_ascii_whitespace().any(|item| {
                let mut head = false;
                let mut hit = false;
                super::hints::for_words(item, |w| {
                    if matches!(w, "entry" | "post" | "article" | "story" | "blog" | "news") {
                        head = true;
                    } else if head && matches!(w, "content" | "body" | "text") {
                        hit = true;
                    }
                });
                hit
            })
        })
    })
}

/// Whether a block's text reads as running prose: long enough, and not mostly links.
fn is_prose(chars: u32, link: u32) -> bool {
    chars >= 80 && (link as f32) < 0.3 * chars as f32
}

/// The value of one block of text: prose counts for it, link text and each block's fixed cost
/// against it.
fn block_value(chars: u32, link: u32) -> f32 {
    let plain = (chars - link.min(chars)) as f32;
    // Links in running text are normal; beyond a third of the block they mark a link list.
    let excess = (link as f32 - 0.3 * chars as f32).max(0.0);
    plain - 3.0 * excess - BLOCK_COST
}

/// The boilerplate kind an element declares, if any.
fn boiler_kind(dom: &Dom, i: u32, node: &Node, flags: u8) -> Option<Boiler> {
    if let Some(k) = tag_hint(node.tag) {
        // A header inside an article holds its headline and byline.
        if !(k == Boiler::Header && flags & IN_ARTICLE != 0) {
            return Some(k);
        }
    }
    // A figure around a picture: what it says besides the picture is a caption or a credit.
    // Figures that hold code, a table or a quotation are content.
    if node.tag == Tag::Figure {
        let end = dom.subtree_end(i);
        let small = end - i <= 64;
        let picture =
            small && (i + 1..end).any(|k| matches!(dom.node(k).tag, Tag::Img | Tag::Picture));
        let content = (i + 1..end).take(64).any(|k| {
            matches!(
                dom.node(k).tag,
                Tag::Pre | Tag::Table | Tag::Blockquote | Tag::Code | Tag::Math
            )
        });
        if picture && !content {
            return Some(Boiler::Captions);
        }
    }
    if node.start == node.end {
        return None;
    }
    if let Some(k) = dom.attr(i, AttrKey::Role).and_then(role_hint) {
        return Some(k);
    }
    for key in [AttrKey::Id, AttrKey::Class] {
        if let Some(k) = dom.attr(i, key).and_then(class_hint) {
            if !(k == Boiler::Header && flags & IN_ARTICLE != 0) {
                return Some(k);
            }
        }
    }
    None
}

/// Writes the subtree of `root` (skipping removed nodes) to `out`.
fn render(dom: &Dom, root: u32, flags: &[u8], opts: &Options, out: &mut Out, ex: &mut Extraction) {
    let nodes = &dom.nodes;
    // (node, exiting)
    let mut stack: Vec<(u32, bool)> = vec![(root, false)];
    while let Some((i, exiting)) = stack.pop() {
        let node = &nodes[i as usize];
        if flags[i as usize] & REMOVED != 0 && i != root {
            continue;
        }
        let tag = node.tag;
        if exiting {
            leave(tag, out, opts);
            continue;
        }
        match tag {
            Tag::Text => {
                let t = dom.text_of(node);
                if flags[i as usize] & PRE != 0 {
                    out.raw(t);
                } else {
                    out.text(t);
                }
                continue;
            }
            Tag::Br => {
                out.line_break();
                continue;
            }
            Tag::Hr => {
                out.block();
                continue;
            }
            Tag::Img => {
                if let Some(tex) = math_image_alt(dom, i) {
                    out.inline_math(tex);
                    ex.math += 1;
                }
                continue;
            }
            Tag::Math => {
                if let Some((tex, display)) = math_tex(dom, i) {
                    if display {
                        out.display_math(&tex);
                    } else {
                        out.inline_math(&tex);
                    }
                    ex.math += 1;
                    continue;
                }
            }
            Tag::Script => {
                let mut tex = String::new();
                for c in dom.children(i) {
                    tex.push_str(dom.text_of(&nodes[c as usize]));
                }
                let display = dom
                    .attr(i, AttrKey::Type)
                    .is_some_and(|t| t.contains("mode=display"));
                if display {
                    out.display_math(tex.trim());
                } else {
                    out.inline_math(tex.trim());
                }
                ex.math += 1;
                continue;
            }
            Tag::Pre | Tag::Listing | Tag::Xmp | Tag::Plaintext
                if flags[node.parent as usize] & PRE == 0 =>
            {
                ex.code_blocks += 1;
            }
            _ => {}
        }
        enter(node, out, opts);
        stack.push((i, true));
        // Children in reverse so that they pop in order.
        let start = stack.len();
        stack.extend(dom.children(i).map(|c| (c, false)));
        stack[start..].reverse();
    }
}

fn enter(node: &Node, out: &mut Out, opts: &Options) {
    let tag = node.tag;
    match tag {
        Tag::Tr => {
            out.block();
            out.rows.push(0);
        }
        Tag::Td | Tag::Th => {
            // Cells after the first of a row are tab-separated.
            match out.rows.last_mut() {
                Some(k) if *k > 0 => {
                    *k += 1;
                    out.cell();
                }
                Some(k) => {
                    *k = 1;
                    out.block();
                }
                None => out.block(),
            }
        }
        Tag::Pre | Tag::Listing | Tag::Xmp | Tag::Plaintext => {
            out.block();
            if opts.markdown {
                out.marker("```");
                out.line_break();
            }
            out.pre_start();
        }
        t if t.is_heading() => {
            out.block();
            if opts.markdown {
                let level = match t {
                    Tag::H1 => 1,
                    Tag::H2 => 2,
                    Tag::H3 => 3,
                    Tag::H4 => 4,
                    Tag::H5 => 5,
                    _ => 6,
                };
                out.marker(&"#".repeat(level));
                out.marker(" ");
            }
        }
        Tag::Li => {
            out.block();
            if opts.markdown {
                out.marker("- ");
            }
        }
        Tag::B | Tag::Strong if opts.markdown => out.inline_marker("**"),
        Tag::I | Tag::Em if opts.markdown => out.inline_marker("*"),
        Tag::Code if opts.markdown && !out.in_pre() => out.inline_marker("`"),
        Tag::Blockquote => {
            out.block();
            if opts.markdown {
                out.marker("> ");
            }
        }
        t if is_block(t) => out.block(),
        _ => {}
    }
}

fn leave(tag: Tag, out: &mut Out, opts: &Options) {
    match tag {
        Tag::Pre | Tag::Listing | Tag::Xmp | Tag::Plaintext => {
            out.pre_end();
            if opts.markdown {
                out.line_break();
                out.marker("```");
            }
            out.block();
        }
        Tag::B | Tag::Strong if opts.markdown => out.inline_marker("**"),
        Tag::I | Tag::Em if opts.markdown => out.inline_marker("*"),
        Tag::Code if opts.markdown && !out.in_pre() => out.inline_marker("`"),
        Tag::Td | Tag::Th => {}
        Tag::Tr => {
            out.rows.pop();
            out.block();
        }
        t if is_block(t) => out.block(),
        _ => {}
    }
}

/// TeX of a MathML `<math>` element: its `application/x-tex` annotation, else its `alttext`.
fn math_tex(dom: &Dom, i: u32) -> Option<(String, bool)> {
    let end = dom.subtree_end(i);
    let mut tex = None;
    for a in i + 1..end {
        let n = dom.node(a);
        if matches!(n.tag, Tag::Annotation)
            && dom
                .attr(a, AttrKey::Encoding)
                .is_some_and(|e| e.to_ascii_lowercase().contains("tex"))
        {
            let mut s = String::new();
            for c in dom.children(a) {
                s.push_str(dom.text_of(dom.node(c)));
            }
            tex = Some(s.trim().to_string());
            break;
        }
    }
    let tex = tex
        .filter(|t| !t.is_empty())
        .or_else(|| dom.attr(i, AttrKey::Alttext).map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())?;
    let display = dom
        .attr(i, AttrKey::Display)
        .is_some_and(|d| d.trim().eq_ignore_ascii_case("block"));
    Some((tex, display))
}

/// The alt text of an image that shows a formula (LaTeX-rendering services and math classes).
fn math_image_alt(dom: &Dom, i: u32) -> Option<&str> {
    let alt = dom.attr(i, AttrKey::Alt)?.trim();
    if alt.is_empty() {
        return None;
    }
    let lc = |s: &str| s.to_ascii_lowercase();
    let class = dom.attr(i, AttrKey::Class).map(lc).unwrap_or_default();
    let src = dom.attr(i, AttrKey::Src).map(lc).unwrap_or_default();
    let mathy = class.contains("math")
        || class.contains("latex")
        || class.contains("tex ")
        || class == "tex"
        || src.contains("latex")
        || src.contains("mathtex")
        || src.contains("codecogs")
        || src.contains("/math/");
    mathy.then_some(alt)
}

/// Characters that a reader never sees: soft hyphens (`&shy;`, set for line breaking), zero
/// width spaces, word joiners and byte order marks. Kept, they split the words of the text.
fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}' | '\u{2060}' | '\u{feff}')
}

/// Appends `word` without its [`invisible`] characters.
fn push_visible(s: &mut String, word: &str) {
    // Their UTF-8 forms start with 0xC2 (soft hyphen), 0xE2 (U+200B, U+2060) or 0xEF (BOM).
    if word.bytes().any(|b| matches!(b, 0xC2 | 0xE2 | 0xEF)) && word.chars().any(invisible) {
        s.extend(word.chars().filter(|&c| !invisible(c)));
    } else {
        s.push_str(word);
    }
}

/// The text writer: folds whitespace, breaks lines at blocks, keeps `<pre>` verbatim.
struct Out {
    s: String,
    /// A space is due before the next visible character.
    space: bool,
    /// A line break is due before the next visible character.
    brk: bool,
    pre: u32,
    /// Inside `<pre>`, before its first text.
    pre_fresh: bool,
    /// The cells written so far in each open table row.
    rows: Vec<u32>,
    markdown: bool,
}

impl Out {
    fn new(markdown: bool) -> Self {
        Out {
            s: String::new(),
            space: false,
            brk: false,
            pre: 0,
            pre_fresh: false,
            rows: Vec::new(),
            markdown,
        }
    }

    fn in_pre(&self) -> bool {
        self.pre > 0
    }

    fn flush(&mut self) {
        if self.brk {
            if !self.s.is_empty() {
                while self.s.ends_with(' ') || self.s.ends_with('\t') {
                    self.s.pop();
                }
                self.s.push('\n');
            }
            self.brk = false;
            self.space = false;
        } else if self.space {
            if !self.s.is_empty() && !self.s.ends_with('\n') && !self.s.ends_with('\t') {
                self.s.push(' ');
            }
            self.space = false;
        }
    }

    fn text(&mut self, t: &str) {
        if self.pre > 0 {
            return self.raw(t);
        }
        for (k, word) in t.split(|c: char| c.is_whitespace()).enumerate() {
            if k > 0 {
                self.space = true;
            }
            if !word.is_empty() {
                self.flush();
                push_visible(&mut self.s, word);
            }
        }
    }

    fn raw(&mut self, t: &str) {
        // The standard drops a newline right after `<pre>`.
        let t = if std::mem::take(&mut self.pre_fresh) {
            t.strip_prefix("\r\n")
                .or_else(|| t.strip_prefix('\n'))
                .unwrap_or(t)
        } else {
            t
        };
        if t.is_empty() {
            return;
        }
        self.flush();
        if t.contains('\r') {
            self.s
                .push_str(&t.replace("\r\n", "\n").replace('\r', "\n"));
        } else {
            self.s.push_str(t);
        }
    }

    fn block(&mut self) {
        if !self.s.is_empty() && !self.s.ends_with('\n') {
            self.brk = true;
        }
    }

    fn line_break(&mut self) {
        if self.pre > 0 {
            self.s.push('\n');
        } else {
            self.block();
        }
    }

    fn cell(&mut self) {
        self.flush();
        if !self.s.is_empty() && !self.s.ends_with('\n') {
            while self.s.ends_with(' ') {
                self.s.pop();
            }
            self.s.push('\t');
        }
        self.space = false;
    }

    fn marker(&mut self, m: &str) {
        self.flush();
        self.s.push_str(m);
    }

    fn inline_marker(&mut self, m: &str) {
        if self.markdown {
            self.flush();
            self.s.push_str(m);
        }
    }

    fn pre_start(&mut self) {
        self.flush();
        self.pre += 1;
        self.pre_fresh = true;
    }

    fn pre_end(&mut self) {
        self.pre = self.pre.saturating_sub(1);
        // A <pre> starts its content after one newline that the parser would drop.
        while self.s.ends_with('\n') || self.s.ends_with(' ') {
            self.s.pop();
        }
    }

    fn inline_math(&mut self, tex: &str) {
        if tex.is_empty() {
            return;
        }
        self.flush();
        if !self.s.is_empty() && !self.s.ends_with(['\n', ' ', '\t', '(']) {
            self.s.push(' ');
        }
        self.s.push('$');
        self.s.push_str(tex);
        self.s.push('$');
    }

    fn display_math(&mut self, tex: &str) {
        if tex.is_empty() {
            return;
        }
        self.block();
        self.flush();
        self.s.push_str("$$");
        self.s.push_str(tex);
        self.s.push_str("$$");
        self.block();
    }

    fn finish(self) -> String {
        let s = self.trimmed();
        // One spelling per character (composed, NFC): "é" from a page that writes `e` and a
        // combining accent matches the "é" of every other page, in dedup and in tokens.
        if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
            s
        } else {
            s.nfc().map(|(c, _)| c).collect()
        }
    }

    fn trimmed(mut self) -> String {
        // Trim line ends and drop blank lines (outside of <pre> blocks this is already so;
        // inside them a blank line is kept).
        while self.s.ends_with(['\n', ' ', '\t']) {
            self.s.pop();
        }
        let start = self.s.len() - self.s.trim_start_matches(['\n', ' ']).len();
        if start > 0 {
            self.s.drain(..start);
        }
        self.s
    }
}
