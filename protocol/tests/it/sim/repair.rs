//! Drives repair rounds — the shipping [`RepairRange`] machine — between live nodes of
//! different groups, as the node's repairer does: local steps on the node's backend, peer
//! steps answered by the peer's backend with the code the node serves them with
//! (`local::range_digest` for `RANGE_DIGEST`, `local::iterate` for `ITERATE`,
//! `local::accept_copy` / `accept_remove` for conditional copies). Repair runs after the
//! chaos, with the network healed, so each request is answered at once.

use ringblob_backends::Backend;
use ringblob_protocol::cluster::local::{self, LocalError};
use ringblob_protocol::cluster::{RepairAnswer, RepairRange, RepairStep, RepairTally, RepairTask};

use super::world::Sim;

/// One round of repair over every live node's tasks; what it did, summed.
pub fn repair_all(sim: &mut Sim) -> Result<RepairTally, String> {
    let mut total = RepairTally::default();
    let live: Vec<usize> = (0..sim.nodes.len()).filter(|i| sim.is_up(*i)).collect();
    for node in live {
        let tasks = match sim.nodes.get(node).and_then(|n| n.cluster.as_ref()) {
            Some(c) => c.repair_tasks(),
            None => continue,
        };
        for task in tasks {
            let peer = sim
                .nodes
                .iter()
                .find(|n| n.name == task.peer && n.cluster.is_some())
                .map(|n| n.backend.clone());
            let (Some(mine), Some(peer)) = (sim.nodes.get(node).map(|n| n.backend.clone()), peer)
            else {
                continue;
            };
            let tally = repair_range(mine.as_ref(), peer.as_ref(), &task)
                .map_err(|e| format!("repairing {:?} with {}: {e}", task.range, task.peer))?;
            total.records_compared += tally.records_compared;
            total.records_pushed += tally.records_pushed;
            total.removes_pushed += tally.removes_pushed;
        }
    }
    Ok(total)
}

/// Runs one task's machine to its end.
fn repair_range(
    mine: &dyn Backend,
    peer: &dyn Backend,
    task: &RepairTask,
) -> Result<RepairTally, String> {
    let mut round = RepairRange::new(task, None);
    let mut answer = RepairAnswer::Start;
    loop {
        let step = round.advance(answer).map_err(|e| e.to_string())?;
        answer = match perform(mine, peer, step) {
            Ok(Some(answer)) => answer,
            Ok(None) => return Ok(round.tally()),
            Err(e) => return Err(e.to_string()),
        };
    }
}

fn perform(
    mine: &dyn Backend,
    peer: &dyn Backend,
    step: RepairStep,
) -> Result<Option<RepairAnswer>, LocalError> {
    let peer_err = |source| LocalError::Backend {
        what: "the peer",
        source,
    };
    Ok(Some(match step {
        RepairStep::Done => return Ok(None),
        RepairStep::DigestMine(range) => {
            RepairAnswer::Digest(local::digest_entries(mine, &range).map_err(|source| {
                LocalError::Backend {
                    what: "summarising",
                    source,
                }
            })?)
        }
        RepairStep::PeerDigest(req) => {
            RepairAnswer::PeerDigest(Some(local::range_digest(peer, &req).map_err(peer_err)?))
        }
        RepairStep::ListPage(req) => RepairAnswer::Page(local::list(mine, &req)?),
        RepairStep::PeerList(req) => {
            let (entries, end) = local::iterate(peer, &req).map_err(peer_err)?;
            RepairAnswer::PeerPage { entries, end }
        }
        RepairStep::ReadRecord { key, column } => {
            RepairAnswer::Record(local::read_record(mine, key, column)?)
        }
        RepairStep::SendCopy {
            key,
            column,
            record,
        } => RepairAnswer::Sent(local::accept_copy(peer, key, column, &record).map_err(peer_err)?),
        RepairStep::DropCopy {
            key,
            column,
            timestamp_ns,
        } => RepairAnswer::Dropped(local::drop_copy(mine, key, column, timestamp_ns)?),
        RepairStep::ListRemoves(span) => RepairAnswer::Removes(local::removes_in(mine, &span)?),
        RepairStep::SendRemove(r) => {
            RepairAnswer::Sent(local::accept_remove(peer, &r).map_err(peer_err)?)
        }
    }))
}
