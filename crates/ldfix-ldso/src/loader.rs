//! Facts about a dynamic loader, read from its binary without running it.
//!
//! The search rules depend on the loader that will actually run the program, not on the host:
//! Debian's glibc has `/etc/ld.so.cache` and the multiarch directories compiled in and expands
//! `$LIB` to `lib/x86_64-linux-gnu`; nixpkgs' glibc searches its own `lib/` and its libgcc's, and
//! keeps its cache under its own prefix; musl reads `<prefix>/etc/ld-musl-$ARCH.path`. All of it
//! is in the loader's read-only data, so it is read from there: running a loader that belongs to
//! an inspected tree would be running untrusted code, as `ldd` does.

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

/// `SYSTEM_DIRS` is a run of consecutive NUL-terminated absolute directories, each ending in `/`
/// (glibc `elf/gen-trusted-dirs.awk`). The longest such run is taken.
fn system_dirs(data: &[u8]) -> Vec<Vec<u8>> {
    let mut best: Vec<&[u8]> = Vec::new();
    let mut run: Vec<&[u8]> = Vec::new();
    for s in data.split(|&b| b == 0) {
        if is_dir_string(s) {
            run.push(s);
        } else {
            if run.len() > best.len() {
                best = std::mem::take(&mut run);
            }
            run.clear();
        }
    }
    if run.len() > best.len() {
        best = run;
    }
    best.into_iter().map(<[u8]>::to_vec).collect()
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
            let dirs = system_dirs(&data);
            let find = |suffix: &[u8]| {
                strings(&data)
                    .find(|s| {
                        s.first() == Some(&b'/')
                            && s.ends_with(suffix)
                            && s.iter().all(u8::is_ascii_graphic)
                    })
                    .map(|s| PathBuf::from(OsStr::from_bytes(s)))
            };
            let lib = dst_lib(&data, dirs.first());
            return Ok(Self {
                path: path.to_owned(),
                file: path.to_owned(),
                flavour: Flavour::Glibc,
                glibc_version: glibc_banner_version(&data).or_else(|| max_defined_glibc(&info)),
                system_dirs: dirs,
                cache_path: find(b"/ld.so.cache"),
                preload_path: find(b".so.preload"),
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
        let dirs = system_dirs(data);
        assert_eq!(dirs.len(), 4);
        assert_eq!(dst_lib(data, dirs.first()), b"lib/x86_64-linux-gnu");
        assert_eq!(glibc_banner_version(data), Some((2, 36)));
        let nix = b"\0/nix/store/h-glibc-2.40/lib/\0/nix/store/g-gcc-libgcc/lib/\0lib\0";
        let dirs = system_dirs(nix);
        assert_eq!(dirs.len(), 2);
        assert_eq!(dst_lib(nix, dirs.first()), b"lib");
    }
}
