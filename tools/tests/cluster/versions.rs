//! Versions fixed where a write is accepted, and removes that are versions: a paused owner
//! never applies an abandoned write or remove over a newer acknowledged one, forwarded
//! requests to a paused owner fail within the owner timeout, and a replicated read weighs a
//! remove against another group's older value.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_protocol::client::{Client, ClientError, PutOptions, Quorum};
use ringblob_protocol::ring::RouteTable;
use ringblob_protocol::wire::{Durability, ListRequest, Status};

use super::member::{self, Member};
use super::{client, converge, json, key, movement_done, GROUPS};

/// Keys (by index) that `owner` owns in group 1, by `via`'s route table.
async fn owned_by(via: &Member, owner: &str, want: usize) -> Vec<u64> {
    let routes = json(&client(&via.addr).await, true).await;
    let table =
        RouteTable::from_json(&routes.to_string()).unwrap_or_else(|e| panic!("{e}: {routes}"));
    (0..10_000u64)
        .filter(|i| table.owner(1, &key(*i)).map(|n| n.name.as_str()) == Some(owner))
        .take(want)
        .collect()
}

async fn put_all(c: &Client, keys: &[u64], v: &'static str, w: Quorum) {
    for &i in keys {
        let r = c
            .put_groups(key(i), 0, Bytes::from(v), PutOptions::default(), &GROUPS, w)
            .await;
        assert!(
            r.is_ok(),
            "put {v} of key {i}: {:?}",
            r.err().map(|o| o.to_string())
        );
    }
}

/// A client's write or remove forwarded to an owner that is paused is answered within about
/// the owner timeout (taken by the owner's successor as a hinted change, or `TIMEOUT`); once
/// the owner is declared dead, newer values are acknowledged; when the owner resumes it must
/// not apply the requests still waiting in its socket over them (they are past their
/// deadline, and older by version): every node of both groups reads the newer values.
#[test]
fn a_paused_owner_never_applies_abandoned_requests_over_newer_ones() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut p1 = Member::new("p1", 1, root.path(), None);
    p1.start();
    let mut p2 = Member::new("p2", 1, root.path(), Some(&p1.addr));
    p2.start();
    let mut q1 = Member::new("q1", 2, root.path(), Some(&p1.addr));
    q1.start();
    let (puts, removes, untouched) = rt.block_on(async {
        converge(&[&p1, &p2, &q1], 3).await;
        let keys = owned_by(&p1, "p2", 25).await;
        assert_eq!(keys.len(), 25, "p2 owns too few keys");
        let via = client(&p1.addr).await;
        put_all(&via, &keys, "first", Quorum::All).await;
        let (puts, rest) = keys.split_at(10);
        let (removes, untouched) = rest.split_at(10);
        (puts.to_vec(), removes.to_vec(), untouched.to_vec())
    });

    p2.pause();
    rt.block_on(async {
        // All at once (pipelined through p1), so they reach p2 before it is declared dead.
        let g1 = std::sync::Arc::new(client(&p1.addr).await.in_group(1));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for &i in &puts {
            let c = g1.clone();
            tasks.spawn(async move {
                let r = c.put(key(i), Bytes::from("abandoned"), PutOptions::default());
                (i, "put", r.await.map(|_| ()))
            });
        }
        for &i in &removes {
            let c = g1.clone();
            tasks.spawn(async move { (i, "remove", c.remove(key(i), Durability::Default).await) });
        }
        while let Some(Ok((i, what, r))) = tasks.join_next().await {
            assert!(
                r.is_ok() || matches!(&r, Err(e) if e.status() == Some(Status::Timeout)),
                "a {what} of key {i} at a paused owner: {r:?}"
            );
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(3000),
            "forwarded requests to a paused owner took {took:?}, not about owner_timeout_ms"
        );
        // Until p2 is declared dead, then the newer values are acknowledged by both groups.
        converge(&[&p1, &q1], 2).await;
        // p1 took p2's ranges over without their data: it cannot say a key is absent.
        let g1 = client(&p1.addr).await.in_group(1);
        for &i in &untouched {
            let got = g1.lookup(key(i)).await;
            assert!(
                matches!(&got, Err(e) if e.status() == Some(Status::Unavailable)),
                "key {i} of the down owner, in its group: {got:?}"
            );
        }
        let via = client(&p1.addr).await;
        put_all(&via, &puts, "newer", Quorum::All).await;
        put_all(&via, &removes, "newer", Quorum::All).await;
    });

    p2.resume();
    rt.block_on(async {
        converge(&[&p1, &p2, &q1], 3).await;
        movement_done(&[&p1, &p2, &q1]).await;
        for m in [&p1, &p2, &q1] {
            for g in GROUPS {
                let c = client(&m.addr).await.in_group(g);
                for &i in puts.iter().chain(&removes) {
                    let got = c.get_column(key(i), 0, 0, None).await;
                    assert_eq!(
                        got.as_ref().ok().map(|b| &b[..]),
                        Some(&b"newer"[..]),
                        "key {i} in group {g} through {}: {got:?}",
                        m.name
                    );
                }
            }
        }
    });
}

/// A remove is a version: when one group remembers a remove newer than the value another
/// group still holds, a replicated read answers REMOVED (never the old value) and sends the
/// remove to that group, instead of copying the value back over the remove.
#[test]
fn a_replicated_read_weighs_a_remove_against_an_older_value() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (x, y) = Member::start_two_groups(["x1", "y1"], root.path());
    rt.block_on(async {
        converge(&[&x, &y], 2).await;
        let c = client(&x.addr).await;
        put_all(&c, &[1, 2], "value", Quorum::All).await;
        // The remove reaches group 1 only (as when group 2's node missed it).
        let r = c.in_group(1).remove(key(1), Durability::Default).await;
        assert!(r.is_ok(), "{r:?}");
        let in_1 = c.in_group(1).get_column(key(1), 0, 0, None).await;
        let removed_at = in_1.as_ref().err().and_then(|e| e.removed_at());
        assert!(
            removed_at.is_some(),
            "group 1 does not say when it removed the key: {in_1:?}"
        );
        // Group 2 first in preference order: its old value must not win.
        let got = c.get_groups(key(1), 0, &[2, 1]).await;
        let err = got.as_ref().err();
        assert_eq!(
            err.and_then(|e| e.status()),
            Some(Status::Removed),
            "{got:?}"
        );
        assert!(err.is_some_and(|e| e.is_not_found()));
        // Read repair sent the remove to group 2; group 1 was not given the value back.
        let in_2 = c.in_group(2).get_column(key(1), 0, 0, None).await;
        assert_eq!(
            in_2.as_ref().err().and_then(|e| e.removed_at()),
            removed_at,
            "{in_2:?}"
        );
        let in_1 = c.in_group(1).get_column(key(1), 0, 0, None).await;
        assert!(in_1.is_err(), "the removed value came back in group 1");
        // A key that was not removed still reads.
        let got = c.get_groups(key(2), 0, &[2, 1]).await;
        assert_eq!(got.ok().map(|r| r.value), Some(Bytes::from("value")));
    });
}

/// One write sent to several groups is stored at one version in all of them, and one
/// remove likewise: no group's copy is newer than another's by its node's clock, so a
/// replicated read has nothing to repair and every group's entity tag is the same.
#[test]
fn a_write_to_several_groups_carries_one_version_everywhere() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let (x, y) = Member::start_two_groups(["x1", "y1"], root.path());
    rt.block_on(async {
        converge(&[&x, &y], 2).await;
        let c = client(&x.addr).await;
        let keys: Vec<u64> = (0..8).collect();
        put_all(&c, &keys, "value", Quorum::All).await;
        for &i in &keys {
            let mut stamps = Vec::new();
            for g in GROUPS {
                let meta = c.in_group(g).lookup(key(i)).await;
                stamps.push(meta.map(|m| m.timestamp_ns).ok());
            }
            assert!(
                stamps[0].is_some() && stamps.iter().all(|s| *s == stamps[0]),
                "key {i}: stored at {stamps:?} in groups {GROUPS:?}"
            );
        }
        for &i in &keys[..4] {
            let r = c
                .remove_groups(key(i), Durability::Default, &GROUPS, Quorum::All)
                .await;
            assert!(
                r.is_ok(),
                "remove {i}: {:?}",
                r.err().map(|o| o.to_string())
            );
            let mut removed_at = Vec::new();
            for g in GROUPS {
                let got = c.in_group(g).get_column(key(i), 0, 0, None).await;
                removed_at.push(got.as_ref().err().and_then(|e| e.removed_at()));
            }
            assert!(
                removed_at[0].is_some() && removed_at.iter().all(|r| *r == removed_at[0]),
                "key {i}: removed at {removed_at:?} in groups {GROUPS:?}"
            );
        }
    });
}

/// A node hands a range over when another joins its group, then the joiner takes removes
/// and dies: the range falls back to the first node, which must not serve the values it
/// handed over (it dropped them): in its group alone it answers UNAVAILABLE or NOT_FOUND,
/// never the removed value, and replicated reads answer REMOVED.
#[test]
fn a_range_that_falls_back_never_serves_a_removed_value() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut a = Member::new("f1", 1, root.path(), None);
    a.start();
    let mut g = Member::new("g1", 2, root.path(), Some(&a.addr));
    g.start();
    let keys: Vec<u64> = (0..60).collect();
    rt.block_on(async {
        converge(&[&a, &g], 2).await;
        put_all(&client(&a.addr).await, &keys, "value", Quorum::All).await;
    });
    let mut b = Member::new("f2", 1, root.path(), Some(&a.addr));
    b.start();
    let moved = rt.block_on(async {
        converge(&[&a, &g, &b], 3).await;
        movement_done(&[&a, &g, &b]).await;
        let moved = owned_by(&a, "f2", 60).await;
        let moved: Vec<u64> = moved.into_iter().filter(|i| *i < 60).collect();
        assert!(!moved.is_empty(), "f2 took none of the keys");
        let s = json(&client(&a.addr).await, false).await;
        let dropped = s["cluster"]["rebalancing"]["records_dropped"].as_u64();
        assert_eq!(dropped, Some(moved.len() as u64), "{s}");
        // Removed through f2's group and the other group, acknowledged by both.
        let c = client(&b.addr).await;
        for &i in &moved {
            let r = c
                .remove_groups(key(i), Durability::Default, &GROUPS, Quorum::All)
                .await;
            assert!(
                r.is_ok(),
                "remove {i}: {:?}",
                r.err().map(|o| o.to_string())
            );
        }
        moved
    });
    b.kill9();
    rt.block_on(async {
        converge(&[&a, &g], 2).await;
        let in_1 = client(&a.addr).await.in_group(1);
        let both = client(&a.addr).await;
        for &i in &moved {
            let got = in_1.get_column(key(i), 0, 0, None).await;
            assert!(
                matches!(&got, Err(e) if e.is_not_found() || e.status() == Some(Status::Unavailable)),
                "removed key {i} read back from the node that handed it over: {got:?}"
            );
            let got = both.get_groups(key(i), 0, &GROUPS).await;
            assert!(
                matches!(&got, Err(e) if e.is_not_found()),
                "removed key {i} through both groups: {got:?}"
            );
        }
    });
}

/// A LIST of a node's namespaces.
fn names() -> ListRequest {
    ListRequest {
        namespaces: true,
        limit: 10,
        ..Default::default()
    }
}

/// A node that was away longer than the remove retention starts quarantined: the removes
/// made meanwhile are forgotten everywhere, so its older records may be removed values. It
/// never serves one: reads of its older records answer UNAVAILABLE until repair has
/// compared them with the other group and dropped those the other group lacks; then they
/// are gone, and what the other group holds too is served again.
#[test]
fn a_node_away_longer_than_the_remove_retention_brings_nothing_back() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let short = "remove_retention_secs = 4\nhandover_read_secs = 2\nrepair_interval_secs = 1\n";
    let mut x = Member::new("q1", 1, root.path(), None).with_config(short);
    x.start();
    let mut y = Member::new("r1", 2, root.path(), Some(&x.addr)).with_config(short);
    y.start();
    let keys: Vec<u64> = (0..20).collect();
    let (removed, kept) = keys.split_at(10);
    rt.block_on(async {
        converge(&[&x, &y], 2).await;
        put_all(&client(&x.addr).await, &keys, "value", Quorum::All).await;
    });
    x.kill9();
    rt.block_on(async {
        converge(&[&y], 1).await;
        let c = client(&y.addr).await.in_group(2);
        for &i in removed {
            let r = c.remove(key(i), Durability::Default).await;
            assert!(r.is_ok(), "remove {i}: {r:?}");
        }
        // Past the retention: group 2 no longer remembers the removes.
        tokio::time::sleep(Duration::from_secs(6)).await;
    });
    x.start();
    rt.block_on(async {
        converge(&[&x, &y], 2).await;
        let in_1 = client(&x.addr).await.in_group(1);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut refused_lists = 0;
        loop {
            for &i in removed {
                let got = in_1.get_column(key(i), 0, 0, None).await;
                assert!(
                    got.is_err(),
                    "a value removed while q1 was away came back through q1: key {i}"
                );
            }
            // Nor through a BULK_READ of q1's own storage (what queries read).
            let asked: Vec<[u8; 32]> = removed.iter().map(|i| key(*i)).collect();
            let bulk = client(&x.addr).await.bulk_read_column(asked, 0).await;
            let items = bulk.unwrap_or_else(|e| panic!("BULK_READ: {e}"));
            assert!(
                items
                    .iter()
                    .all(|it| it.status != ringblob_protocol::wire::Status::Ok),
                "a value removed while q1 was away came back through q1's BULK_READ"
            );
            // Nor through a listing of q1's name index: its LIST is refused while it is
            // quarantined (asked before the STAT below: still quarantined then means it was
            // when it answered).
            let listed = client(&x.addr).await.list_local(names()).await;
            let s = json(&client(&x.addr).await, false).await;
            if s["quarantined_before_ns"].is_null() {
                break;
            }
            refused_lists += 1;
            assert!(
                matches!(
                    &listed,
                    Err(ClientError::Status {
                        status: Status::Unavailable,
                        ..
                    })
                ),
                "a quarantined node listed its names: {listed:?}"
            );
            assert!(Instant::now() < deadline, "the quarantine never ended: {s}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            refused_lists > 0,
            "the quarantine ended before any LIST was asked"
        );
        let listed = client(&x.addr).await.list_local(names()).await;
        assert!(
            listed.is_ok(),
            "LIST is answered after the quarantine: {listed:?}"
        );
        let both = client(&x.addr).await;
        for &i in removed {
            let got = in_1.get_column(key(i), 0, 0, None).await;
            assert!(
                matches!(&got, Err(e) if e.is_not_found()),
                "removed key {i} in group 1 after the quarantine: {got:?}"
            );
            let got = both.get_groups(key(i), 0, &GROUPS).await;
            assert!(
                matches!(&got, Err(e) if e.is_not_found()),
                "removed key {i}: {got:?}"
            );
        }
        for &i in kept {
            let got = in_1.get_column(key(i), 0, 0, None).await;
            assert_eq!(
                got.ok(),
                Some(Bytes::from("value")),
                "kept key {i} in group 1"
            );
        }
        let s = json(&client(&x.addr).await, false).await;
        let dropped = s["cluster"]["repair"]["quarantine_dropped"].as_u64();
        assert_eq!(dropped, Some(removed.len() as u64), "{s}");
    });
}
