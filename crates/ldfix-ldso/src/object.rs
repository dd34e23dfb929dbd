//! The facts about one ELF object that the search needs, and the loader's header check.

use ldfix_elf::read::{Class, ElfInfo, Endian};

/// What the emulation needs to know about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// ELF class.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// e_machine.
    pub machine: u16,
    /// PT_INTERP.
    pub interpreter: Option<Vec<u8>>,
    /// Whether the file has PT_INTERP or a dynamic table.
    pub dynamic: bool,
    /// DT_NEEDED in order.
    pub needed: Vec<Vec<u8>>,
    /// DT_RPATH. glibc ignores it when DT_RUNPATH is present (`elf/get-dynamic-info.h`).
    pub rpath: Option<Vec<u8>>,
    /// DT_RUNPATH.
    pub runpath: Option<Vec<u8>>,
    /// DT_SONAME.
    pub soname: Option<Vec<u8>>,
    /// DT_FLAGS_1.
    pub flags_1: u64,
    /// Required versions per library (`.gnu.version_r`).
    pub version_needs: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// Defined versions (`.gnu.version_d`).
    pub version_defs: Vec<Vec<u8>>,
}

/// DF_1_NODEFLIB.
const DF_1_NODEFLIB: u64 = 0x800;

impl Object {
    /// The adapter from the read model.
    pub fn from_elf(info: &ElfInfo) -> Self {
        Self {
            class: info.class,
            endian: info.endian,
            machine: info.machine,
            interpreter: info.interpreter.clone(),
            dynamic: info.is_dynamic(),
            needed: info.needed.clone(),
            rpath: info.rpath.clone(),
            runpath: info.runpath.clone(),
            soname: info.soname.clone(),
            flags_1: info.flags_1,
            version_needs: info
                .version_needs
                .iter()
                .map(|n| (n.file.clone(), n.versions.clone()))
                .collect(),
            version_defs: info.version_defs.clone(),
        }
    }

    /// DF_1_NODEFLIB: no default directories (and no cache hits in them) for its dependencies.
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & DF_1_NODEFLIB != 0
    }

    /// The run path glibc uses: DT_RPATH only without DT_RUNPATH.
    pub fn glibc_rpath(&self) -> Option<&[u8]> {
        if self.runpath.is_some() {
            None
        } else {
            self.rpath.as_deref()
        }
    }
}

/// The result of the loader's check of a candidate file's ELF header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Usable.
    Ok,
    /// Of another class: skipped, the search goes on (glibc `open_verify`, "wrong ELF class").
    OtherClass,
    /// Of another machine: skipped, the search goes on.
    OtherMachine,
    /// Unusable in a way glibc treats as fatal for this library (not ELF, wrong byte order,
    /// wrong OS ABI, not ET_DYN/ET_EXEC, too short).
    Fatal(&'static str),
}

/// glibc `open_verify` (`elf/dl-load.c`) on the first bytes of a file, for a loader of `class`
/// and `machine`. Linux accepts OS ABI SYSV and GNU (`sysdeps/unix/sysv/linux/ldsodefs.h`).
pub fn verify_header(head: &[u8], class: Class, big_endian: bool, machine: u16) -> Verdict {
    let want_class = match class {
        Class::Elf32 => 1,
        Class::Elf64 => 2,
    };
    let ehdr_size = if want_class == 1 { 52 } else { 64 };
    if head.len() < ehdr_size {
        return Verdict::Fatal("file too short");
    }
    if head.get(..4) != Some(b"\x7fELF") {
        return Verdict::Fatal("invalid ELF header");
    }
    let byte = |i: usize| head.get(i).copied().unwrap_or(0);
    if byte(4) != want_class {
        return Verdict::OtherClass;
    }
    let want_data = if big_endian { 2 } else { 1 };
    if byte(5) != want_data {
        return Verdict::Fatal("ELF file data encoding does not match the loader's");
    }
    if byte(6) != 1 {
        return Verdict::Fatal("ELF file version ident does not match current one");
    }
    let os_abi = byte(7);
    if os_abi != 0 && os_abi != 3 {
        return Verdict::Fatal("ELF file OS ABI invalid");
    }
    let half = |i: usize| {
        let (a, b) = (byte(i), byte(i + 1));
        if big_endian {
            u16::from_be_bytes([a, b])
        } else {
            u16::from_le_bytes([a, b])
        }
    };
    if half(18) != machine {
        return Verdict::OtherMachine;
    }
    let e_type = half(16);
    if e_type != 2 && e_type != 3 {
        return Verdict::Fatal("only ET_DYN and ET_EXEC can be loaded");
    }
    Verdict::Ok
}
