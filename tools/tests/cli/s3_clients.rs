//! The S3 API against real S3 clients: the pytest suite in `tools/tests/s3` drives boto3 and
//! the `aws` CLI against a two-group cluster of these binaries. It runs with
//! `$RINGBLOB_PYTHON` (or `python3`) when that has boto3 and pytest; `.ci/run` installs them
//! in a venv and sets `RINGBLOB_REQUIRE_S3_CLIENTS`, which makes their absence a failure.

use std::path::Path;
use std::process::Command;

#[test]
fn boto3_and_the_aws_cli_against_a_two_group_cluster() {
    let python = std::env::var("RINGBLOB_PYTHON").unwrap_or_else(|_| "python3".into());
    let ready = Command::new(&python)
        .args(["-c", "import boto3, pytest"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready {
        assert!(
            std::env::var_os("RINGBLOB_REQUIRE_S3_CLIENTS").is_none(),
            "{python} lacks boto3 or pytest (pip install -r tools/tests/s3/requirements.txt)"
        );
        eprintln!("skipped: {python} lacks boto3 or pytest");
        return;
    }
    let bins = Path::new(env!("CARGO_BIN_EXE_ringblob-node"))
        .parent()
        .unwrap_or_else(|| panic!("no binary directory"));
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"])
        .arg(&suite)
        .env("RINGBLOB_BIN_DIR", bins)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the S3 client suite failed:\n{text}");
}
