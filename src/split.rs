//! The labelled data sets' split rule, in one place. Every trainer (`curate train fasttext
//! --exclude-test`, `curate train head --exclude-test`), `scripts/train_models.sh` and every bench
//! that trains or scores a model call it, so no shipped model or published figure sees the texts
//! that `../shared/data/classifiers/README.md` keeps aside for the final score.
//!
//! The rule: a document's *group* is its id up to the first `#` (all chunks of one source file,
//! `<source>/<package>/<path>#<chunk>`, share it); the group is **test** iff
//! `int(sha1(group)[:8], 16) % 5 == 0`. The README's train files already hold only non-test
//! groups; web texts (`../shared/data/corpora`, CleanEval) are not pre-split, so trainers apply the
//! rule to them here. Validation is carved out of what is left by the same hash modulo another
//! number (`% 4 == 0` in the benches, `--valid-mod` in `train head`).

/// The split group of a document id: the id up to the first `#`.
pub fn group(id: &str) -> &str {
    id.split('#').next().unwrap_or(id)
}

/// The README's kept-aside test split: `int(sha1(group)[:8], 16) % 5 == 0`.
pub fn group_is_test(group: &str) -> bool {
    sha1_prefix32(group) % 5 == 0
}

/// [`group_is_test`] of the id's [`group`].
pub fn is_test(id: &str) -> bool {
    group_is_test(group(id))
}

/// In fold 0 of `modulo` (validation carved out of train): `sha1(group) % modulo == 0`;
/// never when `modulo` is 0.
pub fn group_in_fold(group: &str, modulo: u32) -> bool {
    modulo > 0 && sha1_prefix32(group) % modulo == 0
}

/// `int(sha1(key)[:8], 16)`: the hash of the split rule.
pub fn sha1_prefix32(key: &str) -> u32 {
    let d = sha1(key.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// SHA-1 (FIPS 180-4); only the split rule needs it.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = vec![b'a'; 1000];
        assert_eq!(hex(sha1(&long)), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
        assert_eq!(sha1_prefix32("abc"), 0xa999_3e36);
    }

    #[test]
    fn groups_and_folds() {
        assert_eq!(group("src/pkg/a.html#2"), "src/pkg/a.html");
        assert_eq!(group("<urn:uuid:1>"), "<urn:uuid:1>");
        assert_eq!(is_test("src/pkg/a.html#0"), is_test("src/pkg/a.html#7"));
        assert!(!group_in_fold("x", 0));
        // About a fifth of the groups are test (the README's 80/20).
        let n = (0..10_000).filter(|i| is_test(&format!("g{i}"))).count();
        assert!((1800..2200).contains(&n), "{n}");
    }
}
