//! Building and refreshing the index.

use std::borrow::Cow;
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ldfix_nix::{NixCli, ProfileKind, ProfileSource, StoreDir, StorePath};
use rayon::prelude::*;

use crate::cache::{
    self, CacheBytes, CacheWriter, EntryKey, EntryMeta, InvalidEntry, LoadProblem, Meta,
    ProfileEntry,
};
use crate::error::IndexError;
use crate::families::is_gpu_driver_library;
use crate::library::{Library, SourceKind};
use crate::scan;

/// What the index scans and where it keeps its cache. Built by the caller from its settings and
/// environment; the index itself reads no environment variables.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    pub store: StoreDir,
    /// `--from` directories, searched before everything else.
    pub from_dirs: Vec<PathBuf>,
    /// Profile-like library directories, in priority order (see `ldfix_nix::profile_candidates`).
    pub profiles: Vec<ProfileSource>,
    /// The cache file; `None` keeps everything in memory.
    pub cache_file: Option<PathBuf>,
    /// The machine's Nix CLI, used to tell valid store paths from half-built ones.
    pub nix: Option<NixCli>,
    /// Ignore the cache and scan everything again.
    pub rebuild: bool,
}

/// What one refresh did, for `locate --stats` and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct RefreshStats {
    pub store_paths: usize,
    /// Whether the store listing was read (it is not when the store directory is unchanged).
    pub store_listed: bool,
    pub store_paths_scanned: usize,
    pub store_paths_dropped: usize,
    pub store_paths_invalid: usize,
    /// Why the cache was rebuilt from scratch, if it was.
    pub cache_problem: Option<String>,
    /// Whether store path validity was checked with the Nix CLI in this refresh.
    pub validity_checked: bool,
    pub elapsed: Duration,
}

/// The library index. Libraries of `--from` directories and profiles are held decoded; the
/// store's are decoded lazily, one store path at a time, when a lookup needs them.
#[derive(Debug)]
pub struct Index {
    eager: Vec<Library>,
    cache: Option<CacheBytes>,
    slots: Vec<Slot>,
    stats: RefreshStats,
}

/// A store path's libraries inside the cache bytes.
#[derive(Debug)]
struct Slot {
    names: (u64, u64),
    libraries: (u64, u64),
    decoded: OnceLock<Vec<Library>>,
}

/// A store entry after the refresh: still the cached one, or freshly scanned.
enum Entry<'a> {
    Kept(EntryMeta<'a>),
    Scanned {
        base_name: Vec<u8>,
        key: EntryKey,
        libraries: Vec<Library>,
    },
}

impl Index {
    /// Loads the cache, brings it up to date with the machine, and writes it back if anything
    /// changed.
    pub fn open(config: &IndexConfig) -> Result<Self, IndexError> {
        let started = Instant::now();
        let _lock = config.cache_file.as_deref().map(cache::lock).transpose()?;
        let mut stats = RefreshStats::default();
        let store_dir = config.store.path().as_os_str().as_bytes();

        let old_cache = match (&config.cache_file, config.rebuild) {
            (Some(path), false) => match cache::load(path) {
                Ok(cache) => Some(cache),
                Err(problem) => {
                    stats.cache_problem = describe_problem(&problem);
                    None
                }
            },
            (Some(_), true) => {
                stats.cache_problem = Some("--rebuild".into());
                None
            }
            (None, _) => None,
        };
        let mut old_meta = old_cache
            .as_ref()
            .and_then(CacheBytes::meta)
            .unwrap_or_default();
        if old_cache.is_some() && old_meta.store_dir != store_dir {
            stats.cache_problem = Some("the store directory changed".into());
            old_meta = Meta::default();
        }

        let store_stamp = stamp(config.store.path());
        let database_stamp = database_stamp(&config.store);
        let store_unchanged = !store_stamp.is_empty()
            && old_meta.store_stamp == store_stamp
            && (old_meta.invalid.is_empty() || old_meta.database_stamp == database_stamp);
        let (entries, invalid, store_changed) = if store_unchanged {
            let entries = old_meta.entries.iter().cloned().map(Entry::Kept).collect();
            (entries, old_meta.invalid.clone(), false)
        } else {
            stats.store_listed = true;
            let still_invalid = if old_meta.database_stamp == database_stamp {
                old_meta.invalid.clone()
            } else {
                Vec::new()
            };
            refresh_store(
                &config.store,
                config.nix.as_ref(),
                &old_meta.entries,
                &still_invalid,
                &mut stats,
            )?
        };
        stats.store_paths = entries.len();
        stats.store_paths_invalid = invalid.len();

        let (profiles, profiles_changed) =
            refresh_profiles(&config.store, &config.profiles, old_meta.profiles.clone());
        let changed = store_changed
            || profiles_changed
            || stats.cache_problem.is_some()
            || old_meta.store_stamp != store_stamp
            || old_meta.database_stamp != database_stamp;

        let mut eager = Vec::new();
        for (position, dir) in config.from_dirs.iter().enumerate() {
            let source = SourceKind::From(u16::try_from(position).unwrap_or(u16::MAX));
            eager.extend(scan::scan_profile_dir(dir, source, &config.store));
        }
        eager.extend(profiles.iter().flat_map(|p| p.libraries.iter().cloned()));
        eager.retain(|lib| {
            lib.source == SourceKind::GpuDriver || !is_gpu_driver_library(&lib.file_name)
        });

        let cache = if changed || old_cache.is_none() {
            let bytes = assemble(
                old_cache.as_ref(),
                store_dir,
                store_stamp,
                database_stamp,
                entries,
                invalid,
                profiles,
            )
            .map_err(|error| IndexError::Write {
                path: config.cache_file.clone().unwrap_or_default(),
                source: std::io::Error::other(error.to_string()),
            })?;
            if let Some(path) = &config.cache_file {
                cache::store(path, &bytes)?;
            }
            cache::from_written(bytes)
        } else {
            drop(entries);
            old_cache
        };
        let slots = cache
            .as_ref()
            .and_then(CacheBytes::meta)
            .map(|meta| {
                meta.entries
                    .iter()
                    .map(|entry| Slot {
                        names: entry.names,
                        libraries: entry.libraries,
                        decoded: OnceLock::new(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        stats.elapsed = started.elapsed();
        Ok(Self {
            eager,
            cache,
            slots,
            stats,
        })
    }

    pub fn stats(&self) -> &RefreshStats {
        &self.stats
    }

    /// Every library in the index (decodes every store path: for statistics and benchmarks).
    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.eager
            .iter()
            .chain(self.slots.iter().flat_map(|slot| self.decoded(slot).iter()))
    }

    /// Every library found under file name `name` (what a loader looking for NEEDED `name` in
    /// that library's directory would open), unranked.
    pub fn named<'a, 'n>(
        &'a self,
        name: &'n [u8],
    ) -> impl Iterator<Item = &'a Library> + use<'a, 'n> {
        let from_store = self
            .slots
            .iter()
            .filter(move |slot| self.slot_has(slot, name))
            .flat_map(move |slot| self.decoded(slot).iter());
        self.eager
            .iter()
            .chain(from_store)
            .filter(move |library| library.file_name == name)
    }

    fn slot_has(&self, slot: &Slot, name: &[u8]) -> bool {
        let Some(names) = self.cache.as_ref().and_then(|cache| cache.blob(slot.names)) else {
            return false;
        };
        names.split(|&b| b == 0).any(|candidate| candidate == name)
    }

    fn decoded<'a>(&'a self, slot: &'a Slot) -> &'a [Library] {
        slot.decoded.get_or_init(|| {
            self.cache
                .as_ref()
                .and_then(|cache| cache.blob(slot.libraries))
                .and_then(cache::decode_libraries)
                .unwrap_or_default()
        })
    }
}

/// Builds the new cache file: blobs of kept entries are copied from the old file as they are,
/// scanned ones are encoded.
fn assemble(
    old: Option<&CacheBytes>,
    store_dir: &[u8],
    store_stamp: Vec<i64>,
    database_stamp: Vec<i64>,
    entries: Vec<Entry<'_>>,
    invalid: Vec<InvalidEntry<'_>>,
    profiles: Vec<ProfileEntry>,
) -> Result<Vec<u8>, postcard::Error> {
    let mut writer = CacheWriter::default();
    let mut metas = Vec::with_capacity(entries.len());
    for entry in entries {
        let meta = match entry {
            Entry::Kept(meta) => {
                let blob = |range| old.and_then(|cache| cache.blob(range)).unwrap_or_default();
                EntryMeta {
                    names: writer.add_blob(blob(meta.names)),
                    libraries: writer.add_blob(blob(meta.libraries)),
                    ..meta
                }
            }
            Entry::Scanned {
                base_name,
                key,
                libraries,
            } => {
                let mut names = Vec::new();
                for library in &libraries {
                    names.extend_from_slice(&library.file_name);
                    names.push(0);
                }
                EntryMeta {
                    base_name: Cow::Owned(base_name),
                    key,
                    names: writer.add_blob(&names),
                    libraries: writer.add_blob(&postcard::to_stdvec(&libraries)?),
                }
            }
        };
        metas.push(meta);
    }
    let meta = Meta {
        store_dir,
        store_stamp,
        database_stamp,
        entries: metas,
        invalid,
        profiles,
    };
    writer.finish(&meta)
}

fn describe_problem(problem: &LoadProblem) -> Option<String> {
    match problem {
        LoadProblem::Missing => None,
        LoadProblem::Unreadable(error) => Some(format!("the cache could not be read ({error})")),
        LoadProblem::Corrupt => Some("the cache file was corrupt".into()),
        LoadProblem::OldVersion(version) => Some(format!(
            "the cache has format {version}, this ldfix uses {}",
            cache::FORMAT_VERSION
        )),
    }
}

/// Inode, change and modification times of a directory; empty when it cannot be read.
fn stamp(dir: &Path) -> Vec<i64> {
    match std::fs::metadata(dir) {
        Ok(meta) => vec![
            i64::try_from(meta.ino()).unwrap_or(-1),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ],
        Err(_) => Vec::new(),
    }
}

/// Lists the store, keeps cached entries whose key is unchanged, scans new ones (after checking
/// their validity), and drops vanished ones. Returns the entries, the invalid ones and whether
/// anything changed.
fn refresh_store<'a>(
    store: &StoreDir,
    nix: Option<&NixCli>,
    old: &[EntryMeta<'a>],
    old_invalid: &[InvalidEntry<'a>],
    stats: &mut RefreshStats,
) -> Result<(Vec<Entry<'a>>, Vec<InvalidEntry<'a>>, bool), IndexError> {
    let listing = match std::fs::read_dir(store.path()) {
        Ok(listing) => listing,
        // No store at all: nothing to index from it (a machine without Nix).
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new(), !old.is_empty()))
        }
        Err(source) => {
            return Err(IndexError::Read {
                path: store.path().to_owned(),
                source,
            })
        }
    };
    let mut old: HashMap<&[u8], &EntryMeta<'a>> =
        old.iter().map(|entry| (&*entry.base_name, entry)).collect();
    let old_invalid: HashMap<&[u8], &InvalidEntry<'a>> = old_invalid
        .iter()
        .map(|entry| (&*entry.base_name, entry))
        .collect();
    let mut entries = Vec::new();
    let mut new = Vec::new();
    let mut invalid = Vec::new();
    let mut new_invalid_count = 0;
    for dir_entry in listing.flatten() {
        let base_name = dir_entry.file_name();
        let Some(store_path) = StorePath::from_base_name(store.path(), &base_name) else {
            continue;
        };
        // `symlink_metadata`: a store path that is a symlink (rare) is keyed by the link itself.
        let Ok(meta) = std::fs::symlink_metadata(store_path.path()) else {
            continue; // Collected between listing and stat.
        };
        let key = EntryKey {
            inode: meta.ino(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        };
        let name = base_name.as_bytes();
        match old.remove(name) {
            Some(cached) if cached.key == key => entries.push(Entry::Kept(cached.clone())),
            _ => match old_invalid.get(name) {
                Some(known) if known.key == key => invalid.push((*known).clone()),
                _ => new.push((store_path, key)),
            },
        }
    }
    // What is left of the old entries vanished (or was rebuilt under the same name).
    stats.store_paths_dropped = old.len();

    // Only valid (registered, fully built) paths are indexed. Checked for new paths only: a
    // valid path stays valid until it is collected, and then it vanishes from the listing.
    // Through the Nix CLI where there is one, else by reading Nix's database; when neither
    // works every path counts as valid and the caller warns.
    let paths: Vec<StorePath> = new.iter().map(|(path, _)| path.clone()).collect();
    let checked = match nix {
        _ if new.is_empty() => None,
        Some(cli) => Some(cli.check_validity(&paths)?),
        None => ldfix_nix::database_validity(store, &paths),
    };
    stats.validity_checked = checked.is_some();
    let validity = checked.unwrap_or_else(|| vec![true; new.len()]);
    let mut to_scan = Vec::new();
    for ((store_path, key), valid) in new.into_iter().zip(validity) {
        if valid {
            to_scan.push((store_path, key));
        } else {
            new_invalid_count += 1;
            invalid.push(InvalidEntry {
                base_name: Cow::Owned(file_name_bytes(store_path.path())),
                key,
            });
        }
    }
    stats.store_paths_scanned = to_scan.len();
    let scanned: Vec<Entry<'a>> = to_scan
        .into_par_iter()
        .map(|(store_path, key)| Entry::Scanned {
            base_name: file_name_bytes(store_path.path()),
            key,
            libraries: scan::scan_store_path(store_path.path(), store)
                .into_iter()
                .filter(|lib| !is_gpu_driver_library(&lib.file_name))
                .collect(),
        })
        .collect();
    let changed = stats.store_paths_dropped > 0 || !scanned.is_empty() || new_invalid_count > 0;
    entries.extend(scanned);
    entries.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
    Ok((entries, invalid, changed))
}

fn entry_name<'e>(entry: &'e Entry<'_>) -> &'e [u8] {
    match entry {
        Entry::Kept(meta) => &meta.base_name,
        Entry::Scanned { base_name, .. } => base_name,
    }
}

fn file_name_bytes(path: &Path) -> Vec<u8> {
    path.file_name()
        .map(|name| name.as_bytes().to_vec())
        .unwrap_or_default()
}

/// Modification times of the Nix database and its write-ahead log: registering a path changes
/// one of them, which is when unregistered paths are worth checking again.
fn database_stamp(store: &StoreDir) -> Vec<i64> {
    let Some(database) = store.database() else {
        return Vec::new();
    };
    let mut wal = database.clone().into_os_string();
    wal.push("-wal");
    [database, PathBuf::from(wal)]
        .iter()
        .flat_map(|path| match std::fs::metadata(path) {
            Ok(meta) => [
                meta.mtime(),
                meta.mtime_nsec(),
                meta.size().try_into().unwrap_or(i64::MAX),
            ],
            Err(_) => [0, 0, 0],
        })
        .collect()
}

/// Rescans profile directories whose target changed. A profile directory that resolves to the
/// same store path as last time has the same contents (store paths are immutable).
fn refresh_profiles(
    store: &StoreDir,
    profiles: &[ProfileSource],
    old: Vec<ProfileEntry>,
) -> (Vec<ProfileEntry>, bool) {
    let mut old: HashMap<Vec<u8>, ProfileEntry> = old
        .into_iter()
        .map(|entry| (entry.lib_dir.clone(), entry))
        .collect();
    let mut changed = false;
    let mut entries = Vec::new();
    for profile in profiles {
        let lib_dir = profile.lib_dir.as_os_str().as_bytes().to_vec();
        let source = match profile.kind {
            ProfileKind::System => SourceKind::SystemProfile,
            ProfileKind::User => SourceKind::UserProfile,
            ProfileKind::NixLd => SourceKind::NixLd,
            ProfileKind::GpuDriver => SourceKind::GpuDriver,
        };
        let resolved = std::fs::canonicalize(&profile.lib_dir).ok();
        let reusable_key = resolved
            .as_deref()
            .filter(|dir| store.contains(dir))
            .map(|dir| dir.as_os_str().as_bytes().to_vec());
        let cached = old.remove(&lib_dir);
        let had_cached = cached.is_some();
        if let (Some(key), Some(cached)) = (&reusable_key, cached) {
            if &cached.resolved == key && cached.source == source {
                entries.push(cached);
                continue;
            }
        }
        if resolved.is_none() {
            // Missing or a broken link: provides nothing (and drops what it provided before).
            changed |= had_cached;
            continue;
        }
        changed = true;
        entries.push(ProfileEntry {
            lib_dir,
            source,
            resolved: reusable_key.unwrap_or_default(),
            libraries: scan::scan_profile_dir(&profile.lib_dir, source, store),
        });
    }
    changed |= !old.is_empty();
    (entries, changed)
}

#[cfg(test)]
impl Index {
    /// An index holding exactly `libraries`, for ranking tests.
    pub(crate) fn for_tests(libraries: Vec<Library>) -> Self {
        Self {
            eager: libraries,
            cache: None,
            slots: Vec::new(),
            stats: RefreshStats::default(),
        }
    }
}
