//! Building and refreshing the index.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ldfix_nix::{NixCli, ProfileKind, ProfileSource, StoreDir, StorePath};
use rayon::prelude::*;
use serde_bytes::ByteBuf;

use crate::cache::{self, CacheData, EntryKey, LoadProblem, ProfileEntry, StoreEntry};
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
    pub store_paths_scanned: usize,
    pub store_paths_dropped: usize,
    pub store_paths_invalid: usize,
    pub libraries: usize,
    /// Why the cache was rebuilt from scratch, if it was.
    pub cache_problem: Option<String>,
    /// Whether store path validity could be checked with the Nix CLI.
    pub validity_checked: bool,
    pub elapsed: Duration,
}

/// The library index: every provider found, grouped by file name for lookups.
#[derive(Debug)]
pub struct Index {
    libraries: Vec<Library>,
    /// Positions in `libraries`, sorted by file name (binary search; no per-entry allocation).
    by_name: Vec<u32>,
    stats: RefreshStats,
}

impl Index {
    /// Loads the cache, brings it up to date with the machine, and writes it back if anything
    /// changed.
    pub fn open(config: &IndexConfig) -> Result<Self, IndexError> {
        let started = Instant::now();
        let _lock = config.cache_file.as_deref().map(cache::lock).transpose()?;
        let mut stats = RefreshStats::default();
        let store_dir_bytes = config.store.path().as_os_str().as_bytes().to_vec();
        let old = match (&config.cache_file, config.rebuild) {
            (Some(path), false) => match cache::load(path) {
                Ok(data) if data.store_dir == store_dir_bytes => data,
                Ok(_) => {
                    stats.cache_problem = Some("the store directory changed".into());
                    CacheData::default()
                }
                Err(problem) => {
                    stats.cache_problem = describe_problem(&problem);
                    CacheData::default()
                }
            },
            (Some(_), true) => {
                stats.cache_problem = Some("--rebuild".into());
                CacheData::default()
            }
            (None, _) => CacheData::default(),
        };

        let database_stamp = database_stamp(&config.store);
        let still_invalid = if old.database_stamp == database_stamp {
            old.invalid
        } else {
            Vec::new()
        };
        let (store_paths, invalid, store_changed) = refresh_store(
            &config.store,
            config.nix.as_ref(),
            old.store_paths,
            still_invalid,
            &mut stats,
        )?;
        let (profiles, profiles_changed) =
            refresh_profiles(&config.store, &config.profiles, old.profiles);
        let data = CacheData {
            store_dir: store_dir_bytes,
            store_paths,
            invalid,
            database_stamp,
            profiles,
        };
        if let Some(path) = &config.cache_file {
            if store_changed || profiles_changed || stats.cache_problem.is_some() {
                cache::store(path, &data)?;
            }
        }

        let mut libraries = Vec::new();
        for (position, dir) in config.from_dirs.iter().enumerate() {
            let source = SourceKind::From(u16::try_from(position).unwrap_or(u16::MAX));
            libraries.extend(scan::scan_profile_dir(dir, source, &config.store));
        }
        libraries.extend(data.profiles.into_iter().flat_map(|p| p.libraries));
        libraries.extend(data.store_paths.into_iter().flat_map(|s| s.libraries));
        // GPU driver libraries count only from the driver directory.
        libraries.retain(|lib| {
            lib.source == SourceKind::GpuDriver || !is_gpu_driver_library(&lib.file_name)
        });
        stats.libraries = libraries.len();
        stats.elapsed = started.elapsed();
        Ok(Self::from_libraries(libraries, stats))
    }

    fn from_libraries(libraries: Vec<Library>, stats: RefreshStats) -> Self {
        let mut by_name: Vec<u32> = (0..libraries.len())
            .filter_map(|position| u32::try_from(position).ok())
            .collect();
        by_name.sort_by(|&a, &b| file_name_at(&libraries, a).cmp(file_name_at(&libraries, b)));
        Self {
            libraries,
            by_name,
            stats,
        }
    }

    pub fn stats(&self) -> &RefreshStats {
        &self.stats
    }

    pub fn libraries(&self) -> &[Library] {
        &self.libraries
    }

    /// Every library found under file name `name` (what a loader looking for NEEDED `name` in
    /// that library's directory would open), unranked.
    pub fn named<'a, 'n>(
        &'a self,
        name: &'n [u8],
    ) -> impl Iterator<Item = &'a Library> + use<'a, 'n> {
        let start = self
            .by_name
            .partition_point(|&position| file_name_at(&self.libraries, position) < name);
        self.by_name[start..]
            .iter()
            .take_while(move |&&position| file_name_at(&self.libraries, position) == name)
            .filter_map(|&position| self.libraries.get(position as usize))
    }
}

fn file_name_at(libraries: &[Library], position: u32) -> &[u8] {
    libraries
        .get(position as usize)
        .map_or(&[], |library| library.file_name.as_slice())
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

/// Lists the store, keeps cached entries whose key is unchanged, scans new ones (after checking
/// their validity), and drops vanished ones. Returns the entries and whether anything changed.
#[allow(clippy::type_complexity)]
fn refresh_store(
    store: &StoreDir,
    nix: Option<&NixCli>,
    old: Vec<StoreEntry>,
    old_invalid: Vec<(ByteBuf, EntryKey)>,
    stats: &mut RefreshStats,
) -> Result<(Vec<StoreEntry>, Vec<(ByteBuf, EntryKey)>, bool), IndexError> {
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
    let mut old: HashMap<Vec<u8>, StoreEntry> = old
        .into_iter()
        .map(|entry| (entry.base_name.clone(), entry))
        .collect();
    let old_invalid: HashMap<Vec<u8>, EntryKey> = old_invalid
        .into_iter()
        .map(|(name, key)| (name.into_vec(), key))
        .collect();
    let mut kept = Vec::new();
    let mut new = Vec::new();
    let mut invalid = Vec::new();
    for entry in listing.flatten() {
        let base_name = entry.file_name();
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
        match old.remove(base_name.as_bytes()) {
            Some(cached) if cached.key == key => kept.push(cached),
            _ if old_invalid.get(base_name.as_bytes()) == Some(&key) => {
                invalid.push((ByteBuf::from(base_name.as_bytes()), key));
            }
            _ => new.push((store_path, key)),
        }
    }
    // What is left of the old entries vanished (or was rebuilt under the same name).
    stats.store_paths_dropped = old.len();
    let dropped_any = !old.is_empty();

    // Only valid (registered, fully built) paths are indexed. Checked for new paths only: a
    // valid path stays valid until it is collected, and then it vanishes from the listing.
    let validity = match nix {
        Some(cli) if !new.is_empty() => {
            let paths: Vec<StorePath> = new.iter().map(|(path, _)| path.clone()).collect();
            stats.validity_checked = true;
            cli.check_validity(&paths)?
        }
        _ => vec![true; new.len()],
    };
    let mut valid_new = Vec::new();
    for ((store_path, key), valid) in new.into_iter().zip(validity) {
        if valid {
            valid_new.push((store_path, key));
        } else {
            let base_name = store_path.path().file_name().map(|n| n.as_bytes().to_vec());
            invalid.push((ByteBuf::from(base_name.unwrap_or_default()), key));
        }
    }
    let new = valid_new;
    stats.store_paths_invalid = invalid.len();
    stats.store_paths_scanned = new.len();
    let scanned: Vec<StoreEntry> = new
        .into_par_iter()
        .map(|(store_path, key)| StoreEntry {
            base_name: store_path
                .path()
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default(),
            key,
            libraries: scan::scan_store_path(store_path.path(), store),
        })
        .collect();
    let changed = dropped_any || !scanned.is_empty() || invalid.len() != old_invalid.len();
    kept.extend(scanned);
    kept.sort_by(|a, b| a.base_name.cmp(&b.base_name));
    stats.store_paths = kept.len();
    Ok((kept, invalid, changed))
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
    pub(crate) fn for_tests(libraries: Vec<Library>) -> Self {
        Self::from_libraries(libraries, RefreshStats::default())
    }
}
