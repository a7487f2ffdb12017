//! Text -> tokens -> batched onnxruntime runs -> one pooled vector per text.
//!
//! Texts are tokenized in parallel (a bounded window of the text, see [`Encoder::tokenize`]),
//! sorted by token count and cut into batches of `batch_size`, each padded to its own longest
//! sequence, so short texts never pay for long ones. Batches run in parallel, each on a session
//! taken from a pool (one session per busy thread, intra-op threads from the options): the
//! result of a text depends only on its batch, and batches depend only on the input order, so
//! the output is the same whatever the number of threads.

use std::path::Path;
use std::sync::{Condvar, Mutex};

use ort::session::Session;
use ort::value::Tensor;
use rayon::prelude::*;
use tokenizers::{Encoding, PaddingParams, PostProcessor, Tokenizer};

use super::config::{ModelSpec, Pooling, Truncation};
use super::runtime::{self, Device, RuntimeOptions};
use crate::error::{Error, Result};

/// What a graph input is fed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    Ids,
    Mask,
    TypeIds,
    Positions,
}

/// One tokenized text, special tokens included.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

/// Per-call settings that a stage may override over `curate.json`.
#[derive(Clone, Debug)]
pub struct EncoderOptions {
    pub runtime: RuntimeOptions,
    /// Texts per onnxruntime run.
    pub batch_size: usize,
    pub max_length: Option<usize>,
    pub truncation: Option<Truncation>,
    pub pooling: Option<Pooling>,
    pub normalize: Option<bool>,
    /// Most sessions at once (default: one per busy thread; each holds its own copy of the
    /// weights, so a many-core machine may cap this and give each session more `threads`).
    pub max_sessions: Option<usize>,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            runtime: RuntimeOptions::default(),
            batch_size: 32,
            max_length: None,
            truncation: None,
            pooling: None,
            normalize: None,
            max_sessions: None,
        }
    }
}

/// Sessions of one graph, created on demand, at most `max` at once.
struct SessionPool {
    idle: Mutex<(Vec<Session>, usize)>,
    freed: Condvar,
    max: usize,
}

impl SessionPool {
    fn with<R>(
        &self,
        make: impl Fn() -> Result<Session>,
        f: impl FnOnce(&mut Session) -> Result<R>,
    ) -> Result<R> {
        let mut s = {
            let mut g = self.idle.lock().expect("session pool");
            loop {
                if let Some(s) = g.0.pop() {
                    break s;
                }
                if g.1 < self.max {
                    g.1 += 1;
                    drop(g);
                    match make() {
                        Ok(s) => break s,
                        Err(e) => {
                            self.idle.lock().expect("session pool").1 -= 1;
                            self.freed.notify_one();
                            return Err(e);
                        }
                    }
                }
                g = self.freed.wait(g).expect("session pool");
            }
        };
        let r = f(&mut s);
        self.idle.lock().expect("session pool").0.push(s);
        self.freed.notify_one();
        r
    }
}

/// A loaded encoder: tokenizer, graph and pooling.
pub struct Encoder {
    spec: ModelSpec,
    tokenizer: Tokenizer,
    runtime: RuntimeOptions,
    pool: SessionPool,
    feeds: Vec<(String, Feed)>,
    output: String,
    output_rank: usize,
    pad_id: u32,
    pad_type_id: u32,
    /// Special tokens the post-processor adds to one sequence.
    added: usize,
    /// The fast path of [`Encoder::tokenize`] (BERT WordPiece, head truncation).
    fast: Option<FastTokens>,
    batch_size: usize,
    dim: usize,
}

/// BERT-style WordPiece without the `tokenizers` pipeline: the same ids 15 to 20 times faster
/// (it builds no offsets or strings), which matters where every document of a dump is
/// tokenized for a model that runs on a few of them (`dedup.semantic`'s `verify_model`).
struct FastTokens {
    wordpiece: crate::wordpiece::WordPiece,
    /// What the post-processor puts around one sequence, and the type id of its tokens.
    prefix: Tokens,
    suffix: Tokens,
    content_type: u32,
}

impl FastTokens {
    /// The fast path for `tokenizer`, or `None` when it is not a lower-casing BERT WordPiece
    /// tokenizer whose post-processor puts fixed tokens around one sequence.
    fn new(tokenizer: &Tokenizer, path: &Path) -> Option<FastTokens> {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let wordpiece = crate::wordpiece::WordPiece::new(tokenizer, &json)?;
        // Where the post-processor puts its tokens: probe one sequence.
        let content = tokenizer.encode("a b", false).ok()?;
        let n = content.len();
        let full = tokenizer.post_process(content.clone(), None, true).ok()?;
        let special = full.get_special_tokens_mask();
        let before = special.iter().take_while(|&&m| m == 1).count();
        let after = special.iter().rev().take_while(|&&m| m == 1).count();
        let (ids, types) = (full.get_ids(), full.get_type_ids());
        if before + n + after != ids.len() || ids[before..before + n] != *content.get_ids() {
            return None;
        }
        let content_type = types[before];
        if types[before..before + n].iter().any(|&t| t != content_type) {
            return None;
        }
        let part = |r: std::ops::Range<usize>| Tokens {
            ids: ids[r.clone()].to_vec(),
            type_ids: types[r].to_vec(),
        };
        Some(FastTokens {
            wordpiece,
            prefix: part(0..before),
            suffix: part(ids.len() - after..ids.len()),
            content_type,
        })
    }

    fn tokenize(&self, text: &str, budget: usize) -> Tokens {
        let mut ids = self.prefix.ids.clone();
        self.wordpiece.encode(text, ids.len() + budget, &mut ids);
        let content = ids.len() - self.prefix.ids.len();
        ids.extend_from_slice(&self.suffix.ids);
        let mut type_ids = self.prefix.type_ids.clone();
        type_ids.resize(type_ids.len() + content, self.content_type);
        type_ids.extend_from_slice(&self.suffix.type_ids);
        Tokens { ids, type_ids }
    }
}

impl Encoder {
    /// Opens a model directory.
    pub fn open(dir: &Path, opts: &EncoderOptions) -> Result<Encoder> {
        let mut spec = ModelSpec::read(dir)?;
        if let Some(n) = opts.max_length {
            spec.max_length = n;
        }
        if let Some(t) = opts.truncation {
            spec.truncation = t;
        }
        if let Some(p) = opts.pooling {
            spec.pooling = p;
        }
        if let Some(n) = opts.normalize {
            spec.normalize = n;
        }
        let mut tokenizer = Tokenizer::from_file(&spec.tokenizer_path)
            .map_err(|e| Error::format(&spec.tokenizer_path, e.to_string()))?;
        // The file's own padding (the MiniLM one pads every text to 128) and truncation are
        // replaced by ours: per-batch padding, truncation by strategy.
        let pad = tokenizer.get_padding().cloned();
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::format(&spec.tokenizer_path, e.to_string()))?;
        let (pad_id, pad_type_id) = match pad {
            Some(PaddingParams {
                pad_id,
                pad_type_id,
                ..
            }) => (pad_id, pad_type_id),
            None => (
                ["<pad>", "[PAD]", "<PAD>", "[pad]"]
                    .iter()
                    .find_map(|t| tokenizer.token_to_id(t))
                    .unwrap_or(0),
                0,
            ),
        };
        let added = tokenizer
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        let fast = match spec.truncation {
            Truncation::Head => FastTokens::new(&tokenizer, &spec.tokenizer_path)
                .filter(|f| f.prefix.ids.len() + f.suffix.ids.len() == added),
            Truncation::HeadTail => None,
        };
        if spec.max_length <= added + 1 {
            return Err(Error::format(
                dir,
                format!(
                    "max_length {} leaves no room for text beside {added} special tokens",
                    spec.max_length
                ),
            ));
        }

        let first = runtime::session(&spec.model_path, &opts.runtime)?;
        let mut feeds = Vec::new();
        for input in first.inputs() {
            let feed = match input.name() {
                "input_ids" => Feed::Ids,
                "attention_mask" => Feed::Mask,
                "token_type_ids" => Feed::TypeIds,
                "position_ids" => Feed::Positions,
                other => {
                    return Err(Error::format(
                        &spec.model_path,
                        format!(
                            "graph input `{other}` is not one curate feeds (input_ids, \
                             attention_mask, token_type_ids, position_ids)"
                        ),
                    ))
                }
            };
            feeds.push((input.name().to_string(), feed));
        }
        if !feeds.iter().any(|(_, f)| *f == Feed::Ids) {
            return Err(Error::format(
                &spec.model_path,
                "graph has no input_ids input",
            ));
        }
        let names: Vec<&str> = first.outputs().iter().map(|o| o.name()).collect();
        let output = match &spec.output {
            Some(o) if names.contains(&o.as_str()) => o.clone(),
            Some(o) => {
                return Err(Error::format(
                    &spec.model_path,
                    format!("graph has no output `{o}`; outputs: {}", names.join(", ")),
                ))
            }
            None => {
                let preferred = match spec.pooling {
                    Pooling::None => "logits",
                    _ => "last_hidden_state",
                };
                if names.contains(&preferred) {
                    preferred.to_string()
                } else {
                    names
                        .first()
                        .ok_or_else(|| Error::format(&spec.model_path, "graph has no output"))?
                        .to_string()
                }
            }
        };
        // Sessions are not shared between threads (`ort` runs take `&mut`); a GPU gets one.
        let max = match opts.runtime.device {
            Device::Cuda => 1,
            Device::Cpu => opts.max_sessions.unwrap_or(usize::MAX).max(1),
        };
        let mut enc = Encoder {
            spec,
            tokenizer,
            runtime: opts.runtime.clone(),
            pool: SessionPool {
                idle: Mutex::new((vec![first], 1)),
                freed: Condvar::new(),
                max,
            },
            feeds,
            output,
            output_rank: 0,
            pad_id,
            pad_type_id,
            added,
            fast,
            batch_size: opts.batch_size.max(1),
            dim: 0,
        };
        // One probe run fixes the output's rank and width.
        let probe = enc.tokenize("a")?;
        let (rank, dim) = enc.pool.with(
            || runtime::session(&enc.spec.model_path, &enc.runtime),
            |s| {
                let (shape, _) = run_graph(
                    s,
                    &enc.feeds,
                    &enc.output,
                    &[&probe],
                    enc.pad_id,
                    enc.pad_type_id,
                )?;
                Ok((shape.len(), *shape.last().unwrap_or(&0) as usize))
            },
        )?;
        match (rank, enc.spec.pooling) {
            (2, Pooling::None) | (3, Pooling::Cls | Pooling::Mean) => {}
            (3, Pooling::None) => {
                return Err(Error::format(
                    &enc.spec.model_path,
                    format!(
                        "output `{}` is per token [batch, sequence, {dim}]: set \"pooling\": \"mean\" or \"cls\" in curate.json",
                        enc.output
                    ),
                ))
            }
            (r, p) => {
                return Err(Error::format(
                    &enc.spec.model_path,
                    format!("output `{}` has rank {r}, which pooling {p:?} cannot use", enc.output),
                ))
            }
        }
        enc.output_rank = rank;
        enc.dim = dim;
        Ok(enc)
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Texts per onnxruntime run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Tokens in the tokenizer's vocabulary (added tokens included).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Width of the pooled vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The name of the graph output read.
    pub fn output_name(&self) -> &str {
        &self.output
    }

    /// Tokens of one text, truncated to `max_length` by the configured strategy.
    ///
    /// Only a window of a long text is tokenized: `8 x budget` characters from each end that
    /// is kept, cut at whitespace so that the kept words tokenize as they would in the whole
    /// text, widened when it yields too few tokens. The result equals tokenizing the whole
    /// text and truncating, at a bounded cost for megabyte pages.
    ///
    /// A BERT WordPiece tokenizer with head truncation takes a fast path with the same ids
    /// ([`crate::wordpiece`]).
    pub fn tokenize(&self, text: &str) -> Result<Tokens> {
        let budget = self.spec.max_length - self.added;
        match &self.fast {
            Some(f) => Ok(f.tokenize(text, budget)),
            None => self.tokenize_with_tokenizers(text),
        }
    }

    /// Whether [`Encoder::tokenize`] takes the fast WordPiece path.
    pub fn fast_tokens(&self) -> bool {
        self.fast.is_some()
    }

    /// [`Encoder::tokenize`] through the `tokenizers` pipeline, whatever the tokenizer.
    pub fn tokenize_with_tokenizers(&self, text: &str) -> Result<Tokens> {
        let budget = self.spec.max_length - self.added;
        let enc = match self.spec.truncation {
            Truncation::Head => self.head_tokens(text, budget)?,
            Truncation::HeadTail => {
                let head_n = self.spec.head_tokens.unwrap_or(budget / 4).min(budget);
                let tail_n = budget - head_n;
                let full = self.window_tokens(text, budget + 1, false)?;
                if full.len() <= budget {
                    full
                } else {
                    let mut head = self.head_tokens(text, head_n)?;
                    let mut tail = self.window_tokens(text, tail_n + 1, true)?;
                    head.truncate(head_n, 0, tokenizers::TruncationDirection::Right);
                    tail.truncate(tail_n, 0, tokenizers::TruncationDirection::Left);
                    Encoding::merge([head, tail], false)
                }
            }
        };
        let enc = self
            .tokenizer
            .post_process(enc, None, true)
            .map_err(|e| Error::Run(format!("tokenizer post-processing: {e}")))?;
        Ok(Tokens {
            ids: enc.get_ids().to_vec(),
            type_ids: enc.get_type_ids().to_vec(),
        })
    }

    fn head_tokens(&self, text: &str, n: usize) -> Result<Encoding> {
        let mut e = self.window_tokens(text, n + 1, false)?;
        e.truncate(n, 0, tokenizers::TruncationDirection::Right);
        Ok(e)
    }

    /// Tokens (without special tokens) of a window at the start (or end) of `text` holding at
    /// least `need` tokens, or of the whole text.
    fn window_tokens(&self, text: &str, need: usize, from_end: bool) -> Result<Encoding> {
        let mut chars = need.max(16) * 8;
        loop {
            let window = if from_end {
                tail_window(text, chars)
            } else {
                head_window(text, chars)
            };
            let e = self
                .tokenizer
                .encode(window, false)
                .map_err(|e| Error::Run(format!("tokenizer: {e}")))?;
            if window.len() == text.len() || e.len() > need {
                return Ok(e);
            }
            chars *= 4;
        }
    }

    /// One pooled vector per text, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let tokens: Vec<Tokens> = texts
            .par_iter()
            .with_min_len(8)
            .map(|t| self.tokenize(t))
            .collect::<Result<_>>()?;
        self.embed_tokens(&tokens)
    }

    /// One pooled vector per tokenized text, in input order.
    pub fn embed_tokens(&self, tokens: &[Tokens]) -> Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..tokens.len()).collect();
        order.sort_by_key(|&i| (tokens[i].ids.len(), i));
        let batches: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        let outs: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .with_max_len(1)
            .map(|b| {
                let toks: Vec<&Tokens> = b.iter().map(|&i| &tokens[i]).collect();
                self.run_batch(&toks)
            })
            .collect::<Result<_>>()?;
        let mut result = vec![Vec::new(); tokens.len()];
        for (b, out) in batches.iter().zip(outs) {
            for (&i, v) in b.iter().zip(out) {
                result[i] = v;
            }
        }
        Ok(result)
    }

    fn run_batch(&self, toks: &[&Tokens]) -> Result<Vec<Vec<f32>>> {
        let (shape, data) = self.pool.with(
            || runtime::session(&self.spec.model_path, &self.runtime),
            |s| {
                run_graph(
                    s,
                    &self.feeds,
                    &self.output,
                    toks,
                    self.pad_id,
                    self.pad_type_id,
                )
            },
        )?;
        let b = toks.len();
        let mut out = Vec::with_capacity(b);
        match self.output_rank {
            2 => {
                let d = shape[1] as usize;
                for i in 0..b {
                    out.push(data[i * d..(i + 1) * d].to_vec());
                }
            }
            _ => {
                let (s, d) = (shape[1] as usize, shape[2] as usize);
                for (i, t) in toks.iter().enumerate() {
                    let rows = &data[i * s * d..(i + 1) * s * d];
                    let v = match self.spec.pooling {
                        Pooling::Cls => rows[..d].to_vec(),
                        _ => {
                            // Mean over the real tokens (the attention mask is 1 exactly there).
                            let n = t.ids.len().max(1);
                            let mut acc = vec![0f64; d];
                            for r in rows[..n * d].chunks_exact(d) {
                                for (a, &x) in acc.iter_mut().zip(r) {
                                    *a += x as f64;
                                }
                            }
                            acc.iter().map(|a| (a / n as f64) as f32).collect()
                        }
                    };
                    out.push(v);
                }
            }
        }
        if self.spec.normalize {
            for v in &mut out {
                l2_normalize(v);
            }
        }
        Ok(out)
    }
}

/// Scales a vector to unit length (zero vectors stay zero).
pub fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if n > 1e-12 {
        for x in v {
            *x = (*x as f64 / n) as f32;
        }
    }
}

/// Pads a batch, runs the graph and returns the chosen output's shape and data.
fn run_graph(
    s: &mut Session,
    feeds: &[(String, Feed)],
    output: &str,
    toks: &[&Tokens],
    pad_id: u32,
    pad_type_id: u32,
) -> Result<(Vec<i64>, Vec<f32>)> {
    let b = toks.len();
    let len = toks.iter().map(|t| t.ids.len()).max().unwrap_or(0).max(1);
    let shape = [b as i64, len as i64];
    let mut inputs: Vec<(
        std::borrow::Cow<'static, str>,
        ort::session::SessionInputValue<'static>,
    )> = Vec::new();
    for (name, feed) in feeds {
        let mut v = Vec::with_capacity(b * len);
        for t in toks {
            let n = t.ids.len();
            match feed {
                Feed::Ids => {
                    v.extend(t.ids.iter().map(|&x| x as i64));
                    v.extend(std::iter::repeat_n(pad_id as i64, len - n));
                }
                Feed::Mask => {
                    v.extend(std::iter::repeat_n(1i64, n));
                    v.extend(std::iter::repeat_n(0i64, len - n));
                }
                Feed::TypeIds => {
                    v.extend(t.type_ids.iter().map(|&x| x as i64));
                    v.extend(std::iter::repeat_n(pad_type_id as i64, len - n));
                }
                Feed::Positions => v.extend(0..len as i64),
            }
        }
        let tensor = Tensor::from_array((shape, v)).map_err(|e| Error::Run(e.to_string()))?;
        inputs.push((name.clone().into(), tensor.into()));
    }
    let outputs = s
        .run(inputs)
        .map_err(|e| Error::Run(format!("onnxruntime: {e}")))?;
    let value = outputs
        .get(output)
        .ok_or_else(|| Error::Run(format!("graph produced no `{output}`")))?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| Error::Run(format!("output `{output}`: {e}")))?;
    let dims: Vec<i64> = shape.iter().copied().collect();
    if dims.first() != Some(&(b as i64)) || (dims.len() == 3 && dims[1] != len as i64) {
        return Err(Error::Run(format!(
            "output `{output}` has shape {dims:?} for a batch of {b} x {len}"
        )));
    }
    Ok((dims, data.to_vec()))
}

/// The first `chars` characters of `text`, extended to the next whitespace (all of it when
/// there is none within another `chars`).
fn head_window(text: &str, chars: usize) -> &str {
    let Some((cut, _)) = text.char_indices().nth(chars) else {
        return text;
    };
    let rest = &text[cut..];
    match rest
        .char_indices()
        .take(chars)
        .find(|(_, c)| c.is_whitespace())
    {
        Some((i, _)) => &text[..cut + i],
        None => text,
    }
}

/// The last `chars` characters of `text`, extended back to the previous whitespace (all of
/// it when there is none within another `chars`).
fn tail_window(text: &str, chars: usize) -> &str {
    let Some((cut, _)) = text.char_indices().rev().nth(chars.saturating_sub(1)) else {
        return text;
    };
    let before = &text[..cut];
    match before
        .char_indices()
        .rev()
        .take(chars)
        .find(|(_, c)| c.is_whitespace())
    {
        Some((i, _)) => &text[i..],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cut_at_whitespace() {
        let t = "alpha beta gamma delta";
        assert_eq!(head_window(t, 7), "alpha beta");
        assert_eq!(head_window(t, 100), t);
        assert_eq!(tail_window(t, 7), " gamma delta");
        assert_eq!(tail_window(t, 100), t);
        // No whitespace near the cut: the whole text.
        let s = "x".repeat(50);
        assert_eq!(head_window(&s, 10), s);
        assert_eq!(tail_window(&s, 10), s);
        // Multi-byte characters are counted as characters.
        assert_eq!(head_window("ééé ééé", 2), "ééé");
    }
}
