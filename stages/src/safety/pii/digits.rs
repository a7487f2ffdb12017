//! Digit-group scanners of `safety.pii`: credit cards (issuer prefix, Luhn) and US SSNs, and
//! the digit-run reader the phone scanner shares.

use super::*;

/// A run of digit groups: byte span, the digits, and the group lengths and separators.
pub(super) struct DigitRun {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) digits: Vec<u8>,
    pub(super) groups: Vec<usize>,
    pub(super) seps: Vec<u8>,
}

/// Reads digit groups joined by single separators from `seps` at `i` (a digit).
pub(super) fn digit_run(b: &[u8], i: usize, allowed: &[u8]) -> DigitRun {
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

pub(super) fn left_boundary(b: &[u8], i: usize) -> bool {
    i == 0 || !(is_word_byte(b[i - 1]) || matches!(b[i - 1], b'.' | b'-' | b'+' | b'/' | b','))
}

pub(super) fn right_boundary(b: &[u8], e: usize) -> bool {
    if e >= b.len() {
        return true;
    }
    if is_word_byte(b[e]) {
        return false;
    }
    // "1234-5" or "1.5" continue the number.
    !(matches!(b[e], b'.' | b'-' | b',' | b'/') && e + 1 < b.len() && b[e + 1].is_ascii_digit())
}

pub(super) fn luhn_ok(d: &[u8]) -> bool {
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

pub(super) fn cards(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
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

pub(super) fn ssns(b: &[u8], starts: &[usize], out: &mut Vec<(usize, usize)>) {
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
