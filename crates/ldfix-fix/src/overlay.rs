//! A filesystem that shows planned file contents in place of the real ones, so a plan is
//! resolved with the emulator before anything is written.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ldfix_elf::read::FileBytes;
use ldfix_ldso::{FileId, Fs};

/// The real filesystem with some files' bytes replaced (keyed by canonical path).
pub(crate) struct OverlayFs<'a> {
    base: &'a dyn Fs,
    files: HashMap<PathBuf, Arc<Vec<u8>>>,
}

impl<'a> OverlayFs<'a> {
    pub(crate) fn new(base: &'a dyn Fs, files: HashMap<PathBuf, Arc<Vec<u8>>>) -> Self {
        Self { base, files }
    }

    fn planned(&self, path: &Path) -> Option<&Arc<Vec<u8>>> {
        if self.files.is_empty() {
            return None;
        }
        if let Some(bytes) = self.files.get(path) {
            return Some(bytes);
        }
        let real = self.base.canonicalize(path).ok()?;
        self.files.get(&real)
    }
}

impl Fs for OverlayFs<'_> {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.planned(path) {
            Some(bytes) => Ok(bytes.as_ref().clone()),
            None => self.base.read(path),
        }
    }

    /// Files without a plan come from the base's `read_elf`, which maps large files instead of
    /// reading them whole (the default `read_elf` would copy every 100 MB library).
    fn read_elf(&self, path: &Path) -> io::Result<FileBytes> {
        match self.planned(path) {
            Some(bytes) => Ok(FileBytes::Shared(Arc::clone(bytes))),
            None => self.base.read_elf(path),
        }
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        match self.planned(path) {
            Some(bytes) => Ok(bytes
                .get(..len.min(bytes.len()))
                .unwrap_or_default()
                .to_vec()),
            None => self.base.read_head(path, len),
        }
    }

    fn file_id(&self, path: &Path) -> io::Result<FileId> {
        self.base.file_id(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.base.is_dir(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.base.canonicalize(path)
    }
}
