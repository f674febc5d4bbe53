//! `blob-inspect dump`: a value's logical bytes, to stdout or a file. Every frame is checked
//! before its bytes are written, and the whole-value CRC at the end.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ringblob_engine::format::record::{RecordHeader, RECORD_HEADER_LEN};
use ringblob_engine::io::{read_up_to, DeviceFile};
use ringblob_engine::Key;
use serde::Serialize;

use super::catalog::Catalog;
use super::cli::DumpArgs;
use super::progress::Progress;
use super::replay::{Replay, State};
use super::rofile::ReadOnlyFile;
use super::source::{BlobRef, Target};
use super::value::{Depth, Place, ValueReader};
use super::{Corruption, Status};

/// The `--json` line describing what was written.
#[derive(Debug, Serialize)]
struct Line<'a> {
    file: &'a str,
    offset: u64,
    key: String,
    column: u16,
    value_size: u64,
    bytes_written: u64,
    output: Option<String>,
}

pub fn run(args: &DumpArgs, json: bool) -> Result<Status> {
    let target = Target::resolve(&args.path)?;
    let output = check_output(args.output.as_deref(), &target.root)?;
    let (blob, offset, rest) = match args.offset {
        Some(offset) => (pick_blob(&target, args.blob)?, offset, Status::Healthy),
        None => {
            let key = match (&args.key, args.id) {
                (Some(name), _) => Key::from_name(args.namespace.as_bytes(), name.as_bytes()),
                (None, Some(id)) => id,
                (None, None) => bail!("one of --key, --id or --offset is needed"),
            };
            find_live(target, key, args.column.unwrap_or(0))?
        }
    };
    let status = dump_record(&blob, offset, args.column, output.as_deref(), json)?;
    Ok(status.max(rest))
}

/// Refuses an output file inside the data directory: the tool never writes there.
fn check_output(output: Option<&Path>, root: &Path) -> Result<Option<PathBuf>> {
    let Some(out) = output else { return Ok(None) };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let parent = parent
        .canonicalize()
        .with_context(|| format!("output directory {}", parent.display()))?;
    let root = root
        .canonicalize()
        .with_context(|| format!("data directory {}", root.display()))?;
    if parent == root {
        bail!(
            "refusing to write {} inside the data directory",
            out.display()
        );
    }
    Ok(Some(out.to_path_buf()))
}

/// The blob `--offset` refers to: PATH itself, or `--blob ID` in a directory.
fn pick_blob(target: &Target, id: Option<u32>) -> Result<BlobRef> {
    if target.single_file {
        if let Some(b) = target.blobs.first() {
            return Ok(b.clone());
        }
    }
    let Some(id) = id else {
        bail!("--offset needs PATH to be a blob file, or --blob ID with a data directory");
    };
    match target.blobs.iter().find(|b| b.id == Some(id)) {
        Some(b) => Ok(b.clone()),
        None => bail!("no blob {id} in {}", target.root.display()),
    }
}

/// The newest record of `key`'s `column`, which must be a value; also whether the scan
/// found damage.
fn find_live(target: Target, key: Key, column: u16) -> Result<(BlobRef, u64, Status)> {
    let catalog = Catalog::build(target, Depth::Frames, &Progress::hidden())?;
    let replay = Replay::run(&catalog.blobs);
    let Some(pos) = replay.newest(&key, column) else {
        bail!("key {key} column {column} not found");
    };
    let (report, row) = catalog
        .blobs
        .get(pos.0)
        .and_then(|b| b.scan.rows.get(pos.1).map(|r| (b, r)))
        .context("replay names a record the scan does not have")?;
    if replay.state(pos) != Some(State::Live) {
        bail!(
            "key {key} column {column} was removed: its newest record ({} offset {}) is a \
             tombstone",
            report.blob.file.name,
            row.offset
        );
    }
    let status = catalog.status();
    if status != Status::Healthy {
        let n = catalog.problems().count();
        eprintln!(
            "warning: {n} problem(s) in {}; a newer record of this key may be among the \
             damaged ones (run `blob-inspect verify`)",
            catalog.target.root.display()
        );
    }
    Ok((report.blob.clone(), row.offset, status))
}

/// Reads and checks the header of the record at `offset`.
fn header_at(file: &ReadOnlyFile, blob: &BlobRef, offset: u64) -> Result<RecordHeader> {
    let name = &blob.file.name;
    let len = file.len().with_context(|| format!("stat {name}"))?;
    if offset >= len {
        bail!("offset {offset} is past the end of {name} ({len} bytes)");
    }
    let mut head = [0u8; RECORD_HEADER_LEN];
    let n = read_up_to(file, &mut head, offset).with_context(|| format!("read {name}"))?;
    let h = RecordHeader::decode(head.get(..n).unwrap_or(&[]), blob.id.unwrap_or(0), offset)
        .map_err(|e| {
            Corruption(format!(
                "{name}: no valid record at offset {offset} (is it the start of a record? \
                 `blob-inspect list` shows record offsets): {e}"
            ))
        })?;
    if offset + h.record_len() > len {
        let end = offset + h.record_len();
        let msg = format!("{name}: record at {offset} ends at {end}, past the end ({len})");
        return Err(Corruption(msg).into());
    }
    Ok(h)
}

fn dump_record(
    blob: &BlobRef,
    offset: u64,
    column: Option<u16>,
    output: Option<&Path>,
    json: bool,
) -> Result<Status> {
    let name = blob.file.name.as_str();
    let file = ReadOnlyFile::open(&blob.file.path)
        .with_context(|| format!("open {}", blob.file.path.display()))?;
    let h = header_at(&file, blob, offset)?;
    if h.is_tombstone() {
        bail!(
            "{name} offset {offset} is a tombstone of key {}: no value",
            h.key
        );
    }
    if let Some(c) = column.filter(|c| *c != h.column) {
        bail!("{name} offset {offset} holds column {}, not {c}", h.column);
    }
    let written = write_value(&file, blob, offset, &h, output)?;
    let line = Line {
        file: name,
        offset,
        key: h.key.to_hex(),
        column: h.column,
        value_size: h.value_len,
        bytes_written: written,
        output: output.map(|p| p.display().to_string()),
    };
    if json {
        let s = serde_json::to_string(&line)?;
        match output {
            Some(_) => println!("{s}"),
            None => eprintln!("{s}"),
        }
    }
    Ok(Status::Healthy)
}

/// Streams the value to `output` (stdout when `None`); returns the bytes written. On damage
/// the partial output file is removed.
fn write_value(
    file: &ReadOnlyFile,
    blob: &BlobRef,
    offset: u64,
    h: &RecordHeader,
    output: Option<&Path>,
) -> Result<u64> {
    let mut sink: Box<dyn Write> = match output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let place = Place {
        file,
        name: &blob.file.name,
        blob: blob.id.unwrap_or(0),
        offset,
    };
    let mut written = 0u64;
    let r = ValueReader::new().check(place, h, Depth::Value, &mut |b: &[u8]| {
        written += b.len() as u64;
        sink.write_all(b)
    });
    let flushed = sink.flush();
    drop(sink);
    match r {
        Ok(()) => {
            flushed.context("write output")?;
            Ok(written)
        }
        Err(e) if e.is_corruption() => {
            if let Some(p) = output {
                let _ = fs::remove_file(p);
            }
            let name = &blob.file.name;
            Err(Corruption(format!("{name} offset {offset}: value is damaged: {e}")).into())
        }
        Err(e) => Err(e).context("dump"),
    }
}
