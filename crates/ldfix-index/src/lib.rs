//! SONAME -> providers.
//!
//! Scans the places a NixOS machine keeps libraries (explicit `--from` directories, the system
//! profile, user profiles, nix-ld's libraries, every valid path of the local Nix store, and the GPU
//! driver directory), keeps what it found in a versioned on-disk cache that is refreshed
//! incrementally (store paths are immutable: only new ones are scanned), and answers "who provides
//! `libodbc.so.2`?" with ranked providers, or with the nixpkgs attribute to install.

mod cache;
mod error;
mod families;
mod index;
mod library;
pub mod nixpkgs;
mod query;
mod scan;

pub use error::IndexError;
pub use families::{is_glibc_family, is_gpu_driver_library};
pub use index::{Index, IndexConfig, RefreshStats};
pub use library::{Library, SourceKind};
pub use query::{Provider, Requester};
