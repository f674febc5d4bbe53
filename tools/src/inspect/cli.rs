//! The command line: `blob-inspect (summary|list|verify|dump) PATH [options] [--json]`.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use ringblob_engine::Key;

const ABOUT: &str = "Read-only inspector for ringblob data directories and blob files.";

const LONG_ABOUT: &str = "\
Read-only inspector for ringblob data directories and blob files.

PATH is a data directory (every data-NNNNNNNN.blob, .index and .sorted file in it; LOCK, \
*.tmp and other files are ignored) or a single blob file. Files are opened read-only: blob-inspect \
never writes, truncates, creates or locks anything in PATH, so it is safe to run next to a \
live engine (the active blob may then show a half-written tail).

Every record is checked: header CRC, frame table CRC and every frame's CRC (verify also \
decompresses compressed frames and checks the whole-value CRC). After a damaged record the \
scan resynchronises on the next valid record header, so one flipped byte costs one record. \
summary, list and dump check what the engine's recovery checks (header, frame table, every \
frame's CRC); verify also decompresses and checks the whole-value CRC.

\"uncommitted\" in summary is always 0: format version 1 has no streaming writes.";

const AFTER_LONG_HELP: &str = "\
Exit status:
  0  everything read is healthy (information such as index_covers_prefix does not count)
  1  corruption was found
  2  usage error, IO error, missing PATH, or a file of an unsupported format version

Problem kinds (the \"kind\" field of --json; stable names):
  truncated_tail                 the file ends inside a record (torn or cut append)
  bad_magic                      a record should start here but the magic is wrong
  bad_header_crc                 a record header fails its CRC
  bad_frame_table_crc            a record's frame table fails its CRC
  bad_data_crc                   a stored frame fails its CRC
  bad_value_crc                  frames check out but the whole value fails value_crc (verify)
  bad_compressed_frame           a Snappy frame does not decompress to its length (verify)
  impossible_length              a header or frame table holds a length no writer produces
  bad_record_field               another header rule is broken (flags, reserved bytes)
  garbage_after_last_record      bytes after the last valid record that start no record
  bad_blob_header                the 32-byte blob header is damaged or names another blob
  unsupported_version            written by a newer format version (exit status 2)
  bad_index_file                 an index file fails its own checks or names another blob
  index_entry_points_at_nothing  an index entry names an offset where no record starts
  index_entry_mismatch           an index entry disagrees with the record it names
  record_missing_from_index      a record inside an index file's range that it does not list
  index_covers_prefix            (info) the index covers only a prefix of its blob: normal
                                 for the active (last) blob, whose index is a checkpoint
  orphan_index_file              (info) an index or sorted index file without its blob file
  bad_sorted_index               a sorted index (data-N.sorted) fails its own checks (magic,
                                 CRCs, page order, fences) or names another blob or length
  bad_remove_log                 a removes.log entry or header fails its checks: a remove
                                 the node no longer remembers
  torn_remove_log_entry          (info) a partial last removes.log entry (torn append)
  bad_watermark                  synced.pos (the synced watermark) fails its checks
  synced_bytes_lost              a blob is shorter than synced.pos says was synced
  saved_cut_tail                 (info) data-N.blob.cut-OFFSET: bytes the engine cut from a
                                 blob tail (a torn append or garbage) and kept
  bad_journal                    a key journal (data-N.journal) header or entry fails its
                                 checks
  torn_journal_entry             (info) a partial last key journal entry (torn append)

For blob damage, \"offset\" is where the damaged region starts and \"end\" where the next \
valid record (or the end of the file) is: bytes offset..end are lost. For index entries, \
\"offset\" is the entry's position in the index file and \"blob_offset\" the offset it names.";

#[derive(Debug, Parser)]
#[command(
    name = "blob-inspect",
    version = crate::VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP
)]
pub struct Cli {
    /// Print one JSON object per line instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Counts per blob file and in total: records, live, superseded, removed, bytes,
    /// compression, keys, index state.
    #[command(long_about = SUMMARY_HELP)]
    Summary(PathArgs),
    /// One line per record: offset, key, column, flags, sizes, timestamp, state.
    #[command(long_about = LIST_HELP)]
    List(ListArgs),
    /// Recompute every checksum of every record and check every index file against its
    /// blob; report each problem.
    #[command(long_about = VERIFY_HELP)]
    Verify(PathArgs),
    /// Write a value's bytes (decompressed) to stdout or a file.
    #[command(long_about = DUMP_HELP)]
    Dump(DumpArgs),
}

const SUMMARY_HELP: &str = "\
Counts per blob file and in total.

records      valid records in the file (damaged ones are counted under \"damaged\")
live         records that are the newest of their key across the whole directory (blobs \
replayed in id order, records in file order; tombstones remove) and not tombstones; when PATH \
is a single blob file only that file is replayed
superseded   values replaced by a later record of their key and column (a value or a tombstone)
removed      tombstones
uncommitted  always 0: format version 1 has no streaming (multi-part) writes, so every record \
is complete or damaged
damaged      damaged regions (see verify); bytes_damaged is their size
keys         distinct keys among the valid records
bytes_live   bytes of live records; bytes_garbage: superseded records, tombstones and damaged \
regions; bytes_reclaimable: the garbage a rewrite of this blob alone could drop (all of it but \
tombstones that still hide a value in an earlier blob)
compression_ratio  logical value bytes / stored frame bytes (null when nothing is stored)
index_*      present; sorted (false: v1 index files list records in file order); checksum_ok \
(the file passed its checks and names this blob); covered_len; entries";

const LIST_HELP: &str = "\
One line per record, in blob id and file order: file, offset, key (64 hex characters; names \
are not stored in format version 1, so \"name\" is always null), column, flags, value size \
(logical bytes), stored size (bytes on disk: header, frame table and frames), timestamp and \
state: live, superseded, removed (a tombstone) or damaged (a damaged region: its kind is \
given and its stored size is the region's length).";

const VERIFY_HELP: &str = "\
Recompute every checksum of every record (header, frame table, every frame's CRC; compressed \
frames are decompressed and the whole-value CRC is checked over the logical bytes) and check \
each index file against its blob. Each problem is reported with its file, offset, the record's \
key when its header is readable, and the reason; a last line gives the totals. A progress bar \
is drawn on stderr when stderr is a terminal.";

const DUMP_HELP: &str = "\
Write a value's bytes (decompressed) to stdout, or to FILE with -o. Every frame's CRC is \
checked before its bytes are written and the whole-value CRC at the end; on damage the exit \
status is 1 and the (incomplete) output file is removed.

--key NAME and --id HEX dump the live value of that key: the newest record of its column 0 \
(the value; --column C for another, e.g. 65534 for a name record), which must not be a \
tombstone (a removed or unknown key is an error, exit status 2). --offset N dumps the \
record at byte offset N of a blob file, superseded or not: PATH must then be a blob file, \
or a directory with --blob ID. With --json a line describing what was written goes to \
stdout (stderr when the value itself goes to stdout).";

/// A data directory or a blob file.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Data directory or blob file.
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Data directory or blob file.
    pub path: PathBuf,
    /// Print at most N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["key", "id", "offset"])))]
pub struct DumpArgs {
    /// Data directory or blob file.
    pub path: PathBuf,
    /// The key's name: the key is Key::from_name(NAMESPACE, NAME).
    #[arg(long, value_name = "NAME")]
    pub key: Option<String>,
    /// Namespace for --key (default: the empty namespace).
    #[arg(long, value_name = "NS", default_value = "", requires = "key")]
    pub namespace: String,
    /// The key as 64 hex characters.
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    pub id: Option<Key>,
    /// Byte offset of a record in a blob file (decimal, or hex with 0x).
    #[arg(long, value_name = "N", value_parser = parse_offset)]
    pub offset: Option<u64>,
    /// With --offset and a directory PATH: the blob id.
    #[arg(long, value_name = "ID", requires = "offset")]
    pub blob: Option<u32>,
    /// With --key/--id: the column to dump [default: 0, the value]; with --offset: only
    /// dump the record if it is of this column.
    #[arg(long, value_name = "C")]
    pub column: Option<u16>,
    /// Write the value to FILE instead of stdout (never inside the data directory).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn parse_key(s: &str) -> Result<Key, String> {
    Key::from_hex(s).ok_or_else(|| format!("{s:?} is not 64 hex characters"))
}

fn parse_offset(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::problem::Kind;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_names_every_problem_kind() {
        for k in Kind::ALL {
            assert!(AFTER_LONG_HELP.contains(k.name()), "{}", k.name());
        }
    }

    #[test]
    fn dump_needs_exactly_one_selector() {
        let ok = Cli::try_parse_from(["blob-inspect", "dump", "d", "--key", "k"]);
        assert!(ok.is_ok());
        let none = Cli::try_parse_from(["blob-inspect", "dump", "d"]);
        assert!(none.is_err());
        let two = Cli::try_parse_from(["blob-inspect", "dump", "d", "--key", "k", "--offset", "5"]);
        assert!(two.is_err());
        let bad = Cli::try_parse_from(["blob-inspect", "dump", "d", "--id", "xyz"]);
        assert!(bad.is_err());
    }

    #[test]
    fn offsets_parse_in_decimal_and_hex() {
        assert_eq!(parse_offset("4096"), Ok(4096));
        assert_eq!(parse_offset("0x1000"), Ok(4096));
        assert!(parse_offset("x").is_err());
    }
}
