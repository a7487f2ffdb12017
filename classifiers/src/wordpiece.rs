//! A fast path for BERT-style WordPiece tokenization (uncased: `BertNormalizer` with lowercase,
//! `BertPreTokenizer`, `WordPiece` with `##` continuations), giving the same ids as the
//! `tokenizers` crate on the same `tokenizer.json`.
//!
//! A static embedding costs one table lookup per token, so the `tokenizers` pipeline (which
//! builds offsets, alignments and strings per token) would be most of the time; the same holds
//! for [`Encoder::tokenize`](crate::onnx::Encoder::tokenize) where every document of a dump is
//! tokenized for a model that runs on a few of them (`dedup.semantic`'s verifier). Here every
//! whitespace-separated word is normalised as the BERT normaliser does (control characters
//! dropped, CJK ideographs split off, NFD with non-spacing marks removed, lower case), split
//! at punctuation and matched greedily against the vocabulary, with no allocation per word.
//! ASCII words take a byte loop; others go char by char with the same Unicode tables as
//! `tokenizers` (`unicode_categories`, canonical decomposition). The ids equal those of
//! `tokenizers` on the whole text (tested on real pages and on sentences in 75 languages).

use rustc_hash::FxHashMap;
use tokenizers::Tokenizer;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::char::decompose_canonical;

/// The word-piece vocabulary of a BERT-style `tokenizer.json`, ready for lookups.
pub struct WordPiece {
    /// Whole-word pieces (`the`) and continuation pieces (`##ing` stored as `ing`).
    first: FxHashMap<Box<[u8]>, u32>,
    cont: FxHashMap<Box<[u8]>, u32>,
    unk: u32,
    max_word_chars: usize,
}

impl WordPiece {
    /// The fast path for `tokenizer` when it is a lower-casing BERT WordPiece tokenizer
    /// (`None` otherwise: callers then use `tokenizers` for everything).
    pub fn new(tokenizer: &Tokenizer, json: &serde_json::Value) -> Option<WordPiece> {
        let norm = &json["normalizer"];
        let model = &json["model"];
        let bert_norm = norm["type"] == "BertNormalizer"
            && norm["lowercase"] == true
            && norm["clean_text"] == true
            && norm["handle_chinese_chars"] == true
            && (norm["strip_accents"].is_null() || norm["strip_accents"] == true);
        if !bert_norm
            || json["pre_tokenizer"]["type"] != "BertPreTokenizer"
            || model["type"] != "WordPiece"
            || model["continuing_subword_prefix"] != "##"
        {
            return None;
        }
        let unk_tok = model["unk_token"].as_str()?;
        let vocab = model["vocab"].as_object()?;
        let mut first = FxHashMap::default();
        let mut cont = FxHashMap::default();
        for (tok, id) in vocab {
            let id = id.as_u64()? as u32;
            match tok.strip_prefix("##") {
                Some(rest) if !rest.is_empty() => cont.insert(rest.as_bytes().into(), id),
                _ => first.insert(tok.as_bytes().into(), id),
            };
        }
        let unk = *first.get(unk_tok.as_bytes())?;
        // Added tokens matched in the raw text (other than the specials, which never occur in
        // plain text here) would need the added-vocabulary pass: leave those to `tokenizers`.
        let plain_added = json["added_tokens"]
            .as_array()
            .is_none_or(|a| a.iter().all(|t| t["special"] == true));
        if !plain_added || tokenizer.get_vocab_size(true) != vocab.len() {
            return None;
        }
        Some(WordPiece {
            first,
            cont,
            unk,
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
        })
    }

    /// Appends the ids of `text` (no special tokens) to `out` until it holds `limit` ids.
    pub fn encode(&self, text: &str, limit: usize, out: &mut Vec<u32>) {
        let mut piece = Vec::with_capacity(64);
        for word in text.split(is_bert_whitespace) {
            if out.len() >= limit {
                break;
            }
            if word.is_empty() {
                continue;
            }
            piece.clear();
            if word.is_ascii() {
                // Lower-case, drop control bytes, split at ASCII punctuation.
                for &b in word.as_bytes() {
                    if b < 0x20 || b == 0x7f {
                        continue;
                    }
                    if b.is_ascii_punctuation() {
                        self.piece(&piece, out);
                        piece.clear();
                        self.piece(&[b], out);
                    } else {
                        piece.push(b.to_ascii_lowercase());
                    }
                }
                self.piece(&piece, out);
            } else {
                self.unicode_word(word, &mut piece, out);
            }
        }
        out.truncate(limit);
    }

    /// The normaliser and pre-tokenizer on one word holding non-ASCII characters, in the
    /// order of `BertNormalizer` (clean, CJK, strip accents, lower case), then the pieces.
    fn unicode_word(&self, word: &str, piece: &mut Vec<u8>, out: &mut Vec<u32>) {
        let mut buf = [0u8; 4];
        for c in word.chars() {
            if c == '\0' || c == '\u{fffd}' || is_control(c) {
                continue;
            }
            let cjk = is_chinese_char(c);
            if cjk {
                // Padded with spaces: a word of its own.
                self.piece(piece, out);
                piece.clear();
            }
            decompose_canonical(c, |d| {
                if d.is_mark_nonspacing() {
                    return;
                }
                for l in d.to_lowercase() {
                    if is_bert_punc(l) {
                        self.piece(piece, out);
                        piece.clear();
                        self.piece(l.encode_utf8(&mut buf).as_bytes(), out);
                    } else if l.is_whitespace() {
                        self.piece(piece, out);
                        piece.clear();
                    } else {
                        piece.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
                    }
                }
            });
            if cjk {
                self.piece(piece, out);
                piece.clear();
            }
        }
        self.piece(piece, out);
        piece.clear();
    }

    /// Greedy longest-match-first pieces of one normalised word (UTF-8; pieces end on
    /// character boundaries).
    fn piece(&self, w: &[u8], out: &mut Vec<u32>) {
        if w.is_empty() {
            return;
        }
        // `max_input_chars_per_word` counts characters, not bytes.
        if w.len() > self.max_word_chars
            && w.iter().filter(|&&b| (b as i8) >= -0x40).count() > self.max_word_chars
        {
            out.push(self.unk);
            return;
        }
        if let Some(&id) = self.first.get(w) {
            out.push(id);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        while start < w.len() {
            let map = if start == 0 { &self.first } else { &self.cont };
            let mut end = w.len();
            let found = loop {
                if end == start {
                    break None;
                }
                if let Some(&id) = map.get(&w[start..end]) {
                    break Some(id);
                }
                // Back to the previous character boundary.
                end -= 1;
                while end > start && (w[end] as i8) < -0x40 {
                    end -= 1;
                }
            };
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }
}

/// The BERT normaliser's control characters (deleted): Unicode "Other" (Cc, Cf, Cn, Co, Cs)
/// but tab and line breaks.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// The BERT pre-tokenizer's punctuation: ASCII punctuation and Unicode P* (each its own
/// piece).
fn is_bert_punc(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks that the BERT normaliser pads with spaces.
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

/// Where the BERT normaliser and pre-tokenizer split: whitespace that is not also a control
/// character (those, such as U+000B, are deleted rather than turned into a space).
fn is_bert_whitespace(c: char) -> bool {
    match c {
        ' ' | '\t' | '\n' | '\r' => true,
        c if c.is_ascii() => false,
        c => c.is_whitespace() && !c.is_control(),
    }
}
