//! The pipeline file as written: TOML sections deserialized strictly (unknown keys rejected).
//!
//! Field doc comments here are the user reference for the engine's sections; each stage
//! documents its own section in its config struct.

use serde::{Deserialize, Deserializer};

/// A byte size written as an integer or a string such as `"64MB"`, `"2 GiB"`, `"512k"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let num: f64 = num.parse().ok()?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "kib" => 1024.0,
            "m" | "mb" => 1e6,
            "mib" => 1024.0 * 1024.0,
            "g" | "gb" => 1e9,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" => 1e12,
            "tib" => 1024f64.powi(4),
            _ => return None,
        };
        (num >= 0.0).then_some(ByteSize((num * mult) as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => ByteSize::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid byte size {s:?}: expected e.g. 64MB, 2GiB or a number"
                ))
            }),
        }
    }
}

/// The whole pipeline file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub pipeline: PipelineSection,
    pub input: InputSection,
    pub output: OutputSection,
    #[serde(default)]
    pub executor: ExecutorSection,
    #[serde(default)]
    pub storage: StorageSection,
    /// Ordered stage sections: `[stages.NAME]`, each with an optional `type = "family.name"`
    /// (defaults to NAME) and `mode = "drop" | "tag"`.
    #[serde(default)]
    pub stages: toml::Table,
    /// Mix and tokenization (see `docs/mix.md`).
    #[serde(default)]
    pub mix: Option<toml::Table>,
    /// Slurm settings for `curate slurm`.
    #[serde(default)]
    pub slurm: SlurmSection,
    /// Run report settings.
    #[serde(default)]
    pub report: ReportSection,
    /// The dedup history shared by nightly runs (see `docs/dedup.md`).
    #[serde(default)]
    pub history: Option<HistorySection>,
}

/// `[history]`: where the dedup history of nightly runs lives.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// A local folder or an `s3://` prefix (relative paths resolve against the pipeline file).
    pub path: String,
}

/// `[report]`: what `report.html` shows.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// Example documents shown per drop reason.
    #[serde(default = "default_examples")]
    pub examples_per_reason: usize,
    /// Bins of each signal histogram.
    #[serde(default = "default_bins")]
    pub bins: usize,
}

impl Default for ReportSection {
    fn default() -> Self {
        ReportSection {
            examples_per_reason: default_examples(),
            bins: default_bins(),
        }
    }
}

fn default_examples() -> usize {
    3
}
fn default_bins() -> usize {
    30
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// A name for the run (shown in reports).
    pub name: Option<String>,
    /// Seed for every random choice (sampling, hashing seeds): same seed, same output.
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSection {
    /// Input files: local paths, globs (`data/*.warc.gz`), `s3://bucket/prefix` (every object
    /// under it) or `s3://bucket/key`. Relative paths resolve against the pipeline file's folder.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A Common Crawl listing file (`warc.paths.gz`: one key per line), resolved against
    /// `base_uri`. Local path or URI.
    pub listing: Option<String>,
    /// Base URI for listing keys, e.g. `s3://commoncrawl/`.
    pub base_uri: Option<String>,
    /// Use only the first N files of the listing or paths (after sorting).
    pub limit_files: Option<usize>,
    /// `warc`, `wet`, `jsonl` or `parquet`; guessed from file names when absent.
    pub format: Option<stages::read::Format>,
    /// Files larger than this are split into byte-range partitions (uncompressed JSONL, plain
    /// or per-record-gzip WARC).
    #[serde(default = "default_partition_bytes")]
    pub partition_bytes: ByteSize,
    /// Records larger than this are skipped as `too_large`.
    #[serde(default = "default_max_record")]
    pub max_record_bytes: ByteSize,
    /// JSONL/Parquet field names.
    #[serde(default = "default_text")]
    pub text_field: String,
    #[serde(default = "default_id")]
    pub id_field: String,
    #[serde(default = "default_url")]
    pub url_field: String,
    /// Parquet: the crawl date column (timestamp, date, integer seconds or an ISO-8601
    /// string). Default: the first of `crawl_date`, `date`, `timestamp` in the file.
    pub date_field: Option<String>,
    /// Parquet: the columns kept as document metadata (only these are read besides the
    /// mapped ones). Default: every column other than text, id and url.
    pub metadata_fields: Option<Vec<String>>,
}

fn default_partition_bytes() -> ByteSize {
    ByteSize(256 << 20)
}
fn default_max_record() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_text() -> String {
    "text".into()
}
fn default_id() -> String {
    "id".into()
}
fn default_url() -> String {
    "url".into()
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Parquet,
    Jsonl,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// Output folder or `s3://bucket/prefix`. Relative paths resolve against the pipeline
    /// file's folder.
    pub path: String,
    /// `parquet` (zstd, one signal column per signal) or `jsonl` (zstd-compressed lines).
    #[serde(default)]
    pub format: OutputFormat,
    /// Also write dropped documents with their reasons to `dropped/`.
    #[serde(default = "yes")]
    pub write_dropped: bool,
    /// zstd level of the outputs.
    #[serde(default = "default_level")]
    pub compression_level: i32,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group")]
    pub row_group_rows: usize,
}

fn yes() -> bool {
    true
}
fn default_level() -> i32 {
    3
}
fn default_row_group() -> usize {
    8192
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// Worker threads (0: one per core).
    #[serde(default)]
    pub threads: usize,
    /// Documents per batch handed to the stages.
    #[serde(default = "default_batch")]
    pub batch_docs: usize,
    /// Batches read ahead per partition (bounded queue between reader and workers).
    #[serde(default = "default_queue")]
    pub queue_batches: usize,
    /// Memory budget of global steps (sorts and merges spill to disk above it).
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    /// Local scratch folder for spills and uploads (default: the system temp folder).
    pub scratch: Option<String>,
    /// Seconds a worker waits at a phase barrier for other workers (`--tasks N`).
    #[serde(default = "default_barrier")]
    pub barrier_timeout_s: u64,
}

impl Default for ExecutorSection {
    fn default() -> Self {
        ExecutorSection {
            threads: 0,
            batch_docs: default_batch(),
            queue_batches: default_queue(),
            memory: default_memory(),
            scratch: None,
            barrier_timeout_s: default_barrier(),
        }
    }
}

fn default_batch() -> usize {
    256
}
fn default_queue() -> usize {
    2
}
fn default_memory() -> ByteSize {
    ByteSize(2 << 30)
}
fn default_barrier() -> u64 {
    24 * 3600
}

/// Object storage settings; unset values come from the usual AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow plain-HTTP endpoints (local S3-compatible servers).
    pub allow_http: Option<bool>,
    /// Virtual-hosted-style requests (`bucket.endpoint`) instead of path style.
    pub virtual_hosted_style: Option<bool>,
    /// Retries per request on throttling, 5xx and dropped connections.
    pub max_retries: Option<usize>,
    /// Give up retrying a request after this many seconds.
    pub retry_timeout_s: Option<u64>,
    /// Part size of multipart uploads.
    pub multipart_part_size: Option<ByteSize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("64MB"), Some(ByteSize(64_000_000)));
        assert_eq!(ByteSize::parse("2 GiB"), Some(ByteSize(2 << 30)));
        assert_eq!(ByteSize::parse("512"), Some(ByteSize(512)));
        assert_eq!(ByteSize::parse("1.5k"), Some(ByteSize(1500)));
        assert_eq!(ByteSize::parse("lots"), None);
    }
}

/// `[slurm]`: how `curate slurm` submits a run as job arrays, one per phase.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    /// Slurm partition (default: the cluster's default partition).
    pub partition: Option<String>,
    /// Account to charge.
    pub account: Option<String>,
    /// CPUs per array task (also the worker's thread count).
    #[serde(default = "default_cpus")]
    pub cpus_per_task: usize,
    /// Memory per array task, in Slurm's syntax (`4G`, `500M`).
    #[serde(default = "default_mem")]
    pub mem: String,
    /// Time limit per array task (`HH:MM:SS` or `D-HH:MM:SS`).
    #[serde(default = "default_time")]
    pub time: String,
    /// Array tasks (workers) per phase; each takes every N-th partition or task.
    #[serde(default = "default_array")]
    pub array_size: usize,
    /// At most this many array tasks run at once (`%N` of `--array`).
    pub max_concurrent: Option<usize>,
    /// `--wait`: how many times failed phases are resubmitted (completed units are skipped).
    #[serde(default = "default_retries")]
    pub retries: usize,
    /// Folder for job scripts and logs (default: `slurm/` under a local output, else the
    /// system temp folder).
    pub log_dir: Option<String>,
    /// The curate binary the jobs run (default: the one that submits).
    pub curate: Option<String>,
    /// Extra `sbatch` arguments, e.g. `["--qos=high"]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

impl Default for SlurmSection {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

fn default_cpus() -> usize {
    2
}
fn default_mem() -> String {
    "4G".into()
}
fn default_time() -> String {
    "04:00:00".into()
}
fn default_array() -> usize {
    4
}
fn default_retries() -> usize {
    2
}
