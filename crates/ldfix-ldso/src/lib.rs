//! Emulation of the glibc and musl dynamic loaders' library search.
//!
//! Pure: the process environment is an explicit input ([`Environment`]) and files are reached
//! only through a filesystem trait ([`Fs`]), so the same code resolves on the host, inside
//! another root, or in memory. Loader facts come from the loader binary ([`LoaderFacts`]),
//! which is never executed.

pub mod cache;
pub mod dst;
mod error;
pub mod fs;
pub mod hwcaps;
pub mod loader;
pub mod object;
mod resolve;

pub use error::LdsoError;
pub use fs::{FileId, Fs, MemFs, RealFs, RootedFs};
pub use hwcaps::Cpu;
pub use loader::{Flavour, LoaderFacts};
pub use object::Object;
pub use resolve::{
    is_glibc_family, Edge, Environment, Finding, Loaded, Outcome, Request, Resolver, ReuseBy, Rule,
    Tree, Tried, TryResult,
};
