//! Facts about a dynamic loader, read from its binary without running it.
//!
//! The search rules depend on the loader that will actually run the program, not on the host:
//! Debian's glibc has `/etc/ld.so.cache` and the multiarch directories compiled in and expands
//! `$LIB` to `lib/x86_64-linux-gnu`; nixpkgs' glibc searches its own `lib/` and its libgcc's, and
//! keeps its cache under its own prefix; musl reads `<prefix>/etc/ld-musl-$ARCH.path`. All of it
//! is in the loader's read-only data, so it is read from there: running a loader that belongs to
//! an inspected tree would be running untrusted code, as `ldd` does.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ldfix_elf::read::{Class, ElfInfo};

use crate::error::LdsoError;
use crate::fs::{FileId, Fs};

/// Which loader implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// GNU libc's `ld.so`.
    Glibc,
    /// musl's `libc.so`, which is also its loader.
    Musl,
}

/// Everything the search depends on that is compiled into the loader.
#[derive(Debug, Clone)]
pub struct LoaderFacts {
    /// The loader's path as the program names it (PT_INTERP); also its first name for reuse.
    pub path: PathBuf,
    /// The file the facts were read from (differs from `path` when another loader's rules
    /// are assumed).
    pub file: PathBuf,
    /// glibc or musl.
    pub flavour: Flavour,
    /// glibc `major.minor` (from the `release version` banner), used for the hwcaps rules.
    pub glibc_version: Option<(u32, u32)>,
    /// The default directories (`SYSTEM_DIRS`), each ending in `/`. For musl: the path file's
    /// directories, or musl's built-in `/lib:/usr/local/lib:/usr/lib`.
    pub system_dirs: Vec<Vec<u8>>,
    /// The cache file (`LD_SO_CACHE`), when the loader has one.
    pub cache_path: Option<PathBuf>,
    /// The preload file (`/etc/ld.so.preload`, `/etc/ld-nix.so.preload` in nixpkgs).
    pub preload_path: Option<PathBuf>,
    /// The expansion of `$LIB` (`DL_DST_LIB`).
    pub lib: Vec<u8>,
    /// musl: the path file consulted (`<prefix>/etc/ld-musl-$ARCH.path`).
    pub musl_path_file: Option<PathBuf>,
    /// The loader's DT_SONAME (`ld-linux-x86-64.so.2`); NEEDED entries with it reuse the loader.
    pub soname: Option<Vec<u8>>,
    /// ELF class of the loader: it only loads objects of its own class and machine.
    pub class: Class,
    /// e_machine of the loader.
    pub machine: u16,
    /// Identity of the loader file: opening it again by another path reuses it.
    pub file_id: Option<FileId>,
}

/// NUL-terminated strings of a binary with their offsets.
fn strings(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == 0).filter(|s| !s.is_empty())
}

fn is_dir_string(s: &[u8]) -> bool {
    s.len() >= 2
        && s.first() == Some(&b'/')
        && s.last() == Some(&b'/')
        && s.iter().all(|&b| b.is_ascii_graphic())
}

/// A NUL-terminated string of the binary and its file offset.
fn strings_at(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut offset = 0;
    data.split(|&b| b == 0).map(move |s| {
        let at = offset;
        offset += s.len() + 1;
        (at, s)
    })
}

/// Where the code points: the targets of every RIP-relative `lea` in the executable segments of
/// an x86-64 file (`REX.W 8D /r` with mod=00, r/m=101). `None` on other machines.
///
/// A loader rewritten in place (the test world's nixified glibc appends new directory, cache and
/// preload strings and retargets these instructions, leaving the old strings behind) has several
/// candidate strings; the one the code references is the one the loader uses.
fn lea_targets(data: &[u8], info: &ElfInfo) -> Option<HashSet<u64>> {
    if info.machine != 62 || info.class != Class::Elf64 {
        return None;
    }
    let mut targets = HashSet::new();
    for seg in info
        .segments
        .iter()
        .filter(|s| s.p_type == 1 && s.flags & 1 != 0)
    {
        let start = usize::try_from(seg.offset).ok()?;
        let len = usize::try_from(seg.filesz).ok()?;
        let Some(text) = data.get(start..start.saturating_add(len)) else {
            continue;
        };
        for (i, w) in text.windows(7).enumerate() {
            let (Some(&rex), Some(&op), Some(&modrm)) = (w.first(), w.get(1), w.get(2)) else {
                continue;
            };
            if (rex == 0x48 || rex == 0x4c) && op == 0x8d && modrm & 0xc7 == 0x05 {
                let disp = w
                    .get(3..7)
                    .and_then(|d| <[u8; 4]>::try_from(d).ok())
                    .map(i32::from_le_bytes);
                if let Some(disp) = disp {
                    let next = seg.vaddr.wrapping_add(i as u64 + 7);
                    targets.insert(next.wrapping_add_signed(i64::from(disp)));
                }
            }
        }
    }
    Some(targets)
}

/// The virtual address of a file offset, through the PT_LOAD segments.
fn vaddr_of(offset: usize, info: &ElfInfo) -> Option<u64> {
    let offset = offset as u64;
    info.segments
        .iter()
        .filter(|s| s.p_type == 1)
        .find(|s| offset >= s.offset && offset < s.offset.saturating_add(s.filesz))
        .map(|s| s.vaddr.wrapping_add(offset - s.offset))
}

/// `SYSTEM_DIRS` is a run of consecutive NUL-terminated absolute directories, each ending in `/`
/// (glibc `elf/gen-trusted-dirs.awk`), placed right after `system_dirs_len[]`, the array of their
/// lengths (`elf/dl-load.c`). Runs preceded by a matching length array are the candidates; of
/// those, the one the code references wins (see [`lea_targets`]), else the last. Without any
/// length array, the longest run.
fn system_dirs(data: &[u8], info: &ElfInfo) -> Vec<Vec<u8>> {
    let mut runs: Vec<(usize, Vec<&[u8]>)> = Vec::new();
    let mut run: Vec<&[u8]> = Vec::new();
    let mut run_start = 0;
    for (at, s) in strings_at(data) {
        if is_dir_string(s) {
            if run.is_empty() {
                run_start = at;
            }
            run.push(s);
        } else if !run.is_empty() {
            runs.push((run_start, std::mem::take(&mut run)));
        }
    }
    if !run.is_empty() {
        runs.push((run_start, run));
    }
    let word = if info.class == Class::Elf64 { 8 } else { 4 };
    let big = info.endian == ldfix_elf::read::Endian::Big;
    let has_lengths = |start: usize, dirs: &[&[u8]]| {
        let Some(array_start) = start.checked_sub(word * dirs.len()) else {
            return false;
        };
        dirs.iter().enumerate().all(|(k, d)| {
            let at = array_start + k * word;
            let Some(bytes) = data.get(at..at + word) else {
                return false;
            };
            let value = bytes.iter().enumerate().fold(0u64, |acc, (n, &b)| {
                let shift = if big { 8 * (word - 1 - n) } else { 8 * n };
                acc | (u64::from(b) << shift)
            });
            value == d.len() as u64
        })
    };
    // The array's length says how many strings of the run are SYSTEM_DIRS (a copy may follow).
    let candidates: Vec<(usize, &[&[u8]])> = runs
        .iter()
        .filter_map(|(start, dirs)| {
            (1..=dirs.len())
                .rev()
                .find(|&k| dirs.get(..k).is_some_and(|d| has_lengths(*start, d)))
                .and_then(|k| dirs.get(..k))
                .map(|d| (*start, d))
        })
        .collect();
    let referenced = lea_targets(data, info).and_then(|targets| {
        candidates.iter().copied().find(|(start, dirs)| {
            let array = start - word * dirs.len();
            [*start, array]
                .iter()
                .any(|&o| vaddr_of(o, info).is_some_and(|v| targets.contains(&v)))
        })
    });
    let chosen = referenced
        .or_else(|| candidates.last().copied())
        .or_else(|| {
            runs.iter()
                .max_by_key(|(_, dirs)| dirs.len())
                .map(|(start, dirs)| (*start, dirs.as_slice()))
        });
    chosen
        .map(|(_, dirs)| dirs.iter().map(|d| d.to_vec()).collect())
        .unwrap_or_default()
}

/// The string ending in `suffix` that the loader uses: the one its code references when that can
/// be told (x86-64), else the first.
fn referenced_string(data: &[u8], info: &ElfInfo, suffix: &[u8]) -> Option<PathBuf> {
    let candidates: Vec<(usize, &[u8])> = strings_at(data)
        .filter(|(_, s)| {
            s.first() == Some(&b'/') && s.ends_with(suffix) && s.iter().all(u8::is_ascii_graphic)
        })
        .collect();
    let referenced = lea_targets(data, info).and_then(|targets| {
        candidates
            .iter()
            .find(|(at, _)| vaddr_of(*at, info).is_some_and(|v| targets.contains(&v)))
            .copied()
    });
    referenced
        .or_else(|| candidates.first().copied())
        .map(|(_, s)| PathBuf::from(OsStr::from_bytes(s)))
}

/// `DL_DST_LIB` is a standalone string that is a tail of the first system directory
/// (`lib/x86_64-linux-gnu` for Debian's `/lib/x86_64-linux-gnu/`, `lib` for nixpkgs,
/// `lib64` for Fedora). The longest tail present wins; `lib` when none is.
fn dst_lib(data: &[u8], first_dir: Option<&Vec<u8>>) -> Vec<u8> {
    let Some(dir) = first_dir else {
        return b"lib".to_vec();
    };
    let dir = dir.strip_suffix(b"/").unwrap_or(dir);
    let mut tails: Vec<&[u8]> = Vec::new();
    for (i, &b) in dir.iter().enumerate() {
        if b == b'/' {
            if let Some(tail) = dir.get(i + 1..).filter(|t| !t.is_empty()) {
                tails.push(tail);
            }
        }
    }
    for tail in tails {
        let mut needle = vec![0u8];
        needle.extend_from_slice(tail);
        needle.push(0);
        if memchr::memmem::find(data, &needle).is_some() {
            return tail.to_vec();
        }
    }
    b"lib".to_vec()
}

/// The `major.minor` of `... release version 2.36.` (glibc's `elf/version.c` banner).
fn glibc_banner_version(data: &[u8]) -> Option<(u32, u32)> {
    let key: &[u8] = b"release version ";
    let at = memchr::memmem::find(data, key)? + key.len();
    let rest = data.get(at..)?;
    let mut numbers = rest
        .split(|&b| b == b'.' || b == b' ' || b == b'-' || b == 0)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
        });
    Some((numbers.next()??, numbers.next()??))
}

/// The highest `GLIBC_2.x` version the file defines: a lower bound when there is no banner.
fn max_defined_glibc(info: &ElfInfo) -> Option<(u32, u32)> {
    info.version_defs
        .iter()
        .filter_map(|name| ldfix_elf::read::GlibcVersion::from_version_name(name))
        .filter_map(|v| Some((*v.0.first()?, v.0.get(1).copied().unwrap_or(0))))
        .max()
}

impl LoaderFacts {
    /// Reads the loader at `path` (as PT_INTERP names it) through `fs`, without running it.
    pub fn read(fs: &dyn Fs, path: &Path) -> Result<Self, LdsoError> {
        let data = fs.read(path).map_err(|source| LdsoError::Io {
            path: path.to_owned(),
            source,
        })?;
        let info = ldfix_elf::read::parse(&data).map_err(|source| LdsoError::Elf {
            path: path.to_owned(),
            source,
        })?;
        // memmem, not `windows().any()`: a loader is 200 KiB and this runs on `ldfix run`'s
        // start-up path, where a compare per byte offset cost milliseconds.
        let contains = |needle: &[u8]| memchr::memmem::find(&data, needle).is_some();
        let file_id = fs.file_id(path).ok();
        if contains(b"glibc-ld.so.cache") || contains(b"GLIBC_PRIVATE") {
            let dirs = system_dirs(&data, &info);
            let lib = dst_lib(&data, dirs.first());
            return Ok(Self {
                path: path.to_owned(),
                file: path.to_owned(),
                flavour: Flavour::Glibc,
                glibc_version: glibc_banner_version(&data).or_else(|| max_defined_glibc(&info)),
                system_dirs: dirs,
                cache_path: referenced_string(&data, &info, b"/ld.so.cache"),
                preload_path: referenced_string(&data, &info, b".so.preload"),
                lib,
                musl_path_file: None,
                soname: info.soname.clone(),
                class: info.class,
                machine: info.machine,
                file_id,
            });
        }
        // musl builds its path file name as "%.*s/etc/ld-musl-" LDSO_ARCH ".path".
        let arch = strings(&data).find_map(|s| {
            let at = s.windows(13).position(|w| w == b"/etc/ld-musl-")?;
            let rest = s.get(at + 13..)?;
            rest.strip_suffix(b".path").map(<[u8]>::to_vec)
        });
        let Some(arch) = arch else {
            return Err(LdsoError::UnknownLoader {
                path: path.to_owned(),
                why: "no glibc cache magic and no musl path file name",
            });
        };
        let path_file = musl_path_file(path, &arch);
        // load_library: an absent file means the built-in default; an unreadable one, no path.
        let sys_path = match fs.read(&path_file) {
            Ok(content) => content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                b"/lib:/usr/local/lib:/usr/lib".to_vec()
            }
            Err(_) => Vec::new(),
        };
        Ok(Self {
            path: path.to_owned(),
            file: path.to_owned(),
            flavour: Flavour::Musl,
            glibc_version: None,
            system_dirs: crate::dst::musl_search_list(&sys_path),
            cache_path: None,
            preload_path: None,
            lib: Vec::new(),
            musl_path_file: Some(path_file),
            soname: info.soname.clone(),
            class: info.class,
            machine: info.machine,
            file_id,
        })
    }
}

/// musl `load_library`: the prefix is the loader's path up to its second-to-last `/`, so
/// `/lib/ld-musl-x86_64.so.1` reads `/etc/ld-musl-x86_64.path` and a store musl reads its own
/// `<store path>/etc/ld-musl-x86_64.path`.
pub fn musl_path_file(loader: &Path, arch: &[u8]) -> PathBuf {
    let name = loader.as_os_str().as_bytes();
    let mut prefix: &[u8] = b"";
    if name.first() == Some(&b'/') {
        let slashes: Vec<usize> = name
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| i)
            .collect();
        let z = if slashes.len() >= 2 {
            slashes.get(slashes.len() - 2).copied().unwrap_or(0)
        } else {
            0
        };
        prefix = name.get(..z).unwrap_or_default();
    }
    let mut file = prefix.to_vec();
    file.extend_from_slice(b"/etc/ld-musl-");
    file.extend_from_slice(arch);
    file.extend_from_slice(b".path");
    PathBuf::from(OsStr::from_bytes(&file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn musl_prefix_rule() {
        assert_eq!(
            musl_path_file(Path::new("/lib/ld-musl-x86_64.so.1"), b"x86_64"),
            PathBuf::from("/etc/ld-musl-x86_64.path")
        );
        assert_eq!(
            musl_path_file(
                Path::new("/nix/store/abc-musl-1.2.5/lib/ld-musl-x86_64.so.1"),
                b"x86_64"
            ),
            PathBuf::from("/nix/store/abc-musl-1.2.5/etc/ld-musl-x86_64.path")
        );
    }

    #[test]
    fn string_heuristics() {
        let data = b"\0x\0/lib/x86_64-linux-gnu/\0/usr/lib/x86_64-linux-gnu/\0/lib/\0/usr/lib/\0/var/tmp\0lib/x86_64-linux-gnu\0/etc/ld.so.cache\0ld.so (Debian GLIBC 2.36-9) stable release version 2.36.\0";
        let first = b"/lib/x86_64-linux-gnu/".to_vec();
        assert_eq!(dst_lib(data, Some(&first)), b"lib/x86_64-linux-gnu");
        assert_eq!(glibc_banner_version(data), Some((2, 36)));
        let nix = b"\0/nix/store/h-glibc-2.40/lib/\0/nix/store/g-gcc-libgcc/lib/\0lib\0";
        let first = b"/nix/store/h-glibc-2.40/lib/".to_vec();
        assert_eq!(dst_lib(nix, Some(&first)), b"lib");
    }
}
