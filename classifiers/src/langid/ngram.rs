//! curate's n-gram language scorer, `detector = "ngram"`: 75 languages, no file, lingua's
//! accuracy at about 60 times the speed of its high-accuracy mode (docs/classifiers.md).
//!
//! The data are lingua's: for each language a table of character n-grams (orders 1 to 5, letters
//! only, lowercased) and their conditional log probabilities `ln P(last char | the others)`,
//! published as one FST per language in lingua's model crates (Apache-2.0), which the binary
//! carries anyway. lingua looks each n-gram up in every language's FST in turn; here all of them
//! are read once into one table keyed by n-gram, so one lookup gives every language's value.
//!
//! The scoring is curate's own: per language, a back-off character Markov model. For every
//! letter and every order `k` up to [`Params::max_order`] whose `k`-gram ending at the letter
//! fits in its word, the language contributes the log probability of the longest suffix (at most
//! `k` long) it has, plus [`Params::backoff`] (negative) per order it had to drop, or
//! [`Params::floor`] when it does not know the letter at all. Han, Hiragana and Katakana
//! characters are words of their own (lingua's models hold them as unigrams). The confidence is
//! a softmax over the summed log likelihoods scaled by the length (see [`Params::sharpness`]),
//! times the share of the text's segments that agree ([`Scores::agreement`]). The parameters
//! were chosen on the tuning fifth of the lingua test sets (`benches/benches/langid.rs` prints
//! the grids); published figures are on the rest.

use std::sync::{Arc, OnceLock};

use fst::Streamer;
use rayon::prelude::*;

use super::{Detection, SECOND_OPINION_MAX_CHARS as MAX_CHARS, UNDETERMINED};

/// Scoring parameters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Longest n-gram used, 1 to 5.
    pub max_order: usize,
    /// Log probability of a letter the language's model lacks.
    pub floor: f32,
    /// Added log probability per order dropped in back-off (zero or negative).
    pub backoff: f32,
    /// The confidence is the softmax of each language's summed log likelihood times
    /// `sharpness / terms^length_exponent` (one term per letter and order): with exponent 1, a
    /// temperature on the mean per term; with 0.5, evidence that grows with the square root of
    /// the length (the terms overlap and are far from independent). Both fitted on the tuning
    /// fold by log loss, so that the confidence reads as a probability of being right and
    /// stays low on texts that mix languages.
    pub sharpness: f32,
    pub length_exponent: f32,
}

/// The shipped parameters (tuning fold, see the module docs).
pub const DEFAULT_PARAMS: Params = Params {
    max_order: 5,
    floor: -12.0,
    backoff: -3.0,
    sharpness: 1.0,
    length_exponent: 0.5,
};

/// Below this lid.176 probability `lid176+ngram` asks the n-gram detector (tuning fold, see the
/// module docs).
pub const DEFAULT_TRUST: f32 = 0.95;

/// Bits of an entry: key (high), a dense-row flag, then either language and quantized log
/// probability or the index of a dense row (low 20 bits).
const KEY_BITS: u32 = 43;
const PAYLOAD_BITS: u32 = 21;
const DENSE: u64 = 1 << 20;
/// An n-gram that at least this many languages know gets a dense row of every language's value
/// (one vectorised pass) instead of that many entries (one scattered write each): unigrams and
/// common bigrams, the bulk of the entries read per letter.
const DENSE_MIN: usize = 12;
const LANG_BITS: u32 = 7;
const Q_BITS: u32 = 13;
/// Quantization range of log probabilities: `[-Q_RANGE, 0]` in `2^Q_BITS` steps (0.0024).
const Q_RANGE: f32 = 20.0;
const Q_MAX: u64 = (1 << Q_BITS) - 1;

/// One table of every language's n-gram log probabilities.
pub struct NgramLid {
    codes: Vec<&'static str>,
    params: Params,
    /// Sorted entries `key << 21 | lang << 13 | q`, or `key << 21 | DENSE | row`.
    entries: Vec<u64>,
    /// Dense rows, `codes.len()` log probabilities each (NaN: the language lacks the n-gram).
    rows: Vec<f32>,
    /// `dir[b]..dir[b + 1]`: the entries whose key's top `bits` bits are `b`.
    dir: Vec<u32>,
    bits: u32,
}

macro_rules! models {
    ($($code:literal => $dir:path,)*) => {
        /// Codes of the languages with a model, in table order.
        const CODES: &[&str] = &[$($code),*];
        /// The n-gram FST of one language.
        fn ngram_fst(code: &str) -> Option<&'static [u8]> {
            match code {
                $($code => $dir.get_file("ngrams.fst").map(|f| f.contents()),)*
                _ => None,
            }
        }
    };
}

models! {
    "af" => lingua_afrikaans_language_model::AFRIKAANS_MODELS_DIRECTORY,
    "ar" => lingua_arabic_language_model::ARABIC_MODELS_DIRECTORY,
    "az" => lingua_azerbaijani_language_model::AZERBAIJANI_MODELS_DIRECTORY,
    "be" => lingua_belarusian_language_model::BELARUSIAN_MODELS_DIRECTORY,
    "bg" => lingua_bulgarian_language_model::BULGARIAN_MODELS_DIRECTORY,
    "bn" => lingua_bengali_language_model::BENGALI_MODELS_DIRECTORY,
    "bs" => lingua_bosnian_language_model::BOSNIAN_MODELS_DIRECTORY,
    "ca" => lingua_catalan_language_model::CATALAN_MODELS_DIRECTORY,
    "cs" => lingua_czech_language_model::CZECH_MODELS_DIRECTORY,
    "cy" => lingua_welsh_language_model::WELSH_MODELS_DIRECTORY,
    "da" => lingua_danish_language_model::DANISH_MODELS_DIRECTORY,
    "de" => lingua_german_language_model::GERMAN_MODELS_DIRECTORY,
    "el" => lingua_greek_language_model::GREEK_MODELS_DIRECTORY,
    "en" => lingua_english_language_model::ENGLISH_MODELS_DIRECTORY,
    "eo" => lingua_esperanto_language_model::ESPERANTO_MODELS_DIRECTORY,
    "es" => lingua_spanish_language_model::SPANISH_MODELS_DIRECTORY,
    "et" => lingua_estonian_language_model::ESTONIAN_MODELS_DIRECTORY,
    "eu" => lingua_basque_language_model::BASQUE_MODELS_DIRECTORY,
    "fa" => lingua_persian_language_model::PERSIAN_MODELS_DIRECTORY,
    "fi" => lingua_finnish_language_model::FINNISH_MODELS_DIRECTORY,
    "fr" => lingua_french_language_model::FRENCH_MODELS_DIRECTORY,
    "ga" => lingua_irish_language_model::IRISH_MODELS_DIRECTORY,
    "gu" => lingua_gujarati_language_model::GUJARATI_MODELS_DIRECTORY,
    "he" => lingua_hebrew_language_model::HEBREW_MODELS_DIRECTORY,
    "hi" => lingua_hindi_language_model::HINDI_MODELS_DIRECTORY,
    "hr" => lingua_croatian_language_model::CROATIAN_MODELS_DIRECTORY,
    "hu" => lingua_hungarian_language_model::HUNGARIAN_MODELS_DIRECTORY,
    "hy" => lingua_armenian_language_model::ARMENIAN_MODELS_DIRECTORY,
    "id" => lingua_indonesian_language_model::INDONESIAN_MODELS_DIRECTORY,
    "is" => lingua_icelandic_language_model::ICELANDIC_MODELS_DIRECTORY,
    "it" => lingua_italian_language_model::ITALIAN_MODELS_DIRECTORY,
    "ja" => lingua_japanese_language_model::JAPANESE_MODELS_DIRECTORY,
    "ka" => lingua_georgian_language_model::GEORGIAN_MODELS_DIRECTORY,
    "kk" => lingua_kazakh_language_model::KAZAKH_MODELS_DIRECTORY,
    "ko" => lingua_korean_language_model::KOREAN_MODELS_DIRECTORY,
    "la" => lingua_latin_language_model::LATIN_MODELS_DIRECTORY,
    "lg" => lingua_ganda_language_model::GANDA_MODELS_DIRECTORY,
    "lt" => lingua_lithuanian_language_model::LITHUANIAN_MODELS_DIRECTORY,
    "lv" => lingua_latvian_language_model::LATVIAN_MODELS_DIRECTORY,
    "mi" => lingua_maori_language_model::MAORI_MODELS_DIRECTORY,
    "mk" => lingua_macedonian_language_model::MACEDONIAN_MODELS_DIRECTORY,
    "mn" => lingua_mongolian_language_model::MONGOLIAN_MODELS_DIRECTORY,
    "mr" => lingua_marathi_language_model::MARATHI_MODELS_DIRECTORY,
    "ms" => lingua_malay_language_model::MALAY_MODELS_DIRECTORY,
    "nb" => lingua_bokmal_language_model::BOKMAL_MODELS_DIRECTORY,
    "nl" => lingua_dutch_language_model::DUTCH_MODELS_DIRECTORY,
    "nn" => lingua_nynorsk_language_model::NYNORSK_MODELS_DIRECTORY,
    "pa" => lingua_punjabi_language_model::PUNJABI_MODELS_DIRECTORY,
    "pl" => lingua_polish_language_model::POLISH_MODELS_DIRECTORY,
    "pt" => lingua_portuguese_language_model::PORTUGUESE_MODELS_DIRECTORY,
    "ro" => lingua_romanian_language_model::ROMANIAN_MODELS_DIRECTORY,
    "ru" => lingua_russian_language_model::RUSSIAN_MODELS_DIRECTORY,
    "sk" => lingua_slovak_language_model::SLOVAK_MODELS_DIRECTORY,
    "sl" => lingua_slovene_language_model::SLOVENE_MODELS_DIRECTORY,
    "sn" => lingua_shona_language_model::SHONA_MODELS_DIRECTORY,
    "so" => lingua_somali_language_model::SOMALI_MODELS_DIRECTORY,
    "sq" => lingua_albanian_language_model::ALBANIAN_MODELS_DIRECTORY,
    "sr" => lingua_serbian_language_model::SERBIAN_MODELS_DIRECTORY,
    "st" => lingua_sotho_language_model::SOTHO_MODELS_DIRECTORY,
    "sv" => lingua_swedish_language_model::SWEDISH_MODELS_DIRECTORY,
    "sw" => lingua_swahili_language_model::SWAHILI_MODELS_DIRECTORY,
    "ta" => lingua_tamil_language_model::TAMIL_MODELS_DIRECTORY,
    "te" => lingua_telugu_language_model::TELUGU_MODELS_DIRECTORY,
    "th" => lingua_thai_language_model::THAI_MODELS_DIRECTORY,
    "tl" => lingua_tagalog_language_model::TAGALOG_MODELS_DIRECTORY,
    "tn" => lingua_tswana_language_model::TSWANA_MODELS_DIRECTORY,
    "tr" => lingua_turkish_language_model::TURKISH_MODELS_DIRECTORY,
    "ts" => lingua_tsonga_language_model::TSONGA_MODELS_DIRECTORY,
    "uk" => lingua_ukrainian_language_model::UKRAINIAN_MODELS_DIRECTORY,
    "ur" => lingua_urdu_language_model::URDU_MODELS_DIRECTORY,
    "vi" => lingua_vietnamese_language_model::VIETNAMESE_MODELS_DIRECTORY,
    "xh" => lingua_xhosa_language_model::XHOSA_MODELS_DIRECTORY,
    "yo" => lingua_yoruba_language_model::YORUBA_MODELS_DIRECTORY,
    "zh" => lingua_chinese_language_model::CHINESE_MODELS_DIRECTORY,
    "zu" => lingua_zulu_language_model::ZULU_MODELS_DIRECTORY,
}

/// One step of the n-gram hash (FxHash's rotate-xor-multiply, per character).
#[inline]
fn step(h: u64, c: char) -> u64 {
    (h.rotate_left(5) ^ c as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The table key of an n-gram hashed last character first (see [`step`]): splitmix64's
/// finalizer, top [`KEY_BITS`] bits.
#[inline]
fn key(h: u64) -> u64 {
    let mut x = h;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) >> (64 - KEY_BITS)
}

/// Han, Hiragana and Katakana: one character, one word.
fn is_cjk_ideograph_or_kana(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

impl NgramLid {
    /// The table with the shipped parameters, built once per process (about 1.2 s on two
    /// cores; the table takes about 220 MB, see [`NgramLid::bytes`]).
    pub fn shared() -> Arc<NgramLid> {
        static CELL: OnceLock<Arc<NgramLid>> = OnceLock::new();
        CELL.get_or_init(|| Arc::new(NgramLid::build(DEFAULT_PARAMS)))
            .clone()
    }

    /// Reads every language's model into one table.
    pub fn build(params: Params) -> NgramLid {
        assert!((1..=5).contains(&params.max_order), "max_order is 1 to 5");
        assert!(CODES.len() < 1 << LANG_BITS);
        let max_order = params.max_order;
        let per_lang: Vec<Vec<u64>> = CODES
            .par_iter()
            .enumerate()
            .map(|(li, code)| {
                let bytes = ngram_fst(code).expect("every listed language has a model");
                let map = fst::Map::new(bytes).expect("lingua's model is a valid FST");
                let mut out = Vec::with_capacity(map.len());
                let mut s = map.stream();
                let mut chars = Vec::with_capacity(8);
                while let Some((k, v)) = s.next() {
                    let Ok(gram) = std::str::from_utf8(k) else {
                        continue;
                    };
                    chars.clear();
                    chars.extend(gram.chars());
                    if chars.is_empty() || chars.len() > max_order {
                        continue;
                    }
                    let h = chars.iter().rev().fold(SEED, |h, &c| step(h, c));
                    let lp = f64::from_bits(v) as f32;
                    let q = ((-lp / Q_RANGE) * Q_MAX as f32)
                        .round()
                        .clamp(0.0, Q_MAX as f32);
                    out.push(key(h) << PAYLOAD_BITS | (li as u64) << Q_BITS | q as u64);
                }
                out
            })
            .collect();
        let mut sorted: Vec<u64> = per_lang.concat();
        sorted.par_sort_unstable();
        // Runs of one key known to many languages become dense rows.
        let n = CODES.len();
        let mut entries = Vec::with_capacity(sorted.len());
        let mut rows = Vec::new();
        for run in sorted.chunk_by(|a, b| a >> PAYLOAD_BITS == b >> PAYLOAD_BITS) {
            if run.len() < DENSE_MIN {
                entries.extend_from_slice(run);
                continue;
            }
            let row = (rows.len() / n) as u64;
            assert!(row < DENSE, "dense rows fit the payload");
            rows.resize(rows.len() + n, f32::NAN);
            let r = rows.len() - n;
            for &e in run {
                rows[r + lang_of(e)] = log_prob_of(e);
            }
            entries.push(run[0] >> PAYLOAD_BITS << PAYLOAD_BITS | DENSE | row);
        }
        drop(sorted);
        // About four entries per bucket: one or two cache lines per lookup.
        let bits = (usize::BITS - (entries.len() / 4).max(1).leading_zeros()).clamp(8, 28);
        let mut dir = vec![0u32; (1usize << bits) + 1];
        for e in &entries {
            dir[(e >> (64 - bits)) as usize + 1] += 1;
        }
        for b in 1..dir.len() {
            dir[b] += dir[b - 1];
        }
        NgramLid {
            codes: CODES.to_vec(),
            params,
            entries,
            rows,
            dir,
            bits,
        }
    }

    /// Entries in the table (one per language and n-gram, or one per dense row).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Memory held by the table, in bytes.
    pub fn bytes(&self) -> usize {
        self.entries.len() * 8 + self.rows.len() * 4 + self.dir.len() * 4
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn params(&self) -> Params {
        self.params
    }

    /// Changes everything but the orders (the table keeps them; for tuning grids).
    pub fn set_scoring(&mut self, p: Params) {
        assert_eq!(
            p.max_order, self.params.max_order,
            "the table's orders are fixed"
        );
        self.params = p;
    }

    /// Every language code the table can answer.
    pub fn languages(&self) -> Vec<String> {
        self.codes.iter().map(|c| c.to_string()).collect()
    }

    /// The scores of `text` (see [`Scores`]); `None` without letters.
    pub fn log_likelihoods(&self, text: &str) -> Option<Scores> {
        SCRATCH.with(|s| self.score_into(text, &mut s.borrow_mut()))
    }

    fn score_into(&self, text: &str, s: &mut Scratch) -> Option<Scores> {
        let n = self.codes.len();
        let Params {
            max_order,
            floor,
            backoff,
            ..
        } = self.params;
        // Words of lowercased letters; Han and kana characters are words of their own.
        s.letters.clear();
        s.words.clear();
        let mut start = 0;
        for c in text.chars().take(MAX_CHARS) {
            if !c.is_alphabetic() {
                end_word(&s.letters, &mut s.words, &mut start);
            } else if is_cjk_ideograph_or_kana(c) {
                end_word(&s.letters, &mut s.words, &mut start);
                s.letters.push(c);
                end_word(&s.letters, &mut s.words, &mut start);
            } else {
                s.letters.extend(c.to_lowercase());
            }
        }
        end_word(&s.letters, &mut s.words, &mut start);
        if s.letters.is_empty() {
            return None;
        }
        let mut total = vec![0f32; n];
        s.cur.clear();
        s.cur.resize(n, 0.0);
        s.seg.clear();
        s.seg.resize(n, 0.0);
        let mut seg_letters = 0u32;
        let mut segments = Vec::new();
        let mut terms = 0;
        let shift = KEY_BITS - self.bits;
        let bucket_of = |key: u64| (key >> shift) as usize;
        for &(a, b) in &s.words {
            let word = &s.letters[a as usize..b as usize];
            let len = word.len();
            // The word's keys first, then their buckets, prefetching each level: the table is
            // far larger than the caches, and lookups issued together overlap.
            s.keys.clear();
            for j in 0..len {
                let mut h = SEED;
                for k in 1..=max_order.min(j + 1) {
                    h = step(h, word[j + 1 - k]);
                    let key = key(h);
                    prefetch(&self.dir[bucket_of(key)]);
                    s.keys.push(key);
                }
            }
            s.ranges.clear();
            for &key in &s.keys {
                let b = bucket_of(key);
                let (lo, hi) = (self.dir[b], self.dir[b + 1]);
                if lo < hi {
                    prefetch(&self.entries[lo as usize]);
                }
                s.ranges.push((lo, hi));
            }
            let mut i = 0;
            for j in 0..len {
                let orders = max_order.min(j + 1);
                s.cur.fill(floor);
                for k in 1..=orders {
                    if k > 1 {
                        s.cur.iter_mut().for_each(|c| *c += backoff);
                    }
                    let (lo, hi) = s.ranges[i];
                    match postings_in(&self.entries[lo as usize..hi as usize], s.keys[i]) {
                        [e] if e & DENSE != 0 => {
                            let r = (e & (DENSE - 1)) as usize * n;
                            for (c, &v) in s.cur.iter_mut().zip(&self.rows[r..r + n]) {
                                *c = if v.is_nan() { *c } else { v };
                            }
                        }
                        post => {
                            for &e in post {
                                s.cur[lang_of(e)] = log_prob_of(e);
                            }
                        }
                    }
                    i += 1;
                    s.seg.iter_mut().zip(&s.cur).for_each(|(t, c)| *t += c);
                }
                terms += orders;
            }
            seg_letters += len as u32;
            if seg_letters >= SEGMENT_LETTERS {
                segments.push((argmax(&s.seg), seg_letters));
                close_segment(&mut total, &mut s.seg, &mut seg_letters);
            }
        }
        // A short tail counts in the sums but does not vote on its own.
        if seg_letters >= SEGMENT_LETTERS / 2 || (segments.is_empty() && seg_letters > 0) {
            segments.push((argmax(&s.seg), seg_letters));
        }
        close_segment(&mut total, &mut s.seg, &mut seg_letters);
        Some(Scores {
            log_likelihoods: total,
            terms,
            segments,
        })
    }

    /// The most likely language and its confidence; `und` with 0 without letters.
    pub fn detect(&self, text: &str) -> Detection {
        let Some(sc) = self.log_likelihoods(text) else {
            return Detection {
                lang: UNDETERMINED.into(),
                score: 0.0,
            };
        };
        let p = confidences(&sc.log_likelihoods, sc.terms, &self.params);
        let best = argmax(&p);
        Detection {
            lang: self.codes[best].to_string(),
            score: p[best] * sc.agreement(best),
        }
    }
}

/// What [`NgramLid::log_likelihoods`] computes for one text.
#[derive(Clone, Debug)]
pub struct Scores {
    /// Per language (table order), the summed log likelihood.
    pub log_likelihoods: Vec<f32>,
    /// Letters times orders: the number of terms summed.
    pub terms: usize,
    /// The text in runs of about [`SEGMENT_LETTERS`] letters (whole words): each run's own best
    /// language and its letters.
    pub segments: Vec<(usize, u32)>,
}

impl Scores {
    /// The share of the text's letters (over its segments) whose own best language is `lang`;
    /// 1 for a text of one segment. A page that mixes languages scores low even when one of
    /// them wins the sums.
    pub fn agreement(&self, lang: usize) -> f32 {
        if self.segments.len() < 2 {
            return 1.0;
        }
        let all: u32 = self.segments.iter().map(|s| s.1).sum();
        let agree: u32 = self
            .segments
            .iter()
            .filter(|s| s.0 == lang)
            .map(|s| s.1)
            .sum();
        agree as f32 / all.max(1) as f32
    }
}

/// Letters per segment of [`Scores::segments`]: about a sentence, long enough to be told
/// apart on its own (lingua's sentences are 96% right, its word pairs 89%).
pub const SEGMENT_LETTERS: u32 = 100;

/// Index of the largest value (the first on ties: deterministic).
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |a, (i, &x)| if x > a.1 { (i, x) } else { a },
        )
        .0
}

/// Adds the segment's sums into the text's and starts a new segment.
fn close_segment(total: &mut [f32], seg: &mut [f32], letters: &mut u32) {
    total.iter_mut().zip(seg.iter_mut()).for_each(|(t, x)| {
        *t += *x;
        *x = 0.0;
    });
    *letters = 0;
}

/// The confidence per language (see [`Params::sharpness`]).
pub fn confidences(ll: &[f32], terms: usize, p: &Params) -> Vec<f32> {
    let scale = p.sharpness / (terms.max(1) as f32).powf(p.length_exponent);
    let top = ll.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut p: Vec<f32> = ll.iter().map(|&x| ((x - top) * scale).exp()).collect();
    let z: f32 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= z);
    p
}

/// The entries of `key` in its bucket (languages ascending).
#[inline]
fn postings_in(bucket: &[u64], key: u64) -> &[u64] {
    let start = bucket.partition_point(|e| e >> PAYLOAD_BITS < key);
    let len = bucket[start..]
        .iter()
        .take_while(|e| *e >> PAYLOAD_BITS == key)
        .count();
    &bucket[start..start + len]
}

/// Asks the CPU to bring `x`'s cache line in (a hint; nothing on other architectures).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching never faults and reads nothing into the program's state.
    #[allow(unused_unsafe)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(x as *const T as *const i8);
    }
}

#[inline]
fn lang_of(e: u64) -> usize {
    ((e >> Q_BITS) & ((1 << LANG_BITS) - 1)) as usize
}

#[inline]
fn log_prob_of(e: u64) -> f32 {
    -((e & Q_MAX) as f32) * (Q_RANGE / Q_MAX as f32)
}

/// Closes the word that ends at `letters.len()`, if it has letters.
fn end_word(letters: &[char], words: &mut Vec<(u32, u32)>, start: &mut u32) {
    let end = letters.len() as u32;
    if end > *start {
        words.push((*start, end));
    }
    *start = end;
}

/// Buffers reused across calls on one thread.
#[derive(Default)]
struct Scratch {
    letters: Vec<char>,
    words: Vec<(u32, u32)>,
    keys: Vec<u64>,
    ranges: Vec<(u32, u32)>,
    cur: Vec<f32>,
    seg: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_a_model_and_a_distinct_code() {
        let mut c = CODES.to_vec();
        c.sort();
        c.dedup();
        assert_eq!(c.len(), 75);
        for code in CODES {
            assert!(ngram_fst(code).is_some_and(|b| b.len() > 1000), "{code}");
        }
    }

    #[test]
    fn quantization_keeps_log_probabilities_within_a_step() {
        for lp in [0.0f32, -0.5, -3.25, -11.9, -19.99] {
            let q = ((-lp / Q_RANGE) * Q_MAX as f32).round();
            let back = -q * (Q_RANGE / Q_MAX as f32);
            assert!((back - lp).abs() <= Q_RANGE / Q_MAX as f32);
        }
    }
}
