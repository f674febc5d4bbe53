//! `blob-inspect`: a read-only inspector for ringblob data directories and blob files.
//!
//! It tells the truth about what is on disk, especially when files are damaged: every record
//! is checked, damage is reported with a stable kind, file and offset, and the scan
//! resynchronises after a bad record so the rest of the file is still read. Files are opened
//! read-only ([`rofile::ReadOnlyFile`] refuses writes); nothing is created, truncated or
//! locked.
//!
//! Layout: [`source`] resolves PATH, [`scan`] reads one blob (with [`value`] checking each
//! record's frames), [`index_check`] compares an index file with its blob, [`sorted_check`]
//! a sorted index with its blob, [`catalog`] does
//! all of it for a target, [`replay`] decides which records are live, and one module per
//! command prints the result.

pub mod catalog;
pub mod classify;
pub mod cli;
pub mod dump;
pub mod index_check;
pub mod list;
pub mod out;
pub mod prefetch;
pub mod problem;
pub mod progress;
pub mod replay;
pub mod rofile;
pub mod scan;
pub mod side_files;
pub mod sorted_check;
pub mod source;
pub mod summary;
mod summary_text;
pub mod time;
pub mod value;
pub mod verify;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use catalog::Catalog;
use cli::{Cli, Command};
use out::Out;
use progress::Progress;
use source::Target;
use value::Depth;

/// The exit status: the worst of what was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything read is healthy.
    Healthy = 0,
    /// Corruption was found.
    Corrupt = 1,
    /// Usage or IO error, or a file that cannot be interpreted.
    Failed = 2,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Corrupt => "corrupt",
            Status::Failed => "unreadable",
        }
    }
}

/// An error that means damage (exit status 1), as opposed to usage or IO (exit status 2).
#[derive(Debug)]
pub struct Corruption(pub String);

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Corruption {}

/// Parses the command line, runs the command and turns the outcome into the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(status) => ExitCode::from(status as u8),
        Err(e) => {
            eprintln!("blob-inspect: {e:#}");
            let corrupt = e.downcast_ref::<Corruption>().is_some();
            ExitCode::from(if corrupt { 1 } else { 2 })
        }
    }
}

/// Runs one command.
pub fn run(cli: &Cli) -> Result<Status> {
    let json = cli.json;
    let mut out = Out::new();
    let status = match &cli.command {
        Command::Summary(a) => {
            let catalog = Catalog::build(
                Target::resolve(&a.path)?,
                Depth::Frames,
                &Progress::hidden(),
            )?;
            summary::run(&catalog, json, &mut out)?
        }
        Command::List(a) => {
            let catalog = Catalog::build(
                Target::resolve(&a.path)?,
                Depth::Frames,
                &Progress::hidden(),
            )?;
            list::run(&catalog, a.limit, json, &mut out)?
        }
        Command::Verify(a) => {
            let target = Target::resolve(&a.path)?;
            let progress = Progress::new(target.total_bytes(), true);
            let catalog = Catalog::build(target, Depth::Value, &progress)?;
            verify::run(&catalog, json, &mut out)?
        }
        Command::Dump(a) => dump::run(a, json)?,
    };
    out.flush()?;
    Ok(status)
}
