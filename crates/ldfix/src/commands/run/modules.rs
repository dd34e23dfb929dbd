//! Modules a program may `dlopen`: every ELF file under the `--for` directories, and a Python's
//! own module directories without being asked.

use std::io::Read as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::printer::Printer;

/// File name endings that are never ELF in the trees ldfix is for (Python packages above all):
/// skipping them saves opening thousands of files. Anything else is checked for the ELF magic.
const NOT_ELF: &[&[u8]] = &[
    b".py",
    b".pyc",
    b".pyi",
    b".pyx",
    b".pxd",
    b".txt",
    b".md",
    b".rst",
    b".json",
    b".toml",
    b".cfg",
    b".ini",
    b".h",
    b".hpp",
    b".c",
    b".cc",
    b".cpp",
    b".html",
    b".css",
    b".js",
    b".csv",
    b".png",
    b".jpg",
    b".svg",
    b".ttf",
    b".pem",
    b".typed",
    b".npy",
    b".npz",
    b".dat",
    b"RECORD",
    b"METADATA",
    b"WHEEL",
    b"LICENSE",
    b"INSTALLER",
];

/// Directories of Python extension modules to cover for `elf` (the ELF as found, before
/// symlinks are resolved) whose real file is `program`:
/// - a virtualenv's `bin/python*` (with `pyvenv.cfg` one directory up): its `site-packages`;
/// - a Python prefix outside the Nix store (a downloaded CPython): its `lib-dynload`. A store
///   Python's own modules were linked by Nix and need nothing.
pub(crate) fn python_dirs(elf: &Path, program: &Path) -> Vec<PathBuf> {
    let is_python = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b"python"))
    };
    let mut dirs = Vec::new();
    if is_python(elf) {
        if let Some(root) = elf.parent().and_then(Path::parent) {
            if root.join("pyvenv.cfg").is_file() {
                dirs.extend(versioned(root, "site-packages"));
            }
        }
    }
    let store = crate::settings::store_dir();
    if is_python(program) && !program.starts_with(store.path()) {
        if let Some(prefix) = program.parent().and_then(Path::parent) {
            dirs.extend(versioned(prefix, "lib-dynload"));
        }
    }
    let mut unique: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let real = std::fs::canonicalize(&dir).unwrap_or(dir);
        if !unique.contains(&real) {
            unique.push(real);
        }
    }
    unique
}

/// `ROOT/lib/python*/LEAF` (and `lib64`) that exist.
fn versioned(root: &Path, leaf: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(root.join(lib)) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().as_bytes().starts_with(b"python"))
            .map(|e| e.path().join(leaf))
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        found.extend(names);
    }
    found
}

/// Every regular ELF file under `dirs`, sorted; symlinks are not followed (the file they point
/// to is covered where it lives, if it is under one of the directories).
pub(crate) fn elf_files(dirs: &[PathBuf], printer: &Printer) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                printer.warn(&format!("cannot list {}: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && !NOT_ELF
                    .iter()
                    .any(|end| entry.file_name().as_bytes().ends_with(end))
                && has_elf_magic(&path)
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files.dedup();
    files
}

fn has_elf_magic(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}
