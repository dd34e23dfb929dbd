//! Checks run on every edited file before it is returned: the result is parsed again, by the
//! editor's model and by the read model, and must satisfy the loader's invariants and carry the
//! requested values. A violation is an error; the caller then writes nothing.

use object::elf;

use super::error::EditError;
use super::model::Model;
use super::state::{is_string_tag, State};

pub(crate) fn check(original: &[u8], out: &[u8], state: &State) -> Result<(), EditError> {
    let before = Model::parse(original)?;
    let m = Model::parse(out)
        .map_err(|e| EditError::invariant(format!("the result does not parse: {e}")))?;
    let len = out.len() as u64;
    for (i, p) in m.phdrs.iter().enumerate() {
        if p.p_type != elf::PT_GNU_STACK.0 && p.file_end() > len {
            return Err(EditError::invariant(format!(
                "segment {i} ends at {:#x}, past the end of the file",
                p.file_end()
            )));
        }
        if p.p_type == elf::PT_LOAD.0 && p.filesz > p.memsz {
            return Err(EditError::invariant(format!(
                "LOAD segment {i} has p_filesz > p_memsz"
            )));
        }
    }
    for (i, s) in m.shdrs.iter().enumerate() {
        if s.offset.saturating_add(s.file_size()) > len {
            return Err(EditError::invariant(format!(
                "section {i} ends past the end of the file"
            )));
        }
    }
    // LOADs: in ascending address order, not overlapping; the ones ldfix added congruent modulo
    // their alignment and the architecture's largest page (qemu-user on 4 KiB pages cannot tell).
    let loads: Vec<_> = m.loads().copied().collect();
    for pair in loads.windows(2) {
        if let [a, b] = pair {
            if b.vaddr < a.mem_end() {
                return Err(EditError::invariant(format!(
                    "LOAD at {:#x} overlaps or precedes the LOAD ending at {:#x}",
                    b.vaddr,
                    a.mem_end()
                )));
            }
        }
    }
    let lowest = before.loads().map(|p| p.vaddr).min().unwrap_or(0);
    let page = m.arch_page_size();
    for p in loads.iter().filter(|p| {
        !before
            .loads()
            .any(|q| q.offset == p.offset && q.vaddr == p.vaddr)
    }) {
        let modulus = p.align.max(page);
        if p.vaddr < lowest {
            return Err(EditError::invariant(format!(
                "new LOAD at {:#x} is below the lowest address {lowest:#x}",
                p.vaddr
            )));
        }
        if p.vaddr % modulus != p.offset % modulus {
            return Err(EditError::invariant(format!(
                "new LOAD: address {:#x} and offset {:#x} differ modulo {modulus:#x}",
                p.vaddr, p.offset
            )));
        }
        if p.flags & elf::PF_X.0 != 0 {
            return Err(EditError::invariant("new LOAD is executable"));
        }
    }
    let mapped = |addr: u64, size: u64| {
        loads.iter().any(|p| {
            addr >= p.vaddr && addr.saturating_add(size) <= p.vaddr.saturating_add(p.filesz)
        })
    };
    for p in &m.phdrs {
        let ok = match elf::ProgramType(p.p_type) {
            elf::PT_INTERP | elf::PT_DYNAMIC | elf::PT_PHDR => mapped(p.vaddr, p.filesz),
            _ => true,
        };
        if !ok {
            return Err(EditError::invariant(format!(
                "segment of type {} at {:#x} is not inside a LOAD",
                p.p_type, p.vaddr
            )));
        }
    }
    if let Some(ph) = m.find_phdr(elf::PT_PHDR.0) {
        if ph.offset != m.phoff {
            return Err(EditError::invariant(
                "PT_PHDR does not describe the program header table",
            ));
        }
    }
    if let (Some(old), Some(new)) = (
        before.find_phdr(elf::PT_DYNAMIC.0),
        m.find_phdr(elf::PT_DYNAMIC.0),
    ) {
        let writable = |model: &Model<'_>, addr: u64| {
            model
                .loads()
                .any(|p| addr >= p.vaddr && addr < p.mem_end() && p.flags & elf::PF_W.0 != 0)
        };
        if writable(&before, old.vaddr) && !writable(&m, new.vaddr) {
            return Err(EditError::invariant(
                "the dynamic table is no longer in a writable segment",
            ));
        }
    }
    if let Some(d) = &m.dynamic {
        for (tag, val) in &d.entries {
            if m.is_address_tag(*tag)
                && *val != 0
                && !loads.iter().any(|p| *val >= p.vaddr && *val < p.mem_end())
            {
                return Err(EditError::invariant(format!(
                    "dynamic tag {tag:#x} points at unmapped address {val:#x}"
                )));
            }
        }
        let strsz = m.dyn_value(elf::DT_STRSZ.0).unwrap_or(0);
        if let Some(strtab) = m.dyn_value(elf::DT_STRTAB.0) {
            if !mapped(strtab, strsz) {
                return Err(EditError::invariant(".dynstr is not inside a LOAD"));
            }
        }
        if let Some((tag, val)) = d
            .entries
            .iter()
            .find(|(t, v)| is_string_tag(*t) && *v >= strsz)
        {
            return Err(EditError::invariant(format!(
                "dynamic tag {tag:#x} string offset {val:#x} is past DT_STRSZ {strsz:#x}"
            )));
        }
    }
    // MIPS: DT_MIPS_RLD_MAP_REL, relative to its own entry, still reaches the same word.
    if let (Some(old), Some(new)) = (&before.dynamic, &m.dynamic) {
        let was = super::layout::rld_map_targets(&before, &old.entries, old.vaddr);
        if super::layout::rld_map_targets(&m, &new.entries, new.vaddr) != was {
            return Err(EditError::invariant(
                "DT_MIPS_RLD_MAP_REL no longer points at the debug map word",
            ));
        }
    }
    // Trailing data is still at the end, byte for byte.
    let trailing = original
        .get(usize::try_from(before.referenced_end()).unwrap_or(usize::MAX)..)
        .unwrap_or_default();
    if !out.ends_with(trailing) {
        return Err(EditError::invariant(
            "the data after the ELF contents is no longer at the end",
        ));
    }

    // The values the loader will see are the ones asked for.
    let info = crate::read::parse(out)
        .map_err(|e| EditError::invariant(format!("the read model rejects the result: {e}")))?;
    let want = |tag: i64| -> Vec<Vec<u8>> {
        state
            .entries
            .iter()
            .filter(|(t, _)| *t == tag)
            .filter_map(|(_, v)| state.string(*v).map(<[u8]>::to_vec))
            .collect()
    };
    if info.needed != want(elf::DT_NEEDED.0) {
        return Err(EditError::invariant("DT_NEEDED reads back differently"));
    }
    if info.runpath != want(elf::DT_RUNPATH.0).pop() || info.rpath != want(elf::DT_RPATH.0).pop() {
        return Err(EditError::invariant("the run path reads back differently"));
    }
    if info.soname.as_ref() != want(elf::DT_SONAME.0).first() {
        return Err(EditError::invariant("DT_SONAME reads back differently"));
    }
    let interp = state
        .interp
        .as_ref()
        .map(|i| i.strip_suffix(&[0]).unwrap_or(i).to_vec());
    if info.interpreter != interp {
        return Err(EditError::invariant(
            "the interpreter reads back differently",
        ));
    }
    for v in &info.version_needs {
        if !info.needed.contains(&v.file) && !before_needed_missing(&v.file, state) {
            return Err(EditError::invariant(format!(
                "a symbol version requirement names {}, which is not in DT_NEEDED",
                String::from_utf8_lossy(&v.file)
            )));
        }
    }
    Ok(())
}

/// Version requirements on libraries that were not in DT_NEEDED before the edit either (some
/// linkers record them) are not ours to judge.
fn before_needed_missing(file: &[u8], state: &State) -> bool {
    state
        .verneeds
        .iter()
        .any(|v| !v.removed && state.string(u64::from(v.file)) == Some(file))
        && !state
            .entries
            .iter()
            .any(|(t, v)| *t == elf::DT_NEEDED.0 && state.string(*v) == Some(file))
}
