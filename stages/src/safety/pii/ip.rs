//! The IP scanner of `safety.pii`: public IPv4 and IPv6 addresses (special-purpose ranges
//! left alone).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

pub(super) fn ipv4_public(a: Ipv4Addr) -> bool {
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

pub(super) fn ipv6_public(a: Ipv6Addr) -> bool {
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

pub(super) fn ips(text: &str, starts: &[usize], out: &mut Vec<(usize, usize)>) {
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
