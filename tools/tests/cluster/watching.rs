//! `WATCH` on real nodes: a key watched through a node that does not own it gets every
//! write and remove, in order; a restarted owner shows as a gap, never as silence; 1,000
//! watchers that do not read cost a node a bounded amount of memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{Client, PutOptions, Target, WatchEvent, WatchTarget};
use ringblob_protocol::ring::RouteTable;
use ringblob_protocol::wire::{Durability, NoteKind, WatchRequest};

use super::member::{self, Member};
use super::{client, converge, json, movement_done};

const NS: &str = "watched";

/// The next change or gap of `w` within 10 s (attachments skipped).
async fn next_event(w: &mut ringblob_protocol::client::Watch) -> WatchEvent {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
        match got {
            Ok(Some(Ok(WatchEvent::Attached { .. }))) => continue,
            Ok(Some(Ok(event))) => return event,
            other => panic!("no event: {other:?}"),
        }
    }
}

/// Waits until `w` is attached somewhere.
async fn attached(w: &mut ringblob_protocol::client::Watch) -> String {
    let got = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
    match got {
        Ok(Some(Ok(WatchEvent::Attached { node, .. }))) => node,
        other => panic!("not attached: {other:?}"),
    }
}

/// The node of `ms` that owns `name` in group 1, and one that does not.
async fn owner_and_other(ms: &[Member], name: &str) -> (usize, usize) {
    let routes = json(&client(&ms[0].addr).await, true).await;
    let table = RouteTable::from_json(&routes.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let key = Target::named(NS, name.to_string()).id();
    let owner = table
        .owner(1, &key)
        .map(|n| n.addr.clone())
        .unwrap_or_default();
    let at = ms
        .iter()
        .position(|m| m.addr == owner)
        .unwrap_or_else(|| panic!("no owner"));
    (at, (at + 1) % ms.len())
}

#[test]
fn a_key_watched_through_a_non_owner_sees_every_change_in_order_and_a_restart_as_a_gap() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut ms = vec![Member::new("w1", 1, root.path(), None)];
    ms[0].start();
    let seed = ms[0].addr.clone();
    for i in 2..=3 {
        let mut m = Member::new(&format!("w{i}"), 1, root.path(), Some(&seed));
        m.start();
        ms.push(m);
    }
    let all: Vec<&Member> = ms.iter().collect();
    rt.block_on(async {
        converge(&all, 3).await;
        movement_done(&all).await;
    });
    let (owner, other) = rt.block_on(owner_and_other(&ms, "k"));
    let target = Target::named(NS, "k".to_string());
    let via = rt.block_on(client(&ms[other].addr));
    let mut w = {
        let _in = rt.enter();
        via.watch(WatchTarget::Key(target.clone()), 1)
    };
    assert_eq!(rt.block_on(attached(&mut w)), ms[owner].addr);

    // 60 writes and 20 removes, through the third node.
    let writer_at = 3 - owner - other;
    rt.block_on(async {
        let c = client(&ms[writer_at].addr).await.in_group(1);
        let o = PutOptions::default();
        let mut expected = Vec::new();
        for i in 0..80u64 {
            if i % 4 == 3 {
                let rm = c.remove(target.clone(), Durability::Default).await;
                assert!(rm.is_ok(), "{i}: {rm:?}");
                expected.push((NoteKind::Remove, 0));
            } else {
                let value = Bytes::from(vec![b'v'; i as usize + 1]);
                let put = c.put_column(target.clone(), 0, value, o).await;
                assert!(put.is_ok(), "{i}: {put:?}");
                expected.push((NoteKind::Write, i + 1));
            }
        }
        let mut seqs = Vec::new();
        for (i, (kind, size)) in expected.iter().enumerate() {
            match next_event(&mut w).await {
                WatchEvent::Change { node, note } => {
                    assert_eq!(node, ms[owner].addr);
                    assert_eq!((note.kind, note.size), (*kind, *size), "change {i}");
                    assert_eq!(note.whole_key, *kind == NoteKind::Remove);
                    seqs.push(note.seq);
                }
                other => panic!("change {i}: {other:?}"),
            }
        }
        assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
    });

    // The owner is killed and comes back: the watcher says changes may have been missed,
    // attaches again, and hears the next change.
    ms[owner].kill9();
    let started = Instant::now();
    match rt.block_on(next_event(&mut w)) {
        WatchEvent::Gap {
            node, missed: None, ..
        } => assert_eq!(node, ms[owner].addr),
        other => panic!("expected a gap: {other:?}"),
    }
    ms[owner].start();
    rt.block_on(async {
        converge(&all_of(&ms), 3).await;
        // Re-attached (a second gap may come first while the node was still down).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
            match got {
                Ok(Some(Ok(WatchEvent::Attached { node, .. }))) if node == ms[owner].addr => break,
                Ok(Some(Ok(WatchEvent::Gap { .. }))) => {}
                other => panic!("not attached again: {other:?}"),
            }
            assert!(Instant::now() < deadline, "never attached again");
        }
        let c = client(&ms[writer_at].addr).await.in_group(1);
        let put = c
            .put_column(
                target.clone(),
                0,
                Bytes::from_static(b"after"),
                PutOptions::default(),
            )
            .await;
        assert!(put.is_ok(), "{put:?}");
        match next_event(&mut w).await {
            WatchEvent::Change { note, .. } => {
                assert_eq!((note.kind, note.seq, note.size), (NoteKind::Write, 1, 5))
            }
            other => panic!("after the restart: {other:?}"),
        }
    });
    println!("restart noticed and re-attached in {:?}", started.elapsed());
}

fn all_of(ms: &[Member]) -> Vec<&Member> {
    ms.iter().collect()
}

/// A namespace watch with a query hears only the objects that match, from every node.
#[test]
fn a_namespace_watch_with_a_query_hears_matching_objects_from_every_node() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut a = Member::new("q1", 1, root.path(), None);
    a.start();
    let mut b = Member::new("q2", 1, root.path(), Some(&a.addr));
    b.start();
    rt.block_on(async {
        converge(&[&a, &b], 2).await;
        movement_done(&[&a, &b]).await;
        let c = client(&a.addr).await.in_group(1);
        let target = WatchTarget::Namespace {
            namespace: NS.into(),
            query: "camera=x100".into(),
            exact: false,
        };
        let mut w = c.watch(target, 1);
        let mut nodes = vec![attached(&mut w).await, attached(&mut w).await];
        nodes.sort();
        let mut want = vec![a.addr.clone(), b.addr.clone()];
        want.sort();
        assert_eq!(nodes, want);
        let space = c
            .attribute_space(NS)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut matching = Vec::new();
        for i in 0..40 {
            let name = format!("p{i}");
            let camera = if i % 2 == 0 { "x100" } else { "gr3" };
            let put = c
                .put_column(
                    Target::named(NS, name.clone()),
                    0,
                    Bytes::from_static(b"x"),
                    PutOptions::default(),
                )
                .await;
            assert!(put.is_ok(), "{put:?}");
            let record = NameRecord {
                attrs: ringblob_backends::names::Attrs::parse_pairs(&[format!("camera={camera}")])
                    .unwrap_or_else(|e| panic!("{e}")),
                ..NameRecord::new(NS, name.clone().into_bytes(), 1)
            };
            let done = c
                .put_record_indexed(&record, None, &space, PutOptions::default())
                .await;
            assert!(done.is_ok(), "{done:?}");
            if i % 2 == 0 {
                matching.push(name);
            }
        }
        let mut heard = Vec::new();
        let mut from = std::collections::BTreeSet::new();
        while heard.len() < matching.len() {
            match next_event(&mut w).await {
                WatchEvent::Change { node, note } => {
                    from.insert(node);
                    heard.push(String::from_utf8_lossy(&note.name).into_owned());
                }
                other => panic!("{other:?}"),
            }
        }
        heard.sort();
        matching.sort();
        assert_eq!(heard, matching);
        assert_eq!(from.len(), 2, "changes came from both nodes");
    });
}

/// The node's resident memory (VmRSS) in bytes.
fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn a_thousand_watchers_that_do_not_read_cost_a_bounded_amount_of_memory() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut m = Member::new("m1", 1, root.path(), None);
    m.start();
    let pid = m.pid().unwrap_or_else(|| panic!("no pid"));
    rt.block_on(async {
        let before = rss_of(pid);
        // 1,000 subscriptions to one key on 10 connections, none of them read.
        let target = Target::named(NS, "hot".to_string());
        let mut held = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..10 {
            let c = client(&m.addr).await;
            for _ in 0..100 {
                let sub = c.subscribe_here(&target, &WatchRequest::default()).await;
                held.push(sub.unwrap_or_else(|e| panic!("{e}")));
            }
            // The subscriptions share the connection: keep it.
            clients.push(c);
        }
        let stat = json(&client(&m.addr).await, false).await;
        assert_eq!(stat["watches"]["subscriptions"], 1000);
        // 5,000 changes of 4 KiB: 5 billion notes' worth if nothing were bounded.
        let writer: Client = client(&m.addr).await;
        let value = Bytes::from(vec![7u8; 4096]);
        for _ in 0..5000 {
            let put = writer
                .put_column(target.clone(), 0, value.clone(), PutOptions::default())
                .await;
            assert!(put.is_ok(), "{put:?}");
        }
        let after = rss_of(pid);
        let stat = json(&client(&m.addr).await, false).await;
        println!(
            "RSS {} MB -> {} MB with 1,000 watchers behind; watches {}",
            before >> 20,
            after >> 20,
            stat["watches"]
        );
        assert!(stat["watches"]["gaps"].as_u64().unwrap_or(0) > 0, "{stat}");
        // Bounded: 64 notes per subscription at most (~150 bytes each) plus socket buffers.
        assert!(after < before + (96 << 20), "{before} -> {after}");
        drop(held);
        drop(clients);
    });
}
