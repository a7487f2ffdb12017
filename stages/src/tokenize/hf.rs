//! Hugging Face `tokenizer.json` files.
//!
//! Byte-level BPE tokenizers (GPT-2, GPT-NeoX, Llama 3, Qwen, ...) run on curate's own fast
//! path: added tokens split first (raw, then after normalization, left-most longest, as
//! `tokenizers` does), NFC when the file asks for it, the pre-tokenizer pattern through a
//! hand-written scanner, and the shared [`Bpe`] merge loop. Anything else (WordPiece, Unigram,
//! other normalizers or pre-tokenizers, added tokens that strip spaces) runs through the
//! `tokenizers` crate itself; [`HfFile::fast_path_refusal`] says why.

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::bpe::Bpe;
use super::pretok::{PreTokenizer, GPT2_PATTERN};

/// GPT-2's byte-to-character map: printable Latin-1 bytes map to themselves, the others to
/// U+0100 and up, in byte order.
pub fn byte_to_char() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable = (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || b >= 0xAE;
        out[b as usize] = if printable {
            char::from_u32(b).expect("latin-1")
        } else {
            n += 1;
            char::from_u32(255 + n).expect("latin extended")
        };
    }
    out
}

/// An added token of a `tokenizer.json`.
#[derive(Clone, Debug)]
pub struct AddedToken {
    pub id: u32,
    pub content: String,
    pub special: bool,
    pub normalized: bool,
    pub strips: bool,
}

/// A parsed `tokenizer.json`: what curate needs to know about it.
pub struct HfFile {
    pub json: Value,
    pub added: Vec<AddedToken>,
    pub vocab_size: u32,
}

/// The pieces of the fast path built from a file.
pub struct FastParts {
    pub pretok: PreTokenizer,
    pub bpe: Bpe,
    pub nfc: bool,
}

impl HfFile {
    pub fn parse(bytes: &[u8]) -> Result<HfFile, String> {
        let json: Value = serde_json::from_slice(bytes).map_err(|e| format!("bad JSON: {e}"))?;
        let mut added = Vec::new();
        for t in json["added_tokens"].as_array().into_iter().flatten() {
            let flag = |k: &str| t[k].as_bool().unwrap_or(false);
            added.push(AddedToken {
                id: t["id"].as_u64().ok_or("added token without id")? as u32,
                content: t["content"].as_str().unwrap_or_default().to_string(),
                special: flag("special"),
                normalized: flag("normalized"),
                strips: flag("lstrip") || flag("rstrip") || flag("single_word"),
            });
        }
        let mut vocab_size = added.iter().map(|t| t.id + 1).max().unwrap_or(0);
        if let Some(v) = json["model"]["vocab"].as_object() {
            for id in v.values().filter_map(Value::as_u64) {
                vocab_size = vocab_size.max(id as u32 + 1);
            }
        } else if let Some(v) = json["model"]["vocab"].as_array() {
            vocab_size = vocab_size.max(v.len() as u32);
        }
        Ok(HfFile {
            json,
            added,
            vocab_size,
        })
    }

    /// The first special token of the single-sequence template (Llama 3's
    /// `<|begin_of_text|>`), if the post-processor adds one in front.
    pub fn template_bos(&self) -> Option<String> {
        let pp = &self.json["post_processor"];
        let procs: Vec<&Value> = if pp["type"] == "Sequence" {
            pp["processors"].as_array()?.iter().collect()
        } else {
            vec![pp]
        };
        for p in procs {
            if p["type"] == "TemplateProcessing" {
                let first = p["single"].as_array()?.first()?;
                return first["SpecialToken"]["id"].as_str().map(str::to_string);
            }
        }
        None
    }

    /// Why the fast path cannot run this file, or `None` when it can.
    pub fn fast_path_refusal(&self) -> Option<String> {
        self.fast_parts().err()
    }

    /// Builds the fast path, or says why not.
    pub fn fast_parts(&self) -> Result<FastParts, String> {
        let j = &self.json;
        let m = &j["model"];
        if m["type"] != "BPE" {
            return Err(format!("model type {}", m["type"]));
        }
        for k in [
            "dropout",
            "unk_token",
            "continuing_subword_prefix",
            "end_of_word_suffix",
        ] {
            if !m[k].is_null() && m[k] != "" {
                return Err(format!("model.{k} is set"));
            }
        }
        if m["byte_fallback"] == true {
            return Err("model.byte_fallback is set".into());
        }
        if let Some(t) = self.added.iter().find(|t| t.strips) {
            return Err(format!("added token {:?} strips spaces", t.content));
        }
        let nfc = match j["normalizer"]["type"].as_str() {
            None => false,
            Some("NFC") => true,
            Some(t) => return Err(format!("normalizer {t}")),
        };
        let pretok = byte_level_pattern(&j["pre_tokenizer"])?;
        let pretok = PreTokenizer::from_pattern(&pretok)?;

        let inverse: FxHashMap<char, u8> = byte_to_char()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let to_bytes =
            |s: &str| -> Option<Vec<u8>> { s.chars().map(|c| inverse.get(&c).copied()).collect() };
        let vocab = m["vocab"].as_object().ok_or("model.vocab is not a map")?;
        let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
        let mut whole: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        for (tok, id) in vocab {
            let id = id.as_u64().ok_or("vocab id is not a number")? as u32;
            ids.insert(tok.as_str(), id);
            if let Some(b) = to_bytes(tok) {
                whole.insert(b.into_boxed_slice(), id);
            }
        }
        let mut byte_ids = [0u32; 256];
        for (b, c) in byte_to_char().iter().enumerate() {
            match ids.get(c.to_string().as_str()) {
                Some(&id) => byte_ids[b] = id,
                // Bytes that never occur in UTF-8 text may be missing (GPT-NeoX lacks them).
                None if matches!(b, 0xC0 | 0xC1 | 0xF5..=0xFF) => byte_ids[b] = u32::MAX,
                None => return Err(format!("vocab lacks the byte-level character {c:?}")),
            }
        }
        let merges = m["merges"].as_array().ok_or("model.merges missing")?;
        let mut triples = Vec::with_capacity(merges.len());
        let mut joined = String::new();
        for mv in merges {
            let (a, b) = match mv {
                Value::String(s) => s.split_once(' ').ok_or("merge without a space")?,
                Value::Array(p) if p.len() == 2 => (
                    p[0].as_str().ok_or("bad merge")?,
                    p[1].as_str().ok_or("bad merge")?,
                ),
                _ => return Err("bad merge entry".into()),
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let (Some(&l), Some(&r), Some(&mid)) =
                (ids.get(a), ids.get(b), ids.get(joined.as_str()))
            else {
                return Err(format!("merge {a:?} {b:?} names tokens outside the vocab"));
            };
            triples.push((l, r, mid));
        }
        let ignore_merges = m["ignore_merges"] == true;
        let bpe = Bpe::from_merges(byte_ids, triples, ignore_merges.then_some(whole));
        Ok(FastParts { pretok, bpe, nfc })
    }
}

/// The split pattern of a byte-level pre-tokenizer: `ByteLevel` with its GPT-2 regex, or a
/// `Split` by regex (isolated) followed by `ByteLevel` without regex.
fn byte_level_pattern(p: &Value) -> Result<String, String> {
    let byte_level_ok = |b: &Value, regex: bool| {
        b["type"] == "ByteLevel"
            && b["add_prefix_space"] != true
            && (b["use_regex"] != false) == regex
    };
    if byte_level_ok(p, true) {
        return Ok(GPT2_PATTERN.to_string());
    }
    if p["type"] == "Sequence" {
        if let Some([split, bl]) = p["pretokenizers"].as_array().map(Vec::as_slice) {
            if split["type"] == "Split"
                && split["behavior"] == "Isolated"
                && split["invert"] != true
                && byte_level_ok(bl, false)
            {
                if let Some(re) = split["pattern"]["Regex"].as_str() {
                    return Ok(re.to_string());
                }
            }
        }
    }
    Err(format!("pre-tokenizer {}", p["type"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_gpt2s() {
        let m = byte_to_char();
        assert_eq!(m[b'a' as usize], 'a');
        assert_eq!(m[b' ' as usize], 'Ġ');
        assert_eq!(m[b'\n' as usize], 'Ċ');
        let mut sorted: Vec<char> = m.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 256);
    }
}
