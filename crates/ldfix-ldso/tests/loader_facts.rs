//! Loader facts read from loader binaries (never run by the code under test) against what the
//! same loaders print about themselves with `--help` (run here only as the oracle): Debian's
//! glibc, and the test world's nixpkgs-like glibc, whose rewritten binary still carries Debian's
//! strings next to the ones it uses.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Command;

use ldfix_ldso::{Flavour, LoaderFacts, RealFs};

/// The "(system search path)" directories of `LOADER --help`, each with a trailing `/`.
fn help_dirs(loader: &Path) -> Vec<String> {
    let out = Command::new(loader).arg("--help").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_suffix(" (system search path)"))
        .map(|d| format!("{d}/"))
        .collect()
}

fn dirs(facts: &LoaderFacts) -> Vec<String> {
    facts
        .system_dirs
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect()
}

#[test]
fn debian_glibc() {
    let loader = Path::new("/lib64/ld-linux-x86-64.so.2");
    let facts = LoaderFacts::read(&RealFs, loader).unwrap();
    assert_eq!(facts.flavour, Flavour::Glibc);
    assert_eq!(facts.glibc_version, Some((2, 36)));
    assert_eq!(dirs(&facts), help_dirs(loader));
    assert_eq!(facts.cache_path, Some(PathBuf::from("/etc/ld.so.cache")));
    assert_eq!(
        facts.preload_path,
        Some(PathBuf::from("/etc/ld.so.preload"))
    );
    assert_eq!(facts.lib, b"lib/x86_64-linux-gnu");
    assert_eq!(facts.soname.as_deref(), Some(&b"ld-linux-x86-64.so.2"[..]));
}

#[test]
fn the_test_worlds_nixpkgs_like_glibc() {
    let world = ldfix_testworld::World::get().unwrap();
    let loader = world.loader();
    let facts = LoaderFacts::read(&RealFs, &loader).unwrap();
    let want = help_dirs(&loader);
    assert_eq!(want.len(), 2, "{want:?}");
    assert_eq!(dirs(&facts), want);
    assert_eq!(
        facts.cache_path,
        Some(world.glibc().join("etc/ld.so.cache"))
    );
    assert_eq!(
        facts.preload_path,
        Some(PathBuf::from("/etc/ld-nix.so.preload"))
    );
    assert_eq!(facts.lib, b"lib");
}

#[test]
fn debian_musl() {
    let loader = Path::new("/lib/ld-musl-x86_64.so.1");
    assert!(loader.exists(), "musl is missing: apt-get install -y musl");
    let facts = LoaderFacts::read(&RealFs, loader).unwrap();
    assert_eq!(facts.flavour, Flavour::Musl);
    assert_eq!(
        facts.musl_path_file,
        Some(PathBuf::from("/etc/ld-musl-x86_64.path"))
    );
    // Debian's musl package ships no path file, so musl's built-in default applies.
    if !Path::new("/etc/ld-musl-x86_64.path").exists() {
        assert_eq!(dirs(&facts), ["/lib", "/usr/local/lib", "/usr/lib"]);
    }
}
