//! HTML parsing for extraction: a byte-level tokenizer and a forgiving tree builder that fill a
//! flat arena of nodes in document order.
//!
//! Written for this job rather than taken from html5ever (see `docs/extract.md`: html5ever builds
//! a full DOM at ~90 MB/s, below the speed target before any extraction runs). It follows the
//! HTML standard where it changes the text a reader sees: implied end tags (`<p>`, `<li>`,
//! `<dt>/<dd>`, table cells and rows, headings), void elements, raw-text elements (`script`,
//! `style`, ...), RCDATA (`title`, `textarea`), comments, named and numeric character references,
//! and foreign content (`svg`, `math`). It skips what does not: the adoption agency (a stray
//! inline end tag that would cross a block is ignored instead), foster parenting, and the head /
//! body insertion modes.
//!
//! Nodes are appended when they open, so a parent always precedes its children: one reverse pass
//! over the arena aggregates statistics bottom-up, one forward pass pushes flags top-down, and
//! nothing recurses (10,000-deep nesting cannot overflow a stack). Limits on depth, node count
//! and time stop a pathological page; the caller decides what to do with it ([`ParseStatus`]).

use std::time::Instant;

use super::entities::{ENTITIES, MAX_NAME};

/// "No node" in the arena's links.
pub const NONE: u32 = u32::MAX;

macro_rules! tags {
    ($($v:ident = $s:literal),* $(,)?) => {
        /// Element kinds the extractor distinguishes; everything else is [`Tag::Other`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Tag { Document, Text, Other, $($v),* }

        fn tag_of(name: &[u8]) -> Tag {
            match name { $($s => Tag::$v,)* _ => Tag::Other }
        }
    };
}

tags! {
    A = b"a", Abbr = b"abbr", Address = b"address", Annotation = b"annotation",
    AnnotationXml = b"annotation-xml", Applet = b"applet", Area = b"area", Article = b"article",
    Aside = b"aside", Audio = b"audio", B = b"b", Base = b"base", Bdi = b"bdi", Bdo = b"bdo",
    Big = b"big", Blockquote = b"blockquote", Body = b"body", Br = b"br", Button = b"button",
    Canvas = b"canvas", Caption = b"caption", Center = b"center", Cite = b"cite", Code = b"code",
    Col = b"col", Colgroup = b"colgroup", Dd = b"dd", Del = b"del", Details = b"details",
    Dfn = b"dfn", Dialog = b"dialog", Dir = b"dir", Div = b"div", Dl = b"dl", Dt = b"dt",
    Em = b"em", Embed = b"embed", Fieldset = b"fieldset", Figcaption = b"figcaption",
    Figure = b"figure", Font = b"font", Footer = b"footer", Form = b"form", Frame = b"frame",
    Frameset = b"frameset", H1 = b"h1", H2 = b"h2", H3 = b"h3", H4 = b"h4", H5 = b"h5",
    H6 = b"h6", Head = b"head", Header = b"header", Hgroup = b"hgroup", Hr = b"hr",
    Html = b"html", I = b"i", Iframe = b"iframe", Img = b"img", Input = b"input", Ins = b"ins",
    Kbd = b"kbd", Keygen = b"keygen", Label = b"label", Legend = b"legend", Li = b"li",
    Link = b"link", Listing = b"listing", Main = b"main", Map = b"map", Mark = b"mark",
    Marquee = b"marquee", Math = b"math", Menu = b"menu", Meta = b"meta", Nav = b"nav",
    Nobr = b"nobr", Noembed = b"noembed", Noframes = b"noframes", Noscript = b"noscript",
    Object = b"object", Ol = b"ol", Optgroup = b"optgroup", Option = b"option", P = b"p",
    Param = b"param", Picture = b"picture", Plaintext = b"plaintext", Pre = b"pre", Q = b"q",
    Rp = b"rp", Rt = b"rt", Ruby = b"ruby", S = b"s", Samp = b"samp", Script = b"script",
    Section = b"section", Select = b"select", Small = b"small", Source = b"source", Span = b"span",
    Strike = b"strike", Strong = b"strong", Style = b"style", Sub = b"sub", Summary = b"summary",
    Sup = b"sup", Svg = b"svg", Table = b"table", Tbody = b"tbody", Td = b"td",
    Template = b"template", Textarea = b"textarea", Tfoot = b"tfoot", Th = b"th",
    Thead = b"thead", Time = b"time", Title = b"title", Tr = b"tr", Track = b"track", Tt = b"tt",
    U = b"u", Ul = b"ul", Var = b"var", Video = b"video", Wbr = b"wbr", Xmp = b"xmp",
}

impl Tag {
    /// Elements that never have children.
    pub fn is_void(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Area | Base
                | Br
                | Col
                | Embed
                | Hr
                | Img
                | Input
                | Keygen
                | Link
                | Meta
                | Param
                | Source
                | Track
                | Wbr
        )
    }

    /// Phrasing (inline) elements: their end tag never closes a block, and they break no line.
    pub fn is_inline(self) -> bool {
        use Tag::*;
        matches!(
            self,
            A | Abbr
                | B
                | Bdi
                | Bdo
                | Big
                | Cite
                | Code
                | Del
                | Dfn
                | Em
                | Font
                | I
                | Ins
                | Kbd
                | Label
                | Mark
                | Nobr
                | Q
                | Rp
                | Rt
                | Ruby
                | S
                | Samp
                | Small
                | Span
                | Strike
                | Strong
                | Sub
                | Sup
                | Time
                | Tt
                | U
                | Var
                | Text
                | Other
        )
    }

    /// Start tags that close an open `<p>` (the standard's list).
    fn closes_p(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Address
                | Article
                | Aside
                | Blockquote
                | Center
                | Details
                | Dialog
                | Dir
                | Div
                | Dl
                | Fieldset
                | Figcaption
                | Figure
                | Footer
                | Form
                | H1
                | H2
                | H3
                | H4
                | H5
                | H6
                | Header
                | Hgroup
                | Hr
                | Listing
                | Main
                | Menu
                | Nav
                | Ol
                | P
                | Pre
                | Section
                | Summary
                | Table
                | Ul
                | Xmp
                | Plaintext
        )
    }

    pub fn is_heading(self) -> bool {
        matches!(
            self,
            Tag::H1 | Tag::H2 | Tag::H3 | Tag::H4 | Tag::H5 | Tag::H6
        )
    }

    /// Elements that bound the search for an element to close (table structure, the root).
    fn is_table_boundary(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Table | Td | Th | Caption | Html | Template | Document | Applet | Marquee | Object
        )
    }

    /// Elements an implied `<li>` / `<dd>` end stops at (the standard's "special" category
    /// minus `address`, `div` and `p`).
    fn stops_list_close(self) -> bool {
        !self.is_inline() && !matches!(self, Tag::Address | Tag::Div | Tag::P)
    }

    /// Raw text content (no markup inside, no character references).
    fn is_raw_text(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Script | Style | Xmp | Iframe | Noembed | Noframes | Noscript
        )
    }

    fn is_rcdata(self) -> bool {
        matches!(self, Tag::Title | Tag::Textarea)
    }

    /// Allowed in `<head>`; any other start tag there ends the head.
    fn in_head(self) -> bool {
        use Tag::*;
        matches!(
            self,
            Title | Meta | Link | Base | Style | Script | Noscript | Template
        )
    }

    /// HTML start tags that end foreign content (`svg`, `math`) in the standard.
    fn breaks_foreign(self) -> bool {
        use Tag::*;
        matches!(
            self,
            B | Big
                | Blockquote
                | Body
                | Br
                | Center
                | Code
                | Dd
                | Div
                | Dl
                | Dt
                | Em
                | Embed
                | H1
                | H2
                | H3
                | H4
                | H5
                | H6
                | Head
                | Hr
                | I
                | Img
                | Li
                | Listing
                | Menu
                | Meta
                | Nobr
                | Ol
                | P
                | Pre
                | Ruby
                | S
                | Small
                | Span
                | Strong
                | Strike
                | Sub
                | Sup
                | Table
                | Tt
                | U
                | Ul
                | Var
        )
    }
}

/// Attributes the extractor reads; the others are skipped while tokenizing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AttrKey {
    Class,
    Id,
    Role,
    Style,
    Hidden,
    AriaHidden,
    Type,
    Alt,
    Itemprop,
    Encoding,
    Alttext,
    Display,
    Src,
    Href,
    Name,
    Property,
    Content,
    Open,
}

fn attr_key(name: &[u8]) -> Option<AttrKey> {
    Some(match name {
        b"class" => AttrKey::Class,
        b"id" => AttrKey::Id,
        b"role" => AttrKey::Role,
        b"style" => AttrKey::Style,
        b"hidden" => AttrKey::Hidden,
        b"aria-hidden" => AttrKey::AriaHidden,
        b"type" => AttrKey::Type,
        b"alt" => AttrKey::Alt,
        b"itemprop" => AttrKey::Itemprop,
        b"encoding" => AttrKey::Encoding,
        b"alttext" => AttrKey::Alttext,
        b"display" => AttrKey::Display,
        b"src" => AttrKey::Src,
        b"href" => AttrKey::Href,
        b"name" => AttrKey::Name,
        b"property" => AttrKey::Property,
        b"content" => AttrKey::Content,
        b"open" => AttrKey::Open,
        _ => return None,
    })
}

/// One attribute: its key and the byte range of its decoded value in [`Dom::attr_text`].
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    pub key: AttrKey,
    pub start: u32,
    pub end: u32,
}

/// One node of the arena. Elements hold a range of [`Dom::attrs`]; text nodes a range of
/// [`Dom::text`].
#[derive(Clone, Copy, Debug)]
pub struct Node {
    pub tag: Tag,
    pub parent: u32,
    pub first_child: u32,
    pub last_child: u32,
    pub next_sibling: u32,
    /// Text nodes: byte range in `text`. Elements: index range in `attrs`.
    pub start: u32,
    pub end: u32,
    /// Elements of kind [`Tag::Other`]: a hash of the name, to match end tags.
    pub name_hash: u32,
}

/// Limits that stop parsing a pathological page.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deeper elements are not nested further (their children join the deepest open element).
    pub max_depth: usize,
    /// Parsing stops after this many nodes.
    pub max_nodes: usize,
    /// Parsing stops at this instant.
    pub deadline: Option<Instant>,
    /// Parse as a browser with scripting on (the default): `<noscript>` content is raw text.
    /// Off, it is markup, as a reader without JavaScript sees it.
    pub scripting: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 1024,
            max_nodes: 1 << 20,
            deadline: None,
            scripting: true,
        }
    }
}

/// How parsing ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseStatus {
    /// Nesting went deeper than `max_depth` (the tree was flattened there).
    pub too_deep: bool,
    /// `max_nodes` was reached (the rest of the page was not parsed).
    pub too_many_nodes: bool,
    /// The deadline passed (the rest of the page was not parsed).
    pub timed_out: bool,
    /// The deepest nesting seen (open elements, capped at `max_depth`).
    pub max_depth: usize,
}

/// A parsed page.
#[derive(Debug, Default)]
pub struct Dom {
    pub nodes: Vec<Node>,
    /// Decoded text of all text nodes (character references resolved, not whitespace-folded).
    pub text: String,
    pub attrs: Vec<Attr>,
    /// Decoded attribute values.
    pub attr_text: String,
    pub status: ParseStatus,
}

impl Dom {
    /// Parses `html` into a tree (never fails; broken markup is repaired the forgiving way).
    pub fn parse(html: &str, limits: &Limits) -> Dom {
        let mut b = Builder::new(html.len(), *limits);
        b.run(html);
        b.dom.status.max_depth = b.deepest;
        b.dom
    }

    pub fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    /// The text of a text node (empty for other nodes).
    pub fn text_of(&self, n: &Node) -> &str {
        if n.tag != Tag::Text {
            return "";
        }
        &self.text[n.start as usize..n.end as usize]
    }

    /// The decoded value of an element's attribute.
    pub fn attr(&self, i: u32, key: AttrKey) -> Option<&str> {
        let n = &self.nodes[i as usize];
        if matches!(n.tag, Tag::Text | Tag::Document) {
            return None;
        }
        self.attrs[n.start as usize..n.end as usize]
            .iter()
            .find(|a| a.key == key)
            .map(|a| &self.attr_text[a.start as usize..a.end as usize])
    }

    /// The children of a node, in order.
    pub fn children(&self, i: u32) -> Children<'_> {
        Children {
            dom: self,
            next: self.nodes[i as usize].first_child,
        }
    }

    /// Index one past the last descendant of `i` (descendants are contiguous in the arena).
    pub fn subtree_end(&self, i: u32) -> u32 {
        let mut n = i;
        loop {
            let node = &self.nodes[n as usize];
            if node.next_sibling != NONE {
                return node.next_sibling;
            }
            if node.parent == NONE || n == 0 {
                return self.nodes.len() as u32;
            }
            n = node.parent;
        }
    }
}

/// Iterator over a node's children.
pub struct Children<'a> {
    dom: &'a Dom,
    next: u32,
}

impl Iterator for Children<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        if self.next == NONE {
            return None;
        }
        let i = self.next;
        self.next = self.dom.nodes[i as usize].next_sibling;
        Some(i)
    }
}

/// How far an implied-end or end-tag search walks down the stack of open elements: beyond
/// this a real page never needs it, and it keeps pathological nesting linear.
const SCOPE_SCAN: usize = 128;

struct Builder {
    dom: Dom,
    /// Open elements (node indices); `stack[0]` is the document.
    stack: Vec<u32>,
    limits: Limits,
    /// Open `svg`/`math` elements (foreign content while > 0).
    foreign: usize,
    has_body: bool,
    has_head: bool,
    has_html: bool,
    deepest: usize,
    stopped: bool,
    tokens: u32,
    /// Scratch for attributes of the tag being read.
    pending: Vec<(AttrKey, u32, u32)>,
}

/// A hash of an element name (ASCII case folded), stored for [`Tag::Other`] elements.
pub const fn hash_name(name: &[u8]) -> u32 {
    // FNV-1a: names are short and only compared for equality.
    let mut h: u32 = 0x811c9dc5;
    let mut i = 0;
    while i < name.len() {
        h = (h ^ name[i].to_ascii_lowercase() as u32).wrapping_mul(0x01000193);
        i += 1;
    }
    h
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

impl Builder {
    fn new(len: usize, limits: Limits) -> Self {
        let mut dom = Dom {
            nodes: Vec::with_capacity(len / 64 + 16),
            text: String::with_capacity(len / 3),
            attrs: Vec::with_capacity(len / 128 + 16),
            attr_text: String::with_capacity(len / 16),
            status: ParseStatus::default(),
        };
        dom.nodes.push(Node {
            tag: Tag::Document,
            parent: NONE,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            start: 0,
            end: 0,
            name_hash: 0,
        });
        Builder {
            dom,
            stack: vec![0],
            limits,
            foreign: 0,
            has_body: false,
            has_head: false,
            has_html: false,
            deepest: 0,
            stopped: false,
            tokens: 0,
            pending: Vec::new(),
        }
    }

    fn current(&self) -> u32 {
        *self.stack.last().unwrap_or(&0)
    }

    fn tag_at(&self, i: u32) -> Tag {
        self.dom.nodes[i as usize].tag
    }

    /// Counts a token and checks the node and time limits.
    fn tick(&mut self) -> bool {
        if self.stopped {
            return false;
        }
        if self.dom.nodes.len() >= self.limits.max_nodes {
            self.dom.status.too_many_nodes = true;
            self.stopped = true;
            return false;
        }
        self.tokens = self.tokens.wrapping_add(1);
        if self.tokens % 1024 == 0 {
            if let Some(d) = self.limits.deadline {
                if Instant::now() >= d {
                    self.dom.status.timed_out = true;
                    self.stopped = true;
                    return false;
                }
            }
        }
        true
    }

    fn append(&mut self, node: Node) -> u32 {
        let parent = node.parent;
        let id = self.dom.nodes.len() as u32;
        self.dom.nodes.push(node);
        let p = &mut self.dom.nodes[parent as usize];
        let last = p.last_child;
        p.last_child = id;
        if last == NONE {
            p.first_child = id;
        } else {
            self.dom.nodes[last as usize].next_sibling = id;
        }
        id
    }

    /// Appends decoded text to the current element, merging with a text node just before it.
    fn text(&mut self, raw: &str, decode: bool) {
        if raw.is_empty() || !self.tick() {
            return;
        }
        let parent = self.current();
        let start = self.dom.text.len() as u32;
        if decode {
            decode_refs(raw, &mut self.dom.text, false);
        } else {
            self.dom.text.push_str(raw);
        }
        let end = self.dom.text.len() as u32;
        let last = self.dom.nodes[parent as usize].last_child;
        if last != NONE && last as usize == self.dom.nodes.len() - 1 {
            let l = &mut self.dom.nodes[last as usize];
            if l.tag == Tag::Text && l.end == start {
                l.end = end;
                return;
            }
        }
        self.append(Node {
            tag: Tag::Text,
            parent,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            start,
            end,
            name_hash: 0,
        });
    }

    fn pop_to(&mut self, depth: usize) {
        while self.stack.len() > depth.max(1) {
            let n = self.stack.pop().unwrap_or(0);
            if matches!(self.tag_at(n), Tag::Svg | Tag::Math) {
                self.foreign = self.foreign.saturating_sub(1);
            }
        }
    }

    /// Position in the stack of the nearest open `tag`, not crossing a `stop` element.
    fn find_open(&self, want: impl Fn(Tag) -> bool, stop: impl Fn(Tag) -> bool) -> Option<usize> {
        for (k, &n) in self.stack.iter().enumerate().rev().take(SCOPE_SCAN) {
            let t = self.tag_at(n);
            if want(t) {
                return Some(k);
            }
            if stop(t) {
                return None;
            }
        }
        None
    }

    /// Closes the outermost open table part of `parts` (in order of preference) of the
    /// current table: a new row closes the open row with its cells, a new body the open body.
    fn close_table_part(&mut self, parts: &[Tag]) {
        let table_scope = |t: Tag| matches!(t, Tag::Table | Tag::Html | Tag::Template);
        for &part in parts {
            if let Some(k) = self.find_open(|t| t == part, table_scope) {
                self.pop_to(k);
                return;
            }
        }
    }

    fn close_p(&mut self) {
        if let Some(k) = self.find_open(
            |t| t == Tag::P,
            |t| t.is_table_boundary() || t == Tag::Button || t == Tag::Ol || t == Tag::Ul,
        ) {
            self.pop_to(k);
        }
    }

    /// Opens an element (or appends a void one); returns its kind and node, and whether it was
    /// pushed on the stack of open elements.
    fn start_tag(&mut self, name: &[u8], self_closing: bool) -> Option<(Tag, u32, bool)> {
        if !self.tick() {
            return None;
        }
        let mut tag = tag_of(name);
        if tag == Tag::Noscript && !self.limits.scripting {
            tag = Tag::Other;
        }
        if self.foreign > 0 {
            if tag.breaks_foreign() {
                // Pop out of foreign content.
                while self.foreign > 0 && self.stack.len() > 1 {
                    self.pop_to(self.stack.len() - 1);
                }
            } else if !matches!(
                tag,
                Tag::Annotation | Tag::AnnotationXml | Tag::Svg | Tag::Math
            ) {
                // Inside svg/math every other element is foreign: no implied ends, no raw text.
                tag = Tag::Other;
            }
        }
        match tag {
            Tag::Html => {
                if self.has_html {
                    return None;
                }
                self.has_html = true;
            }
            Tag::Head => {
                if self.has_head || self.has_body {
                    return None;
                }
                self.has_head = true;
            }
            Tag::Body => {
                if self.has_body {
                    return None;
                }
                self.has_body = true;
                if let Some(k) = self.find_open(|t| t == Tag::Head, |_| false) {
                    self.pop_to(k);
                }
            }
            _ => {}
        }
        if self.foreign == 0 {
            if self.tag_at(self.current()) == Tag::Head && !tag.in_head() {
                self.pop_to(self.stack.len() - 1);
            }
            if tag.closes_p() {
                self.close_p();
            }
            match tag {
                t if t.is_heading() && self.tag_at(self.current()).is_heading() => {
                    self.pop_to(self.stack.len() - 1);
                }
                Tag::Li => {
                    if let Some(k) = self.find_open(|t| t == Tag::Li, Tag::stops_list_close) {
                        self.pop_to(k);
                    }
                }
                Tag::Dd | Tag::Dt => {
                    if let Some(k) =
                        self.find_open(|t| matches!(t, Tag::Dd | Tag::Dt), Tag::stops_list_close)
                    {
                        self.pop_to(k);
                    }
                }
                Tag::Td | Tag::Th => {
                    if let Some(k) = self.find_open(
                        |t| matches!(t, Tag::Td | Tag::Th),
                        |t| matches!(t, Tag::Tr | Tag::Table | Tag::Html | Tag::Template),
                    ) {
                        self.pop_to(k);
                    }
                }
                Tag::Tr => self.close_table_part(&[Tag::Tr, Tag::Td, Tag::Th]),
                Tag::Tbody | Tag::Thead | Tag::Tfoot => self.close_table_part(&[
                    Tag::Tbody,
                    Tag::Thead,
                    Tag::Tfoot,
                    Tag::Tr,
                    Tag::Td,
                    Tag::Th,
                ]),
                Tag::A => {
                    if let Some(k) = self.find_open(|t| t == Tag::A, |t| t.is_table_boundary()) {
                        self.pop_to(k);
                    }
                }
                Tag::Option | Tag::Optgroup if self.tag_at(self.current()) == Tag::Option => {
                    self.pop_to(self.stack.len() - 1);
                }
                Tag::Button => {
                    if let Some(k) = self.find_open(|t| t == Tag::Button, |t| t.is_table_boundary())
                    {
                        self.pop_to(k);
                    }
                }
                _ => {}
            }
        }
        let attr_start = self.dom.attrs.len() as u32;
        for &(key, s, e) in &self.pending {
            self.dom.attrs.push(Attr {
                key,
                start: s,
                end: e,
            });
        }
        let id = self.append(Node {
            tag,
            parent: self.current(),
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
            start: attr_start,
            end: self.dom.attrs.len() as u32,
            name_hash: if tag == Tag::Other {
                hash_name(name)
            } else {
                0
            },
        });
        let void = tag.is_void()
            || (self_closing && (self.foreign > 0 || tag == Tag::Svg || tag == Tag::Math));
        let mut pushed = false;
        if !void {
            if self.stack.len() > self.limits.max_depth {
                self.dom.status.too_deep = true;
            } else {
                self.stack.push(id);
                pushed = true;
                self.deepest = self.deepest.max(self.stack.len() - 1);
                if matches!(tag, Tag::Svg | Tag::Math) {
                    self.foreign += 1;
                }
            }
        }
        Some((tag, id, pushed))
    }

    fn end_tag(&mut self, name: &[u8]) {
        if !self.tick() {
            return;
        }
        let mut tag = tag_of(name);
        if tag == Tag::Noscript && !self.limits.scripting {
            tag = Tag::Other;
        }
        if self.foreign > 0
            && !matches!(
                tag,
                Tag::Svg | Tag::Math | Tag::Annotation | Tag::AnnotationXml
            )
        {
            tag = Tag::Other;
        }
        match tag {
            Tag::Html | Tag::Body | Tag::Head if self.foreign == 0 => {
                if tag == Tag::Head {
                    if let Some(k) = self.find_open(|t| t == Tag::Head, |_| false) {
                        self.pop_to(k);
                    }
                }
            }
            Tag::P if self.foreign == 0 => self.close_p(),
            Tag::Br if self.foreign == 0 => {
                self.pending.clear();
                self.start_tag(b"br", false);
            }
            Tag::Other => {
                let h = hash_name(name);
                let html_scope = self.foreign == 0;
                if let Some(k) = self.find_open_node(
                    |n| n.tag == Tag::Other && n.name_hash == h,
                    |t| html_scope && t.is_table_boundary(),
                ) {
                    self.pop_to(k);
                }
            }
            t if t.is_inline() => {
                if let Some(k) = self.find_open(|x| x == t, |x| !x.is_inline()) {
                    self.pop_to(k);
                }
            }
            t if t.is_heading() => {
                if let Some(k) = self.find_open(Tag::is_heading, Tag::is_table_boundary) {
                    self.pop_to(k);
                }
            }
            t => {
                let own_boundary = t.is_table_boundary()
                    || matches!(t, Tag::Tr | Tag::Tbody | Tag::Thead | Tag::Tfoot);
                if let Some(k) = self.find_open(
                    |x| x == t,
                    |x| !own_boundary && x.is_table_boundary() || x == Tag::Document,
                ) {
                    self.pop_to(k);
                }
            }
        }
    }

    fn find_open_node(
        &self,
        want: impl Fn(&Node) -> bool,
        stop: impl Fn(Tag) -> bool,
    ) -> Option<usize> {
        for (k, &n) in self.stack.iter().enumerate().rev().take(SCOPE_SCAN) {
            let node = &self.dom.nodes[n as usize];
            if want(node) {
                return Some(k);
            }
            if stop(node.tag) {
                return None;
            }
        }
        None
    }

    /// The main loop over the input.
    fn run(&mut self, html: &str) {
        let b = html.as_bytes();
        let n = b.len();
        let mut i = 0;
        while i < n && !self.stopped {
            let Some(k) = memchr::memchr(b'<', &b[i..]) else {
                self.text(&html[i..], true);
                break;
            };
            if k > 0 {
                self.text(&html[i..i + k], true);
            }
            i += k;
            let c1 = b.get(i + 1).copied().unwrap_or(0);
            if c1.is_ascii_alphabetic() {
                i = self.read_start_tag(html, i);
            } else if c1 == b'/' {
                let c2 = b.get(i + 2).copied().unwrap_or(0);
                if c2.is_ascii_alphabetic() {
                    let s = i + 2;
                    let mut e = s;
                    while e < n && !is_ws(b[e]) && b[e] != b'/' && b[e] != b'>' {
                        e += 1;
                    }
                    let close = memchr::memchr(b'>', &b[e..]).map_or(n, |x| e + x + 1);
                    if e - s <= 32 {
                        let mut buf = [0u8; 32];
                        let name = lower(&b[s..e], &mut buf);
                        self.end_tag(name);
                    }
                    i = close;
                } else if c2 == b'>' {
                    i += 3;
                } else {
                    // `</` followed by junk: a bogus comment up to `>`.
                    i = memchr::memchr(b'>', &b[i..]).map_or(n, |x| i + x + 1);
                }
            } else if c1 == b'!' {
                if b[i..].starts_with(b"<!--") {
                    let s = i + 4;
                    i = if b[s..].starts_with(b">") {
                        s + 1
                    } else if b[s..].starts_with(b"->") {
                        s + 2
                    } else {
                        memchr::memmem::find(&b[s..], b"-->").map_or(n, |x| s + x + 3)
                    };
                } else if b[i..].starts_with(b"<![CDATA[") {
                    let s = i + 9;
                    let e = memchr::memmem::find(&b[s..], b"]]>").map_or(n, |x| s + x);
                    if self.foreign > 0 {
                        self.text(&html[s..e], false);
                    }
                    i = (e + 3).min(n);
                } else {
                    i = memchr::memchr(b'>', &b[i..]).map_or(n, |x| i + x + 1);
                }
            } else if c1 == b'?' {
                i = memchr::memchr(b'>', &b[i..]).map_or(n, |x| i + x + 1);
            } else {
                self.text("<", false);
                i += 1;
            }
        }
    }

    /// Reads a start tag at `i` (`<` then a letter); returns the position after it and after
    /// any raw-text content it opens.
    fn read_start_tag(&mut self, html: &str, i: usize) -> usize {
        let b = html.as_bytes();
        let n = b.len();
        let s = i + 1;
        let mut j = s;
        while j < n && !is_ws(b[j]) && b[j] != b'/' && b[j] != b'>' {
            j += 1;
        }
        let mut buf = [0u8; 32];
        let long = j - s > 32;
        let name_bytes = if long {
            &b[s..s]
        } else {
            lower(&b[s..j], &mut buf)
        };
        let name: Vec<u8>;
        let name_ref: &[u8] = if long {
            name = b[s..j].to_ascii_lowercase();
            &name
        } else {
            name_bytes
        };
        // Attributes.
        self.pending.clear();
        let mut self_closing = false;
        loop {
            while j < n && (is_ws(b[j]) || b[j] == b'/') {
                self_closing = b[j] == b'/';
                j += 1;
            }
            if j >= n {
                break;
            }
            if b[j] == b'>' {
                j += 1;
                break;
            }
            self_closing = false;
            let ns = j;
            j += 1; // the first character may be '='
            while j < n && !is_ws(b[j]) && !matches!(b[j], b'/' | b'>' | b'=') {
                j += 1;
            }
            let ne = j;
            while j < n && is_ws(b[j]) {
                j += 1;
            }
            let mut value = (j, j);
            if j < n && b[j] == b'=' {
                j += 1;
                while j < n && is_ws(b[j]) {
                    j += 1;
                }
                if j < n && (b[j] == b'"' || b[j] == b'\'') {
                    let q = b[j];
                    let vs = j + 1;
                    let ve = memchr::memchr(q, &b[vs..]).map_or(n, |x| vs + x);
                    value = (vs, ve);
                    j = (ve + 1).min(n);
                } else {
                    let vs = j;
                    while j < n && !is_ws(b[j]) && b[j] != b'>' {
                        j += 1;
                    }
                    value = (vs, j);
                }
            }
            if ne - ns <= 16 {
                let mut kb = [0u8; 16];
                if let Some(key) = attr_key(lower(&b[ns..ne], &mut kb)) {
                    if !self.pending.iter().any(|p| p.0 == key) {
                        let vs = self.dom.attr_text.len() as u32;
                        let raw = &html[value.0..value.1];
                        if raw.contains('&') {
                            decode_refs(raw, &mut self.dom.attr_text, true);
                        } else {
                            self.dom.attr_text.push_str(raw);
                        }
                        self.pending
                            .push((key, vs, self.dom.attr_text.len() as u32));
                    }
                }
            }
        }
        let foreign_before = self.foreign;
        let Some((tag, id, pushed)) = self.start_tag(name_ref, self_closing) else {
            return j;
        };
        // Raw text and RCDATA content.
        if foreign_before == 0 && (tag.is_raw_text() || tag.is_rcdata() || tag == Tag::Plaintext) {
            let (cs, ce, after) = if tag == Tag::Plaintext {
                (j, n, n)
            } else {
                let ce = find_end_tag(b, j, name_ref);
                let after = memchr::memchr(b'>', &b[ce.min(n)..]).map_or(n, |x| ce + x + 1);
                (j, ce, after)
            };
            let keep = match tag {
                Tag::Title | Tag::Textarea | Tag::Plaintext => true,
                // Only TeX scripts carry text worth keeping (MathJax).
                Tag::Script => self.dom.attr(id, AttrKey::Type).is_some_and(|t| {
                    t.trim_start()
                        .get(..8)
                        .is_some_and(|p| p.eq_ignore_ascii_case("math/tex"))
                }),
                _ => false,
            };
            if keep && cs < ce && pushed {
                self.text(&html[cs..ce], tag.is_rcdata() || tag == Tag::Plaintext);
            }
            if pushed && tag != Tag::Plaintext && self.current() == id {
                // Close the raw-text element.
                self.pop_to(self.stack.len() - 1);
            }
            return after;
        }
        j
    }
}

/// Finds `</name` (case-insensitive, followed by a delimiter) at or after `from`; the input
/// length when absent.
fn find_end_tag(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut p = from;
    while let Some(k) = memchr::memchr(b'<', &b[p..]) {
        let q = p + k;
        if b.get(q + 1) == Some(&b'/')
            && b.len() >= q + 2 + name.len()
            && b[q + 2..q + 2 + name.len()].eq_ignore_ascii_case(name)
            && b.get(q + 2 + name.len())
                .is_none_or(|&c| is_ws(c) || c == b'>' || c == b'/')
        {
            return q;
        }
        p = q + 1;
    }
    b.len()
}

fn lower<'a>(src: &[u8], buf: &'a mut [u8]) -> &'a [u8] {
    let n = src.len().min(buf.len());
    for (d, s) in buf[..n].iter_mut().zip(src) {
        *d = s.to_ascii_lowercase();
    }
    &buf[..n]
}

/// Windows-1252 meanings of numeric references 0x80..=0x9F (the standard's replacement table).
const C1_MAP: [u32; 32] = [
    0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
];

fn lookup_entity(name: &[u8]) -> Option<&'static str> {
    ENTITIES
        .binary_search_by(|(k, _)| k.as_bytes().cmp(name))
        .ok()
        .map(|i| ENTITIES[i].1)
}

/// Appends `src` to `out` with character references resolved (`in_attr`: the standard's
/// attribute rule for legacy names without `;`).
pub fn decode_refs(src: &str, out: &mut String, in_attr: bool) {
    let b = src.as_bytes();
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'&', &b[i..]) {
        out.push_str(&src[i..i + k]);
        i += k;
        let (text, used) = char_ref(&b[i..], in_attr);
        match text {
            Some(Ref::Char(c)) => out.push(c),
            Some(Ref::Str(s)) => out.push_str(s),
            None => out.push('&'),
        }
        i += used;
    }
    out.push_str(&src[i..]);
}

enum Ref {
    Char(char),
    Str(&'static str),
}

/// Resolves the reference at the start of `b` (which begins with `&`); returns the replacement
/// (None: a literal `&`) and the bytes consumed.
fn char_ref(b: &[u8], in_attr: bool) -> (Option<Ref>, usize) {
    if b.get(1) == Some(&b'#') {
        let hex = matches!(b.get(2), Some(b'x' | b'X'));
        let ds = if hex { 3 } else { 2 };
        let mut j = ds;
        let mut v: u32 = 0;
        while j < b.len() {
            let d = match (b[j], hex) {
                (c @ b'0'..=b'9', _) => (c - b'0') as u32,
                (c @ b'a'..=b'f', true) => (c - b'a' + 10) as u32,
                (c @ b'A'..=b'F', true) => (c - b'A' + 10) as u32,
                _ => break,
            };
            v = v
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(d);
            j += 1;
        }
        if j == ds {
            return (None, 1);
        }
        if b.get(j) == Some(&b';') {
            j += 1;
        }
        let c = match v {
            0 => '\u{FFFD}',
            0x80..=0x9F => char::from_u32(C1_MAP[(v - 0x80) as usize]).unwrap_or('\u{FFFD}'),
            _ => char::from_u32(v).unwrap_or('\u{FFFD}'),
        };
        return (Some(Ref::Char(c)), j);
    }
    let mut j = 1;
    while j < b.len() && j <= MAX_NAME && b[j].is_ascii_alphanumeric() {
        j += 1;
    }
    if j == 1 {
        return (None, 1);
    }
    if b.get(j) == Some(&b';') {
        if let Some(s) = lookup_entity(&b[1..=j]) {
            return (Some(Ref::Str(s)), j + 1);
        }
    }
    // Legacy names without ';': the longest prefix that is one.
    for e in (3..=j.min(7)).rev() {
        if let Some(s) = lookup_entity(&b[1..e]) {
            if in_attr
                && b.get(e)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'=')
            {
                return (None, 1);
            }
            return (Some(Ref::Str(s)), e);
        }
    }
    (None, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dom: &Dom) -> String {
        // Serializes the tree (iteratively) for assertions.
        fn name(t: Tag) -> String {
            format!("{t:?}").to_lowercase()
        }
        let mut out = String::new();
        let mut stack = vec![(0u32, false)];
        while let Some((i, closing)) = stack.pop() {
            let n = dom.node(i);
            if closing {
                out.push_str(&format!("</{}>", name(n.tag)));
                continue;
            }
            match n.tag {
                Tag::Text => out.push_str(dom.text_of(n)),
                Tag::Document => {}
                t => out.push_str(&format!("<{}>", name(t))),
            }
            if !matches!(n.tag, Tag::Text | Tag::Document) && !n.tag.is_void() {
                stack.push((i, true));
            }
            let kids: Vec<u32> = dom.children(i).collect();
            for k in kids.into_iter().rev() {
                stack.push((k, false));
            }
        }
        out
    }

    fn parse(s: &str) -> String {
        tree(&Dom::parse(s, &Limits::default()))
    }

    #[test]
    fn implied_end_tags() {
        assert_eq!(parse("<p>a<p>b"), "<p>a</p><p>b</p>");
        assert_eq!(
            parse("<ul><li>a<li>b</ul>c"),
            "<ul><li>a</li><li>b</li></ul>c"
        );
        assert_eq!(
            parse("<table><tr><td>a<td>b<tr><td>c</table>"),
            "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"
        );
        assert_eq!(parse("<p>a<div>b</div>"), "<p>a</p><div>b</div>");
        assert_eq!(
            parse("<dl><dt>a<dd>b<dt>c</dl>"),
            "<dl><dt>a</dt><dd>b</dd><dt>c</dt></dl>"
        );
        assert_eq!(parse("<h1>a<h2>b</h2>"), "<h1>a</h1><h2>b</h2>");
    }

    #[test]
    fn stray_inline_end_tag_does_not_close_a_block() {
        assert_eq!(
            parse("<div><b>a<p>b</b>c</p></div>"),
            "<div><b>a<p>bc</p></b></div>"
        );
        assert_eq!(parse("<div>a</span>b</div>"), "<div>ab</div>");
    }

    #[test]
    fn raw_text_rcdata_comments_and_references() {
        assert_eq!(
            parse("<title>a &amp; <b></title><script>if (a<b) {}</script>x<!-- c -->y"),
            "<title>a & <b></title><script></script>xy"
        );
        assert_eq!(
            parse("<p>&lt;&gt;&#65;&#x42;&copy&notit;&#150;"),
            "<p><>AB©¬it;–</p>"
        );
        assert_eq!(parse("<p>&bogus; & &amp"), "<p>&bogus; & &</p>");
        let d = Dom::parse(
            "<a href=\"?a=1&copy=2\" class=x&amp;y>t</a>",
            &Limits::default(),
        );
        assert_eq!(d.attr(1, AttrKey::Href), Some("?a=1&copy=2"));
        assert_eq!(d.attr(1, AttrKey::Class), Some("x&y"));
        assert_eq!(
            parse("<script type=\"math/tex\">x^2</script>"),
            "<script>x^2</script>"
        );
    }

    #[test]
    fn foreign_content_self_closes() {
        assert_eq!(
            parse("<p>a<svg><path/><title>t</title></svg>b</p>"),
            "<p>a<svg><other></other><other>t</other></svg>b</p>"
        );
        assert_eq!(
            parse("<svg><g><p>x</p>"),
            "<svg><other></other></svg><p>x</p>"
        );
    }

    #[test]
    fn limits_hold() {
        let deep = "<div>".repeat(10_000) + "x";
        let d = Dom::parse(&deep, &Limits::default());
        assert!(d.status.too_deep);
        assert_eq!(d.status.max_depth, 1024);
        let d = Dom::parse(
            &"<p>x".repeat(1000),
            &Limits {
                max_nodes: 100,
                ..Limits::default()
            },
        );
        assert!(d.status.too_many_nodes);
        assert!(d.nodes.len() <= 101);
    }

    #[test]
    fn broken_markup_does_not_panic() {
        for s in [
            "<",
            "</",
            "<!",
            "<!-",
            "<!--",
            "<a",
            "<a b",
            "<a b=",
            "<a b='",
            "&",
            "&#",
            "&#x",
            "&#xffffffffff;",
            "<![CDATA[",
            "<?",
            "</a",
            "<a\u{e9}b>\u{e9}",
            "<script>",
            "<title>x",
            "<p =a>",
            "<table><td>",
        ] {
            let _ = parse(s);
        }
    }
}
