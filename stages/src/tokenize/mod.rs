//! Tokenization for training: tiktoken and Hugging Face vocabularies (the Megatron-LM shards
//! they feed are written by `curate::mix`).
//!
//! A [`Tokenizer`] turns a document's text into token ids, with an optional BOS before and EOS
//! after each document. It loads:
//! - the tiktoken vocabularies embedded in `tiktoken-rs` (`cl100k_base`, `o200k_base`);
//! - any `.tiktoken` file (Llama 3's 128K vocabulary), with a pattern and special tokens from
//!   the config;
//! - any Hugging Face `tokenizer.json` (plain or gzipped).
//!
//! Byte-level BPE vocabularies (every tiktoken file, and GPT-2-style `tokenizer.json` files)
//! run on curate's own engine: hand-written pre-tokenizers ([`pretok`]) and one merge loop
//! ([`bpe`]) with a per-worker cache of pieces ([`Session`]). Other `tokenizer.json` models run
//! through the `tokenizers` crate. Tests check token ids against Python `tiktoken` and
//! `tokenizers` on real text; `docs/tokenize.md` has the speed figures.
//!
//! ```
//! use stages::tokenize::{Tokenizer, TokenizerConfig};
//! let cfg: TokenizerConfig = toml::from_str("tokenizer = 'cl100k_base'").unwrap();
//! let tok = Tokenizer::from_config(&cfg, std::path::Path::new(".")).unwrap();
//! let mut session = tok.session();
//! let mut ids = Vec::new();
//! session.encode_document("Hello world", &mut ids);
//! assert_eq!(ids, vec![9906, 1917, 100257]); // "Hello", " world", <|endoftext|>
//! ```

pub mod bpe;
pub mod chars;
pub mod count;
pub mod hf;
pub mod pretok;
#[cfg(test)]
pub(crate) mod testdata;
pub mod tiktoken;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use unicode_normalization_alignments::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::config::ConfigError;
use bpe::Bpe;
use pretok::PreTokenizer;

/// How to build a tokenizer (a `[tokenize]` section, or part of a mix config).
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// `cl100k_base` or `o200k_base` (embedded), or the path of a `.tiktoken` file or a Hugging
    /// Face `tokenizer.json` (`.json` or `.json.gz`), relative to the config file.
    pub tokenizer: String,
    /// Pre-tokenizer of a `.tiktoken` file: `cl100k` (default), `llama3` (Llama 3's spelling
    /// of cl100k's pattern), `o200k`, `gpt2`, or a regular expression.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Special tokens of a `.tiktoken` file, text to id (e.g. `"<|endoftext|>" = 100257`).
    /// Llama 3's file (128,000 ranks) with `pattern = "llama3"` and none given gets the
    /// model's 256 special tokens (128000..=128255) and `<|begin_of_text|>` as default BOS.
    #[serde(default)]
    pub special_tokens: BTreeMap<String, u32>,
    /// Token put before each document (its text, e.g. `<|begin_of_text|>`); `""` for none.
    /// Default: the BOS of a `tokenizer.json` post-processor template, else none.
    #[serde(default)]
    pub bos: Option<String>,
    /// Token put after each document; `""` for none. Default: the vocabulary's end-of-text
    /// token (`<|endoftext|>`, `<|end_of_text|>`, `</s>` or `<eos>`, the first that exists).
    #[serde(default)]
    pub eos: Option<String>,
}

enum Engine {
    Fast(Box<Fast>),
    Hf(Box<tokenizers::Tokenizer>),
}

/// The byte-level BPE engine.
struct Fast {
    pretok: PreTokenizer,
    bpe: Bpe,
    nfc: bool,
    /// Added tokens matched in the raw text, then in the normalized text (Hugging Face).
    raw_added: Option<(AhoCorasick, Vec<u32>)>,
    norm_added: Option<(AhoCorasick, Vec<u32>)>,
}

/// A loaded tokenizer. Cheap to share (`Arc`) across workers; each worker encodes through its
/// own [`Session`].
pub struct Tokenizer {
    name: String,
    engine: Engine,
    specials: BTreeMap<String, u32>,
    vocab_size: u32,
    bos: Option<u32>,
    eos: Option<u32>,
    /// Why a `tokenizer.json` runs through the `tokenizers` crate instead of the fast path.
    fallback_reason: Option<String>,
}

const EOS_NAMES: &[&str] = &["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"];

fn matcher(tokens: Vec<(String, u32)>) -> Option<(AhoCorasick, Vec<u32>)> {
    if tokens.is_empty() {
        return None;
    }
    let ac = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(tokens.iter().map(|t| t.0.as_str()))
        .ok()?;
    Some((ac, tokens.into_iter().map(|t| t.1).collect()))
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

impl Tokenizer {
    /// Builds the tokenizer a config names; paths resolve against `base_dir`.
    pub fn from_config(cfg: &TokenizerConfig, base_dir: &Path) -> Result<Tokenizer, ConfigError> {
        let err = |m: String| ConfigError::new("tokenizer", m);
        let mut tok = if let Some((vocab, pattern)) = tiktoken::embedded(&cfg.tokenizer) {
            if cfg.pattern.is_some() || !cfg.special_tokens.is_empty() {
                return Err(ConfigError::new(
                    "pattern",
                    "pattern and special_tokens apply to .tiktoken files only",
                ));
            }
            Self::from_tiktoken(&cfg.tokenizer, vocab, pattern).map_err(err)?
        } else {
            let path = base_dir.join(&cfg.tokenizer);
            if !path.exists() {
                return Err(err(format!(
                    "not an embedded vocabulary ({}) nor a file: {}",
                    tiktoken::EMBEDDED.join(", "),
                    path.display()
                )));
            }
            let lower = cfg.tokenizer.to_ascii_lowercase();
            if lower.ends_with(".json") || lower.ends_with(".json.gz") {
                if cfg.pattern.is_some() || !cfg.special_tokens.is_empty() {
                    return Err(ConfigError::new(
                        "pattern",
                        "pattern and special_tokens apply to .tiktoken files only",
                    ));
                }
                let bytes = read_maybe_gz(&path).map_err(err)?;
                Self::from_hf_json(&cfg.tokenizer, &bytes).map_err(err)?
            } else {
                let tokens = tiktoken::load(&path).map_err(err)?;
                let pattern = cfg.pattern.as_deref().unwrap_or("cl100k");
                // Llama 3's file with its pattern and no special tokens given: the model's own
                // 256 special tokens, and a BOS before every document as the model expects.
                let llama3 = pattern == "llama3"
                    && cfg.special_tokens.is_empty()
                    && tokens.len() == tiktoken::LLAMA3_RANKS as usize;
                let special = if llama3 {
                    tiktoken::llama3_special_tokens()
                } else {
                    cfg.special_tokens.clone()
                };
                let vocab = tiktoken::TiktokenVocab { tokens, special };
                let mut tok = Self::from_tiktoken(&cfg.tokenizer, vocab, pattern)
                    .map_err(|e| ConfigError::new("pattern", e))?;
                if llama3 {
                    tok.bos = tok.special_id("<|begin_of_text|>");
                }
                tok
            }
        };
        tok.bos = tok.resolve_special("bos", cfg.bos.as_deref(), tok.bos)?;
        tok.eos = tok.resolve_special("eos", cfg.eos.as_deref(), tok.eos)?;
        Ok(tok)
    }

    fn resolve_special(
        &self,
        key: &str,
        given: Option<&str>,
        default: Option<u32>,
    ) -> Result<Option<u32>, ConfigError> {
        match given {
            None => Ok(default),
            Some("") => Ok(None),
            Some(t) => self.special_id(t).map(Some).ok_or_else(|| {
                ConfigError::new(
                    key,
                    format!("{t:?} is not a special token of this vocabulary"),
                )
            }),
        }
    }

    /// A tiktoken vocabulary with a pre-tokenizer pattern (name or regex).
    pub fn from_tiktoken(
        name: &str,
        vocab: tiktoken::TiktokenVocab,
        pattern: &str,
    ) -> Result<Tokenizer, String> {
        let pretok = PreTokenizer::from_pattern(pattern)?;
        let bpe = Bpe::from_ranks(&vocab.tokens)?;
        let max_id = vocab
            .tokens
            .iter()
            .map(|t| t.1)
            .chain(vocab.special.values().copied())
            .max()
            .unwrap_or(0);
        let eos = EOS_NAMES
            .iter()
            .find_map(|n| vocab.special.get(*n).copied());
        Ok(Tokenizer {
            name: name.to_string(),
            engine: Engine::Fast(Box::new(Fast {
                pretok,
                bpe,
                nfc: false,
                raw_added: None,
                norm_added: None,
            })),
            specials: vocab.special,
            vocab_size: max_id + 1,
            bos: None,
            eos,
            fallback_reason: None,
        })
    }

    /// A Hugging Face `tokenizer.json`: the fast path when it applies, else `tokenizers`.
    pub fn from_hf_json(name: &str, bytes: &[u8]) -> Result<Tokenizer, String> {
        let file = hf::HfFile::parse(bytes)?;
        let mut fallback_reason = None;
        let engine = match file.fast_parts() {
            Ok(p) => {
                let norm = |s: &str| -> String {
                    if p.nfc {
                        s.nfc().map(|(c, _)| c).collect()
                    } else {
                        s.to_string()
                    }
                };
                let raw: Vec<(String, u32)> = file
                    .added
                    .iter()
                    .filter(|t| !t.normalized)
                    .map(|t| (t.content.clone(), t.id))
                    .collect();
                let normalized: Vec<(String, u32)> = file
                    .added
                    .iter()
                    .filter(|t| t.normalized)
                    .map(|t| (norm(&t.content), t.id))
                    .collect();
                Engine::Fast(Box::new(Fast {
                    pretok: p.pretok,
                    bpe: p.bpe,
                    nfc: p.nfc,
                    raw_added: matcher(raw),
                    norm_added: matcher(normalized),
                }))
            }
            Err(why) => {
                fallback_reason = Some(why);
                Engine::Hf(Box::new(
                    tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| e.to_string())?,
                ))
            }
        };
        let specials: BTreeMap<String, u32> = file
            .added
            .iter()
            .filter(|t| t.special)
            .map(|t| (t.content.clone(), t.id))
            .collect();
        let added: FxHashMap<&str, u32> = file
            .added
            .iter()
            .map(|t| (t.content.as_str(), t.id))
            .collect();
        let bos = file
            .template_bos()
            .and_then(|b| added.get(b.as_str()).copied());
        let eos = EOS_NAMES.iter().find_map(|n| added.get(*n).copied());
        Ok(Tokenizer {
            name: name.to_string(),
            engine,
            specials,
            vocab_size: file.vocab_size,
            bos,
            eos,
            fallback_reason,
        })
    }

    /// The vocabulary's name (as configured).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One more than the largest token id (special tokens included).
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// Whether this tokenizer runs on curate's own BPE engine (else on `tokenizers`).
    pub fn is_fast_path(&self) -> bool {
        matches!(self.engine, Engine::Fast(_))
    }

    /// Why this tokenizer runs through the `tokenizers` crate, when it does.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The id of a special (or added) token.
    pub fn special_id(&self, text: &str) -> Option<u32> {
        if let Some(&id) = self.specials.get(text) {
            return Some(id);
        }
        match &self.engine {
            Engine::Hf(t) => t.token_to_id(text),
            Engine::Fast(f) => {
                // Added tokens of a tokenizer.json that are not special still have ids.
                let hit = |m: &Option<(AhoCorasick, Vec<u32>)>| {
                    let (ac, ids) = m.as_ref()?;
                    let mm = ac.find(text)?;
                    (mm.start() == 0 && mm.end() == text.len()).then(|| ids[mm.pattern()])
                };
                hit(&f.raw_added).or_else(|| hit(&f.norm_added))
            }
        }
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// A worker's encoder, with its own cache.
    pub fn session(&self) -> Session<'_> {
        Session {
            tok: self,
            cache: FxHashMap::default(),
            cache_on: true,
            norm: String::new(),
        }
    }

    /// A session that caches nothing (to measure the merge loop alone).
    pub fn session_without_cache(&self) -> Session<'_> {
        Session {
            cache_on: false,
            ..self.session()
        }
    }

    /// Encodes a text without BOS/EOS (a one-off session; workers keep a [`Session`]).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.session().encode(text, &mut out);
        out
    }
}

/// Pieces at most this long are cached.
const CACHE_PIECE_MAX: usize = 24;
/// The cache is cleared when it holds this many pieces (bounded memory on odd text).
const CACHE_MAX: usize = 1 << 17;

/// One worker's encoder: the tokenizer plus a cache of encoded pieces.
pub struct Session<'a> {
    tok: &'a Tokenizer,
    cache: FxHashMap<Box<[u8]>, Box<[u32]>>,
    cache_on: bool,
    norm: String,
}

impl Session<'_> {
    /// Appends the ids of `text` (no BOS/EOS) to `out`.
    pub fn encode(&mut self, text: &str, out: &mut Vec<u32>) {
        let fast = match &self.tok.engine {
            Engine::Fast(f) => f,
            Engine::Hf(t) => {
                if let Ok(enc) = t.encode_fast(text, false) {
                    out.extend_from_slice(enc.get_ids());
                }
                return;
            }
        };
        match &fast.raw_added {
            None => self.encode_normalizing(fast, text, out),
            Some((ac, ids)) => {
                let mut last = 0;
                for m in ac.find_iter(text) {
                    if m.start() > last {
                        self.encode_normalizing(fast, &text[last..m.start()], out);
                    }
                    out.push(ids[m.pattern()]);
                    last = m.end();
                }
                if last < text.len() {
                    self.encode_normalizing(fast, &text[last..], out);
                }
            }
        }
    }

    /// Appends BOS, the ids of `text`, and EOS (as configured).
    pub fn encode_document(&mut self, text: &str, out: &mut Vec<u32>) {
        if let Some(b) = self.tok.bos {
            out.push(b);
        }
        self.encode(text, out);
        if let Some(e) = self.tok.eos {
            out.push(e);
        }
    }

    fn encode_normalizing(&mut self, fast: &Fast, text: &str, out: &mut Vec<u32>) {
        if fast.nfc && !text.is_ascii() && is_nfc_quick(text.chars()) != IsNormalized::Yes {
            let mut norm = std::mem::take(&mut self.norm);
            norm.clear();
            norm.extend(text.nfc().map(|(c, _)| c));
            self.encode_added_normalized(fast, &norm, out);
            self.norm = norm;
        } else {
            self.encode_added_normalized(fast, text, out);
        }
    }

    fn encode_added_normalized(&mut self, fast: &Fast, text: &str, out: &mut Vec<u32>) {
        match &fast.norm_added {
            None => self.encode_plain(fast, text, out),
            Some((ac, ids)) => {
                let mut last = 0;
                for m in ac.find_iter(text) {
                    if m.start() > last {
                        self.encode_plain(fast, &text[last..m.start()], out);
                    }
                    out.push(ids[m.pattern()]);
                    last = m.end();
                }
                if last < text.len() {
                    self.encode_plain(fast, &text[last..], out);
                }
            }
        }
    }

    fn encode_plain(&mut self, fast: &Fast, text: &str, out: &mut Vec<u32>) {
        let cache = &mut self.cache;
        let cache_on = self.cache_on;
        let bpe = &fast.bpe;
        fast.pretok.split(text, |piece| {
            let p = piece.as_bytes();
            if p.len() == 1 {
                out.push(bpe.byte_ids[p[0] as usize]);
                return;
            }
            if p.len() > CACHE_PIECE_MAX || !cache_on {
                bpe.encode_piece(p, out);
                return;
            }
            if let Some(ids) = cache.get(p) {
                out.extend_from_slice(ids);
                return;
            }
            let start = out.len();
            bpe.encode_piece(p, out);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(p.into(), out[start..].into());
        });
    }
}

#[cfg(test)]
mod tests;
