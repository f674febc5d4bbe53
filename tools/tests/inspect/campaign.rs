//! A seeded single-fault campaign on real data directories (clean shutdown, and a process
//! crash image copied while the engine ran), both index modes: after one flipped bit,
//! zeroed page, truncation or appended garbage in any file, `blob-inspect verify` names
//! the damaged file, the engine opens, and every key reads as its latest acknowledged
//! value or as damaged.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use ringblob_engine::{Config, Durability, Engine, Error, IndexMode, Key, Range, WriteOptions};

use crate::fixture::{inspect, s};

const KEYS: u64 = 30;
const OPS: u64 = 150;
const TRIALS_PER_IMAGE: u64 = 60;

struct Dice(u64);

impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn config(index: IndexMode) -> Config {
    Config {
        index,
        max_blob_size: 64 << 20,
        frame_len: 4096,
        durability: Durability::Sync,
        defrag_interval: None,
        ..Config::default()
    }
}

fn key(k: u64) -> Key {
    Key::from_name(b"campaign", &k.to_le_bytes())
}

type Latest = HashMap<u64, Option<Vec<u8>>>;

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for e in fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() && e.file_name() != "LOCK" {
            fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// A directory after `OPS` acknowledged writes and removes (rotating every 12), copied
/// while the engine runs (`crash`) or after a clean close.
fn base(index: IndexMode, crash: bool, dice: &mut Dice, out: &Path) -> Result<Latest> {
    let live = tempfile::tempdir()?;
    let e = Engine::open(live.path(), config(index))?;
    let mut latest: Latest = HashMap::new();
    for op in 0..OPS {
        if op % 12 == 11 {
            e.rotate()?;
        }
        let k = dice.next(KEYS);
        if latest.get(&k).is_some_and(Option::is_some) && dice.next(6) == 0 {
            e.remove_with(&key(k), Durability::Sync)?;
            latest.insert(k, None);
        } else {
            let mut v = format!("key {k} op {op} ").into_bytes();
            v.resize([20, 900, 5000][dice.next(3) as usize], (op % 200) as u8);
            e.write(&key(k), &v, WriteOptions::default())?;
            latest.insert(k, Some(v));
        }
    }
    if crash {
        copy_dir(live.path(), out)?;
        drop(e);
    } else {
        e.close()?;
        copy_dir(live.path(), out)?;
    }
    Ok(latest)
}

/// Applies one fault to one file of `dir`; returns the file's name and what was done, or
/// `None` when the fault changed nothing (a truncation to the file's own length).
fn fault(dir: &Path, dice: &mut Dice) -> Result<Option<(String, String)>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let name = names[dice.next(names.len() as u64) as usize].clone();
    let path = dir.join(&name);
    let mut b = fs::read(&path)?;
    let before = b.clone();
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
    fs::write(&path, &b)?;
    Ok((b != before).then_some((name, what)))
}

#[derive(Debug, Default)]
struct Counts {
    trials: u64,
    named: u64,
    exact: u64,
    damaged: u64,
}

fn check(dir: &Path, index: IndexMode, latest: &Latest, label: &str, c: &mut Counts) -> Result<()> {
    let e = Engine::open(dir, config(index)).with_context(|| format!("{label}: open"))?;
    for (k, want) in latest {
        match (e.read(&key(*k), Range::all()), want) {
            (Ok(v), Some(w)) if v == *w => c.exact += 1,
            (Err(Error::NotFound(_)), None) => c.exact += 1,
            (Err(err), _) if err.is_corruption() => c.damaged += 1,
            (got, _) => anyhow::bail!(
                "{label}: key {k}: {:?} instead of the latest value or damage",
                got.map(|v| v.len())
            ),
        }
    }
    Ok(())
}

#[test]
fn blob_inspect_names_every_damaged_file_and_reads_are_never_stale() -> Result<()> {
    let mut dice = Dice(0xdead_beef_1234_5678);
    let mut c = Counts::default();
    for index in [IndexMode::Memory, IndexMode::Sorted] {
        for crash in [false, true] {
            let base_dir = tempfile::tempdir()?;
            let latest = base(index, crash, &mut dice, base_dir.path())?;
            for t in 0..TRIALS_PER_IMAGE {
                let trial = tempfile::tempdir()?;
                copy_dir(base_dir.path(), trial.path())?;
                let Some((file, what)) = fault(trial.path(), &mut dice)? else {
                    continue;
                };
                let label = format!("{index:?} crash={crash} trial {t}: {file}: {what}");
                c.trials += 1;
                let run = inspect(trial.path(), &["verify", "--json", s(trial.path())])?;
                let named = run.problems()?.iter().any(|(_, f, _)| *f == file);
                assert!(named, "{label}: verify did not name the damaged file");
                c.named += 1;
                check(trial.path(), index, &latest, &label, &mut c)?;
            }
        }
    }
    println!("inspect campaign: {c:?}");
    Ok(())
}
