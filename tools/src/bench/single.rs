//! The child side: one workload on one engine, printed as one JSON row.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ringblob_engine::Key;

use super::appends;
use super::cli::{durability_name, EngineArgs};
use super::data::{self, ValuePool};
use super::defrag;
use super::disk;
use super::index_memory;
use super::measure::{self, Measured};
use super::report::Row;
use super::sealed_gets;
use super::store::EngineKind;
use super::workload::{Params, Workload};

/// Measures `args.workload` (exactly one) on `kind` and prints the row as JSON.
pub fn run_child(kind: EngineKind, args: &EngineArgs) -> Result<()> {
    let &[workload] = Workload::selected(args.workload).as_slice() else {
        bail!("--child measures exactly one workload, not `all`");
    };
    let p = Params::new(workload, args)?;
    tracing::info!(
        workload = workload.name(),
        count = p.count,
        "preparing keys and values"
    );
    let keys = data::keys(p.count);
    let values = ValuePool::new(p.value_size);
    for row in measure_rows(kind, &p, &args.dir, &keys, &values)? {
        println!("{}", serde_json::to_string(&row)?);
    }
    Ok(())
}

/// Runs one workload on one engine in a freshly wiped `root/<engine>-<workload>`.
fn measure_rows(
    kind: EngineKind,
    p: &Params,
    root: &Path,
    keys: &[Key],
    values: &ValuePool,
) -> Result<Vec<Row>> {
    if p.workload.ringblob_only() && kind != EngineKind::Ringblob {
        bail!(
            "the {} workload runs on ringblob only, not {}",
            p.workload.name(),
            kind.name()
        );
    }
    let dir = root.join(format!("{}-{}", kind.name(), p.workload.name()));
    disk::wipe(&dir)?;
    tracing::info!(engine = kind.name(), workload = p.workload.name(), dir = %dir.display(), "running");
    let m = match p.workload {
        Workload::SmallPuts | Workload::LargePuts | Workload::SeqWrites => {
            measure::puts(kind, &dir, p, keys, values)
        }
        Workload::PointGets => measure::point_gets(kind, &dir, p, keys, values),
        Workload::Open => measure::open(kind, &dir, p, keys, values),
        Workload::YcsbB => measure::ycsb_b(kind, &dir, p, keys, values),
        Workload::Defrag => return defrag_row(&dir, p, keys, values).map(|r| vec![r]),
        Workload::IndexMemory => {
            let row = index_memory::row(&dir, p, keys, values).context("ringblob index-memory");
            return row.map(|r| vec![r]);
        }
        Workload::SealedGets => {
            return sealed_gets::rows(&dir, p, keys, values).context("ringblob sealed-gets")
        }
        Workload::Appends => return appends_row(&dir, p).map(|r| vec![r]),
    }
    .with_context(|| format!("{} {}", kind.name(), p.workload.name()))?;
    let bytes_on_disk = disk::size_of_dir(&dir)?;
    Ok(vec![to_row(kind, p, &m, bytes_on_disk)])
}

fn to_row(kind: EngineKind, p: &Params, m: &Measured, bytes_on_disk: u64) -> Row {
    let per_sec = |x: f64| if m.seconds > 0.0 { x / m.seconds } else { 0.0 };
    let writes = matches!(
        p.workload,
        Workload::SmallPuts | Workload::LargePuts | Workload::SeqWrites | Workload::YcsbB
    );
    let index_bytes_per_key = match (m.figures.index_bytes, m.figures.keys) {
        (Some(bytes), Some(keys)) if keys > 0 => Some(bytes as f64 / keys as f64),
        _ => None,
    };
    Row {
        engine: kind.name().into(),
        workload: p.workload.name().into(),
        ops: m.ops,
        seconds: m.seconds,
        ops_per_sec: per_sec(m.ops as f64),
        mb_per_sec: per_sec(m.ops as f64 * p.value_size as f64) / 1e6,
        peak_rss_bytes: m.peak_rss,
        bytes_on_disk,
        threads: (p.workload != Workload::Open).then_some(p.threads),
        durability: writes.then(|| durability_name(p.durability).to_string()),
        value_size: Some(p.value_size),
        io: (kind == EngineKind::Ringblob).then(|| p.io.name().to_string()),
        index: (kind == EngineKind::Ringblob).then(|| p.index.name().to_string()),
        base_rss_bytes: Some(m.base_rss),
        close_seconds: m.close_seconds,
        keys: m.figures.keys,
        index_bytes_per_key,
        syncs: m.figures.syncs,
        record_cache_hits: m.figures.record_cache_hits,
        record_cache_misses: m.figures.record_cache_misses,
        reads: m.reads,
        updates: m.updates,
        ..Row::default()
    }
}

/// The defrag workload (ringblob only): `ops` are the records copied, `seconds` the
/// defragmentation's wall time, `mb_per_sec` the bytes reclaimed per second.
fn appends_row(dir: &Path, p: &Params) -> Result<Row> {
    let m = appends::run(dir, p).context("ringblob appends")?;
    let rate = |n: u64, s: f64| if s > 0.0 { n as f64 / s } else { 0.0 };
    let per = |bytes: u64, n: u64| bytes as f64 / n.max(1) as f64;
    let native = rate(m.appends, m.seconds);
    let rewrite = rate(m.rewrites, m.rewrite_seconds);
    Ok(Row {
        engine: EngineKind::Ringblob.name().into(),
        workload: p.workload.name().into(),
        ops: m.appends,
        seconds: m.seconds,
        ops_per_sec: native,
        mb_per_sec: native * p.value_size as f64 / 1e6,
        bytes_on_disk: disk::size_of_dir(dir)?,
        threads: Some(1),
        durability: Some(durability_name(p.durability).to_string()),
        value_size: Some(p.value_size),
        io: Some(p.io.name().to_string()),
        index: Some(p.index.name().to_string()),
        base_value_size: Some(appends::BASE_LEN),
        bytes_written_per_append: Some(per(m.bytes_written, m.appends)),
        rewrite_ops: Some(m.rewrites),
        rewrite_ops_per_sec: Some(rewrite),
        rewrite_bytes_written_per_append: Some(per(m.rewrite_bytes_written, m.rewrites)),
        native_vs_rewrite_ratio: Some(if rewrite > 0.0 { native / rewrite } else { 0.0 }),
        ..Row::default()
    })
}

fn defrag_row(dir: &Path, p: &Params, keys: &[Key], values: &ValuePool) -> Result<Row> {
    let d = defrag::run(dir, p, keys, values).context("ringblob defrag")?;
    let bytes_on_disk = disk::size_of_dir(dir)?;
    let r = &d.report;
    let per_sec = |x: u64| {
        if d.seconds > 0.0 {
            x as f64 / d.seconds
        } else {
            0.0
        }
    };
    Ok(Row {
        engine: EngineKind::Ringblob.name().into(),
        workload: p.workload.name().into(),
        ops: r.records_copied,
        seconds: d.seconds,
        ops_per_sec: per_sec(r.records_copied),
        mb_per_sec: per_sec(r.bytes_reclaimed) / 1e6,
        peak_rss_bytes: d.peak_rss,
        bytes_on_disk,
        threads: Some(p.threads),
        value_size: Some(p.value_size),
        io: Some(p.io.name().to_string()),
        index: Some(p.index.name().to_string()),
        base_rss_bytes: Some(d.base_rss),
        close_seconds: Some(d.close_seconds),
        keys: Some(d.keys),
        index_bytes_per_key: (d.keys > 0).then(|| d.index_bytes as f64 / d.keys as f64),
        blobs_rewritten: Some(r.blobs_rewritten.len() as u64),
        bytes_copied: Some(r.bytes_copied),
        bytes_reclaimed: Some(r.bytes_reclaimed),
        copy_mb_per_sec: Some(per_sec(r.bytes_copied) / 1e6),
        read_p50_us_idle: Some(d.idle.p50_us),
        read_p99_us_idle: Some(d.idle.p99_us),
        read_p50_us_during: Some(d.during.p50_us),
        read_p99_us_during: Some(d.during.p99_us),
        reads_idle: Some(d.idle.reads),
        reads_during: Some(d.during.reads),
        bytes_on_disk_before: Some(d.bytes_on_disk_before),
        bytes_on_disk_after: Some(d.bytes_on_disk_after),
        ..Row::default()
    })
}
