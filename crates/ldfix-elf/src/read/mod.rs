//! The read model: what the kernel and the dynamic loader see in an ELF file.
//!
//! [`parse`] reads everything through the program headers (PT_INTERP, PT_DYNAMIC, PT_NOTE, with
//! dynamic-table addresses translated through PT_LOAD), exactly as the kernel and `ld.so` do, so
//! files without section headers read the same as files with them. Section headers are used only
//! to find where the referenced bytes end (trailing data) and for notes outside any PT_NOTE.

mod error;
mod facts;
mod notes;
mod parse;
mod source;

use std::path::Path;

pub use error::ReadError;
pub use facts::{
    classify_interpreter, dt_flags_1_names, dt_flags_names, host_can_run, host_machine,
    is_glibc_family, machine_name, os_abi_name, parse_shebang, InterpreterKind, Shebang,
};
pub use parse::parse;
pub use source::{read_candidate, Contents, FileBytes, HEAD_LEN};

/// ELF class: the width of addresses and offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// Byte order of every multi-byte field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endian {
    /// ELFDATA2LSB.
    Little,
    /// ELFDATA2MSB.
    Big,
}

/// What kind of file this is, as far as starting it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// ET_EXEC with a dynamic section or an interpreter.
    Executable,
    /// ET_DYN executable: has PT_INTERP (and usually DF_1_PIE).
    Pie,
    /// ET_DYN without an interpreter and without DF_1_PIE, or with a SONAME.
    SharedLibrary,
    /// ET_EXEC without PT_INTERP and without PT_DYNAMIC.
    StaticExecutable,
    /// ET_DYN with DF_1_PIE but no PT_INTERP: relocates itself (`gcc -static-pie`).
    StaticPie,
    /// ET_REL (`.o`).
    Relocatable,
    /// ET_CORE.
    Core,
    /// Any other e_type.
    Other,
}

impl FileKind {
    /// A short stable name, used in `--json` and in the human output.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Executable => "executable",
            FileKind::Pie => "pie-executable",
            FileKind::SharedLibrary => "shared-library",
            FileKind::StaticExecutable => "static-executable",
            FileKind::StaticPie => "static-pie-executable",
            FileKind::Relocatable => "relocatable",
            FileKind::Core => "core",
            FileKind::Other => "other",
        }
    }
}

/// Which C library the file was built against, judged from its interpreter, NEEDED and SONAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LibcFlavour {
    /// GNU libc (`ld-linux*.so.*`, `libc.so.6`).
    Glibc,
    /// musl (`ld-musl-*.so.1`, `libc.so`, `libc.musl-*.so.1`).
    Musl,
    /// Android's bionic (`/system/bin/linker*`).
    Bionic,
    /// No C library is loaded dynamically (static, or no libc dependency).
    None,
    /// Dynamically linked, but against nothing recognisable.
    Unknown,
}

impl LibcFlavour {
    /// A short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            LibcFlavour::Glibc => "glibc",
            LibcFlavour::Musl => "musl",
            LibcFlavour::Bionic => "bionic",
            LibcFlavour::None => "none",
            LibcFlavour::Unknown => "unknown",
        }
    }
}

/// The versions required from one library (`.gnu.version_r`, DT_VERNEED).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionNeed {
    /// The library's name as in DT_NEEDED, e.g. `libc.so.6`.
    pub file: Vec<u8>,
    /// Version names, e.g. `GLIBC_2.34`, in file order.
    pub versions: Vec<Vec<u8>>,
}

/// A numeric GLIBC symbol version such as 2.34, compared numerically (2.9 < 2.17).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion(pub Vec<u32>);

impl GlibcVersion {
    /// Parses the name of a version node: `GLIBC_2.34` gives 2.34; `GLIBC_PRIVATE` gives `None`.
    pub fn from_version_name(name: &[u8]) -> Option<Self> {
        let rest = name.strip_prefix(b"GLIBC_")?;
        let mut parts = Vec::new();
        for part in rest.split(|&b| b == b'.') {
            if part.is_empty() || part.len() > 9 || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let mut value = 0u32;
            for digit in part {
                value = value * 10 + u32::from(digit - b'0');
            }
            parts.push(value);
        }
        Some(GlibcVersion(parts))
    }
}

impl std::fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, part) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{part}")?;
        }
        Ok(())
    }
}

/// One entry of a `.note.dlopen` note (the systemd/FDO "ELF dlopen metadata" format): libraries the
/// program may load with `dlopen`, which therefore never appear in DT_NEEDED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlopenEntry {
    /// `feature`: what the libraries provide.
    pub feature: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `priority`: required, recommended or suggested.
    pub priority: Option<String>,
    /// `soname`: alternatives, any one of which satisfies the feature.
    pub sonames: Vec<Vec<u8>>,
}

/// One program header, widened to 64 bits: what the reader reports and what the editor edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// p_type (PT_*).
    pub p_type: u32,
    /// p_flags (PF_R/PF_W/PF_X).
    pub flags: u32,
    /// p_offset.
    pub offset: u64,
    /// p_vaddr.
    pub vaddr: u64,
    /// p_paddr (kept as it is by the editor; loaders ignore it).
    pub paddr: u64,
    /// p_filesz.
    pub filesz: u64,
    /// p_memsz.
    pub memsz: u64,
    /// p_align.
    pub align: u64,
}

impl Segment {
    /// Reads one program header of either class and byte order.
    pub(crate) fn from_header<Elf: object::read::elf::FileHeader>(
        ph: &Elf::ProgramHeader,
        endian: Elf::Endian,
    ) -> Self {
        use object::read::elf::ProgramHeader as _;
        Self {
            p_type: ph.p_type(endian).0,
            flags: ph.p_flags(endian).0,
            offset: ph.p_offset(endian).into(),
            vaddr: ph.p_vaddr(endian).into(),
            paddr: ph.p_paddr(endian).into(),
            filesz: ph.p_filesz(endian).into(),
            memsz: ph.p_memsz(endian).into(),
            align: ph.p_align(endian).into(),
        }
    }

    /// First file offset after the segment's file image.
    pub fn file_end(&self) -> u64 {
        self.offset.saturating_add(self.filesz)
    }

    /// First address after the segment in memory.
    pub fn mem_end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// One dynamic-table entry, widened to 64 bits (32-bit tags are sign-extended, as object does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynEntry {
    /// d_tag (DT_*).
    pub tag: i64,
    /// d_val / d_ptr.
    pub val: u64,
}

/// Everything ldfix needs to know about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// ELFCLASS32 or ELFCLASS64.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// e_machine (compare with `object::elf::EM_*.0`).
    pub machine: u16,
    /// EI_OSABI.
    pub os_abi: u8,
    /// EI_ABIVERSION.
    pub abi_version: u8,
    /// e_type (ET_*).
    pub e_type: u16,
    /// e_flags (the ARM float ABI, MIPS ABI and so on live here).
    pub e_flags: u32,
    /// e_entry.
    pub entry: u64,
    /// What kind of file, derived from e_type, PT_INTERP, PT_DYNAMIC and DF_1_PIE.
    pub kind: FileKind,
    /// PT_INTERP contents without the trailing NUL.
    pub interpreter: Option<Vec<u8>>,
    /// DT_NEEDED, in order.
    pub needed: Vec<Vec<u8>>,
    /// DT_RPATH (the last one, as glibc's `get-dynamic-info.h` keeps the last of each tag).
    pub rpath: Option<Vec<u8>>,
    /// DT_RUNPATH.
    pub runpath: Option<Vec<u8>>,
    /// DT_SONAME.
    pub soname: Option<Vec<u8>>,
    /// DT_FLAGS (DF_ORIGIN, DF_BIND_NOW, ...), 0 when absent.
    pub flags: u64,
    /// DT_FLAGS_1 (DF_1_NODEFLIB = 0x800, DF_1_PIE, ...), 0 when absent.
    pub flags_1: u64,
    /// Required symbol versions from DT_VERNEED, grouped by library.
    pub version_needs: Vec<VersionNeed>,
    /// Defined version names from DT_VERDEF, the base (the file's own name) first.
    pub version_defs: Vec<Vec<u8>>,
    /// The highest `GLIBC_x.y` version required from any library.
    pub max_glibc: Option<GlibcVersion>,
    /// The C library it was built against.
    pub libc: LibcFlavour,
    /// NT_GNU_BUILD_ID descriptor bytes.
    pub build_id: Option<Vec<u8>>,
    /// `.note.dlopen` entries.
    pub dlopen: Vec<DlopenEntry>,
    /// Program headers.
    pub segments: Vec<Segment>,
    /// The dynamic table up to and including DT_NULL (empty without PT_DYNAMIC).
    pub dynamic: Vec<DynEntry>,
    /// File offset of the dynamic table (PT_DYNAMIC p_offset).
    pub dynamic_offset: Option<u64>,
    /// Whether the file has a section header table (e_shoff and e_shnum non-zero).
    pub has_section_headers: bool,
    /// Length of the data parsed.
    pub file_size: u64,
    /// One past the last byte any header references (ELF header, program and section header
    /// tables, segments' file contents, non-NOBITS sections).
    pub referenced_end: u64,
    /// Bytes after `referenced_end`: the payload of PyInstaller, bun, deno, self-extractors.
    pub trailing_bytes: u64,
    /// Problems that did not stop the reading (a broken note, a dangling version chain).
    pub warnings: Vec<String>,
}

impl ElfInfo {
    /// Whether DF_1_NODEFLIB is set: the loader skips the default directories for this object's
    /// dependencies (glibc `elf/dl-load.c`, `_dl_map_object`).
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & object::elf::DF_1_NODEFLIB.0 != 0
    }

    /// Whether the file is dynamically linked (has PT_INTERP or a dynamic table).
    pub fn is_dynamic(&self) -> bool {
        self.interpreter.is_some() || !self.dynamic.is_empty()
    }

    /// A readable name for the machine, class and byte order, e.g. `x86_64`, `ppc64le`, `mipsel`.
    pub fn machine_name(&self) -> String {
        machine_name(self.machine, self.class, self.endian)
    }
}

/// Reads and parses a file; errors name the file. A non-ELF file costs one 4 KiB read, a large
/// ELF file is mapped (see [`read_candidate`]).
pub fn parse_file(path: &Path) -> Result<ElfInfo, ReadError> {
    let contents = read_candidate(path).map_err(|error| ReadError::Io {
        path: path.to_owned(),
        error,
    })?;
    parse(&contents.bytes).map_err(|error| error.in_file(path))
}
