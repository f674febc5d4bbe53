//! Removes while the ring changes, in one group of three with hand-overs throttled to 1 MB/s:
//! a fourth node joins and named objects are removed while their ranges move to it. A
//! remove reaching the new owner before the object does must still answer what the key
//! held (OK, not `NOT_FOUND`), and the object must stay removed — value and name record:
//! the copies still on their way are refused when they arrive (the new owner remembers the
//! whole key as removed), so no name is left listed but unreadable.

use bytes::Bytes;
use ringblob_backends::names::NameRecord;
use ringblob_protocol::client::{PutOptions, Target};

use super::listing::list_all;
use super::member::{self, Member};
use super::{client, converge, movement_done};

const NAMES: usize = 240;
const NS: &str = "removes";

fn name(i: usize) -> String {
    format!("obj/{i:04}")
}

/// 64 KiB each: a quarter of them takes seconds to move at 1 MB/s.
fn body(i: usize) -> Bytes {
    Bytes::from(vec![(i % 251) as u8; 64 << 10])
}

async fn write_names(addr: &str) {
    let c = client(addr).await.in_group(1);
    let o = PutOptions::default();
    for i in 0..NAMES {
        let put = c
            .put_column(Target::named(NS, name(i)), 0, body(i), o)
            .await;
        assert!(put.is_ok(), "{i}: {put:?}");
        let record = NameRecord::new(NS, name(i).into_bytes(), 64 << 10);
        let rec = c.put_name_record(&record, o).await;
        assert!(rec.is_ok(), "{i}: {rec:?}");
    }
}

#[test]
fn removes_while_a_node_joins_answer_what_was_there_and_stay_removed() {
    let _serial = member::serial();
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let slow = "rebalance_mb_per_sec = 1\n";
    let [a, b, c] = Member::start_group(["r1", "r2", "r3"], 1, root.path(), slow);
    rt.block_on(async {
        converge(&[&a, &b, &c], 3).await;
        movement_done(&[&a, &b, &c]).await;
        write_names(&a.addr).await;
    });
    let mut d = Member::new("r4", 1, root.path(), Some(&a.addr)).with_config(slow);
    d.start();
    let removed: Vec<usize> = (0..NAMES).step_by(2).collect();
    rt.block_on(async {
        converge(&[&a, &b, &c, &d], 4).await;
        // The ranges are moving to r4 now: remove half the names through each node.
        let mut wrong = Vec::new();
        for (n, &i) in removed.iter().enumerate() {
            let via = [&a, &b, &c, &d][n % 4];
            let r = client(&via.addr).await.in_group(1);
            let rm = r
                .remove_object(Target::named(NS, name(i)), PutOptions::default().durability)
                .await;
            if let Err(e) = rm {
                wrong.push(format!("{} through {}: {e}", name(i), via.name));
            }
        }
        assert!(
            wrong.is_empty(),
            "removes of existing names failed: {wrong:?}"
        );
        movement_done(&[&a, &b, &c, &d]).await;
        let want: Vec<String> = (0..NAMES).filter(|i| i % 2 == 1).map(name).collect();
        for via in [&a, &d] {
            assert_eq!(
                list_all(&via.addr, NS).await,
                Ok(want.clone()),
                "listing through {}",
                via.name
            );
            let r = client(&via.addr).await.in_group(1);
            for i in 0..NAMES {
                let target = Target::named(NS, name(i));
                let got = r.get_column(target.clone(), 0, 0, None).await;
                let record = r.get_column(target, 0xFFFE, 0, None).await;
                if i % 2 == 0 {
                    assert!(
                        matches!(&got, Err(e) if e.is_not_found()),
                        "{} came back through {}: {got:?}",
                        name(i),
                        via.name
                    );
                    assert!(
                        matches!(&record, Err(e) if e.is_not_found()),
                        "the name record of {} came back: {record:?}",
                        name(i)
                    );
                } else {
                    assert_eq!(got.ok(), Some(body(i)), "{} through {}", name(i), via.name);
                }
            }
        }
    });
}
