//! Sharded Megatron output with a manifest.
//!
//! A [`ShardSetWriter`] receives tokenized documents in their final order and writes them as
//! `<name>_<bucket>_<nnnnn>.bin/.idx` (one stream per bucket) or `<name>_<nnnnn>.bin/.idx`
//! (one stream for all buckets, for a mix shuffled across buckets), starting a new shard when
//! the next document would pass `max_shard_bytes`. Beside each shard, `<shard>.ids.jsonl`
//! lists its documents in order (`{"id", "bucket", "tokens"}`), so every training sequence
//! traces back to its source document. `manifest.json` sums it all up.
//!
//! Every file goes through the [`Store`]'s atomic writes: a shard appears whole or not at all.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::megatron::{write_index, Dtype};
use stages::store::{ObjectWriter, Store};

/// How documents are grouped into shard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One set of shards per bucket.
    #[default]
    PerBucket,
    /// One set of shards for all buckets, in the order documents arrive.
    Mixed,
}

/// One shard of the output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Path prefix relative to the store root (add `.bin` / `.idx`).
    pub prefix: String,
    /// The bucket, when shards are per bucket.
    pub bucket: Option<String>,
    pub documents: u64,
    pub tokens: u64,
    pub bin_bytes: u64,
    /// The document list beside the shard.
    pub ids: String,
}

/// Token and document totals of one bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BucketTotals {
    pub documents: u64,
    pub tokens: u64,
}

/// `manifest.json` of a tokenized output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `megatron-indexed-v1`.
    pub format: String,
    pub tokenizer: String,
    pub vocab_size: u32,
    pub dtype: Dtype,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub layout: Layout,
    pub documents: u64,
    pub tokens: u64,
    pub buckets: BTreeMap<String, BucketTotals>,
    /// Documents and tokens per language (the `lang` signal), when the writer was told them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub languages: BTreeMap<String, BucketTotals>,
    pub shards: Vec<ShardInfo>,
}

/// What the writer records about the tokenizer.
#[derive(Clone, Debug)]
pub struct TokenizerInfo {
    pub name: String,
    pub vocab_size: u32,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
}

impl From<&stages::tokenize::Tokenizer> for TokenizerInfo {
    fn from(t: &stages::tokenize::Tokenizer) -> Self {
        TokenizerInfo {
            name: t.name().to_string(),
            vocab_size: t.vocab_size(),
            bos: t.bos(),
            eos: t.eos(),
        }
    }
}

struct Stream {
    bucket: Option<String>,
    seq: usize,
    open: Option<OpenShard>,
}

struct OpenShard {
    prefix: String,
    bin: Box<dyn ObjectWriter>,
    ids: Vec<u8>,
    lengths: Vec<i32>,
    bytes: u64,
    tokens: u64,
}

/// Writes documents into sharded `.bin`/`.idx` files and a manifest.
pub struct ShardSetWriter<'s> {
    store: &'s dyn Store,
    dir: String,
    name: String,
    layout: Layout,
    dtype: Dtype,
    max_shard_bytes: u64,
    info: TokenizerInfo,
    streams: BTreeMap<String, Stream>,
    shards: Vec<ShardInfo>,
    buckets: BTreeMap<String, BucketTotals>,
    languages: BTreeMap<String, BucketTotals>,
    buf: Vec<u8>,
}

impl<'s> ShardSetWriter<'s> {
    /// Shards go to `dir/` in the store, named `name_...`.
    pub fn new(
        store: &'s dyn Store,
        dir: &str,
        name: &str,
        layout: Layout,
        info: TokenizerInfo,
        max_shard_bytes: u64,
    ) -> Self {
        ShardSetWriter {
            store,
            dir: dir.trim_end_matches('/').to_string(),
            name: name.to_string(),
            layout,
            dtype: Dtype::for_vocab(info.vocab_size),
            max_shard_bytes: max_shard_bytes.max(1),
            info,
            streams: BTreeMap::new(),
            shards: Vec::new(),
            buckets: BTreeMap::new(),
            languages: BTreeMap::new(),
            buf: Vec::new(),
        }
    }

    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// [`add`](Self::add), and counts the document under its language in the manifest.
    pub fn add_in_language(
        &mut self,
        bucket: &str,
        lang: &str,
        doc_id: &str,
        tokens: &[u32],
    ) -> io::Result<()> {
        self.add(bucket, doc_id, tokens)?;
        let t = self.languages.entry(lang.to_string()).or_default();
        t.documents += 1;
        t.tokens += tokens.len() as u64;
        Ok(())
    }

    /// Appends one document (its tokens, BOS/EOS included) to its bucket's stream.
    pub fn add(&mut self, bucket: &str, doc_id: &str, tokens: &[u32]) -> io::Result<()> {
        if tokens.len() > i32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "document too long",
            ));
        }
        self.buf.clear();
        self.dtype.encode(tokens, &mut self.buf)?;
        let key = match self.layout {
            Layout::PerBucket => bucket.to_string(),
            Layout::Mixed => String::new(),
        };
        let stream = self.streams.entry(key.clone()).or_insert_with(|| Stream {
            bucket: (self.layout == Layout::PerBucket).then(|| bucket.to_string()),
            seq: 0,
            open: None,
        });
        let full = stream.open.as_ref().is_some_and(|s| {
            !s.lengths.is_empty() && s.bytes + self.buf.len() as u64 > self.max_shard_bytes
        });
        if full {
            let shard = stream.open.take().expect("open shard");
            let info = close(self.store, shard, stream.bucket.clone(), self.dtype)?;
            self.shards.push(info);
        }
        if stream.open.is_none() {
            let prefix = match &stream.bucket {
                Some(b) => format!("{}/{}_{}_{:05}", self.dir, self.name, b, stream.seq),
                None => format!("{}/{}_{:05}", self.dir, self.name, stream.seq),
            };
            let prefix = prefix.trim_start_matches('/').to_string();
            stream.seq += 1;
            stream.open = Some(OpenShard {
                bin: self.store.create(&format!("{prefix}.bin"))?,
                prefix,
                ids: Vec::new(),
                lengths: Vec::new(),
                bytes: 0,
                tokens: 0,
            });
        }
        let shard = stream.open.as_mut().expect("open shard");
        shard.bin.write_all(&self.buf)?;
        shard.bytes += self.buf.len() as u64;
        shard.tokens += tokens.len() as u64;
        shard.lengths.push(tokens.len() as i32);
        serde_json::to_writer(
            &mut shard.ids,
            &serde_json::json!({"id": doc_id, "bucket": bucket, "tokens": tokens.len()}),
        )?;
        shard.ids.push(b'\n');
        let t = self.buckets.entry(bucket.to_string()).or_default();
        t.documents += 1;
        t.tokens += tokens.len() as u64;
        Ok(())
    }

    /// Closes every shard and writes `manifest.json`; returns the manifest.
    pub fn finish(mut self) -> io::Result<Manifest> {
        for stream in self.streams.values_mut() {
            if let Some(shard) = stream.open.take() {
                self.shards
                    .push(close(self.store, shard, stream.bucket.clone(), self.dtype)?);
            }
        }
        self.shards.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        let manifest = Manifest {
            format: "megatron-indexed-v1".into(),
            tokenizer: self.info.name.clone(),
            vocab_size: self.info.vocab_size,
            dtype: self.dtype,
            bos: self.info.bos,
            eos: self.info.eos,
            layout: self.layout,
            documents: self.buckets.values().map(|b| b.documents).sum(),
            tokens: self.buckets.values().map(|b| b.tokens).sum(),
            buckets: self.buckets,
            languages: self.languages,
            shards: self.shards,
        };
        let json = serde_json::to_vec_pretty(&manifest)?;
        let path = if self.dir.is_empty() {
            "manifest.json".to_string()
        } else {
            format!("{}/manifest.json", self.dir)
        };
        self.store.put(&path, &json)?;
        Ok(manifest)
    }
}

fn close(
    store: &dyn Store,
    shard: OpenShard,
    bucket: Option<String>,
    dtype: Dtype,
) -> io::Result<ShardInfo> {
    let docs = shard.lengths.len();
    let doc_index: Vec<i64> = (0..=docs as i64).collect();
    let mut idx = Vec::new();
    write_index(&mut idx, dtype, &shard.lengths, &doc_index)?;
    // The .bin first, then the index: a shard whose .idx exists is complete.
    shard.bin.finish()?;
    let ids = format!("{}.ids.jsonl", shard.prefix);
    store.put(&ids, &shard.ids)?;
    store.put(&format!("{}.idx", shard.prefix), &idx)?;
    Ok(ShardInfo {
        prefix: shard.prefix,
        bucket,
        documents: docs as u64,
        tokens: shard.tokens,
        bin_bytes: shard.bytes,
        ids,
    })
}
