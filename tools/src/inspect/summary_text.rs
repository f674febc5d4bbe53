//! The text form of `summary`: a table, one row per blob file and a total.

use std::io;

use super::out::Out;
use super::summary::{Counts, FileLine, TotalLine};

const HEAD: &str = "FILE                  RECORDS     LIVE  SUPERSEDED  REMOVED  DAMAGED     KEYS      LIVE_BYTES   GARBAGE_BYTES  RECLAIMABLE  RATIO  VERSION  INDEX";

fn row(name: &str, c: &Counts, version: &str, index: &str) -> String {
    let ratio = c
        .compression_ratio
        .map_or_else(|| "-".to_string(), |r| format!("{r:.2}"));
    let line = format!(
        "{name:<20} {:>8} {:>8} {:>11} {:>8} {:>8} {:>8} {:>15} {:>15} {:>12} {ratio:>6}  {version:>7}  {index}",
        c.records,
        c.live,
        c.superseded,
        c.removed,
        c.damaged,
        c.keys,
        c.bytes_live,
        c.bytes_garbage,
        c.bytes_reclaimable,
    );
    line.trim_end().to_string()
}

fn index_text(l: &FileLine<'_>) -> String {
    if !l.index_present {
        return "absent".into();
    }
    match (l.index_checksum_ok, l.index_covered_len) {
        (Some(true), Some(covered)) if covered < l.counts.size_bytes => {
            format!(
                "ok, file order, covers {covered} of {} bytes",
                l.counts.size_bytes
            )
        }
        (Some(true), Some(covered)) if covered > l.counts.size_bytes => {
            format!("ok, file order, covers {covered}: past the end of the blob")
        }
        (Some(true), _) => "ok, file order, covers all".into(),
        _ => "DAMAGED".into(),
    }
}

pub fn print(lines: &[FileLine<'_>], total: &TotalLine, out: &mut Out) -> io::Result<()> {
    out.line(HEAD)?;
    for l in lines {
        let version = l
            .format_version
            .map_or_else(|| "?".to_string(), |v| v.to_string());
        out.line(&row(l.file, &l.counts, &version, &index_text(l)))?;
    }
    out.line(&row("total", &total.counts, "", ""))?;
    out.line("uncommitted: 0 (format version 1 has no streaming writes)")?;
    let problems = total.counts.problems;
    if problems > 0 {
        out.line(&format!(
            "{problems} problem(s) found, status {}: run `blob-inspect verify` for details",
            total.status
        ))?;
    } else {
        out.line(&format!("status {}", total.status))?;
    }
    Ok(())
}
