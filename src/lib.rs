//! # curate: the engine and CLI
//!
//! curate turns raw web crawls into a clean, deduplicated, classified, mixed and tokenized
//! pretraining corpus. This crate holds the engine; the document model, stage contracts and
//! stages live in the `stages` crate, models in `classifiers`.
//!
//! - [`config`]: the TOML pipeline as written -> a validated [`config::Plan`] (stages built,
//!   grouped into phases);
//! - [`partition`]: inputs split into partitions (files or byte ranges), the unit of work and
//!   of commit;
//! - [`runner`]: executes phases over partitions with rayon, commits outputs atomically with
//!   completion markers, resumes after a kill; `--task i --tasks N` for clusters;
//! - [`storage`]: local folders and S3 (object_store) for inputs and outputs;
//! - [`io`]: Parquet and JSONL.zst document files;
//! - [`stats`]: per-stage accounting merged per run;
//! - [`mix`]: training mixes selected from stored signals, tokenized into Megatron shards,
//!   and ablations;
//! - [`split`]: the labelled data sets' train/test split rule, for every trainer and bench.

pub mod cli;
pub mod config;
pub mod corpus;
pub mod fingerprint;
pub mod history;
pub mod io;
pub mod mix;
pub mod partition;
pub mod query;
pub mod report;
pub mod runner;
pub mod split;
pub mod stats;
pub mod storage;
pub mod svg;
