//! `safety.pii`: finds personal data in the text and replaces it with placeholders.
//!
//! Types and the rules that find them (hand-written scanners over the bytes, no backtracking):
//! - **email**: `local@domain.tld`, the local part of letters, digits and `._%+-`, the domain
//!   of dot-separated labels ending in an alphabetic top-level domain;
//! - **ip**: IPv4 dotted quads and IPv6 addresses (`::` compression, embedded IPv4) that are
//!   public: private, loopback, link-local, shared, documentation, benchmarking, multicast and
//!   reserved ranges (the IANA special-purpose registries) are left alone;
//! - **iban**: country code, check digits and account number, optionally grouped by spaces in
//!   fours; the length must be the country's and the ISO 7064 mod-97 checksum must hold;
//! - **credit_card**: 12 to 19 digits, contiguous or grouped by single spaces or dashes, with
//!   an issuer prefix (2-6, 1800, 0604) and a valid Luhn check digit;
//! - **ssn**: US social security numbers `AAA-GG-SSSS` with a valid area (not 000, 666 or
//!   9xx), group (not 00) and serial (not 0000);
//! - **phone**: 7 to 15 digits in groups separated by one consistent separator (space, `-` or
//!   `.`), with an optional `+` country code, parenthesized area or trunk code (`(08)`,
//!   `+41 (0)71`) and extension (`x123`). Shapes that are unambiguous (a `+`, a parenthesized
//!   part, three or more groups with eight or more digits) are phone numbers unless the words
//!   just before name another kind of number (licence, passport, account, order, ...); shapes
//!   that could as well be an address or a reference (two groups, ten or eleven contiguous
//!   digits) need a phone word (phone, call, mobile, fax, ...) just before or after. Dates,
//!   years ranges, decimals, thousands groupings and postal codes (`12345-6789`, `3610-114`)
//!   are not phone numbers.
//!
//! Where spans overlap, the earlier type in the list above wins. Counts per type are signals;
//! the redacted text replaces the document's.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::signals::{SignalSpec, SignalType, Signals};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// A kind of personal data.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Ip,
    Iban,
    CreditCard,
    Ssn,
    Phone,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Ip,
        PiiKind::Iban,
        PiiKind::CreditCard,
        PiiKind::Ssn,
        PiiKind::Phone,
    ];

    /// The config and signal name.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Ip => "ip",
            PiiKind::Iban => "iban",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Ssn => "ssn",
            PiiKind::Phone => "phone",
        }
    }

    /// The default placeholder.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "<EMAIL>",
            PiiKind::Ip => "<IP_ADDRESS>",
            PiiKind::Iban => "<IBAN>",
            PiiKind::CreditCard => "<CREDIT_CARD>",
            PiiKind::Ssn => "<US_SSN>",
            PiiKind::Phone => "<PHONE>",
        }
    }
}

/// One piece of personal data found in a text (byte offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiiSpan {
    pub start: usize,
    pub end: usize,
    pub kind: PiiKind,
}

/// Finds the spans of the given kinds, sorted and without overlaps.
pub fn find_pii(text: &str, kinds: &[PiiKind]) -> Vec<PiiSpan> {
    let b = text.as_bytes();
    let mut all: Vec<PiiSpan> = Vec::new();
    // Every number-shaped kind starts at (or just before) the first digit of a digit run: the
    // scanners visit those positions only.
    let starts = digit_starts(b);
    for &k in &PiiKind::ALL {
        if !kinds.contains(&k) {
            continue;
        }
        let mut found = Vec::new();
        match k {
            PiiKind::Email => emails(text, &mut found),
            PiiKind::Ip => ips(text, &starts, &mut found),
            PiiKind::Iban => ibans(b, &starts, &mut found),
            PiiKind::CreditCard => cards(b, &starts, &mut found),
            PiiKind::Ssn => ssns(b, &starts, &mut found),
            PiiKind::Phone => phones(text, &starts, &mut found),
        }
        // Earlier kinds win: keep only spans that overlap nothing found so far.
        for (s, e) in found {
            if !all.iter().any(|x| x.start < e && s < x.end) {
                all.push(PiiSpan {
                    start: s,
                    end: e,
                    kind: k,
                });
            }
        }
    }
    all.sort_by_key(|s| s.start);
    all
}

/// Positions of the first digit of every run of ASCII digits. Works on 64-byte blocks: a
/// bit mask of the digits (a loop the compiler vectorizes), then the bits whose previous byte
/// is not a digit; most blocks hold none.
fn digit_starts(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut carry = 0u64; // 1 when the last byte of the previous block is a digit
    for (k, block) in b.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (j, &c) in block.iter().enumerate() {
            mask |= ((c.wrapping_sub(b'0') < 10) as u64) << j;
        }
        let mut starts = mask & !((mask << 1) | carry);
        carry = mask >> 63;
        while starts != 0 {
            v.push(k * 64 + starts.trailing_zeros() as usize);
            starts &= starts - 1;
        }
    }
    v
}

/// Replaces each span by its kind's placeholder.
pub fn redact(text: &str, spans: &[PiiSpan], placeholder: impl Fn(PiiKind) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        out.push_str(&text[last..s.start]);
        out.push_str(&placeholder(s.kind));
        last = s.end;
    }
    out.push_str(&text[last..]);
    out
}

#[inline]
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

// ---------------------------------------------------------------- email

fn is_local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn emails(text: &str, out: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let mut from = 0;
    for at in memchr::memchr_iter(b'@', b) {
        if at < from {
            continue;
        }
        let mut s = at;
        while s > from && is_local_byte(b[s - 1]) {
            s -= 1;
        }
        while s < at && matches!(b[s], b'.' | b'-' | b'+') {
            s += 1;
        }
        if s == at || b[at - 1] == b'.' {
            continue;
        }
        // Domain: dot-separated labels of [A-Za-z0-9-]; the last is an alphabetic TLD.
        let mut end = at + 1;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'.' | b'-')) {
            end += 1;
        }
        while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
            end -= 1;
        }
        let domain = &text[at + 1..end];
        let labels: Vec<&str> = domain.split('.').collect();
        let labels_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            });
        let tld = labels.last().copied().unwrap_or("");
        let tld_ok = (2..=24).contains(&tld.len()) && tld.bytes().all(|c| c.is_ascii_alphabetic());
        if !labels_ok || !tld_ok || (end < b.len() && is_word_byte(b[end])) {
            continue;
        }
        out.push((s, end));
        from = end;
    }
}

// ---------------------------------------------------------------- ip

fn ipv4_public(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    !(x == 0
        || x == 10
        || x == 127
        || (x == 100 && (64..128).contains(&y))
        || (x == 169 && y == 254)
        || (x == 172 && (16..32).contains(&y))
        || (x == 192 && y == 0 && (z == 0 || z == 2))
        || (x == 192 && y == 88 && z == 99)
        || (x == 192 && y == 168)
        || (x == 198 && (y == 18 || y == 19))
        || (x == 198 && y == 51 && z == 100)
        || (x == 203 && y == 0 && z == 113)
        || x >= 224)
}

fn ipv6_public(a: Ipv6Addr) -> bool {
    let s = a.segments();
    if let Some(v4) = a.to_ipv4_mapped() {
        return ipv4_public(v4);
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use translation
        || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF protocol assignments (2001::/23)
}

fn ips(text: &str, starts: &[usize], out: &mut Vec<(usize, usize)>) {
    let b = text.as_bytes();
    let addr = |c: u8| c.is_ascii_hexdigit() || matches!(c, b'.' | b':');
    // Candidates: runs of address characters beginning at a digit (IPv4, IPv6) or holding a
    // colon (IPv6 starting with a letter or "::").
    let mut cands: Vec<usize> = starts.to_vec();
    for p in memchr::memchr_iter(b':', b) {
        let mut k = p;
        while k > 0 && addr(b[k - 1]) {
            k -= 1;
        }
        cands.push(k);
    }
    cands.sort_unstable();
    cands.dedup();
    let mut next = 0usize;
    for &i in &cands {
        if i < next || (i > 0 && (is_word_byte(b[i - 1]) || matches!(b[i - 1], b'.' | b':'))) {
            continue;
        }
        // The longest run of address characters.
        let mut e = i;
        while e < b.len() && (b[e].is_ascii_hexdigit() || matches!(b[e], b'.' | b':')) {
            e += 1;
        }
        // Trailing punctuation is not part of an address ("at 1.2.3.4.").
        let mut end = e;
        while end > i && matches!(b[end - 1], b'.' | b':') && !text[i..end].ends_with("::") {
            end -= 1;
        }
        let cand = &text[i..end];
        let followed_by_word = end < b.len() && is_word_byte(b[end]);
        let mut hit = false;
        if !followed_by_word && cand.contains(':') {
            if let Ok(a) = cand.parse::<Ipv6Addr>() {
                // Require two colons outside "::" alone, so that "a::b"-like identifiers in
                // code (C++ scopes are letters, not hex) stay rare; times have no "::".
                hit = cand.matches(':').count() >= 2 && cand.len() >= 6 && ipv6_public(a);
            }
        } else if !followed_by_word && cand.bytes().filter(|&x| x == b'.').count() == 3 {
            if let Ok(a) = cand.parse::<Ipv4Addr>() {
                hit = ipv4_public(a);
            }
        }
        if hit {
            out.push((i, end));
        }
        next = e.max(i + 1);
    }
}

// ---------------------------------------------------------------- iban

/// IBAN lengths per country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

fn iban_checksum_ok(chars: &[u8]) -> bool {
    // Move the first four characters to the end; letters count as 10..35; mod 97 must be 1.
    let mut r: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_digit() {
            r = (r * 10 + (c - b'0') as u32) % 97;
        } else {
            r = (r * 100 + (c - b'A') as u32 + 10) % 97;
        }
    }
    r == 1
}

fn ibans(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
    let mut next = 0usize;
    for &d in starts {
        // The check digits follow the two letters of the country code.
        if d < 2 || d - 2 < next {
            continue;
        }
        let i = d - 2;
        if i + 15 > b.len() {
            break;
        }
        if !(b[i].is_ascii_uppercase()
            && b[i + 1].is_ascii_uppercase()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit())
            || (i > 0 && is_word_byte(b[i - 1]))
        {
            continue;
        }
        let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(cc, _)| &b[i..i + 2] == *cc) else {
            continue;
        };
        // Collect up to 34 alphanumerics, allowing single spaces between groups of four;
        // `ends[k]` is the byte end after k characters.
        let mut chars = Vec::with_capacity(34);
        let mut ends = vec![i];
        let mut e = i;
        while e < b.len() && chars.len() < 34 {
            let c = b[e];
            if c.is_ascii_alphanumeric() {
                chars.push(c);
                e += 1;
                ends.push(e);
            } else if c == b' '
                && chars.len() % 4 == 0
                && e + 1 < b.len()
                && b[e + 1].is_ascii_alphanumeric()
            {
                e += 1;
            } else {
                break;
            }
        }
        // The country's registered length first; else the whole run when its checksum holds
        // (generators and typos produce off-length numbers; the checksum keeps precision).
        let at_boundary = |k: usize| ends[k] >= b.len() || !is_word_byte(b[ends[k]]);
        let valid = |k: usize| {
            k >= 15
                && k <= chars.len()
                && chars[4..k]
                    .iter()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
                && at_boundary(k)
                && iban_checksum_ok(&chars[..k])
        };
        let n = chars.len();
        let hit = if valid(len) {
            Some(len)
        } else if valid(n) {
            Some(n)
        } else {
            None
        };
        if let Some(k) = hit {
            out.push((i, ends[k]));
            next = ends[k];
        }
    }
}

// ---------------------------------------------------------------- digit groups

/// A run of digit groups: byte span, the digits, and the group lengths and separators.
struct DigitRun {
    start: usize,
    end: usize,
    digits: Vec<u8>,
    groups: Vec<usize>,
    seps: Vec<u8>,
}

/// Reads digit groups joined by single separators from `seps` at `i` (a digit).
fn digit_run(b: &[u8], i: usize, allowed: &[u8]) -> DigitRun {
    let mut r = DigitRun {
        start: i,
        end: i,
        digits: Vec::new(),
        groups: Vec::new(),
        seps: Vec::new(),
    };
    let mut e = i;
    loop {
        let g0 = e;
        while e < b.len() && b[e].is_ascii_digit() {
            r.digits.push(b[e]);
            e += 1;
        }
        r.groups.push(e - g0);
        r.end = e;
        if e + 1 < b.len() && allowed.contains(&b[e]) && b[e + 1].is_ascii_digit() {
            r.seps.push(b[e]);
            e += 1;
        } else {
            break;
        }
    }
    r
}

fn left_boundary(b: &[u8], i: usize) -> bool {
    i == 0 || !(is_word_byte(b[i - 1]) || matches!(b[i - 1], b'.' | b'-' | b'+' | b'/' | b','))
}

fn right_boundary(b: &[u8], e: usize) -> bool {
    if e >= b.len() {
        return true;
    }
    if is_word_byte(b[e]) {
        return false;
    }
    // "1234-5" or "1.5" continue the number.
    !(matches!(b[e], b'.' | b'-' | b',' | b'/') && e + 1 < b.len() && b[e + 1].is_ascii_digit())
}

fn luhn_ok(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (k, &c) in d.iter().rev().enumerate() {
        let mut x = (c - b'0') as u32;
        if k % 2 == 1 {
            x *= 2;
            if x > 9 {
                x -= 9;
            }
        }
        sum += x;
    }
    sum % 10 == 0
}

fn cards(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
    let mut next = 0usize;
    for &i in starts {
        if i < next || !left_boundary(b, i) {
            continue;
        }
        let mut r = digit_run(b, i, b" -");
        if r.groups[0] >= 12 {
            // A contiguous number is judged alone, whatever follows it ("4111... 1999-09-25").
            let g = r.groups[0];
            r.digits.truncate(g);
            r.groups.truncate(1);
            r.seps.clear();
            r.end = i + g;
        }
        let n = r.digits.len();
        let consistent = r.seps.windows(2).all(|w| w[0] == w[1]);
        let grouped = r.groups.len() == 1
            || (consistent
                && r.groups[0] == 4
                && r.groups[1..].iter().all(|&g| (3..=6).contains(&g)));
        let prefix_ok = matches!(r.digits[0], b'2'..=b'6')
            || r.digits.starts_with(b"1800")
            || r.digits.starts_with(b"0604");
        if (12..=19).contains(&n)
            && grouped
            && prefix_ok
            && right_boundary(b, r.end)
            && luhn_ok(&r.digits)
        {
            out.push((r.start, r.end));
        }
        next = r.end.max(i + 1);
    }
}

fn ssns(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
    let mut next = 0usize;
    for &i in starts {
        if i + 11 > b.len() {
            break;
        }
        if i < next || !left_boundary(b, i) {
            continue;
        }
        let r = digit_run(b, i, b"-");
        // After "+81 " or "(03) " the digits are a phone number's.
        let mut k = i;
        while k > 0 && b[k - 1] == b' ' {
            k -= 1;
        }
        let mut j = k;
        while j > 0 && b[j - 1].is_ascii_digit() {
            j -= 1;
        }
        let after_code = k < i && j < k && j > 0 && b[j - 1] == b'+' || k > 0 && b[k - 1] == b')';
        if r.groups == [3, 2, 4] && right_boundary(b, r.end) && !after_code {
            let d = &r.digits;
            let area = &d[0..3];
            let ok = area != b"000"
                && area != b"666"
                && area[0] != b'9'
                && &d[3..5] != b"00"
                && &d[5..9] != b"0000";
            if ok {
                out.push((r.start, r.end));
            }
        }
        next = r.end.max(i + 1);
    }
}

// ---------------------------------------------------------------- phone

/// Words that say a number nearby is a phone number.
const PHONE_WORDS: &[&str] = &[
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
const NUMBER_WORDS: &[&str] = &["number", "no", "nr", "num"];

/// Labels that follow a phone number in contact blocks ("555 0101 office").
const PHONE_LABELS_AFTER: &[&str] = &["office", "home", "work", "mobile", "cell", "fax", "direct"];

/// Words that say a number nearby is some other identifier.
const OTHER_NUMBER_WORDS: &[&str] = &[
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
enum Cue {
    Phone,
    Other,
}

/// The nearest word of `ctx` (scanning back from its end) that names a phone or another kind
/// of number.
fn nearest_cue(ctx: &str) -> Option<Cue> {
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
fn words_lower(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

fn has_word(s: &str, list: &[&str]) -> bool {
    words_lower(s).any(|w| list.iter().any(|x| x.trim_end_matches('.') == w))
}

/// The text up to `n` bytes before `i`, starting at a char boundary.
fn before(text: &str, i: usize, n: usize) -> &str {
    let mut s = i.saturating_sub(n);
    while !text.is_char_boundary(s) {
        s += 1;
    }
    &text[s..i]
}

fn after(text: &str, e: usize, n: usize) -> &str {
    let mut x = (e + n).min(text.len());
    while !text.is_char_boundary(x) {
        x -= 1;
    }
    &text[e..x]
}

fn is_date(groups: &[usize], d: &[u8]) -> bool {
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
enum Shape {
    Strong,
    Weak,
    No,
}

/// One part of a phone candidate: a plain digit group or a parenthesized one, with the
/// separator before it (when another part precedes it).
#[derive(Clone, Copy, Debug)]
struct PhonePart {
    paren: bool,
    digits: usize,
    sep: Option<u8>,
    start: usize,
    end: usize,
}

/// Splits a phone candidate at `start` into parts; returns the parts and whether it starts
/// with a `+` country code.
fn phone_parts(b: &[u8], start: usize) -> (Vec<PhonePart>, bool) {
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
fn extension_end(b: &[u8], end: usize) -> Option<usize> {
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

fn phones(text: &str, starts: &[usize], out: &mut Vec<(usize, usize)>) {
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
fn cut_allowed(parts: &[PhonePart], k: usize) -> bool {
    let cut = parts[k].sep;
    let inner = |ps: &[PhonePart]| -> Vec<u8> { ps.iter().skip(1).filter_map(|p| p.sep).collect() };
    let head = inner(&parts[..k]);
    let tail = inner(&parts[k..]);
    head.last().copied() != cut || (!tail.is_empty() && tail.iter().all(|&s| Some(s) != cut))
}

/// A phone may follow a comma that does not separate thousands ("Office,+44 ...").
fn phone_left_boundary(b: &[u8], i: usize) -> bool {
    if i > 0 && b[i - 1] == b',' {
        return i < 2 || !b[i - 2].is_ascii_digit();
    }
    left_boundary(b, i)
}

fn isbn13(d: &[u8]) -> bool {
    d.len() == 13
        && (d.starts_with(b"978") || d.starts_with(b"979"))
        && d.iter()
            .enumerate()
            .map(|(k, &c)| (c - b'0') as u32 * if k % 2 == 0 { 1 } else { 3 })
            .sum::<u32>()
            % 10
            == 0
}

fn classify_phone(parts: &[PhonePart], plus: bool, b: &[u8], end: usize) -> Shape {
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

// ---------------------------------------------------------------- stage

/// `[stages.pii]`: which kinds to redact and with what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Kinds to find: any of "email", "ip", "iban", "credit_card", "ssn", "phone".
    pub types: Vec<PiiKind>,
    /// Placeholder per kind, e.g. `{ email = "[EMAIL]" }` (defaults: `<EMAIL>`, `<PHONE>`,
    /// `<IP_ADDRESS>`, `<CREDIT_CARD>`, `<IBAN>`, `<US_SSN>`).
    pub placeholders: BTreeMap<PiiKind, String>,
    /// Replace the text with its redacted form (false: only count).
    pub redact: bool,
    /// Drop documents with more pieces of personal data than this (contact lists, leaks).
    pub max_matches: Option<u64>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            types: PiiKind::ALL.to_vec(),
            placeholders: BTreeMap::new(),
            redact: true,
            max_matches: None,
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "safety.pii",
    about: "Redacts emails, phone numbers, public IPs, credit cards, IBANs and US SSNs; counts per type",
    example: "types = [\"email\", \"phone\", \"ip\", \"credit_card\", \"iban\", \"ssn\"]\nredact = true\n[placeholders]\nemail = \"<EMAIL>\"\nphone = \"<PHONE>\"",
    build,
};

pub struct Pii {
    name: String,
    cfg: PiiConfig,
    sig: Vec<(PiiKind, String)>,
    sig_total: String,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: PiiConfig = args.parse()?;
    if cfg.types.is_empty() {
        return Err(ConfigError::new("types", "list at least one kind"));
    }
    let n = args.name;
    Ok(Built::Map(Box::new(Pii {
        name: n.to_string(),
        sig: cfg
            .types
            .iter()
            .map(|k| (*k, format!("{n}.{}", k.name())))
            .collect(),
        sig_total: format!("{n}.total"),
        cfg,
    })))
}

impl Pii {
    /// The placeholder for a kind.
    pub fn placeholder(&self, k: PiiKind) -> String {
        self.cfg
            .placeholders
            .get(&k)
            .cloned()
            .unwrap_or_else(|| k.placeholder().to_string())
    }

    /// Finds, counts and (when configured) redacts; returns the counts per kind.
    pub fn apply(&self, doc: &mut Document) -> BTreeMap<PiiKind, usize> {
        let spans = find_pii(doc.text(), &self.cfg.types);
        let mut counts: BTreeMap<PiiKind, usize> = self.cfg.types.iter().map(|k| (*k, 0)).collect();
        for s in &spans {
            *counts.entry(s.kind).or_default() += 1;
        }
        if self.cfg.redact && !spans.is_empty() {
            let red = redact(doc.text(), &spans, |k| self.placeholder(k));
            doc.set_text(red);
        }
        counts
    }

    /// Builds the stage from a config section (for the `curate pii` command).
    pub fn from_config(name: &str, cfg: PiiConfig) -> Pii {
        Pii {
            name: name.to_string(),
            sig: cfg
                .types
                .iter()
                .map(|k| (*k, format!("{name}.{}", k.name())))
                .collect(),
            sig_total: format!("{name}.total"),
            cfg,
        }
    }
}

impl Stage for Pii {
    fn name(&self) -> &str {
        &self.name
    }

    fn signals(&self) -> Vec<SignalSpec> {
        let mut v: Vec<SignalSpec> = self
            .sig
            .iter()
            .map(|(_, s)| {
                SignalSpec::new(
                    s.clone(),
                    SignalType::I64,
                    "pieces of this kind found (and redacted)",
                )
            })
            .collect();
        v.push(SignalSpec::new(
            self.sig_total.clone(),
            SignalType::I64,
            "pieces of personal data found",
        ));
        v
    }

    fn reasons(&self) -> Vec<&'static str> {
        vec!["too_much_pii"]
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let counts = self.apply(doc);
        let mut total = 0;
        for (k, s) in &self.sig {
            let c = counts.get(k).copied().unwrap_or(0);
            total += c;
            doc.signals.set_i64(s.clone(), c as i64);
        }
        doc.signals.set_i64(self.sig_total.clone(), total as i64);
        Outcome::Keep
    }

    fn thresholds(&self) -> Vec<(String, f64)> {
        self.cfg
            .max_matches
            .map(|m| vec![(self.sig_total.clone(), m as f64)])
            .unwrap_or_default()
    }

    fn judge(&self, s: &Signals) -> Outcome {
        match self.cfg.max_matches {
            Some(m) if s.i64(&self.sig_total).unwrap_or(0) as u64 > m => {
                Outcome::Drop("too_much_pii")
            }
            _ => Outcome::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_run_starts() {
        let plain = |b: &[u8]| -> Vec<usize> {
            (0..b.len())
                .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
                .collect()
        };
        let mut t = String::new();
        for i in 0..300 {
            t.push_str(&"x".repeat(i % 7));
            t.push_str(&(i * 7919 % 100_003).to_string());
            if i % 5 == 0 {
                t.push('\u{e9}');
            }
        }
        for cut in [0, 1, 63, 64, 65, 127, 128, 129, t.len()] {
            let b = &t.as_bytes()[..cut];
            assert_eq!(digit_starts(b), plain(b), "first {cut} bytes");
        }
    }

    fn found(text: &str) -> Vec<(PiiKind, &str)> {
        find_pii(text, &PiiKind::ALL)
            .iter()
            .map(|s| (s.kind, &text[s.start..s.end]))
            .collect()
    }

    #[test]
    fn each_kind_is_found() {
        use PiiKind::*;
        assert_eq!(
            found("Mail jane.doe+x@mail.example.org."),
            [(Email, "jane.doe+x@mail.example.org")]
        );
        assert_eq!(
            found("from 8.8.8.8 and 2a00:1450:4001:81c::200e,"),
            [(Ip, "8.8.8.8"), (Ip, "2a00:1450:4001:81c::200e")]
        );
        assert_eq!(
            found("IBAN GB82 WEST 1234 5698 7654 32 ok"),
            [(Iban, "GB82 WEST 1234 5698 7654 32")]
        );
        assert_eq!(
            found("card 4111 1111 1111 1111 or 4111111111111111"),
            [
                (CreditCard, "4111 1111 1111 1111"),
                (CreditCard, "4111111111111111")
            ]
        );
        assert_eq!(found("SSN 123-45-6789"), [(Ssn, "123-45-6789")]);
        assert_eq!(found("Japan +81 158-23-2012"), [(Phone, "+81 158-23-2012")]);
        assert_eq!(
            found("Call +1 (415) 555-2671 x12 now"),
            [(Phone, "+1 (415) 555-2671 x12")]
        );
        assert_eq!(found("Tel: 030 1234567"), [(Phone, "030 1234567")]);
    }

    #[test]
    fn lookalikes_are_left_alone() {
        // Private and documentation addresses, failed checksums, dates, versions, prices.
        for t in [
            "server 192.168.1.10 and 10.0.0.1 and 127.0.0.1 and fe80::1 and 2001:db8::1",
            "GB82WEST12345698765433 (bad checksum)",
            "4111 1111 1111 1112",
            "SSN 000-12-3456 or 666-12-3456",
            "on 2021-03-04 at 10:30:00, version 1.2.3.4.5",
            "it cost 1 234 567 euros in 1990-2000; pi is 3.14159265",
            "the restaurant is at 17151 2450 Crown St",
            "zip 12345-6789 and 3610-114",
            "driver's license number is 2270-66-1551",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn stage_redacts_and_counts() {
        let s = crate::kit::stage(&DEF, "pii", DEF.example).unwrap();
        let mut d = Document::new("a", "Write to bob@example.com or call 415-555-2671.");
        s.process(&mut d);
        assert_eq!(d.text(), "Write to <EMAIL> or call <PHONE>.");
        assert_eq!(d.signals.i64("pii.email"), Some(1));
        assert_eq!(d.signals.i64("pii.phone"), Some(1));
        assert_eq!(d.signals.i64("pii.total"), Some(2));
        let s = crate::kit::stage(
            &DEF,
            "pii",
            "types = [\"email\"]\nredact = false\nmax_matches = 0",
        )
        .unwrap();
        let mut d = Document::new("b", "bob@example.com");
        s.process(&mut d);
        assert_eq!(d.text(), "bob@example.com");
        assert_eq!(s.judge(&d.signals), Outcome::Drop("too_much_pii"));
        let e = crate::kit::stage(&DEF, "pii", "types = [\"passport\"]")
            .err()
            .unwrap();
        assert!(e.key.starts_with("types"), "{e}");
    }
}
