//! Emulation of the glibc and musl dynamic loaders' library search.
//!
//! Pure: the process environment is an explicit input and files are reached only through a
//! filesystem trait, so the same code resolves on the host, inside another root, or in memory.
