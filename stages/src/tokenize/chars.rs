//! Unicode character classes for the hand-written pre-tokenizers.
//!
//! The regular expressions of tiktoken and GPT-2 ask for `\p{L}`, `\p{N}`, `\s` and a few
//! letter sub-categories. The tables come from `regex-syntax` (the Unicode data that the
//! `regex`/`fancy-regex` engines use, so the hand-written scanners agree with them by
//! construction) and are laid out as a two-level lookup: one byte of class bits per code point.

use std::sync::OnceLock;

/// Uppercase or titlecase letter (`Lu`, `Lt`).
pub const UPPER: u8 = 1;
/// Lowercase letter (`Ll`).
pub const LOWER: u8 = 2;
/// Modifier or other letter (`Lm`, `Lo`).
pub const LETTER_OTHER: u8 = 4;
/// Combining mark (`M`).
pub const MARK: u8 = 8;
/// Number (`N`).
pub const NUMBER: u8 = 16;
/// White space (`\s`: the Unicode `White_Space` property).
pub const SPACE: u8 = 32;

/// Any letter (`\p{L}`).
pub const LETTER: u8 = UPPER | LOWER | LETTER_OTHER;

const BLOCK: usize = 128;

struct Table {
    index: Vec<u16>,
    blocks: Vec<[u8; BLOCK]>,
}

fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .expect("valid class pattern");
    match hir.kind() {
        regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(c)) => c
            .ranges()
            .iter()
            .map(|r| (r.start() as u32, r.end() as u32))
            .collect(),
        other => panic!("{pattern} is not a Unicode class: {other:?}"),
    }
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut flat = vec![0u8; 0x110000];
        for (pat, bit) in [
            (r"[\p{Lu}\p{Lt}]", UPPER),
            (r"\p{Ll}", LOWER),
            (r"[\p{Lm}\p{Lo}]", LETTER_OTHER),
            (r"\p{M}", MARK),
            (r"\p{N}", NUMBER),
            (r"\s", SPACE),
        ] {
            for (lo, hi) in class_ranges(pat) {
                for c in lo..=hi {
                    flat[c as usize] |= bit;
                }
            }
        }
        let mut index = Vec::with_capacity(flat.len() / BLOCK);
        let mut blocks: Vec<[u8; BLOCK]> = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for chunk in flat.chunks(BLOCK) {
            let mut b = [0u8; BLOCK];
            b.copy_from_slice(chunk);
            let id = *seen.entry(b).or_insert_with(|| {
                blocks.push(b);
                blocks.len() - 1
            });
            index.push(id as u16);
        }
        Table { index, blocks }
    })
}

/// Class bits of ASCII characters, precomputed for the hot path.
static ASCII: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_uppercase() {
            UPPER
        } else if b.is_ascii_lowercase() {
            LOWER
        } else if b.is_ascii_digit() {
            NUMBER
        } else if matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            SPACE
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Class bits of a code point.
#[inline]
pub fn class_of(cp: u32) -> u8 {
    if cp < 128 {
        return ASCII[cp as usize];
    }
    let t = table();
    let i = cp as usize;
    t.blocks[t.index[i / BLOCK] as usize][i % BLOCK]
}

/// Decodes the character starting at byte `i` of valid UTF-8: (code point, byte length).
#[inline]
pub fn decode(b: &[u8], i: usize) -> (u32, usize) {
    let b0 = b[i] as u32;
    if b0 < 0x80 {
        (b0, 1)
    } else if b0 < 0xE0 {
        (((b0 & 0x1F) << 6) | (b[i + 1] as u32 & 0x3F), 2)
    } else if b0 < 0xF0 {
        (
            ((b0 & 0x0F) << 12) | ((b[i + 1] as u32 & 0x3F) << 6) | (b[i + 2] as u32 & 0x3F),
            3,
        )
    } else {
        (
            ((b0 & 0x07) << 18)
                | ((b[i + 1] as u32 & 0x3F) << 12)
                | ((b[i + 2] as u32 & 0x3F) << 6)
                | (b[i + 3] as u32 & 0x3F),
            4,
        )
    }
}

/// Class bits and byte length of the character at byte `i`.
#[inline]
pub fn at(b: &[u8], i: usize) -> (u8, u32, usize) {
    let b0 = b[i];
    if b0 < 0x80 {
        return (ASCII[b0 as usize], b0 as u32, 1);
    }
    let (cp, len) = decode(b, i);
    (class_of(cp), cp, len)
}

/// Byte index of the start of the character that ends at byte `end` (exclusive).
#[inline]
pub fn prev_start(b: &[u8], end: usize) -> usize {
    let mut i = end - 1;
    while i > 0 && (b[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_regex_engine() {
        let checks: [(&str, u8); 4] = [
            (r"\p{L}", LETTER),
            (r"\p{N}", NUMBER),
            (r"\s", SPACE),
            (r"\p{M}", MARK),
        ];
        for (pat, bits) in checks {
            let re = regex::Regex::new(&format!("^{pat}$")).unwrap();
            for cp in (0u32..0x3_0000).step_by(7).chain(0..0x3000) {
                let Some(c) = char::from_u32(cp) else {
                    continue;
                };
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                assert_eq!(re.is_match(s), class_of(cp) & bits != 0, "{pat} U+{cp:04X}");
            }
        }
        assert_eq!(at("é".as_bytes(), 0), (LOWER, 0xE9, 2));
        assert_eq!(prev_start("aé".as_bytes(), 3), 1);
    }
}
