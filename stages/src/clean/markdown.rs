//! `clean.markdown`: removes markdown markers from text that already carries them (WET,
//! JSONL or Parquet input, or extractor output with list dashes and table pipes), keeping the
//! words, code text and TeX math.
//!
//! Llama 3 removes markdown markers from its web text; the HTML extractor never writes them,
//! but text sources do. What goes, line by line (outside fenced code and math):
//! - ATX headings (`## Title` -> `Title`, closing `#`s too) and setext underlines (`===`,
//!   `---` under a paragraph line): `headings`;
//! - emphasis delimiters `*x*`, `**x**`, `_x_`, `__x__`, `~~x~~` (CommonMark flanking rules;
//!   a `*` or `_` run inside a word is left alone, so `2*3*4`, `x**2*y**3` and
//!   `snake_case_name` stay): `emphasis`;
//! - links `[text](url "title")` and `[text][ref]` -> `text`, autolinks `<https://..>` -> the
//!   URL, reference definitions `[ref]: url` (whole line): `links`; a `[` right after a letter,
//!   digit, `]` or `)` is an index (`a[i](x)`), not a link;
//! - images `![alt](src)` -> `alt`: `images`;
//! - list markers `-`, `*`, `+`, `1.`, `1)` and task boxes `[ ]`/`[x]`: `lists`;
//! - table pipes (rows with a delimiter row under their header, or rows that start and end with
//!   `|`) -> cells separated by a tab; delimiter rows and rows of empty cells go: `tables`;
//! - code fences (the ```` ``` ````/`~~~` lines; the code between them is kept byte for byte)
//!   and inline code backticks (`` `x` `` -> `x`; a span is matched within its line): `code`;
//! - thematic breaks (`---`, `***`, `___` alone on a line): `rules`.
//!
//! Kept byte for byte: fenced and indented code blocks, math (`$..$`, `$$..$$`, `\(..\)`,
//! `\[..\]`, `\begin{env}..\end{env}`, also over several lines), inline code contents. A `$`
//! opens inline math only before a non-space and closes only after one and not before a digit
//! (pandoc's rule), so prices (`$5 and $10`) are not math. Unfenced source code is not
//! recognized: a `# comment` line there reads as a heading and loses its `#`.
//!
//! Plain text (and extractor output) may hold a stray `# comment` or `- item`; only a document
//! with at least `min_evidence` unmistakable markdown markers is rewritten (`evidence`: code
//! fences, links, images, `**`/`__`/`~~` pairs, table delimiter rows, `##`+ or setext headings,
//! reference definitions), so that the stage can run on any text input safely.
//!
//! The stage only edits text; it never drops a document. Its signals count what it removed.

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Declare, Declared, Sig, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// What [`strip_markdown`] removed, by kind of marker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub headings: u32,
    pub emphasis: u32,
    pub links: u32,
    pub images: u32,
    pub lists: u32,
    pub tables: u32,
    pub code: u32,
    pub rules: u32,
    /// Unmistakable markdown markers seen (counted whether or not the text was rewritten).
    pub evidence: u32,
}

impl Removed {
    pub fn total(&self) -> u32 {
        self.headings
            + self.emphasis
            + self.links
            + self.images
            + self.lists
            + self.tables
            + self.code
            + self.rules
    }
}

/// `[stages.markdown]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkdownConfig {
    /// Unmistakable markdown markers a document needs before it is rewritten (0: always).
    #[serde(default = "min_evidence")]
    pub min_evidence: u32,
}

fn min_evidence() -> u32 {
    2
}

pub static DEF: StageDef = StageDef {
    kind: "clean.markdown",
    about: "Removes markdown markers (headings, emphasis, links, images, lists, tables, fences) from text, keeping code and TeX math",
    example: "min_evidence = 2",
    build,
};

const KINDS: [(&str, &str); 10] = [
    ("headings", "heading markers removed (ATX and setext)"),
    ("emphasis", "emphasis and strike-through pairs removed"),
    (
        "links",
        "links reduced to their text, and reference definitions removed",
    ),
    ("images", "images reduced to their alt text"),
    ("lists", "list item markers removed"),
    ("tables", "table rows whose pipes were removed"),
    ("code", "code fences and inline code spans unwrapped"),
    ("rules", "thematic break lines removed"),
    ("removed_chars", "characters removed from the text"),
    (
        "evidence",
        "unmistakable markdown markers (fences, links, ** pairs, ## headings, ...)",
    ),
];

pub struct Markdown {
    name: String,
    min_evidence: u32,
    sigs: Vec<Sig<I64>>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: MarkdownConfig = args.parse()?;
    let mut d = Declare::new(args.name);
    let sigs = KINDS.iter().map(|&(k, help)| d.signal(k, help)).collect();
    Ok(Built::Map(Box::new(Markdown {
        name: args.name.to_string(),
        min_evidence: cfg.min_evidence,
        sigs,
        declared: d.finish(),
    })))
}

impl Stage for Markdown {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let (out, r) = strip_markdown(doc.text(), self.min_evidence);
        let removed_chars = if r.total() > 0 {
            let before = doc.char_count();
            let after = out.chars().count();
            doc.set_text(out);
            before.saturating_sub(after) as i64
        } else {
            0
        };
        let counts = [
            r.headings, r.emphasis, r.links, r.images, r.lists, r.tables, r.code, r.rules,
        ];
        for (sig, v) in self.sigs.iter().zip(counts) {
            sig.set(&mut doc.signals, v as i64);
        }
        self.sigs[8].set(&mut doc.signals, removed_chars);
        self.sigs[9].set(&mut doc.signals, r.evidence as i64);
        Outcome::Keep
    }
}

/// A multi-line region kept byte for byte.
enum Block {
    None,
    Fence { ch: u8, len: usize },
    Dollars,
    Bracket,
    Env(String),
}

/// Removes markdown markers from `text` (see the module docs) when it shows at least
/// `min_evidence` unmistakable ones; returns the new text and what was removed. Text that is
/// not rewritten comes back unchanged, with only `evidence` counted.
pub fn strip_markdown(text: &str, min_evidence: u32) -> (String, Removed) {
    let mut r = Removed::default();
    let lines: Vec<&str> = text.split('\n').collect();
    let (is_row, is_delim) = tables(&lines);
    let labels: Labels = if text.contains("]:") {
        lines
            .iter()
            .filter_map(|l| reference_definition(l.trim()))
            .map(str::to_lowercase)
            .collect()
    } else {
        Labels::default()
    };
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut block = Block::None;
    // Whether the previous line was paragraph text (a setext underline may follow it), and
    // whether it was blank or indented code (an indented line after it is code).
    let mut prev_para = false;
    let mut prev_blank_or_code = true;
    for (i, raw) in lines.iter().enumerate() {
        let (line, cr) = match raw.strip_suffix('\r') {
            Some(l) => (l, "\r"),
            None => (*raw, ""),
        };
        // Inside a verbatim block.
        match &block {
            Block::None => {}
            Block::Fence { ch, len } => {
                if closes_fence(line, *ch, *len) {
                    block = Block::None;
                    r.code += 1;
                } else {
                    out.push(raw.to_string());
                }
                prev_para = false;
                prev_blank_or_code = true;
                continue;
            }
            Block::Dollars | Block::Bracket | Block::Env(_) => {
                let done = match &block {
                    Block::Dollars => count_unescaped(line, "$$") % 2 == 1,
                    Block::Bracket => line.contains("\\]"),
                    Block::Env(name) => line.contains(&format!("\\end{{{name}}}")),
                    Block::None | Block::Fence { .. } => unreachable!(),
                };
                if done {
                    block = Block::None;
                }
                out.push(raw.to_string());
                prev_para = false;
                prev_blank_or_code = false;
                continue;
            }
        }
        if line.trim().is_empty() {
            out.push(raw.to_string());
            prev_para = false;
            prev_blank_or_code = true;
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        // Indented code: kept as it is.
        if (indent >= 4 || line.starts_with('\t')) && prev_blank_or_code && !prev_para {
            out.push(raw.to_string());
            prev_blank_or_code = true;
            continue;
        }
        prev_blank_or_code = false;
        if let Some((ch, len)) = opens_fence(line) {
            block = Block::Fence { ch, len };
            r.code += 1;
            r.evidence += 1;
            prev_para = false;
            prev_blank_or_code = true;
            continue;
        }
        if let Some(b) = opens_math(line) {
            block = b;
            out.push(raw.to_string());
            prev_para = false;
            continue;
        }
        let was_para = prev_para;
        prev_para = false;
        let t = line.trim();
        if indent <= 3 && was_para && is_setext(t) {
            r.headings += 1;
            r.evidence += 1;
            continue;
        }
        if indent <= 3 && is_rule(t) {
            r.rules += 1;
            continue;
        }
        if indent <= 3 && reference_definition(t).is_some() {
            r.links += 1;
            r.evidence += 1;
            continue;
        }
        if is_delim[i] {
            r.evidence += 1;
            continue;
        }
        if is_row[i] {
            let cells: Vec<String> = split_cells(t)
                .into_iter()
                .map(|c| inline(c.trim(), &mut r, &labels))
                .collect();
            r.tables += 1;
            if cells.iter().all(|c| c.is_empty()) {
                continue;
            }
            out.push(cells.join("\t") + cr);
            continue;
        }
        if indent <= 3 {
            if let Some(h) = atx_heading(t) {
                r.headings += 1;
                r.evidence += t.starts_with("##") as u32;
                out.push(inline(h, &mut r, &labels) + cr);
                continue;
            }
        }
        if let Some(item) = bullet(t) {
            r.lists += 1;
            out.push(inline(item, &mut r, &labels) + cr);
            continue;
        }
        prev_para = true;
        out.push(inline(line, &mut r, &labels) + cr);
    }
    if r.total() == 0 || r.evidence < min_evidence {
        let evidence = r.evidence;
        return (
            text.to_string(),
            Removed {
                evidence,
                ..Default::default()
            },
        );
    }
    (out.join("\n"), r)
}

fn opens_fence(line: &str) -> Option<(u8, usize)> {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return None;
    }
    let ch = *t.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = t.bytes().take_while(|&b| b == ch).count();
    // A backtick fence's info string may not hold a backtick (it would be inline code).
    if len < 3 || (ch == b'`' && t[len..].contains('`')) {
        return None;
    }
    Some((ch, len))
}

fn closes_fence(line: &str, ch: u8, len: usize) -> bool {
    let t = line.trim_start_matches(' ');
    if line.len() - t.len() > 3 {
        return false;
    }
    let n = t.bytes().take_while(|&b| b == ch).count();
    n >= len && t[n..].trim().is_empty()
}

/// The block a line opens when it starts math that it does not close. Math markers inside
/// inline code (`` `$$` ``, as docs that describe TeX write them) open nothing.
fn opens_math(line: &str) -> Option<Block> {
    let blanked;
    let line = if line.contains('`') {
        blanked = blank_code_spans(line);
        blanked.as_str()
    } else {
        line
    };
    if count_unescaped(line, "$$") % 2 == 1 {
        return Some(Block::Dollars);
    }
    if let Some(i) = line.rfind("\\[") {
        if !line[i..].contains("\\]") {
            return Some(Block::Bracket);
        }
    }
    if let Some(i) = line.rfind("\\begin{") {
        let rest = &line[i + 7..];
        let name = &rest[..rest.find('}')?];
        if !rest.contains(&format!("\\end{{{name}}}")) {
            return Some(Block::Env(name.to_string()));
        }
    }
    None
}

/// `line` with the text of its backtick code spans (a run of n ticks closed by the next run
/// of exactly n) replaced by spaces.
fn blank_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let n = run_len(&chars, i, '`');
        match find_ticks(&chars, i + n, n) {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end + n - i));
                i = end + n;
            }
            None => {
                out.extend(&chars[i..i + n]);
                i += n;
            }
        }
    }
    out
}

fn count_unescaped(line: &str, pat: &str) -> usize {
    line.match_indices(pat)
        .filter(|(i, _)| !line[..*i].ends_with('\\'))
        .count()
}

fn is_setext(t: &str) -> bool {
    t.len() >= 2 && (t.bytes().all(|b| b == b'=') || t.bytes().all(|b| b == b'-'))
}

fn is_rule(t: &str) -> bool {
    let Some(c) = t.chars().next() else {
        return false;
    };
    matches!(c, '-' | '*' | '_')
        && t.chars().all(|x| x == c || x == ' ' || x == '\t')
        && t.chars().filter(|&x| x == c).count() >= 3
}

/// Labels of the document's reference definitions, lower-cased.
type Labels = rustc_hash::FxHashSet<String>;

/// `[label]: destination ...` (footnote definitions `[^1]: text` carry text and stay): the
/// label.
fn reference_definition(t: &str) -> Option<&str> {
    let rest = t.strip_prefix('[')?;
    let end = rest.find("]:")?;
    let label = &rest[..end];
    let dest = rest[end + 2..].trim();
    let ok = !label.is_empty()
        && !label.starts_with('^')
        && !label.contains('[')
        && !dest.is_empty()
        && !dest.contains(' ');
    ok.then_some(label)
}

fn atx_heading(t: &str) -> Option<&str> {
    let n = t.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&n) {
        return None;
    }
    let rest = &t[n..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    // An optional closing sequence of `#`s after a space.
    let body = rest.trim_end_matches('#');
    if body.is_empty() {
        return Some("");
    }
    if body.len() < rest.len() && body.ends_with([' ', '\t']) {
        return Some(body.trim_end());
    }
    Some(rest)
}

/// The content of a list item (bullet or number, spaces and a task box removed).
fn bullet(t: &str) -> Option<&str> {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let marker = match t.as_bytes().get(digits) {
        Some(b'.' | b')') if (1..=9).contains(&digits) => digits + 1,
        Some(b'-' | b'*' | b'+') if digits == 0 => 1,
        _ => return None,
    };
    let rest = &t[marker..];
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    if rest.is_empty() {
        return None;
    }
    for b in ["[ ] ", "[x] ", "[X] "] {
        if let Some(r) = rest.strip_prefix(b) {
            return Some(r.trim_start());
        }
    }
    Some(rest)
}

fn is_delim_row(t: &str) -> bool {
    if !t.contains('|') || !t.contains('-') {
        return false;
    }
    let cells = split_cells(t);
    !cells.is_empty()
        && cells.iter().all(|c| {
            let c = c.trim();
            let c = c.strip_prefix(':').unwrap_or(c);
            let c = c.strip_suffix(':').unwrap_or(c);
            !c.is_empty() && c.bytes().all(|b| b == b'-')
        })
}

/// Which lines are table rows and which are delimiter rows.
fn tables(lines: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let n = lines.len();
    let mut row = vec![false; n];
    let mut delim = vec![false; n];
    if !lines.iter().any(|l| l.contains('|')) {
        return (row, delim);
    }
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim();
        if t.len() >= 2 && t.starts_with('|') && t.ends_with('|') {
            row[i] = true;
        }
        if i > 0 && is_delim_row(t) && lines[i - 1].contains('|') && !lines[i - 1].trim().is_empty()
        {
            delim[i] = true;
            row[i - 1] = true;
            for j in i + 1..n {
                let u = lines[j].trim();
                if u.is_empty() || !u.contains('|') {
                    break;
                }
                row[j] = true;
            }
        }
    }
    for i in 0..n {
        if delim[i] {
            row[i] = false;
        }
    }
    (row, delim)
}

/// Cells of a table row: split at pipes outside inline code, `\|` kept as a pipe; the outer
/// pipes make no cell.
fn split_cells(t: &str) -> Vec<String> {
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = if t.ends_with('|') && !t.ends_with("\\|") {
        &t[..t.len() - 1]
    } else {
        t
    };
    let mut cells = vec![String::new()];
    let mut in_code = false;
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '`' => {
                in_code = !in_code;
                cells.last_mut().unwrap().push(c);
            }
            '|' if !in_code => cells.push(String::new()),
            _ => cells.last_mut().unwrap().push(c),
        }
    }
    cells
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

/// A run of emphasis delimiters in the scanned buffer.
struct Run {
    start: usize,
    len: usize,
    ch: char,
    open: bool,
    close: bool,
    removed: bool,
}

/// Removes inline markers from one line.
fn inline(s: &str, r: &mut Removed, labels: &Labels) -> String {
    if !s.contains(['*', '_', '~', '[', '`', '<', '\\', '$']) {
        return s.to_string();
    }
    let chars: Vec<char> = s.chars().collect();
    let mut buf: Vec<char> = Vec::with_capacity(chars.len());
    let mut runs: Vec<Run> = Vec::new();
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = at(i + 1);
                if let Some(end) = match next {
                    Some('(') => find_seq(&chars, i + 2, &['\\', ')']),
                    Some('[') => find_seq(&chars, i + 2, &['\\', ']']),
                    _ => None,
                } {
                    buf.extend_from_slice(&chars[i..end + 2]);
                    i = end + 2;
                    continue;
                }
                if starts_with(&chars, i, "\\begin{") {
                    if let Some(end) = env_end(&chars, i) {
                        buf.extend_from_slice(&chars[i..end]);
                        i = end;
                        continue;
                    }
                }
                // A markdown escape of a marker character: the character itself.
                if let Some(n @ ('*' | '_' | '`' | '[' | ']' | '#' | '|' | '~')) = next {
                    buf.push(n);
                    i += 2;
                    continue;
                }
                buf.push(c);
                i += 1;
            }
            '`' => {
                let n = run_len(&chars, i, '`');
                // Ticks glued to letters or digits on the outside are not a span (shell
                // command substitution, Maxima symbols): removing them would join words.
                let outside = |k: usize| chars.get(k).is_some_and(|c| c.is_alphanumeric());
                let span = find_ticks(&chars, i + n, n)
                    .filter(|&e| !outside(e + n) && (i == 0 || !outside(i - 1)));
                match span {
                    Some(end) => {
                        // Spaces inside the ticks stay: a span cut by a line break (spans are
                        // matched within a line) must not glue words together.
                        buf.extend_from_slice(&chars[i + n..end]);
                        r.code += 1;
                        i = end + n;
                    }
                    None => {
                        buf.extend_from_slice(&chars[i..i + n]);
                        i += n;
                    }
                }
            }
            '$' => {
                let end = if at(i + 1) == Some('$') {
                    find_seq(&chars, i + 2, &['$', '$']).map(|e| e + 2)
                } else {
                    inline_math_end(&chars, i)
                };
                match end {
                    Some(end) => {
                        buf.extend_from_slice(&chars[i..end]);
                        i = end;
                    }
                    None => {
                        buf.push(c);
                        i += 1;
                    }
                }
            }
            '!' if at(i + 1) == Some('[') => match link(&chars, i + 1, labels) {
                Some((text, end)) => {
                    buf.extend(inline(&text, r, labels).chars());
                    r.images += 1;
                    r.evidence += 1;
                    i = end;
                }
                None => {
                    buf.push(c);
                    i += 1;
                }
            },
            '[' => {
                let prev = if i > 0 { Some(chars[i - 1]) } else { None };
                let index = prev.is_some_and(|p| p.is_alphanumeric() || p == ']' || p == ')');
                match if index { None } else { link(&chars, i, labels) } {
                    Some((text, end)) => {
                        buf.extend(inline(&text, r, labels).chars());
                        r.links += 1;
                        r.evidence += 1;
                        i = end;
                    }
                    None => {
                        buf.push(c);
                        i += 1;
                    }
                }
            }
            // `Type<A::B>` after an identifier is a C++ template, not an autolink.
            '<' if !(i > 0 && chars[i - 1].is_alphanumeric()) => match autolink(&chars, i) {
                Some(end) => {
                    buf.extend_from_slice(&chars[i + 1..end]);
                    r.links += 1;
                    i = end + 1;
                }
                None => {
                    buf.push(c);
                    i += 1;
                }
            },
            '*' | '_' | '~' => {
                let n = run_len(&chars, i, c);
                let before = if i > 0 { chars[i - 1] } else { ' ' };
                let after = at(i + n).unwrap_or(' ');
                let left = !after.is_whitespace()
                    && (!is_punct(after) || before.is_whitespace() || is_punct(before));
                let right = !before.is_whitespace()
                    && (!is_punct(before) || after.is_whitespace() || is_punct(after));
                let (open, close) = match c {
                    // Not inside a word: `2*3*4` and Fortran's `x**2*y**3` are arithmetic.
                    '*' => (
                        left && !before.is_alphanumeric(),
                        right && !after.is_alphanumeric(),
                    ),
                    '_' => (
                        left && (!right || is_punct(before)),
                        right && (!left || is_punct(after)),
                    ),
                    // `~` alone often means "about"; only `~~` strikes through.
                    _ => (left && n == 2, right && n == 2),
                };
                if (open || close) && n <= 3 {
                    runs.push(Run {
                        start: buf.len(),
                        len: n,
                        ch: c,
                        open,
                        close,
                        removed: false,
                    });
                }
                buf.extend_from_slice(&chars[i..i + n]);
                i += n;
            }
            _ => {
                buf.push(c);
                i += 1;
            }
        }
    }
    // Pair closers with the nearest opener of the same character and length.
    let mut stack: Vec<usize> = Vec::new();
    for k in 0..runs.len() {
        if runs[k].close {
            if let Some(pos) = stack
                .iter()
                .rposition(|&o| runs[o].ch == runs[k].ch && runs[o].len == runs[k].len)
            {
                let o = stack[pos];
                runs[o].removed = true;
                runs[k].removed = true;
                stack.truncate(pos);
                r.emphasis += 1;
                r.evidence += (runs[k].len >= 2) as u32;
                continue;
            }
        }
        if runs[k].open {
            stack.push(k);
        }
    }
    if runs.iter().all(|x| !x.removed) {
        return buf.into_iter().collect();
    }
    let mut out = String::with_capacity(buf.len());
    let mut skip = runs.iter().filter(|x| x.removed).peekable();
    let mut j = 0;
    while j < buf.len() {
        if let Some(run) = skip.peek() {
            if run.start == j {
                j += run.len;
                skip.next();
                continue;
            }
        }
        out.push(buf[j]);
        j += 1;
    }
    out
}

fn run_len(chars: &[char], i: usize, c: char) -> usize {
    chars[i..].iter().take_while(|&&x| x == c).count()
}

fn starts_with(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(k, c)| chars.get(i + k) == Some(&c))
}

/// The index where `seq` next starts at or after `from`.
fn find_seq(chars: &[char], from: usize, seq: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(seq.len() - 1)).find(|&k| chars[k..].starts_with(seq))
}

/// The end (exclusive) of `\begin{name}...\end{name}` starting at `i`, on this line.
fn env_end(chars: &[char], i: usize) -> Option<usize> {
    let open = i + 7;
    let close = open + chars[open..].iter().position(|&c| c == '}')?;
    let name: String = chars[open..close].iter().collect();
    let end: Vec<char> = format!("\\end{{{name}}}").chars().collect();
    find_seq(chars, close, &end).map(|k| k + end.len())
}

/// The closing run of exactly `n` backticks at or after `from`.
fn find_ticks(chars: &[char], from: usize, n: usize) -> Option<usize> {
    let mut k = from;
    while k < chars.len() {
        if chars[k] == '`' {
            let m = run_len(chars, k, '`');
            if m == n {
                return Some(k);
            }
            k += m;
        } else {
            k += 1;
        }
    }
    None
}

/// The end (exclusive) of inline math `$...$` opening at `i`: the opener has a non-space
/// after it, the closer a non-space before it and no digit after it.
fn inline_math_end(chars: &[char], i: usize) -> Option<usize> {
    let first = *chars.get(i + 1)?;
    if first.is_whitespace() {
        return None;
    }
    let mut k = i + 1;
    while k < chars.len() {
        match chars[k] {
            '\\' => k += 2,
            '$' => {
                let closes = !chars[k - 1].is_whitespace()
                    && k > i + 1
                    && !chars.get(k + 1).is_some_and(|c| c.is_ascii_digit());
                return closes.then_some(k + 1);
            }
            _ => k += 1,
        }
    }
    None
}

/// `[text](dest "title")` or `[text][ref]` starting at `i` (the `[`): the text and the end.
fn link(chars: &[char], i: usize, labels: &Labels) -> Option<(String, usize)> {
    let mut depth = 0usize;
    let mut k = i;
    let close = loop {
        match chars.get(k)? {
            '\\' => k += 1,
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break k;
                }
            }
            '`' => {
                // Brackets inside inline code do not count.
                let n = run_len(chars, k, '`');
                if let Some(e) = find_ticks(chars, k + n, n) {
                    k = e + n - 1;
                }
            }
            _ => {}
        }
        k += 1;
    };
    let text: String = chars[i + 1..close].iter().collect();
    match chars.get(close + 1) {
        Some('(') => {
            let mut k = close + 2;
            while chars.get(k).is_some_and(|c| *c == ' ') {
                k += 1;
            }
            if chars.get(k) == Some(&'<') {
                k += chars[k..].iter().position(|&c| c == '>')? + 1;
            } else {
                let mut parens = 0usize;
                while let Some(&c) = chars.get(k) {
                    match c {
                        '(' => parens += 1,
                        ')' if parens == 0 => break,
                        ')' => parens -= 1,
                        c if c.is_whitespace() => break,
                        _ => {}
                    }
                    k += 1;
                }
            }
            while chars.get(k).is_some_and(|c| *c == ' ') {
                k += 1;
            }
            if let Some(&q @ ('"' | '\'' | '(')) = chars.get(k) {
                let qe = if q == '(' { ')' } else { q };
                k += 1 + chars[k + 1..].iter().position(|&c| c == qe)? + 1;
                while chars.get(k).is_some_and(|c| *c == ' ') {
                    k += 1;
                }
            }
            (chars.get(k) == Some(&')')).then_some((text, k + 1))
        }
        // `[text][label]` and `[text][]` are links only when the label is defined.
        Some('[') => {
            let rest = &chars[close + 2..];
            let end = rest.iter().position(|&c| c == ']')?;
            let label: String = rest[..end].iter().collect();
            let label = if label.is_empty() { &text } else { &label };
            labels
                .contains(&label.to_lowercase())
                .then_some((text, close + 2 + end + 1))
        }
        _ => None,
    }
}

/// `<scheme:...>` or `<user@host>` starting at `i`: the index of the `>`.
fn autolink(chars: &[char], i: usize) -> Option<usize> {
    let end = i + chars[i..].iter().position(|&c| c == '>')?;
    let inner = &chars[i + 1..end];
    if inner.is_empty() || inner.iter().any(|c| c.is_whitespace() || *c == '<') {
        return None;
    }
    let colon = inner.iter().position(|&c| c == ':');
    let uri = colon.is_some_and(|p| {
        (2..=32).contains(&p)
            && inner.get(p + 1) != Some(&':')
            && inner[0].is_ascii_alphabetic()
            && inner[..p]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    });
    let email = colon.is_none() && {
        let at = inner.iter().position(|&c| c == '@');
        at.is_some_and(|a| a > 0 && inner[a + 1..].contains(&'.'))
    };
    (uri || email).then_some(end)
}

#[cfg(test)]
mod tests;
