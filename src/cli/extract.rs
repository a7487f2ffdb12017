//! `curate extract INPUT --out preds.jsonl`: run the HTML extractor alone over a WARC or a folder
//! of `.html` / `.html.gz` files and write one JSON line `{"id", "url", "text"}` per page.
//!
//! This is how extraction quality is scored against gold sets (`extraction_bench.py
//! --predictions`): `id` is the file name without its extensions for a folder, the
//! WARC-Target-URI for a WARC (the record id when a record has none). Pages the extractor
//! drops (too large, too deep, ...) get an empty `text` and a `dropped` reason, so that every
//! page has a line. The stage settings are those of `[stages.extract]` (`--set key=value`).

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context};
use rayon::prelude::*;
use stages::extract::{ExtractConfig, Extractor};
use stages::read::{read_docs, Format, ReadEvent, ReadOptions};

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// A WARC file (.warc, .warc.gz, ...) or a folder of .html / .html.gz files.
    pub input: PathBuf,
    /// Where to write the JSON lines ("-": standard output).
    #[arg(long)]
    pub out: PathBuf,
    /// Extractor setting, as in [stages.extract]: --set markdown=true --set keep=["comments"].
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// One page to extract.
struct Page {
    id: String,
    url: String,
    html: String,
}

/// Pages are read, extracted (in parallel) and written in batches of this many, so memory
/// stays bounded whatever the input size.
const BATCH: usize = 256;

pub fn run(a: ExtractArgs) -> Result<(), CliError> {
    let extractor =
        Extractor::new(config(&a.set)?).map_err(|e| CliError::Config(format!("--set {e}")))?;
    let mut pages: Box<dyn Iterator<Item = Result<Page, CliError>>> = if a.input.is_dir() {
        Box::new(read_folder(&a.input)?)
    } else {
        Box::new(read_warc(&a.input)?)
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .map_err(|e| CliError::Failed(anyhow!("thread pool: {e}")))?;
    let mut out: Box<dyn Write> = if a.out.as_os_str() == "-" {
        Box::new(BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(BufWriter::new(
            std::fs::File::create(&a.out).with_context(|| format!("create {}", a.out.display()))?,
        ))
    };
    let mut dropped = std::collections::BTreeMap::<&str, usize>::new();
    let (mut n, mut bytes, mut secs) = (0usize, 0usize, 0f64);
    loop {
        let batch: Vec<Page> = pages.by_ref().take(BATCH).collect::<Result<_, _>>()?;
        if batch.is_empty() {
            break;
        }
        let t = Instant::now();
        let results: Vec<(String, Option<&'static str>)> = pool.install(|| {
            batch
                .par_iter()
                .map(|p| match extractor.extract(&p.html) {
                    Ok(r) => (r.extraction.text, None),
                    Err(f) => (String::new(), Some(f.reason())),
                })
                .collect()
        });
        secs += t.elapsed().as_secs_f64();
        for (p, (text, reason)) in batch.iter().zip(&results) {
            let mut v = serde_json::json!({"id": p.id, "url": p.url, "text": text});
            if let Some(r) = reason {
                v["dropped"] = serde_json::Value::from(*r);
                *dropped.entry(r).or_default() += 1;
            }
            serde_json::to_writer(&mut out, &v).map_err(|e| CliError::Failed(e.into()))?;
            out.write_all(b"\n").context("write")?;
            n += 1;
            bytes += p.html.len();
        }
    }
    out.flush().context("write")?;
    eprintln!(
        "extract: {n} pages ({:.1} MB of HTML) extracted in {secs:.2} s ({:.0} pages/s on {} threads); dropped: {dropped:?}",
        bytes as f64 / 1e6,
        n as f64 / secs.max(1e-9),
        pool.current_num_threads(),
    );
    Ok(())
}

/// Builds the stage config from `--set key=value` pairs (values in TOML syntax; bare words are
/// strings).
fn config(set: &[String]) -> Result<ExtractConfig, CliError> {
    let mut table = toml::Table::new();
    for kv in set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| CliError::Config(format!("--set {kv}: expected KEY=VALUE")))?;
        let value = format!("v = {v}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.to_string()));
        table.insert(k.trim().to_string(), value);
    }
    stages::config::parse_table(&table).map_err(|e| CliError::Config(format!("--set {e}")))
}

/// The `.html` / `.htm` files of a folder (optionally gzip-compressed), sorted by name.
fn read_folder(dir: &Path) -> Result<impl Iterator<Item = Result<Page, CliError>>, CliError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_lowercase());
            n.is_some_and(|n| {
                let n = n.strip_suffix(".gz").unwrap_or(&n);
                n.ends_with(".html") || n.ends_with(".htm")
            })
        })
        .collect();
    files.sort();
    Ok(files.into_iter().map(|f| {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = name.split('.').next().unwrap_or(&name).to_string();
        let raw = std::fs::read(&f).with_context(|| format!("read {}", f.display()))?;
        let body = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut v = Vec::new();
            if let Err(e) = flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut v) {
                eprintln!(
                    "extract: {}: bad gzip ({e}); keeping what decoded",
                    f.display()
                );
            }
            v
        } else {
            raw
        };
        let html = stages::read::charset::decode_html(&body, None, "").text;
        Ok(Page {
            id,
            url: String::new(),
            html,
        })
    }))
}

/// The HTML response records of a WARC, decoded by the WARC reader (records without HTML are
/// skipped, as the pipeline's reader skips them).
fn read_warc(path: &Path) -> Result<impl Iterator<Item = Result<Page, CliError>>, CliError> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let source: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
    let opts = ReadOptions {
        max_record_bytes: usize::MAX,
        ..ReadOptions::default()
    };
    Ok(
        read_docs(Format::Warc, source, Box::new(file), 0, None, &opts).filter_map(|ev| match ev {
            ReadEvent::Doc(d) => {
                let html = d.html?;
                let id = if d.url.is_empty() {
                    d.id
                } else {
                    d.url.clone()
                };
                Some(Ok(Page {
                    id,
                    url: d.url,
                    html,
                }))
            }
            ReadEvent::Skip { .. } => None,
        }),
    )
}
