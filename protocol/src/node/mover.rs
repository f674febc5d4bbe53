//! Data movement, the driver of `cluster::HandoverStream` (which makes every decision):
//! streams each key range a ring change took from this node to its new owner — iterate the
//! range in key order, read every (key, column), write it to the owner —
//! throttled, reporting a cursor so a crash resumes where it stopped. Once the owner holds a
//! record (it took the copy, or had it or something newer), the source drops its own copy
//! (`Backend::drop_copy`, not a remove), so it can never serve it stale if the range falls
//! back to it later; reads stay answerable throughout (the new owner has every key it was
//! sent and reads the rest through from here, and clients fall over to other groups).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ringblob_backends::{AsyncBackend, Backend};
use ringblob_engine::pace::Pace;
use tokio::sync::mpsc::UnboundedSender;

use super::copy;
use super::task_error::TaskError;
use crate::client::{Client, ClientConfig, ClientSecurity};
use crate::cluster::{local, HandoverAnswer, HandoverStep, HandoverStream, Transfer};
use crate::ring::RouteTable;
use crate::wire::KeyId;

/// What a transfer task tells the membership shell.
#[derive(Debug, Clone)]
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
        why: Arc<TaskError>,
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
    /// The cluster key this node proves to its peers.
    security: ClientSecurity,
}

impl Mover {
    pub fn new(
        backend: Arc<dyn Backend>,
        bytes_per_sec: u64,
        name: &str,
        quarantine: Arc<super::Quarantine>,
        security: ClientSecurity,
    ) -> Mover {
        Mover {
            backend: AsyncBackend::new(backend, 2),
            throttle: tokio::sync::Mutex::new(Pace::new(bytes_per_sec)),
            name: name.to_string(),
            counters: Arc::default(),
            quarantine,
            security,
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
                Err(why) => MoveEvent::Failed {
                    id,
                    why: Arc::new(why),
                },
            };
            let _ = events.send(event);
        });
    }

    /// Drops this node's uploads in progress of the keys of `group` that `after` gives to
    /// node `me` and `before` did not: an upload there was prepared while this node last
    /// owned the key, and the parts of the writes made since went elsewhere, so a part
    /// arriving now must find no upload (and the client start over) rather than add to it
    /// (`docs/PROTOCOL.md` §7.4).
    pub async fn drop_gained_uploads(
        &self,
        (before, after): (Arc<RouteTable>, Arc<RouteTable>),
        me: &str,
        group: u32,
    ) {
        let me = me.to_string();
        let gained = move |k: &ringblob_engine::Key| {
            let owner = |t: &RouteTable| t.owner(group, &k.0).map(|n| n.name == me);
            owner(&after) == Some(true) && owner(&before) != Some(true)
        };
        match self.backend.run(move |b| b.drop_uploads(&gained)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads = n, "dropped uploads of key ranges taken over"),
            Err(e) => {
                tracing::warn!(error = %e, "dropping uploads of key ranges taken over failed")
            }
        }
    }

    /// How this node authenticates to its peers (for other peer tasks too).
    pub fn security(&self) -> ClientSecurity {
        self.security.clone()
    }

    /// Drives the transfer's [`HandoverStream`] (the decisions) against the backend and
    /// the new owner (the effects).
    async fn run(
        &self,
        t: &Transfer,
        addr: &str,
        events: &UnboundedSender<MoveEvent>,
        cancel: &AtomicBool,
    ) -> Result<(), TaskError> {
        let mut stream = HandoverStream::new(t, self.quarantine.before());
        if t.remaining().is_none() {
            return Ok(());
        }
        let config = ClientConfig {
            name: format!("{} (moving data)", self.name),
            security: self.security.clone(),
            ..ClientConfig::default()
        };
        let client = Client::connect(addr, config)
            .await
            .map_err(|source| TaskError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        let mut answer = HandoverAnswer::Continue;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let step = stream.advance(answer)?;
            answer = match step {
                HandoverStep::Done => return Ok(()),
                HandoverStep::Progress { cursor } => {
                    let _ = events.send(MoveEvent::Progress { id: t.id, cursor });
                    HandoverAnswer::Continue
                }
                step => self.perform(&client, step).await?,
            };
        }
    }

    /// Carries out one step of a stream and counts what it did.
    async fn perform(
        &self,
        client: &Client,
        step: HandoverStep,
    ) -> Result<HandoverAnswer, TaskError> {
        let c = &self.counters;
        let b = &self.backend;
        Ok(match step {
            HandoverStep::ListRemoves(range) => HandoverAnswer::Removes(
                copy::local(b, move |b| local::removes_to_hand_over(b, &range)).await?,
            ),
            HandoverStep::SendRemove(r) => {
                let sent = copy::send_remove(client, &r).await?;
                c.removes_sent.fetch_add(1, Ordering::Relaxed);
                HandoverAnswer::Sent(sent)
            }
            HandoverStep::ListPage(req) => {
                HandoverAnswer::Page(copy::local(b, move |b| local::list(b, &req)).await?)
            }
            HandoverStep::ReadRecord { key, column } => HandoverAnswer::Record(
                copy::local(b, move |b| local::read_record(b, key, column)).await?,
            ),
            HandoverStep::SendCopy {
                key,
                column,
                record,
            } => {
                let len = record.value.len() as u64;
                let stored = copy::send_copy(client, key, column, record).await?;
                let counter = if stored {
                    &c.records_sent
                } else {
                    &c.records_skipped
                };
                counter.fetch_add(1, Ordering::Relaxed);
                c.bytes_sent.fetch_add(len, Ordering::Relaxed);
                HandoverAnswer::Sent(stored)
            }
            HandoverStep::DropCopy {
                key,
                column,
                timestamp_ns,
            } => {
                let dropped =
                    copy::local(b, move |b| local::drop_copy(b, key, column, timestamp_ns)).await?;
                if dropped {
                    c.records_dropped.fetch_add(1, Ordering::Relaxed);
                }
                HandoverAnswer::Dropped(dropped)
            }
            HandoverStep::Pace { bytes } => {
                let wait = self.throttle.lock().await.spent(bytes);
                if let Some(wait) = wait {
                    tokio::time::sleep(wait).await;
                }
                HandoverAnswer::Continue
            }
            HandoverStep::Progress { .. } | HandoverStep::Done => HandoverAnswer::Continue,
        })
    }
}
