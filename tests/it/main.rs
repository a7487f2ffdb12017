//! Integration tests of the `curate` binary and engine, one binary split by topic.
//!
//! They use real files, real processes (the built `curate` binary), a real S3-compatible server
//! (moto, started on 127.0.0.1) and real data from `../shared` when present; tests that need
//! something absent print why and return.

mod common;
mod config;
mod faults;
mod mix;
mod report;
mod runner;
mod s3;
mod slurm;
