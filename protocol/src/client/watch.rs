//! Watching a key or a namespace across a cluster (`WATCH`, `docs/PROTOCOL.md` §7.15).
//!
//! A node announces the changes clients made on it, so a subscription lives where the
//! changes are made: a key's watch on the key's owner in one group, a namespace's on every
//! node of the group. [`Client::watch`] keeps those subscriptions in place from a task of
//! its own: it reads the route table (through the node the client was made for, any node)
//! every [`TABLE_EVERY`], subscribes at owners it is not subscribed at yet, and drops those
//! that own nothing watched any more. Whenever a subscription is lost (the connection
//! broke, the node restarted) or ownership moved, changes may have been made that no
//! subscription saw: the watcher says so with a [`WatchEvent::Gap`] naming the node and the
//! reason — never a silent loss — and subscribes again.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Client, ClientConfig, ClientError, Target};
use crate::ring::RouteTable;
use crate::wire::{Header, NoteKind, Reply, Request, WatchNote, WatchRequest};

type Result<T> = std::result::Result<T, ClientError>;

/// How often the watcher reads the route table again.
pub const TABLE_EVERY: Duration = Duration::from_secs(1);
/// Events a watcher holds for a slow consumer before its subscriptions' nodes queue (and
/// then report gaps).
pub const WATCH_BUFFER: usize = 1024;

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTarget {
    /// Every change of one key (any column).
    Key(Target),
    /// Objects of a namespace written or removed through their names, optionally only those
    /// whose attributes match `query` (`docs/ATTRIBUTES.md` §4; empty: all).
    Namespace {
        namespace: String,
        query: String,
        exact: bool,
    },
}

/// What a watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A subscription is in place at `node` (whose start id is `epoch`).
    Attached { node: String, epoch: u64 },
    /// A change (`note.kind` `Write` or `Remove`), as `node` announced it.
    Change { node: String, note: WatchNote },
    /// Changes may have been missed: `missed` of them from `from_seq` when the node
    /// dropped them for a slow subscriber, or an unknown number (`None`) when a
    /// subscription was lost or ownership moved.
    Gap {
        node: String,
        reason: String,
        missed: Option<(u64, u64)>,
    },
}

/// A running watch: its events, until it is dropped.
pub struct Watch {
    events: mpsc::Receiver<Result<WatchEvent>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// The next event; `None` once the watch ended (never on its own: only if its task
    /// failed, after an error event).
    pub async fn next(&mut self) -> Option<Result<WatchEvent>> {
        self.events.recv().await
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One subscription on a connection of its own.
pub struct Subscription {
    client: Client,
    trans: u64,
    frames: mpsc::Receiver<crate::wire::Frame>,
}

impl Subscription {
    /// The next note; `Ok(None)` once the subscription ended (`ENDED`), an error if the
    /// connection broke.
    pub async fn next(&mut self) -> Result<Option<WatchNote>> {
        let Some(frame) = self.frames.recv().await else {
            return Err(ClientError::Disconnected(
                "the connection of a subscription closed".into(),
            ));
        };
        match Reply::decode(&frame)? {
            Reply::Watch { note, .. } if note.kind == NoteKind::Ended => Ok(None),
            Reply::Watch { note, .. } => Ok(Some(note)),
            Reply::Error { status, message } => Err(ClientError::Status { status, message }),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The transaction id the subscription answers (what a cancel names).
    pub fn trans(&self) -> u64 {
        self.trans
    }

    /// The client (and connection) it runs on.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// Subscribes at this node alone, on a connection of its own: the `SUBSCRIBED` note
    /// comes first. Nodes announce the changes made on them only; [`Client::watch`] follows
    /// a key or namespace across the cluster.
    pub async fn subscribe(&self, target: &Target, req: &WatchRequest) -> Result<Subscription> {
        self.with_own_connection().subscribe_here(target, req).await
    }

    /// [`Client::subscribe`] on this client's own connection, shared with its other
    /// requests (and subscriptions): a subscriber that stops reading holds them all up.
    pub async fn subscribe_here(
        &self,
        target: &Target,
        req: &WatchRequest,
    ) -> Result<Subscription> {
        let client = Client {
            addr: self.addr.clone(),
            config: self.config.clone(),
            conn: tokio::sync::Mutex::new(self.conn.lock().await.clone()),
        };
        let conn = client.connection().await?;
        if conn.version() < 3 {
            return Err(ClientError::Input(format!(
                "node {} speaks protocol version {}; WATCH needs 3",
                self.addr,
                conn.version()
            )));
        }
        let wire = Request::Watch(req.clone());
        let (group, version) = (self.config.group, conn.version());
        let acting = self.config.acting.clone();
        let (trans, frames) = conn
            .send_streamed(|trans, buf| {
                let mut h = Header::request(wire.command(), trans, target.id(), group);
                h.version = version;
                target.encode_request(&wire, &mut h, buf, acting.as_deref())?;
                Ok(h)
            })
            .await?;
        drop(conn);
        Ok(Subscription {
            client,
            trans,
            frames,
        })
    }

    /// Watches `target` in `group` (0: this node's group) until the returned [`Watch`] is
    /// dropped.
    pub fn watch(&self, target: WatchTarget, group: u32) -> Watch {
        let (tx, events) = mpsc::channel(WATCH_BUFFER);
        let (addr, config) = (self.addr.clone(), self.config.clone());
        let task = tokio::spawn(async move {
            let mut w = Watcher {
                addr,
                config,
                target,
                group,
                tx,
                attached: BTreeMap::new(),
            };
            if let Err(e) = w.run().await {
                let _ = w.tx.send(Err(e)).await;
            }
        });
        Watch { events, task }
    }
}

/// A subscription's reader, feeding the watcher.
struct Attachment {
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// What a reader tells the watcher.
enum Heard {
    Note(String, WatchNote),
    Lost(String, String),
}

struct Watcher {
    addr: String,
    config: ClientConfig,
    target: WatchTarget,
    group: u32,
    tx: mpsc::Sender<Result<WatchEvent>>,
    /// Node address → its subscription's reader.
    attached: BTreeMap<String, Attachment>,
}

impl Watcher {
    async fn run(&mut self) -> Result<()> {
        let entry = Client::connect(&self.addr, self.config.clone()).await?;
        let group = match self.group {
            0 => own_group(&entry).await?,
            g => g,
        };
        self.group = group;
        let (heard_tx, mut heard) = mpsc::channel::<Heard>(64);
        let mut tick = tokio::time::interval(TABLE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // A node not answering now is tried again at the next tick.
                    if let Ok(table) = entry.route_table().await {
                        self.follow(&table, group, &heard_tx).await?;
                    }
                }
                Some(h) = heard.recv() => self.heard(h).await?,
            }
        }
    }

    /// Subscribes where the table says the watched changes are made, and drops the
    /// subscriptions elsewhere (with a gap: changes made before the move may be missed).
    async fn follow(
        &mut self,
        table: &RouteTable,
        group: u32,
        heard: &mpsc::Sender<Heard>,
    ) -> Result<()> {
        let want: Vec<String> = match &self.target {
            WatchTarget::Key(t) => table
                .owner(group, &t.id())
                .map(|n| n.addr.clone())
                .into_iter()
                .collect(),
            WatchTarget::Namespace { .. } => table
                .nodes
                .iter()
                .filter(|n| n.group == group && n.reachable())
                .map(|n| n.addr.clone())
                .collect(),
        };
        for addr in &want {
            if !self.attached.contains_key(addr) {
                if let Some(a) = self.attach(addr, heard).await? {
                    self.attached.insert(addr.clone(), a);
                }
            }
        }
        let gone: Vec<String> = self
            .attached
            .keys()
            .filter(|a| !want.contains(a))
            .cloned()
            .collect();
        for addr in gone {
            self.attached.remove(&addr);
            let reason =
                "it no longer owns what is watched: changes made around the move may be missed"
                    .into();
            self.send(WatchEvent::Gap {
                node: addr,
                reason,
                missed: None,
            })
            .await?;
        }
        Ok(())
    }

    /// Subscribes at `addr`; `None` if it could not (tried again at the next tick).
    async fn attach(
        &mut self,
        addr: &str,
        heard: &mpsc::Sender<Heard>,
    ) -> Result<Option<Attachment>> {
        let Ok(node) = Client::connect(addr, self.config.clone()).await else {
            return Ok(None);
        };
        let node = node.in_group(self.group);
        let (target, req) = match &self.target {
            WatchTarget::Key(t) => (t.clone(), WatchRequest::default()),
            WatchTarget::Namespace {
                namespace,
                query,
                exact,
            } => (
                Target::NONE,
                WatchRequest {
                    namespace: Some(namespace.clone()),
                    query: query.clone(),
                    exact: *exact,
                    cancel: None,
                },
            ),
        };
        let mut sub = match node.subscribe(&target, &req).await {
            Ok(s) => s,
            Err(e) if std::env::var_os("RB_DEBUG").is_some() => {
                eprintln!("subscribe: {e:?}");
                return Ok(None);
            }
            Err(e @ (ClientError::Status { .. } | ClientError::Input(_))) => return Err(e),
            Err(_) => return Ok(None),
        };
        let first = sub.next().await;
        if std::env::var_os("RB_DEBUG").is_some() {
            eprintln!("first: {first:?}");
        }
        let epoch = match first {
            Ok(Some(n)) if n.kind == NoteKind::Subscribed => n.epoch,
            Ok(_) => return Ok(None),
            Err(e @ ClientError::Status { .. }) => return Err(e),
            Err(_) => return Ok(None),
        };
        self.send(WatchEvent::Attached {
            node: addr.to_string(),
            epoch,
        })
        .await?;
        let (addr, heard) = (addr.to_string(), heard.clone());
        let reader = tokio::spawn(async move {
            loop {
                let lost = match sub.next().await {
                    Ok(Some(note)) => {
                        if heard.send(Heard::Note(addr.clone(), note)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(None) => "the node ended the subscription".to_string(),
                    Err(e) => format!("the subscription was lost: {e}"),
                };
                let _ = heard.send(Heard::Lost(addr, lost)).await;
                return;
            }
        });
        Ok(Some(Attachment { reader }))
    }

    async fn heard(&mut self, h: Heard) -> Result<()> {
        match h {
            Heard::Note(node, note) if note.kind == NoteKind::Gap => {
                let reason = "the subscriber fell behind and the node dropped changes".into();
                let missed = Some((note.seq, note.size));
                self.send(WatchEvent::Gap {
                    node,
                    reason,
                    missed,
                })
                .await
            }
            Heard::Note(node, note) => self.send(WatchEvent::Change { node, note }).await,
            Heard::Lost(node, reason) => {
                // Subscribed again at the next tick, if the node (or another owner) answers.
                self.attached.remove(&node);
                let reason = format!("{reason}; changes may be missed until it is attached again");
                self.send(WatchEvent::Gap {
                    node,
                    reason,
                    missed: None,
                })
                .await
            }
        }
    }

    async fn send(&self, event: WatchEvent) -> Result<()> {
        self.tx
            .send(Ok(event))
            .await
            .map_err(|_| ClientError::Output("the watch was dropped".into()))
    }
}

/// The group of the node a client talks to, from the route table.
async fn own_group(c: &Client) -> Result<u32> {
    let table = c.route_table().await?;
    let me = table.nodes.iter().find(|n| n.addr == c.addr);
    let any = table.nodes.first();
    me.or(any).map(|n| n.group).ok_or_else(|| {
        ClientError::Unexpected(format!("node {} has no route table to watch by", c.addr))
    })
}
