//! ELF read model and editor.
//!
//! Reads any ELF file (32/64-bit, little/big endian) the way the kernel and the dynamic loader do,
//! and computes edited bytes for `ldfix patch` and `ldfix fix`. This crate never prints, never
//! calls Nix and never writes files: the editor returns new bytes.

pub mod edit;
pub mod read;

pub use read::{
    is_glibc_family, parse, parse_file, Class, DlopenEntry, DynEntry, ElfInfo, Endian, FileKind,
    GlibcVersion, LibcFlavour, ReadError, Segment, VersionNeed,
};
