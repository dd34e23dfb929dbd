//! The editor's exact layout model: where every structure the editor touches lives in the file.
//!
//! Unlike the read model, which answers "what does the loader see", this one answers "which bytes
//! hold it and how much room is there": program and section headers, the dynamic table with its
//! capacity, `.dynstr`, `.gnu.version_r`, notes. Parsing goes through `object`'s low-level,
//! width- and endian-generic reader; writing goes through `object::elf`'s Pod structs.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, SectionHeader};
use object::{Endianness, ReadRef, U16, U32, U64};

use super::error::EditError;

pub(crate) use crate::read::Segment;

/// Section header, widened to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shdr {
    pub(crate) name: u32,
    pub(crate) sh_type: u32,
    pub(crate) flags: u64,
    pub(crate) addr: u64,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) link: u32,
    pub(crate) info: u32,
    pub(crate) addralign: u64,
    pub(crate) entsize: u64,
}

impl Shdr {
    /// Bytes the section occupies in the file (NOBITS occupy none).
    pub(crate) fn file_size(&self) -> u64 {
        if self.sh_type == elf::SHT_NOBITS.0 {
            0
        } else {
            self.size
        }
    }
}

/// Width and byte order, with the encoders for every record the editor writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Codec {
    pub(crate) is64: bool,
    pub(crate) endian: Endianness,
}

impl Codec {
    pub(crate) fn phentsize(self) -> u64 {
        if self.is64 {
            56
        } else {
            32
        }
    }
    pub(crate) fn shentsize(self) -> u64 {
        if self.is64 {
            64
        } else {
            40
        }
    }
    pub(crate) fn dynsize(self) -> u64 {
        if self.is64 {
            16
        } else {
            8
        }
    }
    pub(crate) fn word(self) -> u64 {
        if self.is64 {
            8
        } else {
            4
        }
    }

    pub(crate) fn phdr(self, p: &Segment) -> Result<Vec<u8>, EditError> {
        let e = self.endian;
        Ok(if self.is64 {
            object::bytes_of(&elf::ProgramHeader64::<Endianness> {
                p_type: U32::new(e, elf::ProgramType(p.p_type)),
                p_flags: U32::new(e, elf::ProgramFlags(p.flags)),
                p_offset: U64::new(e, p.offset),
                p_vaddr: U64::new(e, p.vaddr),
                p_paddr: U64::new(e, p.paddr),
                p_filesz: U64::new(e, p.filesz),
                p_memsz: U64::new(e, p.memsz),
                p_align: U64::new(e, p.align),
            })
            .to_vec()
        } else {
            object::bytes_of(&elf::ProgramHeader32::<Endianness> {
                p_type: U32::new(e, elf::ProgramType(p.p_type)),
                p_offset: U32::new(e, narrow(p.offset, "program header p_offset")?),
                p_vaddr: U32::new(e, narrow(p.vaddr, "program header p_vaddr")?),
                p_paddr: U32::new(e, narrow(p.paddr, "program header p_paddr")?),
                p_filesz: U32::new(e, narrow(p.filesz, "program header p_filesz")?),
                p_memsz: U32::new(e, narrow(p.memsz, "program header p_memsz")?),
                p_flags: U32::new(e, elf::ProgramFlags(p.flags)),
                p_align: U32::new(e, narrow(p.align, "program header p_align")?),
            })
            .to_vec()
        })
    }

    pub(crate) fn shdr(self, s: &Shdr) -> Result<Vec<u8>, EditError> {
        let e = self.endian;
        Ok(if self.is64 {
            object::bytes_of(&elf::SectionHeader64::<Endianness> {
                sh_name: U32::new(e, s.name),
                sh_type: U32::new(e, elf::SectionType(s.sh_type)),
                sh_flags: U64::new(e, elf::SectionFlags(s.flags)),
                sh_addr: U64::new(e, s.addr),
                sh_offset: U64::new(e, s.offset),
                sh_size: U64::new(e, s.size),
                sh_link: U32::new(e, s.link),
                sh_info: U32::new(e, s.info),
                sh_addralign: U64::new(e, s.addralign),
                sh_entsize: U64::new(e, s.entsize),
            })
            .to_vec()
        } else {
            object::bytes_of(&elf::SectionHeader32::<Endianness> {
                sh_name: U32::new(e, s.name),
                sh_type: U32::new(e, elf::SectionType(s.sh_type)),
                sh_flags: U32::new_u64(e, elf::SectionFlags(s.flags)).map_err(|_| {
                    EditError::unsupported("section header sh_flags", "value does not fit 32 bits")
                })?,
                sh_addr: U32::new(e, narrow(s.addr, "section header sh_addr")?),
                sh_offset: U32::new(e, narrow(s.offset, "section header sh_offset")?),
                sh_size: U32::new(e, narrow(s.size, "section header sh_size")?),
                sh_link: U32::new(e, s.link),
                sh_info: U32::new(e, s.info),
                sh_addralign: U32::new(e, narrow(s.addralign, "section header sh_addralign")?),
                sh_entsize: U32::new(e, narrow(s.entsize, "section header sh_entsize")?),
            })
            .to_vec()
        })
    }

    pub(crate) fn dyn_entry(self, tag: i64, val: u64) -> Result<Vec<u8>, EditError> {
        let e = self.endian;
        Ok(if self.is64 {
            object::bytes_of(&elf::Dyn64::<Endianness> {
                d_tag: object::I64::new(e, elf::DynamicTag(tag)),
                d_val: U64::new(e, val),
            })
            .to_vec()
        } else {
            // 32-bit tags are sign-extended on read; truncating restores the original bits.
            object::bytes_of(&elf::Dyn32::<Endianness> {
                d_tag: object::I32::new_i64_truncate(e, elf::DynamicTag(tag)),
                d_val: U32::new(e, narrow(val, "dynamic entry d_val")?),
            })
            .to_vec()
        })
    }

    pub(crate) fn u16_bytes(self, v: u16) -> [u8; 2] {
        let raw = U16::new(self.endian, v);
        let b = object::bytes_of(&raw);
        [b[0], b[1]]
    }

    pub(crate) fn u32_bytes(self, v: u32) -> [u8; 4] {
        let raw = U32::new(self.endian, v);
        let b = object::bytes_of(&raw);
        [b[0], b[1], b[2], b[3]]
    }

    pub(crate) fn read_u16(
        self,
        data: &[u8],
        at: u64,
        what: &'static str,
    ) -> Result<u16, EditError> {
        let raw = data
            .read_at::<U16<Endianness>>(at)
            .map_err(|()| EditError::truncated(what, at, 2, data))?;
        Ok(raw.get(self.endian))
    }

    pub(crate) fn read_u32(
        self,
        data: &[u8],
        at: u64,
        what: &'static str,
    ) -> Result<u32, EditError> {
        let raw = data
            .read_at::<U32<Endianness>>(at)
            .map_err(|()| EditError::truncated(what, at, 4, data))?;
        Ok(raw.get(self.endian))
    }
}

fn narrow(v: u64, what: &'static str) -> Result<u32, EditError> {
    u32::try_from(v).map_err(|_| EditError::Unsupported {
        what,
        problem: format!("value {v:#x} does not fit a 32-bit ELF field"),
    })
}

/// Offsets of the ELF header fields the editor rewrites (identical for both widths up to e_type).
pub(crate) struct HeaderFields {
    pub(crate) phoff_at: u64,
    pub(crate) phnum_at: u64,
}

/// Where the dynamic table is and how many entries fit there.
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    pub(crate) offset: u64,
    pub(crate) vaddr: u64,
    /// Entries that fit in PT_DYNAMIC (its p_filesz, or the `.dynamic` section if larger).
    pub(crate) capacity: u64,
    /// Entries before the first DT_NULL.
    pub(crate) entries: Vec<(i64, u64)>,
}

/// The editor's model of one file.
#[derive(Debug, Clone)]
pub(crate) struct Model<'d> {
    pub(crate) data: &'d [u8],
    pub(crate) codec: Codec,
    pub(crate) e_type: u16,
    pub(crate) machine: u16,
    pub(crate) phoff: u64,
    pub(crate) shoff: u64,
    pub(crate) shstrndx: u16,
    pub(crate) phdrs: Vec<Segment>,
    pub(crate) shdrs: Vec<Shdr>,
    pub(crate) dynamic: Option<DynamicTable>,
}

pub(crate) const DT_RELR: i64 = 36;

/// `.MIPS.abiflags` (binutils `include/elf/mips.h`; not in the `object` crate).
pub(crate) const SHT_MIPS_ABIFLAGS: u32 = 0x7000_002a;

/// Dynamic tags whose value is an address (d_ptr) — used to find what must not move and what
/// must be re-pointed.
pub(crate) fn is_pointer_tag(tag: i64) -> bool {
    const PTR_TAGS: [i64; 17] = [
        elf::DT_PLTGOT.0,
        elf::DT_HASH.0,
        elf::DT_STRTAB.0,
        elf::DT_SYMTAB.0,
        elf::DT_RELA.0,
        elf::DT_INIT.0,
        elf::DT_FINI.0,
        elf::DT_REL.0,
        elf::DT_JMPREL.0,
        elf::DT_INIT_ARRAY.0,
        elf::DT_FINI_ARRAY.0,
        elf::DT_PREINIT_ARRAY.0,
        elf::DT_GNU_HASH.0,
        elf::DT_VERSYM.0,
        elf::DT_VERDEF.0,
        elf::DT_VERNEED.0,
        elf::DT_SYMTAB_SHNDX.0,
    ];
    tag == DT_RELR || PTR_TAGS.contains(&tag)
}

impl<'d> Model<'d> {
    pub(crate) fn parse(data: &'d [u8]) -> Result<Self, EditError> {
        if data.get(..4) != Some(&elf::ELFMAG[..]) {
            return Err(EditError::malformed("ELF header", 0, "no \\x7fELF magic"));
        }
        let endian = match data.get(5).copied().map(elf::DataEncoding) {
            Some(elf::ELFDATA2LSB) => Endianness::Little,
            Some(elf::ELFDATA2MSB) => Endianness::Big,
            other => {
                return Err(EditError::malformed(
                    "ELF identification",
                    5,
                    format!("unknown data encoding {other:?}"),
                ))
            }
        };
        match data.get(4).copied().map(elf::FileClass) {
            Some(elf::ELFCLASS32) => {
                Self::parse_as::<FileHeader32<Endianness>>(data, endian, false)
            }
            Some(elf::ELFCLASS64) => Self::parse_as::<FileHeader64<Endianness>>(data, endian, true),
            other => Err(EditError::malformed(
                "ELF identification",
                4,
                format!("unknown class {other:?}"),
            )),
        }
    }

    fn parse_as<Elf: FileHeader<Endian = Endianness>>(
        data: &'d [u8],
        endian: Endianness,
        is64: bool,
    ) -> Result<Self, EditError> {
        let codec = Codec { is64, endian };
        let header = data.read_at::<Elf>(0).map_err(|()| {
            EditError::truncated("ELF header", 0, std::mem::size_of::<Elf>() as u64, data)
        })?;
        let phoff: u64 = header.e_phoff(endian).into();
        let phnum = u64::from(header.e_phnum(endian));
        let phentsize = u64::from(header.e_phentsize(endian));
        if phnum > 0 && phentsize != codec.phentsize() {
            return Err(EditError::malformed(
                "ELF header",
                if is64 { 54 } else { 42 },
                format!("e_phentsize is {phentsize}, expected {}", codec.phentsize()),
            ));
        }
        let raw_phdrs =
            read_table::<Elf::ProgramHeader>(data, "program header table", phoff, phnum)?;
        let phdrs: Vec<Segment> = raw_phdrs
            .iter()
            .map(|p| Segment::from_header::<Elf>(p, endian))
            .collect();

        let shoff: u64 = header.e_shoff(endian).into();
        let shnum = u64::from(header.e_shnum(endian));
        let mut shdrs = Vec::new();
        if shoff != 0 && shnum != 0 {
            let shentsize = u64::from(header.e_shentsize(endian));
            if shentsize != codec.shentsize() {
                return Err(EditError::malformed(
                    "ELF header",
                    if is64 { 58 } else { 46 },
                    format!("e_shentsize is {shentsize}, expected {}", codec.shentsize()),
                ));
            }
            let raw = read_table::<Elf::SectionHeader>(data, "section header table", shoff, shnum)?;
            shdrs = raw
                .iter()
                .map(|s| Shdr {
                    name: s.sh_name(endian),
                    sh_type: s.sh_type(endian).0,
                    flags: s.sh_flags(endian).0,
                    addr: s.sh_addr(endian).into(),
                    offset: s.sh_offset(endian).into(),
                    size: s.sh_size(endian).into(),
                    link: s.sh_link(endian),
                    info: s.sh_info(endian),
                    addralign: s.sh_addralign(endian).into(),
                    entsize: s.sh_entsize(endian).into(),
                })
                .collect();
        }

        let mut model = Model {
            data,
            codec,
            e_type: header.e_type(endian).0,
            machine: header.e_machine(endian).0,
            phoff,
            shoff: if shdrs.is_empty() { 0 } else { shoff },
            shstrndx: header.e_shstrndx(endian).0,
            phdrs,
            shdrs,
            dynamic: None,
        };

        if let Some(pd) = model
            .phdrs
            .iter()
            .find(|p| p.p_type == elf::PT_DYNAMIC.0)
            .copied()
        {
            let entsize = codec.dynsize();
            let mut capacity = pd.filesz / entsize;
            // The `.dynamic` section can be larger than PT_DYNAMIC's p_filesz only in odd files;
            // take the larger room only when both describe the same place, inside the file and
            // inside the LOAD that maps the table (the bytes must exist and be loaded).
            let room_end = model
                .loads()
                .find(|p| pd.offset >= p.offset && pd.offset < p.file_end())
                .map_or(0, |p| p.file_end().min(data.len() as u64));
            if let Some(sec) = model.shdrs.iter().find(|s| {
                s.sh_type == elf::SHT_DYNAMIC.0
                    && s.offset == pd.offset
                    && s.offset
                        .checked_add(s.size)
                        .is_some_and(|end| end <= room_end)
            }) {
                capacity = capacity.max(sec.size / entsize);
            }
            let raw =
                read_table::<Elf::Dyn>(data, "dynamic table", pd.offset, pd.filesz / entsize)?;
            let mut entries = Vec::new();
            for d in raw {
                let tag: i64 = d.d_tag(endian).0;
                if tag == elf::DT_NULL.0 {
                    break;
                }
                entries.push((tag, d.d_val(endian).into()));
            }
            model.dynamic = Some(DynamicTable {
                offset: pd.offset,
                vaddr: pd.vaddr,
                capacity,
                entries,
            });
        }
        Ok(model)
    }

    pub(crate) fn header_fields(&self) -> HeaderFields {
        if self.codec.is64 {
            HeaderFields {
                phoff_at: 32,
                phnum_at: 56,
            }
        } else {
            HeaderFields {
                phoff_at: 28,
                phnum_at: 44,
            }
        }
    }

    pub(crate) fn loads(&self) -> impl Iterator<Item = &Segment> {
        self.phdrs.iter().filter(|p| p.p_type == elf::PT_LOAD.0)
    }

    /// File offset of a virtual address, through the PT_LOAD that maps it from the file.
    pub(crate) fn vaddr_to_offset(&self, addr: u64) -> Option<u64> {
        self.loads()
            .find(|p| addr >= p.vaddr && addr - p.vaddr < p.filesz)
            .and_then(|p| (addr - p.vaddr).checked_add(p.offset))
    }

    pub(crate) fn dyn_value(&self, tag: i64) -> Option<u64> {
        self.dynamic
            .as_ref()?
            .entries
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| *v)
    }

    pub(crate) fn find_phdr(&self, p_type: u32) -> Option<&Segment> {
        self.phdrs.iter().find(|p| p.p_type == p_type)
    }

    /// One past the last byte any header references: the ELF header, both header tables, every
    /// segment's file bytes and every section's. What follows is trailing data (a payload).
    pub(crate) fn referenced_end(&self) -> u64 {
        let ehsize = if self.codec.is64 { 64 } else { 52 };
        let mut end: u64 = ehsize;
        end = end.max(self.phoff + self.phdrs.len() as u64 * self.codec.phentsize());
        for p in &self.phdrs {
            end = end.max(p.file_end());
        }
        if !self.shdrs.is_empty() {
            end = end.max(self.shoff + self.shdrs.len() as u64 * self.codec.shentsize());
        }
        for s in &self.shdrs {
            end = end.max(s.offset.saturating_add(s.file_size()));
        }
        end.min(self.data.len() as u64)
    }

    /// Whether the kernel loads this file as a program: it then derives AT_PHDR from the first
    /// LOAD and e_phoff (Linux before 5.18, `fs/binfmt_elf.c`), so the program header table must
    /// stay where it is.
    pub(crate) fn is_program(&self) -> bool {
        self.e_type == elf::ET_EXEC.0
            || self.find_phdr(elf::PT_INTERP.0).is_some()
            || self.dyn_value(elf::DT_FLAGS_1.0).unwrap_or(0) & elf::DF_1_PIE.0 != 0
    }

    /// Whether a dynamic tag's value is an address in this file: the generic ones, and on MIPS
    /// the processor-specific ones that hold addresses (binutils `include/elf/mips.h`), among
    /// them DT_MIPS_OPTIONS (`.MIPS.options`, which can move) and DT_MIPS_XHASH (a hash table).
    /// DT_MIPS_RLD_MAP_REL is not one: it is relative to its own entry (see `layout.rs`).
    pub(crate) fn is_address_tag(&self, tag: i64) -> bool {
        const MIPS_ADDRESS_TAGS: [i64; 16] = [
            0x7000_0008, // DT_MIPS_CONFLICT
            0x7000_0009, // DT_MIPS_LIBLIST
            0x7000_0016, // DT_MIPS_RLD_MAP
            0x7000_0017, // DT_MIPS_DELTA_CLASS
            0x7000_0019, // DT_MIPS_DELTA_INSTANCE
            0x7000_001b, // DT_MIPS_DELTA_RELOC
            0x7000_001d, // DT_MIPS_DELTA_SYM
            0x7000_0020, // DT_MIPS_DELTA_CLASSSYM
            0x7000_0023, // DT_MIPS_PIXIE_INIT
            0x7000_0029, // DT_MIPS_OPTIONS
            0x7000_002a, // DT_MIPS_INTERFACE
            0x7000_002d, // DT_MIPS_RLD_TEXT_RESOLVE_ADDR
            0x7000_0031, // DT_MIPS_AUX_DYNAMIC
            0x7000_0032, // DT_MIPS_PLTGOT
            0x7000_0034, // DT_MIPS_RWPLT
            0x7000_0036, // DT_MIPS_XHASH
        ];
        is_pointer_tag(tag) || (self.is_mips() && MIPS_ADDRESS_TAGS.contains(&tag))
    }

    pub(crate) fn is_mips(&self) -> bool {
        matches!(
            elf::Machine(self.machine),
            elf::EM_MIPS | elf::EM_MIPS_RS3_LE
        )
    }

    /// MIPS's information segments, which sit right after the program header table: their
    /// bytes are read through `p_offset` (glibc `sysdeps/mips/dl-machine-reject-phdr.h` reads
    /// PT_MIPS_ABIFLAGS from the file; Linux `arch/mips/kernel/elf.c` too) and nothing refers
    /// to their address, so they can move unchanged, like notes. The values are processor
    /// specific and mean something else on other machines.
    pub(crate) fn is_mips_info_segment(&self, p_type: u32) -> bool {
        self.is_mips()
            && [
                elf::PT_MIPS_REGINFO.0,
                elf::PT_MIPS_OPTIONS.0,
                elf::PT_MIPS_ABIFLAGS.0,
            ]
            .contains(&p_type)
    }

    /// The sections of [`Model::is_mips_info_segment`]: `.reginfo`, `.MIPS.options`,
    /// `.MIPS.abiflags`.
    pub(crate) fn is_mips_info_section(&self, sh_type: u32) -> bool {
        self.is_mips()
            && [
                elf::SHT_MIPS_REGINFO.0,
                elf::SHT_MIPS_OPTIONS.0,
                SHT_MIPS_ABIFLAGS,
            ]
            .contains(&sh_type)
    }

    /// The largest page size of the architecture: new LOADs are aligned to at least this, since
    /// the same file may run on a kernel with 64 KiB pages (patchelf `getPageSize`, issue #492).
    pub(crate) fn arch_page_size(&self) -> u64 {
        match elf::Machine(self.machine) {
            elf::EM_AARCH64
            | elf::EM_PPC
            | elf::EM_PPC64
            | elf::EM_MIPS
            | elf::EM_MIPS_RS3_LE
            | elf::EM_LOONGARCH
            | elf::EM_ALPHA
            | elf::EM_IA_64
            | elf::EM_TILEGX => 0x10000,
            elf::EM_SPARC | elf::EM_SPARCV9 | elf::EM_SPARC32PLUS => 0x2000,
            _ => 0x1000,
        }
    }
}

fn read_table<'d, T: object::Pod>(
    data: &'d [u8],
    what: &'static str,
    offset: u64,
    count: u64,
) -> Result<&'d [T], EditError> {
    let size = (std::mem::size_of::<T>() as u64).saturating_mul(count);
    let n = usize::try_from(count).map_err(|_| EditError::truncated(what, offset, size, data))?;
    data.read_slice_at::<T>(offset, n)
        .map_err(|()| EditError::truncated(what, offset, size, data))
}
