//! Reads during a hand-over. When the ring changes, the ranges this node takes over are
//! still being streamed to it by their previous owner; until a key has arrived, a read of it
//! here would find nothing. So for a while after the change (`handover_read_secs`), a
//! `LOOKUP` or `READ` of a key in such a range that this node cannot answer — no value, and
//! no remembered remove — is passed to the previous owner with the `LOCAL` flag (serve from
//! your own storage, route nothing), and its answer relayed (`docs/PROTOCOL.md` §15.10).
//!
//! Safe because the fallback happens only when this node knows nothing newer about the key:
//! a value written here wins, and a remove made here is remembered (the remove log) for
//! longer than the window lasts.

use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::ring::{KeyRange, RouteTable};
use crate::wire::KeyId;

/// A range this node took over, and from whom.
#[derive(Debug, Clone)]
struct Incoming {
    range: KeyRange,
    /// The previous owner's name.
    from: String,
    group: u32,
    until: Instant,
}

/// The ranges this node took over recently.
#[derive(Debug, Default)]
pub struct Handovers {
    /// How long after a ring change its ranges are read through (zero: never).
    window: Duration,
    incoming: RwLock<Vec<Incoming>>,
}

/// Where a read this node cannot answer may be asked instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousOwner {
    pub addr: String,
    pub group: u32,
}

impl Handovers {
    /// Ranges taken over are read through for `window` after the ring change.
    pub fn new(window: Duration) -> Self {
        Handovers {
            window,
            incoming: RwLock::default(),
        }
    }

    /// Notes the ranges of this node's group that moved to it from `before` to `after`;
    /// forgets expired ones.
    pub fn table_changed(&self, before: &RouteTable, after: &RouteTable, me: &str) {
        let now = Instant::now();
        let mut incoming = self.incoming.write();
        incoming.retain(|i| i.until > now);
        if self.window.is_zero() {
            return;
        }
        let Some(group) = after.node(me).map(|n| n.group) else {
            return;
        };
        for m in before.moves_to(after, group) {
            if m.to == me && m.from != me {
                incoming.push(Incoming {
                    range: m.range,
                    from: m.from,
                    group,
                    until: now + self.window,
                });
            }
        }
    }

    /// The live previous owner of `key`, if the key lies in a range taken over recently.
    pub fn previous_owner(&self, key: &KeyId, table: &RouteTable) -> Option<PreviousOwner> {
        let now = Instant::now();
        let incoming = self.incoming.read();
        let i = incoming
            .iter()
            .rev()
            .find(|i| i.until > now && i.range.contains(key))?;
        let node = table.node(&i.from).filter(|n| n.alive)?;
        Some(PreviousOwner {
            addr: node.addr.clone(),
            group: i.group,
        })
    }

    /// Whether any hand-over is being read through (a cheap check before looking keys up).
    pub fn any(&self) -> bool {
        let now = Instant::now();
        self.incoming.read().iter().any(|i| i.until > now)
    }
}
