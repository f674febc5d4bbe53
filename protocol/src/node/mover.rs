//! Data movement: streams each key range a ring change took from this node to its new owner
//! — iterate the range in key order, read every (key, column), write it to the owner —
//! throttled, reporting a cursor so a crash resumes where it stopped. Once the owner holds a
//! record (it took the copy, or had it or something newer), the source drops its own copy
//! (`Backend::drop_copy`, not a remove), so it can never serve it stale if the range falls
//! back to it later; reads stay answerable throughout (the new owner has every key it was
//! sent and reads the rest through from here, and clients fall over to other groups).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_backends::{AsyncBackend, Backend, Meta};
use ringblob_engine::pace::Pace;
use tokio::sync::mpsc::UnboundedSender;

use super::copy;
use super::key_span::RangePages;
use crate::client::{Client, ClientConfig};
use crate::cluster::Transfer;
use crate::wire::KeyId;

/// Entries read per iteration page.
const PAGE: usize = 256;

/// What a transfer task tells the membership shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveEvent {
    /// Every key up to and including `cursor` was delivered.
    Progress {
        id: u64,
        cursor: KeyId,
    },
    Done {
        id: u64,
    },
    Failed {
        id: u64,
        why: String,
    },
    /// Time to start failed transfers again.
    Retry,
}

/// Totals for `stat`.
#[derive(Default, Debug)]
pub struct MoveCounters {
    pub records_sent: AtomicU64,
    /// Records the new owner already held as new or newer (it refused the copy).
    pub records_skipped: AtomicU64,
    /// Remembered removes handed to the new owner.
    pub removes_sent: AtomicU64,
    /// Records this node dropped once their new owner held them.
    pub records_dropped: AtomicU64,
    pub bytes_sent: AtomicU64,
}

/// Runs transfers against a backend.
pub struct Mover {
    backend: AsyncBackend,
    /// One rate for all transfers together (a join can start dozens at once).
    throttle: tokio::sync::Mutex<Pace>,
    name: String,
    pub counters: Arc<MoveCounters>,
    /// Records older than a quarantine are never handed on (`quarantine.rs`).
    quarantine: Arc<super::Quarantine>,
}

impl Mover {
    pub fn new(
        backend: Arc<dyn Backend>,
        bytes_per_sec: u64,
        name: &str,
        quarantine: Arc<super::Quarantine>,
    ) -> Mover {
        Mover {
            backend: AsyncBackend::new(backend, 2),
            throttle: tokio::sync::Mutex::new(Pace::new(bytes_per_sec)),
            name: name.to_string(),
            counters: Arc::default(),
            quarantine,
        }
    }

    /// Starts streaming `t` to the node at `addr`; stops early once `cancel` is set.
    pub fn start(
        self: &Arc<Self>,
        t: Transfer,
        addr: String,
        events: UnboundedSender<MoveEvent>,
        cancel: Arc<AtomicBool>,
    ) {
        let mover = self.clone();
        tokio::spawn(async move {
            let id = t.id;
            let event = match mover.run(&t, &addr, &events, &cancel).await {
                Ok(()) if cancel.load(Ordering::Relaxed) => return,
                Ok(()) => MoveEvent::Done { id },
                Err(why) => MoveEvent::Failed { id, why },
            };
            let _ = events.send(event);
        });
    }

    async fn run(
        &self,
        t: &Transfer,
        addr: &str,
        events: &UnboundedSender<MoveEvent>,
        cancel: &AtomicBool,
    ) -> Result<(), String> {
        let Some(range) = t.remaining() else {
            return Ok(());
        };
        let config = ClientConfig {
            name: format!("{} (moving data)", self.name),
            ..ClientConfig::default()
        };
        let client = Client::connect(addr, config)
            .await
            .map_err(|e| e.to_string())?;
        // Removes first: the new owner remembers them, so no copy of a removed value can
        // land there later (from this node or from another group's repair).
        for r in copy::removes_in(&self.backend, &range).await? {
            if cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            copy::send_remove(&client, &r).await?;
            self.counters.removes_sent.fetch_add(1, Ordering::Relaxed);
        }
        let mut pages = RangePages::new(range, PAGE);
        while let Some(page) = pages.next(&self.backend).await? {
            if cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let entries = &page.entries;
            for m in entries {
                let sent = self.send(&client, m).await?;
                let wait = self.throttle.lock().await.spent(sent);
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
            }
            // A key is delivered once all its columns are: report the key before the
            // page's last one, unless the page ends its span.
            let last = entries.last().map(|m| m.key);
            let done_key = if page.span_more {
                entries
                    .iter()
                    .rev()
                    .map(|m| m.key)
                    .find(|k| Some(*k) != last)
            } else {
                last
            };
            if let Some(k) = done_key {
                let _ = events.send(MoveEvent::Progress {
                    id: t.id,
                    cursor: k.0,
                });
            }
        }
        Ok(())
    }

    /// Copies one (key, column) to the owner, unless the owner holds it as new already;
    /// returns the bytes sent. A value removed meanwhile is skipped.
    async fn send(&self, client: &Client, m: &Meta) -> Result<u64, String> {
        let Some(record) = copy::read_record(&self.backend, m.key, m.column).await? else {
            return Ok(0);
        };
        if self.quarantine.untrusted(record.timestamp_ns) {
            return Ok(0);
        }
        let len = record.value.len() as u64;
        let ts = record.timestamp_ns;
        if copy::send_copy(client, m.key, m.column, record).await? {
            self.counters.records_sent.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters
                .records_skipped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.counters.bytes_sent.fetch_add(len, Ordering::Relaxed);
        // The new owner holds it (or something newer): this node stops holding a copy it
        // could serve stale if the range ever fell back to it.
        let (key, column) = (m.key, m.column);
        let dropped = self
            .backend
            .run(move |b| b.drop_copy(&key, column, ts))
            .await
            .map_err(|e| format!("dropping {key} column {column} after handing it over: {e}"))?;
        if dropped {
            self.counters
                .records_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(len)
    }
}
