//! The on-disk index cache.
//!
//! Layout: `LDFIXIDX`, a little-endian u32 format version, a little-endian u64 length of the
//! metadata, the postcard-encoded [`Meta`], then a blob region. Each store path's libraries are a
//! separate postcard blob in that region, with the NUL-terminated list of their file names next
//! to it, so a query decodes only the store paths that hold the name asked for: the cache of a
//! store with tens of thousands of libraries answers in a millisecond or two.
//!
//! A format change bumps `FORMAT_VERSION`; an old or corrupt file is rebuilt, never trusted.
//! Writes go to a temporary file in the same directory and are renamed into place, so readers see
//! the old or the new cache, never half of one.

use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::IndexError;
use crate::library::{Library, SourceKind};

const MAGIC: &[u8; 8] = b"LDFIXIDX";
pub(crate) const FORMAT_VERSION: u32 = 5;
const HEADER_LEN: usize = MAGIC.len() + 4 + 8;

/// Everything but the per-store-path blobs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Meta<'a> {
    /// The store directory the entries belong to; a different one invalidates them.
    #[serde(borrow, with = "serde_bytes")]
    pub(crate) store_dir: &'a [u8],
    /// Stamp of the store directory itself: adding or removing a store path changes it, so an
    /// unchanged stamp means the listing need not be read again.
    pub(crate) store_stamp: Vec<i64>,
    /// Stamp of the Nix database files: registering a path changes it.
    pub(crate) database_stamp: Vec<i64>,
    #[serde(borrow)]
    pub(crate) entries: Vec<EntryMeta<'a>>,
    /// Store entries that were not valid (half-built, unregistered) when last checked; checked
    /// again only when the Nix database changes.
    #[serde(borrow)]
    pub(crate) invalid: Vec<InvalidEntry<'a>>,
    pub(crate) profiles: Vec<ProfileEntry>,
}

/// One scanned store path. `key` changes when a collected path is rebuilt under the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EntryMeta<'a> {
    #[serde(borrow, with = "serde_bytes")]
    pub(crate) base_name: Cow<'a, [u8]>,
    pub(crate) key: EntryKey,
    /// Offset and length, in the blob region, of the NUL-terminated file names.
    pub(crate) names: (u64, u64),
    /// Offset and length, in the blob region, of the postcard-encoded `Vec<Library>`.
    pub(crate) libraries: (u64, u64),
}

/// A store path that was not valid when last checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InvalidEntry<'a> {
    #[serde(borrow, with = "serde_bytes")]
    pub(crate) base_name: Cow<'a, [u8]>,
    pub(crate) key: EntryKey,
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

/// A cache file read into memory: the metadata is decoded on demand from `bytes`, blobs are
/// decoded per store path.
#[derive(Debug)]
pub(crate) struct CacheBytes {
    bytes: Vec<u8>,
    meta: Range<usize>,
    blobs_start: usize,
}

impl CacheBytes {
    pub(crate) fn meta(&self) -> Option<Meta<'_>> {
        postcard::from_bytes(self.bytes.get(self.meta.clone())?).ok()
    }

    /// A blob, by the (offset, length) recorded in the metadata.
    pub(crate) fn blob(&self, (offset, len): (u64, u64)) -> Option<&[u8]> {
        let start = self
            .blobs_start
            .checked_add(usize::try_from(offset).ok()?)?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes.get(start..end)
    }
}

/// Decodes one store path's libraries.
pub(crate) fn decode_libraries(blob: &[u8]) -> Option<Vec<Library>> {
    postcard::from_bytes(blob).ok()
}

/// Why a cache file was not used.
#[derive(Debug)]
pub(crate) enum LoadProblem {
    Missing,
    Unreadable(std::io::Error),
    Corrupt,
    OldVersion(u32),
}

pub(crate) fn load(path: &Path) -> Result<CacheBytes, LoadProblem> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadProblem::Missing)
        }
        Err(error) => return Err(LoadProblem::Unreadable(error)),
    };
    let rest = bytes.strip_prefix(MAGIC).ok_or(LoadProblem::Corrupt)?;
    let version = rest.get(..4).ok_or(LoadProblem::Corrupt)?;
    let version = u32::from_le_bytes(version.try_into().map_err(|_| LoadProblem::Corrupt)?);
    if version != FORMAT_VERSION {
        return Err(LoadProblem::OldVersion(version));
    }
    let meta_len = rest.get(4..12).ok_or(LoadProblem::Corrupt)?;
    let meta_len = u64::from_le_bytes(meta_len.try_into().map_err(|_| LoadProblem::Corrupt)?);
    let meta_len = usize::try_from(meta_len).map_err(|_| LoadProblem::Corrupt)?;
    let blobs_start = HEADER_LEN
        .checked_add(meta_len)
        .ok_or(LoadProblem::Corrupt)?;
    if blobs_start > bytes.len() {
        return Err(LoadProblem::Corrupt);
    }
    let cache = CacheBytes {
        bytes,
        meta: HEADER_LEN..blobs_start,
        blobs_start,
    };
    // Decode once to reject a corrupt file now rather than at query time.
    cache.meta().ok_or(LoadProblem::Corrupt)?;
    Ok(cache)
}

/// Assembles a cache file in memory: the caller appends blobs, then finishes with the metadata.
#[derive(Debug, Default)]
pub(crate) struct CacheWriter {
    blobs: Vec<u8>,
}

impl CacheWriter {
    /// Appends a blob and returns its (offset, length) for the metadata.
    pub(crate) fn add_blob(&mut self, blob: &[u8]) -> (u64, u64) {
        let offset = self.blobs.len() as u64;
        self.blobs.extend_from_slice(blob);
        (offset, blob.len() as u64)
    }

    /// The complete file contents.
    pub(crate) fn finish(self, meta: &Meta<'_>) -> Result<Vec<u8>, postcard::Error> {
        let meta = postcard::to_stdvec(meta)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + meta.len() + self.blobs.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(meta.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&meta);
        bytes.extend_from_slice(&self.blobs);
        Ok(bytes)
    }
}

/// Turns complete file contents back into a [`CacheBytes`] without another read.
pub(crate) fn from_written(bytes: Vec<u8>) -> Option<CacheBytes> {
    let meta_len = u64::from_le_bytes(bytes.get(12..HEADER_LEN)?.try_into().ok()?);
    let blobs_start = HEADER_LEN.checked_add(usize::try_from(meta_len).ok()?)?;
    Some(CacheBytes {
        bytes,
        meta: HEADER_LEN..blobs_start,
        blobs_start,
    })
}

/// Writes the file atomically: a temporary file in the same directory, fsync, rename.
pub(crate) fn store(path: &Path, bytes: &[u8]) -> Result<(), IndexError> {
    let write_error = |source| IndexError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    temp.write_all(bytes).map_err(write_error)?;
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
