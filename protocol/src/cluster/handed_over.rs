//! Whether a previous owner has adopted a hand-over: the pure half of ending a range's
//! read-through early (the node's `handover_check.rs` asks the owner; the simulator looks
//! at its state). An owner that serves a table giving the receiving node the ranges it
//! awaits has planned the transfers to it (a node plans them before it serves the table);
//! once none of those is pending, every record has arrived (`docs/PROTOCOL.md` §15.10).

use super::Awaited;
use crate::ring::{next_key, GroupRing, KeyRange, NodeIx, RouteTable};

/// `group`'s ring in `table`, and the number `me` has in it.
fn ring_of(table: &RouteTable, group: u32, me: &str) -> Option<(GroupRing, NodeIx)> {
    let ix = table.nodes.iter().position(|n| n.name == me)?;
    let ring = table.rings().remove(&group)?;
    Some((ring, NodeIx(u32::try_from(ix).ok()?)))
}

/// Whether `theirs` (the previous owner's table) gives `me` every part of `awaited`'s
/// ranges that `mine` still gives it. (A part taken over since by another node is that
/// node's to await.)
pub fn owner_agrees(mine: &RouteTable, theirs: &RouteTable, awaited: &Awaited, me: &str) -> bool {
    let (Some((my_ring, my_ix)), Some((their_ring, me_there))) = (
        ring_of(mine, awaited.group, me),
        ring_of(theirs, awaited.group, me),
    ) else {
        return false;
    };
    awaited
        .ranges
        .iter()
        .flat_map(spans)
        .flat_map(|(from, to)| my_ring.split(from, to))
        .filter(|(n, _, _)| *n == my_ix)
        .all(|(_, from, to)| {
            their_ring
                .split(from, to)
                .iter()
                .all(|(n, _, _)| *n == me_there)
        })
}

/// `range` as inclusive key spans without wrapping (one or two).
fn spans(range: &KeyRange) -> Vec<([u8; 32], [u8; 32])> {
    let (start, end) = (range.start_excl.0, range.end_incl.0);
    if range.is_whole_ring() {
        return vec![([0; 32], [0xff; 32])];
    }
    match next_key(&start) {
        // The range starts past 2^256 − 1: it is 0 ..= end.
        None => vec![([0; 32], end)],
        Some(first) if first <= end => vec![(first, end)],
        Some(first) => vec![(first, [0xff; 32]), ([0; 32], end)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::fixtures::{at, c_joins, node};
    use crate::ring::RingId;

    #[test]
    fn ranges_become_spans_that_do_not_wrap() {
        let r = KeyRange::new(at(0x10), at(0x20));
        let mut first = at(0x10).0;
        first[31] = 1;
        assert_eq!(spans(&r), vec![(first, at(0x20).0)]);
        let wrapping = KeyRange::new(at(0xf0), at(0x10));
        assert_eq!(spans(&wrapping).len(), 2);
        assert_eq!(spans(&wrapping)[1], ([0; 32], at(0x10).0));
        let whole = KeyRange::new(at(0x10), at(0x10));
        assert_eq!(spans(&whole), vec![([0; 32], [0xff; 32])]);
        let from_top = KeyRange::new(RingId([0xff; 32]), at(0x10));
        assert_eq!(spans(&from_top), vec![([0; 32], at(0x10).0)]);
    }

    #[test]
    fn the_previous_owner_agrees_once_its_table_gives_us_what_ours_still_does() {
        let (before, after) = c_joins();
        // c took (0xff…, 0x40…] from a.
        let awaited = Awaited {
            from: "a".into(),
            group: 1,
            ranges: vec![KeyRange::new(at(0xff), at(0x40))],
            seq: 1,
        };
        assert!(
            !owner_agrees(&after, &before, &awaited, "c"),
            "a has not adopted it"
        );
        assert!(owner_agrees(&after, &after, &awaited, "c"));
        // d took (0x20…, 0x40…] from c since: c awaits only the rest.
        let later = RouteTable::new(
            3,
            vec![
                node("a", &[0x80]),
                node("b", &[0xff]),
                node("c", &[0x20]),
                node("d", &[0x40]),
            ],
        );
        assert!(owner_agrees(&later, &after, &awaited, "c"));
        assert!(owner_agrees(&later, &later, &awaited, "c"));
        assert!(!owner_agrees(&later, &before, &awaited, "c"));
    }
}
