//! Nix store paths, package names, profiles and GC roots, and the only place that spawns the
//! `nix` CLI.
//!
//! Nothing here reads the process environment: callers pass `NIX_STORE_DIR`, `HOME`, `USER` and
//! the search `PATH` in explicitly, so the static ldfix and its tests decide what is seen.

mod cli;
mod database;
mod error;
mod name;
mod profile;
mod store;

pub use cli::NixCli;
pub use database::{database_references, database_validity};
pub use error::NixError;
pub use name::{compare_versions, PackageName};
pub use profile::{profile_candidates, resolve_profile, ProfileEnv, ProfileKind, ProfileSource};
pub use store::{StoreDir, StorePath, DEFAULT_STORE_DIR};
