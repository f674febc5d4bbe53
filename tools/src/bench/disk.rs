//! Scratch directories, on-disk size and the disk's raw sequential write bandwidth.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Removes `dir` and everything under it (if present), then creates it empty.
pub fn wipe(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("wiping {}", dir.display())),
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Sum of the sizes (`st_size`) of the regular files under `dir`.
pub fn size_of_dir(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", d.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("stat {}", entry.path().display()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// What `dd` measured.
#[derive(Debug, Clone, Copy)]
pub struct DdResult {
    pub bytes: u64,
    pub seconds: f64,
    /// False when `oflag=direct` was refused and dd ran through the page cache
    /// (still ending with an fdatasync).
    pub direct: bool,
}

/// Writes 1 GiB of zeros to `dir/dd.tmp` with
/// `dd bs=1M count=1024 oflag=direct conv=fdatasync` and reports what dd said.
pub fn dd_write_bandwidth(dir: &Path) -> Result<DdResult> {
    let target = dir.join("dd.tmp");
    let result = run_dd(&target, true).map(|(b, s)| (b, s, true));
    let result = result.or_else(|e| {
        tracing::warn!(error = %e, "dd with oflag=direct failed; retrying without it");
        run_dd(&target, false).map(|(b, s)| (b, s, false))
    });
    // The measurement matters more than the clean-up.
    let _ = fs::remove_file(&target);
    let (bytes, seconds, direct) = result?;
    Ok(DdResult {
        bytes,
        seconds,
        direct,
    })
}

fn run_dd(target: &Path, direct: bool) -> Result<(u64, f64)> {
    let mut cmd = Command::new("dd");
    // LC_ALL=C: the summary's number format must not depend on the locale.
    cmd.env("LC_ALL", "C")
        .arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .args(["bs=1M", "count=1024", "conv=fdatasync"]);
    if direct {
        cmd.arg("oflag=direct");
    }
    let out = cmd.output().context("running dd")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("dd failed ({}): {}", out.status, stderr.trim());
    }
    parse_dd(&stderr).with_context(|| format!("cannot parse dd output: {}", stderr.trim()))
}

/// Parses GNU dd's summary, e.g.
/// `1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.2345 s, 870 MB/s`, into (bytes, seconds).
fn parse_dd(stderr: &str) -> Option<(u64, f64)> {
    let line = stderr.lines().rev().find(|l| l.contains(" copied, "))?;
    let bytes = line.split_whitespace().next()?.parse().ok()?;
    let after = line.split(" copied, ").nth(1)?;
    let seconds: f64 = after.split_whitespace().next()?.parse().ok()?;
    (seconds > 0.0).then_some((bytes, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_dd_summary() {
        let s = "1024+0 records in\n1024+0 records out\n\
                 1073741824 bytes (1.1 GB, 1.0 GiB) copied, 1.25 s, 859 MB/s\n";
        assert_eq!(parse_dd(s), Some((1_073_741_824, 1.25)));
        assert_eq!(parse_dd("garbage"), None);
        assert_eq!(parse_dd("1 bytes copied, 0 s, inf B/s"), None);
    }

    #[test]
    fn sizes_nested_files() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("rb-bench-size-{}", std::process::id()));
        wipe(&dir)?;
        fs::create_dir_all(dir.join("sub"))?;
        fs::write(dir.join("a"), [0u8; 10])?;
        fs::write(dir.join("sub/b"), [0u8; 5])?;
        assert_eq!(size_of_dir(&dir)?, 15);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
