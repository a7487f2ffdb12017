//! The IBAN scanner of `safety.pii`: country length and ISO 7064 mod-97 checksum.

use super::*;

/// IBAN lengths per country (the SWIFT IBAN registry).
pub(super) const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
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

pub(super) fn iban_checksum_ok(chars: &[u8]) -> bool {
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

pub(super) fn ibans(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
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
