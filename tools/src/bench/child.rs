//! The parent side: runs one measurement in a child process and reads its row.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::cli::{durability_name, EngineArgs};
use super::report::Row;
use super::store::EngineKind;
use super::workload::Params;

/// Re-runs this binary as `engine --child <kind>` for the workload in `p` and parses the
/// (last) row it prints. The child's log output goes to our stderr.
pub fn measure(kind: EngineKind, p: &Params, args: &EngineArgs) -> Result<Row> {
    let rows = measure_rows(kind, p, args)?;
    rows.into_iter()
        .last()
        .with_context(|| format!("{} {} printed no result", kind.name(), p.workload.name()))
}

/// As [`measure`], every row the child prints (sealed-gets prints one per lookup kind).
pub fn measure_rows(kind: EngineKind, p: &Params, args: &EngineArgs) -> Result<Vec<Row>> {
    let exe = own_executable()?;
    let mut cmd = Command::new(exe);
    cmd.arg("engine")
        .arg("--dir")
        .arg(&args.dir)
        .args(["--workload", p.workload.name(), "--child", kind.name()])
        .args(["--count", &p.count.to_string()])
        .args(["--value-size", &p.value_size.to_string()])
        .args(["--threads", &p.threads.to_string()])
        .args(["--durability", durability_name(p.durability)])
        .args(["--io", p.io.name()])
        .args(["--index", p.index.name()])
        .args(["--seconds", &p.duration.as_secs_f64().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if p.blobs > 0 {
        cmd.args(["--blobs", &p.blobs.to_string()]);
    }
    if let Some(mb) = p.record_cache_mb {
        cmd.args(["--record-cache-mb", &mb.to_string()]);
    }
    let out = cmd
        .output()
        .with_context(|| format!("starting the {} {} child", kind.name(), p.workload.name()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}); see the log above",
            kind.name(),
            p.workload.name(),
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("parsing the child's row {line:?}"))
        })
        .collect::<Result<Vec<Row>>>()?;
    if rows.is_empty() {
        bail!(
            "{} {} printed no result: {stdout:?}",
            kind.name(),
            p.workload.name()
        );
    }
    Ok(rows)
}

/// This binary. On Linux `/proc/self/exe` still works after a rebuild replaced the file on
/// disk mid-run (where `current_exe` would name a deleted path).
pub fn own_executable() -> Result<PathBuf> {
    let proc_exe = PathBuf::from("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe);
    }
    std::env::current_exe().context("finding the ringblob-bench executable")
}
