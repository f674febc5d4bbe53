//! `ringblob-bench engine`: runs the selected workloads on ringblob and its peers, each
//! measurement in a child process of its own.

use std::fs;
use std::path::Path;

use super::child;
use super::cli::{EngineArgs, Peer};
use super::disk;
use super::report::{Printer, Row};
use super::single::run_child;
use super::store::EngineKind;
use super::workload::{Params, Workload};
use anyhow::{Context, Result};

/// Runs every selected workload and prints a row per engine (and the disk-dd row).
pub fn run_engine(args: &EngineArgs) -> Result<()> {
    if let Some(kind) = args.child {
        return run_child(kind, args);
    }
    fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let mut printer = Printer::new(args.json);
    for workload in Workload::selected(args.workload) {
        let params = Params::new(workload, args)?;
        run_workload(&params, args, &mut printer)?;
    }
    printer.legend();
    Ok(())
}

fn run_workload(p: &Params, args: &EngineArgs, printer: &mut Printer) -> Result<()> {
    let peers: &[Peer] = if p.workload.ringblob_only() {
        if !args.compare.is_empty() {
            tracing::warn!(
                workload = p.workload.name(),
                "--compare ignored: this workload measures ringblob only"
            );
        }
        &[]
    } else {
        &args.compare
    };
    if p.workload == Workload::SealedGets {
        // One child per blob count, each printing a hit row and a miss row.
        for blobs in p.workload.blob_counts(args.blobs.as_deref())? {
            let p = Params { blobs, ..*p };
            for row in child::measure_rows(EngineKind::Ringblob, &p, args)? {
                printer.row(&row)?;
            }
        }
        return Ok(());
    }
    let dd = if p.workload == Workload::LargePuts {
        disk_row(&args.dir)
    } else {
        None
    };
    if let Some(row) = &dd {
        printer.row(row)?;
    }
    let mut ringblob = child::measure(EngineKind::Ringblob, p, args)?;
    if let Some(dd) = dd.filter(|d| d.mb_per_sec > 0.0) {
        ringblob.disk_ratio = Some(ringblob.mb_per_sec / dd.mb_per_sec);
        let with_close = ringblob.seconds + ringblob.close_seconds.unwrap_or(0.0);
        let mb = (p.count as f64 * p.value_size as f64) / with_close / 1e6;
        ringblob.disk_ratio_with_close = Some(mb / dd.mb_per_sec);
    }
    if p.workload == Workload::PointGets {
        let data = args.dir.join(format!("ringblob-{}", p.workload.name()));
        let raw = super::raw_pread::measure(&data, p.count, p.threads)?;
        ringblob.raw_pread_ratio = Some(ringblob.ops_per_sec / raw.ops_per_sec);
        printer.row(&raw)?;
    }
    printer.row(&ringblob)?;
    for &peer in peers {
        let mut row = child::measure(peer.into(), p, args)?;
        if row.ops_per_sec > 0.0 {
            row.ratio_vs_ringblob = Some(ringblob.ops_per_sec / row.ops_per_sec);
        }
        printer.row(&row)?;
    }
    Ok(())
}

/// The disk's sequential write bandwidth by dd, as a row; `None` (with a warning) if dd fails.
fn disk_row(root: &Path) -> Option<Row> {
    tracing::info!("measuring sequential write bandwidth with dd (1 GiB)");
    let dd = match disk::dd_write_bandwidth(root) {
        Ok(dd) => dd,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "dd failed; no disk-dd row");
            return None;
        }
    };
    let blocks = dd.bytes / (1 << 20);
    Some(Row {
        engine: "disk-dd".into(),
        workload: Workload::LargePuts.name().into(),
        ops: blocks,
        seconds: dd.seconds,
        ops_per_sec: blocks as f64 / dd.seconds,
        mb_per_sec: dd.bytes as f64 / dd.seconds / 1e6,
        value_size: Some(1 << 20),
        direct_io: Some(dd.direct),
        ..Row::default()
    })
}
