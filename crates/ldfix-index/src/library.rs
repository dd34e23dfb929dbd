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
    #[serde(with = "serde_bytes")]
    pub soname: Vec<u8>,
    /// The file name in its directory (what a run path entry finds).
    #[serde(with = "serde_bytes")]
    pub file_name: Vec<u8>,
    /// The directory the file was found in, as seen from its source (a profile's `lib/` for a
    /// profile provider).
    #[serde(with = "serde_bytes")]
    pub dir: Vec<u8>,
    /// The canonical directory of the real file when it differs from `dir` (a profile's link
    /// target, inside the store); this is what `fix` writes, never a profile path.
    pub real_dir: Option<serde_bytes::ByteBuf>,
    /// Length of the store path prefix of the real directory, if it is in the store.
    pub store_path_len: Option<u32>,
    pub machine: u16,
    /// 1 for ELFCLASS32, 2 for ELFCLASS64 (the ELF header's encoding).
    pub class: u8,
    /// 1 little endian, 2 big endian (the ELF header's encoding).
    pub data: u8,
    pub os_abi: u8,
    /// `glibc`, `musl`, `none`, … (ldfix-elf's libc flavour name).
    pub libc: String,
    /// Symbol versions the library defines (`GLIBCXX_3.4.30`, …), from `.gnu.version_d`, each
    /// followed by a NUL byte (one allocation instead of dozens: the cache loads faster).
    #[serde(with = "serde_bytes")]
    pub defines: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub pname: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub version: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub output: Vec<u8>,
    pub source: SourceKind,
    /// When the store path was made (its change time, seconds): among equal versions the newer
    /// build ranks first (a rebuild usually carries a fix). 0 outside the store.
    pub built: i64,
}

impl Library {
    pub fn dir_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.dir))
    }

    pub fn real_dir_path(&self) -> &Path {
        let real_dir = self
            .real_dir
            .as_deref()
            .map_or(self.dir.as_slice(), Vec::as_slice);
        Path::new(OsStr::from_bytes(real_dir))
    }

    /// The store path holding the real file, if it is in the store.
    pub fn store_path(&self) -> Option<&Path> {
        let len = usize::try_from(self.store_path_len?).ok()?;
        let real_dir = self.real_dir_path().as_os_str().as_bytes();
        real_dir
            .get(..len)
            .map(|prefix| Path::new(OsStr::from_bytes(prefix)))
    }

    /// The symbol versions the library defines.
    pub fn defines(&self) -> impl Iterator<Item = &[u8]> {
        self.defines
            .split(|&b| b == 0)
            .filter(|name| !name.is_empty())
    }

    /// Encodes version names for the `defines` field.
    pub fn encode_defines<'n>(names: impl IntoIterator<Item = &'n [u8]>) -> Vec<u8> {
        let mut joined = Vec::new();
        for name in names {
            joined.extend_from_slice(name);
            joined.push(0);
        }
        joined
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
        self.defines().any(|defined| defined == version)
    }
}
