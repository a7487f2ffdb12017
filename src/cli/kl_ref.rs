//! `curate kl-ref build`: counts a reference corpus into a token distribution for `filter.kl`.
//!
//! Inputs are paths, globs, folders or `s3://` prefixes; each file is read by its format
//! (WARC/WET, JSONL, Parquet by extension; anything else as plain text, one document per
//! line, compressed or not). Tokens are the shared word view, so the reference counts exactly
//! what the stage will score.

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
    /// The reference file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Buckets are 2^bits (8..=26); the file takes 4 * 2^bits bytes.
    #[arg(long, default_value_t = 20)]
    pub bits: u32,
    /// Additive smoothing constant stored with the counts.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// JSONL/Parquet field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
}

pub fn run(a: KlRefArgs) -> Result<(), CliError> {
    match a.command {
        KlRefCommand::Build(b) => build(b),
    }
}

/// Counts one input file.
fn count_file(
    uri: &str,
    bits: u32,
    alpha: f64,
    opts: &ReadOptions,
    cfg: &StorageSection,
) -> anyhow::Result<(KlReference, u64)> {
    let mut r = KlReference::new(bits, alpha);
    let mut skipped = 0u64;
    let mut add = |e: ReadEvent| match e {
        ReadEvent::Doc(d) => r.add(&d),
        ReadEvent::Skip { .. } => skipped += 1,
    };
    match Format::from_path(uri) {
        Some(Format::Parquet) => {
            for e in crate::io::input_parquet::read(uri, cfg, opts)? {
                add(e);
            }
        }
        Some(f) => {
            let input = crate::storage::open_read(uri, 0, cfg).with_context(|| uri.to_string())?;
            for e in stages::read::read_docs(f, Arc::from(uri), input, 0, None, opts) {
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
    Ok((r, skipped))
}

fn build(a: BuildArgs) -> Result<(), CliError> {
    if !(8..=26).contains(&a.bits) {
        return Err(CliError::Config(format!(
            "--bits {}: expected 8..=26",
            a.bits
        )));
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
    // Files in parallel; counts are sums, so the result does not depend on the order.
    let parts: Vec<anyhow::Result<(KlReference, u64)>> = inputs
        .par_iter()
        .map(|o| count_file(&o.uri, a.bits, a.alpha, &opts, &cfg))
        .collect();
    let mut total = KlReference::new(a.bits, a.alpha);
    let mut skipped = 0;
    for p in parts {
        let (r, s) = p.map_err(CliError::Failed)?;
        total.merge(&r);
        skipped += s;
    }
    if total.total == 0 {
        return Err(CliError::Failed(anyhow!("no tokens in the inputs")));
    }
    let tmp = a.out.with_extension("tmp");
    let f = std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?;
    let mut w = std::io::BufWriter::new(f);
    total
        .write(&mut w)
        .with_context(|| tmp.display().to_string())?;
    std::io::Write::flush(&mut w).with_context(|| tmp.display().to_string())?;
    drop(w);
    std::fs::rename(&tmp, &a.out).with_context(|| a.out.display().to_string())?;
    let used = total.counts.iter().filter(|&&c| c > 0).count();
    eprintln!(
        "{}: {} files, {} documents, {} tokens, {used} of {} buckets used, {skipped} records skipped, {:.1} s",
        a.out.display(),
        inputs.len(),
        total.docs,
        total.total,
        total.counts.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
