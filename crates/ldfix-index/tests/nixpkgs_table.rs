//! Form and uniqueness of the built-in nixpkgs table.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use ldfix_index::nixpkgs;
use ldfix_index::{is_glibc_family, is_gpu_driver_library};

#[test]
fn table_records_a_full_revision() {
    let revision = nixpkgs::revision().expect("the table has a `# revision:` line");
    assert_eq!(revision.len(), 40, "{revision}");
    assert!(
        revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "{revision}"
    );
}

#[test]
fn table_has_at_least_300_well_formed_unique_sorted_rows() {
    let rows = nixpkgs::entries();
    assert!(rows.len() >= 300, "only {} rows", rows.len());
    let source = include_str!("../data/nixpkgs-sonames.tsv");
    let data_lines = source
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    assert_eq!(
        data_lines.clone().count(),
        rows.len(),
        "a data line did not parse"
    );
    for line in data_lines {
        assert_eq!(line.split('\t').count(), 4, "not four columns: {line:?}");
    }
    for pair in rows.windows(2) {
        assert!(
            pair[0].soname < pair[1].soname,
            "not sorted or duplicate: {pair:?}"
        );
    }
    for row in rows {
        let soname = row.soname.as_bytes();
        assert!(
            row.soname.starts_with("lib")
                && (row.soname.ends_with(".so") || row.soname.contains(".so.")),
            "odd soname {row:?}"
        );
        assert!(
            !is_glibc_family(soname),
            "glibc library in the table: {row:?}"
        );
        assert!(
            !is_gpu_driver_library(soname),
            "GPU driver library in the table: {row:?}"
        );
        assert!(
            row.attribute.split('.').all(|part| !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-+".contains(&b))),
            "odd attribute {row:?}"
        );
        // Outputs are Nix identifiers: `out`, `lib`, and package-specific ones (libevent's `openssl`).
        assert!(
            row.output.starts_with(|c: char| c.is_ascii_lowercase())
                && row
                    .output
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "odd output {row:?}"
        );
        assert!(
            row.evidence.starts_with("pkgs/") && row.evidence.ends_with(".nix"),
            "{row:?}"
        );
    }
}

#[test]
fn well_known_rows_and_the_commands_users_see() {
    let odbc = nixpkgs::lookup(b"libodbc.so.2").unwrap();
    assert_eq!(
        odbc.install_command(),
        "nix profile install nixpkgs#unixODBC"
    );
    assert_eq!(
        odbc.nix_ld_line(),
        "programs.nix-ld.libraries = with pkgs; [ unixODBC ];"
    );
    let cxx = nixpkgs::lookup(b"libstdc++.so.6").unwrap();
    assert_eq!(cxx.installable(), "nixpkgs#stdenv.cc.cc.lib");
    assert_eq!(nixpkgs::lookup(b"libGL.so.1").unwrap().attribute, "libGL");
    assert!(nixpkgs::lookup(b"libc.so.6").is_none());
}
