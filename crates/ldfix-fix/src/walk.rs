//! Finding the files of a tree, and the stale temporary files of a run that was killed.
//!
//! Directories are walked without following symlinks: a symlink inside the tree is either the
//! name of another file of the tree (visited under its own name) or points out of it (into the
//! store, say), and is left alone, so a symlink into the store stays a symlink.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::FixError;
use crate::journal::STATE_DIR;

/// What the walk found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Regular files (the caller reads them in parallel and keeps ELF files and scripts).
    pub(crate) files: Vec<PathBuf>,
    /// `.NAME.ldfix-PID-N` files left by a killed replacement (see `write.rs`).
    pub(crate) stale_temps: Vec<PathBuf>,
}

/// Walks `root` (a directory or a single file), in sorted order.
pub(crate) fn walk(root: &Path) -> Result<Found, FixError> {
    let mut found = Found::default();
    let meta = std::fs::symlink_metadata(root).map_err(|source| FixError::Read {
        path: root.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        found.files.push(root.to_owned());
        return Ok(found);
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|source| FixError::Read {
                path: dir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        // Reverse so that popping visits subdirectories in name order.
        for entry in entries.into_iter().rev() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() {
                if name != OsStr::new(STATE_DIR) {
                    stack.push(entry.path());
                }
            } else if kind.is_file() {
                if is_temp_name(&name) {
                    found.stale_temps.push(entry.path());
                } else {
                    found.files.push(entry.path());
                }
            }
        }
    }
    found.files.sort();
    Ok(found)
}

/// `.NAME.ldfix-PID-N`, the temporary name `write::replace_file` uses.
fn is_temp_name(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    if bytes.first() != Some(&b'.') {
        return false;
    }
    let Some(at) = memfind(bytes, b".ldfix-") else {
        return false;
    };
    let tail = bytes.get(at + 7..).unwrap_or_default();
    let mut parts = tail.split(|&b| b == b'-');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// The process id in a temporary name, to tell a live writer from a killed one.
pub(crate) fn temp_owner(path: &Path) -> Option<u32> {
    let bytes = path.file_name()?.as_bytes();
    let at = memfind(bytes, b".ldfix-")?;
    let tail = bytes.get(at + 7..)?;
    let pid = tail.split(|&b| b == b'-').next()?;
    std::str::from_utf8(pid).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name(OsStr::new(".libz.so.1.ldfix-123-4")));
        assert!(!is_temp_name(OsStr::new("libz.so.1.ldfix-123-4")));
        assert!(!is_temp_name(OsStr::new(".libz.so.1.ldfix-12x-4")));
        assert_eq!(temp_owner(Path::new("/a/.python3.ldfix-77-0")), Some(77));
    }
}
