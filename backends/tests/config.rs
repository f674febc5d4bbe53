//! Choosing a backend by configuration.

use ringblob_backends::{open_backend, BackendConfig, BackendKind};
use ringblob_engine::{Key, Range, WriteOptions};

#[test]
fn toml_selects_each_backend_and_its_options() {
    let c: Result<BackendConfig, _> = toml::from_str("backend = \"fs\"\n");
    assert_eq!(c.ok().map(|c| c.backend), Some(BackendKind::Fs));
    let c: Result<BackendConfig, _> =
        toml::from_str("backend = \"blob\"\n[blob]\nmax_blob_size = 1048576\ncompress = true\ndurability = \"sync\"\n");
    let Ok(c) = c else { panic!("parse") };
    let e = c.blob.engine_config().ok();
    assert_eq!(
        e.as_ref().map(|e| (e.max_blob_size, e.compress)),
        Some((1 << 20, true))
    );
    assert_eq!(
        e.map(|e| e.durability),
        Some(ringblob_engine::Durability::Sync)
    );
    assert_eq!(BackendConfig::default().backend, BackendKind::Blob);
}

#[test]
fn unknown_backends_options_and_bad_values_are_refused() {
    assert!(toml::from_str::<BackendConfig>("backend = \"tape\"\n").is_err());
    assert!(
        toml::from_str::<BackendConfig>("[blob]\nmax_blob_sise = 1\n").is_err(),
        "typo refused"
    );
    let c: Result<BackendConfig, _> = toml::from_str("[blob]\ndurability = \"maybe\"\n");
    assert!(c.is_ok_and(|c| c.blob.engine_config().is_err()));
    let c: Result<BackendConfig, _> = toml::from_str("[blob]\nframe_len = 1000\n");
    assert!(c.is_ok_and(|c| c.blob.engine_config().is_err()));
}

#[test]
fn open_backend_opens_each_kind_over_a_directory() {
    for kind in [BackendKind::Blob, BackendKind::Fs, BackendKind::Mem] {
        let Ok(dir) = tempfile::tempdir() else {
            panic!("tempdir")
        };
        let config = BackendConfig {
            backend: kind,
            ..BackendConfig::default()
        };
        let b = match open_backend(&config, dir.path()) {
            Ok(b) => b,
            Err(e) => panic!("{kind:?}: {e}"),
        };
        let k = Key::from_name(b"", b"x");
        assert!(b.write(&k, b"y", WriteOptions::default()).is_ok());
        assert_eq!(b.read(&k, Range::all()).ok().as_deref(), Some(&b"y"[..]));
        assert_eq!(b.kind(), format!("{kind:?}").to_lowercase());
    }
}

/// A configured retention longer than the default holds from the first open on: a remove
/// older than the default but within the configured retention survives reopening.
#[test]
fn remove_retention_is_applied_when_the_log_is_opened() {
    const DAY_NS: u64 = 86_400 * 1_000_000_000;
    for kind in [BackendKind::Blob, BackendKind::Fs] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = BackendConfig {
            backend: kind,
            remove_retention_secs: 10 * 86_400,
            ..BackendConfig::default()
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let five_days_ago = now - 5 * DAY_NS;
        let k = Key::from_name(b"", b"removed long ago");
        {
            let b = open_backend(&config, dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let copy = WriteOptions::copy_if_newer(five_days_ago);
            assert!(b.remove_column(&k, 0, copy).is_err(), "nothing to remove");
            assert!(b.sync().is_ok());
        }
        for _ in 0..2 {
            let b = open_backend(&config, dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let listed = b.removes_in(&k, &k).map(|r| r.len());
            assert_eq!(listed.ok(), Some(1), "{kind:?}: the remove was forgotten");
            let late = b.write(&k, b"late", WriteOptions::copy_if_newer(five_days_ago - 1));
            assert!(
                late.is_err(),
                "{kind:?}: a copy older than the remove landed"
            );
        }
    }
}
