//! The on-disk index cache: a magic number, a format version, then the postcard-encoded index.
//!
//! A format change bumps `FORMAT_VERSION`; an old or corrupt file is rebuilt, never trusted.
//! Writes go to a temporary file in the same directory and are renamed into place, so readers
//! see the old or the new cache, never half of one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::IndexError;
use crate::library::{Library, SourceKind};

const MAGIC: &[u8; 8] = b"LDFIXIDX";
pub(crate) const FORMAT_VERSION: u32 = 3;

/// Everything the index keeps between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct CacheData {
    /// The store directory the entries belong to; a different one invalidates them.
    #[serde(with = "serde_bytes")]
    pub(crate) store_dir: Vec<u8>,
    pub(crate) store_paths: Vec<StoreEntry>,
    /// Store entries that were not valid (half-built, unregistered) when last checked; checked
    /// again only when the Nix database changes.
    pub(crate) invalid: Vec<(serde_bytes::ByteBuf, EntryKey)>,
    /// Modification stamps of the Nix database files when `invalid` was checked.
    pub(crate) database_stamp: Vec<i64>,
    pub(crate) profiles: Vec<ProfileEntry>,
}

/// One scanned store path. `key` changes when a collected path is rebuilt under the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoreEntry {
    #[serde(with = "serde_bytes")]
    pub(crate) base_name: Vec<u8>,
    pub(crate) key: EntryKey,
    pub(crate) libraries: Vec<Library>,
}

/// Inode and change time of a store path's top directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EntryKey {
    pub(crate) inode: u64,
    pub(crate) ctime: i64,
    pub(crate) ctime_nsec: i64,
}

/// One scanned profile directory, valid while the directory still resolves to `resolved` (a
/// store path: profiles switch generations by pointing somewhere else).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProfileEntry {
    #[serde(with = "serde_bytes")]
    pub(crate) lib_dir: Vec<u8>,
    pub(crate) source: SourceKind,
    #[serde(with = "serde_bytes")]
    pub(crate) resolved: Vec<u8>,
    pub(crate) libraries: Vec<Library>,
}

/// Why a cache file was not used.
#[derive(Debug)]
pub(crate) enum LoadProblem {
    Missing,
    Unreadable(std::io::Error),
    Corrupt,
    OldVersion(u32),
}

pub(crate) fn load(path: &Path) -> Result<CacheData, LoadProblem> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadProblem::Missing)
        }
        Err(error) => return Err(LoadProblem::Unreadable(error)),
    };
    let rest = bytes.strip_prefix(MAGIC).ok_or(LoadProblem::Corrupt)?;
    let (version, payload) = rest.split_at_checked(4).ok_or(LoadProblem::Corrupt)?;
    let version = u32::from_le_bytes(version.try_into().map_err(|_| LoadProblem::Corrupt)?);
    if version != FORMAT_VERSION {
        return Err(LoadProblem::OldVersion(version));
    }
    postcard::from_bytes(payload).map_err(|_| LoadProblem::Corrupt)
}

pub(crate) fn store(path: &Path, data: &CacheData) -> Result<(), IndexError> {
    let write_error = |source| IndexError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let payload = postcard::to_stdvec(data)
        .map_err(|error| write_error(std::io::Error::other(error.to_string())))?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    temp.write_all(MAGIC).map_err(write_error)?;
    temp.write_all(&FORMAT_VERSION.to_le_bytes())
        .map_err(write_error)?;
    temp.write_all(&payload).map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path)
        .map_err(|error| write_error(error.error))?;
    Ok(())
}

/// An exclusive lock on the cache, held while refreshing and writing it, so that two ldfix
/// processes do not scan and write at the same time.
pub(crate) fn lock(cache_file: &Path) -> Result<File, IndexError> {
    let lock_path = cache_file.with_extension("lock");
    let write_error = |source| IndexError::Write {
        path: lock_path.clone(),
        source,
    };
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_error)?;
    file.lock().map_err(write_error)?;
    Ok(file)
}
