//! A seeded corruption campaign: single faults (a flipped bit, a zeroed 4 KiB page, a
//! truncation, appended garbage) in every kind of file of data directories left by a clean
//! shutdown and by a process crash, in both index modes. After each, the engine must open,
//! and every key must read as its latest acknowledged value or as damaged: never an older
//! version, never a removed value, never "not found" for a key that exists.
//!
//! Damage that leaves a key unknown (a destroyed header that no index file, checkpoint or
//! key journal names: docs/FORMAT.md §9.5) needs two faults; with one it must not happen,
//! and reads that fall back to a previous record are counted as failures too.

use std::collections::HashMap;

use ringblob_engine::io::{Device, MemDevice};
use ringblob_engine::{Config, Engine, Error, IndexMode};

use crate::support::{key, read_all, small_config, sync_opts};

const KEYS: u64 = 40;
const OPS: u64 = 260;
const TRIALS_PER_IMAGE: u64 = 1000;
const ROTATE_EVERY: u64 = 15;

struct Dice(u64);

impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Blobs rotate only when the workload says (every [`ROTATE_EVERY`] operations, sealed at
/// once), never by size in the background, so the images, and the campaign, are the same
/// on every run. (Crashes with rotated blobs not sealed yet are in `damage.rs`.)
fn config(index: IndexMode) -> Config {
    Config {
        index,
        max_blob_size: 64 << 20,
        max_blob_records: 1 << 20,
        ..small_config()
    }
}

/// Every version each key ever had (`None` = removed), in order; the last is the latest.
type History = HashMap<u64, Vec<Option<Vec<u8>>>>;

fn version(k: u64, op: u64, len: usize) -> Vec<u8> {
    let mut v = format!("key {k} op {op} ").into_bytes();
    v.resize(len.max(v.len()), (op % 251) as u8);
    v
}

/// A data directory after `OPS` acknowledged writes and removes; the image a clean close
/// (`crash == false`) or a process crash leaves.
fn base_image(index: IndexMode, crash: bool, dice: &mut Dice) -> (MemDevice, History) {
    let dev = MemDevice::new();
    let e = match Engine::open_on(std::sync::Arc::new(dev.clone()), config(index)) {
        Ok(e) => e,
        Err(err) => panic!("open: {err}"),
    };
    let mut history: History = HashMap::new();
    for op in 0..OPS {
        if op % ROTATE_EVERY == ROTATE_EVERY - 1 {
            assert!(e.rotate().is_ok());
        }
        let k = dice.next(KEYS);
        let exists = history
            .get(&k)
            .and_then(|h| h.last())
            .is_some_and(Option::is_some);
        if exists && dice.next(6) == 0 {
            assert!(e
                .remove_with(&key(k), ringblob_engine::Durability::Sync)
                .is_ok());
            history.entry(k).or_default().push(None);
        } else {
            let len = [12, 300, 2500, 7000][dice.next(4) as usize];
            let v = version(k, op, len);
            assert!(e.write(&key(k), &v, sync_opts()).is_ok());
            history.entry(k).or_default().push(Some(v));
        }
    }
    let image = if crash {
        let image = dev.process_crash_image();
        drop(e);
        image
    } else {
        assert!(e.close().is_ok());
        dev.process_crash_image()
    };
    (image, history)
}

#[derive(Debug, Default)]
struct Counts {
    trials: u64,
    exact: u64,
    damaged: u64,
    unknown_key: u64,
    older: u64,
    removed_value: u64,
    not_found: u64,
    other_error: u64,
    open_failed: u64,
}

fn fault(dev: &MemDevice, dice: &mut Dice) -> String {
    let mut names = dev.list().unwrap_or_default();
    names.sort();
    let name = names[dice.next(names.len() as u64) as usize].clone();
    let mut b = dev.file_bytes(&name).unwrap_or_default();
    let len = b.len() as u64;
    let what = match dice.next(4) {
        0 if len > 0 => {
            let at = dice.next(len) as usize;
            b[at] ^= 1 << dice.next(8);
            format!("flip at {at}")
        }
        1 if len > 0 => {
            let page = dice.next(len.div_ceil(4096)) as usize * 4096;
            let end = (page + 4096).min(b.len());
            b[page..end].fill(0);
            format!("zero page at {page}")
        }
        2 if len > 0 => {
            let at = dice.next(len) as usize;
            b.truncate(at);
            format!("truncate to {at}")
        }
        _ => {
            let n = 1 + dice.next(200) as usize;
            b.extend((0..n).map(|_| dice.next(256) as u8));
            format!("append {n} bytes")
        }
    };
    dev.put_file(&name, b);
    format!("{name}: {what}")
}

fn check_keys(e: &Engine, history: &History, c: &mut Counts, label: &str) {
    let unknown = e.stats().damage.unknown_regions > 0;
    for (k, versions) in history {
        let latest = versions.last().cloned().flatten();
        match (read_all(e, &key(*k)), &latest) {
            (Ok(v), Some(l)) if v == *l => c.exact += 1,
            (Err(Error::NotFound(_)), None) => c.exact += 1,
            (Err(err), _) if err.is_corruption() => c.damaged += 1,
            (Ok(_) | Err(Error::NotFound(_)), _) if unknown => {
                c.unknown_key += 1;
                eprintln!(
                    "{label}: key {k}: previous record (documented: damage with an unknown key)"
                );
            }
            (Ok(v), _) if versions.contains(&Some(v.clone())) => {
                c.older += 1;
                eprintln!("{label}: key {k}: an older version");
            }
            (Ok(_), None) => {
                c.removed_value += 1;
                eprintln!("{label}: key {k}: bytes of a removed key");
            }
            (Ok(_), Some(_)) => panic!("{label}: key {k}: bytes never written"),
            (Err(Error::NotFound(_)), Some(_)) => {
                c.not_found += 1;
                eprintln!("{label}: key {k}: not found");
            }
            (Err(err), _) => {
                c.other_error += 1;
                eprintln!("{label}: key {k}: {err}");
            }
        }
    }
}

#[test]
fn single_faults_never_serve_an_older_removed_or_missing_value() {
    let mut dice = Dice(0x5eed_cafe_f00d_1234);
    let mut c = Counts::default();
    for index in [IndexMode::Memory, IndexMode::Sorted] {
        for crash in [false, true] {
            let (base, history) = base_image(index, crash, &mut dice);
            for t in 0..TRIALS_PER_IMAGE {
                let dev = base.process_crash_image();
                let what = fault(&dev, &mut dice);
                let label = format!("{index:?} crash={crash} trial {t}: {what}");
                c.trials += 1;
                let e = match Engine::open_on(std::sync::Arc::new(dev.clone()), config(index)) {
                    Ok(e) => e,
                    Err(err) => {
                        c.open_failed += 1;
                        eprintln!("{label}: open failed: {err}");
                        continue;
                    }
                };
                check_keys(&e, &history, &mut c, &label);
            }
        }
    }
    println!("corruption campaign: {c:?}");
    let bad =
        c.older + c.removed_value + c.not_found + c.other_error + c.open_failed + c.unknown_key;
    assert_eq!(bad, 0, "{c:?}");
    assert!(c.damaged > 0, "the campaign never hit a record: {c:?}");
}
