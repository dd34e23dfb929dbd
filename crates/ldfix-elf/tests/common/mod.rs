//! Shared helpers for the read-model tests: building real programs with gcc, locating the
//! Debian corpus, running readelf. A missing tool fails the test with the command that installs it.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses a different subset"
)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The cross-architecture library directories from Debian's `libc6-<arch>-cross` packages:
/// (package, directory).
pub const CROSS: [(&str, &str); 9] = [
    ("libc6-i386-cross", "/usr/i686-linux-gnu"),
    ("libc6-arm64-cross", "/usr/aarch64-linux-gnu"),
    ("libc6-armhf-cross", "/usr/arm-linux-gnueabihf"),
    ("libc6-riscv64-cross", "/usr/riscv64-linux-gnu"),
    ("libc6-ppc64el-cross", "/usr/powerpc64le-linux-gnu"),
    ("libc6-ppc64-cross", "/usr/powerpc64-linux-gnu"),
    ("libc6-s390x-cross", "/usr/s390x-linux-gnu"),
    ("libc6-mips-cross", "/usr/mips-linux-gnu"),
    ("libc6-mipsel-cross", "/usr/mipsel-linux-gnu"),
];

/// Debian's own directories of programs and libraries.
pub const NATIVE: [&str; 6] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/libexec",
    "/usr/lib/gcc",
    "/usr/lib/python3",
];

/// Panics with the install command when a tool is missing.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; run `scripts/install-deps` (or `apt-get install -y {package}`)"
    );
}

/// Panics with the install command when a cross package is missing.
pub fn require_cross() {
    for (package, dir) in CROSS {
        assert!(
            Path::new(dir).join("lib").is_dir(),
            "{dir} is missing; run `scripts/install-deps` (or `apt-get install -y {package}`)"
        );
    }
}

/// Every regular file under `dir` (symlinks not followed) that starts with the ELF magic.
pub fn elf_files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            elf_files_under(&path, out);
        } else if kind.is_file() && has_elf_magic(&path) {
            out.push(path);
        }
    }
}

fn has_elf_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// Extension modules of real manylinux and musllinux wheels (see `tests/data/wheels/README.md`).
pub fn wheels_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wheels")
}

/// The real-file corpus: Debian's binaries and libraries, the cross libraries and wheels' `.so`s.
pub fn debian_corpus() -> Vec<PathBuf> {
    require_cross();
    let mut files = Vec::new();
    elf_files_under(&wheels_dir(), &mut files);
    for dir in NATIVE {
        elf_files_under(Path::new(dir), &mut files);
    }
    for (_, dir) in CROSS {
        elf_files_under(Path::new(dir), &mut files);
    }
    files
}

/// Runs a command, panicking with its output when it fails.
pub fn run(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A C program compiled with gcc into `dir/name` with extra flags.
pub fn gcc(dir: &Path, name: &str, source: &str, flags: &[&OsStr]) -> PathBuf {
    require_tool("gcc", "gcc");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    run(Command::new("gcc")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .args(flags)
        .current_dir(dir));
    out
}

/// A copy of an ELF file without section headers: e_shoff, e_shnum and e_shstrndx zeroed, as
/// sstrip-like tools leave it. The loader never reads section headers, so it still runs.
pub fn without_section_headers(src: &Path, dst: &Path) {
    let mut data = std::fs::read(src).unwrap();
    let is64 = data[4] == 2;
    let (shoff, shnum, shstrndx, width) = if is64 {
        (0x28, 0x3c, 0x3e, 8)
    } else {
        (0x20, 0x30, 0x32, 4)
    };
    data[shoff..shoff + width].fill(0);
    data[shnum..shnum + 2].fill(0);
    data[shstrndx..shstrndx + 2].fill(0);
    std::fs::write(dst, &data).unwrap();
    let mut perms = std::fs::metadata(src).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(dst, perms).unwrap();
}
