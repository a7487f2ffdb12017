//! Pre-tokenizers: split text into the pieces that BPE encodes one by one.
//!
//! tiktoken and GPT-2 style tokenizers split text with a regular expression that uses
//! look-ahead (`\s+(?!\S)`), which forces a backtracking engine (fancy-regex, Oniguruma) and
//! costs about half of the encoding time. The three patterns in use everywhere (GPT-2/r50k,
//! cl100k, which Llama 3 also uses, and o200k) are written out here as hand-made scanners that
//! give the same pieces as the regex; any other pattern runs through fancy-regex. Tests compare
//! each scanner with fancy-regex on real text and on generated strings.

use super::chars::{self, at, prev_start, LETTER, LETTER_OTHER, LOWER, MARK, NUMBER, SPACE, UPPER};

/// GPT-2's pattern, as Hugging Face's `ByteLevel` pre-tokenizer writes it.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// tiktoken's r50k/p50k form of GPT-2's pattern.
pub const R50K_PATTERN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";
/// tiktoken's cl100k_base pattern.
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";
/// The older spelling of cl100k's pattern, used by Llama 3 (same pieces).
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// tiktoken's o200k_base pattern.
pub const O200K_PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    "|",
    r"\p{N}{1,3}",
    "|",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    "|",
    r"\s*[\r\n]+",
    "|",
    r"\s+(?!\S)",
    "|",
    r"\s+"
);

/// A pre-tokenizer: a hand-written scanner for a known pattern, or a regex.
#[derive(Debug)]
pub enum PreTokenizer {
    Gpt2,
    Cl100k,
    /// Llama 3's spelling of cl100k: same pieces except at a white-space run that holds a
    /// line break and ends the text (`\s*[\r\n]+` comes before the end-of-text rule).
    Llama3,
    O200k,
    Regex(Box<fancy_regex::Regex>),
}

impl PreTokenizer {
    /// The pre-tokenizer for a pattern: a scanner when the pattern is a known one (by name
    /// `gpt2`, `r50k`, `cl100k`, `llama3`, `o200k`, or spelled out), else the regex.
    pub fn from_pattern(pattern: &str) -> Result<PreTokenizer, String> {
        Ok(match pattern {
            "gpt2" | "r50k" | "p50k" | GPT2_PATTERN | R50K_PATTERN => PreTokenizer::Gpt2,
            "cl100k" | CL100K_PATTERN => PreTokenizer::Cl100k,
            "llama3" | LLAMA3_PATTERN => PreTokenizer::Llama3,
            "o200k" | O200K_PATTERN => PreTokenizer::O200k,
            p => PreTokenizer::Regex(Box::new(
                fancy_regex::Regex::new(p).map_err(|e| format!("bad pattern: {e}"))?,
            )),
        })
    }

    /// The regex form of a known scanner (for tests and for the record).
    pub fn pattern(&self) -> &str {
        match self {
            PreTokenizer::Gpt2 => GPT2_PATTERN,
            PreTokenizer::Cl100k => CL100K_PATTERN,
            PreTokenizer::Llama3 => LLAMA3_PATTERN,
            PreTokenizer::O200k => O200K_PATTERN,
            PreTokenizer::Regex(r) => r.as_str(),
        }
    }

    /// Calls `f` with each piece of `text`, in order; the pieces cover the text.
    #[inline]
    pub fn split<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) {
        let next: fn(&[u8], usize) -> usize = match self {
            PreTokenizer::Gpt2 => gpt2_next,
            PreTokenizer::Cl100k => cl100k_next,
            PreTokenizer::Llama3 => llama3_next,
            PreTokenizer::O200k => o200k_next,
            PreTokenizer::Regex(re) => {
                let mut last = 0;
                for m in re.find_iter(text) {
                    let Ok(m) = m else { break };
                    if m.start() > last {
                        f(&text[last..m.start()]);
                    }
                    if m.end() > m.start() {
                        f(m.as_str());
                    }
                    last = m.end();
                }
                // Gaps the pattern does not match (and a backtrack-limit error) become pieces.
                if last < text.len() {
                    f(&text[last..]);
                }
                return;
            }
        };
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let e = next(b, i);
            f(&text[i..e]);
            i = e;
        }
    }
}

/// End of the run of characters whose class satisfies `keep`, from byte `i`.
#[inline]
fn run(b: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            if !keep(chars::class_of(c as u32)) {
                break;
            }
            i += 1;
        } else {
            let (cls, _, l) = at(b, i);
            if !keep(cls) {
                break;
            }
            i += l;
        }
    }
    i
}

#[inline]
fn is_other(cls: u8) -> bool {
    cls & (LETTER | NUMBER | SPACE) == 0
}

/// Case-sensitive GPT-2 contraction after an apostrophe at `i - 1`: its byte length.
#[inline]
fn contraction_cs(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b's' | b't' | b'm' | b'd' => Some(1),
        b'r' | b'v' if b.get(i + 1) == Some(&b'e') => Some(2),
        b'l' if b.get(i + 1) == Some(&b'l') => Some(2),
        _ => None,
    }
}

/// Case-insensitive contraction (`(?i:[sdmt]|ll|ve|re)`), Unicode simple case folding
/// included (the long s `ſ` folds to `s`).
#[inline]
fn contraction_ci(b: &[u8], i: usize) -> Option<usize> {
    let c = *b.get(i)?;
    let lower = |x: Option<&u8>| x.map(|c| c.to_ascii_lowercase());
    match c.to_ascii_lowercase() {
        b's' | b't' | b'm' | b'd' => Some(1),
        b'r' | b'v' if lower(b.get(i + 1)) == Some(b'e') => Some(2),
        b'l' if lower(b.get(i + 1)) == Some(b'l') => Some(2),
        0xC5 if b.get(i + 1) == Some(&0xBF) => Some(2),
        _ => None,
    }
}

/// `\s+(?!\S)|\s+` (GPT-2) from a white-space character at `i`.
#[inline]
fn trailing_space(b: &[u8], i: usize, e: usize) -> usize {
    if e == b.len() {
        return e;
    }
    let last = prev_start(b, e);
    if last > i {
        last
    } else {
        e
    }
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
pub fn gpt2_next(b: &[u8], i: usize) -> usize {
    if b[i] == b'\'' {
        if let Some(n) = contraction_cs(b, i + 1) {
            return i + 1 + n;
        }
    }
    let (mut cls, _, _) = at(b, i);
    let mut j = i;
    if b[i] == b' ' && i + 1 < b.len() {
        let (next, _, _) = at(b, i + 1);
        if next & SPACE == 0 {
            j = i + 1;
            cls = next;
        }
    }
    if cls & LETTER != 0 {
        return run(b, j, |c| c & LETTER != 0);
    }
    if cls & NUMBER != 0 {
        return run(b, j, |c| c & NUMBER != 0);
    }
    if cls & SPACE == 0 {
        return run(b, j, is_other);
    }
    let e = run(b, i, |c| c & SPACE != 0);
    trailing_space(b, i, e)
}

/// cl100k: `'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|
/// ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s`.
pub fn cl100k_next(b: &[u8], i: usize) -> usize {
    cl100k_like(b, i, false)
}

/// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
pub fn llama3_next(b: &[u8], i: usize) -> usize {
    cl100k_like(b, i, true)
}

fn cl100k_like(b: &[u8], i: usize, llama3: bool) -> usize {
    let c0 = b[i];
    if c0 == b'\'' {
        if let Some(n) = contraction_ci(b, i + 1) {
            return i + 1 + n;
        }
    }
    let (cls, _, l) = at(b, i);
    if cls & LETTER != 0 {
        return run(b, i, |c| c & LETTER != 0);
    }
    let n = b.len();
    if cls & NUMBER == 0 && c0 != b'\r' && c0 != b'\n' && i + l < n {
        let (next, _, _) = at(b, i + l);
        if next & LETTER != 0 {
            return run(b, i + l, |c| c & LETTER != 0);
        }
    }
    if cls & NUMBER != 0 {
        let mut e = i + l;
        for _ in 0..2 {
            if e < n {
                let (c, _, l2) = at(b, e);
                if c & NUMBER != 0 {
                    e += l2;
                    continue;
                }
            }
            break;
        }
        return e;
    }
    let (j, cj) = if c0 == b' ' && i + 1 < n {
        let (next, _, _) = at(b, i + 1);
        if is_other(next) {
            (i + 1, next)
        } else {
            (i, cls)
        }
    } else {
        (i, cls)
    };
    if is_other(cj) {
        let mut e = run(b, j, is_other);
        while e < n && (b[e] == b'\r' || b[e] == b'\n') {
            e += 1;
        }
        return e;
    }
    // White space.
    let e = run(b, i, |c| c & SPACE != 0);
    if llama3 {
        if let Some(k) = b[i..e].iter().rposition(|&c| c == b'\r' || c == b'\n') {
            return i + k + 1;
        }
        return trailing_space(b, i, e);
    }
    if e == n {
        return e;
    }
    if let Some(k) = b[i..e].iter().rposition(|&c| c == b'\r' || c == b'\n') {
        return i + k + 1;
    }
    let last = prev_start(b, e);
    if last > i {
        last
    } else {
        i + l
    }
}

const O200K_UPPER: u8 = UPPER | LETTER_OTHER | MARK;
const O200K_LOWER: u8 = LOWER | LETTER_OTHER | MARK;

/// The optional contraction suffix of o200k's word alternatives.
#[inline]
fn o200k_suffix(b: &[u8], e: usize) -> usize {
    if e < b.len() && b[e] == b'\'' {
        if let Some(n) = contraction_ci(b, e + 1) {
            return e + 1 + n;
        }
    }
    e
}

/// `[Upper]*[Lower]+ suffix?` at `p` (o200k's first word alternative), with the backtracking
/// of the regex: the lower-case run starts at the right-most lower-class character reachable.
fn o200k_alt1(b: &[u8], p: usize) -> Option<usize> {
    if p >= b.len() {
        return None;
    }
    let q = run(b, p, |c| c & O200K_UPPER != 0);
    let mut k = None;
    if q < b.len() && at(b, q).0 & O200K_LOWER != 0 {
        k = Some(q);
    } else {
        let mut x = q;
        while x > p {
            let s = prev_start(b, x);
            if at(b, s).0 & O200K_LOWER != 0 {
                k = Some(s);
                break;
            }
            x = s;
        }
    }
    let e = run(b, k?, |c| c & O200K_LOWER != 0);
    Some(o200k_suffix(b, e))
}

/// `[Upper]+[Lower]* suffix?` at `p` (o200k's second word alternative).
fn o200k_alt2(b: &[u8], p: usize) -> Option<usize> {
    if p >= b.len() || at(b, p).0 & O200K_UPPER == 0 {
        return None;
    }
    let q = run(b, p, |c| c & O200K_UPPER != 0);
    let e = run(b, q, |c| c & O200K_LOWER != 0);
    Some(o200k_suffix(b, e))
}

/// o200k (see [`O200K_PATTERN`]).
pub fn o200k_next(b: &[u8], i: usize) -> usize {
    let n = b.len();
    let c0 = b[i];
    let (cls, _, l) = at(b, i);
    let prefix = cls & (LETTER | NUMBER) == 0 && c0 != b'\r' && c0 != b'\n';
    let wordy = cls & (LETTER | MARK) != 0;
    if prefix {
        if let Some(e) = o200k_alt1(b, i + l) {
            return e;
        }
    }
    if wordy {
        if let Some(e) = o200k_alt1(b, i) {
            return e;
        }
    }
    if prefix {
        if let Some(e) = o200k_alt2(b, i + l) {
            return e;
        }
    }
    if wordy {
        if let Some(e) = o200k_alt2(b, i) {
            return e;
        }
    }
    if cls & NUMBER != 0 {
        let mut e = i + l;
        for _ in 0..2 {
            if e < n {
                let (c, _, l2) = at(b, e);
                if c & NUMBER != 0 {
                    e += l2;
                    continue;
                }
            }
            break;
        }
        return e;
    }
    let (j, cj) = if c0 == b' ' && i + 1 < n {
        let (next, _, _) = at(b, i + 1);
        if is_other(next) {
            (i + 1, next)
        } else {
            (i, cls)
        }
    } else {
        (i, cls)
    };
    if is_other(cj) {
        let mut e = run(b, j, is_other);
        while e < n && matches!(b[e], b'\r' | b'\n' | b'/') {
            e += 1;
        }
        return e;
    }
    let e = run(b, i, |c| c & SPACE != 0);
    if let Some(k) = b[i..e].iter().rposition(|&c| c == b'\r' || c == b'\n') {
        return i + k + 1;
    }
    trailing_space(b, i, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(p: &PreTokenizer, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        p.split(text, |s| v.push(s.to_string()));
        v
    }

    fn regex_pieces(re: &fancy_regex::Regex, text: &str) -> Vec<String> {
        re.find_iter(text)
            .map(|m| m.unwrap().as_str().to_string())
            .collect()
    }

    /// Strings built from characters of every class the patterns distinguish.
    fn tricky_strings() -> Vec<String> {
        let alphabet = [
            "a", "Z", "é", "Σ", "ǅ", "ʰ", "中", "\u{301}", "\u{94d}", "1", "٣", "Ⅳ", " ", "  ",
            "\t", "\n", "\r\n", "\u{a0}", "\u{3000}", "'", "'s", "'S", "'ll", "'Re", "'ſ", "!",
            "/", "-", "😀", ".\n", "x'", "ABc", "aBC",
        ];
        let mut out = Vec::new();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for len in 1..12 {
            for _ in 0..300 {
                let mut s = String::new();
                for _ in 0..len {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    s.push_str(alphabet[(state % alphabet.len() as u64) as usize]);
                }
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn scanners_match_their_regex() {
        for (p, patterns) in [
            (PreTokenizer::Gpt2, vec![GPT2_PATTERN, R50K_PATTERN]),
            (PreTokenizer::Cl100k, vec![CL100K_PATTERN]),
            (PreTokenizer::Llama3, vec![LLAMA3_PATTERN]),
            (PreTokenizer::O200k, vec![O200K_PATTERN]),
        ] {
            for pat in patterns {
                let re = fancy_regex::Regex::new(pat).unwrap();
                for s in tricky_strings() {
                    assert_eq!(
                        pieces(&p, &s),
                        regex_pieces(&re, &s),
                        "{p:?} {pat} on {s:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn scanners_match_regex_on_real_text() {
        let Some(texts) = crate::tokenize::testdata::corpus_texts(300) else {
            return;
        };
        for (p, pat) in [
            (PreTokenizer::Gpt2, GPT2_PATTERN),
            (PreTokenizer::Cl100k, CL100K_PATTERN),
            (PreTokenizer::Llama3, LLAMA3_PATTERN),
            (PreTokenizer::O200k, O200K_PATTERN),
        ] {
            let re = fancy_regex::Regex::new(pat).unwrap();
            for t in &texts {
                assert_eq!(pieces(&p, t), regex_pieces(&re, t), "{p:?}");
            }
        }
    }
}
