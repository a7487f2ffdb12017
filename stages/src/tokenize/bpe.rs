//! Byte-pair encoding of one pre-tokenized piece, shared by tiktoken and Hugging Face models.
//!
//! Both families start from one token per byte and repeatedly merge the adjacent pair with the
//! lowest rank, the left-most one on ties. They differ only in where ranks come from: tiktoken
//! ranks a pair by the rank of the merged bytes (any pair whose concatenation is a token),
//! Hugging Face by the position of the pair in its `merges` list. Both become one table here,
//! `(left id, right id) -> (rank, merged id)`, so one merge loop serves both.
//!
//! Short pieces (nearly all of them) merge with a linear scan over a small array; long pieces
//! (minified code, base64, long runs of symbols) use a heap so that they stay O(n log n).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// Pieces longer than this (in bytes) merge through the heap.
const LINEAR_MAX: usize = 96;

/// A merge table over byte-level token ids.
#[derive(Debug, Clone)]
pub struct Bpe {
    /// Token id of each single byte.
    pub byte_ids: [u32; 256],
    /// `(left << 32 | right) -> (rank << 32 | merged)`.
    pairs: FxHashMap<u64, u64>,
    /// The same for the pairs of two single bytes, by `first << 8 | second`: every piece
    /// starts as bytes, so its first lookups read this 512 KiB array instead of the hash table.
    byte_pairs: Box<[u64]>,
    /// Whole-piece lookup tried before merging (tiktoken always does this; Hugging Face does
    /// when `ignore_merges` is set).
    whole: Option<FxHashMap<Box<[u8]>, u32>>,
}

#[inline]
fn key(a: u32, b: u32) -> u64 {
    ((a as u64) << 32) | b as u64
}

impl Bpe {
    /// A tiktoken-style table from token byte strings and their ranks (= ids). Every single
    /// byte must be a token.
    pub fn from_ranks(tokens: &[(Vec<u8>, u32)]) -> Result<Bpe, String> {
        let mut ids: FxHashMap<&[u8], u32> = FxHashMap::default();
        ids.reserve(tokens.len());
        for (b, r) in tokens {
            ids.insert(b.as_slice(), *r);
        }
        let mut byte_ids = [0u32; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = *ids
                .get(&[b as u8][..])
                .ok_or_else(|| format!("vocabulary lacks the single byte {b:#04x}"))?;
        }
        let mut pairs = FxHashMap::default();
        pairs.reserve(tokens.len() * 3);
        for (bytes, rank) in tokens {
            for k in 1..bytes.len() {
                if let (Some(&l), Some(&r)) = (ids.get(&bytes[..k]), ids.get(&bytes[k..])) {
                    pairs.insert(key(l, r), ((*rank as u64) << 32) | *rank as u64);
                }
            }
        }
        let whole = tokens
            .iter()
            .map(|(b, r)| (b.clone().into_boxed_slice(), *r))
            .collect();
        Ok(Bpe::with_pairs(byte_ids, pairs, Some(whole)))
    }

    /// A Hugging Face-style table: byte ids, and merges in rank order as
    /// `(left id, right id, merged id)`.
    pub fn from_merges(
        byte_ids: [u32; 256],
        merges: impl IntoIterator<Item = (u32, u32, u32)>,
        whole: Option<FxHashMap<Box<[u8]>, u32>>,
    ) -> Bpe {
        let mut pairs = FxHashMap::default();
        for (rank, (l, r, m)) in merges.into_iter().enumerate() {
            // The first occurrence of a pair wins, as in Hugging Face's loader.
            pairs
                .entry(key(l, r))
                .or_insert(((rank as u64) << 32) | m as u64);
        }
        Bpe::with_pairs(byte_ids, pairs, whole)
    }

    fn with_pairs(
        byte_ids: [u32; 256],
        pairs: FxHashMap<u64, u64>,
        whole: Option<FxHashMap<Box<[u8]>, u32>>,
    ) -> Bpe {
        let mut bpe = Bpe {
            byte_ids,
            pairs,
            byte_pairs: Box::new([]),
            whole,
        };
        bpe.byte_pairs = (0..1usize << 16)
            .map(|i| bpe.pair(byte_ids[i >> 8], byte_ids[i & 0xff]))
            .collect();
        bpe
    }

    #[inline]
    fn pair(&self, a: u32, b: u32) -> u64 {
        self.pairs.get(&key(a, b)).copied().unwrap_or(u64::MAX)
    }

    /// Appends the token ids of one piece to `out`.
    pub fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() == 1 {
            out.push(self.byte_ids[piece[0] as usize]);
            return;
        }
        if let Some(w) = &self.whole {
            if let Some(&id) = w.get(piece) {
                out.push(id);
                return;
            }
        }
        if piece.len() <= LINEAR_MAX {
            self.merge_linear(piece, out)
        } else {
            self.merge_heap(piece, out)
        }
    }

    fn merge_linear(&self, piece: &[u8], out: &mut Vec<u32>) {
        let n = piece.len();
        let mut ids = [0u32; LINEAR_MAX];
        // ranks[i]: rank and merged id of the pair (ids[i], ids[i + 1]).
        let mut ranks = [u64::MAX; LINEAR_MAX];
        for (i, &b) in piece.iter().enumerate() {
            ids[i] = self.byte_ids[b as usize];
        }
        for (r, w) in ranks.iter_mut().zip(piece.windows(2)) {
            *r = self.byte_pairs[(w[0] as usize) << 8 | w[1] as usize];
        }
        let mut len = n;
        while len > 1 {
            let mut best = u64::MAX;
            let mut at = 0;
            for (i, &r) in ranks[..len - 1].iter().enumerate() {
                // Ranks compare by their high half first; the low half (merged id) breaks no
                // tie among different pairs because equal ranks mean the same merged token.
                if r < best {
                    best = r;
                    at = i;
                }
            }
            if best == u64::MAX {
                break;
            }
            ids[at] = best as u32;
            ids.copy_within(at + 2..len, at + 1);
            if at + 2 < len {
                ranks.copy_within(at + 2..len - 1, at + 1);
            }
            len -= 1;
            ranks[len - 1] = u64::MAX;
            if at > 0 {
                ranks[at - 1] = self.pair(ids[at - 1], ids[at]);
            }
            if at + 1 < len {
                ranks[at] = self.pair(ids[at], ids[at + 1]);
            } else if at < len {
                ranks[at] = u64::MAX;
            }
        }
        out.extend_from_slice(&ids[..len]);
    }

    fn merge_heap(&self, piece: &[u8], out: &mut Vec<u32>) {
        let n = piece.len();
        let mut ids: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        // (rank, position, left id, right id): min rank, then left-most.
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            let r = self.byte_pairs[(piece[i] as usize) << 8 | piece[i + 1] as usize];
            if r != u64::MAX {
                heap.push(Reverse((r >> 32, i, ids[i], ids[i + 1])));
            }
        }
        while let Some(Reverse((rank, i, l, r))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j >= n || ids[i] != l || ids[j] != r {
                continue;
            }
            let merged = self.pair(l, r);
            debug_assert_eq!(merged >> 32, rank);
            ids[i] = merged as u32;
            alive[j] = false;
            next[i] = next[j];
            if next[i] < n {
                prev[next[i]] = i;
            }
            let p = prev[i];
            if p != usize::MAX {
                let pr = self.pair(ids[p], ids[i]);
                if pr != u64::MAX {
                    heap.push(Reverse((pr >> 32, p, ids[p], ids[i])));
                }
            }
            let k = next[i];
            if k < n {
                let pr = self.pair(ids[i], ids[k]);
                if pr != u64::MAX {
                    heap.push(Reverse((pr >> 32, i, ids[i], ids[k])));
                }
            }
        }
        let mut i = 0;
        while i < n {
            out.push(ids[i]);
            i = next[i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: bytes, then "ab", "abc", "bc", "aa".
    fn toy() -> Bpe {
        let mut toks: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, t) in ["ab", "bc", "abc", "aa", "aaaa"].iter().enumerate() {
            toks.push((t.as_bytes().to_vec(), 256 + i as u32));
        }
        Bpe::from_ranks(&toks).unwrap()
    }

    #[test]
    fn linear_and_heap_agree() {
        let bpe = toy();
        let mut state = 7u64;
        for len in 2..400 {
            let piece: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    b"abcx"[(state >> 33) as usize % 4]
                })
                .collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            if len <= LINEAR_MAX {
                bpe.merge_linear(&piece, &mut a);
            } else {
                a = bpe_reference(&bpe, &piece);
            }
            bpe.merge_heap(&piece, &mut b);
            assert_eq!(a, b, "{}", String::from_utf8_lossy(&piece));
        }
        let mut out = Vec::new();
        bpe.encode_piece(b"aaaaa", &mut out);
        assert_eq!(out, vec![260, b'a' as u32]);
        out.clear();
        bpe.encode_piece(b"xabcab", &mut out);
        assert_eq!(out, vec![b'x' as u32, 258, 256]);
    }

    /// The textbook quadratic loop, as an independent check of the heap on long pieces.
    fn bpe_reference(bpe: &Bpe, piece: &[u8]) -> Vec<u32> {
        let mut ids: Vec<u32> = piece.iter().map(|&b| bpe.byte_ids[b as usize]).collect();
        loop {
            let best = (0..ids.len().saturating_sub(1))
                .map(|i| (bpe.pair(ids[i], ids[i + 1]), i))
                .min();
            match best {
                Some((r, i)) if r != u64::MAX => {
                    ids[i] = r as u32;
                    ids.remove(i + 1);
                }
                _ => return ids,
            }
        }
    }
}
