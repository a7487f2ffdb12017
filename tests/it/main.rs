//! Integration tests of the `curate` binary and engine, one binary split by topic.
//!
//! They use real files, real processes (the built `curate` binary), a real S3-compatible server
//! (moto, started on 127.0.0.1) and real data from `../shared` when present; tests that need
//! something absent print why and return.

mod classify;
mod common;
mod config;
mod dedup;
mod extract;
mod faults;
mod heuristics;
mod history;
mod mix;
mod mix_languages;
mod nightly;
mod onnx;
mod parquet_input;
mod quickstart;
mod report;
mod runner;
mod s3;
mod safety;
mod shards;
mod slurm;
mod stored;
