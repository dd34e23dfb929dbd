//! Finding shared libraries in directories and reading what the index needs from each.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ldfix_elf::{Class, ElfInfo, Endian, FileKind};
use ldfix_nix::StoreDir;
use serde_bytes::ByteBuf;

use crate::library::{Library, SourceKind};

/// Directory names under a store path's `lib/` that never hold providers: CUDA's link-time
/// `stubs/` (they abort at run time), separate debug info, Python packages (modules, not
/// libraries a program links against), pkg-config and cmake files.
const SKIPPED_DIRS: &[&[u8]] = &[
    b"stubs",
    b"debug",
    b".build-id",
    b"pkgconfig",
    b"cmake",
    b"site-packages",
    b"dist-packages",
];

/// How deep below `lib/` the store scan looks (`lib/pulseaudio/libpulsecommon.so`, …).
const MAX_DEPTH: usize = 3;

/// Whether a file name looks like a shared library or a loader: `*.so`, `*.so.N…`.
pub(crate) fn is_library_name(name: &[u8]) -> bool {
    if name.starts_with(b".") || name.ends_with(b".debug") {
        return false;
    }
    name.ends_with(b".so") || memchr_find(name, b".so.").is_some()
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Scans the libraries directly in `dir` (a profile's or nix-ld's `lib/`). Symlinks are followed:
/// profiles are symlink farms, and the real file's directory is recorded as the one to use.
pub(crate) fn scan_profile_dir(dir: &Path, source: SourceKind, store: &StoreDir) -> Vec<Library> {
    let mut parsed = HashMap::new();
    let mut found = Vec::new();
    for name in library_names(dir) {
        let path = dir.join(OsStr::from_bytes(&name));
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue; // A broken link in a profile provides nothing.
        };
        let Some(real_dir) = real.parent() else {
            continue;
        };
        // Profiles link `libz.so.1` to `…-zlib/lib/libz.so.1.3.1`; the SONAME link exists in
        // the real directory too, and that is the directory `fix` writes.
        if !real_dir.join(OsStr::from_bytes(&name)).exists() {
            continue;
        }
        if let Some(library) = describe(&real, &name, dir, real_dir, source, store, &mut parsed) {
            found.push(library);
        }
    }
    found
}

/// Scans a store path's library directories (`lib`, `lib64`, `lib32`, recursively to
/// `MAX_DEPTH`). Only files whose real location is inside the same store path count: a symlink
/// into another store path (a profile, a wrapper) is that other path's library.
pub(crate) fn scan_store_path(store_path: &Path, store: &StoreDir) -> Vec<Library> {
    let mut parsed = HashMap::new();
    let mut found = Vec::new();
    let mut pending: Vec<(PathBuf, usize)> = ["lib", "lib64", "lib32"]
        .iter()
        .map(|sub| (store_path.join(sub), 0))
        .collect();
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.as_bytes();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                if depth < MAX_DEPTH && !SKIPPED_DIRS.contains(&name) {
                    pending.push((entry.path(), depth + 1));
                }
                continue;
            }
            if !is_library_name(name) {
                continue;
            }
            let path = entry.path();
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            if !real.starts_with(store_path) {
                continue;
            }
            let source = SourceKind::Store;
            if let Some(library) = describe(&real, name, &dir, &dir, source, store, &mut parsed) {
                found.push(library);
            }
        }
    }
    found
}

/// The library names directly in `dir`, sorted (symlinks included; directories excluded).
fn library_names(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<Vec<u8>> = entries
        .flatten()
        .map(|entry| entry.file_name().as_bytes().to_vec())
        .filter(|name| is_library_name(name))
        .collect();
    names.sort();
    names
}

/// Reads `real` (once per scan, however many names point to it) and describes it as found
/// under `file_name` in `dir`. Files that are not ELF shared objects are skipped.
fn describe(
    real: &Path,
    file_name: &[u8],
    dir: &Path,
    real_dir: &Path,
    source: SourceKind,
    store: &StoreDir,
    parsed: &mut HashMap<PathBuf, Option<ElfInfo>>,
) -> Option<Library> {
    let info = parsed
        .entry(real.to_owned())
        .or_insert_with(|| read_elf(real))
        .as_ref()?;
    // glibc's libc.so.6 has PT_INTERP (it can be run), so PIE-like objects count too.
    if !matches!(info.kind, FileKind::SharedLibrary | FileKind::Pie) {
        return None;
    }
    let store_path = store.store_path_of(real_dir);
    let package = store_path.as_ref().map(|sp| sp.package());
    let built = store_path
        .as_ref()
        .and_then(|sp| std::fs::symlink_metadata(sp.path()).ok())
        .map_or(0, |meta| meta.ctime());
    Some(Library {
        soname: info.soname.clone().unwrap_or_else(|| file_name.to_vec()),
        file_name: file_name.to_vec(),
        dir: dir.as_os_str().as_bytes().to_vec(),
        real_dir: (real_dir != dir).then(|| ByteBuf::from(real_dir.as_os_str().as_bytes())),
        store_path_len: store_path.and_then(|sp| u32::try_from(sp.path().as_os_str().len()).ok()),
        machine: info.machine,
        class: match info.class {
            Class::Elf32 => 1,
            Class::Elf64 => 2,
        },
        data: match info.endian {
            Endian::Little => 1,
            Endian::Big => 2,
        },
        os_abi: info.os_abi,
        libc: info.libc.as_str().to_owned(),
        defines: Library::encode_defines(info.version_defs.iter().map(Vec::as_slice)),
        pname: package
            .as_ref()
            .map(|p| p.pname.clone())
            .unwrap_or_default(),
        version: package
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default(),
        output: package.map(|p| p.output).unwrap_or_default(),
        source,
        built,
    })
}

/// Parses one file; `None` for anything that is not a readable ELF file. Large libraries are
/// mapped, not copied (ldfix-elf's `read_candidate`).
fn read_elf(path: &Path) -> Option<ElfInfo> {
    let contents = ldfix_elf::read::read_candidate(path).ok()?;
    if !contents.is_elf {
        return None;
    }
    ldfix_elf::parse(&contents.bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names() {
        for yes in [
            "libz.so",
            "libz.so.1",
            "libz.so.1.3.1",
            "ld-linux-x86-64.so.2",
        ] {
            assert!(is_library_name(yes.as_bytes()), "{yes}");
        }
        for no in [
            "libz.a",
            "libz.so.1.debug",
            ".libz.so.1",
            "libz.la",
            "zlib.pc",
            "libsomething",
        ] {
            assert!(!is_library_name(no.as_bytes()), "{no}");
        }
    }
}
