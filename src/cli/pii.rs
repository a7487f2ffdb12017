//! `curate pii`: runs the PII stage alone over JSON lines `{"id", "text", ...}` and writes
//! them back with the text redacted and a `pii` object of counts per kind.
//!
//! Other fields pass through unchanged. A line that is not a JSON object with a string `text`
//! is skipped and counted (`invalid_json`, `missing_text`); the counts go to stderr. Input may
//! be compressed (gzip, zstd); the output is plain JSONL, in input order.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use rayon::prelude::*;
use stages::safety::pii::{Pii, PiiConfig, PiiKind};
use stages::Document;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct PiiArgs {
    /// Input JSONL (plain, .gz or .zst).
    pub input: PathBuf,
    /// Output JSONL.
    #[arg(long)]
    pub out: PathBuf,
    /// Kinds to redact (default: all): email, phone, ip, credit_card, iban, ssn.
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Placeholder for a kind, e.g. --placeholder email=[EMAIL] (repeatable).
    #[arg(long, value_name = "KIND=TEXT")]
    pub placeholder: Vec<String>,
    /// Count only; leave the text as it is.
    #[arg(long)]
    pub count_only: bool,
}

/// One input line: the output line and its counts, or why it was skipped.
type LineResult = Result<(String, std::collections::BTreeMap<PiiKind, usize>), &'static str>;

fn parse_kind(s: &str) -> Result<PiiKind, CliError> {
    PiiKind::ALL
        .into_iter()
        .find(|k| k.name() == s)
        .ok_or_else(|| {
            CliError::Config(format!(
                "unknown PII kind {s:?}: expected one of email, phone, ip, credit_card, iban, ssn"
            ))
        })
}

pub fn run(a: PiiArgs) -> Result<(), CliError> {
    let mut cfg = PiiConfig::default();
    if !a.types.is_empty() {
        cfg.types = a
            .types
            .iter()
            .map(|t| parse_kind(t))
            .collect::<Result<_, _>>()?;
    }
    for p in &a.placeholder {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::Config(format!("--placeholder {p:?}: expected KIND=TEXT")))?;
        cfg.placeholders.insert(parse_kind(k)?, v.to_string());
    }
    cfg.redact = !a.count_only;
    let stage = Pii::from_config("pii", cfg);
    let f = std::fs::File::open(&a.input).with_context(|| a.input.display().to_string())?;
    let input =
        stages::read::decompress(Box::new(f)).with_context(|| a.input.display().to_string())?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, input);
    let tmp = a.out.with_extension("tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| tmp.display().to_string())?,
    );
    let (mut docs, mut invalid, mut missing) = (0u64, 0u64, 0u64);
    let mut totals = std::collections::BTreeMap::<PiiKind, u64>::new();
    // Batches of lines, processed in parallel and written in order.
    loop {
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(4096);
        for _ in 0..4096 {
            let mut line = Vec::new();
            if reader
                .read_until(b'\n', &mut line)
                .with_context(|| a.input.display().to_string())?
                == 0
            {
                break;
            }
            if line.iter().any(|b| !b.is_ascii_whitespace()) {
                batch.push(line);
            }
        }
        if batch.is_empty() {
            break;
        }
        let results: Vec<LineResult> = batch
            .par_iter()
            .map(|line| {
                let mut v: serde_json::Value =
                    serde_json::from_slice(line).map_err(|_| "invalid_json")?;
                let obj = v.as_object_mut().ok_or("invalid_json")?;
                let text = obj
                    .get("text")
                    .and_then(|t| t.as_str())
                    .ok_or("missing_text")?;
                let mut doc = Document::new("", text);
                let counts = stage.apply(&mut doc);
                obj.insert("text".into(), serde_json::Value::String(doc.take_text()));
                let pii: serde_json::Map<String, serde_json::Value> = counts
                    .iter()
                    .map(|(k, n)| (k.name().to_string(), (*n).into()))
                    .collect();
                obj.insert("pii".into(), serde_json::Value::Object(pii));
                Ok((serde_json::to_string(&v).expect("serializable"), counts))
            })
            .collect();
        for r in results {
            match r {
                Ok((line, counts)) => {
                    docs += 1;
                    for (k, n) in counts {
                        *totals.entry(k).or_default() += n as u64;
                    }
                    out.write_all(line.as_bytes()).context("write")?;
                    out.write_all(b"\n").context("write")?;
                }
                Err("missing_text") => missing += 1,
                Err(_) => invalid += 1,
            }
        }
    }
    out.flush().context("write")?;
    drop(out);
    std::fs::rename(&tmp, &a.out).with_context(|| a.out.display().to_string())?;
    let found: Vec<String> = totals
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    eprintln!(
        "{docs} documents written to {}; found: {}; skipped: invalid_json {invalid}, missing_text {missing}",
        a.out.display(),
        found.join(", ")
    );
    Ok(())
}
