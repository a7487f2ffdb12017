//! fastText's dictionary: words and labels with counts, the word hash table, and the features of
//! a line (word ids, character n-gram buckets, word n-gram buckets), hashed exactly as fastText
//! hashes them so that models trained by either side serve identically on both.

use std::collections::HashMap;
use std::io::Write;

use super::binio::{put_i32, put_i64, Reader};

/// The end-of-sentence token fastText appends to every line.
pub const EOS: &str = "</s>";
/// Tokens starting with this are labels, not words.
pub const LABEL_PREFIX: &str = "__label__";
const BOW: u8 = b'<';
const EOW: u8 = b'>';

/// fastText's FNV-1a variant: each byte is sign-extended to 32 bits before the xor (the C++
/// code xors an `int8_t`), which changes the hash of every non-ASCII byte.
#[inline]
pub fn hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 2_166_136_261;
    for &b in bytes {
        h ^= b as i8 as i32 as u32;
        h = h.wrapping_mul(16_777_619);
    }
    h
}

/// The bytes fastText splits tokens on.
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0x0b | 0x0c | 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Word = 0,
    Label = 1,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub word: Vec<u8>,
    pub count: i64,
    pub kind: EntryKind,
}

/// The dictionary of a model, with everything needed to turn a line into feature ids.
pub struct Dictionary {
    entries: Vec<Entry>,
    nwords: usize,
    nlabels: usize,
    ntokens: i64,
    /// `None`: no pruning (fastText's `pruneidx_size_ == -1`); `Some(map)`: n-gram buckets kept
    /// after quantization, old bucket -> new row offset (empty map: every n-gram was pruned).
    prune: Option<HashMap<i32, i32>>,
    /// Open-addressing table of `(hash, entry id)`, indexed by `hash & mask`; the stored hash
    /// rejects most mismatches without touching the word bytes.
    table: Vec<(u32, i32)>,
    /// All entry words back to back (`spans` index it), for cache-friendly comparisons.
    arena: Vec<u8>,
    spans: Vec<(u32, u32)>,
    mask: usize,
    /// Feature ids of each word (its own id, then its character n-grams), as ranges of `sub_ids`.
    sub_start: Vec<u32>,
    sub_ids: Vec<i32>,
    bucket: u64,
    minn: usize,
    maxn: usize,
    word_ngrams: usize,
    /// Names this dictionary for [`Scratch`]'s cache (a thread's scratch may serve several).
    uid: u64,
}

static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Reusable buffers for [`Dictionary::line_features`].
#[derive(Default)]
pub struct Scratch {
    hashes: Vec<i32>,
    ngram: Vec<u8>,
    word: Vec<u8>,
    /// Character n-gram buckets of out-of-vocabulary words already seen by this thread:
    /// web text repeats its words (Zipf), and hashing every n-gram of every unknown word
    /// was most of language ID's time on pages. Bounded; the same result as recomputing.
    oov: rustc_hash::FxHashMap<Box<[u8]>, (u32, u32)>,
    oov_ids: Vec<i32>,
    /// The dictionary whose buckets the cache holds.
    oov_owner: u64,
}

/// Bounds of the out-of-vocabulary cache (entries, buckets held): cleared when reached.
const OOV_WORDS: usize = 1 << 16;
const OOV_IDS: usize = 1 << 22;

impl Dictionary {
    /// Builds the lookup structures over `entries` (words first, then labels).
    pub fn new(
        entries: Vec<Entry>,
        ntokens: i64,
        prune: Option<HashMap<i32, i32>>,
        bucket: i32,
        minn: i32,
        maxn: i32,
        word_ngrams: i32,
    ) -> Result<Dictionary, String> {
        let nwords = entries
            .iter()
            .take_while(|e| e.kind == EntryKind::Word)
            .count();
        if entries[nwords..].iter().any(|e| e.kind != EntryKind::Label) {
            return Err("words and labels are interleaved in the dictionary".into());
        }
        let cap = (entries.len() * 2).next_power_of_two().max(16);
        let mut d = Dictionary {
            nlabels: entries.len() - nwords,
            nwords,
            entries,
            ntokens,
            prune,
            table: vec![(0, -1); cap],
            arena: Vec::new(),
            spans: Vec::new(),
            mask: cap - 1,
            sub_start: Vec::new(),
            sub_ids: Vec::new(),
            bucket: bucket.max(0) as u64,
            minn: minn.max(0) as usize,
            maxn: maxn.max(0) as usize,
            word_ngrams: word_ngrams.max(1) as usize,
            uid: NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        for e in &d.entries {
            d.spans.push((d.arena.len() as u32, e.word.len() as u32));
            d.arena.extend_from_slice(&e.word);
        }
        for i in 0..d.entries.len() {
            let h = hash(&d.entries[i].word);
            let slot = d.find(&d.entries[i].word, h);
            if d.table[slot].1 != -1 {
                return Err(format!(
                    "duplicate dictionary entry {:?}",
                    String::from_utf8_lossy(&d.entries[i].word)
                ));
            }
            d.table[slot] = (h, i as i32);
        }
        // Subwords of every word, computed once (fastText's initNgrams).
        let mut sub_start = Vec::with_capacity(nwords + 1);
        let mut sub_ids = Vec::with_capacity(nwords);
        let mut scratch = Vec::new();
        let mut word = Vec::new();
        for i in 0..nwords {
            sub_start.push(sub_ids.len() as u32);
            sub_ids.push(i as i32);
            if d.maxn > 0 && d.entries[i].word != EOS.as_bytes() {
                word.clear();
                word.push(BOW);
                word.extend_from_slice(&d.entries[i].word);
                word.push(EOW);
                d.char_ngrams(&word, &mut scratch, &mut sub_ids);
            }
        }
        sub_start.push(sub_ids.len() as u32);
        d.sub_start = sub_start;
        d.sub_ids = sub_ids;
        Ok(d)
    }

    #[inline]
    fn find(&self, w: &[u8], h: u32) -> usize {
        let mut slot = h as usize & self.mask;
        loop {
            let (sh, id) = self.table[slot];
            if id == -1 {
                return slot;
            }
            if sh == h {
                let (a, n) = self.spans[id as usize];
                if &self.arena[a as usize..(a + n) as usize] == w {
                    return slot;
                }
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The entry id of a token, if it is in the dictionary.
    #[inline]
    pub fn id(&self, w: &[u8], h: u32) -> Option<usize> {
        let id = self.table[self.find(w, h)].1;
        (id >= 0).then_some(id as usize)
    }

    pub fn nwords(&self) -> usize {
        self.nwords
    }
    pub fn nlabels(&self) -> usize {
        self.nlabels
    }
    pub fn ntokens(&self) -> i64 {
        self.ntokens
    }
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
    pub fn is_pruned(&self) -> bool {
        self.prune.is_some()
    }

    /// Label names without the `__label__` prefix, in output-row order.
    pub fn labels(&self) -> Vec<String> {
        self.entries[self.nwords..]
            .iter()
            .map(|e| {
                let w = String::from_utf8_lossy(&e.word);
                w.strip_prefix(LABEL_PREFIX).unwrap_or(&w).to_string()
            })
            .collect()
    }

    /// Label counts in output-row order (the Huffman tree of hierarchical softmax).
    pub fn label_counts(&self) -> Vec<i64> {
        self.entries[self.nwords..]
            .iter()
            .map(|e| e.count)
            .collect()
    }

    /// Adds the row of a hashed n-gram bucket (fastText's `pushHash`).
    #[inline]
    fn push_bucket(&self, out: &mut Vec<i32>, id: u64) {
        let id = id as i32;
        match &self.prune {
            None => out.push(self.nwords as i32 + id),
            Some(map) => {
                if let Some(&new) = map.get(&id) {
                    out.push(self.nwords as i32 + new);
                }
            }
        }
    }

    /// Character n-grams (`minn..=maxn` code points) of `<word>`, skipping the lone `<` and `>`.
    fn char_ngrams(&self, word: &[u8], ngram: &mut Vec<u8>, out: &mut Vec<i32>) {
        if self.bucket == 0 {
            return;
        }
        let len = word.len();
        for i in 0..len {
            if word[i] & 0xC0 == 0x80 {
                continue;
            }
            ngram.clear();
            let mut j = i;
            let mut n = 1;
            while j < len && n <= self.maxn {
                ngram.push(word[j]);
                j += 1;
                while j < len && word[j] & 0xC0 == 0x80 {
                    ngram.push(word[j]);
                    j += 1;
                }
                if n >= self.minn && !(n == 1 && (i == 0 || j == len)) {
                    let h = hash(ngram) as u64 % self.bucket;
                    self.push_bucket(out, h);
                }
                n += 1;
            }
        }
    }

    /// The features of one line (fastText's supervised `getLine` + `addWordNgrams`): for each
    /// whitespace-separated token its word id (if known) and character n-grams, the end-of-line
    /// token, then the word n-gram buckets. A newline ends the line, as in fastText. Returns the
    /// token count. Label tokens are skipped.
    pub fn line_features(&self, line: &[u8], out: &mut Vec<i32>, s: &mut Scratch) -> usize {
        s.hashes.clear();
        let mut ntokens = 0;
        let mut i = 0;
        let n = line.len();
        loop {
            while i < n && is_space(line[i]) && line[i] != b'\n' {
                i += 1;
            }
            if i >= n || line[i] == b'\n' {
                break;
            }
            let start = i;
            while i < n && !is_space(line[i]) {
                i += 1;
            }
            ntokens += 1;
            let tok = &line[start..i];
            if tok == EOS.as_bytes() {
                break;
            }
            self.token_features(tok, out, s);
        }
        self.token_features(EOS.as_bytes(), out, s);
        ntokens += 1;
        let hashes = std::mem::take(&mut s.hashes);
        self.word_ngram_features(&hashes, out);
        s.hashes = hashes;
        ntokens
    }

    /// One token: its word id and character n-grams (or the n-grams alone for an unknown word);
    /// its hash joins the word n-grams. Labels contribute nothing.
    #[inline]
    fn token_features(&self, tok: &[u8], out: &mut Vec<i32>, s: &mut Scratch) {
        let h = hash(tok);
        let wid = self.id(tok, h);
        let is_label = match wid {
            // Entries are words first, then labels.
            Some(id) => id >= self.nwords,
            None => tok.starts_with(LABEL_PREFIX.as_bytes()),
        };
        if is_label {
            return;
        }
        match wid {
            Some(id) => {
                let (a, b) = (self.sub_start[id] as usize, self.sub_start[id + 1] as usize);
                out.extend_from_slice(&self.sub_ids[a..b]);
            }
            None if self.maxn > 0 && tok != EOS.as_bytes() => {
                if s.oov_owner != self.uid {
                    s.oov.clear();
                    s.oov_ids.clear();
                    s.oov_owner = self.uid;
                }
                if let Some(&(a, b)) = s.oov.get(tok) {
                    out.extend_from_slice(&s.oov_ids[a as usize..b as usize]);
                } else {
                    s.word.clear();
                    s.word.push(BOW);
                    s.word.extend_from_slice(tok);
                    s.word.push(EOW);
                    let (word, mut ng) =
                        (std::mem::take(&mut s.word), std::mem::take(&mut s.ngram));
                    let from = out.len();
                    self.char_ngrams(&word, &mut ng, out);
                    s.word = word;
                    s.ngram = ng;
                    if s.oov.len() >= OOV_WORDS || s.oov_ids.len() >= OOV_IDS {
                        s.oov.clear();
                        s.oov_ids.clear();
                    }
                    let a = s.oov_ids.len() as u32;
                    s.oov_ids.extend_from_slice(&out[from..]);
                    s.oov.insert(tok.into(), (a, s.oov_ids.len() as u32));
                }
            }
            None => {}
        }
        s.hashes.push(h as i32);
    }

    /// Word n-gram buckets over the token hashes (fastText's `addWordNgrams`; the hashes are
    /// `int32` there and sign-extend into the 64-bit running hash).
    fn word_ngram_features(&self, hashes: &[i32], out: &mut Vec<i32>) {
        if self.word_ngrams <= 1 || self.bucket == 0 {
            return;
        }
        for i in 0..hashes.len() {
            let mut h = hashes[i] as i64 as u64;
            for &hj in hashes
                .iter()
                .take((i + self.word_ngrams).min(hashes.len()))
                .skip(i + 1)
            {
                h = h.wrapping_mul(116_049_371).wrapping_add(hj as i64 as u64);
                self.push_bucket(out, h % self.bucket);
            }
        }
    }

    pub fn read(
        r: &mut Reader,
        bucket: i32,
        minn: i32,
        maxn: i32,
        word_ngrams: i32,
    ) -> Result<Dictionary, String> {
        let size = r.i32()?;
        let nwords = r.i32()?;
        let nlabels = r.i32()?;
        let ntokens = r.i64()?;
        let prune_size = r.i64()?;
        let size = r.count("dictionary size", size as i64, r.remaining() / 10)?;
        if nwords < 0 || nlabels < 0 || (nwords as i64 + nlabels as i64) != size as i64 {
            return Err(format!(
                "dictionary counts disagree: size {size}, words {nwords}, labels {nlabels}"
            ));
        }
        let mut entries = Vec::with_capacity(size);
        for _ in 0..size {
            let word = r.cstr()?.to_vec();
            let count = r.i64()?;
            let kind = match r.u8()? {
                0 => EntryKind::Word,
                1 => EntryKind::Label,
                v => return Err(format!("bad entry type {v}")),
            };
            entries.push(Entry { word, count, kind });
        }
        let prune = if prune_size < 0 {
            None
        } else {
            let n = r.count("pruned index size", prune_size, r.remaining() / 8)?;
            let mut m = HashMap::with_capacity(n);
            for _ in 0..n {
                let a = r.i32()?;
                let b = r.i32()?;
                m.insert(a, b);
            }
            Some(m)
        };
        Dictionary::new(entries, ntokens, prune, bucket, minn, maxn, word_ngrams)
    }

    pub fn write(&self, w: &mut impl Write) -> std::io::Result<()> {
        put_i32(w, self.entries.len() as i32)?;
        put_i32(w, self.nwords as i32)?;
        put_i32(w, self.nlabels as i32)?;
        put_i64(w, self.ntokens)?;
        match &self.prune {
            None => put_i64(w, -1)?,
            Some(m) => {
                put_i64(w, m.len() as i64)?;
            }
        }
        for e in &self.entries {
            w.write_all(&e.word)?;
            w.write_all(&[0])?;
            put_i64(w, e.count)?;
            w.write_all(&[e.kind as u8])?;
        }
        if let Some(m) = &self.prune {
            let mut pairs: Vec<_> = m.iter().collect();
            pairs.sort();
            for (a, b) in pairs {
                put_i32(w, *a)?;
                put_i32(w, *b)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sign_extends_bytes() {
        // ASCII: plain FNV-1a 32.
        assert_eq!(hash(b""), 2_166_136_261);
        assert_eq!(hash(b"a"), 0xe40c292c);
        // A non-ASCII byte differs from plain FNV-1a (which would xor 0xc3, not 0xffffffc3).
        let mut plain: u32 = 2_166_136_261;
        for &b in "é".as_bytes() {
            plain ^= b as u32;
            plain = plain.wrapping_mul(16_777_619);
        }
        assert_ne!(hash("é".as_bytes()), plain);
    }
}
