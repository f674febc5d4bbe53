//! Replicated reads of every acknowledged key, with the shipping decisions
//! ([`ReplicatedRead`]): each group's owner answers its lookup as the node does (a value, a
//! remembered remove, or nothing), the read goes to the newest version, and read repair
//! copies it (or the remove) to the groups that miss it — conditional copies, stored as the
//! node stores them.

use ringblob_backends::{Backend, Error as BackendError};
use ringblob_engine::{Key, Range};
use ringblob_protocol::cluster::local::{self, Record};
use ringblob_protocol::cluster::{GroupAnswer, ReadStep, ReplicatedRead};
use ringblob_protocol::ring::{RingId, RouteTable};
use ringblob_protocol::wire::KeyId;

use super::checks::{final_table, node_named};
use super::world::{Acked, Sim, GROUPS};

/// What a replicated read answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Value(u64),
    Removed(u64),
    Absent,
    Failed(String),
}

/// Reads the acknowledged keys `pick` selects at quorum through the route table, repairing
/// as it goes; each answer must be the acknowledged operation or something newer. Returns
/// the number of groups read repair wrote to.
pub fn check_replicated_reads(sim: &Sim, pick: fn(&KeyId) -> bool) -> Result<u64, String> {
    let table = final_table(sim)?;
    let mut repaired = 0;
    for (key, acked) in sim.acked.iter().filter(|(k, _)| pick(k)) {
        let (answer, fixed) = read(sim, &table, key)?;
        repaired += fixed;
        let fine = match (&answer, acked.removed) {
            (Answer::Value(v), false) => *v >= acked.ts,
            (Answer::Removed(at), false) => *at > acked.ts,
            (Answer::Value(v), true) => *v > acked.ts,
            (Answer::Removed(_) | Answer::Absent, true) => true,
            _ => false,
        };
        if !fine {
            return Err(reads_wrong(key, acked, &answer));
        }
    }
    Ok(repaired)
}

fn reads_wrong(key: &KeyId, acked: &Acked, answer: &Answer) -> String {
    format!(
        "a replicated read of {} answered {answer:?}, but {acked:?} was acknowledged",
        RingId(*key)
    )
}

/// The backend of each group's owner, in group order.
fn owners(sim: &Sim, table: &RouteTable, key: &KeyId) -> Vec<(u32, std::sync::Arc<dyn Backend>)> {
    (0..GROUPS)
        .filter_map(|g| {
            let n = node_named(sim, &table.owner(g, key)?.name)?;
            Some((g, n.backend.clone()))
        })
        .collect()
}

/// A group's lookup answer, as the node gives it (`dispatch.rs`: `trusted_meta`,
/// `fail_read`).
pub fn lookup(b: &dyn Backend, key: &Key) -> GroupAnswer<String> {
    match b.lookup_column(key, 0) {
        Ok(m) => GroupAnswer::Value {
            timestamp_ns: m.timestamp_ns,
            checksum: m.checksum,
        },
        Err(BackendError::NotFound(_)) => match local::removed_at(b, key, 0) {
            Some(at) => GroupAnswer::Removed {
                at,
                error: format!("removed at {at}"),
            },
            None => GroupAnswer::NotFound("not found".into()),
        },
        Err(e @ BackendError::Corrupt(_)) => GroupAnswer::Damaged(e.to_string()),
        Err(e) => GroupAnswer::Failed(e.to_string()),
    }
}

/// One replicated read of `key`, with its read repair; the answer and how many groups
/// were repaired.
fn read(sim: &Sim, table: &RouteTable, key: &KeyId) -> Result<(Answer, u64), String> {
    let k = Key(*key);
    let owners = owners(sim, table, key);
    let backend_of = |g: u32| owners.iter().find(|(o, _)| *o == g).map(|(_, b)| b.clone());
    let answers = owners
        .iter()
        .map(|(g, b)| (*g, lookup(b.as_ref(), &k)))
        .collect();
    let mut read = ReplicatedRead::new(answers);
    loop {
        match read.next_step() {
            ReadStep::ReadFrom { group } => {
                let Some(b) = backend_of(group) else {
                    return Err(format!("group {group} has no owner"));
                };
                match b.read_column(&k, 0, Range::all()) {
                    Ok(value) => {
                        let done = read.read_ok(group, crc32fast::hash(&value));
                        let record = Record {
                            value: value.into(),
                            timestamp_ns: done.timestamp_ns,
                        };
                        let mut fixed = 0;
                        for g in &done.repair {
                            let stored = backend_of(*g)
                                .map(|b| local::accept_copy(b.as_ref(), k, 0, &record));
                            fixed += u64::from(matches!(stored, Some(Ok(true))));
                        }
                        return Ok((Answer::Value(done.timestamp_ns), fixed));
                    }
                    Err(e) => {
                        let damaged = matches!(e, BackendError::Corrupt(_));
                        read.read_failed(group, e.to_string(), damaged);
                    }
                }
            }
            ReadStep::Removed { at, repair, .. } => {
                let removal = ringblob_backends::Removal::of_column(k, 0, at);
                let mut fixed = 0;
                for g in &repair {
                    let done = backend_of(*g).map(|b| local::accept_remove(b.as_ref(), &removal));
                    fixed += u64::from(matches!(done, Some(Ok(true))));
                }
                return Ok((Answer::Removed(at), fixed));
            }
            ReadStep::Failed(Some(e)) if e == "not found" => return Ok((Answer::Absent, 0)),
            ReadStep::Failed(e) => return Ok((Answer::Failed(e.unwrap_or_default()), 0)),
        }
    }
}
