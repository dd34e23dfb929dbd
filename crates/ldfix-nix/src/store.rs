//! Store paths: `<store dir>/<32-character hash>-<name>`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::name::PackageName;

/// The store directory every standard Nix installation uses.
pub const DEFAULT_STORE_DIR: &str = "/nix/store";

/// Length of the hash part of a store path name (160 bits in Nix's base-32).
const HASH_LEN: usize = 32;

/// A Nix store directory, `/nix/store` unless `NIX_STORE_DIR` relocates it (rootless Nix, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDir(PathBuf);

impl StoreDir {
    /// The store directory named by `NIX_STORE_DIR` (passed in by the caller), else the default.
    /// A trailing slash is dropped so that prefix tests are exact.
    pub fn new(nix_store_dir: Option<&OsStr>) -> Self {
        match nix_store_dir.filter(|dir| !dir.is_empty()) {
            Some(dir) => Self(Path::new(dir).components().collect()),
            None => Self(PathBuf::from(DEFAULT_STORE_DIR)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The store path that `path` lies in, if it is inside this store (lexically: `..` is not
    /// resolved, so `/nix/store/x-a/../y` is not considered inside).
    pub fn store_path_of(&self, path: &Path) -> Option<StorePath> {
        let rest = path.strip_prefix(&self.0).ok()?;
        let mut components = rest.components();
        let Some(Component::Normal(first)) = components.next() else {
            return None;
        };
        if components.any(|c| matches!(c, Component::ParentDir)) {
            return None;
        }
        StorePath::from_base_name(&self.0, first)
    }

    /// The Nix database that registers this store's valid paths: `<store>/../var/nix/db/db.sqlite`,
    /// which holds for `/nix/store` and for relocated stores made with `--store DIR`.
    pub fn database(&self) -> Option<PathBuf> {
        Some(self.0.parent()?.join("var/nix/db/db.sqlite"))
    }

    /// Whether `path` lies inside this store.
    pub fn contains(&self, path: &Path) -> bool {
        self.store_path_of(path).is_some()
    }
}

/// One top-level store path, e.g. `/nix/store/9x…-zlib-1.3.1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    path: PathBuf,
}

impl StorePath {
    /// Parses the base name of a store entry (`<hash>-<name>`). Rejects names that Nix would not
    /// create: a hash with characters outside Nix's base-32 alphabet, an empty name, a name
    /// starting with a dot. `.drv`, `.lock` and `.links` entries are not store paths of packages.
    pub fn from_base_name(store_dir: &Path, base_name: &OsStr) -> Option<Self> {
        let bytes = base_name.as_bytes();
        let (hash, rest) = bytes.split_at_checked(HASH_LEN)?;
        let name = rest.strip_prefix(b"-")?;
        if !hash.iter().all(|&b| is_nix_base32(b)) || name.is_empty() || name[0] == b'.' {
            return None;
        }
        if name.ends_with(b".drv") || name.ends_with(b".lock") {
            return None;
        }
        Some(Self {
            path: store_dir.join(base_name),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn base_name(&self) -> &[u8] {
        self.path.file_name().map_or(&[], OsStr::as_bytes)
    }

    /// The hash part, e.g. `9x…` (32 characters).
    pub fn hash(&self) -> &str {
        // The constructor checked that these bytes are ASCII base-32 characters.
        std::str::from_utf8(&self.base_name()[..HASH_LEN]).unwrap_or_default()
    }

    /// The name part after the hash, e.g. `zlib-1.3.1`.
    pub fn name(&self) -> &OsStr {
        OsStr::from_bytes(&self.base_name()[HASH_LEN + 1..])
    }

    /// Package name, version and output parsed from the name.
    pub fn package(&self) -> PackageName {
        PackageName::parse(self.name())
    }

    pub fn into_path_buf(self) -> PathBuf {
        self.path
    }
}

impl AsRef<Path> for StorePath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl From<StorePath> for OsString {
    fn from(path: StorePath) -> Self {
        path.path.into_os_string()
    }
}

/// Nix's base-32 alphabet: digits and lowercase letters without e, o, u, t.
fn is_nix_base32(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z') && !matches!(b, b'e' | b'o' | b'u' | b't')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZLIB: &str = "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib-1.3.1";

    #[test]
    fn parses_store_path_of_a_file_inside() {
        let store = StoreDir::new(None);
        let sp = store
            .store_path_of(Path::new(&format!("{ZLIB}/lib/libz.so.1")))
            .unwrap();
        assert_eq!(sp.path(), Path::new(ZLIB));
        assert_eq!(sp.hash(), "1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2");
        assert_eq!(sp.name(), "zlib-1.3.1");
    }

    #[test]
    fn relocated_store_dir_is_honoured_and_trailing_slash_ignored() {
        let store = StoreDir::new(Some(OsStr::new("/tmp/nix/store/")));
        assert_eq!(store.path(), Path::new("/tmp/nix/store"));
        let inside = "/tmp/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib-1.3.1/lib";
        assert!(store.contains(Path::new(inside)));
        assert!(!store.contains(Path::new(&format!("{ZLIB}/lib"))));
    }

    #[test]
    fn rejects_what_is_not_a_package_store_path() {
        let store = StoreDir::new(None);
        for bad in [
            "/nix/store/.links/abc",
            "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib-1.3.1.drv",
            "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib-1.3.1.lock",
            "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2",
            "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-",
            "/nix/store/eqkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib",
            "/nix/store/short-zlib",
            "/nix/store",
            "/nix/storefoo/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib",
            "/nix/store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-zlib/../x",
        ] {
            assert_eq!(store.store_path_of(Path::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn non_utf8_names_are_kept_as_bytes() {
        let name = OsStr::from_bytes(b"1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-caf\xe9-1.0");
        let sp = StorePath::from_base_name(Path::new("/nix/store"), name).unwrap();
        assert_eq!(sp.name().as_bytes(), b"caf\xe9-1.0");
    }
}
