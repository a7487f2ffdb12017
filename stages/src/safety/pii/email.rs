//! The email scanner of `safety.pii`: `local@domain.tld` with an alphabetic top-level domain.

use super::*;

pub(super) fn is_local_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

pub(super) fn emails(text: &str, out: &mut Vec<(usize, usize)>) {
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
