//! Read-only memory maps of large library files.

use std::fs::File;

/// Maps `file` read-only.
///
/// Used only for files above the read threshold found in the store, in profiles and in the
/// directories the user names: the index reads a few pages (headers, dynamic section, version
/// definitions) of libraries that can be gigabytes large.
#[allow(unsafe_code)]
pub(crate) fn map_read_only(file: &File) -> Option<memmap2::Mmap> {
    // SAFETY: the map is private and read-only, and is dropped before the scan of this file ends.
    // Store files are immutable; a file elsewhere that another process truncates while we read it
    // could fault, the accepted risk of every mmap-based reader (ripgrep, object's own examples).
    unsafe { memmap2::Mmap::map(file) }.ok()
}
