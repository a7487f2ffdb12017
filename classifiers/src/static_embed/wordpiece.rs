//! A fast path for BERT-style WordPiece tokenization (uncased: `BertNormalizer` with lowercase,
//! `BertPreTokenizer`, `WordPiece` with `##` continuations), giving the same ids as the
//! `tokenizers` crate on the same `tokenizer.json`.
//!
//! A static embedding costs one table lookup per token, so the `tokenizers` pipeline (which
//! builds offsets, alignments and strings per token) would be most of the time. Whitespace-
//! separated words made of ASCII are normalised, split at punctuation and matched against the
//! vocabulary here; a word holding any other character goes through the `tokenizers` pipeline
//! on that word alone. Both paths split at the same whitespace as the BERT normaliser, so the
//! ids equal those of the whole text (tested on real pages).

use rustc_hash::FxHashMap;
use tokenizers::Tokenizer;

/// The word-piece vocabulary of a BERT-style `tokenizer.json`, ready for lookups.
pub struct WordPiece {
    /// Whole-word pieces (`the`) and continuation pieces (`##ing` stored as `ing`).
    first: FxHashMap<Box<[u8]>, u32>,
    cont: FxHashMap<Box<[u8]>, u32>,
    unk: u32,
    max_word_chars: usize,
    /// The slow path for words with non-ASCII characters.
    tokenizer: Tokenizer,
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
        let mut tokenizer = tokenizer.clone();
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).ok()?;
        Some(WordPiece {
            first,
            cont,
            unk,
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            tokenizer,
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
            if word.is_ascii() {
                // Lower-case, drop control bytes, split at ASCII punctuation.
                piece.clear();
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
            } else if let Ok(e) = self.tokenizer.encode(word, false) {
                out.extend_from_slice(e.get_ids());
            }
        }
        out.truncate(limit);
    }

    /// Greedy longest-match-first pieces of one normalised ASCII word.
    fn piece(&self, w: &[u8], out: &mut Vec<u32>) {
        if w.is_empty() {
            return;
        }
        if w.len() > self.max_word_chars {
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
                end -= 1;
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

/// Where the BERT normaliser and pre-tokenizer split: whitespace that is not also a control
/// character (those, such as U+000B, are deleted rather than turned into a space).
fn is_bert_whitespace(c: char) -> bool {
    match c {
        ' ' | '\t' | '\n' | '\r' => true,
        c if c.is_ascii() => false,
        c => c.is_whitespace() && !c.is_control(),
    }
}
