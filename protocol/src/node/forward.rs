//! Routing and forwarding (`docs/PROTOCOL.md` §9): a request for a key that another node of
//! the target group owns is sent to that owner with `hops` + 1, over one pipelined
//! connection per peer that every client connection shares (so the requests of many clients
//! reach the owner in one write and are served there as one batch), and the owner's reply
//! frames are relayed back under the client's transaction id as they arrive (so a streamed
//! read is never held whole).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::client::{Client, ClientConfig};
use crate::ring::RouteTable;
use crate::wire::{encode_error, Command, Frame, Header, Status, MAX_FORWARD_HOPS};

/// Where a request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here.
    Local,
    /// At the owner: its address, and the group the request was routed in.
    Forward { addr: String, group: u32 },
    /// Nowhere: the error reply to give.
    Refuse(Status, String),
}

/// Commands about one key, routed to its owner; the rest are served by the node asked.
fn keyed(command: Command) -> bool {
    matches!(
        command,
        Command::Lookup | Command::Read | Command::Write | Command::Remove
    )
}

/// Decides where `h` is served, by `table` (none: not in a cluster, everything is local).
pub fn route(table: Option<&RouteTable>, me: &str, own_group: u32, h: &Header) -> Route {
    let Some(table) = table else {
        return Route::Local;
    };
    if !keyed(h.command) || h.is_local() {
        return Route::Local;
    }
    let group = if h.group == 0 { own_group } else { h.group };
    match table.owner(group, &h.key) {
        Some(owner) if owner.name == me => Route::Local,
        Some(_) if h.hops >= MAX_FORWARD_HOPS => Route::Refuse(
            Status::TooManyHops,
            format!(
                "not the owner, and the request was forwarded {} times",
                h.hops
            ),
        ),
        Some(owner) => Route::Forward {
            addr: owner.addr.clone(),
            group,
        },
        None if group == own_group => Route::Local,
        None => Route::Refuse(Status::NotOwner, format!("no live node in group {group}")),
    }
}

/// One client per peer, shared by every connection of this node: the forwarded requests of
/// many clients reach the owner together and are served there as one batch (measured: two
/// or more connections per peer only split those batches, and lower forwarded throughput).
pub struct Peers {
    config: ClientConfig,
    clients: tokio::sync::Mutex<HashMap<String, Arc<Client>>>,
}

impl Peers {
    pub fn new(name: &str) -> Peers {
        Peers {
            config: ClientConfig {
                name: format!("{name} (forwarding)"),
                retries: 0,
                ..ClientConfig::default()
            },
            clients: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The shared client of the peer at `addr`. Connecting happens outside the map's lock
    /// (and within the connect timeout), so an owner that is down delays only the requests
    /// routed to it, never those for other peers.
    async fn client(&self, addr: &str) -> Result<Arc<Client>, String> {
        if let Some(c) = self.clients.lock().await.get(addr) {
            return Ok(c.clone());
        }
        let c = Arc::new(
            Client::connect(addr, self.config.clone())
                .await
                .map_err(|e| e.to_string())?,
        );
        // Another request may have connected meanwhile: keep one client per peer.
        let mut clients = self.clients.lock().await;
        Ok(clients.entry(addr.to_string()).or_insert(c).clone())
    }

    /// Sends `run` (frames, each with the group it was routed in) on to the owner at `addr`
    /// in one write; their replies are relayed by [`finish`](Self::finish). Many runs, of
    /// many client connections, are in flight at once on the peer connection.
    pub async fn send(&self, addr: &str, run: &[(&Frame, u32)]) -> InFlight {
        let started = async {
            let client = self.client(addr).await?;
            let sent = client.relay_all(run).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((client, sent))
        };
        let headers = run.iter().map(|(f, _)| f.header).collect();
        InFlight {
            addr: addr.to_string(),
            headers,
            started: started.await,
        }
    }

    /// Writes the owner's reply frames to `out` under the client's transaction ids, gathered
    /// into one write where they come together; a frame whose owner could not be reached or
    /// did not answer in time gets a `TIMEOUT` error reply instead. Only a failed write to
    /// `out` is an error (the client's connection is gone).
    pub async fn finish<W: AsyncWrite + Unpin>(
        &self,
        f: InFlight,
        out: &mut W,
    ) -> std::io::Result<()> {
        let mut gathered = BytesMut::new();
        let failed = match f.started {
            Ok((client, sent)) => {
                let mut failed = None;
                for ((trans, rx), header) in sent.into_iter().zip(&f.headers) {
                    let relayed = relay(&client, trans, rx, header, out, &mut gathered).await;
                    match relayed {
                        Ok(()) => {}
                        Err(Relay::Client(e)) => return Err(e),
                        Err(Relay::Owner(why)) => {
                            failed_reply(&f.addr, header, &why, &mut gathered);
                            failed = Some(why);
                        }
                    }
                }
                failed
            }
            Err(why) => {
                for header in &f.headers {
                    failed_reply(&f.addr, header, &why, &mut gathered);
                }
                Some(why)
            }
        };
        if let Some(why) = failed {
            tracing::warn!(owner = %f.addr, error = %why, "forwarding failed");
        }
        out.write_all(&gathered).await
    }

    /// [`send`](Self::send) of one frame, then [`finish`](Self::finish).
    pub async fn forward<W: AsyncWrite + Unpin>(
        &self,
        addr: &str,
        group: u32,
        frame: &Frame,
        out: &mut W,
    ) -> std::io::Result<()> {
        let f = self.send(addr, &[(frame, group)]).await;
        self.finish(f, out).await
    }
}

fn failed_reply(addr: &str, header: &Header, why: &str, out: &mut BytesMut) {
    let msg = format!("owner {addr} did not answer: {why}");
    encode_error(header, Status::Timeout, &msg, out);
}

/// A forwarded run: where it went, the client's headers, and the owner's reply channels (or
/// why the run could not be sent).
pub struct InFlight {
    addr: String,
    headers: Vec<Header>,
    started: Result<(Arc<Client>, Vec<Pending>), String>,
}

/// A relayed frame's transaction id on the peer connection, and its reply channel.
type Pending = (u64, UnboundedReceiver<Frame>);

/// Reply bytes gathered before they are written even though more are at hand (a streamed
/// read is relayed in pieces of about this size, never held whole).
const GATHER_BYTES: usize = 256 << 10;

/// Relays reply frames into `gathered` until the one without `MORE`, each within the
/// client's deadline of the frame before it (a long streamed reply that keeps coming is never
/// cut off). What was gathered is written to `out` before waiting for a frame not there yet.
async fn relay<W: AsyncWrite + Unpin>(
    client: &Client,
    trans: u64,
    mut rx: UnboundedReceiver<Frame>,
    request: &Header,
    out: &mut W,
    gathered: &mut BytesMut,
) -> Result<(), Relay> {
    loop {
        let reply = match rx.try_recv() {
            Ok(reply) if gathered.len() < GATHER_BYTES => reply,
            ready => {
                out.write_all(gathered).await.map_err(Relay::Client)?;
                gathered.clear();
                match ready {
                    Ok(reply) => reply,
                    Err(_) => next_reply(client, trans, &mut rx).await?,
                }
            }
        };
        let more = reply.header.has_more();
        let mut header = reply.header;
        header.trans = request.trans;
        header.hops = 0;
        Frame {
            header,
            payload: reply.payload,
        }
        .encode(gathered)
        .map_err(|e| Relay::Owner(e.to_string()))?;
        if !more {
            return Ok(());
        }
    }
}

/// The next reply frame of `trans`, within the client's deadline.
async fn next_reply(
    client: &Client,
    trans: u64,
    rx: &mut UnboundedReceiver<Frame>,
) -> Result<Frame, Relay> {
    match tokio::time::timeout(client.timeout(), rx.recv()).await {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => Err(Relay::Owner("connection closed".into())),
        Err(_) => {
            client.forget(trans).await;
            Err(Relay::Owner("timed out".into()))
        }
    }
}

enum Relay {
    /// Writing to the client failed: the connection is gone.
    Client(std::io::Error),
    /// The owner could not be reached or did not answer.
    Owner(String),
}

#[cfg(test)]
mod relay_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{RingId, RouteNode};

    fn node(name: &str, group: u32, id: u8, alive: bool) -> RouteNode {
        RouteNode {
            name: name.into(),
            addr: format!("{name}:1"),
            group,
            ids: vec![RingId([id; 32])],
            alive,
            incarnation: 1,
        }
    }

    fn table() -> RouteTable {
        // Group 1: "b" owns (0x40.., 0xc0..], "a" the rest (wrapping); group 2: "c" alone.
        RouteTable::new(
            3,
            vec![
                node("a", 1, 0x40, true),
                node("b", 1, 0xc0, true),
                node("c", 2, 0x80, true),
                node("d", 3, 0x80, false),
            ],
        )
    }

    fn header(cmd: Command, key: u8, group: u32, hops: u8) -> Header {
        let mut h = Header::request(cmd, 7, [key; 32], group);
        h.hops = hops;
        h
    }

    #[test]
    fn keyed_requests_go_to_the_owner_of_their_group() {
        let t = table();
        let r = |cmd, key, group, hops| route(Some(&t), "a", 1, &header(cmd, key, group, hops));
        assert_eq!(r(Command::Read, 0x10, 0, 0), Route::Local);
        assert_eq!(r(Command::Read, 0x10, 1, 0), Route::Local);
        let to_b = Route::Forward {
            addr: "b:1".into(),
            group: 1,
        };
        assert_eq!(r(Command::Write, 0x90, 0, 0), to_b);
        assert_eq!(r(Command::Remove, 0xa0, 1, 3), to_b);
        assert_eq!(
            r(Command::Read, 0xf0, 1, 0),
            Route::Local,
            "wraps to the lowest id"
        );
        let to_c = Route::Forward {
            addr: "c:1".into(),
            group: 2,
        };
        assert_eq!(r(Command::Lookup, 0x10, 2, 0), to_c);
        assert!(matches!(
            r(Command::Read, 0x90, 0, MAX_FORWARD_HOPS),
            Route::Refuse(Status::TooManyHops, _)
        ));
        assert!(matches!(
            r(Command::Read, 0x90, 3, 0),
            Route::Refuse(Status::NotOwner, _)
        ));
        assert!(matches!(
            r(Command::Read, 0x90, 9, 0),
            Route::Refuse(Status::NotOwner, _)
        ));
    }

    #[test]
    fn other_commands_and_nodes_outside_a_cluster_serve_locally() {
        let t = table();
        let h = header(Command::Iterate, 0x90, 0, 0);
        assert_eq!(route(Some(&t), "a", 1, &h), Route::Local);
        let h = header(Command::Read, 0x90, 2, 0);
        assert_eq!(route(None, "a", 1, &h), Route::Local);
    }
}
