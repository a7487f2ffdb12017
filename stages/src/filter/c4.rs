//! `filter.c4`: C4's line-level cleaning and document rules (Raffel et al. 2020, section 2.2,
//! as datatrove's `C4QualityFilter` implements them).
//!
//! Each line (Python's `splitlines`, surrounding whitespace stripped) is removed when, in this
//! order: a whitespace-separated word is longer than `max_word_length` characters; after
//! Wikipedia-style citations (`[1]`, `[edit]`, `[citation needed]`) are deleted, it does not end
//! in terminal punctuation (`.`, `?`, `!`, `"`, `'`; an ellipsis does not count); it has fewer
//! than `min_words_per_line` words; it mentions "javascript"; it holds a cookie or policy
//! phrase. The document fails when a surviving line contains "lorem ipsum" or a curly bracket,
//! or when the surviving lines hold fewer than `min_num_sentences` sentences.
//!
//! Sentences are counted on the shared word view, spaCy's sentencizer rule: a sentence ends
//! after a sentence-terminal token (`.`, `!`, `?`, `。`, ...) once a token that is not
//! punctuation follows. A kept document's text becomes its surviving lines joined by `\n`;
//! the removed lines are counted per reason. Dropped documents keep their text.
//!
//! With `per_language = true`, a page of another language than English is cleaned by its own
//! conventions: a line may end in any sentence-terminal character (Unicode's
//! `Sentence_Terminal`: `。`, `।`, `؟`, ...), also before a closing quote or bracket (`。」`),
//! and `min_words_per_line` comes from its language's row of the per-language table
//! ([`crate::lang_rules`]), counting dictionary words in scripts written without spaces. A
//! language without a row (`rules = "neutral"`) has no words-per-line rule. English and pages
//! without a `lang` keep C4's rules as they are.

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Bool, Declare, Declared, Sig, Str, I64};
use crate::lang_rules::{LangOverrides, LangTable, Scope};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::text::{chars, Word};
use crate::Document;

/// Phrases of cookie banners and legal boilerplate (C4's policy list).
pub const POLICY_PHRASES: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
];

/// `[stages.c4]`: C4's rules; defaults as in the paper and datatrove.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C4Config {
    /// Delete Wikipedia-style citation marks before the line checks.
    pub remove_citations: bool,
    /// Remove lines that do not end in terminal punctuation.
    pub filter_no_terminal_punct: bool,
    /// Minimum sentences in the surviving lines (0 disables).
    pub min_num_sentences: u64,
    /// Remove lines with fewer words (0 disables).
    pub min_words_per_line: u64,
    /// Remove lines with a longer word, in characters (0 disables).
    pub max_word_length: u64,
    /// Drop documents with "lorem ipsum" in a surviving line.
    pub filter_lorem_ipsum: bool,
    /// Remove lines mentioning "javascript".
    pub filter_javascript: bool,
    /// Drop documents with a curly bracket in a surviving line.
    pub filter_curly_bracket: bool,
    /// Remove lines with cookie and policy phrases.
    pub filter_policy: bool,
    /// Replace the text of kept documents with their surviving lines.
    pub edit_text: bool,
    /// Clean each language by its own conventions and row of the per-language table.
    pub per_language: bool,
    /// Per-language overrides of the table: `[stages.NAME.lang.de]` `min_words_per_line = 2`.
    pub lang: LangOverrides,
}

impl Default for C4Config {
    fn default() -> Self {
        C4Config {
            remove_citations: true,
            filter_no_terminal_punct: true,
            min_num_sentences: 5,
            min_words_per_line: 3,
            max_word_length: 1000,
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
            edit_text: true,
            per_language: false,
            lang: LangOverrides::new(),
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "filter.c4",
    about: "C4 line cleaning (terminal punctuation, short lines, javascript, policy) and document rules",
    example: "min_num_sentences = 5\nmin_words_per_line = 3\nfilter_policy = true",
    build,
};

struct Sigs {
    sentences: Sig<I64>,
    lines_kept: Sig<I64>,
    chars_removed: Sig<I64>,
    removed_long_word: Sig<I64>,
    removed_no_terminal_punct: Sig<I64>,
    removed_few_words: Sig<I64>,
    removed_javascript: Sig<I64>,
    removed_policy: Sig<I64>,
    lorem_ipsum: Sig<Bool>,
    curly_bracket: Sig<Bool>,
    /// Which conventions cleaned the page (`per_language` only).
    rules: Option<Sig<Str>>,
}

pub struct C4 {
    name: String,
    /// The per-language table with this stage's `lang` overrides applied.
    table: LangTable,
    cfg: C4Config,
    sig: Sigs,
    declared: Declared,
    phrases: aho_corasick::AhoCorasick,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: C4Config = args.parse()?;
    let table = crate::lang_rules::stage_table(cfg.per_language, &cfg.lang)?;
    let mut d = Declare::new(args.name);
    let sig = Sigs {
        sentences: d.signal("sentences", "sentences in the surviving lines"),
        lines_kept: d.signal("lines_kept", "lines kept"),
        chars_removed: d.signal("chars_removed", "characters removed from the text"),
        removed_long_word: d.signal(
            "lines_removed_long_word",
            "lines removed: a word over max_word_length",
        ),
        removed_no_terminal_punct: d.signal(
            "lines_removed_no_terminal_punct",
            "lines removed: no terminal punctuation",
        ),
        removed_few_words: d.signal(
            "lines_removed_few_words",
            "lines removed: fewer than min_words_per_line words",
        ),
        removed_javascript: d.signal(
            "lines_removed_javascript",
            "lines removed: mention javascript",
        ),
        removed_policy: d.signal(
            "lines_removed_policy",
            "lines removed: cookie or policy phrase",
        ),
        lorem_ipsum: d.signal("lorem_ipsum", "a surviving line contains lorem ipsum"),
        curly_bracket: d.signal("curly_bracket", "a surviving line contains a curly bracket"),
        rules: cfg.per_language.then(|| {
            d.signal(
                "rules",
                "the per-language row that cleaned the page (neutral: none)",
            )
        }),
    };
    if let Some(rules) = sig.rules {
        d.per_language(rules, table.limits());
    }
    d.flag(sig.lorem_ipsum, "lorem_ipsum");
    d.flag(sig.curly_bracket, "curly_bracket");
    // 0 disables the sentence rule.
    let min_sentences = Some(cfg.min_num_sentences).filter(|&n| n > 0);
    d.min(
        sig.sentences,
        crate::declare::count(min_sentences),
        "min_num_sentences",
        "too_few_sentences",
    );
    Ok(Built::Map(Box::new(C4 {
        name: args.name.to_string(),
        table,
        cfg,
        phrases: phrase_matcher(),
        sig,
        declared: d.finish(),
    })))
}

/// The outcome of C4's line pass over one document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LinePass {
    /// The surviving lines joined by `\n`.
    pub text: String,
    pub lines_kept: usize,
    pub sentences: usize,
    pub removed_long_word: usize,
    pub removed_no_terminal_punct: usize,
    pub removed_few_words: usize,
    pub removed_javascript: usize,
    pub removed_policy: usize,
    pub lorem_ipsum: bool,
    pub curly_bracket: bool,
}

/// Byte ranges of citation marks: `[digits]`, `[edit]`, `[citation needed]`.
fn citations(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'[', &b[i..]) {
        let at = i + k;
        let rest = &line[at + 1..];
        let digits: usize = rest
            .char_indices()
            .take_while(|(_, c)| c.is_numeric())
            .map(|(j, c)| j + c.len_utf8())
            .last()
            .unwrap_or(0);
        let len = if rest[digits..].starts_with(']') {
            Some(digits + 1)
        } else if rest.starts_with("edit]") {
            Some(5)
        } else if rest.starts_with("citation needed]") {
            Some(16)
        } else {
            None
        };
        match len {
            Some(l) => {
                out.push((at, at + 1 + l));
                i = at + 1 + l;
            }
            None => i = at + 1,
        }
    }
    out
}

/// Whether the character at byte `i` of `line` is white space for Python's `str.split()`, and
/// its length in bytes. Only the lead bytes of Unicode spaces (0xC2, 0xE1-0xE3) decode the
/// character; others are letters of a word.
#[inline]
fn char_at(line: &str, i: usize) -> (bool, usize) {
    let b = line.as_bytes();
    let c = b[i];
    if c < 0x80 {
        (
            matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f),
            1,
        )
    } else if matches!(c, 0xc2 | 0xe1 | 0xe2 | 0xe3) {
        let ch = line[i..].chars().next().expect("char boundary");
        (chars::is_space(ch), ch.len_utf8())
    } else {
        // A lead byte and its continuation bytes: one character, not a space.
        let mut k = 1;
        while i + k < b.len() && (b[i + k] & 0xc0) == 0x80 {
            k += 1;
        }
        (false, k)
    }
}

/// Number of whitespace-separated words (Python's `str.split()`) and the length of the longest
/// in characters, in one pass over the bytes.
fn whitespace_words(line: &str) -> (usize, usize) {
    let b = line.as_bytes();
    let (mut n, mut longest, mut cur) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let (space, len) = char_at(line, i);
        if space {
            if cur > 0 {
                n += 1;
                longest = longest.max(cur);
                cur = 0;
            }
        } else {
            cur += 1;
        }
        i += len;
    }
    if cur > 0 {
        n += 1;
        longest = longest.max(cur);
    }
    (n, longest)
}

/// Whether the line holds at least `min` whitespace-separated words (Python's `str.split()`),
/// looking no further than the `min`-th.
fn has_words(line: &str, min: usize) -> bool {
    let b = line.as_bytes();
    let mut n = 0usize;
    let mut in_word = false;
    let mut i = 0;
    while i < b.len() {
        let (space, len) = char_at(line, i);
        if space {
            in_word = false;
        } else if !in_word {
            in_word = true;
            n += 1;
            if n >= min {
                return true;
            }
        }
        i += len;
    }
    n >= min
}

/// Sentences in a run of tokens (spaCy's sentencizer rule).
fn count_sentences<'a>(tokens: impl Iterator<Item = &'a Word>) -> usize {
    let mut n = 0usize;
    let mut seen_terminal = false;
    for w in tokens {
        if n == 0 {
            n = 1;
        }
        let terminal = w.flags & Word::STERM != 0;
        if seen_terminal && w.flags & Word::ALL_PUNCT == 0 && !terminal {
            n += 1;
            seen_terminal = false;
        } else if terminal {
            seen_terminal = true;
        }
    }
    n
}

/// Phrases the line rules look for, matched case-insensitively in one pass.
const LOREM: usize = 0;
const JAVASCRIPT: usize = 1;
const FIRST_POLICY: usize = 2;

fn phrase_matcher() -> aho_corasick::AhoCorasick {
    let mut pats = vec!["lorem ipsum", "javascript"];
    pats.extend_from_slice(POLICY_PHRASES);
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        // A full DFA: one table lookup per byte (the patterns are few and short).
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(pats)
        .expect("small fixed patterns")
}

/// Bit `i` set when phrase `i` occurs in the line. Non-overlapping matches suffice: only
/// policy phrases can overlap one another ("terms of use cookies"), and any one of them
/// removes the line.
fn phrases_in(ac: &aho_corasick::AhoCorasick, line: &str) -> u32 {
    ac.find_iter(line)
        .fold(0u32, |m, x| m | 1 << x.pattern().as_usize())
}

/// How lines of one page are judged: C4's English rules, or a language's own conventions.
#[derive(Clone, Copy, Debug)]
struct LineRules {
    /// Any sentence-terminal character ends a line (not only C4's `.?!"'`).
    any_terminal: bool,
    /// Minimum words per line (0: no rule).
    min_words: usize,
    /// Count dictionary words (the shared segmentation) in lines of scripts without spaces.
    segmented: bool,
}

/// Closing quotes and brackets that may follow a sentence's terminal character.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | '」' | '』' | '”' | '’' | '»' | '）' | '】' | '》' | '〉' | '›'
    )
}

/// Whether a line ends a sentence in any script: a sentence-terminal character, possibly
/// before closing quotes or brackets (`。」`); an ellipsis does not count.
fn ends_sentence(line: &str) -> bool {
    if line.ends_with("...") || line.ends_with('\u{2026}') {
        return false;
    }
    line.ends_with(['.', '?', '!', '"', '\''])
        || line
            .trim_end_matches(is_closer)
            .chars()
            .next_back()
            .is_some_and(chars::is_sterm)
}

/// Whether a line holds at least `min` words, counting the shared segmentation's words (tokens
/// with a letter or digit) when the line has a script written without spaces.
fn has_segmented_words(line: &str, min: usize) -> bool {
    if has_words(line, min) {
        return true;
    }
    if !line.chars().any(|c| chars::is(c, chars::NO_SPACE)) {
        return false;
    }
    let mut n = 0usize;
    crate::text::words::for_each_token(line, |a, b| {
        n += line[a..b].chars().any(|c| c.is_alphanumeric()) as usize;
    });
    n >= min
}

impl C4 {
    /// Runs the line rules over a document.
    pub fn line_pass(&self, doc: &Document) -> LinePass {
        self.line_pass_with(doc, self.english_rules())
    }

    fn english_rules(&self) -> LineRules {
        LineRules {
            any_terminal: false,
            min_words: self.cfg.min_words_per_line as usize,
            segmented: false,
        }
    }

    /// The line rules of a page in `scope`.
    fn rules_for(&self, scope: &Scope) -> LineRules {
        match scope {
            Scope::Configured(_) => self.english_rules(),
            Scope::Lang(row) => LineRules {
                any_terminal: true,
                min_words: if self.cfg.min_words_per_line == 0 {
                    0
                } else {
                    // A row an override added without this key: off, as for a neutral page.
                    row.get("min_words_per_line").map_or(0, |v| v as usize)
                },
                segmented: true,
            },
            Scope::Neutral => LineRules {
                any_terminal: true,
                min_words: 0,
                segmented: true,
            },
        }
    }

    fn line_pass_with(&self, doc: &Document, rules: LineRules) -> LinePass {
        let c = &self.cfg;
        let text = doc.text();
        let words = doc.words();
        let base = text.as_ptr() as usize;
        let mut out = LinePass::default();
        let mut cursor = 0usize; // first word not before the current line
        for r in doc.py_lines() {
            let raw = &text[r.start as usize..r.end as usize];
            let line = chars::strip(raw);
            let line_start = line.as_ptr() as usize - base;
            let line_end = line_start + line.len();
            // Whitespace-separated words of the stripped line (before citation removal). A
            // word is no longer in characters than the line is in bytes: short lines need no
            // count of the longest.
            let long_word = c.max_word_length > 0
                && line.len() as u64 > c.max_word_length
                && whitespace_words(line).1 as u64 > c.max_word_length;
            if long_word {
                out.removed_long_word += 1;
                continue;
            }
            let cites = if c.remove_citations {
                citations(line)
            } else {
                Vec::new()
            };
            let cleaned: std::borrow::Cow<str> = if cites.is_empty() {
                line.into()
            } else {
                let mut s = String::with_capacity(line.len());
                let mut last = 0;
                for &(a, b) in &cites {
                    s.push_str(&line[last..a]);
                    last = b;
                }
                s.push_str(&line[last..]);
                s.into()
            };
            let terminal = if rules.any_terminal {
                ends_sentence(&cleaned)
            } else {
                cleaned.ends_with(['.', '?', '!', '"', '\'']) && !cleaned.ends_with("...")
            };
            if c.filter_no_terminal_punct && !terminal {
                out.removed_no_terminal_punct += 1;
                continue;
            }
            let enough_words = if rules.segmented {
                has_segmented_words(line, rules.min_words)
            } else {
                has_words(line, rules.min_words)
            };
            if rules.min_words > 0 && !enough_words {
                out.removed_few_words += 1;
                continue;
            }
            // Only lines that got this far are searched (after citation removal: deleting one
            // can make or break a phrase).
            let found = phrases_in(&self.phrases, &cleaned);
            if c.filter_lorem_ipsum && found & 1 << LOREM != 0 {
                out.lorem_ipsum = true;
                break;
            }
            if c.filter_javascript && found & 1 << JAVASCRIPT != 0 {
                out.removed_javascript += 1;
                continue;
            }
            if c.filter_curly_bracket && cleaned.contains('{') {
                out.curly_bracket = true;
                break;
            }
            if c.filter_policy && found >> FIRST_POLICY != 0 {
                out.removed_policy += 1;
                continue;
            }
            if c.min_num_sentences > 0 {
                // The line's tokens from the shared view, skipping those inside citations.
                while cursor < words.len() && (words[cursor].start as usize) < line_start {
                    cursor += 1;
                }
                let mut end = cursor;
                while end < words.len() && (words[end].end as usize) <= line_end {
                    end += 1;
                }
                let in_cite = |w: &Word| {
                    let (a, b) = (w.start as usize - line_start, w.end as usize - line_start);
                    cites.iter().any(|&(x, y)| a >= x && b <= y)
                };
                out.sentences += count_sentences(words[cursor..end].iter().filter(|w| !in_cite(w)));
            }
            if out.lines_kept > 0 {
                out.text.push('\n');
            }
            out.text.push_str(&cleaned);
            out.lines_kept += 1;
        }
        out
    }
}

impl Stage for C4 {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let scope = if self.cfg.per_language {
            self.table.scope(doc.lang())
        } else {
            Scope::Configured(crate::lang_rules::DEFAULT)
        };
        let pass = self.line_pass_with(doc, self.rules_for(&scope));
        if let Some(rules) = self.sig.rules {
            rules.set(&mut doc.signals, scope.label());
        }
        let joined = chars::strip(&pass.text).to_string();
        let removed = doc
            .char_count()
            .saturating_sub(crate::text::count_chars(&joined));
        let sig = &self.sig;
        let s = &mut doc.signals;
        sig.sentences.set(s, pass.sentences as i64);
        sig.lines_kept.set(s, pass.lines_kept as i64);
        sig.removed_long_word.set(s, pass.removed_long_word as i64);
        sig.removed_no_terminal_punct
            .set(s, pass.removed_no_terminal_punct as i64);
        sig.removed_few_words.set(s, pass.removed_few_words as i64);
        sig.removed_javascript
            .set(s, pass.removed_javascript as i64);
        sig.removed_policy.set(s, pass.removed_policy as i64);
        sig.lorem_ipsum.set(s, pass.lorem_ipsum);
        sig.curly_bracket.set(s, pass.curly_bracket);
        let kept = self.judge(&doc.signals).is_keep();
        sig.chars_removed
            .set(&mut doc.signals, if kept { removed as i64 } else { 0 });
        if kept && self.cfg.edit_text && joined != doc.text() {
            doc.set_text(joined);
        }
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit;

    const PAGE: &str = "Menu\nHome | About\nThe keepers lit the lamp at dusk. They trimmed the wick at midnight.\n\
        Please enable JavaScript to view this page.\nBy using this site you agree to our Privacy Policy.\n\
        Storms broke the glass twice [1]. The second time, the lens survived!\nWhat did they eat? Mostly fish.\n\
        Short one.\nThe tower still stands today, and visitors climb it every summer.";

    #[test]
    fn other_languages_end_sentences_and_count_words_their_way() {
        assert!(ends_sentence("今天天气很好。"));
        assert!(ends_sentence("「そうですか。」"));
        assert!(ends_sentence("क्या यह सही है।"));
        assert!(!ends_sentence("目录"));
        assert!(!ends_sentence("Wait..."));
        assert!(has_segmented_words("今天天气很好", 3));
        assert!(!has_segmented_words("目录", 2));
        // A Chinese page: C4's English rules remove every line, its own keep them.
        let page = "今天天气很好，我们去公园散步。\n公园里有很多人在锻炼身体。\n孩子们在草地上玩耍。\n                    老人们在树下下棋聊天。\n我们走了一个小时才回家。\n晚上大家都很高兴。";
        let mut d = Document::new("zh", page);
        d.signals.set_str(crate::LANG_SIGNAL, "zh");
        let en = kit::stage(&DEF, "c4", "").unwrap();
        en.process(&mut d);
        assert_eq!(d.signals.i64("c4.lines_kept"), Some(0));
        let zh = kit::stage(&DEF, "c4", "per_language = true").unwrap();
        zh.process(&mut d);
        assert_eq!(d.signals.i64("c4.lines_kept"), Some(6));
        assert_eq!(d.signals.str("c4.rules"), Some("zh"));
        assert_eq!(zh.judge(&d.signals), Outcome::Keep);
    }

    #[test]
    fn lines_are_removed_and_counted() {
        let s = kit::stage(&DEF, "c4", DEF.example).unwrap();
        let mut d = Document::new("a", PAGE);
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Keep, "{:?}", d.signals);
        assert_eq!(
            d.text(),
            "The keepers lit the lamp at dusk. They trimmed the wick at midnight.\n\
             Storms broke the glass twice . The second time, the lens survived!\n\
             What did they eat? Mostly fish.\n\
             The tower still stands today, and visitors climb it every summer."
        );
        let g = |k: &str| d.signals.i64(&format!("c4.{k}")).unwrap();
        assert_eq!(g("sentences"), 7);
        assert_eq!(g("lines_kept"), 4);
        assert_eq!(g("lines_removed_no_terminal_punct"), 2);
        assert_eq!(g("lines_removed_few_words"), 1);
        assert_eq!(g("lines_removed_javascript"), 1);
        assert_eq!(g("lines_removed_policy"), 1);
        assert_eq!(
            g("chars_removed") as usize,
            PAGE.chars().count() - d.text().chars().count()
        );
    }

    #[test]
    fn document_rules() {
        let s = kit::stage(&DEF, "c4", DEF.example).unwrap();
        let mut d = Document::new("l", "Lorem ipsum dolor sit amet, consectetur.");
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("lorem_ipsum"));
        assert_eq!(d.text(), "Lorem ipsum dolor sit amet, consectetur.");
        let mut d = Document::new("c", "function f() { return 1; } is code.");
        s.process(&mut d);
        assert_eq!(s.judge(&d.signals), Outcome::Drop("curly_bracket"));
        let mut d = Document::new("s", "One sentence only here. And a second one.");
        s.process(&mut d);
        assert_eq!(d.signals.i64("c4.sentences"), Some(2));
        assert_eq!(s.judge(&d.signals), Outcome::Drop("too_few_sentences"));
        let s = kit::stage(&DEF, "c4", "min_num_sentences = 2").unwrap();
        assert_eq!(s.judge(&d.signals), Outcome::Keep);
    }

    #[test]
    fn sentence_rule_skips_abbreviations_and_ellipses() {
        // "..." is not a sentence end (spaCy's sentencizer looks for single terminal marks).
        let d = Document::new("x", "Dr. Smith met the U.S. team... It went well! Yes.");
        assert_eq!(count_sentences(d.words().iter()), 2);
        let d = Document::new(
            "y",
            "It rained. Then it stopped!! \"Good,\" she said. (Twice.) Done",
        );
        assert_eq!(count_sentences(d.words().iter()), 5);
        assert_eq!(
            citations("a [12] b [edit] c [x] [citation needed]"),
            [(2, 6), (9, 15), (22, 39)]
        );
    }

    #[test]
    fn bad_config_names_key() {
        let e = kit::stage(&DEF, "c4", "min_num_sentences = -1")
            .err()
            .unwrap();
        assert_eq!(e.key, "min_num_sentences");
        let e = kit::stage(&DEF, "c4", "filter_cookies = true")
            .err()
            .unwrap();
        assert_eq!(e.key, "filter_cookies");
    }
}
