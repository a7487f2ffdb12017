//! The phone scanner of `safety.pii`: grouped digits with a consistent separator, judged by
//! shape and by the words around them.

use super::*;

/// Words that say a number nearby is a phone number.
pub(super) const PHONE_WORDS: &[&str] = &[
    "phone",
    "tel",
    "tel.",
    "telephone",
    "mobile",
    "cell",
    "cellphone",
    "fax",
    "call",
    "calling",
    "dial",
    "reach",
    "contact",
    "sms",
    "text",
    "whatsapp",
    "ring",
    "answer",
    "answering",
    "hotline",
    "helpline",
    "desk",
    "landline",
    "ext",
    "extension",
    "messages",
    "voicemail",
    "mob",
    "tlf",
    "telefon",
    "telefono",
    "téléphone",
    "handy",
];

/// Words that make a nearby number likely a phone number when nothing names another kind.
pub(super) const NUMBER_WORDS: &[&str] = &["number", "no", "nr", "num"];

/// Labels that follow a phone number in contact blocks ("555 0101 office").
pub(super) const PHONE_LABELS_AFTER: &[&str] =
    &["office", "home", "work", "mobile", "cell", "fax", "direct"];

/// Words that say a number nearby is some other identifier.
pub(super) const OTHER_NUMBER_WORDS: &[&str] = &[
    "license",
    "licence",
    "passport",
    "ssn",
    "social",
    "account",
    "routing",
    "iban",
    "isbn",
    "order",
    "invoice",
    "serial",
    "tracking",
    "zip",
    "postal",
    "postcode",
    "id",
    "reference",
    "ref",
    "policy",
    "patient",
    "employee",
    "customer",
    "card",
    "credit",
    "visa",
    "mastercard",
];

/// What the nearest telling word before a number says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cue {
    Phone,
    Other,
}

/// The nearest word of `ctx` (scanning back from its end) that names a phone or another kind
/// of number.
pub(super) fn nearest_cue(ctx: &str) -> Option<Cue> {
    let words: Vec<String> = words_lower(ctx).collect();
    words.iter().rev().find_map(|w| {
        if PHONE_WORDS.iter().any(|x| x.trim_end_matches('.') == w) {
            Some(Cue::Phone)
        } else if OTHER_NUMBER_WORDS.contains(&w.as_str()) {
            Some(Cue::Other)
        } else {
            None
        }
    })
}

/// The lower-cased words of `s` (letters only).
pub(super) fn words_lower(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

pub(super) fn has_word(s: &str, list: &[&str]) -> bool {
    words_lower(s).any(|w| list.iter().any(|x| x.trim_end_matches('.') == w))
}

/// The text up to `n` bytes before `i`, starting at a char boundary.
pub(super) fn before(text: &str, i: usize, n: usize) -> &str {
    let mut s = i.saturating_sub(n);
    while !text.is_char_boundary(s) {
        s += 1;
    }
    &text[s..i]
}

pub(super) fn after(text: &str, e: usize, n: usize) -> &str {
    let mut x = (e + n).min(text.len());
    while !text.is_char_boundary(x) {
        x -= 1;
    }
    &text[e..x]
}

pub(super) fn is_date(groups: &[usize], d: &[u8]) -> bool {
    let num = |a: usize, n: usize| -> u32 {
        d[a..a + n]
            .iter()
            .fold(0, |v, &c| v * 10 + (c - b'0') as u32)
    };
    match groups {
        [4, 2, 2] => (1..=12).contains(&num(4, 2)) && (1..=31).contains(&num(6, 2)),
        [2, 2, 4] => {
            let (a, b2) = (num(0, 2), num(2, 2));
            (1..=31).contains(&a) && (1..=31).contains(&b2) && (a <= 12 || b2 <= 12)
        }
        _ => false,
    }
}

/// Phone shapes: unambiguous, or needing a phone word nearby.
#[derive(PartialEq)]
pub(super) enum Shape {
    Strong,
    Weak,
    No,
}

/// One part of a phone candidate: a plain digit group or a parenthesized one, with the
/// separator before it (when another part precedes it).
#[derive(Clone, Copy, Debug)]
pub(super) struct PhonePart {
    paren: bool,
    digits: usize,
    sep: Option<u8>,
    start: usize,
    end: usize,
}

/// Splits a phone candidate at `start` into parts; returns the parts and whether it starts
/// with a `+` country code.
pub(super) fn phone_parts(b: &[u8], start: usize) -> (Vec<PhonePart>, bool) {
    let mut parts: Vec<PhonePart> = Vec::new();
    let mut e = start;
    let plus = b[e] == b'+';
    if plus {
        e += 1;
    }
    let mut sep: Option<u8> = None;
    loop {
        let s0 = e;
        if e < b.len() && b[e] == b'(' {
            // "(08)", "(0)", "(+358)", "(01967)"
            let mut q = e + 1;
            if q < b.len() && b[q] == b'+' {
                q += 1;
            }
            let q0 = q;
            while q < b.len() && b[q].is_ascii_digit() {
                q += 1;
            }
            if q == q0 || q - q0 > 5 || q >= b.len() || b[q] != b')' {
                break;
            }
            e = q + 1;
            parts.push(PhonePart {
                paren: true,
                digits: q - q0,
                sep,
                start: s0,
                end: e,
            });
        } else if e < b.len() && b[e].is_ascii_digit() {
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
            parts.push(PhonePart {
                paren: false,
                digits: e - s0,
                sep,
                start: s0,
                end: e,
            });
        } else {
            break;
        }
        if e + 1 < b.len()
            && matches!(b[e], b' ' | b'-' | b'.' | b'/')
            && (b[e + 1].is_ascii_digit() || b[e + 1] == b'(')
        {
            sep = Some(b[e]);
            e += 1;
        } else if e < b.len() && (b[e].is_ascii_digit() || b[e] == b'(') {
            sep = None; // parts that touch: "(0)71"
        } else {
            break;
        }
    }
    (parts, plus)
}

/// The extension after a phone number ("x123", " ext. 123"): its end, if any.
pub(super) fn extension_end(b: &[u8], end: usize) -> Option<usize> {
    for ext in ["x", " x", " ext. ", " ext ", " ext.", "ext."] {
        let rest = &b[end..];
        if rest.len() > ext.len()
            && rest.starts_with(ext.as_bytes())
            && rest[ext.len()].is_ascii_digit()
        {
            let k0 = end + ext.len();
            let mut k = k0;
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            return (k - k0 <= 5).then_some(k);
        }
    }
    None
}

pub(super) fn phones(text: &str, starts: &[usize], out: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut next = 0usize;
    for &d in starts {
        // A phone number starts at its first digit, or at the "+", "(" or "(+" before it.
        let mut i = d;
        if i >= 1 && matches!(b[i - 1], b'+' | b'(') {
            i -= 1;
            if b[i] == b'+' && i >= 1 && b[i - 1] == b'(' {
                i -= 1;
            }
        }
        if i < next || !phone_left_boundary(b, i) {
            continue;
        }
        let (parts, plus) = phone_parts(b, i);
        // The longest prefix of the parts that reads as a phone number.
        let mut hit = None;
        for k in (1..=parts.len()).rev() {
            let p = &parts[..k];
            if p[k - 1].paren || (k < parts.len() && !cut_allowed(&parts, k)) {
                continue;
            }
            let mut end = p[k - 1].end;
            if k == parts.len() {
                end = extension_end(b, end).unwrap_or(end);
            }
            // Context: the words just before (not reaching back past the previous number
            // found) and just after.
            let from = out.last().map_or(0, |&(_, e)| e).max(i.saturating_sub(40));
            let ctx = before(text, i, i - from);
            let next = after(text, end, 12);
            let ok = match classify_phone(p, plus, b, end) {
                Shape::No => false,
                Shape::Strong => nearest_cue(ctx) != Some(Cue::Other),
                Shape::Weak => match nearest_cue(ctx) {
                    Some(Cue::Phone) => true,
                    Some(Cue::Other) => false,
                    None => {
                        has_word(ctx, NUMBER_WORDS)
                            || has_word(next, PHONE_WORDS)
                            || has_word(next, PHONE_LABELS_AFTER)
                    }
                },
            };
            if ok {
                hit = Some(end);
                break;
            }
        }
        match hit {
            Some(end) => {
                out.push((i, end));
                next = end;
            }
            None => {
                // Skip the whole candidate: a tail of a rejected run is no phone number either.
                next = parts.last().map_or(i + 1, |p| p.end.max(i + 1));
            }
        }
    }
}

/// Whether a candidate may end before part `k`: only where the grouping changes, so that
/// "4111 1111 1111 1112" is not read as a phone number and a tail, but "44261072 1987-05-25"
/// is a number followed by a date.
pub(super) fn cut_allowed(parts: &[PhonePart], k: usize) -> bool {
    let cut = parts[k].sep;
    let inner = |ps: &[PhonePart]| -> Vec<u8> { ps.iter().skip(1).filter_map(|p| p.sep).collect() };
    let head = inner(&parts[..k]);
    let tail = inner(&parts[k..]);
    head.last().copied() != cut || (!tail.is_empty() && tail.iter().all(|&s| Some(s) != cut))
}

/// A phone may follow a comma that does not separate thousands ("Office,+44 ...").
pub(super) fn phone_left_boundary(b: &[u8], i: usize) -> bool {
    if i > 0 && b[i - 1] == b',' {
        return i < 2 || !b[i - 2].is_ascii_digit();
    }
    left_boundary(b, i)
}

pub(super) fn isbn13(d: &[u8]) -> bool {
    d.len() == 13
        && (d.starts_with(b"978") || d.starts_with(b"979"))
        && d.iter()
            .enumerate()
            .map(|(k, &c)| (c - b'0') as u32 * if k % 2 == 0 { 1 } else { 3 })
            .sum::<u32>()
            % 10
            == 0
}

pub(super) fn classify_phone(parts: &[PhonePart], plus: bool, b: &[u8], end: usize) -> Shape {
    let digits: usize = parts.iter().map(|p| p.digits).sum();
    if !(7..=15).contains(&digits) || !right_boundary(b, end) {
        return Shape::No;
    }
    // Times and ratios continue with ':'.
    if end < b.len() && b[end] == b':' {
        return Shape::No;
    }
    let paren = parts.iter().any(|p| p.paren);
    // Separators between plain groups, the one after a "+CC" excepted: the first may differ
    // (an area code: "08-846 37 10", "030/123 456"), the others must agree; '/' only first.
    let mut seps: Vec<u8> = Vec::new();
    for (k, p) in parts.iter().enumerate().skip(1) {
        if p.paren || parts[k - 1].paren || (plus && k == 1) {
            continue;
        }
        if let Some(s) = p.sep {
            seps.push(s);
        }
    }
    if seps.len() > 2 && !seps[1..].windows(2).all(|w| w[0] == w[1])
        || seps.iter().skip(1).any(|&s| s == b'/')
    {
        return Shape::No;
    }
    if plus || paren {
        return Shape::Strong;
    }
    let g: Vec<usize> = parts.iter().map(|p| p.digits).collect();
    let mut d: Vec<u8> = Vec::with_capacity(digits);
    for p in parts {
        d.extend(b[p.start..p.end].iter().filter(|c| c.is_ascii_digit()));
    }
    let sep = seps.last().copied();
    let uniform = seps.windows(2).all(|w| w[0] == w[1]);
    if uniform && is_date(&g, &d) {
        return Shape::No;
    }
    if isbn13(&d) {
        return Shape::No;
    }
    if sep == Some(b'.') && (g.len() == 2 || (g.len() == 4 && g.iter().all(|&x| x <= 3))) {
        return Shape::No; // a decimal number, or an IPv4 address (public ones are IPs)
    }
    if g.len() >= 3 && g[0] == 1 && g[1..].iter().all(|&x| x == 3) {
        return Shape::No; // thousands: "1 234 567"
    }
    match g.len() {
        1 => {
            if (8..=11).contains(&digits) {
                Shape::Weak
            } else {
                Shape::No
            }
        }
        2 => {
            let year = |a: usize| {
                let y: u32 = d[a..a + 4]
                    .iter()
                    .fold(0, |v, &c| v * 10 + (c - b'0') as u32);
                (1000..=2199).contains(&y)
            };
            let postal = g[1] < 4 || g[0] < 2 || (sep == Some(b'-') && g[0] == 5);
            let years = g[0] == 4 && g[1] == 4 && sep == Some(b'-') && year(0) && year(4);
            if postal || years {
                Shape::No // postal codes, references, ranges of years
            } else {
                Shape::Weak
            }
        }
        _ if digits < 8 => Shape::Weak,
        _ => Shape::Strong,
    }
}
