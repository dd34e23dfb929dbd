//! `ldfix locate` and the static ldfix inside the NixOS-like sandbox, against the test world's
//! real Nix store and profiles.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod common;

use std::path::Path;

use ldfix_testworld::{Env, Lib64, World};
use serde_json::Value;

fn world() -> &'static World {
    World::get().expect("the test world builds (see docs/testworld.md)")
}

/// Runs the static ldfix inside the sandbox with `args`.
fn ldfix_in_sandbox(lib64: Lib64, nix_cli: bool, args: &[&str]) -> ldfix_testworld::RunOutput {
    let bin = common::static_ldfix();
    let bin_dir = bin.parent().unwrap();
    let mut argv = vec![bin.to_str().unwrap()];
    argv.extend_from_slice(args);
    world()
        .sandbox()
        .lib64(lib64)
        .nix_cli(nix_cli)
        .ro_bind(bin_dir)
        .run(&argv)
        .unwrap()
}

fn json(output: &ldfix_testworld::RunOutput) -> Value {
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{output}"))
}

#[test]
fn static_ldfix_runs_in_both_sandbox_variants_and_with_an_empty_environment() {
    for lib64 in [Lib64::Absent, Lib64::StubLd] {
        let out = ldfix_in_sandbox(lib64.clone(), true, &["--version"]);
        assert!(out.success(), "{lib64:?}: {out}");
        assert!(out.stdout.starts_with("ldfix "), "{out}");
    }
    // No HOME at all: the documented cache location is used and nothing asks NSS.
    let bin = common::static_ldfix();
    let out = world()
        .sandbox()
        .env(Env::Empty)
        .ro_bind(bin.parent().unwrap())
        .run(&[bin.to_str().unwrap(), "locate", "--stats"])
        .unwrap();
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.contains("cache:            /tmp/ldfix-cache-0/"),
        "{out}"
    );
}

#[test]
fn locate_prefers_the_system_profile_and_reports_the_canonical_store_path() {
    let out = ldfix_in_sandbox(Lib64::StubLd, true, &["locate", "--json", "libz.so.1"]);
    assert!(out.success(), "{out}");
    let doc = json(&out);
    let providers = doc["results"][0]["providers"].as_array().unwrap();
    let first = &providers[0];
    assert_eq!(first["source"], "system profile", "{out}");
    let zlib = world().zlib();
    assert_eq!(
        Path::new(first["real_path"].as_str().unwrap())
            .parent()
            .unwrap(),
        zlib.join("lib"),
        "{out}"
    );
    assert_eq!(
        first["store_path"].as_str().unwrap(),
        zlib.to_str().unwrap()
    );
    assert_eq!(first["package"], "zlib");
}

#[test]
fn locate_finds_libraries_that_are_only_in_the_store() {
    // unixODBC and libxcrypt are deliberately in no profile.
    let out = ldfix_in_sandbox(
        Lib64::Absent,
        true,
        &["locate", "--json", "libodbc.so.2", "libcrypt.so.1"],
    );
    assert!(out.success(), "{out}");
    let doc = json(&out);
    for (result, store_path) in doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .zip([world().unixodbc(), world().libxcrypt()])
    {
        // Only store paths provide them. Earlier builds of the world may be in the store too
        // (the newest build ranks first, see the ranking unit tests), so the world's own path
        // must be among them rather than necessarily first.
        let providers = result["providers"].as_array().unwrap();
        assert!(!providers.is_empty(), "{out}");
        assert!(
            providers.iter().all(|p| p["source"] == "Nix store"),
            "{out}"
        );
        let world_path = store_path.to_str().unwrap();
        assert!(
            providers.iter().any(|p| p["store_path"] == world_path),
            "{out}"
        );
    }
    assert_eq!(doc["results"][0]["nixpkgs"]["attribute"], "unixODBC");
}

#[test]
fn locate_exits_1_and_prints_the_install_command_for_a_missing_library() {
    let out = ldfix_in_sandbox(Lib64::StubLd, true, &["locate", "libasound.so.2"]);
    assert_eq!(out.status, 1, "{out}");
    assert!(out.stdout.contains("not found on this machine"), "{out}");
    assert!(
        out.stdout.contains("nix profile install nixpkgs#alsa-lib"),
        "{out}"
    );
    assert!(out.stdout.contains("programs.nix-ld.libraries"), "{out}");
}

#[test]
fn locate_never_offers_glibc_libraries_from_another_package() {
    let out = ldfix_in_sandbox(Lib64::StubLd, true, &["locate", "--json", "libm.so.6"]);
    let doc = json(&out);
    let result = &doc["results"][0];
    assert_eq!(result["glibc_family"], true);
    assert!(result["providers"].as_array().unwrap().is_empty(), "{out}");
    let copies = result["glibc_copies"].as_array().unwrap();
    assert!(!copies.is_empty(), "{out}");
    for copy in copies {
        assert_eq!(copy["package"], "glibc", "{out}");
    }
}

#[test]
fn unregistered_store_paths_are_not_offered_when_nix_can_tell() {
    // A directory in the store that Nix never registered (an interrupted build's output).
    let fake = Path::new("/nix/store/0000000000000000000000000000ldfx-zlib-9.9.9");
    std::fs::create_dir_all(fake.join("lib")).unwrap();
    std::fs::copy(
        world().zlib().join("lib/libz.so.1"),
        fake.join("lib/libz.so.1"),
    )
    .unwrap();
    // With the Nix CLI, and without it (then Nix's database is read directly).
    let with_cli = ldfix_in_sandbox(Lib64::StubLd, true, &["locate", "--json", "libz.so.1"]);
    let without_cli = ldfix_in_sandbox(Lib64::StubLd, false, &["locate", "--json", "libz.so.1"]);
    std::fs::remove_dir_all(fake).unwrap();
    for out in [with_cli, without_cli] {
        assert!(out.success(), "{out}");
        assert!(!out.stderr.contains("without checking"), "{out}");
        let doc = json(&out);
        let providers = doc["results"][0]["providers"].as_array().unwrap();
        assert!(providers.iter().any(|p| p["package"] == "zlib"), "{out}");
        for provider in providers {
            assert_ne!(
                provider["version"], "9.9.9",
                "unregistered path offered:\n{out}"
            );
        }
    }
}

#[test]
fn locate_needs_ranks_by_defined_symbol_versions() {
    // Debian 12's libstdc++ (gcc 12) defines GLIBCXX_3.4.30 but not 3.4.32 (gcc 13).
    let out = ldfix_in_sandbox(
        Lib64::StubLd,
        true,
        &[
            "locate",
            "--json",
            "--needs",
            "GLIBCXX_3.4.30",
            "libstdc++.so.6",
        ],
    );
    assert!(out.success(), "{out}");
    let first = &json(&out)["results"][0]["providers"][0];
    assert_eq!(
        first["missing_versions"].as_array().unwrap().len(),
        0,
        "{out}"
    );

    let out = ldfix_in_sandbox(
        Lib64::StubLd,
        true,
        &["locate", "--needs", "GLIBCXX_3.4.32", "libstdc++.so.6"],
    );
    assert_eq!(
        out.status, 1,
        "no provider defines it, so nothing usable:\n{out}"
    );
    assert!(
        out.stdout.contains("does not define GLIBCXX_3.4.32"),
        "{out}"
    );
}
