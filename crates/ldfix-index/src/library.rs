//! One shared library file found by the scanner.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a provider was found; the order of the variants is the ranking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SourceKind {
    /// A directory given with `--from`, in the order given.
    From(u16),
    /// The NixOS system profile.
    SystemProfile,
    /// A user profile.
    UserProfile,
    /// nix-ld's library path.
    NixLd,
    /// A valid store path found only by scanning the store.
    Store,
    /// The GPU driver directory (`/run/opengl-driver/lib`).
    GpuDriver,
}

impl SourceKind {
    pub fn describe(self) -> &'static str {
        match self {
            SourceKind::From(_) => "--from directory",
            SourceKind::SystemProfile => "system profile",
            SourceKind::UserProfile => "user profile",
            SourceKind::NixLd => "nix-ld libraries",
            SourceKind::Store => "Nix store",
            SourceKind::GpuDriver => "GPU driver directory",
        }
    }
}

/// A shared library: what the loader would match it by, what it is built for, what it defines,
/// and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Library {
    /// DT_SONAME, or the file name when the library has none.
    pub soname: Vec<u8>,
    /// The file name in its directory (what a run path entry finds).
    pub file_name: Vec<u8>,
    /// The directory the file was found in, as seen from its source (a profile's `lib/` for a
    /// profile provider).
    pub dir: Vec<u8>,
    /// The canonical directory of the real file (inside the store for store-backed sources);
    /// this is what `fix` writes, never a profile path.
    pub real_dir: Vec<u8>,
    /// The store path holding the real file, if it is in the store.
    pub store_path: Option<Vec<u8>>,
    pub machine: u16,
    /// 1 for ELFCLASS32, 2 for ELFCLASS64 (the ELF header's encoding).
    pub class: u8,
    /// 1 little endian, 2 big endian (the ELF header's encoding).
    pub data: u8,
    pub os_abi: u8,
    /// `glibc`, `musl`, `none`, … (ldfix-elf's libc flavour name).
    pub libc: String,
    /// Symbol versions the library defines (`GLIBCXX_3.4.30`, …), from `.gnu.version_d`.
    pub defines: Vec<Vec<u8>>,
    pub pname: Vec<u8>,
    pub version: Vec<u8>,
    pub output: Vec<u8>,
    pub source: SourceKind,
}

impl Library {
    pub fn dir_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.dir))
    }

    pub fn real_dir_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.real_dir))
    }

    /// The file as seen from its source.
    pub fn path(&self) -> PathBuf {
        self.dir_path().join(OsStr::from_bytes(&self.file_name))
    }

    /// The real file (inside the store for store-backed sources).
    pub fn real_path(&self) -> PathBuf {
        self.real_dir_path()
            .join(OsStr::from_bytes(&self.file_name))
    }

    pub fn defines_version(&self, version: &[u8]) -> bool {
        self.defines.iter().any(|defined| defined == version)
    }
}
