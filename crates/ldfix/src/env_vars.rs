//! Environment variables ldfix reads. `ldfix run` passes the environment through untouched;
//! this list is what the byte-for-byte test surrounds with sentinels.

/// Overrides the cache directory.
pub(crate) const LDFIX_CACHE_DIR: &str = "LDFIX_CACHE_DIR";
pub(crate) const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
pub(crate) const HOME: &str = "HOME";
pub(crate) const USER: &str = "USER";
pub(crate) const LOGNAME: &str = "LOGNAME";
pub(crate) const PATH: &str = "PATH";
/// A relocated Nix store (rootless Nix).
pub(crate) const NIX_STORE_DIR: &str = "NIX_STORE_DIR";
pub(crate) const NIX_LD_LIBRARY_PATH_X86_64_LINUX: &str = "NIX_LD_LIBRARY_PATH_x86_64_linux";
pub(crate) const NIX_LD_LIBRARY_PATH: &str = "NIX_LD_LIBRARY_PATH";
