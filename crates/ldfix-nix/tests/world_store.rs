//! ldfix-nix against the test world's real Nix store: the CLI and the database agree.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::ffi::OsStr;
use std::path::Path;

use ldfix_nix::{database_references, database_validity, NixCli, StoreDir};
use ldfix_testworld::World;

#[test]
fn database_and_cli_agree_on_validity_and_references() {
    let world = World::get().expect("the test world builds (see docs/testworld.md)");
    let store = StoreDir::new(None);
    let cli = NixCli::find(std::env::var_os("PATH").as_deref(), store.clone())
        .expect("nix-store on PATH: apt-get install -y nix-bin");

    let python = store.store_path_of(world.python()).unwrap();
    let fake_name = OsStr::new("0000000000000000000000000000ldfy-never-registered");
    let fake = ldfix_nix::StorePath::from_base_name(Path::new("/nix/store"), fake_name).unwrap();
    let paths = [python.clone(), fake];
    let from_cli = cli.check_validity(&paths).unwrap();
    assert_eq!(from_cli, [true, false]);
    assert_eq!(database_validity(&store, &paths).unwrap(), from_cli);

    let mut cli_refs = cli.references(&python).unwrap();
    cli_refs.sort();
    let db_refs = database_references(&store, &python).unwrap();
    assert!(cli_refs.len() >= 5, "python's references: {cli_refs:?}");
    assert_eq!(db_refs, cli_refs);
    let zlib = store.store_path_of(world.zlib()).unwrap();
    assert!(db_refs.contains(&zlib), "{db_refs:?}");
}
