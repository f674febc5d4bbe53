//! Replication across groups, the decisions (as in Elliptics, the client replicates): a
//! write is sent to every group and succeeds when W acknowledge ([`WriteQuorum`]); a read
//! ([`ReplicatedRead`]) asks every group for the value's version, reads from the group with
//! the newest one (preference order breaking ties, falling over on errors), and repairs the
//! groups that miss it or hold something older — a remove is a version too. The client
//! (`client::groups`) and the simulator drive these same types; the network is theirs.

use std::collections::BTreeSet;

/// How many groups must acknowledge a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Quorum {
    One,
    /// More than half.
    #[default]
    Majority,
    All,
}

impl Quorum {
    /// Acknowledgements needed out of `n` groups.
    pub fn needed(self, n: usize) -> usize {
        match self {
            Quorum::One => 1.min(n),
            Quorum::Majority => n / 2 + 1,
            Quorum::All => n,
        }
    }
}

/// A write quorum name that is none of `one`, `quorum` (or `majority`), `all`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown write quorum {0:?} (one, quorum or all)")]
pub struct UnknownQuorum(pub String);

impl std::str::FromStr for Quorum {
    type Err = UnknownQuorum;
    fn from_str(s: &str) -> Result<Self, UnknownQuorum> {
        match s {
            "one" => Ok(Quorum::One),
            "quorum" | "majority" => Ok(Quorum::Majority),
            "all" => Ok(Quorum::All),
            other => Err(UnknownQuorum(other.to_string())),
        }
    }
}

/// The acknowledgements of one replicated write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteQuorum {
    needed: usize,
    groups: usize,
    acked: BTreeSet<u32>,
    failed: BTreeSet<u32>,
}

impl WriteQuorum {
    /// A write to `groups` groups that needs `quorum` of them.
    pub fn new(groups: usize, quorum: Quorum) -> WriteQuorum {
        WriteQuorum {
            needed: quorum.needed(groups),
            groups,
            acked: BTreeSet::new(),
            failed: BTreeSet::new(),
        }
    }

    /// Group `g` acknowledged (a repeated answer counts once).
    pub fn ack(&mut self, g: u32) {
        self.acked.insert(g);
    }

    /// Group `g` failed.
    pub fn fail(&mut self, g: u32) {
        self.failed.insert(g);
    }

    /// Enough groups acknowledged: the write succeeded.
    pub fn met(&self) -> bool {
        self.acked.len() >= self.needed
    }

    /// Too many groups failed for the write ever to succeed.
    pub fn lost(&self) -> bool {
        self.groups.saturating_sub(self.failed.len()) < self.needed
    }

    /// The groups that acknowledged, in order.
    pub fn acked(&self) -> impl Iterator<Item = u32> + '_ {
        self.acked.iter().copied()
    }
}

/// What one group answered to a replicated read's lookup. `E` is the driver's error, kept
/// for the read's final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAnswer<E> {
    /// A value written at `timestamp_ns` whose bytes have CRC-32 `checksum`.
    Value { timestamp_ns: u64, checksum: u32 },
    /// Removed at `at` (the group remembers the remove).
    Removed { at: u64, error: E },
    /// Nothing there.
    NotFound(E),
    /// The group cannot tell now (its owner took the range over from a node that is down).
    Unavailable(E),
    /// The group's newest record is damaged.
    Damaged(E),
    /// Any other failure (timeout, connection).
    Failed(E),
}

impl<E> GroupAnswer<E> {
    fn into_error(self) -> Option<E> {
        match self {
            GroupAnswer::Value { .. } => None,
            GroupAnswer::Removed { error, .. }
            | GroupAnswer::NotFound(error)
            | GroupAnswer::Unavailable(error)
            | GroupAnswer::Damaged(error)
            | GroupAnswer::Failed(error) => Some(error),
        }
    }

    fn error(&self) -> Option<&E> {
        match self {
            GroupAnswer::Value { .. } => None,
            GroupAnswer::Removed { error, .. }
            | GroupAnswer::NotFound(error)
            | GroupAnswer::Unavailable(error)
            | GroupAnswer::Damaged(error)
            | GroupAnswer::Failed(error) => Some(error),
        }
    }
}

/// What a replicated read does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStep<E> {
    /// Read the value from `group` and report with [`ReplicatedRead::read_ok`] or
    /// [`ReplicatedRead::read_failed`].
    ReadFrom { group: u32 },
    /// The newest version is a remove at `at`: send it (a copied remove, `IF_NEWER`) to
    /// `repair`; the read's answer is `REMOVED` at `at`.
    Removed { at: u64, repair: Vec<u32>, error: E },
    /// No group could serve the value: answer with this error (`None`: no group was
    /// asked).
    Failed(Option<E>),
}

/// A value read from a group: copy it (conditional, at `timestamp_ns`) to `repair`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadDone {
    pub timestamp_ns: u64,
    /// Empty when the bytes read are not the version looked up (overwritten between the
    /// lookup and the read): their timestamp is unknown, so nothing is repaired.
    pub repair: Vec<u32>,
}

/// One replicated read (see the module docs).
#[derive(Debug, Clone)]
pub struct ReplicatedRead<E> {
    answers: Vec<(u32, GroupAnswer<E>)>,
    /// Indexes of `answers` holding values, newest first, still to try.
    order: Vec<usize>,
    /// Groups whose copy failed its checks when read: repaired like stale ones.
    damaged: Vec<u32>,
    last_error: Option<E>,
}

impl<E> ReplicatedRead<E> {
    /// A read given every group's lookup answer, in preference order.
    pub fn new(answers: Vec<(u32, GroupAnswer<E>)>) -> ReplicatedRead<E> {
        let mut order: Vec<usize> = (0..answers.len())
            .filter(|i| matches!(answers.get(*i), Some((_, GroupAnswer::Value { .. }))))
            .collect();
        // Newest first; the sort is stable, so preference order breaks ties.
        order.sort_by_key(|i| std::cmp::Reverse(version(answers.get(*i).map(|(_, a)| a))));
        order.reverse();
        ReplicatedRead {
            answers,
            order,
            damaged: Vec::new(),
            last_error: None,
        }
    }

    /// The newest value's version, if any group has a value.
    fn newest_value(&self) -> Option<u64> {
        self.answers
            .iter()
            .filter_map(|(_, a)| match a {
                GroupAnswer::Value { timestamp_ns, .. } => Some(*timestamp_ns),
                _ => None,
            })
            .max()
    }

    /// What to do next.
    pub fn next_step(&mut self) -> ReadStep<E> {
        if let Some(step) = self.removed() {
            return step;
        }
        if let Some(i) = self.order.pop() {
            if let Some((group, _)) = self.answers.get(i) {
                return ReadStep::ReadFrom { group: *group };
            }
        }
        ReadStep::Failed(self.final_error())
    }

    /// A remove at least as new as every value wins: the read is `REMOVED`, and groups that
    /// answered an older value or nothing are sent the remove.
    fn removed(&mut self) -> Option<ReadStep<E>> {
        let (ix, at) = self
            .answers
            .iter()
            .enumerate()
            .filter_map(|(i, (_, a))| match a {
                GroupAnswer::Removed { at, .. } => Some((i, *at)),
                _ => None,
            })
            .max_by_key(|(_, at)| *at)?;
        if self.newest_value().is_some_and(|v| v > at) {
            return None;
        }
        let repair = self
            .answers
            .iter()
            .filter(|(_, a)| match a {
                GroupAnswer::Value { timestamp_ns, .. } => *timestamp_ns < at,
                GroupAnswer::NotFound(_) => true,
                _ => false,
            })
            .map(|(g, _)| *g)
            .collect();
        self.order.clear();
        // The read ends here: the answer's error is moved out.
        let (_, answer) = self.answers.swap_remove(ix);
        let error = answer.into_error()?;
        Some(ReadStep::Removed { at, repair, error })
    }

    /// Reading from `group` failed; `damaged` if its copy failed its checks.
    pub fn read_failed(&mut self, group: u32, error: E, damaged: bool) {
        if damaged && !self.damaged.contains(&group) {
            self.damaged.push(group);
        }
        self.last_error = Some(error);
    }

    /// `group` served bytes with CRC-32 `checksum`: the groups to repair with them.
    pub fn read_ok(&mut self, group: u32, checksum: u32) -> ReadDone {
        let looked_up = self.answers.iter().find_map(|(g, a)| match a {
            GroupAnswer::Value {
                timestamp_ns,
                checksum: c,
            } if *g == group => Some((*timestamp_ns, *c)),
            _ => None,
        });
        let Some((timestamp_ns, expected)) = looked_up else {
            return ReadDone {
                timestamp_ns: 0,
                repair: Vec::new(),
            };
        };
        if expected != checksum {
            return ReadDone {
                timestamp_ns,
                repair: Vec::new(),
            };
        }
        let mut repair = self.stale(timestamp_ns, checksum);
        for d in &self.damaged {
            if !repair.contains(d) && *d != group {
                repair.push(*d);
            }
        }
        self.order.clear();
        ReadDone {
            timestamp_ns,
            repair,
        }
    }

    /// Groups that answered `NOT_FOUND`, `UNAVAILABLE` or damaged, remember a remove older
    /// than the value, or hold an older value with other bytes.
    fn stale(&self, newest: u64, checksum: u32) -> Vec<u32> {
        self.answers
            .iter()
            .filter(|(_, a)| match a {
                GroupAnswer::Value {
                    timestamp_ns,
                    checksum: c,
                } => *c != checksum && *timestamp_ns < newest,
                GroupAnswer::NotFound(_)
                | GroupAnswer::Unavailable(_)
                | GroupAnswer::Damaged(_) => true,
                GroupAnswer::Removed { at, .. } => *at < newest,
                GroupAnswer::Failed(_) => false,
            })
            .map(|(g, _)| *g)
            .collect()
    }

    /// No group could serve the value: the last read's error, or a group that says the
    /// value is absent (it answers for the others that could not tell), or the first error.
    fn final_error(&mut self) -> Option<E> {
        if let Some(e) = self.last_error.take() {
            return Some(e);
        }
        let absent = self
            .answers
            .iter()
            .position(|(_, a)| matches!(a, GroupAnswer::NotFound(_) | GroupAnswer::Removed { .. }));
        let first = self.answers.iter().position(|(_, a)| a.error().is_some());
        let ix = absent.or(first)?;
        let (_, answer) = self.answers.swap_remove(ix);
        answer.into_error()
    }
}

fn version<E>(a: Option<&GroupAnswer<E>>) -> u64 {
    match a {
        Some(GroupAnswer::Value { timestamp_ns, .. }) => *timestamp_ns,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type A = GroupAnswer<&'static str>;

    fn value(ts: u64, checksum: u32) -> A {
        GroupAnswer::Value {
            timestamp_ns: ts,
            checksum,
        }
    }

    #[test]
    fn the_newest_value_is_read_first_preference_breaking_ties_and_stale_groups_repaired() {
        let mut read = ReplicatedRead::new(vec![
            (0, value(5, 50)),
            (1, value(9, 90)),
            (2, value(9, 90)),
            (3, GroupAnswer::NotFound("absent")),
            (
                4,
                GroupAnswer::Removed {
                    at: 4,
                    error: "removed",
                },
            ),
            (5, GroupAnswer::Failed("timeout")),
        ]);
        assert_eq!(read.next_step(), ReadStep::ReadFrom { group: 1 });
        read.read_failed(1, "damaged", true);
        assert_eq!(read.next_step(), ReadStep::ReadFrom { group: 2 });
        let done = read.read_ok(2, 90);
        assert_eq!(done.timestamp_ns, 9);
        // 0: older other bytes; 3: absent; 4: removed before; 1: damaged. Not 5: unknown.
        assert_eq!(done.repair, vec![0, 3, 4, 1]);
    }

    #[test]
    fn bytes_that_are_not_the_version_looked_up_repair_nothing() {
        let mut read =
            ReplicatedRead::new(vec![(0, value(9, 90)), (1, GroupAnswer::NotFound("x"))]);
        assert_eq!(read.next_step(), ReadStep::ReadFrom { group: 0 });
        assert!(read.read_ok(0, 91).repair.is_empty());
    }

    #[test]
    fn a_remove_as_new_as_every_value_wins_and_is_carried() {
        let mut read = ReplicatedRead::new(vec![
            (0, value(5, 50)),
            (
                1,
                GroupAnswer::Removed {
                    at: 7,
                    error: "removed at 7",
                },
            ),
            (2, GroupAnswer::NotFound("absent")),
            (3, value(8, 80)),
        ]);
        // A newer value (8) beats the remove (7).
        assert_eq!(read.next_step(), ReadStep::ReadFrom { group: 3 });
        let mut read = ReplicatedRead::new(vec![
            (0, value(5, 50)),
            (
                1,
                GroupAnswer::Removed {
                    at: 7,
                    error: "removed at 7",
                },
            ),
            (2, GroupAnswer::NotFound("absent")),
            (3, GroupAnswer::Unavailable("unavailable")),
        ]);
        assert_eq!(
            read.next_step(),
            ReadStep::Removed {
                at: 7,
                repair: vec![0, 2],
                error: "removed at 7"
            }
        );
    }

    #[test]
    fn with_nothing_readable_an_absent_group_answers_for_the_rest() {
        let mut read: ReplicatedRead<&str> = ReplicatedRead::new(vec![
            (0, GroupAnswer::Failed("timeout")),
            (1, GroupAnswer::NotFound("absent")),
        ]);
        assert_eq!(read.next_step(), ReadStep::Failed(Some("absent")));
        let mut read: ReplicatedRead<&str> =
            ReplicatedRead::new(vec![(0, value(3, 30)), (1, GroupAnswer::Failed("timeout"))]);
        assert_eq!(read.next_step(), ReadStep::ReadFrom { group: 0 });
        read.read_failed(0, "reset", false);
        assert_eq!(read.next_step(), ReadStep::Failed(Some("reset")));
        let mut read: ReplicatedRead<&str> = ReplicatedRead::new(Vec::new());
        assert_eq!(read.next_step(), ReadStep::Failed(None));
    }

    #[test]
    fn a_write_quorum_is_met_or_lost() {
        let mut q = WriteQuorum::new(3, Quorum::Majority);
        q.ack(0);
        q.ack(0);
        assert!(!q.met() && !q.lost());
        q.fail(1);
        q.fail(2);
        assert!(q.lost());
        q.ack(2);
        assert_eq!(Quorum::All.needed(3), 3);
        assert_eq!(Quorum::One.needed(0), 0);
        assert_eq!("quorum".parse::<Quorum>(), Ok(Quorum::Majority));
        assert!("most".parse::<Quorum>().is_err());
    }
}
