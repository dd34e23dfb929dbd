//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while emulating the loader. Missing libraries are not errors:
/// they are part of the result.
#[derive(Debug, thiserror::Error)]
pub enum LdsoError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An ld.so.cache file is malformed at some offset.
    #[error("{}: malformed ld.so.cache at offset {offset:#x}: {what}", path.display())]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// Byte offset of the problem.
        offset: usize,
        /// What was expected there.
        what: &'static str,
    },
    /// An ELF file could not be parsed.
    #[error("{}: not a loadable ELF file", path.display())]
    Elf {
        /// The file.
        path: PathBuf,
        /// The read model's error (names the structure and offset).
        #[source]
        source: ldfix_elf::read::ReadError,
    },
    /// The loader binary is not one this emulation knows (neither glibc's nor musl's).
    #[error("{}: not a glibc or musl dynamic loader ({why})", path.display())]
    UnknownLoader {
        /// The loader file.
        path: PathBuf,
        /// What was missing.
        why: &'static str,
    },
    /// The program to resolve is not dynamically linked.
    #[error("{}: statically linked; there is nothing to resolve", path.display())]
    Static {
        /// The program.
        path: PathBuf,
    },
}
