//! The `curate` binary: parses arguments, sets up logging, maps errors to exit codes.

use clap::Parser;
use curate::cli::{dispatch, Cli, CliError};

fn main() {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match dispatch(cli) {
        Ok(()) => {}
        Err(CliError::Config(msg)) => {
            eprintln!("error: {msg}");
            std::process::exit(2);
        }
        Err(CliError::Failed(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
