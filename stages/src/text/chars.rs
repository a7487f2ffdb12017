//! Character classes for segmentation and the heuristic filters, in one lookup table.
//!
//! Filters ask the same questions about every character (is it a letter, lower case, Unicode
//! punctuation, a sentence terminal, whitespace in Python's sense?). The answers come from the
//! Unicode tables that `regex-syntax` already ships (general categories and the
//! `Sentence_Terminal` property), flattened once into a table: a direct array for the Basic
//! Multilingual Plane and sorted ranges above it, with an ASCII fast path in front.

use std::sync::OnceLock;

/// Letter (`L*`): what Python's `str.isalpha` accepts.
pub const LETTER: u16 = 1;
/// Lower-case or uncased letter (`Ll`, `Lo`, `Lm`).
pub const LOWER: u16 = 2;
/// Upper-case, title-case or uncased letter (`Lu`, `Lt`, `Lo`, `Lm`).
pub const UPPER: u16 = 4;
/// Number (`N*`).
pub const NUMBER: u16 = 8;
/// Punctuation (`P*`).
pub const PUNCT: u16 = 16;
/// Other symbol (`So`): pictographs, dingbats, emoji, box drawing, the degree sign.
pub const ICON: u16 = 32;
/// Currency symbol (`Sc`).
pub const CURRENCY: u16 = 64;
/// `Sentence_Terminal` (`.`, `?`, `!`, `。`, `।`, ...).
pub const STERM: u16 = 128;
/// Whitespace as Python's `str.isspace` sees it (White_Space plus U+001C..U+001F).
pub const SPACE: u16 = 256;
/// The symbol set of the Gopher word rules as datatrove implements them: ASCII and CJK
/// punctuation, a few dashes, quotes and arrows, control characters and every sentence
/// terminal. A word made only of these is a "symbol" and not counted as a word.
pub const GOPHER_SYMBOL: u16 = 512;
/// A character of a script written without spaces between words (Han, kana, Thai, Lao,
/// Myanmar, Khmer) or Hangul: chunks holding one are segmented by UAX #29 instead.
pub const NO_SPACE: u16 = 1024;
/// Hyphen-like characters of the infix rule: `-`, `–`, `—`, `~`.
pub const HYPHEN: u16 = 2048;
/// Characters that the affix rules split off the start or end of a chunk.
pub const AFFIX: u16 = 4096;

/// Non-letter characters of the Gopher symbol set, besides controls and sentence terminals.
const GOPHER_SYMBOL_CHARS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u{ab}\u{b4}\u{bb}\u{2013}\
    \u{2014}\u{2019}\u{201c}\u{201d}\u{201e}\u{2026}\u{2236}\u{2501}\u{25ba}\u{3001}\u{3002}\
    \u{3008}\u{3009}\u{300a}\u{300b}\u{300c}\u{300d}\u{3010}\u{3011}\u{ff01}\u{ff05}\u{ff08}\
    \u{ff09}\u{ff0c}\u{ff0e}\u{ff11}\u{ff1a}\u{ff1b}\u{ff1f}\u{ff5e}";

/// Punctuation, quotes, brackets and marks split off a chunk's edges (prefix and suffix
/// rules), besides `ICON` and `CURRENCY` characters.
const AFFIX_CHARS: &str = "\u{2026},:;!?\u{bf}\u{61f}\u{a1}()[]{}<>_#*&\u{3002}\u{ff1f}\u{ff01}\
    \u{ff0c}\u{3001}\u{ff1b}\u{ff1a}\u{ff5e}\u{b7}\u{964}\u{60c}\u{6d4}\u{61b}\u{66a}'\"\u{201d}\
    \u{201c}`\u{2018}\u{b4}\u{2019}\u{201a}\u{201e}\u{bb}\u{ab}\u{300c}\u{300d}\u{300e}\u{300f}\
    \u{ff08}\u{ff09}\u{3014}\u{3015}\u{3010}\u{3011}\u{300a}\u{300b}\u{3008}\u{3009}\u{27e6}\
    \u{27e7}";

struct Table {
    bmp: Box<[u16]>,
    astral: Vec<(u32, u32, u16)>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(build)
}

fn ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .expect("valid Unicode class");
    match hir.kind() {
        regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        _ => unreachable!("a class pattern parses to a class"),
    }
}

fn build() -> Table {
    let mut flags: Vec<(Vec<(u32, u32)>, u16)> = vec![
        (ranges(r"\p{L}"), LETTER),
        (ranges(r"[\p{Ll}\p{Lo}\p{Lm}]"), LOWER),
        (ranges(r"[\p{Lu}\p{Lt}\p{Lo}\p{Lm}]"), UPPER),
        (ranges(r"\p{N}"), NUMBER),
        (ranges(r"\p{P}"), PUNCT),
        (ranges(r"\p{So}"), ICON | AFFIX),
        (ranges(r"\p{Sc}"), CURRENCY | AFFIX),
        (ranges(r"\p{Sentence_Terminal}"), STERM | GOPHER_SYMBOL),
        (ranges(r"[\p{White_Space}\x1c-\x1f]"), SPACE),
        (ranges(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"), GOPHER_SYMBOL),
        (
            ranges(
                r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Myanmar}\p{Khmer}\u{30fc}]",
            ),
            NO_SPACE,
        ),
    ];
    let chars = |s: &str| s.chars().map(|c| (c as u32, c as u32)).collect::<Vec<_>>();
    flags.push((chars(GOPHER_SYMBOL_CHARS), GOPHER_SYMBOL));
    flags.push((chars(AFFIX_CHARS), AFFIX));
    flags.push((chars("-\u{2013}\u{2014}~"), HYPHEN));
    let mut bmp = vec![0u16; 0x10000].into_boxed_slice();
    let mut astral_points: Vec<(u32, u32, u16)> = Vec::new();
    for (rs, f) in &flags {
        for &(a, b) in rs {
            for c in a..=b.min(0xFFFF) {
                bmp[c as usize] |= f;
            }
            if b > 0xFFFF {
                astral_points.push((a.max(0x10000), b, *f));
            }
        }
    }
    // Flatten overlapping astral ranges into disjoint ones with merged flags.
    let mut cuts: Vec<u32> = astral_points
        .iter()
        .flat_map(|&(a, b, _)| [a, b + 1])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut astral = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1] - 1);
        let f = astral_points
            .iter()
            .filter(|&&(x, y, _)| x <= a && b <= y)
            .fold(0, |acc, &(_, _, f)| acc | f);
        if f != 0 {
            astral.push((a, b, f));
        }
    }
    Table { bmp, astral }
}

/// The class flags of one character.
#[inline]
pub fn flags(c: char) -> u16 {
    let u = c as u32;
    if u < 0x10000 {
        table().bmp[u as usize]
    } else {
        let t = &table().astral;
        match t.binary_search_by(|&(a, b, _)| {
            if b < u {
                std::cmp::Ordering::Less
            } else if a > u {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        }) {
            Ok(i) => t[i].2,
            Err(_) => 0,
        }
    }
}

#[inline]
pub fn is(c: char, class: u16) -> bool {
    flags(c) & class != 0
}

/// Python's `str.isalpha` for one character.
#[inline]
pub fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        is(c, LETTER)
    }
}

/// Python's `str.isalnum` for one character (letters and numbers).
#[inline]
pub fn is_alnum(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else {
        is(c, LETTER | NUMBER)
    }
}

/// Python's `str.isspace` for one character.
#[inline]
pub fn is_space(c: char) -> bool {
    if c.is_ascii() {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c' | '\x1c'..='\x1f'
        )
    } else {
        is(c, SPACE)
    }
}

/// The text without leading and trailing whitespace in Python's sense (`str.strip()`).
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// A sentence-terminal character (`Sentence_Terminal`).
#[inline]
pub fn is_sterm(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, '.' | '?' | '!')
    } else {
        is(c, STERM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_sample_characters() {
        assert!(is_letter('é') && is_letter('漢') && !is_letter('1') && !is_letter('_'));
        assert!(is(' ', SPACE) && is_space('\u{3000}') && is_space('\x1c') && !is_space('x'));
        assert!(is_sterm('。') && is_sterm('।') && is_sterm('!') && !is_sterm(','));
        assert!(is('‘', PUNCT) && !is('‘', GOPHER_SYMBOL));
        assert!(is('’', GOPHER_SYMBOL) && is('\x07', GOPHER_SYMBOL) && is('。', GOPHER_SYMBOL));
        assert!(is('🙂', ICON) && is('°', ICON) && is('€', CURRENCY));
        assert!(is('a', LOWER) && !is('a', UPPER) && is('漢', LOWER | UPPER));
        assert!(is('漢', NO_SPACE) && is('ข', NO_SPACE) && !is('a', NO_SPACE));
        // Astral plane lookups go through the range list.
        assert!(is('𝔸', LETTER | UPPER) && is('😀', ICON) && is('𑅁', STERM));
        assert_eq!(strip(" \u{a0}x y\n"), "x y");
    }
}
