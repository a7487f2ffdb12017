//! Accounting: documents and bytes in and out of each stage, drops by reason, time.
//!
//! Every stage is counted by the runner through the same [`StageStats`], so that the invariant
//! `docs_in = docs_out + sum(dropped)` holds everywhere and is checked by tests. Per-partition
//! stats are written as JSON and merged per run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts of one stage (over one partition, or merged over a run).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub name: String,
    pub docs_in: u64,
    pub docs_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Documents dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Documents that failed a check but were kept because the stage runs in tag mode.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub flagged: BTreeMap<String, u64>,
    /// Named counters (lines removed, PII matches, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    pub seconds: f64,
}

impl StageStats {
    pub fn new(name: impl Into<String>) -> Self {
        StageStats {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// `docs_in == docs_out + sum(dropped)`.
    pub fn balanced(&self) -> bool {
        self.docs_in == self.docs_out + self.dropped_total()
    }

    pub fn drop(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_string()).or_default() += 1;
    }

    pub fn count(&mut self, counter: &str, n: u64) {
        *self.counters.entry(counter.to_string()).or_default() += n;
    }

    pub fn merge(&mut self, o: &StageStats) {
        self.docs_in += o.docs_in;
        self.docs_out += o.docs_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        for (k, v) in &o.dropped {
            *self.dropped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.flagged {
            *self.flagged.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        self.seconds += o.seconds;
    }
}

/// What a global step task reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub name: String,
    pub task: usize,
    /// Named counters (pairs emitted, clusters, records merged, bytes spilled, ...).
    pub counters: BTreeMap<String, u64>,
    pub seconds: f64,
    /// Peak resident memory of the process during the task, when measured.
    #[serde(default)]
    pub peak_rss_bytes: u64,
}

impl StepStats {
    pub fn new(name: impl Into<String>, task: usize) -> Self {
        StepStats {
            name: name.into(),
            task,
            ..Default::default()
        }
    }
    pub fn count(&mut self, counter: &str, n: u64) {
        *self.counters.entry(counter.to_string()).or_default() += n;
    }
}
