//! The index over a relocated store and profiles built from Debian's real libraries.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use ldfix_index::{Index, IndexConfig, Requester, SourceKind};
use ldfix_nix::{ProfileKind, ProfileSource, StoreDir};

const DEBIAN_LIBS: &str = "/usr/lib/x86_64-linux-gnu";

/// A real library of this machine, by SONAME, resolved to its real file.
fn debian_lib(soname: &str) -> PathBuf {
    let path = Path::new(DEBIAN_LIBS).join(soname);
    std::fs::canonicalize(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing; install it: apt-get install zlib1g libstdc++6",
            path.display()
        )
    })
}

/// Creates `<store>/<hash>-<name>/lib/<real file>` plus a SONAME symlink, like a Nix output.
fn add_package(store: &Path, hash_char: char, name: &str, soname: &str) -> PathBuf {
    let hash: String = std::iter::repeat_n(hash_char, 32).collect();
    let out = store.join(format!("{hash}-{name}"));
    let lib = out.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let real = debian_lib(soname);
    let real_name = real.file_name().unwrap();
    std::fs::copy(&real, lib.join(real_name)).unwrap();
    if real_name != soname {
        symlink(real_name, lib.join(soname)).unwrap();
    }
    out
}

struct World {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    profile_lib: PathBuf,
    driver_lib: PathBuf,
    cache: PathBuf,
}

fn world() -> World {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("nix/store");
    std::fs::create_dir_all(&store).unwrap();
    let zlib = add_package(&store, '1', "zlib-1.2.13", "libz.so.1");
    add_package(&store, '2', "gcc-12.2.0-lib", "libstdc++.so.6");
    add_package(&store, '3', "gcc-13.2.0-lib", "libstdc++.so.6");
    // CUDA's link-time stubs are never providers; a store copy of a driver library neither.
    let cuda = add_package(&store, '4', "cudatoolkit-12.2", "libz.so.1");
    std::fs::create_dir_all(cuda.join("lib/stubs")).unwrap();
    std::fs::copy(debian_lib("libz.so.1"), cuda.join("lib/stubs/libcuda.so.1")).unwrap();
    std::fs::copy(debian_lib("libz.so.1"), cuda.join("lib/libcuda.so.1")).unwrap();
    // A half-registered leftover and a derivation file are not store paths of packages.
    std::fs::write(
        store.join("5555555555555555555555555555555a-x.drv"),
        "Derive(",
    )
    .unwrap();

    // A profile: a symlink farm pointing into zlib's store path.
    let profile_out = store.join("6666666666666666666666666666666a-system-path");
    let profile_lib = profile_out.join("lib");
    std::fs::create_dir_all(&profile_lib).unwrap();
    symlink(zlib.join("lib/libz.so.1"), profile_lib.join("libz.so.1")).unwrap();
    symlink(
        "/nonexistent/libgone.so.1",
        profile_lib.join("libgone.so.1"),
    )
    .unwrap();

    let driver_lib = tmp.path().join("run/opengl-driver/lib");
    std::fs::create_dir_all(&driver_lib).unwrap();
    std::fs::copy(debian_lib("libz.so.1"), driver_lib.join("libcuda.so.1")).unwrap();
    let cache = tmp.path().join("cache/index.bin");
    World {
        _tmp: tmp,
        store,
        profile_lib,
        driver_lib,
        cache,
    }
}

fn config(world: &World) -> IndexConfig {
    IndexConfig {
        store: StoreDir::new(Some(world.store.as_os_str())),
        from_dirs: Vec::new(),
        profiles: vec![
            ProfileSource {
                kind: ProfileKind::System,
                lib_dir: world.profile_lib.clone(),
            },
            ProfileSource {
                kind: ProfileKind::GpuDriver,
                lib_dir: world.driver_lib.clone(),
            },
        ],
        cache_file: Some(world.cache.clone()),
        nix: None,
        rebuild: false,
    }
}

fn dirs(index: &Index, name: &str) -> Vec<(SourceKind, String)> {
    index
        .lookup(name.as_bytes(), &Requester::x86_64_glibc())
        .iter()
        .map(|p| {
            (
                p.library.source,
                p.library.real_dir_path().display().to_string(),
            )
        })
        .collect()
}

#[test]
fn profile_provider_ranks_first_and_points_into_the_store() {
    let world = world();
    let index = Index::open(&config(&world)).unwrap();
    let zlib = dirs(&index, "libz.so.1");
    let store = world.store.display().to_string();
    assert_eq!(
        zlib[0],
        (
            SourceKind::SystemProfile,
            format!("{store}/11111111111111111111111111111111-zlib-1.2.13/lib")
        )
    );
    // The same real file is listed once; the CUDA toolkit's copy is another provider.
    assert_eq!(zlib.len(), 2, "{zlib:?}");
    let provider = &index.lookup(b"libz.so.1", &Requester::x86_64_glibc())[0];
    assert_eq!(provider.library.pname, b"zlib");
    assert_eq!(provider.library.version, b"1.2.13");
}

#[test]
fn newest_version_wins_among_store_paths_and_versions_are_read() {
    let world = world();
    let index = Index::open(&config(&world)).unwrap();
    let providers = index.lookup(b"libstdc++.so.6", &Requester::x86_64_glibc());
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[0].library.version, b"13.2.0");
    assert!(providers[0].library.defines_version(b"GLIBCXX_3.4.30"));
    assert_eq!(providers[0].library.output, b"lib");
}

#[test]
fn gpu_driver_libraries_only_from_the_driver_directory_and_never_stubs() {
    let world = world();
    let index = Index::open(&config(&world)).unwrap();
    let cuda = dirs(&index, "libcuda.so.1");
    assert_eq!(
        cuda,
        [(
            SourceKind::GpuDriver,
            world.driver_lib.display().to_string()
        )]
    );
}

#[test]
fn refresh_is_incremental_and_notices_new_vanished_and_rebuilt_paths() {
    let world = world();
    let first = Index::open(&config(&world)).unwrap();
    assert_eq!(first.stats().store_paths, 5);
    assert_eq!(first.stats().store_paths_scanned, 5);

    let warm = Index::open(&config(&world)).unwrap();
    assert_eq!(warm.stats().store_paths_scanned, 0);
    assert_eq!(warm.stats().store_paths, 5);
    assert_eq!(warm.libraries().count(), first.libraries().count());
    assert!(
        !warm.stats().store_listed,
        "an unchanged store is not listed again"
    );

    add_package(&world.store, '7', "zlib-1.3.1", "libz.so.1");
    std::fs::remove_dir_all(
        world
            .store
            .join("22222222222222222222222222222222-gcc-12.2.0-lib"),
    )
    .unwrap();
    let changed = Index::open(&config(&world)).unwrap();
    assert_eq!(changed.stats().store_paths_scanned, 1);
    assert_eq!(changed.stats().store_paths_dropped, 1);
    assert_eq!(
        changed
            .lookup(b"libstdc++.so.6", &Requester::x86_64_glibc())
            .len(),
        1
    );

    // Collected and rebuilt under the same name: a new inode, so it is scanned again.
    let gcc13 = world
        .store
        .join("33333333333333333333333333333333-gcc-13.2.0-lib");
    std::fs::remove_dir_all(&gcc13).unwrap();
    add_package(&world.store, '3', "gcc-13.2.0-lib", "libstdc++.so.6");
    let rebuilt = Index::open(&config(&world)).unwrap();
    assert_eq!(rebuilt.stats().store_paths_scanned, 1);
}

#[test]
fn corrupt_or_old_cache_is_rebuilt_with_a_reason() {
    let world = world();
    Index::open(&config(&world)).unwrap();
    // The current header (magic and format version) followed by garbage.
    let mut corrupt = std::fs::read(&world.cache).unwrap()[..12].to_vec();
    corrupt.extend_from_slice(b"garbage");
    std::fs::write(&world.cache, corrupt).unwrap();
    let index = Index::open(&config(&world)).unwrap();
    assert_eq!(
        index.stats().cache_problem.as_deref(),
        Some("the cache file was corrupt")
    );
    assert_eq!(index.stats().store_paths_scanned, 5);
    std::fs::write(&world.cache, b"LDFIXIDX\x00\x00\x00\x00").unwrap();
    let index = Index::open(&config(&world)).unwrap();
    assert!(index
        .stats()
        .cache_problem
        .as_deref()
        .unwrap()
        .contains("format 0"));
    let warm = Index::open(&config(&world)).unwrap();
    assert_eq!(warm.stats().cache_problem, None);
    assert_eq!(warm.stats().store_paths_scanned, 0);
}

#[test]
fn provider_collected_after_the_scan_is_not_offered() {
    let world = world();
    Index::open(&config(&world)).unwrap();
    let index = Index::open(&config(&world)).unwrap();
    std::fs::remove_dir_all(
        world
            .store
            .join("33333333333333333333333333333333-gcc-13.2.0-lib"),
    )
    .unwrap();
    let providers = index.lookup(b"libstdc++.so.6", &Requester::x86_64_glibc());
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].library.version, b"12.2.0");
}
