//! The fingerprint of a run: what decides its output, recorded in `fingerprint.json` so that a
//! run into an existing output either resumes the same run or stops before any work.
//!
//! Without it a second run into the same folder with another input or threshold would reuse
//! the first run's partition list and completion markers and report a corpus it never made.
//! The fingerprint holds:
//! - the input: a digest of the partition list (file URIs, sizes, formats, byte ranges), which
//!   is also stored in full as `partitions.json` so that a mismatch can name the files;
//! - the configuration after `--set`, less the sections that only say *how* to run (threads,
//!   memory, scratch, storage credentials, Slurm, report, mix) and the keys that name the input
//!   and output (the input is covered by the listing above);
//! - the curate version, since stage behaviour changes between versions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::partition::PartitionSpec;

/// Where the fingerprint lives in an output.
pub const FILE: &str = "fingerprint.json";

/// Format of `fingerprint.json`; a newer one is refused with a clear message.
pub const FORMAT: u32 = 1;

/// Top-level config sections that do not decide the output.
const HOW_TO_RUN: &[&str] = &["executor", "storage", "slurm", "report", "mix"];
/// Keys that name the input or output; the partition list stands for the input.
const LOCATIONS: &[(&str, &str)] = &[
    ("output", "path"),
    ("input", "paths"),
    ("input", "listing"),
    ("input", "base_uri"),
    ("input", "limit_files"),
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub format: u32,
    pub curate_version: String,
    /// xxh3-128 of the partition list as JSON.
    pub inputs_digest: String,
    pub input_files: usize,
    pub partitions: usize,
    /// The output-deciding configuration.
    pub config: Value,
}

impl Fingerprint {
    pub fn new(table: &toml::Table, partitions: &[PartitionSpec]) -> Fingerprint {
        let mut t = table.clone();
        for s in HOW_TO_RUN {
            t.remove(*s);
        }
        for (section, key) in LOCATIONS {
            if let Some(toml::Value::Table(s)) = t.get_mut(*section) {
                s.remove(*key);
            }
        }
        let mut files: Vec<&str> = partitions.iter().map(|p| p.uri.as_str()).collect();
        files.dedup();
        Fingerprint {
            format: FORMAT,
            curate_version: env!("CARGO_PKG_VERSION").into(),
            inputs_digest: digest(partitions),
            input_files: files.len(),
            partitions: partitions.len(),
            config: serde_json::to_value(&t).unwrap_or(Value::Null),
        }
    }

    /// What differs from `new` (the recorded fingerprint is `self`), one line per finding;
    /// `old_parts` is the recorded partition list when readable.
    pub fn differences(
        &self,
        new: &Fingerprint,
        old_parts: Option<&[PartitionSpec]>,
        new_parts: &[PartitionSpec],
    ) -> Vec<String> {
        let mut out = Vec::new();
        if self.curate_version != new.curate_version {
            out.push(format!(
                "curate version: {} -> {}",
                self.curate_version, new.curate_version
            ));
        }
        let mut keys = Vec::new();
        diff_values("", &self.config, &new.config, &mut keys);
        const SHOWN: usize = 12;
        for k in keys.iter().take(SHOWN) {
            out.push(format!("config {k}"));
        }
        if keys.len() > SHOWN {
            out.push(format!("... and {} more config keys", keys.len() - SHOWN));
        }
        if self.inputs_digest != new.inputs_digest {
            out.push(match old_parts {
                Some(old) => input_diff(old, new_parts),
                None => format!(
                    "input: the partition list differs ({} files before, {} now)",
                    self.input_files, new.input_files
                ),
            });
        }
        out
    }
}

/// xxh3-128 of the partition list, hex.
pub fn digest(partitions: &[PartitionSpec]) -> String {
    let bytes = serde_json::to_vec(partitions).expect("serializable");
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes))
}

/// Names added, removed and resized input files (a few of each), or a changed split.
fn input_diff(old: &[PartitionSpec], new: &[PartitionSpec]) -> String {
    use std::collections::BTreeMap;
    let files = |ps: &[PartitionSpec]| -> BTreeMap<String, u64> {
        ps.iter().map(|p| (p.uri.clone(), p.size)).collect()
    };
    let (a, b) = (files(old), files(new));
    let added: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    let removed: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let resized: Vec<String> = a
        .iter()
        .filter_map(|(k, s)| {
            b.get(k)
                .filter(|t| *t != s)
                .map(|t| format!("{k} ({s} -> {t} bytes)"))
        })
        .collect();
    let some = |v: Vec<String>| -> String {
        let n = v.len();
        let mut s = v.into_iter().take(3).collect::<Vec<_>>().join(", ");
        if n > 3 {
            s.push_str(&format!(", ... ({n} in all)"));
        }
        s
    };
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!(
            "{} file(s) added: {}",
            added.len(),
            some(added.into_iter().cloned().collect())
        ));
    }
    if !removed.is_empty() {
        parts.push(format!(
            "{} file(s) gone: {}",
            removed.len(),
            some(removed.into_iter().cloned().collect())
        ));
    }
    if !resized.is_empty() {
        parts.push(format!(
            "{} file(s) changed size: {}",
            resized.len(),
            some(resized)
        ));
    }
    if parts.is_empty() {
        parts.push(format!(
            "the same files split differently ({} partitions before, {} now)",
            old.len(),
            new.len()
        ));
    }
    format!("input: {}", parts.join("; "))
}

/// Dotted keys whose values differ, with both values (`absent` when missing on one side).
fn diff_values(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    crate::config::key_segment(k)
                } else {
                    format!("{path}.{}", crate::config::key_segment(k))
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => diff_values(&p, u, v, out),
                    (Some(u), None) => out.push(format!("{p}: {u} -> absent")),
                    (None, Some(v)) => out.push(format!("{p}: absent -> {v}")),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!("{path}: {a} -> {b}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(files: &[(&str, u64)]) -> Vec<PartitionSpec> {
        let objs: Vec<crate::storage::InputObject> = files
            .iter()
            .map(|(u, s)| crate::storage::InputObject {
                uri: u.to_string(),
                size: *s,
            })
            .collect();
        crate::partition::split(&objs, None, 1 << 20).unwrap()
    }

    #[test]
    fn how_to_run_keys_do_not_count_and_changes_are_named() {
        let t1: toml::Table = "[input]\npaths=['a']\n[output]\npath='o'\n[executor]\nthreads=2\n[stages.len]\nmin_words=20\n".parse().unwrap();
        let t2: toml::Table = "[input]\npaths=['b']\n[output]\npath='p'\n[executor]\nthreads=8\n[stages.len]\nmin_words=20\n".parse().unwrap();
        let t3: toml::Table =
            "[input]\npaths=['a']\n[output]\npath='o'\n[stages.len]\nmin_words=30\nmax=1\n"
                .parse()
                .unwrap();
        let p = parts(&[("/d/a.jsonl", 10), ("/d/b.jsonl", 20)]);
        let f1 = Fingerprint::new(&t1, &p);
        assert_eq!(f1, Fingerprint::new(&t2, &p));
        let f3 = Fingerprint::new(&t3, &p);
        assert_eq!(
            f1.differences(&f3, Some(&p), &p),
            vec![
                "config stages.len.max: absent -> 1",
                "config stages.len.min_words: 20 -> 30"
            ]
        );
        let q = parts(&[("/d/a.jsonl", 11), ("/d/c.jsonl", 20)]);
        let fq = Fingerprint::new(&t1, &q);
        assert_eq!(
            f1.differences(&fq, Some(&p), &q),
            vec!["input: 1 file(s) added: /d/c.jsonl; 1 file(s) gone: /d/b.jsonl; 1 file(s) changed size: /d/a.jsonl (10 -> 11 bytes)"]
        );
    }
}
