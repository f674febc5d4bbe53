//! The node's metrics, in the Prometheus text exposition format (`/metrics` on the admin
//! listener, `admin.rs`), kept with the `prometheus` crate. Requests are counted and timed
//! as they are served, labelled by command, outcome status and route (`local`: served here
//! for a client; `received`: served here for a node that forwarded it; `forwarded`: sent on
//! to the key's owner) — at most commands × statuses × 3 series, no key or client labels.
//! Everything else (connections, backend, damage, scrub, defragmentation, cluster) is read
//! from the node's counters and its backend's statistics when scraped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::wire::{Command, Status};

/// Latency buckets, seconds: 50 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Where a request was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Local = 0,
    Received = 1,
    Forwarded = 2,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Route::Local => "local",
            Route::Received => "received",
            Route::Forwarded => "forwarded",
        }
    }
}

/// Why metrics could not be set up or encoded.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Counters read from the node's STAT document when scraped: (metric name, JSON path, help).
const COUNTS: &[(&str, &str, &str)] = &[
    (
        "connections_opened_total",
        "connections_total",
        "Connections accepted",
    ),
    (
        "connections_refused_total",
        "connections_refused",
        "Connections refused at the connection limit",
    ),
    (
        "bad_frames_total",
        "bad_frames",
        "Connections closed for a framing error",
    ),
    (
        "unauthorized_total",
        "unauthorized",
        "Requests refused UNAUTHORIZED",
    ),
    (
        "handover_reads_total",
        "handover_reads",
        "Reads asked of a key's previous owner during a hand-over",
    ),
    (
        "served_inline_total",
        "served_inline",
        "Requests served inline on the runtime thread, without a blocking-pool hand-off",
    ),
    (
        "inline_refused_total",
        "inline_refused",
        "Inline batches that met a request that would wait (sent on to the blocking pool)",
    ),
    (
        "hints_taken_total",
        "hints/taken",
        "Hinted changes taken for an owner that did not answer",
    ),
    (
        "hints_replayed_total",
        "hints/replayed",
        "Keys whose hinted changes were handed to their owner",
    ),
    ("syncs_total", "backend/syncs", "Group-commit fdatasyncs"),
    (
        "rebalance_records_sent_total",
        "cluster/rebalancing/records_sent",
        "Records handed over to new owners",
    ),
    (
        "rebalance_bytes_sent_total",
        "cluster/rebalancing/bytes_sent",
        "Bytes handed over to new owners",
    ),
    (
        "rebalance_records_dropped_total",
        "cluster/rebalancing/records_dropped",
        "Records dropped here once their new owner held them",
    ),
    (
        "rebalance_failures_total",
        "cluster/rebalancing/failures",
        "Hand-over transfers that failed (and were tried again)",
    ),
    (
        "checksum_failures_total",
        "backend/damage/checksum_failures",
        "Reads that failed a checksum",
    ),
    (
        "writes_refused_no_space_total",
        "backend/writes_refused_no_space",
        "Writes refused NO_SPACE (disk full)",
    ),
    (
        "defrag_runs_total",
        "backend/defrag/runs",
        "Defragmentation runs",
    ),
    (
        "defrag_blobs_rewritten_total",
        "backend/defrag/blobs_rewritten",
        "Blobs rewritten by defragmentation",
    ),
    (
        "defrag_reclaimed_bytes_total",
        "backend/defrag/bytes_reclaimed",
        "Bytes reclaimed by defragmentation",
    ),
    (
        "scrub_passes_total",
        "backend/damage/scrub/passes",
        "Scrub passes finished",
    ),
    (
        "scrub_records_checked_total",
        "backend/damage/scrub/records_checked",
        "Records the scrub checked",
    ),
    (
        "scrub_checked_bytes_total",
        "backend/damage/scrub/bytes_checked",
        "Bytes the scrub checked",
    ),
    (
        "scrub_damaged_found_total",
        "backend/damage/scrub/damaged_found",
        "Damaged records the scrub found",
    ),
    (
        "repair_rounds_total",
        "cluster/repair/rounds",
        "Repair rounds with the other groups",
    ),
    (
        "repair_records_compared_total",
        "cluster/repair/records_compared",
        "Records repair compared",
    ),
    (
        "repair_records_pushed_total",
        "cluster/repair/records_pushed",
        "Records repair copied to another group",
    ),
    (
        "repair_removes_pushed_total",
        "cluster/repair/removes_pushed",
        "Removes repair copied to another group",
    ),
    (
        "repair_failures_total",
        "cluster/repair/failures",
        "Repair rounds that failed",
    ),
    (
        "record_cache_hits_total",
        "backend/record_cache/hits",
        "Small-record reads answered from the record cache",
    ),
    (
        "record_cache_misses_total",
        "backend/record_cache/misses",
        "Small-record reads that went to the file",
    ),
];

/// Gauges read from the node's STAT document when scraped: (metric name, JSON path, help).
/// A `true`/`false` reads as 1/0, a non-empty string (a reason) as 1.
const GAUGES: &[(&str, &str, &str)] = &[
    (
        "record_cache_bytes",
        "backend/record_cache/bytes",
        "Memory the record cache holds (records and their overhead)",
    ),
    (
        "uptime_seconds",
        "uptime_secs",
        "Seconds since the node started",
    ),
    (
        "connections_open",
        "connections_open",
        "Connections open now",
    ),
    (
        "peak_resident_bytes",
        "peak_rss_bytes",
        "Peak resident memory of the process",
    ),
    (
        "hints_held",
        "hints/held",
        "Keys with hinted changes held here for their owners",
    ),
    (
        "reply_memory_available_bytes",
        "reply_memory_available",
        "Reply budget not taken",
    ),
    (
        "backend_keys",
        "backend/keys",
        "Live values (one per key and column)",
    ),
    (
        "backend_disk_bytes",
        "backend/bytes_on_disk",
        "Bytes the backend's files take",
    ),
    (
        "backend_live_bytes",
        "backend/live_bytes",
        "Bytes of live values",
    ),
    (
        "backend_garbage_bytes",
        "backend/garbage_bytes",
        "Bytes of overwritten and removed values",
    ),
    (
        "backend_reclaimable_bytes",
        "backend/reclaimable_bytes",
        "Garbage a defragmentation would free now",
    ),
    ("backend_blobs", "backend/blobs", "Blob files"),
    (
        "backend_index_bytes",
        "backend/index_bytes",
        "Memory of the key index",
    ),
    (
        "backend_uploads_in_progress",
        "backend/uploads_in_progress",
        "Streamed uploads not committed",
    ),
    (
        "backend_removes_remembered",
        "backend/removes_remembered",
        "Removes remembered for copies and repair",
    ),
    (
        "backend_read_only",
        "backend/read_only",
        "1 while the backend refuses writes (poisoned or read-only)",
    ),
    (
        "disk_free_bytes",
        "backend/disk_free_bytes",
        "Free space on the data directory's file system",
    ),
    (
        "damaged_records",
        "backend/damage/records_known",
        "Damaged records known (quarantined: never served)",
    ),
    (
        "scrub_running",
        "backend/damage/scrub/running",
        "1 while a scrub pass runs",
    ),
    (
        "defrag_running",
        "backend/defrag/running",
        "1 while a defragmentation runs",
    ),
    (
        "quarantined",
        "quarantined",
        "1 while the node is quarantined until repaired",
    ),
    (
        "route_table_version",
        "cluster/route_version",
        "Version of the node's route table",
    ),
    ("cluster_nodes", "cluster/nodes", "Nodes in the route table"),
    (
        "rebalance_transfers_pending",
        "rebalance_transfers_pending",
        "Hand-over transfers from this node not finished",
    ),
    (
        "rebalance_key_space_left_ppm",
        "rebalance_key_space_left_ppm",
        "Millionths of the key space this node still has to hand over",
    ),
    (
        "leave_state",
        "leave_state",
        "This node's drain: 0 none, 1 requested, 2 leaving, 3 left",
    ),
    (
        "cluster_nodes_alive",
        "cluster/nodes_alive",
        "Nodes alive in the route table",
    ),
];

/// Command numbers with a series of their own (higher ones share the last slot's).
const COMMAND_SLOTS: usize = 32;
/// Status numbers with a series of their own (unknown ones share the last slot's).
const STATUS_SLOTS: usize = crate::wire::status::ALL_STATUSES.len() + 1;
const ROUTES: usize = 3;

/// The node's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Arc<RequestHistograms>,
    bytes_received: IntCounter,
    bytes_sent: IntCounter,
    counts: Vec<IntCounter>,
    gauges: Vec<IntGauge>,
    alive_by_group: IntGaugeVec,
    up: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new_custom(Some("ringblob".into()), None)?;
        let requests = Arc::new(RequestHistograms::new()?);
        registry.register(Box::new(SharedCollector(requests.clone())))?;
        let bytes_received = IntCounter::new("received_bytes_total", "Request bytes read")?;
        registry.register(Box::new(bytes_received.clone()))?;
        let bytes_sent = IntCounter::new("sent_bytes_total", "Reply bytes written")?;
        registry.register(Box::new(bytes_sent.clone()))?;
        let mut counts = Vec::new();
        for (name, _, help) in COUNTS {
            let c = IntCounter::new(*name, *help)?;
            registry.register(Box::new(c.clone()))?;
            counts.push(c);
        }
        let mut gauges = Vec::new();
        for (name, _, help) in GAUGES {
            let g = IntGauge::new(*name, *help)?;
            registry.register(Box::new(g.clone()))?;
            gauges.push(g);
        }
        let alive_by_group = IntGaugeVec::new(
            Opts::new(
                "group_nodes_alive",
                "Nodes alive per group in the route table",
            ),
            &["group"],
        )?;
        registry.register(Box::new(alive_by_group.clone()))?;
        let up = IntGauge::new("up", "1 while the node serves, 0 once it is stopping")?;
        registry.register(Box::new(up.clone()))?;
        up.set(1);
        Ok(Metrics {
            registry,
            requests,
            bytes_received,
            bytes_sent,
            counts,
            gauges,
            alive_by_group,
            up,
        })
    }

    /// One request served (or forwarded) with `status`, taking `seconds`.
    pub fn request(&self, command: Command, status: Status, route: Route, seconds: f64) {
        self.requests.observe(command, status, route, seconds, 1);
    }

    /// `n` requests of one kind that took `seconds` each (a batch's frames share its time).
    pub fn requests(&self, kind: (Command, Status, Route), seconds: f64, n: u64) {
        self.requests.observe(kind.0, kind.1, kind.2, seconds, n);
    }

    pub fn received(&self, bytes: usize) {
        self.bytes_received.inc_by(bytes as u64);
    }

    pub fn sent(&self, bytes: usize) {
        self.bytes_sent.inc_by(bytes as u64);
    }

    /// Sets the scraped counters and gauges from a STAT document (PROTOCOL.md §7.8), and
    /// nodes alive per group from the route table's nodes (group, alive).
    pub fn update(&self, stat: &serde_json::Value, nodes: &[(u32, bool)]) {
        for ((_, path, _), c) in COUNTS.iter().zip(&self.counts) {
            if let Some(v) = at(stat, path).and_then(number) {
                // Counters only move forward; a count read lower (a restart) is kept.
                c.inc_by((v.max(0) as u64).saturating_sub(c.get()));
            }
        }
        for ((_, path, _), g) in GAUGES.iter().zip(&self.gauges) {
            g.set(at(stat, path).and_then(number).unwrap_or(0));
        }
        self.alive_by_group.reset();
        for &(group, alive) in nodes {
            let g = self.alive_by_group.with_label_values(&[&group.to_string()]);
            g.add(i64::from(alive));
        }
    }

    /// While the node is stopping.
    pub fn stopping(&self) {
        self.up.set(0);
    }

    /// Everything, in the text exposition format.
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Adds to a STAT document the values `/metrics` derives from it: the hand-over transfers
/// pending, the key space they still cover (millionths) and the drain's state as a number.
pub fn derive_from_stat(stat: &mut serde_json::Value) {
    let moving = at(stat, "cluster/rebalancing").cloned().unwrap_or_default();
    let pending = moving["pending"].as_array().cloned().unwrap_or_default();
    // From +0.0: `Sum` of no f64 is -0.0.
    let left = pending
        .iter()
        .filter_map(|p| p["fraction_left"].as_f64())
        .fold(0.0, |sum, f| sum + f);
    let leave = match moving["leave"].as_str() {
        Some("requested") => 1,
        Some("leaving") => 2,
        Some("left") => 3,
        _ => 0,
    };
    stat["rebalance_transfers_pending"] = pending.len().into();
    stat["rebalance_key_space_left_ppm"] = ((left * 1e6).round() as i64).into();
    stat["leave_state"] = leave.into();
}

/// The value at a `/`-separated path.
fn at<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('/').try_fold(v, |v, k| v.get(k))
}

/// A number, a boolean (1/0) or a reason string (1 when present).
fn number(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        serde_json::Value::Bool(b) => Some(i64::from(*b)),
        serde_json::Value::String(s) => Some(i64::from(!s.is_empty())),
        _ => None,
    }
}

/// One (command, status, route)'s histogram: cumulative counts are made when scraped.
#[derive(Default)]
struct Series {
    /// Requests per bucket (not cumulative); the last counts those above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// The request histograms, one per (command, status, route) slot, kept as plain atomics so
/// that a batch's N requests of one kind cost three atomic adds, not 3N (measured: a
/// `HistogramVec` observed per request cost 3–4 % of 100-byte gets at pipeline 16).
/// Encoded by the `prometheus` crate like any other collector.
struct RequestHistograms {
    slots: Vec<Series>,
    desc: Desc,
}

impl RequestHistograms {
    fn new() -> Result<Self, MetricsError> {
        let desc = Desc::new(
            "request_duration_seconds".into(),
            "Requests by command, outcome status and route (local, received from a forwarding \
             node, forwarded to the owner), from the batch's arrival to its replies being ready"
                .into(),
            vec!["command".into(), "status".into(), "route".into()],
            Default::default(),
        )?;
        let slots = (0..COMMAND_SLOTS * STATUS_SLOTS * ROUTES)
            .map(|_| Series::default())
            .collect();
        Ok(RequestHistograms { slots, desc })
    }

    fn slot(command: u16, status: u32, route: usize) -> usize {
        let c = usize::from(command).min(COMMAND_SLOTS - 1);
        let st = (status as usize).min(STATUS_SLOTS - 1);
        (c * STATUS_SLOTS + st) * ROUTES + route
    }

    fn observe(&self, command: Command, status: Status, route: Route, seconds: f64, n: u64) {
        let slot = Self::slot(command.as_u16(), status.as_u32(), route as usize);
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        let bucket = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        s.buckets[bucket].fetch_add(n, Ordering::Relaxed);
        s.count.fetch_add(n, Ordering::Relaxed);
        let ns = (seconds.max(0.0) * 1e9) as u64;
        s.sum_ns.fetch_add(ns.saturating_mul(n), Ordering::Relaxed);
    }

    /// The metric of one used slot.
    fn metric(&self, (command, status, route): (u16, u32, usize), s: &Series) -> Metric {
        let label = |name: &str, value: &str| {
            let mut l = LabelPair::default();
            l.set_name(name.into());
            l.set_value(value.into());
            l
        };
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(BUCKETS.len());
        for (bound, n) in BUCKETS.iter().zip(&s.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let mut b = Bucket::default();
            b.set_upper_bound(*bound);
            b.set_cumulative_count(cumulative);
            buckets.push(b);
        }
        let mut h = Histogram::default();
        h.set_bucket(buckets);
        // The count includes the requests above the last bound (the +Inf bucket).
        h.set_sample_count(s.count.load(Ordering::Relaxed));
        h.set_sample_sum(s.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
        let mut m = Metric::default();
        let route = [Route::Local, Route::Received, Route::Forwarded][route].label();
        m.set_label(vec![
            label("command", Command::from_u16(command).name()),
            label("route", route),
            label("status", Status::from_u32(status).name()),
        ]);
        m.set_histogram(h);
        m
    }
}

impl Collector for RequestHistograms {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut metrics = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if s.count.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let route = i % ROUTES;
            let status = (i / ROUTES) % STATUS_SLOTS;
            let command = i / ROUTES / STATUS_SLOTS;
            metrics.push(self.metric((command as u16, status as u32, route), s));
        }
        let mut f = MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(MetricType::HISTOGRAM);
        f.set_metric(metrics);
        vec![f]
    }
}

/// Registers a shared collector (the registry takes a box).
struct SharedCollector(Arc<RequestHistograms>);

impl Collector for SharedCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_stat_numbers_show_in_the_text_format() -> Result<(), MetricsError> {
        let m = Metrics::new()?;
        m.request(Command::Read, Status::Ok, Route::Local, 0.0003);
        m.request(Command::Read, Status::NotFound, Route::Forwarded, 0.02);
        let stat = serde_json::json!({
            "connections_total": 7, "connections_open": 2,
            "backend": {"keys": 42, "read_only": "poisoned", "damage": {"checksum_failures": 3}},
            "cluster": {"route_version": 9},
        });
        m.update(&stat, &[(1, true), (1, true), (2, false)]);
        // A lower count (never expected) does not move a counter back.
        m.update(&serde_json::json!({"connections_total": 5}), &[]);
        let text = m.encode()?;
        for want in [
            "ringblob_request_duration_seconds_count{command=\"READ\",route=\"local\",status=\"OK\"} 1",
            "route=\"forwarded\",status=\"NOT_FOUND\"",
            "# TYPE ringblob_request_duration_seconds histogram",
            "ringblob_connections_opened_total 7",
            "ringblob_checksum_failures_total 3",
            "# TYPE ringblob_checksum_failures_total counter",
            "ringblob_up 1",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        // The second update set the gauges again (absent: 0).
        assert!(text.contains("ringblob_backend_keys 0"));
        m.update(&stat, &[(1, true), (1, true), (2, false)]);
        let text = m.encode()?;
        assert!(text.contains("ringblob_backend_keys 42"));
        assert!(text.contains("ringblob_backend_read_only 1"));
        assert!(text.contains("ringblob_group_nodes_alive{group=\"1\"} 2"));
        assert!(text.contains("ringblob_group_nodes_alive{group=\"2\"} 0"));
        Ok(())
    }

    #[test]
    fn a_drain_shows_its_state_and_progress() -> Result<(), MetricsError> {
        let m = Metrics::new()?;
        let mut stat = serde_json::json!({"cluster": {"rebalancing": {
            "leave": "leaving", "records_sent": 40, "bytes_sent": 2810,
            "pending": [{"to": "a", "fraction_left": 0.125}, {"to": "b", "fraction_left": 0.0625}],
        }}});
        derive_from_stat(&mut stat);
        m.update(&stat, &[]);
        let text = m.encode()?;
        for want in [
            "ringblob_leave_state 2",
            "ringblob_rebalance_transfers_pending 2",
            "ringblob_rebalance_key_space_left_ppm 187500",
            "ringblob_rebalance_records_sent_total 40",
            "ringblob_rebalance_bytes_sent_total 2810",
        ] {
            assert!(text.contains(want), "{want} in\n{text}");
        }
        let mut idle = serde_json::json!({"cluster": {"rebalancing": {"pending": []}}});
        derive_from_stat(&mut idle);
        m.update(&idle, &[]);
        let text = m.encode()?;
        assert!(text.contains("ringblob_leave_state 0"));
        assert!(text.contains("ringblob_rebalance_transfers_pending 0"));
        Ok(())
    }
}
