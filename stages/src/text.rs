//! Derived views of a document's text (lines, words, normalized form), computed once and shared.
//!
//! Python pipelines lose 10x to 100x by re-tokenizing the same text in every filter. Here a
//! document computes each view lazily, on first use, and every stage reads the same one. Editing
//! the text (PII redaction, line removal) goes through [`crate::Document::set_text`], which drops
//! the cached views.
//!
//! Words follow Unicode word boundaries (UAX #29), which splits CJK ideographs and kana into
//! one-character words and keeps punctuation as separate tokens, close to what spaCy-based peers
//! count. Whitespace segments are not words.

use std::cell::OnceCell;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// A word token: a byte range into the text and a few class flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    pub start: u32,
    pub end: u32,
    pub flags: u8,
}

impl Word {
    /// The token holds at least one alphabetic character.
    pub const ALPHA: u8 = 1;
    /// The token holds at least one numeric character.
    pub const DIGIT: u8 = 2;
    /// The token holds no alphanumeric character (punctuation, symbols, emoji).
    pub const PUNCT: u8 = 4;
    /// The token is a CJK ideograph, kana, Hangul or Thai-family character run.
    pub const CJK: u8 = 8;

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
    pub fn as_str<'a>(&self, text: &'a str) -> &'a str {
        &text[self.range()]
    }
}

/// Lazily computed views of one text. Owned by a [`crate::Document`].
#[derive(Clone, Debug, Default)]
pub struct TextViews {
    lines: OnceCell<Vec<Range<u32>>>,
    words: OnceCell<Vec<Word>>,
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

    /// Word tokens of the whole text (punctuation tokens included, whitespace excluded).
    pub fn words(&self, text: &str) -> &[Word] {
        self.words.get_or_init(|| segment_words(text))
    }

    /// Normalized form: lower-cased alphanumeric words joined by one space. Used for exact and
    /// fuzzy dedup so that case, punctuation and spacing changes do not hide a duplicate.
    pub fn normalized(&self, text: &str) -> &str {
        self.normalized.get_or_init(|| {
            let words = self.words(text);
            let mut out = String::with_capacity(text.len());
            for w in words.iter().filter(|w| w.is_alnum()) {
                if !out.is_empty() {
                    out.push(' ');
                }
                push_lower(&mut out, w.as_str(text));
            }
            out
        })
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

fn is_cjk_char(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // hiragana, katakana
        | 0x3400..=0x4DBF     // CJK ext A
        | 0x4E00..=0x9FFF     // CJK unified
        | 0xF900..=0xFAFF     // compatibility ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0x0E00..=0x0EFF     // Thai, Lao
        | 0x1000..=0x109F     // Myanmar
        | 0x1780..=0x17FF     // Khmer
        | 0x20000..=0x2FFFF) // CJK ext B+
}

/// Segments text into word tokens (see the module docs).
pub fn segment_words(text: &str) -> Vec<Word> {
    let mut out = Vec::with_capacity(text.len() / 5 + 1);
    for (start, seg) in text.split_word_bound_indices() {
        let mut flags = 0u8;
        let mut all_space = true;
        for c in seg.chars() {
            if c.is_whitespace() {
                continue;
            }
            all_space = false;
            if c.is_alphabetic() {
                flags |= Word::ALPHA;
                if !c.is_ascii() && is_cjk_char(c) {
                    flags |= Word::CJK;
                }
            } else if c.is_numeric() {
                flags |= Word::DIGIT;
            }
        }
        if all_space {
            continue;
        }
        if flags & (Word::ALPHA | Word::DIGIT) == 0 {
            flags |= Word::PUNCT;
        }
        out.push(Word {
            start: start as u32,
            end: (start + seg.len()) as u32,
            flags,
        });
    }
    out
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
        assert!(words.contains(&"漢"));
        assert_eq!(v.normalized(t), "hello world second line 42 漢 字 テスト");
    }
}
