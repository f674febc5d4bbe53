//! Conditional copies (`WriteOptions::copy_if_newer`): how hand-over and repair between
//! nodes write a record made elsewhere. A copy keeps its original's timestamp and is stored
//! only if the (key, column)'s newest record is older, so it never puts an older value over a
//! newer write, nor (where the engine still holds the tombstone) over a newer remove.

use ringblob_engine::io::MemDevice;
use ringblob_engine::{Config, Durability, Engine, Error, IndexMode, WriteOptions};

use crate::support::{key, open_mem, read_all, small_config};

fn timestamp(e: &Engine, k: u64) -> u64 {
    match e.lookup(&key(k)) {
        Ok(m) => m.timestamp_ns,
        Err(err) => panic!("lookup {k}: {err}"),
    }
}

fn engine(mode: IndexMode) -> Engine {
    open_mem(
        &MemDevice::new(),
        Config {
            index: mode,
            ..small_config()
        },
    )
}

#[test]
fn a_copy_is_stored_with_its_timestamp_only_over_older_records() {
    for mode in [IndexMode::Sorted, IndexMode::Memory] {
        let e = engine(mode);
        // Absent: stored, stamped as its original.
        assert!(e
            .write(&key(1), b"copy", WriteOptions::copy_if_newer(1000))
            .is_ok());
        assert_eq!(timestamp(&e, 1), 1000, "{mode:?}");
        // The same copy again, or an older one: refused, nothing changes.
        for ts in [1000, 999] {
            let r = e.write(&key(1), b"older", WriteOptions::copy_if_newer(ts));
            assert!(
                matches!(
                    r,
                    Err(Error::NotNewer {
                        stored_ns: 1000,
                        ..
                    })
                ),
                "{mode:?}: {r:?}"
            );
        }
        assert_eq!(
            read_all(&e, &key(1)).ok(),
            Some(b"copy".to_vec()),
            "{mode:?}"
        );
        // A newer copy replaces it.
        assert!(e
            .write(&key(1), b"newer", WriteOptions::copy_if_newer(1001))
            .is_ok());
        assert_eq!(
            read_all(&e, &key(1)).ok(),
            Some(b"newer".to_vec()),
            "{mode:?}"
        );

        // A local write made after the copy was read at its source wins over the copy,
        // also once it has been sealed into a sorted index.
        assert!(e.write(&key(2), b"local", WriteOptions::default()).is_ok());
        let local_ts = timestamp(&e, 2);
        assert!(e.rotate().is_ok());
        let r = e.write(&key(2), b"copy", WriteOptions::copy_if_newer(local_ts - 1));
        assert!(matches!(r, Err(Error::NotNewer { .. })), "{mode:?}: {r:?}");
        assert_eq!(
            read_all(&e, &key(2)).ok(),
            Some(b"local".to_vec()),
            "{mode:?}"
        );

        // Streamed copies obey the same rule.
        let stream_copy = |ts| {
            e.write_stream(
                &key(2),
                0,
                4,
                &mut &b"copy"[..],
                WriteOptions::copy_if_newer(ts),
            )
        };
        let r = stream_copy(local_ts);
        assert!(matches!(r, Err(Error::NotNewer { .. })), "{mode:?}: {r:?}");
        assert_eq!(
            read_all(&e, &key(2)).ok(),
            Some(b"local".to_vec()),
            "{mode:?}"
        );
        let r = stream_copy(local_ts + 1);
        assert!(r.is_ok(), "{mode:?}: {r:?}");
        assert_eq!(
            read_all(&e, &key(2)).ok(),
            Some(b"copy".to_vec()),
            "{mode:?}"
        );
    }
}

/// In sorted mode a tombstone stays in the index while an older value may exist in a
/// sealed blob: a copy older than the remove does not bring the value back.
#[test]
fn a_copy_older_than_a_remove_does_not_bring_the_value_back_in_sorted_mode() {
    let e = engine(IndexMode::Sorted);
    let sync = WriteOptions::durability(Durability::Sync);
    assert!(e.write(&key(3), b"value", sync).is_ok());
    let written_ts = timestamp(&e, 3);
    assert!(e.rotate().is_ok());
    assert!(e.remove(&key(3)).is_ok());
    let r = e.write(&key(3), b"value", WriteOptions::copy_if_newer(written_ts));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert!(matches!(read_all(&e, &key(3)), Err(Error::NotFound(_))));
    // Sealed as well.
    assert!(e.rotate().is_ok());
    let r = e.write(&key(3), b"value", WriteOptions::copy_if_newer(written_ts));
    assert!(matches!(r, Err(Error::NotNewer { .. })), "{r:?}");
    assert!(matches!(read_all(&e, &key(3)), Err(Error::NotFound(_))));
}
