//! tiktoken vocabularies: the embedded cl100k_base and o200k_base, and `.tiktoken` files.
//!
//! A `.tiktoken` file has one token per line: the token's bytes in standard base64, a space,
//! and its rank, which is also its id. It holds no special tokens and no pattern: those come
//! from the config (Llama 3's 128K vocabulary is such a file, with cl100k's pattern and
//! special tokens from 128000 up).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine as _;

/// A tiktoken vocabulary: ordinary tokens with their ranks, and special tokens.
#[derive(Clone, Debug, Default)]
pub struct TiktokenVocab {
    pub tokens: Vec<(Vec<u8>, u32)>,
    pub special: BTreeMap<String, u32>,
}

/// The names of the embedded vocabularies.
pub const EMBEDDED: &[&str] = &["cl100k_base", "o200k_base"];

/// One of the vocabularies embedded in `tiktoken-rs`, with its special tokens and pattern name.
pub fn embedded(name: &str) -> Option<(TiktokenVocab, &'static str)> {
    let (bpe, pattern) = match name {
        "cl100k_base" | "cl100k" => (tiktoken_rs::cl100k_base().ok()?, "cl100k"),
        "o200k_base" | "o200k" => (tiktoken_rs::o200k_base().ok()?, "o200k"),
        _ => return None,
    };
    let mut special = BTreeMap::new();
    for s in bpe.special_tokens() {
        if let [id] = bpe.encode_with_special_tokens(s)[..] {
            special.insert(s.to_string(), id);
        }
    }
    // tiktoken-rs keeps its ranks private; decoding each id gives them back. Ordinary ranks
    // are dense below the first special id.
    let first_special = special.values().copied().min().unwrap_or(u32::MAX);
    let mut tokens = Vec::with_capacity(first_special as usize);
    for id in 0..first_special {
        if let Ok(bytes) = bpe.decode_bytes(&[id]) {
            tokens.push((bytes, id));
        }
    }
    Some((TiktokenVocab { tokens, special }, pattern))
}

/// Ordinary tokens of Llama 3's vocabulary; its special tokens follow from this id up.
pub const LLAMA3_RANKS: u32 = 128_000;

/// Llama 3's 256 special tokens (ids 128000..=128255), named as in the `llama-models`
/// package's `llama3/tokenizer.py`: eleven named tokens, the rest `<|reserved_special_token_N|>`.
pub fn llama3_special_tokens() -> BTreeMap<String, u32> {
    let named = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|step_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
        "<|image|>",
    ];
    let mut names: Vec<String> = named.iter().map(|s| s.to_string()).collect();
    let reserved = 256 - names.len();
    names.extend((0..reserved).map(|i| format!("<|reserved_special_token_{}|>", 2 + i)));
    names
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n, LLAMA3_RANKS + i as u32))
        .collect()
}

/// Parses a `.tiktoken` file's text.
pub fn parse(text: &str) -> Result<Vec<(Vec<u8>, u32)>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut tokens = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(tok), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {}: expected `base64 rank`", n + 1));
        };
        let bytes = b64
            .decode(tok)
            .map_err(|e| format!("line {}: bad base64: {e}", n + 1))?;
        let rank = rank
            .parse::<u32>()
            .map_err(|e| format!("line {}: bad rank: {e}", n + 1))?;
        tokens.push((bytes, rank));
    }
    Ok(tokens)
}

/// Reads a `.tiktoken` file.
pub fn load(path: &Path) -> Result<Vec<(Vec<u8>, u32)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes tokens as a `.tiktoken` file (rank order).
pub fn write(tokens: &[(Vec<u8>, u32)], out: &mut impl Write) -> std::io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut sorted: Vec<&(Vec<u8>, u32)> = tokens.iter().collect();
    sorted.sort_by_key(|t| t.1);
    for (bytes, rank) in sorted {
        writeln!(out, "{} {rank}", b64.encode(bytes))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_round_trips_through_a_file() {
        let (v, pattern) = embedded("cl100k_base").unwrap();
        assert_eq!(pattern, "cl100k");
        assert_eq!(v.tokens.len(), 100256);
        assert_eq!(v.special.get("<|endoftext|>"), Some(&100257));
        let mut buf = Vec::new();
        write(&v.tokens, &mut buf).unwrap();
        let back = parse(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(back, v.tokens);
        assert!(parse("abc").is_err());
    }

    #[test]
    fn llama3_specials_fill_128000_to_128255() {
        let s = llama3_special_tokens();
        assert_eq!(s.len(), 256);
        assert_eq!(s["<|begin_of_text|>"], 128000);
        assert_eq!(s["<|end_of_text|>"], 128001);
        assert_eq!(s["<|eot_id|>"], 128009);
        assert_eq!(s["<|image|>"], 128011);
        assert_eq!(s["<|reserved_special_token_2|>"], 128012);
        assert_eq!(s["<|reserved_special_token_245|>"], 128255);
    }
}
