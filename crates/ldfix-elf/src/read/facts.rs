//! Facts derived from the raw fields: names of machines, the C library flavour, what sits at an
//! interpreter path, and `#!` lines.

use object::elf;

use super::{Class, Endian, LibcFlavour};

/// A readable name for a machine as Debian and Nix spell it, e.g. `x86_64`, `ppc64le`, `mipsel`.
pub fn machine_name(machine: u16, class: Class, endian: Endian) -> String {
    let big = endian == Endian::Big;
    let wide = class == Class::Elf64;
    let name = match elf::Machine(machine) {
        elf::EM_X86_64 if wide => "x86_64",
        elf::EM_X86_64 => "x32",
        elf::EM_386 => "i386",
        elf::EM_AARCH64 if big => "aarch64_be",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_ARM if big => "armeb",
        elf::EM_ARM => "arm",
        elf::EM_RISCV if wide => "riscv64",
        elf::EM_RISCV => "riscv32",
        elf::EM_PPC64 if big => "ppc64",
        elf::EM_PPC64 => "ppc64le",
        elf::EM_PPC if big => "ppc",
        elf::EM_PPC => "ppcle",
        elf::EM_S390 if wide => "s390x",
        elf::EM_S390 => "s390",
        elf::EM_MIPS if wide && big => "mips64",
        elf::EM_MIPS if wide => "mips64el",
        elf::EM_MIPS if big => "mips",
        elf::EM_MIPS => "mipsel",
        elf::EM_LOONGARCH if wide => "loongarch64",
        elf::EM_LOONGARCH => "loongarch32",
        elf::EM_SPARCV9 => "sparc64",
        elf::EM_SPARC => "sparc",
        elf::EM_ALPHA => "alpha",
        elf::EM_IA_64 => "ia64",
        elf::EM_PARISC => "hppa",
        elf::EM_68K => "m68k",
        elf::EM_SH => "sh",
        _ => return format!("machine {machine}"),
    };
    name.to_owned()
}

/// The (machine, class, byte order) this program was built for: the host it runs on.
pub fn host_machine() -> (u16, Class, Endian) {
    let class = if cfg!(target_pointer_width = "64") {
        Class::Elf64
    } else {
        Class::Elf32
    };
    let endian = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };
    let machine = if cfg!(target_arch = "x86_64") {
        elf::EM_X86_64
    } else if cfg!(target_arch = "x86") {
        elf::EM_386
    } else if cfg!(target_arch = "aarch64") {
        elf::EM_AARCH64
    } else if cfg!(target_arch = "arm") {
        elf::EM_ARM
    } else if cfg!(any(target_arch = "riscv64", target_arch = "riscv32")) {
        elf::EM_RISCV
    } else if cfg!(target_arch = "powerpc64") {
        elf::EM_PPC64
    } else if cfg!(target_arch = "powerpc") {
        elf::EM_PPC
    } else if cfg!(target_arch = "s390x") {
        elf::EM_S390
    } else if cfg!(any(target_arch = "mips", target_arch = "mips64")) {
        elf::EM_MIPS
    } else if cfg!(target_arch = "loongarch64") {
        elf::EM_LOONGARCH
    } else {
        elf::EM_NONE
    };
    (machine.0, class, endian)
}

/// SONAMEs that belong to glibc itself: the loaders, libc and the libraries built with it. Mixing
/// two glibcs in one process crashes, so these only ever come from the glibc of the program's
/// own loader (auditwheel's policy lists and glibc's `shlib-versions`; see
/// `shared/research/autopatchelf-nixindex-auditwheel.md` §6).
pub fn is_glibc_family(soname: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"libc.so.6",
        b"libm.so.6",
        b"libmvec.so.1",
        b"libpthread.so.0",
        b"libdl.so.2",
        b"librt.so.1",
        b"libutil.so.1",
        b"libresolv.so.2",
        b"libnsl.so.1",
        b"libanl.so.1",
        b"libBrokenLocale.so.1",
        b"libthread_db.so.1",
        b"libc_malloc_debug.so.0",
        b"libmemusage.so",
        b"libpcprofile.so",
        b"libSegFault.so",
    ];
    NAMES.contains(&soname)
        || (soname.starts_with(b"libnss_") && soname.ends_with(b".so.2"))
        || soname.starts_with(b"ld-linux")
        || soname.starts_with(b"ld64.so.")
        || soname == b"ld.so.1"
}

/// The C library a file uses, from its interpreter, then its NEEDED entries, then its SONAME
/// (for the C libraries and loaders themselves).
pub(crate) fn libc_flavour(
    interpreter: Option<&[u8]>,
    needed: &[Vec<u8>],
    soname: Option<&[u8]>,
) -> LibcFlavour {
    let base =
        |path: &[u8]| -> Vec<u8> { path.rsplit(|&b| b == b'/').next().unwrap_or(path).to_vec() };
    let judge = |name: &[u8]| -> Option<LibcFlavour> {
        if name.starts_with(b"ld-musl-") || name.starts_with(b"libc.musl-") || name == b"libc.so" {
            Some(LibcFlavour::Musl)
        } else if name.starts_with(b"ld-linux")
            || name == b"libc.so.6"
            || name.starts_with(b"ld64.so.")
            || name == b"ld.so.1"
            || name.starts_with(b"ld-linux-")
        {
            Some(LibcFlavour::Glibc)
        } else if name.starts_with(b"linker") || name == b"libc.so" {
            Some(LibcFlavour::Bionic)
        } else {
            None
        }
    };
    if let Some(interp) = interpreter {
        if interp.starts_with(b"/system/bin/linker") {
            return LibcFlavour::Bionic;
        }
        if let Some(flavour) = judge(&base(interp)) {
            return flavour;
        }
    }
    for name in needed.iter().map(|n| base(n)).chain(soname.map(base)) {
        if let Some(flavour) = judge(&name) {
            return flavour;
        }
    }
    if interpreter.is_none() && needed.is_empty() {
        LibcFlavour::None
    } else {
        LibcFlavour::Unknown
    }
}

/// What a file at an interpreter path really is, judged by its content (names lie: on NixOS
/// `/lib64/ld-linux-x86-64.so.2` is stub-ld or nix-ld, never glibc's loader).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterpreterKind {
    /// NixOS's stub-ld (the default at the FHS loader paths since NixOS 24.05): prints "NixOS
    /// cannot run dynamically linked executables intended for generic linux environments out of
    /// the box" and exits 127.
    StubLd,
    /// nix-ld: forwards to the loader named by `NIX_LD` with `NIX_LD_LIBRARY_PATH`.
    NixLd,
    /// An ELF file that is neither: presumably a real dynamic loader.
    Loader,
    /// Not an ELF file at all.
    NotElf,
}

impl InterpreterKind {
    /// A short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            InterpreterKind::StubLd => "stub-ld",
            InterpreterKind::NixLd => "nix-ld",
            InterpreterKind::Loader => "loader",
            InterpreterKind::NotElf => "not-elf",
        }
    }
}

/// Classifies the contents of the file at an interpreter path.
///
/// Markers: stub-ld's message (nixpkgs `pkgs/by-name/st/stub-ld`) contains "cannot run
/// dynamically linked executables" in every version. nix-ld (the C 1.x and Rust 2.x lines) reads
/// `NIX_LD_LIBRARY_PATH` and has its default library directory `/run/current-system/sw/share/
/// nix-ld/lib` compiled in. glibc's and musl's loaders contain none of these strings.
pub fn classify_interpreter(data: &[u8]) -> InterpreterKind {
    if data.get(..4) != Some(&elf::ELFMAG[..]) {
        return InterpreterKind::NotElf;
    }
    let has = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
    if has(b"cannot run dynamically linked executables") {
        InterpreterKind::StubLd
    } else if has(b"NIX_LD_LIBRARY_PATH") && has(b"nix-ld") {
        InterpreterKind::NixLd
    } else {
        InterpreterKind::Loader
    }
}

/// A `#!` line as the kernel reads it (linux fs/binfmt_script.c): the interpreter path and at
/// most one argument (everything after the first blank, trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shebang {
    /// The interpreter path, e.g. `/usr/bin/env` or `/bin/bash`.
    pub interpreter: Vec<u8>,
    /// The optional single argument, e.g. `python3` after `/usr/bin/env`.
    pub argument: Option<Vec<u8>>,
}

/// Parses the `#!` line at the start of `data`, or `None` when there is none.
/// The kernel reads at most the first 256 bytes (BINPRM_BUF_SIZE); so do we.
pub fn parse_shebang(data: &[u8]) -> Option<Shebang> {
    let rest = data.strip_prefix(b"#!")?;
    let head = rest.get(..rest.len().min(254)).unwrap_or(rest);
    let line = match head.iter().position(|&b| b == b'\n') {
        Some(end) => head.get(..end).unwrap_or(head),
        None => head,
    };
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = trim(line, blank);
    let split = line.iter().position(blank).unwrap_or(line.len());
    let (interpreter, argument) = line.split_at(split);
    if interpreter.is_empty() {
        return None;
    }
    let argument = trim(argument, blank);
    Some(Shebang {
        interpreter: interpreter.to_vec(),
        argument: (!argument.is_empty()).then(|| argument.to_vec()),
    })
}

fn trim(bytes: &[u8], blank: impl Fn(&u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !blank(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Names of the DT_FLAGS bits set in `flags`, as readelf prints them (unknown bits as hex).
pub fn dt_flags_names(flags: u64) -> Vec<String> {
    const NAMES: [&str; 5] = ["ORIGIN", "SYMBOLIC", "TEXTREL", "BIND_NOW", "STATIC_TLS"];
    bit_names(flags, &NAMES)
}

/// Names of the DT_FLAGS_1 bits set in `flags_1`, as readelf prints them (unknown bits as hex).
pub fn dt_flags_1_names(flags_1: u64) -> Vec<String> {
    const NAMES: [&str; 28] = [
        "NOW",
        "GLOBAL",
        "GROUP",
        "NODELETE",
        "LOADFLTR",
        "INITFIRST",
        "NOOPEN",
        "ORIGIN",
        "DIRECT",
        "TRANS",
        "INTERPOSE",
        "NODEFLIB",
        "NODUMP",
        "CONFALT",
        "ENDFILTEE",
        "DISPRELDNE",
        "DISPRELPND",
        "NODIRECT",
        "IGNMULDEF",
        "NOKSYMS",
        "NOHDR",
        "EDITED",
        "NORELOC",
        "SYMINTPOSE",
        "GLOBAUDIT",
        "SINGLETON",
        "STUB",
        "PIE",
    ];
    bit_names(flags_1, &NAMES)
}

fn bit_names(value: u64, names: &[&str]) -> Vec<String> {
    (0..64)
        .filter(|bit| value & (1u64 << bit) != 0)
        .map(|bit| match names.get(bit) {
            Some(name) => (*name).to_owned(),
            None => format!("{:#x}", 1u64 << bit),
        })
        .collect()
}

/// A readable name for EI_OSABI.
pub fn os_abi_name(os_abi: u8) -> String {
    let name = match os_abi {
        0 => "SYSV",
        1 => "HP-UX",
        2 => "NetBSD",
        3 => "GNU/Linux",
        6 => "Solaris",
        7 => "AIX",
        8 => "IRIX",
        9 => "FreeBSD",
        12 => "OpenBSD",
        97 => "ARM",
        255 => "standalone",
        _ => return format!("OS ABI {os_abi}"),
    };
    name.to_owned()
}

/// Whether this host's kernel can execute a program for (machine, class, endian): its own
/// machine, or the 32-bit sibling it has compat support for (i386 on x86_64, arm on aarch64;
/// Linux `CONFIG_IA32_EMULATION` and `CONFIG_COMPAT`, on by default in Debian and NixOS).
pub fn host_can_run(machine: u16, class: Class, endian: Endian) -> bool {
    let (host, host_class, host_endian) = host_machine();
    if machine == host && class == host_class && endian == host_endian {
        return true;
    }
    let compat = (host == elf::EM_X86_64.0 && machine == elf::EM_386.0)
        || (host == elf::EM_AARCH64.0 && machine == elf::EM_ARM.0);
    compat && class == Class::Elf32 && endian == Endian::Little && host_class == Class::Elf64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::read::GlibcVersion;

    #[test]
    fn shebang_lines_as_the_kernel_splits_them() {
        let parse = |text: &[u8]| parse_shebang(text).map(|s| (s.interpreter, s.argument));
        assert_eq!(parse(b"#!/bin/sh\necho"), Some((b"/bin/sh".to_vec(), None)));
        assert_eq!(
            parse(b"#! /usr/bin/env  python3 -u \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
        );
        assert_eq!(parse(b"#!\n"), None);
        assert_eq!(parse(b"no"), None);
        assert_eq!(
            parse(b"#!/opt/\xff/bin/x"),
            Some((b"/opt/\xff/bin/x".to_vec(), None))
        );
    }

    #[test]
    fn glibc_versions_compare_numerically() {
        let v = |s: &[u8]| GlibcVersion::from_version_name(s).unwrap();
        assert!(v(b"GLIBC_2.9") < v(b"GLIBC_2.17"));
        assert!(v(b"GLIBC_2.3.4") > v(b"GLIBC_2.3"));
        assert_eq!(v(b"GLIBC_2.34").to_string(), "2.34");
        assert_eq!(GlibcVersion::from_version_name(b"GLIBC_PRIVATE"), None);
        assert_eq!(GlibcVersion::from_version_name(b"GLIBCXX_3.4.29"), None);
    }

    #[test]
    fn libc_flavour_from_interpreter_needed_and_soname() {
        let needed = |names: &[&[u8]]| names.iter().map(|n| n.to_vec()).collect::<Vec<_>>();
        let musl = libc_flavour(
            Some(b"/lib/ld-musl-x86_64.so.1"),
            &needed(&[b"libc.so"]),
            None,
        );
        assert_eq!(musl, LibcFlavour::Musl);
        let glibc = libc_flavour(Some(b"/lib64/ld-linux-x86-64.so.2"), &[], None);
        assert_eq!(glibc, LibcFlavour::Glibc);
        let ppc = libc_flavour(Some(b"/lib64/ld64.so.2"), &[], None);
        assert_eq!(ppc, LibcFlavour::Glibc);
        let wheel = libc_flavour(None, &needed(&[b"libc.musl-x86_64.so.1"]), None);
        assert_eq!(wheel, LibcFlavour::Musl);
        let android = libc_flavour(Some(b"/system/bin/linker64"), &[], None);
        assert_eq!(android, LibcFlavour::Bionic);
        assert_eq!(libc_flavour(None, &[], None), LibcFlavour::None);
        assert_eq!(
            libc_flavour(None, &needed(&[b"libfoo.so"]), None),
            LibcFlavour::Unknown
        );
        let loader = libc_flavour(None, &[], Some(b"ld-linux-x86-64.so.2"));
        assert_eq!(loader, LibcFlavour::Glibc);
    }

    /// Debian's own loader and libc are loaders, not stub-ld or nix-ld; text is not ELF.
    #[test]
    fn real_loaders_are_not_mistaken_for_stubs() {
        for path in [
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libc.so.6",
        ] {
            let data = std::fs::read(path).unwrap();
            assert_eq!(
                classify_interpreter(&data),
                InterpreterKind::Loader,
                "{path}"
            );
        }
        assert_eq!(
            classify_interpreter(b"#!/bin/sh\n"),
            InterpreterKind::NotElf
        );
    }

    #[test]
    fn flag_names_match_readelf() {
        assert_eq!(dt_flags_names(0x8), ["BIND_NOW"]);
        assert_eq!(dt_flags_1_names(0x0800_0801), ["NOW", "NODEFLIB", "PIE"]);
        assert_eq!(dt_flags_1_names(1 << 40), ["0x10000000000"]);
    }

    #[test]
    fn host_runs_its_own_machine() {
        let (machine, class, endian) = host_machine();
        assert!(host_can_run(machine, class, endian));
        assert!(
            !host_can_run(elf::EM_S390.0, Class::Elf64, Endian::Big) || machine == elf::EM_S390.0
        );
    }
}
