//! Getting a file's bytes cheaply: inspecting a tree touches thousands of files, most of them
//! not ELF, and most ELF files are far larger than the few pages the read model looks at.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Bytes read first, to decide by magic whether the file is worth reading whole.
pub const HEAD_LEN: usize = 4096;

/// Above this size an ELF file is mapped rather than copied: `parse` touches only the headers,
/// the dynamic table and a few strings, so a mapping faults in a handful of pages where a copy
/// would move the whole file (a 100 MiB library costs ~20 ms to copy, ~20 us to map).
const MAP_THRESHOLD: u64 = 64 * 1024;

/// A file's contents, owned or mapped.
#[derive(Debug)]
pub enum FileBytes {
    /// Read into memory (small files, and the head of non-ELF files).
    Owned(Vec<u8>),
    /// Mapped read-only.
    Mapped(memmap2::Mmap),
    /// Shared with the owner of planned contents (`fix` verifies a plan without copying it).
    Shared(std::sync::Arc<Vec<u8>>),
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(bytes) => bytes,
            FileBytes::Mapped(map) => map,
            FileBytes::Shared(bytes) => bytes,
        }
    }
}

/// What [`read_candidate`] found.
#[derive(Debug)]
pub struct Contents {
    /// The whole file when it is ELF, otherwise at most its first [`HEAD_LEN`] bytes.
    pub bytes: FileBytes,
    /// Whether the file starts with `\x7fELF`.
    pub is_elf: bool,
    /// The file's permission bits (`#!` only counts on executable files).
    pub mode: u32,
}

/// Opens a regular file and reads its head; when it is ELF, returns all of it (copied when small,
/// mapped when large).
pub fn read_candidate(path: &Path) -> io::Result<Contents> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mode = meta.permissions().mode();
    let size = meta.len();
    let head_len = usize::try_from(size).map_or(HEAD_LEN, |s| s.min(HEAD_LEN));
    let mut head = vec![0u8; head_len];
    let got = read_full(&mut file, &mut head)?;
    head.truncate(got);
    let is_elf = head.starts_with(b"\x7fELF");
    if !is_elf || got < HEAD_LEN || size <= HEAD_LEN as u64 {
        return Ok(Contents {
            bytes: FileBytes::Owned(head),
            is_elf,
            mode,
        });
    }
    let bytes = if size > MAP_THRESHOLD {
        FileBytes::Mapped(map(&file)?)
    } else {
        let mut data = head;
        data.resize(usize::try_from(size).map_err(io::Error::other)?, 0);
        let rest = data.get_mut(HEAD_LEN..).unwrap_or_default();
        let more = read_full(&mut file, rest)?;
        data.truncate(HEAD_LEN + more);
        FileBytes::Owned(data)
    };
    Ok(Contents {
        bytes,
        is_elf,
        mode,
    })
}

/// Maps a file read-only and private.
///
/// The one `unsafe` in the read model. `Mmap::map` is unsafe because another process could
/// change or truncate the file while it is mapped: a change shows up as changed bytes (which
/// `parse` treats like any hostile input, since it never trusts what it read), a truncation
/// kills the process with SIGBUS on the next access past the end. ldfix reads program trees and
/// Nix store paths that are not being written while it inspects them, and the speed matters
/// (see `bench/inspect.sh`), so that trade is taken here, in one place.
#[allow(unsafe_code)]
fn map(file: &File) -> io::Result<memmap2::Mmap> {
    // SAFETY: see above; the mapping is read-only and private, and is dropped with `FileBytes`.
    unsafe { memmap2::MmapOptions::new().map_copy_read_only(file) }
}

/// Fills `buf` as far as the file allows; returns the number of bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(done)
}
