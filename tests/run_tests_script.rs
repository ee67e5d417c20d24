//! `scripts/run-tests.sh` (the test command CI runs) against a throw-away crate: every test binary
//! runs even after one fails, and the closing line counts all of them, including one that dies
//! without reporting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn mk_crate(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), "").unwrap();
    // Binaries run in name order: the failing one comes first, so a fail-fast run skips the rest.
    std::fs::write(
        dir.join("tests/a_fails.rs"),
        "#[test] fn fails() { assert_eq!(1, 2) }\n#[test] fn passes() {}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/b_dies.rs"),
        "#[test] fn dies() { std::process::abort() }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/c_passes.rs"),
        "#[test] fn one() {}\n#[test] fn two() {}\n",
    )
    .unwrap();
}

#[test]
fn the_test_command_runs_every_binary_after_a_failure_and_counts_them_all() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    mk_crate(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/run-tests.sh");

    // Act
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(dir.path())
        // NB: its own target directory: the outer `cargo test` may hold the lock on ours.
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("bash runs");

    // Assert
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failing test fails the run:\n{stdout}"
    );
    assert!(
        stdout.contains("Running tests/c_passes.rs"),
        "the binary after the failing ones still runs:\n{stdout}"
    );
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    assert_eq!(
        last, "tests: 3 passed, 2 failed, in 4 test binaries (1 died before reporting)",
        "the closing line counts every binary (lib + 3 test files)"
    );
}
