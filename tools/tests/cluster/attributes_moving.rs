//! Queries on attributes while a node joins (`docs/ATTRIBUTES.md` §5, "Moves"): the ranges
//! the newcomer takes over reach it record by record at the rebalance rate, so for a while
//! some index entries are still only on their previous owners. The newcomer says so
//! (`ITERATE`'s `MOVING`), a query then asks those owners too, and every answer is exact
//! throughout. Once the move is over the newcomer learns it (`handover_check.rs`) and
//! queries ask only the planned nodes again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_backends::names::Attrs;
use ringblob_protocol::attrs::{Query, Space};
use ringblob_protocol::client::{Client, PutOptions};

use super::attributes::{check_queries, find_all, put, random_attrs, term, Rng, NS, SPACE};
use super::member::{self, Member};
use super::{client, converge, json, key, movement_done};

/// One fixed property per query, over every property; and two wildcard ones.
fn queries() -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = (0..8)
        .map(|p| {
            let v = super::attributes::value(p, 1);
            vec![term(p, &v)]
        })
        .collect();
    out.push(vec!["p5=*".into()]);
    out.push(vec!["p0=*".into(), "p3=*".into()]);
    out
}

/// Every query's answers equal what was written; returns how many pieces were asked of
/// nodes that held them before (a move under way).
async fn exact(c: &Client, truth: &BTreeMap<String, Attrs>) -> u64 {
    let mut earlier = 0;
    for words in queries() {
        let query = Query::parse(&words, false).unwrap_or_else(|e| panic!("{e}"));
        let want: std::collections::BTreeSet<String> = truth
            .iter()
            .filter(|(_, a)| query.matches(a))
            .map(|(n, _)| n.clone())
            .collect();
        let (got, _, asked_earlier) = find_all(c, &words, false).await;
        assert_eq!(got, want, "{words:?}");
        earlier += asked_earlier;
    }
    earlier
}

async fn pending(ms: &[&Member]) -> usize {
    let mut n = 0;
    for m in ms {
        let s = json(&client(&m.addr).await, false).await;
        n += s["cluster"]["rebalancing"]["pending"]
            .as_array()
            .map_or(0, Vec::len);
    }
    n
}

#[test]
fn queries_stay_exact_while_a_node_joins_and_ask_only_the_plan_after() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    // 64 MiB of filler handed over at 1 MB/s per sender: the move takes many seconds, and
    // the entries' keys are spread among the fillers'.
    let slow = "rebalance_mb_per_sec = 1\n";
    let mut a = Member::new("j1", 1, root.path(), None).with_config(slow);
    a.start();
    let mut b = Member::new("j2", 1, root.path(), Some(&a.addr)).with_config(slow);
    b.start();
    let mut rng = Rng(0x00a7_75e7);
    let truth = rt.block_on(async {
        converge(&[&a, &b], 2).await;
        super::settled(&[&a, &b]).await;
        let c = std::sync::Arc::new(client(&a.addr).await.in_group(1));
        let space = Space::from_json(SPACE).unwrap_or_else(|e| panic!("{e}"));
        let set = c
            .set_attribute_space(NS, &space, PutOptions::default())
            .await;
        assert!(set.is_ok(), "{set:?}");
        let filler = Bytes::from(vec![7u8; 64 << 10]);
        for i in 0..1024 {
            let put = c.put(key(i), filler.clone(), PutOptions::default()).await;
            assert!(put.is_ok(), "filler {i}: {put:?}");
        }
        let mut truth = BTreeMap::new();
        for i in 0..400 {
            let (name, attrs) = (format!("obj/{i:04}"), random_attrs(&mut rng));
            put(&c, &space, &name, &attrs, None).await;
            truth.insert(name, attrs);
        }
        truth
    });

    let mut joiner = Member::new("j3", 1, root.path(), Some(&a.addr)).with_config(slow);
    joiner.start();
    let all = [&a, &b, &joiner];
    rt.block_on(async {
        converge(&all, 3).await;
        let c = client(&a.addr).await.in_group(1);
        assert!(
            pending(&all).await > 0,
            "the hand-over ended before a query could run: make it slower"
        );
        let mut moving_seen = 0;
        let mut rounds = 0;
        while pending(&all).await > 0 {
            moving_seen += exact(&c, &truth).await;
            rounds += 1;
        }
        assert!(
            moving_seen > 0,
            "no query asked a previous owner during the move ({rounds} rounds)"
        );
        movement_done(&all).await;

        // The newcomer learns the move is over within moments; then queries ask only the
        // nodes their plans name (each node's ITERATE count rises only if planned).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let beyond = exact(&c, &truth).await;
            if beyond == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "queries still ask earlier holders ({beyond} pieces) after the move"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        check_queries(&c, &all, &truth, &mut rng).await;
    });
}
