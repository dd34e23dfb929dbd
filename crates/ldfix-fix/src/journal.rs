//! The journal: what `fix` changed in each file, so `undo` can restore it byte for byte.
//!
//! It lives in `TREE/.ldfix/journal`, one JSON record per line, appended and fsynced *before* the
//! new file is renamed into place. A record keeps the original bytes of the ranges that changed
//! and the original length, not a copy of the file (CUDA wheels hold multi-gigabyte libraries),
//! plus a hash and length of the original and of what was written: `undo` restores a file only
//! when it is exactly what `fix` wrote, and recognises a file that is still the original (a run
//! killed between the journal write and the rename).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::FixError;

/// The directory ldfix keeps its state in, at the top of a fixed tree.
pub const STATE_DIR: &str = ".ldfix";
const JOURNAL: &str = "journal";

/// Equal bytes between two changed runs that are still stored as one range (fewer, larger
/// records; the editor changes headers and tables in small clusters).
const MERGE_GAP: usize = 32;

/// One change to one file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// The file, relative to the tree (hex of its bytes: names are bytes, not text).
    pub file: String,
    /// Length before.
    pub orig_len: u64,
    /// Hash of the contents before.
    pub orig_hash: String,
    /// Length written.
    pub new_len: u64,
    /// Hash of the contents written.
    pub new_hash: String,
    /// `(offset, original bytes in hex)` of every changed range inside the original length.
    pub ranges: Vec<(u64, String)>,
    /// For people reading the journal: what changed.
    pub summary: String,
}

impl Record {
    /// Describes the change from `old` to `new` of `file` (relative to the tree).
    /// The two hashes and the comparison each read a whole file; they run in parallel.
    pub fn new(file: &Path, old: &[u8], new: &[u8], summary: String) -> Self {
        let ((orig_hash, new_hash), ranges) = rayon::join(
            || rayon::join(|| content_hash(old), || content_hash(new)),
            || changed_ranges(old, new),
        );
        Self {
            file: hex(file.as_os_str().as_bytes()),
            orig_len: old.len() as u64,
            orig_hash,
            new_len: new.len() as u64,
            new_hash,
            ranges: ranges
                .into_iter()
                .map(|(start, end)| (start as u64, hex(old.get(start..end).unwrap_or_default())))
                .collect(),
            summary,
        }
    }

    /// The file's path relative to the tree.
    pub fn rel_path(&self) -> Option<PathBuf> {
        unhex(&self.file).map(|b| PathBuf::from(std::ffi::OsStr::from_bytes(&b)))
    }

    /// Whether `data` is exactly what this record wrote.
    pub fn is_written(&self, data: &[u8]) -> bool {
        data.len() as u64 == self.new_len && content_hash(data) == self.new_hash
    }

    /// Whether `data` is exactly what this record started from.
    pub fn is_original(&self, data: &[u8]) -> bool {
        data.len() as u64 == self.orig_len && content_hash(data) == self.orig_hash
    }

    /// The original contents, rebuilt from what was written; `None` if the record does not
    /// fit (the result is checked against the original's hash).
    pub fn restore(&self, written: &[u8]) -> Option<Vec<u8>> {
        let mut out = written.to_vec();
        for (offset, bytes) in &self.ranges {
            let bytes = unhex(bytes)?;
            let start = usize::try_from(*offset).ok()?;
            let end = start.checked_add(bytes.len())?;
            if out.len() < end {
                out.resize(end, 0);
            }
            out.get_mut(start..end)?.copy_from_slice(&bytes);
        }
        out.resize(usize::try_from(self.orig_len).ok()?, 0);
        self.is_original(&out).then_some(out)
    }
}

/// The journal of one tree.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal of the tree at `tree` (which need not exist yet).
    pub fn of_tree(tree: &Path) -> Self {
        Self {
            dir: tree.join(STATE_DIR),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// Every record, oldest first (none when there is no journal).
    pub fn records(&self) -> Result<Vec<Record>, FixError> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(FixError::Read { path, source }),
        };
        let mut out = Vec::new();
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (n, line) in lines.into_iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => out.push(r),
                // A line cut short by a crash in the middle of an append has no newline and is
                // the last one; the file it describes was not renamed yet.
                Err(_) if n == last => {}
                Err(e) => {
                    return Err(FixError::Journal {
                        path,
                        line: n + 1,
                        why: e.to_string(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Appends one record and makes it durable before the caller renames the file.
    pub fn append(&self, record: &Record) -> Result<(), FixError> {
        self.append_all(std::slice::from_ref(record))
    }

    /// Appends records with one write and one fsync, before the caller renames their files.
    pub fn append_all(&self, records: &[Record]) -> Result<(), FixError> {
        let path = self.path();
        let werr = |source| FixError::Write {
            path: path.clone(),
            source,
        };
        // The GC roots may have created `.ldfix/` already: what must reach the disk is the
        // journal's own directory entry, and the directory's when it is new.
        let dir_created = !self.dir.exists();
        let created = dir_created || !path.exists();
        std::fs::create_dir_all(&self.dir).map_err(|source| FixError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let mut line = Vec::new();
        for record in records {
            line.extend(serde_json::to_vec(record).map_err(|e| werr(std::io::Error::other(e)))?);
            line.push(b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(werr)?;
        file.write_all(&line).map_err(werr)?;
        file.sync_data().map_err(werr)?;
        if created {
            sync_dir(&self.dir);
        }
        if dir_created {
            if let Some(parent) = self.dir.parent() {
                sync_dir(parent);
            }
        }
        Ok(())
    }

    /// Replaces the journal with `records` (after an undo), or removes it when none are left.
    pub fn rewrite(&self, records: &[Record]) -> Result<(), FixError> {
        let path = self.path();
        let werr = |source| FixError::Write {
            path: path.clone(),
            source,
        };
        if records.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(werr(e)),
            };
        }
        let tmp = self.dir.join(format!("{JOURNAL}.tmp"));
        let mut text = Vec::new();
        for r in records {
            text.extend(serde_json::to_vec(r).map_err(|e| werr(std::io::Error::other(e)))?);
            text.push(b'\n');
        }
        let mut f = File::create(&tmp).map_err(werr)?;
        f.write_all(&text).map_err(werr)?;
        f.sync_data().map_err(werr)?;
        std::fs::rename(&tmp, &path).map_err(werr)?;
        sync_dir(&self.dir);
        Ok(())
    }
}

pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Runs of differing bytes within the original length, plus the original's tail when the new
/// file is shorter, as `[start, end)` ranges of the original.
fn changed_ranges(old: &[u8], new: &[u8]) -> Vec<(usize, usize)> {
    let common = old.len().min(new.len());
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < common {
        if old.get(i) == new.get(i) {
            i = next_difference(old, new, i, common);
            continue;
        }
        let start = i;
        while i < common && old.get(i) != new.get(i) {
            i += 1;
        }
        match ranges.last_mut() {
            Some(last) if start - last.1 <= MERGE_GAP => last.1 = i,
            _ => ranges.push((start, i)),
        }
    }
    if old.len() > new.len() {
        ranges.push((new.len(), old.len()));
    }
    ranges
}

/// Equal bytes compared a block at a time (at `memcmp` speed): most of a 100 MB library is
/// unchanged, and a byte-by-byte loop over it took longer than writing the file.
const COMPARE_BLOCK: usize = 4096;

/// The first index from `i` (up to `end`) where `old` and `new` differ, or `end`.
fn next_difference(old: &[u8], new: &[u8], mut i: usize, end: usize) -> usize {
    while i + COMPARE_BLOCK <= end && old.get(i..i + COMPARE_BLOCK) == new.get(i..i + COMPARE_BLOCK)
    {
        i += COMPARE_BLOCK;
    }
    while i < end && old.get(i) == new.get(i) {
        i += 1;
    }
    i
}

/// A 64-bit hash of the whole contents (8 bytes at a time; multi-gigabyte files are hashed at
/// memory speed). It detects a file that changed since `fix` wrote it; it is not a defence
/// against someone crafting a collision.
pub fn content_hash(data: &[u8]) -> String {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (data.len() as u64).wrapping_mul(K);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 32;
    format!("{:016x}", h.wrapping_mul(K))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition that [`changed_ranges`] must match: maximal runs of differing bytes,
    /// runs at most `MERGE_GAP` apart joined, then the original's tail.
    fn changed_ranges_slow(old: &[u8], new: &[u8]) -> Vec<(usize, usize)> {
        let differs: Vec<bool> = old.iter().zip(new).map(|(a, b)| a != b).collect();
        let mut runs = Vec::new();
        let mut open = None;
        for (i, d) in differs.iter().chain([&false]).enumerate() {
            match (d, open) {
                (true, None) => open = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    open = None;
                }
                _ => {}
            }
        }
        let mut joined: Vec<(usize, usize)> = Vec::new();
        for (s, e) in runs {
            match joined.last_mut() {
                Some(last) if s - last.1 <= MERGE_GAP => last.1 = e,
                _ => joined.push((s, e)),
            }
        }
        if old.len() > new.len() {
            joined.push((new.len(), old.len()));
        }
        joined
    }

    #[test]
    fn changed_ranges_match_the_byte_by_byte_definition() {
        let old: Vec<u8> = (0..40_000u32).map(|n| (n * 7 % 251) as u8).collect();
        // Differences at block boundaries, inside blocks, close together (merged) and far apart,
        // at the very start and end, with the new file longer, shorter and equal in length.
        let spots = [
            0, 1, 4095, 4096, 4097, 8191, 8200, 8230, 12_288, 20_000, 39_999,
        ];
        for len in [30_000, 40_000, 50_000] {
            for take in 0..spots.len() {
                let mut new = old.clone();
                new.resize(len, 9);
                for &at in spots.iter().skip(take) {
                    if let Some(b) = new.get_mut(at) {
                        *b ^= 0x5a;
                    }
                }
                assert_eq!(
                    changed_ranges(&old, &new),
                    changed_ranges_slow(&old, &new),
                    "len {len}, spots from {take}"
                );
            }
        }
    }

    #[test]
    fn restores_grown_shrunk_and_edited() {
        let old: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let mut grown = old.clone();
        grown[10] = 1;
        grown[4000] ^= 0xff;
        grown.extend_from_slice(&[7; 300]);
        let mut shrunk = old.clone();
        shrunk.truncate(4500);
        shrunk[0] = 9;
        for new in [grown, shrunk, old.clone()] {
            let r = Record::new(Path::new("a/b"), &old, &new, String::new());
            assert!(r.is_written(&new));
            assert_eq!(r.restore(&new).unwrap(), old);
            assert_eq!(r.rel_path().unwrap(), Path::new("a/b"));
            // Not what was written: the hash says so.
            let mut other = new.clone();
            other.push(0);
            assert!(!r.is_written(&other));
        }
    }

    #[test]
    fn ranges_are_small_and_merged() {
        let old = vec![0u8; 1000];
        let mut new = old.clone();
        new[100] = 1;
        new[110] = 1;
        new[900] = 1;
        assert_eq!(changed_ranges(&old, &new), vec![(100, 111), (900, 901)]);
    }

    #[test]
    fn journal_round_trip_and_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::of_tree(dir.path());
        let r = Record::new(Path::new("x"), b"abc", b"abd", "s".into());
        j.append(&r).unwrap();
        j.append(&r).unwrap();
        let p = dir.path().join(".ldfix/journal");
        let mut text = std::fs::read(&p).unwrap();
        text.extend_from_slice(b"{\"file\":\"7");
        std::fs::write(&p, &text).unwrap();
        assert_eq!(j.records().unwrap().len(), 2);
        j.rewrite(&[]).unwrap();
        assert!(j.records().unwrap().is_empty());
    }
}
