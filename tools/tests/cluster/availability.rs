//! Availability with one node paused: two groups of three, writes and removes at
//! `--w quorum` through random nodes, one node stopped with SIGSTOP long enough to be
//! declared dead and then resumed. Writes through the other nodes keep succeeding (hinted
//! hand-off), reads through both groups keep answering, and after healing every node and each
//! group alone reads the latest acknowledged version of every key: nothing lost, nothing
//! removed comes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_protocol::client::{Client, PutOptions, Quorum};
use ringblob_protocol::wire::Durability;

use super::member::{self, Member};
use super::{alive_seen_by, client, converge, json, key, movement_done, rings, settled, GROUPS};

const KEYS: u64 = 40;

/// What the latest acknowledged change of a key left: a value, or nothing (removed).
#[derive(Clone, Debug, PartialEq)]
enum Latest {
    Value(Bytes),
    Removed,
}

/// Every acknowledged change, and the keys whose latest change failed (it may or may not
/// have landed, so they are not checked until a later change is acknowledged).
#[derive(Default)]
struct Ledger {
    latest: BTreeMap<u64, Latest>,
    uncertain: BTreeMap<u64, ()>,
    acked: u64,
    failed_via_paused: u64,
    failed_via_others: Vec<String>,
    slowest: Duration,
    /// Records handed over between nodes (ring changes; also a hinted key a successor hands
    /// back to a returning owner whose restart it saw), all nodes.
    records_moved: u64,
    /// Whether any node's ring IDs changed between the pause and the end.
    ring_changed: bool,
    /// Keys whose hinted changes reached their owner, all nodes.
    hints_replayed: u64,
}

/// A small deterministic generator (xorshift): the same run every time.
struct Dice(u64);

impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

async fn one_change(
    ms: &[Member],
    clients: &[Client],
    paused: usize,
    dice: &mut Dice,
    l: &mut Ledger,
    seq: u64,
) {
    let via = dice.next(ms.len() as u64) as usize;
    let k = dice.next(KEYS);
    let remove = dice.next(10) == 0;
    let c = &clients[via];
    let started = Instant::now();
    let (ok, what) = if remove {
        let r = c
            .remove_groups(key(k), Durability::Default, &GROUPS, Quorum::Majority)
            .await;
        let ok = match &r {
            Ok(_) => true,
            Err(o) if via != paused => {
                l.failed_via_others
                    .push(format!("remove of key {k} via {}: {o}", ms[via].name));
                false
            }
            Err(_) => false,
        };
        (ok, Latest::Removed)
    } else {
        let v = Bytes::from(format!("key {k} change {seq}"));
        let r = c
            .put_groups(
                key(k),
                0,
                v.clone(),
                PutOptions::default(),
                &GROUPS,
                Quorum::Majority,
            )
            .await;
        let ok = match &r {
            Ok(_) => true,
            Err(o) if via != paused => {
                l.failed_via_others
                    .push(format!("key {k} via {}: {o}", ms[via].name));
                false
            }
            Err(_) => false,
        };
        (ok, Latest::Value(v))
    };
    l.slowest = l.slowest.max(started.elapsed());
    if ok {
        l.acked += 1;
        l.latest.insert(k, what);
        l.uncertain.remove(&k);
    } else {
        if via == paused {
            l.failed_via_paused += 1;
        }
        l.uncertain.insert(k, ());
    }
}

async fn records_moved(ms: &[Member]) -> Vec<u64> {
    let mut out = Vec::new();
    for m in ms {
        let s = json(&client(&m.addr).await, false).await;
        let sent = s["cluster"]["rebalancing"]["records_sent"].as_u64();
        out.push(sent.unwrap_or(0));
    }
    out
}

/// Records handed over between `before` and `after` (per node). A node that was restarted
/// in between counts from zero again: everything it reports was sent since (subtracting
/// its earlier count would underflow, or hide what it sent).
fn moved_between(before: &[u64], after: &[u64], restarted: Option<usize>) -> u64 {
    (0..after.len())
        .map(|i| {
            let now = after.get(i).copied().unwrap_or(0);
            match Some(i) == restarted {
                true => now,
                false => now.saturating_sub(before.get(i).copied().unwrap_or(0)),
            }
        })
        .sum()
}

/// What `c` reads of key `k` through both groups: `Removed` for not found. A failure says
/// what each group answers to a lookup right after, so the message explains itself.
async fn read_both(c: &Client, k: u64) -> Result<Latest, String> {
    match c.get_groups(key(k), 0, &GROUPS).await {
        Ok(r) => Ok(Latest::Value(r.value)),
        Err(e) if e.is_not_found() => Ok(Latest::Removed),
        Err(e) => {
            let mut each = Vec::new();
            for g in GROUPS {
                let answer = c.in_group(g).lookup_column(key(k), 0).await;
                each.push(format!("group {g}: {:?}", answer.map(|m| m.timestamp_ns)));
            }
            Err(format!("{e} (lookups after: {})", each.join("; ")))
        }
    }
}

async fn read_group(c: &Client, g: u32, k: u64) -> Result<Latest, String> {
    match c.in_group(g).get_column(key(k), 0, 0, None).await {
        Ok(v) => Ok(Latest::Value(v)),
        Err(e) if e.is_not_found() => Ok(Latest::Removed),
        Err(e) => Err(e.to_string()),
    }
}

/// Paused for less than the grace period: the node keeps its ranges (nothing moves), its
/// writes are hinted to its successor and handed back when it resumes.
#[test]
fn writes_stay_available_while_a_node_is_paused_within_its_grace() {
    let l = pause_one_of_six("down_grace_secs = 60\n", false, Fault::Pause);
    assert_eq!(
        l.records_moved, 0,
        "ranges moved during the grace period (ring IDs changed: {})",
        l.ring_changed
    );
    assert!(l.hints_replayed > 0, "no hinted change was handed back");
}

/// Paused for longer than the grace period: its ranges move to its successor (which holds
/// the hinted writes already) and come back when it resumes.
#[test]
fn writes_stay_available_while_a_node_is_paused_past_its_grace() {
    let l = pause_one_of_six("down_grace_secs = 2\n", true, Fault::Pause);
    assert!(l.records_moved > 0, "nothing moved after the grace period");
}

/// Six nodes, one paused (or killed) for 10 s (`until_dead`: and until the others mark it
/// dead, plus 3 s), then resumed (or restarted).
/// `kill -9` and a restart 10 s later, within the grace period: nothing moves; the changes
/// hinted meanwhile are handed to the restarted node.
#[test]
fn writes_stay_available_while_a_node_is_killed_and_restarted() {
    let l = pause_one_of_six("down_grace_secs = 60\n", false, Fault::Kill);
    assert_eq!(
        l.records_moved, 0,
        "ranges moved during the grace period (ring IDs changed: {})",
        l.ring_changed
    );
    assert!(l.hints_replayed > 0, "no hinted change was handed back");
}

/// How the node is taken away.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// SIGKILL, then a restart.
    Kill,
}

fn pause_one_of_six(grace: &str, until_dead: bool, fault: Fault) -> Ledger {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let mut first = Member::new("v1", 1, root.path(), None).with_config(grace);
    first.start();
    let seed = first.addr.clone();
    let mut ms = vec![first];
    for (name, group) in [("v2", 1), ("v3", 1), ("w1", 2), ("w2", 2), ("w3", 2)] {
        let mut m = Member::new(name, group, root.path(), Some(&seed)).with_config(grace);
        m.start();
        ms.push(m);
    }
    let paused = 1; // v2
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut l = Ledger::default();
    let mut seq = 0;
    let clients = rt.block_on(async {
        let all: Vec<&Member> = ms.iter().collect();
        settled(&all).await;
        let mut clients = Vec::new();
        let quick = ringblob_protocol::client::ClientConfig {
            timeout: Duration::from_secs(3),
            ..ringblob_protocol::client::ClientConfig::default()
        };
        for m in &ms {
            let c = Client::connect(&m.addr, quick.clone()).await;
            clients.push(c.unwrap_or_else(|e| panic!("connect {}: {e}", m.name)));
        }
        for _ in 0..100 {
            seq += 1;
            one_change(&ms, &clients, usize::MAX, &mut dice, &mut l, seq).await;
        }
        clients
    });
    assert!(
        l.failed_via_others.is_empty(),
        "before the pause: {:?}",
        l.failed_via_others
    );

    // Whatever the start-up moved (joins, rebalancing) is not counted.
    let moved_before = rt.block_on(records_moved(&ms));
    let rings_before = rt.block_on(rings(&ms[0]));
    match fault {
        Fault::Pause => ms[paused].pause(),
        Fault::Kill => ms[paused].kill9(),
    }
    let mut read_failures = Vec::new();
    rt.block_on(async {
        let pause_started = Instant::now();
        let mut dead_at = None;
        loop {
            let long_enough = pause_started.elapsed() >= Duration::from_secs(10);
            if until_dead && dead_at.is_none() && alive_seen_by(&ms[0]).await == 5 {
                dead_at = Some(Instant::now());
            }
            let dead_long_enough = dead_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3));
            if long_enough && (!until_dead || dead_long_enough) {
                break;
            }
            assert!(
                pause_started.elapsed() < Duration::from_secs(60),
                "the paused node was never marked dead"
            );
            seq += 1;
            one_change(&ms, &clients, paused, &mut dice, &mut l, seq).await;
            // A read of a settled key through a live node, both groups.
            let k = dice.next(KEYS);
            let via = (paused + 1 + dice.next(5) as usize) % ms.len();
            if l.uncertain.contains_key(&k) {
                continue;
            }
            let want = l.latest.get(&k).cloned().unwrap_or(Latest::Removed);
            match read_both(&clients[via], k).await {
                Ok(got) if got == want => {}
                got => read_failures.push(format!(
                    "key {k} via {}: {got:?}, want {want:?}",
                    ms[via].name
                )),
            }
        }
    });
    match fault {
        Fault::Pause => ms[paused].resume(),
        Fault::Kill => ms[paused].start(),
    }
    rt.block_on(async {
        for _ in 0..100 {
            seq += 1;
            one_change(&ms, &clients, usize::MAX, &mut dice, &mut l, seq).await;
        }
    });
    println!(
        "availability: {} changes acknowledged, {} failed through the paused node, {} through \
         the others; slowest change {:?}; {} reads during the pause wrong or failed",
        l.acked,
        l.failed_via_paused,
        l.failed_via_others.len(),
        l.slowest,
        read_failures.len()
    );
    assert!(
        l.failed_via_others.is_empty(),
        "changes through live nodes failed: {:?}",
        l.failed_via_others
    );
    assert!(
        read_failures.is_empty(),
        "reads during the pause: {read_failures:?}"
    );

    // Healed: hints handed back, moves done; every node and each group alone reads the latest.
    rt.block_on(async {
        let all: Vec<&Member> = ms.iter().collect();
        converge(&all, 6).await;
        movement_done(&all).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut held = 0;
            for m in &ms {
                let s = json(&client(&m.addr).await, false).await;
                held += s["hints"]["held"].as_u64().unwrap_or(0);
            }
            if held == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{held} hints never handed back");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut wrong = Vec::new();
        for m in &ms {
            let c = client(&m.addr).await;
            for k in 0..KEYS {
                if l.uncertain.contains_key(&k) {
                    continue;
                }
                let want = l.latest.get(&k).cloned().unwrap_or(Latest::Removed);
                let got = read_both(&c, k).await;
                if got.as_ref() != Ok(&want) {
                    wrong.push(format!(
                        "key {k} via {} (both groups): {got:?}, want {want:?}",
                        m.name
                    ));
                }
                for g in GROUPS {
                    let got = read_group(&c, g, k).await;
                    if got.as_ref() != Ok(&want) {
                        wrong.push(format!(
                            "key {k} via {} in group {g}: {got:?}, want {want:?}",
                            m.name
                        ));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} wrong reads after healing: {wrong:?}",
            wrong.len()
        );
        for m in &ms {
            let s = json(&client(&m.addr).await, false).await;
            l.hints_replayed += s["hints"]["replayed"].as_u64().unwrap_or(0);
        }
        let restarted = matches!(fault, Fault::Kill).then_some(paused);
        l.records_moved = moved_between(&moved_before, &records_moved(&ms).await, restarted);
        l.ring_changed = rings(&ms[0]).await != rings_before;
    });
    println!(
        "availability ({}): ring changed: {}, {} records moved, {} hinted keys handed back",
        grace.trim(),
        l.ring_changed,
        l.records_moved,
        l.hints_replayed
    );
    l
}
