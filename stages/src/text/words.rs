//! Word segmentation: the one tokenization every filter shares.
//!
//! Text splits at whitespace into chunks. A chunk written in an alphabetic script is then cut
//! by affix rules in the Penn Treebank tradition (the conventions of spaCy's English tokenizer,
//! which datatrove's filters count with): punctuation, quotes, brackets, currency and
//! pictographs come off both ends one at a time; English clitics (`n't`, `'s`, `'re`, ...) and
//! units after numbers (`120cm`) are split off; a few infixes split the core (hyphens and
//! slashes between letters, `...`, a comma between letters). Tokens that must stay whole do:
//! URLs and e-mail addresses, common abbreviations (`Dr.`, `e.g.`, `U.S.`), emoticons.
//!
//! A chunk holding a character of a script written without spaces (Han, kana, Thai, Lao,
//! Myanmar, Khmer) or Hangul is cut by ICU4X's dictionary word segmenter instead
//! ([`segment_no_space`]): Chinese and Japanese by ICU's CJ dictionary (`中华人民共和国` ->
//! `中华 人民 共和国`), Thai, Lao, Khmer and Burmese by their dictionaries, and everything else
//! in the chunk (Hangul words, Latin runs, punctuation) by the UAX #29 rules. Only such chunks
//! pay for it: a whitespace-delimited language never reaches the segmenter.
//!
//! Why not UAX #29 everywhere: it cuts `--user`, `@name`, `||||` and `U.S.` into pieces and
//! keeps `don't` whole, so per-word ratios (Gopher's alphabetic-word fraction) drift from the
//! values the published thresholds were tuned on; see docs/heuristics.md for the measurement.

use std::sync::OnceLock;

use icu_segmenter::options::WordBreakInvariantOptions;
use icu_segmenter::{WordSegmenter, WordSegmenterBorrowed};

use super::chars::{self, AFFIX, CURRENCY, HYPHEN, ICON, LETTER, LOWER, NO_SPACE, UPPER};

/// Calls `emit(start, end)` for every token of `text`, in order (byte offsets).
pub fn for_each_token(text: &str, mut emit: impl FnMut(usize, usize)) {
    tokens(text, |a, b, _| emit(a, b));
}

/// ASCII whitespace as Python's `isspace` sees it.
const fn ascii_space_table() -> [bool; 128] {
    let mut t = [false; 128];
    let spaces = [
        b' ', b'\t', b'\n', b'\r', 0x0b, 0x0c, 0x1c, 0x1d, 0x1e, 0x1f,
    ];
    let mut k = 0;
    while k < spaces.len() {
        t[spaces[k] as usize] = true;
        k += 1;
    }
    t
}
static ASCII_SPACE: [bool; 128] = ascii_space_table();

const B_ALPHA: u8 = 1;
const B_DIGIT: u8 = 2;
/// ASCII whitespace or a non-ASCII byte: the chunk scan looks closer.
const B_OTHER: u8 = 4;

const fn byte_class_table() -> [u8; 256] {
    let space = ascii_space_table();
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b >= 0x80 || space[c] {
            B_OTHER
        } else if b.is_ascii_alphabetic() {
            B_ALPHA
        } else if b.is_ascii_digit() {
            B_DIGIT
        } else {
            0
        };
        c += 1;
    }
    t
}
static BYTE_CLASS: [u8; 256] = byte_class_table();

/// Lead bytes of the non-ASCII whitespace characters (U+0085, U+00A0, U+1680, U+2000..U+205F,
/// U+3000): other lead bytes need no decoding to know they are not whitespace.
#[inline]
fn may_lead_space(c: u8) -> bool {
    matches!(c, 0xc2 | 0xe1 | 0xe2 | 0xe3)
}

/// The tokens of `text` with, for plain words, their flags (`ALPHA_WORD`), else 0.
pub(crate) const ALPHA_WORD: u8 = 1;

pub(crate) fn tokens(text: &str, mut emit: impl FnMut(usize, usize, u8)) {
    let b = text.as_bytes();
    let mut i = 0;
    let n = b.len();
    let mut scratch = Vec::new();
    while i < n {
        let c = b[i];
        if c < 0x80 {
            if ASCII_SPACE[c as usize] {
                i += 1;
                continue;
            }
        } else if may_lead_space(c) {
            let ch = text[i..].chars().next().expect("char boundary");
            if chars::is_space(ch) {
                i += ch.len_utf8();
                continue;
            }
        }
        // A chunk runs to the next whitespace.
        let start = i;
        let mut ascii = true;
        let mut alpha = true;
        let mut digits = true;
        let mut no_space = false;
        while i < n {
            let c = b[i];
            let k = BYTE_CLASS[c as usize];
            if k & B_OTHER == 0 {
                // ASCII, not whitespace: one table lookup says letter or digit.
                alpha &= k & B_ALPHA != 0;
                digits &= k & B_DIGIT != 0;
                i += 1;
            } else if c < 0x80 {
                break; // ASCII whitespace
            } else if (0xc3..0xe0).contains(&c) {
                // Two-byte characters (Latin, Greek, Cyrillic, Hebrew, Arabic, ...) are never
                // whitespace nor of a script without spaces: no need to decode them.
                ascii = false;
                i += 2;
            } else {
                let ch = text[i..].chars().next().expect("char boundary");
                let f = chars::flags(ch);
                if f & chars::SPACE != 0 {
                    break;
                }
                ascii = false;
                no_space |= f & NO_SPACE != 0;
                i += ch.len_utf8();
            }
        }
        let chunk = &text[start..i];
        if no_space {
            segment_no_space(chunk, |a, b| emit(start + a, start + b, 0));
        } else if ascii && alpha {
            // The common case: a plain word.
            match special_word(chunk) {
                Some(Special::SplitAt(k)) => {
                    emit(start, start + k, ALPHA_WORD);
                    emit(start + k, i, ALPHA_WORD);
                }
                _ => emit(start, i, ALPHA_WORD),
            }
        } else if ascii && digits {
            // A plain number: no affix or special case applies.
            emit(start, i, 0);
        } else if i - start == 1 || (!ascii && text[start..i].chars().nth(1).is_none()) {
            // One character: the affix rules can only give it back whole.
            emit(start, i, 0);
        } else if ascii && plain_number_with_mark(chunk) {
            // "1." "15," "2020.": the mark is a suffix after a digit.
            emit(start, i - 1, 0);
            emit(i - 1, i, 0);
        } else if !ascii {
            match plain_letters(chunk) {
                Some(Letters::Whole) => emit(start, i, 0),
                Some(Letters::WithMark) => {
                    emit(start, i - 1, 0);
                    emit(i - 1, i, 0);
                }
                None => split_and_merge(chunk, start, &mut scratch, &mut |a, b| emit(a, b, 0)),
            }
        } else if ascii && plain_word_with_mark(chunk) {
            // The next most common: a word and one trailing mark ("word," "end." "2020,").
            emit(
                start,
                i - 1,
                if b[start].is_ascii_digit() {
                    0
                } else {
                    ALPHA_WORD
                },
            );
            emit(i - 1, i, 0);
        } else {
            split_and_merge(chunk, start, &mut scratch, &mut |a, b| emit(a, b, 0));
        }
    }
}

/// The dictionary segmenter: its data is compiled in, so building it allocates nothing.
fn dictionary() -> WordSegmenterBorrowed<'static> {
    WordSegmenter::new_dictionary(WordBreakInvariantOptions::default())
}

/// Cuts a whitespace-free chunk holding a script written without spaces into words
/// (`emit(start, end)`, offsets into the chunk): ICU4X's dictionaries for Chinese, Japanese,
/// Thai, Lao, Khmer and Burmese, UAX #29 for the rest of the chunk.
pub fn segment_no_space(chunk: &str, mut emit: impl FnMut(usize, usize)) {
    let mut prev = 0;
    for at in dictionary().segment_str(chunk) {
        if at > prev {
            emit(prev, at);
        }
        prev = at;
    }
}

/// A chunk of two or more ASCII letters (lower-case at the end) or digits, and one trailing
/// mark that the suffix rules always split there (`,;:!?)"`, or `.` after a lower-case letter
/// or a digit), that is not a special case: the affix rules would give exactly the word and
/// the mark.
#[inline]
fn plain_word_with_mark(chunk: &str) -> bool {
    let b = chunk.as_bytes();
    let n = b.len();
    n >= 3
        && matches!(
            b[n - 1],
            b',' | b';' | b':' | b'!' | b'?' | b')' | b'"' | b'.'
        )
        && b[n - 2].is_ascii_lowercase()
        && b[..n - 1].iter().all(u8::is_ascii_alphabetic)
        && (n > MAX_SPECIAL
            || (special_case(chunk).is_none() && special_case(&chunk[..n - 1]).is_none()))
}

/// A chunk of two or more ASCII digits and a trailing `.` or `,`: the suffix rules split the
/// mark after a digit, and no special case or unit applies.
#[inline]
fn plain_number_with_mark(chunk: &str) -> bool {
    let b = chunk.as_bytes();
    let n = b.len();
    n >= 2 && matches!(b[n - 1], b'.' | b',') && b[..n - 1].iter().all(u8::is_ascii_digit)
}

/// How a chunk of letters splits (see [`plain_letters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Letters {
    /// One token.
    Whole,
    /// The letters, then the last byte as a token of its own.
    WithMark,
}

/// A chunk (with a non-ASCII character, none of a script without spaces) made only of letters,
/// or of letters and one trailing mark that the suffix rules always split there (`,;:!?)"`, or
/// `.` after a lower-case letter), that is not a special case. No affix, infix or special rule
/// applies to letters: `für`, `können.`, `d’un` (not: `’` is an affix). Anything else returns
/// `None` and takes the general path.
fn plain_letters(chunk: &str) -> Option<Letters> {
    let b = chunk.as_bytes();
    let n = b.len();
    let letter = |c: char| {
        if c.is_ascii() {
            c.is_ascii_alphabetic()
        } else {
            let f = chars::flags(c);
            f & LETTER != 0 && f & (AFFIX | CURRENCY | ICON | HYPHEN | NO_SPACE) == 0
        }
    };
    let last = b[n - 1];
    let (core, marked) = if matches!(last, b',' | b';' | b':' | b'!' | b'?' | b')' | b'"' | b'.') {
        (&chunk[..n - 1], true)
    } else {
        (chunk, false)
    };
    let mut prev = None;
    for c in core.chars() {
        if !letter(c) {
            return None;
        }
        prev = Some(c);
    }
    let prev = prev?;
    if !marked {
        return Some(Letters::Whole);
    }
    // A period splits off after a lower-case letter only (not after `Lo` letters, which are
    // both).
    let lower_only = chars::flags(prev) & (LOWER | UPPER) == LOWER;
    if last == b'.' && !lower_only {
        return None;
    }
    if n <= MAX_SPECIAL && (special_case(chunk).is_some() || special_case(core).is_some()) {
        return None;
    }
    Some(Letters::WithMark)
}

/// Applies the affix rules to one whitespace-free chunk, then joins neighbouring pieces that
/// together spell a special case (`then-Rep.` splits into `then - Rep .`, and `Rep.` is one
/// abbreviation; `foo):` ends in the emoticon `):`).
fn split_and_merge(
    chunk: &str,
    base: usize,
    out: &mut Vec<(usize, usize)>,
    emit: &mut impl FnMut(usize, usize),
) {
    out.clear();
    split_chunk(chunk, out);
    let mut i = 0;
    while i < out.len() {
        let mut j = i + 1;
        for k in [3usize, 2] {
            if i + k <= out.len() && out[i + k - 1].1 - out[i].0 <= MAX_SPECIAL {
                let span = &chunk[out[i].0..out[i + k - 1].1];
                if specials().get(span) == Some(&Special::Whole) {
                    j = i + k;
                    break;
                }
            }
        }
        emit(base + out[i].0, base + out[j - 1].1);
        i = j;
    }
}

/// Start offsets of peeled suffixes: inline up to 8, then on the heap.
#[derive(Default)]
struct SuffixStarts {
    inline: [usize; 8],
    len: usize,
    more: Vec<usize>,
}

impl SuffixStarts {
    fn push(&mut self, s: usize) {
        if self.len < self.inline.len() {
            self.inline[self.len] = s;
        } else {
            self.more.push(s);
        }
        self.len += 1;
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl std::ops::Index<usize> for SuffixStarts {
    type Output = usize;
    fn index(&self, k: usize) -> &usize {
        if k < self.inline.len() {
            &self.inline[k]
        } else {
            &self.more[k - self.inline.len()]
        }
    }
}

/// Applies the affix rules to one whitespace-free chunk (offsets relative to the chunk).
fn split_chunk(chunk: &str, out: &mut Vec<(usize, usize)>) {
    let base = 0usize;
    let mut emit = |a: usize, b: usize| out.push((a, b));
    let mut lo = 0usize; // current core is chunk[lo..hi]
    let mut hi = chunk.len();
    // Suffix tokens, innermost last (on the stack: chunks rarely have more than a few).
    let mut suffix_starts: SuffixStarts = SuffixStarts::default();
    let mut special = special_case(chunk);
    while special.is_none() && lo < hi {
        let s = &chunk[lo..hi];
        let pre = prefix_len(s);
        if pre > 0 && pre < s.len() {
            if let Some(sp) = special_case(&s[pre..]) {
                emit(base + lo, base + lo + pre);
                lo += pre;
                special = Some(sp);
                break;
            }
        }
        let suf = suffix_len(&s[pre..]);
        if suf > 0 && suf < s.len() {
            if let Some(sp) = special_case(&s[..s.len() - suf]) {
                suffix_starts.push(hi - suf);
                hi -= suf;
                special = Some(sp);
                break;
            }
        }
        if pre > 0 && suf > 0 && pre + suf <= s.len() {
            emit(base + lo, base + lo + pre);
            lo += pre;
            suffix_starts.push(hi - suf);
            hi -= suf;
        } else if pre > 0 {
            emit(base + lo, base + lo + pre);
            lo += pre;
        } else if suf > 0 {
            suffix_starts.push(hi - suf);
            hi -= suf;
        } else {
            break;
        }
        special = special_case(&chunk[lo..hi]);
    }
    if lo < hi {
        let core = &chunk[lo..hi];
        match special {
            Some(Special::Whole) => emit(base + lo, base + hi),
            Some(Special::SplitAt(k)) => {
                emit(base + lo, base + lo + k);
                emit(base + lo + k, base + hi);
            }
            None if is_url(core) => emit(base + lo, base + hi),
            None => split_infixes(core, base + lo, &mut emit),
        }
    }
    // Suffixes were peeled from the outside in; emit them left to right (each ends where the
    // one peeled before it starts).
    for k in (0..suffix_starts.len()).rev() {
        let end = if k == 0 {
            chunk.len()
        } else {
            suffix_starts[k - 1]
        };
        emit(base + suffix_starts[k], base + end);
    }
}

/// How a special-case chunk splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    /// Stays one token (abbreviation, emoticon).
    Whole,
    /// Two tokens, split at this byte offset (a clitic: `do|n't`, `can|not`).
    SplitAt(usize),
}

/// Abbreviations that keep their final period; emoticons and other fixed tokens.
const WHOLE: &[&str] = &[
    // Titles and name parts.
    "Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Jr.", "Rev.", "Gen.", "Gov.", "Sen.", "Rep.", "Adm.",
    "St.", "Mt.", "Messrs.", "Ph.D.", // Organizations.
    "Inc.", "Ltd.", "Co.", "co.", "Corp.", "Bros.", // Months.
    "Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.", "Aug.", "Sep.", "Sept.", "Oct.", "Nov.",
    "Dec.", // US states.
    "Ala.", "Ariz.", "Ark.", "Calif.", "Colo.", "Conn.", "Del.", "Fla.", "Ga.", "Ill.", "Ind.",
    "Kan.", "Kans.", "Ky.", "La.", "Mass.", "Md.", "Mich.", "Minn.", "Miss.", "Mo.", "Mont.",
    "Neb.", "Nebr.", "Nev.", "Okla.", "Ore.", "Pa.", "Tenn.", "Va.", "Wash.", "Wis.", "D.C.",
    // Latin and time abbreviations.
    "e.g.", "E.g.", "i.e.", "I.e.", "vs.", "v.s.", "a.m.", "p.m.", // Fixed tokens.
    "C++", "and/or", "w/o", "o'clock", "ma'am", "Ma'am", "'cause", "'bout", "'em", "'til", "<3",
    ":)", ":-)", ":(", ":-(", ";)", ";-)", ":D", ":-D", ":P", ":-P", ":/", ":'(", "^_^", "-_-",
    "o_O", "O_o", ":o", ":O", "=)", "(:", "):", "''", "'s", "’s", "‘s", "'S", "'re", "’re", "'d",
];

/// Chunks that split into two words at a fixed place (clitics written without apostrophe).
const SPLIT: &[(&str, usize)] = &[
    ("cannot", 3),
    ("gonna", 3),
    ("gotta", 3),
    ("wanna", 3),
    ("lemme", 3),
    ("gimme", 3),
    ("dont", 2),
    ("doesnt", 4),
    ("didnt", 3),
    ("isnt", 2),
    ("arent", 3),
    ("wasnt", 3),
    ("werent", 4),
    ("havent", 4),
    ("hasnt", 3),
    ("hadnt", 3),
    ("couldnt", 5),
    ("wouldnt", 5),
    ("shouldnt", 6),
    ("cant", 2),
    ("wont", 2),
    ("aint", 2),
    ("mustnt", 4),
    ("neednt", 4),
    ("im", 1),
    ("ive", 1),
    ("youre", 3),
    ("youve", 3),
    ("youll", 3),
    ("youd", 3),
    ("theyre", 4),
    ("theyve", 4),
    ("theyll", 4),
    ("weve", 2),
    ("itll", 2),
    ("hes", 2),
    ("thats", 4),
    ("whats", 4),
    ("theres", 5),
    ("heres", 4),
];

/// Clitics split off any alphabetic stem.
const CLITICS: &[&str] = &["n't", "n’t", "'s", "’s"];
/// Clitics split off pronouns and question words only (`we'd`, but `loc'd` stays whole).
const PRONOUN_CLITICS: &[&str] = &[
    "'re", "'ve", "'ll", "'d", "'m", "’re", "’ve", "’ll", "’d", "’m",
];
const PRONOUNS: &[&str] = &[
    "i", "you", "he", "she", "it", "we", "they", "who", "what", "where", "when", "why", "how",
    "there", "that", "this", "here", "y'all", "should", "would", "could", "must", "might",
];

/// The fixed special cases: [`WHOLE`] as written, [`SPLIT`] in lower and title case.
fn specials() -> &'static rustc_hash::FxHashMap<String, Special> {
    static M: OnceLock<rustc_hash::FxHashMap<String, Special>> = OnceLock::new();
    M.get_or_init(|| {
        let mut m = rustc_hash::FxHashMap::default();
        for w in WHOLE {
            m.insert(w.to_string(), Special::Whole);
        }
        for &(w, k) in SPLIT {
            let title: String = w[..1].to_ascii_uppercase() + &w[1..];
            m.insert(w.to_string(), Special::SplitAt(k));
            m.insert(title, Special::SplitAt(k));
        }
        m
    })
}

/// Longest key of [`specials`], in bytes.
const MAX_SPECIAL: usize = 8;

fn special_case(s: &str) -> Option<Special> {
    if s.is_empty() {
        return None;
    }
    if s.len() <= MAX_SPECIAL {
        if let Some(&sp) = specials().get(s) {
            return Some(sp);
        }
    }
    // Clock times: "5pm", "11a.m." (hours 1 to 12).
    if s.as_bytes()[0].is_ascii_digit() && s.len() <= 6 {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        if (1..=2).contains(&digits)
            && matches!(&s[digits..], "am" | "pm" | "a.m." | "p.m.")
            && (1..=12).contains(&s[..digits].parse::<u32>().unwrap_or(0))
        {
            return Some(Special::SplitAt(digits));
        }
    }
    let mut cs = s.chars();
    let first = cs.next()?;
    // Single lower-case letter with a period: "a." in enumerations.
    if s.len() <= 3 && cs.as_str() == "." && first.is_lowercase() {
        return Some(Special::Whole);
    }
    if !first.is_alphabetic()
        || (memchr::memchr2(b'\'', 0xe2, s.as_bytes()).is_none())
        || !s.contains(['\'', '’'])
    {
        return None;
    }
    // Clitics after an alphabetic stem, in lower or title case as people write them
    // ("Don't", not "DON'T").
    if s[first.len_utf8()..].chars().any(char::is_uppercase) {
        return None;
    }
    for cl in CLITICS {
        if let Some(stem) = s.strip_suffix(cl) {
            if !stem.is_empty() && stem.chars().all(char::is_alphabetic) {
                return Some(Special::SplitAt(stem.len()));
            }
        }
    }
    for cl in PRONOUN_CLITICS {
        if let Some(stem) = s.strip_suffix(cl) {
            if PRONOUNS.iter().any(|p| stem.eq_ignore_ascii_case(p)) {
                return Some(Special::SplitAt(stem.len()));
            }
        }
    }
    None
}

/// Bit set of (first letter, last letter, length) of the [`SPLIT`] words, lower-cased: a
/// plain word outside it needs no table lookup.
fn split_shapes() -> &'static [u64; 96] {
    static S: OnceLock<[u64; 96]> = OnceLock::new();
    S.get_or_init(|| {
        let mut bits = [0u64; 96];
        for (w, _) in SPLIT {
            let k = shape(w.as_bytes());
            bits[k / 64] |= 1 << (k % 64);
        }
        bits
    })
}

#[inline]
fn shape(w: &[u8]) -> usize {
    let f = (w[0].to_ascii_lowercase() - b'a') as usize;
    let l = (w[w.len() - 1].to_ascii_lowercase() - b'a') as usize;
    (f * 26 + l) * 9 + w.len()
}

/// Whether a plain ASCII word is a special case (a clitic written without apostrophe).
#[inline]
fn special_word(s: &str) -> Option<Special> {
    if s.len() <= MAX_SPECIAL && s.len() >= 2 {
        let k = shape(s.as_bytes());
        if split_shapes()[k / 64] & (1 << (k % 64)) == 0 {
            return None;
        }
        specials().get(s).copied()
    } else {
        None
    }
}

/// Length in bytes of the prefix token at the start of `s` (0 when none).
fn prefix_len(s: &str) -> usize {
    let mut it = s.chars();
    let Some(c) = it.next() else { return 0 };
    match c {
        '§' | '%' | '=' | '—' | '–' => return c.len_utf8(),
        '+' => {
            return if it.next().is_some_and(|d| d.is_ascii_digit()) {
                0
            } else {
                1
            }
        }
        '.' => return dot_run(s.as_bytes()).filter(|&k| k >= 2).unwrap_or(0),
        'U' if s.starts_with("US$") => return 3,
        'C' | 'A' if s[1..].starts_with('$') => return 2,
        _ => {}
    }
    if chars::is(c, AFFIX | CURRENCY | ICON) {
        c.len_utf8()
    } else {
        0
    }
}

fn dot_run(b: &[u8]) -> Option<usize> {
    let k = b.iter().take_while(|&&c| c == b'.').count();
    (k > 0).then_some(k)
}

const UNITS: &[&str] = &[
    "km", "km²", "km³", "m", "m²", "m³", "dm", "dm²", "dm³", "cm", "cm²", "cm³", "mm", "mm²",
    "mm³", "ha", "µm", "nm", "yd", "in", "ft", "kg", "g", "mg", "µg", "t", "lb", "oz", "m/s",
    "km/h", "kmh", "mph", "hPa", "Pa", "mbar", "mb", "MB", "kb", "KB", "gb", "GB", "tb", "TB", "T",
    "G", "M", "K", "%", "км", "м", "см", "мм", "кг", "г", "мг",
];

/// Longest of [`UNITS`], in bytes (a test checks it).
const MAX_UNIT: usize = 5;

/// Length in bytes of the suffix token at the end of `s` (0 when none): the longest of the
/// suffix rules that match.
fn suffix_len(s: &str) -> usize {
    let Some(last) = s.chars().next_back() else {
        return 0;
    };
    let n = s.len();
    let before = |end: usize| s[..end].chars().next_back();
    let mut start = n; // leftmost start of a matching suffix
    let mut take = |p: usize| start = start.min(p);
    let p1 = n - last.len_utf8();
    match last {
        '.' => {
            // A run of periods is one suffix ("...").
            let run = s
                .as_bytes()
                .iter()
                .rev()
                .take_while(|&&c| c == b'.')
                .count();
            if run >= 2 {
                take(n - run);
            } else if let Some(b) = before(p1) {
                let lower_digit_punct = b.is_ascii_digit()
                    || chars::is(b, LOWER) && !chars::is(b, UPPER)
                    || matches!(b, '%' | '²' | '-' | '+' | '|' | '\\')
                    || chars::is(b, AFFIX) && !chars::is(b, ICON | CURRENCY);
                let two_upper = chars::is(b, UPPER)
                    && before(p1 - b.len_utf8()).is_some_and(|a| chars::is(a, UPPER));
                let degree =
                    matches!(b, 'F' | 'f' | 'C' | 'c' | 'K' | 'k') && before(p1 - 1) == Some('°');
                if lower_digit_punct || two_upper || degree {
                    take(p1);
                }
            }
        }
        '—' | '–' => take(p1),
        '+' if before(p1).is_some_and(|b| b.is_ascii_digit()) => take(p1),
        c if chars::is(c, AFFIX | ICON) && !chars::is(c, CURRENCY) => {
            if c == '…' && s[..p1].ends_with('…') {
                take(p1 - '…'.len_utf8());
            }
            take(p1);
        }
        _ => {}
    }
    for cl in ["'s", "'S", "’s", "’S"] {
        if s.ends_with(cl) {
            take(n - cl.len());
        }
    }
    // Currency and units right after a number: "10$", "120cm", "5km/h".
    if s.bytes().any(|c| c.is_ascii_digit()) {
        let after_digit = |p: usize| p > 0 && s.as_bytes()[p - 1].is_ascii_digit();
        if chars::is(last, CURRENCY) && after_digit(p1) {
            take(p1);
        }
        for cur in ["US$", "C$", "A$"] {
            if s.ends_with(cur) && after_digit(n - cur.len()) {
                take(n - cur.len());
            }
        }
        // A unit follows a digit: none fits unless one of the last MAX_UNIT + 1 bytes is one.
        if s.as_bytes()[n.saturating_sub(MAX_UNIT + 1)..]
            .iter()
            .any(u8::is_ascii_digit)
        {
            for u in UNITS {
                if s.ends_with(u) && after_digit(n - u.len()) {
                    take(n - u.len());
                }
            }
        }
    }
    n - start
}

/// Splits a core at the infix rules and emits the pieces.
fn split_infixes(core: &str, base: usize, emit: &mut impl FnMut(usize, usize)) {
    let mut start = 0usize;
    let mut prev: Option<char> = None;
    let mut it = core.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let next = it.peek().map(|&(_, d)| d);
        let m: Option<usize> = match c {
            '.' if next == Some('.') => {
                let run = core.as_bytes()[i..]
                    .iter()
                    .take_while(|&&x| x == b'.')
                    .count();
                Some(run)
            }
            '.' => {
                let quote = |x: char| chars::is(x, AFFIX) && is_quote(x);
                let ok_before =
                    prev.is_some_and(|p| chars::is(p, LOWER) && !chars::is(p, UPPER) || quote(p));
                let ok_after =
                    next.is_some_and(|q| chars::is(q, UPPER) && !chars::is(q, LOWER) || quote(q));
                (ok_before && ok_after).then_some(1)
            }
            '…' => Some(c.len_utf8()),
            ',' if prev.is_some_and(|p| chars::is(p, LETTER))
                && next.is_some_and(|q| chars::is(q, LETTER)) =>
            {
                Some(1)
            }
            '+' | '-' | '*' | '^'
                if prev.is_some_and(|p| p.is_ascii_digit())
                    && next.is_some_and(|q| q.is_ascii_digit() || q == '-') =>
            {
                Some(1)
            }
            c if chars::is(c, HYPHEN) => {
                // A hyphen run ("-", "--", "---", "——") between a letter or digit and a letter.
                let run_end = core[i..]
                    .char_indices()
                    .take_while(|&(k, x)| chars::is(x, HYPHEN) && k < 9 && x == c)
                    .map(|(k, x)| i + k + x.len_utf8())
                    .last()
                    .unwrap_or(i + c.len_utf8());
                let run = &core[i..run_end];
                let allowed = matches!(run, "-" | "–" | "—" | "--" | "---" | "——" | "~");
                let after = core[run_end..].chars().next();
                let ok = allowed
                    && prev.is_some_and(|p| chars::is(p, LETTER) || p.is_ascii_digit())
                    && after.is_some_and(|q| chars::is(q, LETTER));
                ok.then_some(run_end - i)
            }
            ':' | '<' | '>' | '=' | '/'
                if prev.is_some_and(|p| chars::is(p, LETTER) || p.is_ascii_digit())
                    && next.is_some_and(|q| chars::is(q, LETTER)) =>
            {
                Some(1)
            }
            c if !c.is_ascii() && chars::is(c, ICON) => Some(c.len_utf8()),
            _ => None,
        };
        if let Some(len) = m {
            // A match at the very start stays attached to what follows.
            if i != 0 {
                if i != start {
                    emit(base + start, base + i);
                }
                emit(base + i, base + i + len);
                start = i + len;
                // Skip the rest of a multi-character match.
                while it.peek().is_some_and(|&(k, _)| k < start) {
                    it.next();
                }
                prev = core[..start].chars().next_back();
                continue;
            }
        }
        prev = Some(c);
    }
    if start < core.len() {
        emit(base + start, base + core.len());
    }
}

fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"'
            | '”'
            | '“'
            | '`'
            | '‘'
            | '´'
            | '’'
            | '‚'
            | '„'
            | '»'
            | '«'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '〔'
            | '〕'
            | '【'
            | '】'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '⟦'
            | '⟧'
    )
}

/// Whether a core is a URL or an e-mail address (kept whole): an optional `scheme://`, an
/// optional `user@`, a host of dot-separated labels ending in an alphabetic top-level domain
/// of two or more lower-case letters (or a dotted IPv4 address), an optional port and path.
pub fn is_url(s: &str) -> bool {
    // Every form needs a dot in the host: reject most words without looking further.
    if !s.contains('.') {
        return false;
    }
    let mut rest = s;
    if let Some(p) = s.find("://") {
        let scheme = &s[..p];
        if scheme.len() < 2
            || !scheme
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
        {
            return false;
        }
        rest = &s[p + 3..];
    }
    // user@ or user:pass@ before the host
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..host_end].rfind('@') {
        rest = &rest[at + 1..];
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (hostport, _path) = rest.split_at(host_end);
    let host = match hostport.rfind(':') {
        Some(c) => {
            let port = &hostport[c + 1..];
            if !(2..=5).contains(&port.len()) || !port.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            &hostport[..c]
        }
        None => hostport,
    };
    if host.is_empty() {
        return false;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let is_ipv4 = labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()));
    if is_ipv4 {
        return true;
    }
    let (tld, names) = labels.split_last().expect("two labels");
    let label_ok = |l: &str| {
        let first = l.chars().next();
        let last = l.chars().next_back();
        !l.is_empty()
            && l.chars().count() <= 63
            && first.is_some_and(|c| c.is_ascii_alphanumeric() || c as u32 >= 0xa1)
            && last.is_some_and(|c| c.is_ascii_alphanumeric() || c as u32 >= 0xa1)
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c as u32 >= 0xa1)
    };
    names.iter().all(|l| label_ok(l))
        && (2..=63).contains(&tld.chars().count())
        && tld
            .chars()
            .all(|c| chars::is(c, LOWER) && !chars::is(c, UPPER) || c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        for_each_token(s, |a, b| v.push(&s[a..b]));
        v
    }

    #[test]
    fn affixes_clitics_and_abbreviations() {
        assert_eq!(toks("(don't)"), ["(", "do", "n't", ")"]);
        assert_eq!(
            toks("It’s Dr. Smith's cat."),
            ["It", "’s", "Dr.", "Smith", "'s", "cat", "."]
        );
        assert_eq!(toks("\"Hello.\""), ["\"", "Hello", ".", "\""]);
        assert_eq!(
            toks("U.S. e.g. C. WWII."),
            ["U.S.", "e.g.", "C.", "WWII", "."]
        );
        assert_eq!(toks("Hello... ...hi"), ["Hello", "...", "...", "hi"]);
        assert_eq!(toks("cannot dont"), ["can", "not", "do", "nt"]);
        assert_eq!(toks("a),"), ["a", ")", ","]);
    }

    #[test]
    fn infixes_and_whole_tokens() {
        assert_eq!(
            toks("well-known Covid-19 1-2 a--b"),
            ["well", "-", "known", "Covid-19", "1", "-", "2", "a", "--", "b"]
        );
        assert_eq!(
            toks("foo/bar a:b x=y 8:00 9/11"),
            ["foo", "/", "bar", "a", ":", "b", "x", "=", "y", "8:00", "9/11"]
        );
        assert_eq!(
            toks("hello.World 3.Charlotte"),
            ["hello", ".", "World", "3.Charlotte"]
        );
        assert_eq!(
            toks("http://a.com/b/c x@y.org."),
            ["http://a.com/b/c", "x@y.org", "."]
        );
        assert_eq!(
            toks("--user @user #tag ||||"),
            ["--user", "@user", "#", "tag", "||||"]
        );
        assert_eq!(
            toks("120cm. 10% $10 US$10 10$"),
            ["120", "cm", ".", "10", "%", "$", "10", "US$", "10", "10", "$"]
        );
        assert_eq!(toks("hi🙂there 🙂hi"), ["hi", "🙂", "there", "🙂", "hi"]);
    }

    /// The tokens of the general path alone: every chunk through the affix rules.
    fn general_toks(s: &str) -> Vec<&str> {
        let mut v = Vec::new();
        let mut scratch = Vec::new();
        let mut offset = 0;
        for chunk in s.split(chars::is_space) {
            if !chunk.is_empty() {
                if chunk.chars().any(|c| chars::is(c, NO_SPACE)) {
                    segment_no_space(chunk, |a, b| v.push(&s[offset + a..offset + b]));
                } else {
                    split_and_merge(chunk, offset, &mut scratch, &mut |a, b| v.push(&s[a..b]));
                }
            }
            offset += chunk.len();
            offset += s[offset..].chars().next().map_or(0, char::len_utf8);
        }
        v
    }

    #[test]
    fn units_fit_the_bound() {
        assert!(UNITS.iter().all(|u| u.len() <= MAX_UNIT));
    }

    #[test]
    fn fast_paths_agree_with_the_affix_rules() {
        let samples = "für können. über, Möglichkeit; natürlich! wäre? (für) müssen\"             é. à. ß, Ünd. WÜ. ÉTÉ. Straße.) d’un it’s don’t „Ich “I können.. große…             1. 15, 2020. 3.14. 12,5 1, | - / & = % + – — « » € © · • § ’ ( ) . ,             a b. C. cannot. Dr. 5pm. Rep., Co., é, ça. Ça. Ēē. ǅ. ᾈ. 𝔸𝔹. x² km². 10€.             Ⅻ. ⅻ. über-all naïve, coöperate. Zürich: Bühne! ĳ. ŉ.";
        assert_eq!(toks(samples), general_toks(samples));
        // And on the real pages, when ../shared is here.
        let Some(texts) = crate::tokenize::testdata::corpus_texts(usize::MAX) else {
            return;
        };
        assert!(texts.len() > 1000, "{} documents", texts.len());
        for (i, t) in texts.iter().enumerate() {
            assert_eq!(toks(t), general_toks(t), "document {i}");
        }
    }

    #[test]
    fn scripts_without_spaces_use_dictionaries() {
        assert_eq!(
            toks("中华人民共和国成立了。"),
            ["中华", "人民", "共和国", "成立", "了", "。"]
        );
        assert_eq!(toks("漢字テスト です。"), ["漢字", "テスト", "です", "。"]);
        assert_eq!(toks("한국어 문장"), ["한국어", "문장"]);
        assert_eq!(toks("ภาษาไทย"), ["ภาษา", "ไทย"]);
        // Latin runs and numbers inside a chunk keep the UAX #29 rules.
        assert_eq!(toks("使用Rust2024版"), ["使用", "Rust2024", "版"]);
    }

    /// Real Chinese, Japanese and Thai sentences (lingua's test sentences): every chunk is
    /// covered exactly, words are dictionary words (mean length above one character), and
    /// frequent words come out whole wherever they occur.
    #[test]
    fn real_sentences_split_into_dictionary_words() {
        let Some(sents) = crate::tokenize::testdata::lingua_sentences(300) else {
            return;
        };
        for (lang, common, lo, hi) in [
            ("zh", ["我们", "中国", "没有"], 1.4, 3.0),
            ("ja", ["日本", "問題", "世界"], 1.4, 3.5),
            ("th", ["ประเทศ", "ที่", "และ"], 2.0, 6.0),
        ] {
            let texts: Vec<&str> = sents
                .iter()
                .filter(|(l, _)| l == lang)
                .map(|(_, t)| t.as_str())
                .collect();
            assert!(texts.len() >= 200, "{lang}: {} sentences", texts.len());
            let (mut words, mut chars_in_words) = (0usize, 0usize);
            let (mut seen, mut whole) = (0usize, 0usize);
            for t in &texts {
                let v = toks(t);
                // Tokens cover the text but its whitespace, in order.
                let joined: String = v.concat();
                let plain: String = t.chars().filter(|&c| !chars::is_space(c)).collect();
                assert_eq!(joined, plain, "{lang}: {t}");
                for w in &v {
                    if w.chars().all(|c| chars::is(c, NO_SPACE)) {
                        words += 1;
                        chars_in_words += w.chars().count();
                    }
                }
                for c in common {
                    if t.contains(c) {
                        seen += 1;
                        whole += v.iter().any(|w| w == &c) as usize;
                    }
                }
            }
            let mean = chars_in_words as f64 / words as f64;
            assert!(
                mean > lo && mean < hi,
                "{lang}: {mean:.2} characters per word"
            );
            assert!(seen >= 15, "{lang}: common words seen {seen} times");
            assert!(
                whole as f64 >= 0.8 * seen as f64,
                "{lang}: common words whole {whole} of {seen}"
            );
        }
    }
}
