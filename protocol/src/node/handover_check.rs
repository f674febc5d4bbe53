//! Ends a hand-over's read-through as soon as the previous owner has handed everything
//! over, instead of when the window (`handover_read_secs`, hours by default) runs out.
//! While a range taken over is read through, reads of keys this node lacks are relayed to
//! the previous owner and `ITERATE` answers covering it say `MOVING`, which makes a query
//! ask the previous owner too (`docs/PROTOCOL.md` §7.6, §15.10): both cost work for as long
//! as the range is awaited.
//!
//! Once a second, for each previous owner this node still awaits ranges from (not a leaving
//! one: those are read through for as long as they leave), it asks that owner for its route
//! table and then its `STAT`. The owner has handed over everything when
//! 1. its route table gives this node every part of the awaited ranges that this node's
//!    own table still gives it — it adopted the change, and a node plans the transfers a
//!    table calls for, and shows them in `STAT`, before it serves that table
//!    (`membership.rs`); a part that moved on since is its new owner's to await; and
//! 2. its `STAT`, read after the table, lists no pending transfer to this node: each one
//!    ended, and a transfer ends only once every record of its range is held here (or
//!    something newer is).
//!
//! Then the ranges noted up to the check's start are dropped (`IncomingRanges::handed_over`);
//! a range noted later waits for the next check. A failed check changes nothing: the window
//! still bounds how long a range is read through.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::handover::Handovers;
use crate::client::{Client, ClientConfig, ClientSecurity};
use crate::cluster::{owner_agrees, Awaited};
use crate::ring::RouteTable;

/// How often previous owners are asked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long one owner is given to answer a check.
const ASK_FOR: Duration = Duration::from_secs(5);

/// What the check needs from the node.
pub struct HandoverCheck {
    pub handovers: Arc<Handovers>,
    pub routes: watch::Receiver<Option<Arc<RouteTable>>>,
    pub me: String,
    pub security: ClientSecurity,
}

impl HandoverCheck {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
            if *stop.borrow() {
                return;
            }
            for awaited in self.handovers.awaited() {
                let table = self.routes.borrow().clone();
                let Some(owner) = table.as_ref().and_then(|t| t.node(&awaited.from)) else {
                    continue;
                };
                if !owner.reachable() {
                    continue;
                }
                let addr = owner.addr.clone();
                // A paused owner must not hold up the checks of the others.
                let asked = tokio::time::timeout(ASK_FOR, self.handed_over(&addr, &awaited));
                match asked.await.unwrap_or(Ok(false)) {
                    Ok(true) => {
                        let dropped = self.handovers.handed_over(&awaited.from, awaited.seq);
                        tracing::debug!(from = %awaited.from, dropped, "ranges taken over are all here");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::debug!(from = %awaited.from, error = %e, "hand-over check failed")
                    }
                }
            }
        }
    }

    /// Whether `addr` (the previous owner) has handed over every range of `awaited`.
    async fn handed_over(
        &self,
        addr: &str,
        awaited: &Awaited,
    ) -> Result<bool, crate::client::ClientError> {
        let config = ClientConfig {
            name: format!("{} (hand-over check)", self.me),
            security: self.security.clone(),
            ..ClientConfig::default()
        };
        let Some(mine) = self.routes.borrow().clone() else {
            return Ok(false);
        };
        let owner = Client::connect(addr, config).await?;
        let theirs = owner.route_table().await?;
        if !owner_agrees(&mine, &theirs, awaited, &self.me) {
            return Ok(false);
        }
        let stat = owner.stat_value().await?;
        Ok(!pending_to(&stat, &self.me))
    }
}

/// Whether `stat` (a node's `STAT`) lists a transfer to `me` still pending.
fn pending_to(stat: &serde_json::Value, me: &str) -> bool {
    let pending = &stat["cluster"]["rebalancing"]["pending"];
    match pending.as_array() {
        Some(moves) => moves.iter().any(|m| m["to"].as_str() == Some(me)),
        // A node that does not say cannot be taken at its word.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_is_waited_for_while_it_lists_a_transfer_to_us_or_lists_nothing() {
        let stat = |pending: serde_json::Value| serde_json::json!({"cluster": {"rebalancing": {"pending": pending}}});
        let to_c = stat(serde_json::json!([{"to": "c", "fraction_left": 0.1}]));
        assert!(pending_to(&to_c, "c"));
        assert!(!pending_to(&to_c, "d"));
        assert!(!pending_to(&stat(serde_json::json!([])), "c"));
        assert!(pending_to(&serde_json::json!({}), "c"));
    }
}
