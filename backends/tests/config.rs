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
