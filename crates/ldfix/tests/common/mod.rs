//! Helpers shared by the integration tests of the `ldfix` binary.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The fully static ldfix, built once per test process with the documented command
/// (`scripts/build-static`); this is the binary that must run inside the NixOS-like sandbox.
pub(crate) fn static_ldfix() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let output = Command::new(root.join("scripts/build-static"))
            .output()
            .expect("run scripts/build-static");
        assert!(
            output.status.success(),
            "scripts/build-static failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let path = String::from_utf8(output.stdout).expect("a UTF-8 path");
        PathBuf::from(path.trim())
    })
    .clone()
}
