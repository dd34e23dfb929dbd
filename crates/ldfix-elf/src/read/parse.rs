//! The width- and endian-generic parser behind [`parse`].
//!
//! Every offset and count comes from the file, so every access is bounds-checked through
//! `ReadRef`, every loop is bounded by the data length, and nothing is allocated by a size taken
//! from the file before that many bytes are known to exist.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, SectionHeader};
use object::{Endianness, ReadRef};

use super::error::malformed;
use super::{
    facts, notes, Class, DynEntry, ElfInfo, Endian, FileKind, ReadError, Segment, VersionNeed,
};

/// Parses an ELF file held in memory. Works on 32- and 64-bit, little- and big-endian files of any
/// machine, with or without section headers.
pub fn parse(data: &[u8]) -> Result<ElfInfo, ReadError> {
    if data.get(..4) != Some(&elf::ELFMAG[..]) {
        return Err(ReadError::NotElf);
    }
    let ident = data.get(..16).ok_or(ReadError::Truncated {
        what: "ELF identification",
        offset: 0,
        size: 16,
        file_len: len64(data),
    })?;
    let endian = match ident.get(5).map(|&b| elf::DataEncoding(b)) {
        Some(elf::ELFDATA2LSB) => Endianness::Little,
        Some(elf::ELFDATA2MSB) => Endianness::Big,
        other => {
            return Err(malformed(
                "ELF identification",
                5,
                format!(
                    "unknown data encoding {:?} (expected 1 or 2)",
                    other.map(|e| e.0)
                ),
            ))
        }
    };
    match ident.get(4).map(|&b| elf::FileClass(b)) {
        Some(elf::ELFCLASS32) => parse_as::<FileHeader32<Endianness>>(data, endian),
        Some(elf::ELFCLASS64) => parse_as::<FileHeader64<Endianness>>(data, endian),
        other => Err(malformed(
            "ELF identification",
            4,
            format!("unknown class {:?} (expected 1 or 2)", other.map(|c| c.0)),
        )),
    }
}

fn len64(data: &[u8]) -> u64 {
    data.len() as u64
}

fn truncated(what: &'static str, offset: u64, size: u64, data: &[u8]) -> ReadError {
    ReadError::Truncated {
        what,
        offset,
        size,
        file_len: len64(data),
    }
}

/// Reads `count` records of `T` at `offset`, or says which structure does not fit.
fn read_table<'d, T: object::Pod>(
    data: &'d [u8],
    what: &'static str,
    offset: u64,
    count: u64,
) -> Result<&'d [T], ReadError> {
    let size = (std::mem::size_of::<T>() as u64).saturating_mul(count);
    let count = usize::try_from(count).map_err(|_| truncated(what, offset, size, data))?;
    data.read_slice_at::<T>(offset, count)
        .map_err(|()| truncated(what, offset, size, data))
}

/// The section headers, or an empty table when the file has none.
fn section_headers<'d, Elf: FileHeader<Endian = Endianness>>(
    header: &Elf,
    endian: Endianness,
    data: &'d [u8],
) -> Result<&'d [Elf::SectionHeader], ReadError> {
    let shoff: u64 = header.e_shoff(endian).into();
    if shoff == 0 {
        return Ok(&[]);
    }
    let entsize = std::mem::size_of::<Elf::SectionHeader>();
    if usize::from(header.e_shentsize(endian)) != entsize {
        return Err(malformed(
            "ELF header",
            0,
            format!(
                "e_shentsize is {}, expected {entsize} for this class",
                header.e_shentsize(endian)
            ),
        ));
    }
    let mut shnum = u64::from(header.e_shnum(endian));
    if shnum == 0 {
        // More than 0xff00 sections: the real count is in section 0's sh_size (gABI).
        let first = read_table::<Elf::SectionHeader>(data, "section header 0", shoff, 1)?;
        shnum = first.first().map_or(0, |s| s.sh_size(endian).into());
    }
    read_table(data, "section header table", shoff, shnum)
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    endian: Endianness,
) -> Result<ElfInfo, ReadError> {
    let header_size = std::mem::size_of::<Elf>() as u64;
    let header = data
        .read_at::<Elf>(0)
        .map_err(|()| truncated("ELF header", 0, header_size, data))?;
    let ident = header.e_ident();

    // Program headers. PN_XNUM means the real count is in section 0's sh_info (gABI).
    let phoff: u64 = header.e_phoff(endian).into();
    let mut phnum = u64::from(header.e_phnum(endian));
    if phnum == u64::from(elf::PN_XNUM) {
        let shoff: u64 = header.e_shoff(endian).into();
        if shoff != 0 {
            let first = read_table::<Elf::SectionHeader>(data, "section header 0", shoff, 1)?;
            phnum = first.first().map_or(0, |s| u64::from(s.sh_info(endian)));
        }
    }
    let phentsize = std::mem::size_of::<Elf::ProgramHeader>();
    if phnum > 0 && usize::from(header.e_phentsize(endian)) != phentsize {
        return Err(malformed(
            "ELF header",
            0,
            format!(
                "e_phentsize is {}, expected {phentsize} for this class",
                header.e_phentsize(endian)
            ),
        ));
    }
    let phdrs: &[Elf::ProgramHeader] = if phnum == 0 {
        &[]
    } else {
        read_table(data, "program header table", phoff, phnum)?
    };
    let segments: Vec<Segment> = phdrs
        .iter()
        .map(|ph| Segment::from_header::<Elf>(ph, endian))
        .collect();

    let mut warnings = Vec::new();

    // PT_INTERP: the kernel uses the first one (linux fs/binfmt_elf.c, load_elf_binary).
    let interpreter = match segments.iter().find(|s| s.p_type == elf::PT_INTERP.0) {
        Some(seg) => {
            let bytes = data
                .read_bytes_at(seg.offset, seg.filesz)
                .map_err(|()| truncated("PT_INTERP segment", seg.offset, seg.filesz, data))?;
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Some(bytes.get(..end).unwrap_or(bytes).to_vec())
        }
        None => None,
    };

    let loads: Vec<Segment> = segments
        .iter()
        .filter(|s| s.p_type == elf::PT_LOAD.0)
        .copied()
        .collect();
    let map = AddressMap {
        loads: &loads,
        data,
    };

    let mut dynamic = Vec::new();
    let mut dynamic_offset = None;
    if let Some(seg) = segments.iter().find(|s| s.p_type == elf::PT_DYNAMIC.0) {
        dynamic_offset = Some(seg.offset);
        let entsize = std::mem::size_of::<Elf::Dyn>() as u64;
        let count = seg.filesz / entsize;
        let table: &[Elf::Dyn] = read_table(data, "dynamic segment", seg.offset, count)?;
        for entry in table {
            let tag = entry.d_tag(endian).0;
            dynamic.push(DynEntry {
                tag,
                val: entry.val(endian),
            });
            if tag == elf::DT_NULL.0 {
                break;
            }
        }
    }
    let dyn_info = DynamicInfo::read(&dynamic, dynamic_offset.unwrap_or(0), &map, endian)?;

    let e_type = header.e_type(endian).0;
    let has_dynamic = dynamic_offset.is_some();
    let kind = file_kind(
        e_type,
        interpreter.is_some(),
        has_dynamic,
        dyn_info.flags_1,
        dyn_info.soname.is_some(),
    );

    // Section headers last: the loader never reads them, so damage there matters least.
    let sections = section_headers(header, endian, data)?;
    let notes = notes::read::<Elf>(&segments, sections, endian, data, &mut warnings);

    // Where the referenced bytes end. Anything after is trailing data (an appended payload).
    let mut referenced_end = header_size.max(u64::from(header.e_ehsize(endian)));
    referenced_end = referenced_end.max(phoff.saturating_add(phnum * phentsize as u64));
    if !sections.is_empty() {
        let shoff: u64 = header.e_shoff(endian).into();
        let table_size = std::mem::size_of_val(sections) as u64;
        referenced_end = referenced_end.max(shoff.saturating_add(table_size));
    }
    for seg in &segments {
        if seg.filesz > 0 {
            referenced_end = referenced_end.max(seg.offset.saturating_add(seg.filesz));
        }
    }
    for section in sections {
        let sh_type = section.sh_type(endian);
        if sh_type != elf::SHT_NOBITS && sh_type != elf::SHT_NULL {
            let offset: u64 = section.sh_offset(endian).into();
            let size: u64 = section.sh_size(endian).into();
            referenced_end = referenced_end.max(offset.saturating_add(size));
        }
    }
    let file_size = len64(data);
    let trailing_bytes = file_size.saturating_sub(referenced_end);

    let libc = facts::libc_flavour(
        interpreter.as_deref(),
        &dyn_info.needed,
        dyn_info.soname.as_deref(),
    );
    let max_glibc = dyn_info
        .version_needs
        .iter()
        .flat_map(|need| &need.versions)
        .filter_map(|name| super::GlibcVersion::from_version_name(name))
        .max();
    warnings.extend(dyn_info.warnings);

    Ok(ElfInfo {
        class: if header.is_type_64() {
            Class::Elf64
        } else {
            Class::Elf32
        },
        endian: match endian {
            Endianness::Little => Endian::Little,
            Endianness::Big => Endian::Big,
        },
        machine: header.e_machine(endian).0,
        os_abi: ident.os_abi.0,
        abi_version: ident.abi_version,
        e_type,
        e_flags: header.e_flags(endian).0,
        entry: header.e_entry(endian).into(),
        kind,
        interpreter,
        needed: dyn_info.needed,
        rpath: dyn_info.rpath,
        runpath: dyn_info.runpath,
        soname: dyn_info.soname,
        flags: dyn_info.flags,
        flags_1: dyn_info.flags_1,
        version_needs: dyn_info.version_needs,
        version_defs: dyn_info.version_defs,
        max_glibc,
        libc,
        build_id: notes.build_id,
        dlopen: notes.dlopen,
        segments,
        dynamic,
        dynamic_offset,
        has_section_headers: !sections.is_empty(),
        file_size,
        referenced_end,
        trailing_bytes,
        warnings,
    })
}

/// How the loader would classify the file. ET_DYN is ambiguous: a PIE and a library differ only
/// in PT_INTERP and DF_1_PIE (set by binutils since 2.26); a library that is also runnable
/// (`libc.so.6`) has PT_INTERP but a SONAME and no DF_1_PIE.
fn file_kind(
    e_type: u16,
    has_interp: bool,
    has_dynamic: bool,
    flags_1: u64,
    has_soname: bool,
) -> FileKind {
    let pie_flag = flags_1 & elf::DF_1_PIE.0 != 0;
    match elf::FileType(e_type) {
        elf::ET_EXEC if has_interp || has_dynamic => FileKind::Executable,
        elf::ET_EXEC => FileKind::StaticExecutable,
        elf::ET_DYN if pie_flag && has_interp => FileKind::Pie,
        elf::ET_DYN if pie_flag => FileKind::StaticPie,
        elf::ET_DYN if has_interp && !has_soname => FileKind::Pie,
        elf::ET_DYN => FileKind::SharedLibrary,
        elf::ET_REL => FileKind::Relocatable,
        elf::ET_CORE => FileKind::Core,
        _ => FileKind::Other,
    }
}

/// Translates virtual addresses from the dynamic table to file offsets through PT_LOAD, as the
/// loader sees them mapped.
struct AddressMap<'a> {
    loads: &'a [Segment],
    data: &'a [u8],
}

impl AddressMap<'_> {
    /// The file range `[offset, end)` from `addr` to the end of the file contents of the PT_LOAD
    /// that holds it (clamped to the data). A following PT_LOAD that continues it both in memory
    /// and in the file extends the range: patchelf moves `.dynstr` into a new segment placed
    /// just before the old first one, and the table then runs on into it (the loader reads
    /// memory, where the two are one block).
    fn range(&self, addr: u64) -> Option<(u64, u64)> {
        let mut seg = self
            .loads
            .iter()
            .find(|s| addr >= s.vaddr && addr - s.vaddr < s.filesz)?;
        let offset = seg.offset.checked_add(addr - seg.vaddr)?;
        // Each step moves strictly forward, so at most one step per segment.
        for _ in 0..self.loads.len() {
            let next = self.loads.iter().find(|n| {
                seg.filesz == seg.memsz
                    && n.filesz > 0
                    && Some(n.vaddr) == seg.vaddr.checked_add(seg.filesz)
                    && Some(n.offset) == seg.offset.checked_add(seg.filesz)
            });
            match next {
                Some(next) => seg = next,
                None => break,
            }
        }
        let end = seg.offset.saturating_add(seg.filesz).min(len64(self.data));
        (offset < end).then_some((offset, end))
    }
}

/// The dynamic string table: `[offset, end)` in the file.
struct StringTable<'a> {
    data: &'a [u8],
    offset: u64,
    end: u64,
}

impl StringTable<'_> {
    fn get(&self, index: u64, user: &'static str) -> Result<Vec<u8>, ReadError> {
        let start = self.offset.checked_add(index).filter(|&s| s < self.end);
        let Some(start) = start else {
            return Err(malformed(
                "dynamic string table",
                self.offset,
                format!(
                    "{user} name at index {index:#x} is past the table's end ({:#x} bytes)",
                    self.end - self.offset
                ),
            ));
        };
        let bytes = self
            .data
            .read_bytes_at(start, self.end - start)
            .map_err(|()| {
                truncated(
                    "dynamic string table",
                    self.offset,
                    self.end - self.offset,
                    self.data,
                )
            })?;
        match bytes.iter().position(|&b| b == 0) {
            Some(nul) => Ok(bytes.get(..nul).unwrap_or_default().to_vec()),
            None => Err(malformed(
                "dynamic string table",
                start,
                format!("{user} name is not NUL-terminated"),
            )),
        }
    }
}

/// What the dynamic table says, with strings and version tables resolved.
#[derive(Default)]
struct DynamicInfo {
    needed: Vec<Vec<u8>>,
    rpath: Option<Vec<u8>>,
    runpath: Option<Vec<u8>>,
    soname: Option<Vec<u8>>,
    flags: u64,
    flags_1: u64,
    version_needs: Vec<VersionNeed>,
    version_defs: Vec<Vec<u8>>,
    warnings: Vec<String>,
}

impl DynamicInfo {
    fn read(
        dynamic: &[DynEntry],
        dynamic_offset: u64,
        map: &AddressMap<'_>,
        endian: Endianness,
    ) -> Result<Self, ReadError> {
        let mut info = DynamicInfo::default();
        if dynamic.is_empty() {
            return Ok(info);
        }
        // Single-valued tags: the last one wins, as in glibc's elf/get-dynamic-info.h, which
        // stores `info[tag] = dyn` for every entry.
        let last =
            |tag: elf::DynamicTag| dynamic.iter().rev().find(|d| d.tag == tag.0).map(|d| d.val);
        info.flags = last(elf::DT_FLAGS).unwrap_or(0);
        info.flags_1 = last(elf::DT_FLAGS_1).unwrap_or(0);

        let uses_strings = dynamic.iter().any(|d| {
            [
                elf::DT_NEEDED,
                elf::DT_RPATH,
                elf::DT_RUNPATH,
                elf::DT_SONAME,
                elf::DT_VERNEED,
                elf::DT_VERDEF,
            ]
            .iter()
            .any(|t| t.0 == d.tag)
        });
        if !uses_strings {
            return Ok(info);
        }
        let Some(strtab_addr) = last(elf::DT_STRTAB) else {
            return Err(malformed(
                "dynamic segment",
                dynamic_offset,
                "names are referenced but there is no DT_STRTAB",
            ));
        };
        let Some((str_offset, segment_end)) = map.range(strtab_addr) else {
            return Err(malformed(
                "dynamic segment",
                dynamic_offset,
                format!("DT_STRTAB address {strtab_addr:#x} is not in the file contents of any PT_LOAD segment"),
            ));
        };
        let str_end = match last(elf::DT_STRSZ) {
            Some(size) if str_offset.saturating_add(size) > segment_end => {
                info.warnings.push(format!(
                    "DT_STRSZ ({size} bytes) runs past the end of its PT_LOAD segment at {segment_end:#x}; names are read up to there"
                ));
                segment_end
            }
            Some(size) => str_offset.saturating_add(size),
            None => segment_end,
        };
        let strings = StringTable {
            data: map.data,
            offset: str_offset,
            end: str_end,
        };

        for entry in dynamic {
            match elf::DynamicTag(entry.tag) {
                elf::DT_NEEDED => info.needed.push(strings.get(entry.val, "DT_NEEDED")?),
                elf::DT_RPATH => info.rpath = Some(strings.get(entry.val, "DT_RPATH")?),
                elf::DT_RUNPATH => info.runpath = Some(strings.get(entry.val, "DT_RUNPATH")?),
                elf::DT_SONAME => info.soname = Some(strings.get(entry.val, "DT_SONAME")?),
                _ => {}
            }
        }
        if let Some(addr) = last(elf::DT_VERNEED) {
            let count = last(elf::DT_VERNEEDNUM);
            info.version_needs = read_verneed(addr, count, map, &strings, endian, dynamic_offset)?;
        }
        if let Some(addr) = last(elf::DT_VERDEF) {
            let count = last(elf::DT_VERDEFNUM);
            info.version_defs = read_verdef(addr, count, map, &strings, endian, dynamic_offset)?;
        }
        Ok(info)
    }
}

fn table_start(
    addr: u64,
    map: &AddressMap<'_>,
    tag: &'static str,
    dynamic_offset: u64,
) -> Result<(u64, u64), ReadError> {
    map.range(addr).ok_or_else(|| {
        malformed(
            "dynamic segment",
            dynamic_offset,
            format!("{tag} address {addr:#x} is not in the file contents of any PT_LOAD segment"),
        )
    })
}

/// Reads DT_VERNEED: a chain of `Elf_Verneed`, each with a chain of `Elf_Vernaux`. glibc follows
/// `vn_next` until it is 0 (elf/dl-version.c, `_dl_check_map_versions`); readelf counts
/// DT_VERNEEDNUM. We stop at whichever comes first, and never take more steps than the
/// segment has room for records.
fn read_verneed(
    addr: u64,
    count: Option<u64>,
    map: &AddressMap<'_>,
    strings: &StringTable<'_>,
    endian: Endianness,
    dynamic_offset: u64,
) -> Result<Vec<VersionNeed>, ReadError> {
    const WHAT: &str = "version needs (DT_VERNEED)";
    let (mut offset, end) = table_start(addr, map, "DT_VERNEED", dynamic_offset)?;
    let max_steps = (end - offset) / std::mem::size_of::<elf::Verneed<Endianness>>() as u64;
    let limit = count.unwrap_or(u64::MAX).min(max_steps);
    let mut needs = Vec::new();
    for _ in 0..limit {
        let need: &elf::Verneed<Endianness> = record(map.data, offset, end, WHAT)?;
        let file = strings.get(u64::from(need.vn_file.get(endian)), "Verneed vn_file")?;
        let mut versions = Vec::new();
        let mut aux_offset = offset.saturating_add(u64::from(need.vn_aux.get(endian)));
        let aux_count = u64::from(need.vn_cnt.get(endian)).min(max_steps.saturating_mul(2));
        for _ in 0..aux_count {
            let aux: &elf::Vernaux<Endianness> =
                record(map.data, aux_offset, end, "version need entry (Vernaux)")?;
            versions.push(strings.get(u64::from(aux.vna_name.get(endian)), "Vernaux vna_name")?);
            let next = u64::from(aux.vna_next.get(endian));
            if next == 0 {
                break;
            }
            aux_offset = aux_offset.saturating_add(next);
        }
        needs.push(VersionNeed { file, versions });
        let next = u64::from(need.vn_next.get(endian));
        if next == 0 {
            break;
        }
        offset = offset.saturating_add(next);
    }
    Ok(needs)
}

/// Reads DT_VERDEF: a chain of `Elf_Verdef`; the first `Elf_Verdaux` of each names the version
/// (the rest name its parents). The entry with VER_FLG_BASE names the file itself.
fn read_verdef(
    addr: u64,
    count: Option<u64>,
    map: &AddressMap<'_>,
    strings: &StringTable<'_>,
    endian: Endianness,
    dynamic_offset: u64,
) -> Result<Vec<Vec<u8>>, ReadError> {
    const WHAT: &str = "version definitions (DT_VERDEF)";
    let (mut offset, end) = table_start(addr, map, "DT_VERDEF", dynamic_offset)?;
    let max_steps = (end - offset) / std::mem::size_of::<elf::Verdef<Endianness>>() as u64;
    let limit = count.unwrap_or(u64::MAX).min(max_steps);
    let mut names = Vec::new();
    for _ in 0..limit {
        let def: &elf::Verdef<Endianness> = record(map.data, offset, end, WHAT)?;
        if def.vd_cnt.get(endian) > 0 {
            let aux_offset = offset.saturating_add(u64::from(def.vd_aux.get(endian)));
            let aux: &elf::Verdaux<Endianness> = record(
                map.data,
                aux_offset,
                end,
                "version definition name (Verdaux)",
            )?;
            names.push(strings.get(u64::from(aux.vda_name.get(endian)), "Verdaux vda_name")?);
        }
        let next = u64::from(def.vd_next.get(endian));
        if next == 0 {
            break;
        }
        offset = offset.saturating_add(next);
    }
    Ok(names)
}

/// One fixed-size record at `offset`, wholly inside the segment's file contents `[.., end)`.
fn record<'d, T: object::Pod>(
    data: &'d [u8],
    offset: u64,
    end: u64,
    what: &'static str,
) -> Result<&'d T, ReadError> {
    let size = std::mem::size_of::<T>() as u64;
    if offset
        .checked_add(size)
        .is_none_or(|record_end| record_end > end)
    {
        return Err(malformed(
            what,
            offset,
            format!("{size} bytes do not fit before the end of its segment at {end:#x}"),
        ));
    }
    data.read_at::<T>(offset)
        .map_err(|()| truncated(what, offset, size, data))
}
