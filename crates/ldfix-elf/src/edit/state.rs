//! The logical state being edited: dynamic entries, `.dynstr`, the interpreter, symbol version
//! requirements. Operations change this state; [`super::layout`] then decides where it goes.

use object::elf;

use super::error::EditError;
use super::model::Model;

/// Dynamic tags whose value is an offset into `.dynstr`.
pub(crate) fn is_string_tag(tag: i64) -> bool {
    [
        elf::DT_NEEDED.0,
        elf::DT_SONAME.0,
        elf::DT_RPATH.0,
        elf::DT_RUNPATH.0,
        elf::DT_AUXILIARY.0,
        elf::DT_FILTER.0,
        elf::DT_CONFIG.0,
        elf::DT_DEPAUDIT.0,
        elf::DT_AUDIT.0,
    ]
    .contains(&tag)
}

/// One `Elf_Verneed` record with its `Elf_Vernaux` entries.
#[derive(Debug, Clone)]
pub(crate) struct Verneed {
    /// File offset of the record (its slot; records are rewritten slot by slot).
    pub(crate) offset: u64,
    pub(crate) version: u16,
    pub(crate) file: u32,
    /// Absolute file offset of the first aux entry.
    pub(crate) aux_at: u64,
    pub(crate) cnt: u16,
    /// (vna_name, vna_other) of every aux entry.
    pub(crate) aux: Vec<(u32, u16)>,
    pub(crate) removed: bool,
}

/// The `.dynstr` contents and where they live now.
#[derive(Debug, Clone)]
pub(crate) struct DynStr {
    pub(crate) bytes: Vec<u8>,
    pub(crate) offset: u64,
    pub(crate) vaddr: u64,
    /// Bytes available where it lives now.
    pub(crate) capacity: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) entries: Vec<(i64, u64)>,
    pub(crate) dynstr: Option<DynStr>,
    /// PT_INTERP contents including the NUL.
    pub(crate) interp: Option<Vec<u8>>,
    pub(crate) verneeds: Vec<Verneed>,
    /// String offsets referenced from places the editor never changes: version definitions and
    /// dynamic symbol names. `None` when the symbol count could not be determined: then no
    /// string is ever overwritten in place.
    pub(crate) fixed_refs: Option<Vec<u32>>,
    /// Number of `.dynsym` entries, when known.
    pub(crate) dynsym_count: Option<u64>,
    /// Version indices (vna_other) of removed requirements: symbols bound to them become global.
    pub(crate) removed_versions: Vec<u16>,
    pub(crate) os_abi: u8,
    /// PT_GNU_STACK flags to set (None: unchanged); `add_gnu_stack` when the header is missing.
    pub(crate) gnu_stack_flags: Option<u32>,
    pub(crate) add_gnu_stack: bool,
    pub(crate) changed: bool,
    pub(crate) verneed_changed: bool,
    pub(crate) dynamic_changed: bool,
    pub(crate) dynstr_changed: bool,
    pub(crate) interp_changed: bool,
}

impl State {
    pub(crate) fn new(model: &Model<'_>) -> Result<Self, EditError> {
        let data = model.data;
        let entries = model
            .dynamic
            .as_ref()
            .map(|d| d.entries.clone())
            .unwrap_or_default();
        let mut dynstr = None;
        if let (Some(addr), Some(size)) = (
            model.dyn_value(elf::DT_STRTAB.0),
            model.dyn_value(elf::DT_STRSZ.0),
        ) {
            let offset = model.vaddr_to_offset(addr).ok_or_else(|| {
                EditError::malformed(
                    "dynamic table",
                    model.dynamic.as_ref().map_or(0, |d| d.offset),
                    format!("DT_STRTAB {addr:#x} is not mapped from the file by any PT_LOAD"),
                )
            })?;
            let bytes = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(o, s)| data.get(o..o.checked_add(s)?))
                .ok_or_else(|| {
                    EditError::truncated(".dynstr (DT_STRTAB, DT_STRSZ)", offset, size, data)
                })?;
            dynstr = Some(DynStr {
                bytes: bytes.to_vec(),
                offset,
                vaddr: addr,
                capacity: size,
            });
        }
        let interp = match model.find_phdr(elf::PT_INTERP.0) {
            Some(p) => {
                let bytes = usize::try_from(p.offset)
                    .ok()
                    .zip(usize::try_from(p.filesz).ok())
                    .and_then(|(o, s)| data.get(o..o.checked_add(s)?))
                    .ok_or_else(|| EditError::truncated("PT_INTERP", p.offset, p.filesz, data))?;
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                let mut v = bytes.get(..end).unwrap_or_default().to_vec();
                v.push(0);
                Some(v)
            }
            None => None,
        };
        let os_abi = data.get(7).copied().unwrap_or(0);
        let mut state = State {
            entries,
            dynstr,
            interp,
            verneeds: Vec::new(),
            fixed_refs: None,
            dynsym_count: None,
            removed_versions: Vec::new(),
            os_abi,
            gnu_stack_flags: None,
            add_gnu_stack: false,
            changed: false,
            verneed_changed: false,
            dynamic_changed: false,
            dynstr_changed: false,
            interp_changed: false,
        };
        state.verneeds = read_verneeds(model)?;
        state.dynsym_count = dynsym_count(model);
        state.fixed_refs = fixed_refs(model, state.dynsym_count)?;
        Ok(state)
    }

    /// The string at `off` in `.dynstr`, without its NUL.
    pub(crate) fn string(&self, off: u64) -> Option<&[u8]> {
        let bytes = &self.dynstr.as_ref()?.bytes;
        let rest = bytes.get(usize::try_from(off).ok()?..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        rest.get(..end)
    }

    /// Every string reference except the dynamic entries in `skip_entries` and the version
    /// requirement file names in `skip_verneeds`. `None` if unknown (symbols not countable).
    fn other_refs(&self, skip_entries: &[usize], skip_verneeds: &[usize]) -> Option<Vec<u64>> {
        let mut refs: Vec<u64> = self
            .fixed_refs
            .as_ref()?
            .iter()
            .map(|&r| u64::from(r))
            .collect();
        for (i, (tag, val)) in self.entries.iter().enumerate() {
            if is_string_tag(*tag) && !skip_entries.contains(&i) {
                refs.push(*val);
            }
        }
        for (i, v) in self.verneeds.iter().enumerate() {
            if v.removed {
                continue;
            }
            if !skip_verneeds.contains(&i) {
                refs.push(u64::from(v.file));
            }
            refs.extend(v.aux.iter().map(|(name, _)| u64::from(*name)));
        }
        Some(refs)
    }

    /// Finds or makes room for `new` in `.dynstr`, returning its offset. If `old` (the string
    /// being replaced) is referenced only by the entries being replaced and `new` fits, it is
    /// overwritten in place; otherwise an existing copy is reused or `new` is appended.
    pub(crate) fn place_string(
        &mut self,
        new: &[u8],
        old: Option<u64>,
        skip_entries: &[usize],
        skip_verneeds: &[usize],
    ) -> Result<u64, EditError> {
        let other = self.other_refs(skip_entries, skip_verneeds);
        let Some(dynstr) = self.dynstr.as_mut() else {
            return Err(EditError::unsupported(
                "dynamic string table",
                "the file has no DT_STRTAB/DT_STRSZ (it is not dynamically linked)",
            ));
        };
        if new.contains(&0) {
            return Err(EditError::unsupported(
                "string",
                "a NUL byte cannot be part of an ELF name",
            ));
        }
        // An existing copy (possibly the tail of a longer string, as linkers share suffixes).
        if let Some(pos) = find_string(&dynstr.bytes, new) {
            return Ok(pos);
        }
        if let (Some(old), Some(other)) = (old, other.as_ref()) {
            let start = usize::try_from(old).unwrap_or(usize::MAX);
            let old_len = dynstr
                .bytes
                .get(start..)
                .and_then(|rest| rest.iter().position(|&b| b == 0));
            if let Some(old_len) = old_len {
                let shared = other.iter().any(|&r| r >= old && r < old + old_len as u64);
                if !shared && new.len() <= old_len {
                    if let Some(slot) = dynstr.bytes.get_mut(start..start + old_len) {
                        slot.fill(0);
                        if let Some(head) = slot.get_mut(..new.len()) {
                            head.copy_from_slice(new);
                        }
                        self.dynstr_changed = true;
                        return Ok(old);
                    }
                }
            }
        }
        let pos = dynstr.bytes.len() as u64;
        dynstr.bytes.extend_from_slice(new);
        dynstr.bytes.push(0);
        self.dynstr_changed = true;
        Ok(pos)
    }

    /// Overwrites a no-longer-referenced string with `X`, so that an old store path does not
    /// stay referenced by the file (patchelf does the same for the old RPATH).
    pub(crate) fn scrub_string(&mut self, off: u64) {
        let Some(other) = self.other_refs(&[], &[]) else {
            return;
        };
        let Some(dynstr) = self.dynstr.as_mut() else {
            return;
        };
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        let Some(len) = dynstr
            .bytes
            .get(start..)
            .and_then(|r| r.iter().position(|&b| b == 0))
        else {
            return;
        };
        if other.iter().any(|&r| r >= off && r < off + len as u64) {
            return;
        }
        if let Some(slot) = dynstr.bytes.get_mut(start..start + len) {
            slot.fill(b'X');
            self.dynstr_changed = true;
        }
    }
}

/// Position of `needle` followed by a NUL in `hay` (an existing copy, or the tail of a longer
/// string, as linkers share suffixes).
pub(crate) fn find_string(hay: &[u8], needle: &[u8]) -> Option<u64> {
    let mut with_nul = Vec::with_capacity(needle.len() + 1);
    with_nul.extend_from_slice(needle);
    with_nul.push(0);
    memchr::memmem::find(hay, &with_nul).map(|p| p as u64)
}

fn read_verneeds(model: &Model<'_>) -> Result<Vec<Verneed>, EditError> {
    let (Some(addr), Some(num)) = (
        model.dyn_value(elf::DT_VERNEED.0),
        model.dyn_value(elf::DT_VERNEEDNUM.0),
    ) else {
        return Ok(Vec::new());
    };
    let c = model.codec;
    let data = model.data;
    let mut at = model.vaddr_to_offset(addr).ok_or_else(|| {
        EditError::malformed(
            "dynamic table",
            model.dynamic.as_ref().map_or(0, |d| d.offset),
            format!("DT_VERNEED {addr:#x} is not mapped from the file"),
        )
    })?;
    let mut out = Vec::new();
    // Each record is 16 bytes, so a chain longer than the file is a loop.
    let limit = (data.len() / 16) as u64;
    for _ in 0..num.min(limit) {
        let what = ".gnu.version_r record";
        let version = c.read_u16(data, at, what)?;
        let cnt = c.read_u16(data, at + 2, what)?;
        let file = c.read_u32(data, at + 4, what)?;
        let aux = c.read_u32(data, at + 8, what)?;
        let next = c.read_u32(data, at + 12, what)?;
        let aux_at = at + u64::from(aux);
        let mut auxes = Vec::new();
        let mut a = aux_at;
        for _ in 0..cnt {
            let what = ".gnu.version_r aux entry";
            let other = c.read_u16(data, a + 6, what)?;
            let name = c.read_u32(data, a + 8, what)?;
            let anext = c.read_u32(data, a + 12, what)?;
            auxes.push((name, other));
            if anext == 0 {
                break;
            }
            a += u64::from(anext);
        }
        out.push(Verneed {
            offset: at,
            version,
            file,
            aux_at,
            cnt,
            aux: auxes,
            removed: false,
        });
        if next == 0 {
            break;
        }
        at += u64::from(next);
    }
    Ok(out)
}

/// The number of `.dynsym` entries: from the section header, else DT_HASH's nchain, else by
/// walking DT_GNU_HASH's chains to the highest symbol index.
fn dynsym_count(model: &Model<'_>) -> Option<u64> {
    if let Some(s) = model
        .shdrs
        .iter()
        .find(|s| s.sh_type == elf::SHT_DYNSYM.0 && s.entsize != 0)
    {
        return Some(s.size / s.entsize);
    }
    let c = model.codec;
    let data = model.data;
    if let Some(hash) = model
        .dyn_value(elf::DT_HASH.0)
        .and_then(|a| model.vaddr_to_offset(a))
    {
        return c.read_u32(data, hash + 4, "DT_HASH").ok().map(u64::from);
    }
    let gh = model
        .dyn_value(elf::DT_GNU_HASH.0)
        .and_then(|a| model.vaddr_to_offset(a))?;
    let nbuckets = u64::from(c.read_u32(data, gh, "DT_GNU_HASH").ok()?);
    let symoffset = u64::from(c.read_u32(data, gh + 4, "DT_GNU_HASH").ok()?);
    let bloom = u64::from(c.read_u32(data, gh + 8, "DT_GNU_HASH").ok()?);
    let buckets_at = gh + 16 + bloom * c.word();
    let mut max = 0u64;
    for i in 0..nbuckets.min(data.len() as u64) {
        max = max.max(u64::from(
            c.read_u32(data, buckets_at + 4 * i, "DT_GNU_HASH bucket")
                .ok()?,
        ));
    }
    if max < symoffset {
        return Some(symoffset);
    }
    let chain_at = buckets_at + 4 * nbuckets;
    let mut i = max;
    loop {
        let v = c
            .read_u32(data, chain_at + 4 * (i - symoffset), "DT_GNU_HASH chain")
            .ok()?;
        if v & 1 != 0 {
            return Some(i + 1);
        }
        i += 1;
    }
}

fn fixed_refs(model: &Model<'_>, dynsym_count: Option<u64>) -> Result<Option<Vec<u32>>, EditError> {
    let Some(count) = dynsym_count else {
        return Ok(None);
    };
    let c = model.codec;
    let data = model.data;
    let mut refs = Vec::new();
    if let Some(sym) = model
        .dyn_value(elf::DT_SYMTAB.0)
        .and_then(|a| model.vaddr_to_offset(a))
    {
        let size = if c.is64 { 24 } else { 16 };
        for i in 0..count.min(data.len() as u64 / size) {
            match c.read_u32(data, sym + i * size, ".dynsym entry") {
                Ok(name) => refs.push(name),
                Err(_) => return Ok(None),
            }
        }
    }
    if let (Some(addr), Some(num)) = (
        model.dyn_value(elf::DT_VERDEF.0),
        model.dyn_value(elf::DT_VERDEFNUM.0),
    ) {
        let Some(mut at) = model.vaddr_to_offset(addr) else {
            return Ok(None);
        };
        for _ in 0..num.min(data.len() as u64 / 20) {
            let what = ".gnu.version_d record";
            let cnt = c.read_u16(data, at + 6, what)?;
            let aux = c.read_u32(data, at + 12, what)?;
            let next = c.read_u32(data, at + 16, what)?;
            let mut a = at + u64::from(aux);
            for _ in 0..cnt {
                refs.push(c.read_u32(data, a, ".gnu.version_d aux")?);
                let anext = c.read_u32(data, a + 4, ".gnu.version_d aux")?;
                if anext == 0 {
                    break;
                }
                a += u64::from(anext);
            }
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    Ok(Some(refs))
}
