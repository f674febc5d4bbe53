//! Patch records (blob format 3): the engine's golden v3 fixture verifies clean, `list`
//! marks its patches, and `dump` rebuilds patched values from the frames they keep.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::fixture::{inspect, s};

fn v3_fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../engine/tests/fixtures/v3"
    ))
}

fn value(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed) % 251) as u8).collect()
}

#[test]
fn patched_values_verify_list_and_dump() -> Result<()> {
    let dir = v3_fixture();
    let d = s(dir);
    let run = inspect(dir, &["verify", d])?;
    assert_eq!(run.code, 0, "verify: {}{}", run.stdout, run.stderr);
    let run = inspect(dir, &["list", d, "--json"])?;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let patches = run
        .json()?
        .iter()
        .filter(|l| l.get("patch").and_then(Value::as_bool) == Some(true))
        .count();
    assert_eq!(patches, 4, "the fixture's patch records");
    let mut log = value(1, 10_000);
    log.extend(value(2, 3000));
    log[100..150].copy_from_slice(&value(3, 50));
    log.extend(value(6, 500));
    log.extend(value(7, 100));
    let mut doc = value(4, 9000);
    doc.extend(value(5, 5000));
    for (name, want) in [("log", log), ("doc", doc)] {
        let run = inspect(dir, &["dump", d, "--key", name, "--namespace", "fixture"])?;
        assert_eq!(run.code, 0, "dump {name}: {}", run.stderr);
        assert!(run.bytes == want, "dump {name}: different bytes");
    }
    Ok(())
}
