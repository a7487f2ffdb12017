//! `curate kl-ref build`: counts a reference corpus into a token distribution for `filter.kl`.
//!
//! Inputs are paths, globs, folders or `s3://` prefixes; each file is read by its format
//! (WARC/WET, JSONL, Parquet by extension; anything else as plain text, one document per
//! line, compressed or not). Tokens are the shared word view, so the reference counts exactly
//! what the stage will score.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use rayon::prelude::*;
use stages::filter::kl::KlReference;
use stages::read::{Format, ReadEvent, ReadOptions};
use stages::Document;

use super::CliError;
use crate::config::raw::StorageSection;

#[derive(Debug, clap::Args)]
pub struct KlRefArgs {
    #[command(subcommand)]
    pub command: KlRefCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KlRefCommand {
    /// Build a reference distribution from text sources.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Input files, globs, folders or s3:// prefixes (repeatable).
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<String>,
    /// The reference file to write (with --by-language: the folder of `<lang>.bin` files).
    #[arg(long)]
    pub out: PathBuf,
    /// Buckets are 2^bits (8..=26); a file takes 4 * 2^bits bytes. Default 20, or 16 per
    /// language (a language's reference text is smaller).
    #[arg(long)]
    pub bits: Option<u32>,
    /// Additive smoothing constant stored with the counts.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// JSONL/Parquet field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// One reference per language (`--out` is a folder), for `filter.kl` with `per_language`.
    #[arg(long)]
    pub by_language: bool,
    /// The field naming a document's language (else its `lang` signal; documents with
    /// neither are skipped).
    #[arg(long, default_value = "lang")]
    pub lang_field: String,
    /// Documents of at least this many tokens set a reference's `max_kl` (the stage's
    /// `min_tokens`: shorter ones are not judged).
    #[arg(long, default_value_t = 100)]
    pub min_tokens: usize,
    /// --by-language: languages with fewer such documents get no reference (pages in them
    /// are judged neutral).
    #[arg(long, default_value_t = 10)]
    pub min_docs: usize,
}

pub fn run(a: KlRefArgs) -> Result<(), CliError> {
    match a.command {
        KlRefCommand::Build(b) => build(b),
    }
}

/// Calls `f` with every document of one input file; returns the records skipped.
fn for_each_doc(
    uri: &str,
    opts: &ReadOptions,
    cfg: &StorageSection,
    mut f: impl FnMut(Document),
) -> anyhow::Result<u64> {
    let mut skipped = 0u64;
    let mut add = |e: ReadEvent| match e {
        ReadEvent::Doc(d) => f(d),
        ReadEvent::Skip { .. } => skipped += 1,
    };
    match Format::from_path(uri) {
        Some(Format::Parquet) => {
            for e in crate::io::input_parquet::read(uri, cfg, opts)? {
                add(e);
            }
        }
        Some(fmt) => {
            let input = crate::storage::open_read(uri, 0, cfg).with_context(|| uri.to_string())?;
            for e in stages::read::read_docs(fmt, Arc::from(uri), input, 0, None, opts) {
                add(e);
            }
        }
        None => {
            let input = crate::storage::open_read(uri, 0, cfg).with_context(|| uri.to_string())?;
            let input = stages::read::decompress(input).with_context(|| uri.to_string())?;
            for line in std::io::BufReader::new(input).split(b'\n') {
                let line = line.with_context(|| uri.to_string())?;
                let text = String::from_utf8_lossy(&line);
                if !text.trim().is_empty() {
                    add(ReadEvent::Doc(Document::new("", text.into_owned())));
                }
            }
        }
    }
    Ok(skipped)
}

/// Which reference a document counts in: `""` for the single reference, else its language
/// (`None`: skipped).
fn group_of(d: &Document, a: &BuildArgs) -> Option<String> {
    if !a.by_language {
        return Some(String::new());
    }
    let lang = d
        .metadata
        .get(&a.lang_field)
        .map(String::as_str)
        .or_else(|| d.lang())?;
    // The file name is the code: only plain codes (`de`, `zh-Hant`, `sr_Latn`).
    stages::lang_rules::is_lang_code(lang).then(|| lang.to_string())
}

type Groups = BTreeMap<String, KlReference>;

fn build(a: BuildArgs) -> Result<(), CliError> {
    let bits = a.bits.unwrap_or(if a.by_language { 16 } else { 20 });
    if !(8..=26).contains(&bits) {
        return Err(CliError::Config(format!("--bits {bits}: expected 8..=26")));
    }
    if a.alpha.is_nan() || a.alpha <= 0.0 {
        return Err(CliError::Config(format!(
            "--alpha {}: expected > 0",
            a.alpha
        )));
    }
    let cfg = StorageSection::default();
    let inputs =
        crate::storage::list_inputs(&a.input, &cfg).map_err(|e| CliError::Config(e.to_string()))?;
    let opts = ReadOptions {
        text_field: a.text_field.clone(),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    // Pass 1, files in parallel, merged as they finish (memory: a few files' counts at a
    // time, not every file's); counts are sums, so the result does not depend on the order.
    let (mut groups, skipped, unlabelled) = inputs
        .par_iter()
        .map(|o| {
            let (mut g, mut unlabelled) = (Groups::new(), 0u64);
            let skipped = for_each_doc(&o.uri, &opts, &cfg, |d| match group_of(&d, &a) {
                Some(k) => g
                    .entry(k)
                    .or_insert_with(|| KlReference::new(bits, a.alpha))
                    .add(&d),
                None => unlabelled += 1,
            })?;
            Ok((g, skipped, unlabelled))
        })
        .try_reduce(
            || (Groups::new(), 0, 0),
            |(mut acc, s1, u1), (g, s2, u2)| {
                for (k, r) in g {
                    match acc.get_mut(&k) {
                        Some(t) => t.merge(&r),
                        None => {
                            acc.insert(k, r);
                        }
                    }
                }
                Ok((acc, s1 + s2, u1 + u2))
            },
        )
        .map_err(CliError::Failed)?;
    groups.retain(|_, r| r.total > 0);
    if groups.is_empty() {
        return Err(CliError::Failed(anyhow!("no tokens in the inputs")));
    }
    // Pass 2: each document's leave-one-out KL against its own reference, for the threshold
    // (kept per document: 8 bytes each; the text is not kept).
    let parts: Vec<anyhow::Result<BTreeMap<String, Vec<f64>>>> = inputs
        .par_iter()
        .map(|o| {
            let mut kls: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for_each_doc(&o.uri, &opts, &cfg, |d| {
                if d.word_hashes().len() < a.min_tokens {
                    return;
                }
                if let Some((k, r)) = group_of(&d, &a).and_then(|k| groups.get_key_value(&k)) {
                    kls.entry(k.clone())
                        .or_default()
                        .push(r.leave_one_out_kl(&d));
                }
            })?;
            Ok(kls)
        })
        .collect();
    let mut kls: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for p in parts {
        for (k, v) in p.map_err(CliError::Failed)? {
            kls.entry(k).or_default().extend(v);
        }
    }
    if a.by_language {
        std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    }
    let mut written = 0;
    for (k, r) in &mut groups {
        let judged = kls
            .get_mut(k.as_str())
            .map(std::mem::take)
            .unwrap_or_default();
        if a.by_language && judged.len() < a.min_docs {
            eprintln!(
                "{k}: {} documents of {}+ tokens (< --min-docs {}): no reference",
                judged.len(),
                a.min_tokens,
                a.min_docs
            );
            continue;
        }
        r.max_kl = threshold(judged.clone());
        let path = if a.by_language {
            a.out.join(format!("{k}.bin"))
        } else {
            a.out.clone()
        };
        write_atomic(r, &path)?;
        written += 1;
        let used = r.counts.iter().filter(|&&c| c > 0).count();
        eprintln!(
            "{}: {} documents, {} tokens, {used} of {} buckets used; leave-one-out KL of its {} documents of {}+ tokens: median {:.2}, 95% (max_kl) {:.2}",
            path.display(),
            r.docs,
            r.total,
            r.counts.len(),
            judged.len(),
            a.min_tokens,
            quantile(judged, 0.5),
            r.max_kl,
        );
    }
    eprintln!(
        "{written} reference(s) from {} files, {skipped} records skipped, {unlabelled} without a language, {:.1} s",
        inputs.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where reference text sits: the 95% quantile of its documents' leave-one-out KL, rounded
/// up to 2 decimals (NaN when no document was long enough to judge).
fn threshold(kls: Vec<f64>) -> f64 {
    if kls.is_empty() {
        return f64::NAN;
    }
    (quantile(kls, 0.95) * 100.0).ceil() / 100.0
}

/// The `q` quantile (NaN for none).
fn quantile(v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    stages::filter::lang_derive::quantile(&v, q)
}

fn write_atomic(r: &KlReference, path: &std::path::Path) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    let f = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
    let mut w = std::io::BufWriter::new(f);
    r.write(&mut w).with_context(|| tmp.display().to_string())?;
    std::io::Write::flush(&mut w).with_context(|| tmp.display().to_string())?;
    drop(w);
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}
