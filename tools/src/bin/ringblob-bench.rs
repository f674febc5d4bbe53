//! `ringblob-bench`: load generator for ringblob. See `ringblob-bench engine --help` and `ringblob-bench remote --help`.

use clap::Parser;
use ringblob_tools::bench::cli::{Cli, Command};
use ringblob_tools::bench::run::run_engine;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    ringblob_tools::alloc_tuning::fix_mmap_threshold();
    // Logs go to stderr so stdout stays clean for `--json`.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Engine(args) => run_engine(&args),
        Command::Remote(args) => ringblob_tools::bench::remote::run_remote(&args),
        Command::ReopenProbe(args) => ringblob_tools::bench::reopen::run_probe(&args),
    }
}
