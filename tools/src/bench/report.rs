//! Result rows: one JSON object per line (`--json`) or a readable table.

use serde::{Deserialize, Serialize};

/// One result line. The first eight fields are the stable contract scripts rely on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Row {
    pub engine: String,
    pub workload: String,
    pub ops: u64,
    /// Seconds spent in the operations only (not preparation, not close).
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// `ops × value_size / seconds / 10^6` (decimal megabytes of values per second); on
    /// defrag rows `bytes_reclaimed / seconds / 10^6`.
    pub mb_per_sec: f64,
    /// `VmHWM` after the workload, reset just before its timed part.
    pub peak_rss_bytes: u64,
    /// Sum of file sizes under the engine's directory after the workload (and close).
    pub bytes_on_disk: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durability: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_size: Option<usize>,
    /// ringblob's IO path (`--io`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io: Option<String>,
    /// `VmRSS` when the peak was reset (keys, values and the prepared store already in memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_rss_bytes: Option<u64>,
    /// Seconds the close after a put workload took (flush, fsync, checkpoint); not in `seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_seconds: Option<f64>,
    /// ringblob's sealed-blob index (`--index`: sorted or memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// `Engine::stats().index_bytes / keys`; on index-memory rows the resident memory
    /// (VmRSS) that reopening added, divided by `count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_bytes_per_key: Option<f64>,
    /// index-memory and sealed-gets rows: keys loaded (`--count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// index-memory and sealed-gets rows: sealed blobs holding the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs: Option<u64>,
    /// index-memory and sealed-gets rows: seconds to load the keys, seal and close (untimed
    /// preparation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<f64>,
    /// index-memory rows: seconds of the measured `Engine::open` (also `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_seconds: Option<f64>,
    /// index-memory rows: `Engine::stats().index_bytes / count` after the reopen;
    /// sealed-gets rows: after the gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_index_bytes_per_key: Option<f64>,
    /// index-memory rows: anonymous resident memory (RssAnon: no code or other file pages)
    /// that reopening added, divided by `count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_bytes_per_key: Option<f64>,
    /// index-memory rows: the reopening process's VmRSS right before and after the open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_before_open_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_open_bytes: Option<u64>,
    /// sealed-gets rows: `hit` (loaded keys) or `miss` (keys never written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lookup: Option<String>,
    /// sealed-gets rows: per-get latency percentiles in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syncs: Option<u64>,
    /// ringblob rows: reads answered from the record cache, and those looked up there in
    /// vain (a shard that passes is not looked up by most reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_cache_hits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_cache_misses: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updates: Option<u64>,
    /// On peer rows: ringblob's ops_per_sec ÷ this engine's (> 1: ringblob is faster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_vs_ringblob: Option<f64>,
    /// On ringblob large-puts rows: mb_per_sec ÷ the disk-dd row's mb_per_sec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_ratio: Option<f64>,
    /// On ringblob point-gets rows: ops_per_sec ÷ the raw-pread row's (4 KiB `pread`s at
    /// random offsets of the same files, same count and threads, same run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_pread_ratio: Option<f64>,
    /// As `disk_ratio`, counting the close (which makes the data durable) in the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_ratio_with_close: Option<f64>,
    /// On disk-dd rows: whether dd bypassed the page cache (`oflag=direct`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_io: Option<bool>,
    /// Defrag rows (where `ops` is records copied and `seconds` the defragmentation's wall
    /// time): sealed blobs rewritten and removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blobs_rewritten: Option<u64>,
    /// Defrag rows: bytes of live records copied forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_copied: Option<u64>,
    /// Defrag rows: bytes of the blob files removed (before subtracting the copies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_reclaimed: Option<u64>,
    /// Defrag rows: `bytes_copied / seconds / 10^6`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_mb_per_sec: Option<f64>,
    /// Defrag rows: point-get latency (µs) and count of the readers before the
    /// defragmentation (`--threads` readers for 2 s) and while it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_p50_us_idle: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_p99_us_idle: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_p50_us_during: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_p99_us_during: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_idle: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_during: Option<u64>,
    /// Defrag rows: file sizes in the directory after preparation and right after the
    /// defragmentation (`bytes_on_disk` is after close, as on every row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_on_disk_before: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_on_disk_after: Option<u64>,
    /// Appends rows: length of each value before the appends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_value_size: Option<usize>,
    /// Appends rows: blob bytes written per native append.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_written_per_append: Option<f64>,
    /// Appends rows: the same appends done as read whole + write whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_ops: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_ops_per_sec: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_bytes_written_per_append: Option<f64>,
    /// Appends rows: native appends per second ÷ whole rewrites per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native_vs_rewrite_ratio: Option<f64>,
}

/// Writes rows to stdout as they are produced.
pub struct Printer {
    json: bool,
    header_done: bool,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        Printer {
            json,
            header_done: false,
        }
    }

    pub fn row(&mut self, row: &Row) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(row)?);
            return Ok(());
        }
        if !self.header_done {
            println!(
                "{:<9} {:<10} {:>3} {:<5} {:>9} {:>8} {:>11} {:>8} {:>8} {:>9} {:>7} {:>7}  notes",
                "engine",
                "workload",
                "thr",
                "dur",
                "ops",
                "seconds",
                "ops/s",
                "MB/s",
                "rss MiB",
                "disk MiB",
                "idx B/k",
                "rb/x"
            );
            self.header_done = true;
        }
        println!("{}", table_line(row));
        Ok(())
    }

    /// Explains the columns and the durability mapping after a table.
    pub fn legend(&self) {
        if self.json || !self.header_done {
            return;
        }
        println!();
        for line in LEGEND {
            println!("{line}");
        }
    }
}

const LEGEND: &[&str] = &[
    "seconds: operations only (keys and values precomputed; preparation and close excluded).",
    "MB/s: value bytes / seconds / 1e6.  rss MiB: peak RSS (VmHWM reset before the timed part).",
    "idx B/k: ringblob index heap bytes per key.  rb/x: ringblob ops/s ÷ this engine's ops/s.",
    "durability: none = ringblob Durability::None (1 MiB write buffer), fjall insert (journal",
    "  written to the OS per insert, no fsync), redb Durability::None (one txn per put);",
    "  batch/sync = ringblob Batch/Sync (group commit), fjall insert + persist(SyncData) per put,",
    "  redb Durability::Immediate per put. Close makes everything durable on every engine.",
    "values: pseudo-random, incompressible; ringblob compress=false, fjall default LZ4, redb none.",
    "defrag (ringblob only): ops = records copied, seconds = the defragmentation, MB/s = bytes",
    "  reclaimed / seconds / 1e6; get latencies of the readers before (2 s) and during it.",
    "index-memory (ringblob only): idx B/k = VmRSS added by reopening (in a fresh process) / keys;",
    "  seconds = the open. sealed-gets (ringblob only): one row per blob count and hit/miss.",
];

/// Notes of index-memory and sealed-gets rows.
fn sealed_notes(r: &Row) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(index) = &r.index {
        notes.push(format!("index {index}"));
    }
    if let Some(b) = r.blobs {
        notes.push(format!("{b} sealed blobs"));
    }
    if let (Some(l), Some(p50), Some(p99)) = (&r.lookup, r.p50_us, r.p99_us) {
        notes.push(format!("{l} p50/p99 µs {p50:.2}/{p99:.2}"));
    }
    if let Some(s) = r.stats_index_bytes_per_key {
        notes.push(format!("stats {s:.2} B/key"));
    }
    if let Some(a) = r.anon_bytes_per_key {
        notes.push(format!("anon {a:.2} B/key"));
    }
    notes
}

fn table_line(r: &Row) -> String {
    let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
    let opt =
        |v: Option<f64>, prec: usize| v.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"));
    let mut notes = Vec::new();
    if let Some(c) = r.close_seconds {
        notes.push(format!("close {c:.3}s"));
    }
    if let Some(d) = r.disk_ratio {
        notes.push(format!("disk ratio {d:.2}"));
    }
    if let Some(d) = r.disk_ratio_with_close {
        notes.push(format!("with close {d:.2}"));
    }
    if let Some(d) = r.raw_pread_ratio {
        notes.push(format!("{d:.2}x raw pread"));
    }
    if let (Some(rd), Some(up)) = (r.reads, r.updates) {
        notes.push(format!("{rd} reads / {up} updates"));
    }
    if let Some(s) = r.syncs {
        notes.push(format!("{s} syncs"));
    }
    if let (Some(h), Some(m)) = (r.record_cache_hits, r.record_cache_misses) {
        if h + m > 0 {
            notes.push(format!("record cache {h} hits / {m} misses"));
        }
    }
    notes.extend(sealed_notes(r));
    if let (Some(reclaimed), Some(copy)) = (r.bytes_reclaimed, r.copy_mb_per_sec) {
        notes.push(format!(
            "reclaimed {:.1} MiB, copy {copy:.1} MB/s",
            mib(reclaimed)
        ));
    }
    if let (Some(a), Some(b), Some(c), Some(d)) = (
        r.read_p50_us_idle,
        r.read_p99_us_idle,
        r.read_p50_us_during,
        r.read_p99_us_during,
    ) {
        notes.push(format!(
            "get p50/p99 µs idle {a:.1}/{b:.1}, during {c:.1}/{d:.1}"
        ));
    }
    format!(
        "{:<9} {:<10} {:>3} {:<5} {:>9} {:>8.3} {:>11.0} {:>8.1} {:>8.1} {:>9.1} {:>7} {:>7}  {}",
        r.engine,
        r.workload,
        r.threads.map_or_else(|| "-".into(), |t| t.to_string()),
        r.durability.as_deref().unwrap_or("-"),
        r.ops,
        r.seconds,
        r.ops_per_sec,
        r.mb_per_sec,
        mib(r.peak_rss_bytes),
        mib(r.bytes_on_disk),
        opt(r.index_bytes_per_key, 1),
        opt(r.ratio_vs_ringblob, 2),
        notes.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_contract_fields_and_skips_empty_extras() -> anyhow::Result<()> {
        let row = Row {
            engine: "ringblob".into(),
            workload: "small-puts".into(),
            ops: 10,
            seconds: 0.5,
            ops_per_sec: 20.0,
            ..Row::default()
        };
        let v: serde_json::Value = serde_json::from_str(&serde_json::to_string(&row)?)?;
        for field in [
            "engine",
            "workload",
            "ops",
            "seconds",
            "ops_per_sec",
            "mb_per_sec",
            "peak_rss_bytes",
            "bytes_on_disk",
        ] {
            assert!(v.get(field).is_some(), "missing {field}");
        }
        assert!(v.get("disk_ratio").is_none());
        Ok(())
    }
}
