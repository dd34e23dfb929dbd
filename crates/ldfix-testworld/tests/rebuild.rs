//! A half-built or collected world is detected and rebuilt (in its own state directory, so it
//! never disturbs the shared world other tests use). It uses the core package set: the build,
//! stamp and validity logic is the same for every set.

use anyhow::{ensure, Context, Result};
use ldfix_testworld::{PackageSet, World};
use std::fs;
use std::process::Command;

#[test]
fn half_built_and_collected_worlds_are_rebuilt() -> Result<()> {
    let state = tempfile::Builder::new()
        .prefix("ldfix-testworld-rebuild-")
        .tempdir_in("/var/tmp")?;
    let dir = state.path().join("w");
    let result = (|| -> Result<()> {
        let w = World::open_or_build_set(&dir, PackageSet::Core)?;
        let stamp = dir.join("world.json");
        ensure!(stamp.is_file(), "no stamp after a build");

        // Interrupted before the stamp was written: rebuilt.
        fs::remove_file(&stamp)?;
        let w2 = World::open_or_build_set(&dir, PackageSet::Core)?;
        ensure!(stamp.is_file() && w2.packages() == w.packages());

        // A store path collected behind the world's back: detected and rebuilt.
        let stub = w2.stub_ld().to_owned();
        fs::remove_file(w2.gc_roots_dir().join("stubLd"))?;
        let out = Command::new("nix-store")
            .arg("--delete")
            .arg(&stub)
            .output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(!stub.exists());
        let w3 = World::open_or_build_set(&dir, PackageSet::Core)?;
        ensure!(
            w3.stub_ld() == stub && stub.is_file(),
            "stub-ld not rebuilt"
        );
        w3.destroy().context("removing the test's world")
    })();
    if result.is_err() {
        // Best effort: do not leave roots behind for a failed run.
        if let Ok(w) = World::open_or_build_set(&dir, PackageSet::Core) {
            let _ = w.destroy();
        }
    }
    result
}
