//! Derived views of a document's text, computed once and shared by every stage.
//!
//! Python pipelines lose 10x to 100x by re-tokenizing the same text in every filter. Here a
//! document computes each view lazily, on first use, and every stage reads the same one:
//!
//! - [`TextViews::lines`]: byte ranges of the `\n`-separated lines;
//! - [`TextViews::words`]: the one word segmentation ([`words`] says how: whitespace chunks
//!   cut by affix rules, ICU4X dictionaries for scripts without spaces), each word with class
//!   flags and its length in characters;
//! - [`TextViews::word_hashes`]: a 64-bit hash per word, for n-gram statistics and token
//!   distributions without touching the strings again;
//! - [`TextViews::py_lines`]: the lines as Python's `str.splitlines()` cuts them (C4 and Gopher
//!   quality count lines this way);
//! - [`TextViews::paragraphs`]: blocks separated by blank lines;
//! - [`TextViews::char_count`]: length in Unicode scalar values (what ratios divide by);
//! - [`TextViews::normalized`]: lower-cased alphanumeric words joined by one space (dedup).
//!
//! Editing the text (PII redaction, line removal) goes through [`crate::Document::set_text`],
//! which drops the cached views.

pub mod chars;
pub mod words;

use std::cell::OnceCell;
use std::ops::Range;

/// A word token: a byte range into the text, its length in characters and class flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub start: u32,
    pub end: u32,
    /// Length in Unicode scalar values.
    pub chars: u32,
    pub flags: u8,
}

impl Word {
    /// The token holds at least one letter (Unicode `L*`, Python's `isalpha`).
    pub const ALPHA: u8 = 1;
    /// The token holds at least one number character (Unicode `N*`).
    pub const DIGIT: u8 = 2;
    /// The token holds no letter or number (punctuation, symbols, emoji).
    pub const PUNCT: u8 = 4;
    /// The token holds a character of a script written without spaces (Han, kana, Thai, Lao,
    /// Myanmar, Khmer) or Hangul.
    pub const CJK: u8 = 8;
    /// Every character is in Gopher's symbol set ([`chars::GOPHER_SYMBOL`]): the token is not
    /// a word for Gopher's word count and mean word length.
    pub const SYMBOL: u8 = 16;
    /// Every character is Unicode punctuation (`P*`), spaCy's `is_punct`.
    pub const ALL_PUNCT: u8 = 32;
    /// The token is a single sentence-terminal character (`.`, `?`, `!`, `。`, ...).
    pub const STERM: u8 = 64;

    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
    pub fn is_alpha(&self) -> bool {
        self.flags & Self::ALPHA != 0
    }
    pub fn is_alnum(&self) -> bool {
        self.flags & (Self::ALPHA | Self::DIGIT) != 0
    }
    pub fn is_punct(&self) -> bool {
        self.flags & Self::PUNCT != 0
    }
    pub fn is_cjk(&self) -> bool {
        self.flags & Self::CJK != 0
    }
    pub fn is_symbol(&self) -> bool {
        self.flags & Self::SYMBOL != 0
    }
    pub fn as_str<'a>(&self, text: &'a str) -> &'a str {
        &text[self.range()]
    }
}

/// Lazily computed views of one text. Owned by a [`crate::Document`].
#[derive(Clone, Debug, Default)]
pub struct TextViews {
    lines: OnceCell<Vec<Range<u32>>>,
    py_lines: OnceCell<Vec<Range<u32>>>,
    words: OnceCell<Vec<Word>>,
    word_hashes: OnceCell<Vec<u64>>,
    paragraphs: OnceCell<Vec<Range<u32>>>,
    char_count: OnceCell<usize>,
    normalized: OnceCell<String>,
}

impl TextViews {
    pub fn clear(&mut self) {
        *self = TextViews::default();
    }

    /// Byte ranges of the lines (split on `\n`, a trailing `\r` excluded), empty lines included.
    pub fn lines(&self, text: &str) -> &[Range<u32>] {
        self.lines.get_or_init(|| split_lines(text))
    }

    /// Byte ranges of the lines as [`py_lines`] cuts them (Python's `str.splitlines()`).
    pub fn py_lines(&self, text: &str) -> &[Range<u32>] {
        self.py_lines.get_or_init(|| split_py_lines(text))
    }

    /// Word tokens of the whole text (punctuation tokens included, whitespace excluded).
    pub fn words(&self, text: &str) -> &[Word] {
        self.words.get_or_init(|| segment_words(text))
    }

    /// xxh3 hash of each word's bytes, parallel to [`TextViews::words`].
    pub fn word_hashes(&self, text: &str) -> &[u64] {
        self.word_hashes.get_or_init(|| {
            self.words(text)
                .iter()
                .map(|w| xxhash_rust::xxh3::xxh3_64(w.as_str(text).as_bytes()))
                .collect()
        })
    }

    /// Paragraphs: the text without surrounding whitespace, split at runs of two or more
    /// `\n` (Gopher's definition). Byte ranges into the text; a paragraph may be empty.
    pub fn paragraphs(&self, text: &str) -> &[Range<u32>] {
        self.paragraphs.get_or_init(|| split_paragraphs(text))
    }

    /// Length of the text in Unicode scalar values.
    pub fn char_count(&self, text: &str) -> usize {
        *self.char_count.get_or_init(|| count_chars(text))
    }

    /// Normalized form: the letter-and-digit runs of the text, lower-cased, joined by one space
    /// (characters that are neither letters nor digits separate runs: `foo(x)` gives `foo x`,
    /// `U.S.` gives `u s`; combining marks stay inside their run; each Han, kana or Thai-family
    /// character of scripts written without spaces is a run of its own, katakana and Hangul runs
    /// stay whole). Used for exact and fuzzy dedup and decontamination, so that case,
    /// punctuation and spacing changes do not hide a duplicate. See [`normalize_into`].
    pub fn normalized(&self, text: &str) -> &str {
        self.normalized.get_or_init(|| {
            let mut out = String::new();
            normalize_into(text, &mut out);
            out
        })
    }
}

fn is_run_script(c: char) -> bool {
    matches!(c as u32,
        0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F   // katakana
        | 0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF) // Hangul
}

/// Writes the normalized form of `text` (see [`TextViews::normalized`]) into `out`, replacing
/// its contents. One pass over the characters, no segmentation: the MinHash signature stage
/// calls it directly on every document it sees.
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if c.is_ascii() {
            if c.is_ascii_alphanumeric() {
                if !in_run && !out.is_empty() {
                    out.push(' ');
                }
                in_run = true;
                out.push(c.to_ascii_lowercase());
            } else {
                in_run = false;
            }
            continue;
        }
        let f = chars::flags(c);
        if f & (chars::LETTER | chars::NUMBER) != 0 {
            let own = f & chars::NO_SPACE != 0 && !is_run_script(c);
            if (own || !in_run) && !out.is_empty() {
                out.push(' ');
            }
            in_run = !own;
            out.extend(c.to_lowercase());
        } else if f == 0 && in_run {
            // Combining marks, joiners and other format characters continue their word
            // (Devanagari vowel signs, Arabic harakat).
            out.push(c);
        } else {
            in_run = false;
        }
    }
}

/// Appends the lower-case form of `s`, with an ASCII fast path.
pub fn push_lower(out: &mut String, s: &str) {
    if s.is_ascii() {
        out.extend(s.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        for c in s.chars() {
            out.extend(c.to_lowercase());
        }
    }
}

/// Number of Unicode scalar values in `s` (counts the bytes that do not continue a sequence).
pub fn count_chars(s: &str) -> usize {
    s.as_bytes().iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// Splits text into line byte ranges.
pub fn split_lines(text: &str) -> Vec<Range<u32>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() / 40 + 1);
    let mut start = 0usize;
    for nl in memchr::memchr_iter(b'\n', bytes) {
        let mut end = nl;
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        out.push(start as u32..end as u32);
        start = nl + 1;
    }
    if start < bytes.len() {
        out.push(start as u32..bytes.len() as u32);
    }
    out
}

/// Byte ranges of the lines [`py_lines`] gives. Most texts hold no line break but `\n`: those
/// are cut with a vectorized search for `\n` alone, after a vectorized check for the others.
pub fn split_py_lines(text: &str) -> Vec<Range<u32>> {
    let b = text.as_bytes();
    let others = memchr::memchr3(b'\r', 0x0b, 0x0c, b).is_some()
        || memchr::memchr3(0x1c, 0x1d, 0x1e, b).is_some()
        || memchr::memmem::find(b, "\u{85}".as_bytes()).is_some()
        || memchr::memmem::find(b, "\u{2028}".as_bytes()).is_some()
        || memchr::memmem::find(b, "\u{2029}".as_bytes()).is_some();
    let base = text.as_ptr() as usize;
    if others {
        return py_lines(text)
            .map(|l| {
                let a = (l.as_ptr() as usize - base) as u32;
                a..a + l.len() as u32
            })
            .collect();
    }
    let mut out = Vec::with_capacity(b.len() / 40 + 1);
    let mut start = 0usize;
    for nl in memchr::memchr_iter(b'\n', b) {
        out.push(start as u32..nl as u32);
        start = nl + 1;
    }
    if start < b.len() {
        out.push(start as u32..b.len() as u32);
    }
    out
}

/// Lines as Python's `str.splitlines()` gives them: split at `\n`, `\r`, `\r\n`, `\v`, `\f`,
/// `\x1c`..`\x1e`, NEL, LS and PS; no empty line after a final line break.
pub fn py_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let b = rest.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if c < 0x80 {
                if matches!(c, b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e) {
                    let line = &rest[..i];
                    let skip = if c == b'\r' && b.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    rest = &rest[i + skip..];
                    return Some(line);
                }
                i += 1;
            } else if c == 0xc2 && b.get(i + 1) == Some(&0x85)
                || c == 0xe2
                    && b.get(i + 1) == Some(&0x80)
                    && matches!(b.get(i + 2), Some(0xa8 | 0xa9))
            {
                let line = &rest[..i];
                rest = &rest[i + if c == 0xc2 { 2 } else { 3 }..];
                return Some(line);
            } else {
                i += 1;
            }
        }
        let line = rest;
        rest = "";
        Some(line)
    })
}

fn split_paragraphs(text: &str) -> Vec<Range<u32>> {
    let stripped = chars::strip(text);
    let base = stripped.as_ptr() as usize - text.as_ptr() as usize;
    let b = stripped.as_bytes();
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut i = 0usize;
    while let Some(k) = memchr::memchr(b'\n', &b[i..]) {
        let nl = i + k;
        let run = b[nl..].iter().take_while(|&&c| c == b'\n').count();
        if run >= 2 {
            out.push((base + start) as u32..(base + nl) as u32);
            start = nl + run;
        }
        i = nl + run;
    }
    out.push((base + start) as u32..(base + b.len()) as u32);
    out
}

/// Segments text into word tokens (see [`words`]).
pub fn segment_words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    words::tokens(text, |start, end, hint| {
        out.push(if hint == words::ALPHA_WORD {
            // A plain ASCII word: its class is known without looking again.
            Word {
                start: start as u32,
                end: end as u32,
                chars: (end - start) as u32,
                flags: Word::ALPHA,
            }
        } else {
            classify(text, start, end)
        });
    });
    out
}

fn classify(text: &str, start: usize, end: usize) -> Word {
    let s = &text[start..end];
    let mut flags = 0u8;
    let mut n = 0u32;
    let mut all_symbol = true;
    let mut all_punct = true;
    if s.is_ascii() {
        for &c in s.as_bytes() {
            if c.is_ascii_alphabetic() {
                flags |= Word::ALPHA;
                all_symbol = false;
                all_punct = false;
            } else if c.is_ascii_digit() {
                flags |= Word::DIGIT;
                all_symbol = false;
                all_punct = false;
            } else {
                all_punct &= c.is_ascii_punctuation()
                    && !matches!(
                        c,
                        b'$' | b'+' | b'<' | b'=' | b'>' | b'^' | b'`' | b'|' | b'~'
                    );
            }
        }
        n = s.len() as u32;
    } else {
        for c in s.chars() {
            n += 1;
            if c.is_ascii() {
                if c.is_ascii_alphabetic() {
                    flags |= Word::ALPHA;
                    all_symbol = false;
                    all_punct = false;
                } else if c.is_ascii_digit() {
                    flags |= Word::DIGIT;
                    all_symbol = false;
                    all_punct = false;
                } else {
                    // Every other ASCII character of a token is in Gopher's symbol set (tokens hold
                    // no whitespace); `$+<=>^`|~` and controls are not Unicode punctuation.
                    all_punct &= c.is_ascii_punctuation()
                        && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
                }
            } else {
                let f = chars::flags(c);
                if f & chars::LETTER != 0 {
                    flags |= Word::ALPHA;
                } else if f & chars::NUMBER != 0 {
                    flags |= Word::DIGIT;
                }
                if f & chars::NO_SPACE != 0 {
                    flags |= Word::CJK;
                }
                all_symbol &= f & chars::GOPHER_SYMBOL != 0;
                all_punct &= f & chars::PUNCT != 0;
            }
        }
    }
    if flags & (Word::ALPHA | Word::DIGIT) == 0 {
        flags |= Word::PUNCT;
    }
    if all_symbol {
        flags |= Word::SYMBOL;
    }
    if all_punct {
        flags |= Word::ALL_PUNCT;
    }
    if n == 1 && chars::is_sterm(s.chars().next().expect("non-empty")) {
        flags |= Word::STERM;
    }
    Word {
        start: start as u32,
        end: end as u32,
        chars: n,
        flags,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_words() {
        let t = "Hello, world!\r\nSecond line 42.\n\n漢字テスト";
        let v = TextViews::default();
        let lines: Vec<&str> = v
            .lines(t)
            .iter()
            .map(|r| &t[r.start as usize..r.end as usize])
            .collect();
        assert_eq!(
            lines,
            vec!["Hello, world!", "Second line 42.", "", "漢字テスト"]
        );
        let words: Vec<&str> = v.words(t).iter().map(|w| w.as_str(t)).collect();
        assert_eq!(&words[..4], &["Hello", ",", "world", "!"]);
        assert!(words.contains(&"42"));
        assert!(words.contains(&"漢字"));
        assert_eq!(v.normalized(t), "hello world second line 42 漢 字 テスト");
        assert_eq!(v.char_count(t), t.chars().count());
        assert_eq!(v.word_hashes(t).len(), words.len());
    }

    #[test]
    fn normalized_form() {
        let n = |t: &str| {
            let mut o = String::new();
            normalize_into(t, &mut o);
            o
        };
        assert_eq!(
            n("Hello, WORLD!  foo(x) U.S. 3.14"),
            "hello world foo x u s 3 14"
        );
        assert_eq!(n("Ça va?\tÉTÉ—naïve"), "ça va été naïve");
        // Devanagari vowel signs (combining marks) stay in their word.
        assert_eq!(n("हिन्दी भाषा"), "हिन्दी भाषा");
        // Han and hiragana one by one; katakana and Hangul runs whole.
        assert_eq!(
            n("東京はテスト。한국어 문장"),
            "東 京 は テスト 한국어 문장"
        );
        assert_eq!(n("  ...  "), "");
        let v = TextViews::default();
        let t = "Same TEXT, other   spacing!";
        assert_eq!(v.normalized(t), n(t));
    }

    #[test]
    fn word_flags() {
        let t = "I’m 3 ... “quoted” ‘x’ • 2020, end.";
        let v = TextViews::default();
        let w = v.words(t);
        let by = |s: &str| *w.iter().find(|x| x.as_str(t) == s).unwrap();
        assert!(by("I").is_alpha() && by("’m").is_alpha());
        assert!(by("3").flags & Word::DIGIT != 0 && !by("3").is_symbol());
        assert!(by("...").is_symbol() && by("...").flags & Word::ALL_PUNCT != 0);
        assert!(by("...").flags & Word::STERM == 0);
        // ‘ is punctuation but outside Gopher's symbol set; • is neither.
        assert!(!by("‘").is_symbol() && by("‘").flags & Word::ALL_PUNCT != 0);
        assert!(!by("•").is_symbol() && by("•").is_punct());
        assert_eq!(by("“").chars, 1);
        // Fast paths give the same classes as the general one.
        assert!(by("2020").flags & Word::DIGIT != 0 && !by("2020").is_alpha());
        assert!(by("end").is_alpha() && by(".").flags & Word::STERM != 0);
    }

    #[test]
    fn python_lines_and_paragraphs() {
        let t = "a\r\nb\x0bc\u{2028}d\n";
        assert_eq!(py_lines(t).collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(py_lines("").count(), 0);
        assert_eq!(py_lines("\n\nx").collect::<Vec<_>>(), ["", "", "x"]);
        // The ranges (with the `\n`-only fast path) cut the same lines.
        for t in [
            "a\r\nb\x0bc\u{2028}d\n",
            "",
            "\n\nx",
            "x\n\n",
            "one\ntwo\n\nthree",
            "no break",
            "\u{85}a\u{2029}",
            "“quoted” \u{2019}\n",
        ] {
            let ranges: Vec<&str> = split_py_lines(t)
                .iter()
                .map(|r| &t[r.start as usize..r.end as usize])
                .collect();
            assert_eq!(ranges, py_lines(t).collect::<Vec<_>>(), "{t:?}");
        }
        let t = "\n  p1\nstill p1\n\n\np2 \n\n";
        let v = TextViews::default();
        let p: Vec<&str> = v
            .paragraphs(t)
            .iter()
            .map(|r| &t[r.start as usize..r.end as usize])
            .collect();
        assert_eq!(p, ["p1\nstill p1", "p2"]);
    }
}
