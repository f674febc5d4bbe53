//! Listing names while the ring changes: in a group of three, one node joins and another
//! drains while clients list a namespace page by page, over and over. Every listing is
//! complete, in order and free of duplicates, and a removed name never shows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{PutOptions, Target};
use ringblob_protocol::wire::ListRequest;

use super::member::{self, Member};
use super::{client, converge, movement_done};

const NAMES: usize = 300;
const NS: &str = "listing";

fn name(i: usize) -> String {
    format!("obj/{i:04}")
}

/// Writes the names, then removes every tenth; returns the names left, in order.
async fn write_names(addr: &str) -> Vec<String> {
    let c = client(addr).await.in_group(1);
    let o = PutOptions::default();
    for i in 0..NAMES {
        let value = Bytes::from(vec![(i % 251) as u8; 16 << 10]);
        let target = Target::named(NS, name(i));
        let put = c.put_column(target, 0, value, o).await;
        assert!(put.is_ok(), "{i}: {put:?}");
        let record = NameRecord::new(NS, name(i).into_bytes(), 16 << 10);
        let rec = c.put_name_record(&record, o).await;
        assert!(rec.is_ok(), "{i}: {rec:?}");
    }
    for i in (0..NAMES).step_by(10) {
        let rm = c
            .remove_object(Target::named(NS, name(i)), o.durability)
            .await;
        assert!(rm.is_ok(), "{i}: {rm:?}");
    }
    (0..NAMES).filter(|i| i % 10 != 0).map(name).collect()
}

/// One whole listing of namespace `ns` in pages of 37, through `addr`, in group 1.
pub(super) async fn list_all(addr: &str, ns: &str) -> Result<Vec<String>, String> {
    let c = client(addr).await.in_group(1);
    let mut req = ListRequest {
        namespace: ns.into(),
        limit: 37,
        ..ListRequest::default()
    };
    let mut names = Vec::new();
    loop {
        let page = c.list(&req, &[1]).await.map_err(|e| e.to_string())?;
        names.extend(
            page.entries
                .iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned()),
        );
        match page.next {
            Some(next) => req.after = Some(next),
            None => return Ok(names),
        }
    }
}

#[test]
fn listings_stay_complete_and_duplicate_free_while_a_node_joins_and_another_drains() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let slow = "rebalance_mb_per_sec = 1\n";
    let [a, b, c] = Member::start_group(["n1", "n2", "n3"], 1, root.path(), slow);
    let want = rt.block_on(async {
        converge(&[&a, &b, &c], 3).await;
        movement_done(&[&a, &b, &c]).await;
        write_names(&a.addr).await
    });
    assert_eq!(rt.block_on(list_all(&a.addr, NS)), Ok(want.clone()));

    // Listers go round through a staying node and through the one that will drain.
    let stop = Arc::new(AtomicBool::new(false));
    let (done, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let listers: Vec<_> = [a.addr.clone(), c.addr.clone()]
        .into_iter()
        .map(|addr| {
            let (stop, done, wrong, want) =
                (stop.clone(), done.clone(), wrong.clone(), want.clone());
            rt.spawn(async move {
                let mut first = None;
                while !stop.load(Ordering::Relaxed) {
                    let got = list_all(&addr, NS).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    if got.as_ref() != Ok(&want) {
                        wrong.fetch_add(1, Ordering::Relaxed);
                        first.get_or_insert_with(|| describe(&got, &want));
                    }
                }
                first
            })
        })
        .collect();

    let mut d = Member::new("n4", 1, root.path(), Some(&a.addr)).with_config(slow);
    d.start();
    let drain = std::process::Command::new(env!("CARGO_BIN_EXE_ringblob"))
        .args(["--remote", &a.addr, "node", "drain", &c.addr, "--wait"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        drain.status.success(),
        "{}",
        String::from_utf8_lossy(&drain.stderr)
    );
    rt.block_on(movement_done(&[&a, &b, &d]));
    let during = done.load(Ordering::Relaxed);
    // One more round each after everything settled.
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < during + 2 {
        assert!(Instant::now() < deadline, "listers stalled");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let firsts: Vec<String> = listers
        .into_iter()
        .filter_map(|t| rt.block_on(t).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let (done, wrong) = (done.load(Ordering::Relaxed), wrong.load(Ordering::Relaxed));
    println!(
        "{done} listings of {} names during a join and a drain, {wrong} wrong",
        want.len()
    );
    assert_eq!(wrong, 0, "{firsts:?}");
    assert!(
        during >= 2,
        "too few listings while the ring changed: {during}"
    );
    assert_eq!(rt.block_on(list_all(&d.addr, NS)), Ok(want));
}

/// What was wrong with a listing: missing, extra and repeated names.
fn describe(got: &Result<Vec<String>, String>, want: &[String]) -> String {
    let got = match got {
        Ok(g) => g,
        Err(e) => return format!("error: {e}"),
    };
    let missing: Vec<_> = want.iter().filter(|n| !got.contains(n)).take(5).collect();
    let extra: Vec<_> = got.iter().filter(|n| !want.contains(n)).take(5).collect();
    let mut sorted = got.clone();
    sorted.dedup();
    format!(
        "{} names, {} repeated, missing {missing:?}, extra {extra:?}, sorted {}",
        got.len(),
        got.len() - sorted.len(),
        got.windows(2).all(|w| w[0] < w[1])
    )
}
