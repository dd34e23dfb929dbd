//! Where the edited state goes: in place when it fits, otherwise into one LOAD segment appended
//! by ldfix (reused and re-laid-out by later edits, so repeated growth stays bounded).
//!
//! Rules (see issue 5 and patchelf's bug history):
//! - Programs (ET_EXEC, anything with PT_INTERP, static-pie) keep the program header table at
//!   its offset inside the first LOAD: Linux before 5.18 derives AT_PHDR from it (patchelf #601).
//!   Room for more headers is made by moving what follows the table (the interpreter string,
//!   notes) into the new segment, with PT_NOTE/PT_GNU_PROPERTY/PT_INTERP and section headers
//!   updated. Shared libraries get their table moved into the new segment instead.
//! - The new LOAD is the last LOAD in the table and the highest in memory, never below an
//!   existing address (patchelf #622), with `p_vaddr ≡ p_offset (mod p_align)` and `p_align` at
//!   least the largest existing LOAD alignment and the architecture's largest page (glibc < 2.35
//!   rejects anything else, patchelf #492). It is readable and writable, never executable.
//! - Its file offset is only rounded to 16 bytes: congruence comes from choosing the address,
//!   so no page of padding is added to the file.
//! - Bytes after everything the headers reference (a PyInstaller or bun payload) stay at the end.

use object::elf;

use super::error::EditError;
use super::model::{Model, Segment, Shdr};
use super::state::{find_string, is_string_tag, State};
use crate::read::ReadError;

/// Marks the segment ldfix appended: magic, format version, original `.dynstr` size (so the
/// strings appended by earlier edits can be dropped when no longer referenced). Little-endian.
pub(crate) const MAGIC: &[u8; 8] = b"LDFIXSEG";
const MARKER_LEN: u64 = 16;

/// ldfix's own appended segment, found again in an already patched file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ours {
    index: usize,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    align: u64,
    orig_dynstr_len: u64,
}

impl Ours {
    fn contains(&self, off: u64) -> bool {
        off >= self.offset && off < self.offset.saturating_add(self.filesz)
    }
}

/// A range of bytes moved into the segment unchanged (notes).
#[derive(Debug, Clone)]
struct Block {
    offset: u64,
    vaddr: u64,
    bytes: Vec<u8>,
    align: u64,
}

/// Where something was and where it is now; applied to every header that points into it.
#[derive(Debug, Clone, Copy)]
struct Move {
    old_off: u64,
    old_len: u64,
    old_vaddr: u64,
    new_off: u64,
    new_vaddr: u64,
    new_len: u64,
    /// Headers that start where it started take its new size (false for moved notes, whose
    /// sections keep their own sizes).
    resized: bool,
}

/// A note's alignment: 4 or 8 in valid files; anything else is refused rather than honoured.
fn note_align(p_align: u64, offset: u64) -> Result<u64, EditError> {
    match p_align {
        0 | 1 => Ok(1),
        a if a.is_power_of_two() && a <= 64 => Ok(a),
        a => Err(EditError::malformed(
            "note",
            offset,
            format!("alignment {a:#x} is not a small power of two"),
        )),
    }
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    if a <= 1 {
        return Some(v);
    }
    v.checked_add(a - 1).map(|x| x / a * a)
}

fn slice(data: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let o = usize::try_from(off).ok()?;
    let l = usize::try_from(len).ok()?;
    data.get(o..o.checked_add(l)?)
}

fn put(out: &mut [u8], at: u64, bytes: &[u8], what: &'static str) -> Result<(), EditError> {
    let len = out.len() as u64;
    let o =
        usize::try_from(at).map_err(|_| EditError::truncated(what, at, bytes.len() as u64, &[]))?;
    let slot = o
        .checked_add(bytes.len())
        .and_then(|end| out.get_mut(o..end))
        .ok_or(EditError::Read(ReadError::Truncated {
            what,
            offset: at,
            size: bytes.len() as u64,
            file_len: len,
        }))?;
    slot.copy_from_slice(bytes);
    Ok(())
}

/// The edited file, described against the original: its first `prefix_end` bytes, zeros up to
/// `seg_off`, the new segment, then the original from `tail_start` (trailing data); with small
/// patches over the prefix. Large files are then written without copying them through memory.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) prefix_end: u64,
    pub(crate) seg_off: u64,
    pub(crate) seg: Vec<u8>,
    pub(crate) tail_start: u64,
    pub(crate) original_len: u64,
    /// (offset, bytes) over the prefix, applied in order.
    pub(crate) patches: Vec<(u64, Vec<u8>)>,
}

impl Image {
    pub(crate) fn len(&self) -> u64 {
        self.seg_off + self.seg.len() as u64 + self.original_len.saturating_sub(self.tail_start)
    }

    /// Writes `bytes` at `at` of the edited file.
    fn put(&mut self, at: u64, bytes: &[u8], what: &'static str) -> Result<(), EditError> {
        let end = at.checked_add(bytes.len() as u64);
        let seg_end = self.seg_off + self.seg.len() as u64;
        match end {
            Some(end) if at >= self.seg_off && end <= seg_end && !self.seg.is_empty() => {
                put(&mut self.seg, at - self.seg_off, bytes, what)
            }
            Some(end) if end <= self.prefix_end => {
                self.patches.push((at, bytes.to_vec()));
                Ok(())
            }
            _ => Err(EditError::Read(ReadError::Truncated {
                what,
                offset: at,
                size: bytes.len() as u64,
                file_len: self.len(),
            })),
        }
    }

    /// The whole edited file in memory.
    pub(crate) fn to_vec(&self, original: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        let prefix = usize::try_from(self.prefix_end)
            .unwrap_or(usize::MAX)
            .min(original.len());
        out.extend_from_slice(original.get(..prefix).unwrap_or_default());
        for (at, bytes) in &self.patches {
            let at = usize::try_from(*at).unwrap_or(usize::MAX);
            if let Some(slot) = at
                .checked_add(bytes.len())
                .and_then(|end| out.get_mut(at..end))
            {
                slot.copy_from_slice(bytes);
            }
        }
        out.resize(usize::try_from(self.seg_off).unwrap_or(0).max(out.len()), 0);
        out.extend_from_slice(&self.seg);
        let tail = usize::try_from(self.tail_start).unwrap_or(usize::MAX);
        out.extend_from_slice(original.get(tail..).unwrap_or_default());
        out
    }
}

pub(crate) fn find_ours(model: &Model<'_>) -> Option<Ours> {
    let (index, last) = model
        .phdrs
        .iter()
        .enumerate()
        .rfind(|(_, p)| p.p_type == elf::PT_LOAD.0)?;
    let pht_len = model.phdrs.len() as u64 * model.codec.phentsize();
    let marker_at = if model.phoff == last.offset {
        last.offset + pht_len
    } else {
        last.offset
    };
    let marker = slice(model.data, marker_at, MARKER_LEN)?;
    if marker.get(..8)? != MAGIC {
        return None;
    }
    let len_bytes: [u8; 4] = marker.get(12..16)?.try_into().ok()?;
    let end = last.file_end();
    // It must be the highest LOAD in memory, and nothing the headers reference may follow it,
    // or it could not be resized (after `strip`, the section headers come after it).
    if model
        .loads()
        .any(|p| p.mem_end() > last.vaddr && p.vaddr != last.vaddr)
    {
        return None;
    }
    let sht_end = model.shoff + model.shdrs.len() as u64 * model.codec.shentsize();
    if !model.shdrs.is_empty() && sht_end > last.offset {
        return None;
    }
    if model
        .shdrs
        .iter()
        .any(|s| s.file_size() > 0 && s.offset >= end)
        || model.phdrs.iter().any(|p| p.filesz > 0 && p.offset >= end)
    {
        return None;
    }
    Some(Ours {
        index,
        offset: last.offset,
        vaddr: last.vaddr,
        filesz: last.filesz,
        align: last.align,
        orig_dynstr_len: u64::from(u32::from_le_bytes(len_bytes)),
    })
}

fn section_name(model: &Model<'_>, s: &Shdr) -> String {
    let name = model
        .shdrs
        .get(usize::from(model.shstrndx))
        .and_then(|strtab| slice(model.data, strtab.offset, strtab.size))
        .and_then(|tab| tab.get(usize::try_from(s.name).ok()?..))
        .and_then(|rest| rest.split(|&b| b == 0).next())
        .unwrap_or_default();
    String::from_utf8_lossy(name).into_owned()
}

fn overlaps(a_off: u64, a_len: u64, b_off: u64, b_len: u64) -> bool {
    a_len > 0
        && b_len > 0
        && a_off < b_off.saturating_add(b_len)
        && b_off < a_off.saturating_add(a_len)
}

/// Sections that can move because nothing but the dynamic table (re-pointed) and their section
/// header refer to their address: notes, hash tables, the dynamic symbol table, version tables,
/// and MIPS's information sections.
fn is_movable_section(model: &Model<'_>, s: &Shdr) -> bool {
    [
        elf::SHT_NOTE.0,
        elf::SHT_HASH.0,
        elf::SHT_GNU_HASH.0,
        elf::SHT_DYNSYM.0,
        elf::SHT_GNU_VERSYM.0,
        elf::SHT_GNU_VERNEED.0,
        elf::SHT_GNU_VERDEF.0,
    ]
    .contains(&s.sh_type)
        || model.is_mips_info_section(s.sh_type)
}

/// What must leave the bytes right after the program header table so that it can grow in place.
#[derive(Default)]
struct Room {
    interp: bool,
    dynamic: bool,
    dynstr: bool,
    blocks: Vec<(u64, u64, u64, u64)>, // offset, len, vaddr, align
}

fn make_room(model: &Model<'_>, state: &State, count: u64) -> Result<Room, EditError> {
    let ent = model.codec.phentsize();
    let start = model.phoff + model.phdrs.len() as u64 * ent;
    let end = model.phoff + count * ent;
    let mut room = Room::default();
    let load = model
        .loads()
        .find(|p| p.offset <= model.phoff && model.phoff < p.file_end())
        .ok_or_else(|| {
            EditError::unsupported("program header table", "it is not inside a LOAD segment")
        })?;
    if end > load.file_end() {
        return Err(EditError::unsupported(
            "program header table",
            format!(
                "it cannot grow to {count} entries inside its LOAD segment (which ends at {:#x})",
                load.file_end()
            ),
        ));
    }
    let len = end - start;
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for p in &model.phdrs {
        if !overlaps(p.offset, p.filesz, start, len) {
            continue;
        }
        match elf::ProgramType(p.p_type) {
            elf::PT_LOAD | elf::PT_PHDR => {}
            elf::PT_INTERP => {
                room.interp = true;
                covered.push((p.offset, p.filesz));
            }
            elf::PT_DYNAMIC => {
                room.dynamic = true;
                covered.push((p.offset, p.filesz));
            }
            elf::PT_NOTE => {
                room.blocks
                    .push((p.offset, p.filesz, p.vaddr, note_align(p.align, p.offset)?));
                covered.push((p.offset, p.filesz));
            }
            t if model.is_mips_info_segment(t.0) => {
                room.blocks
                    .push((p.offset, p.filesz, p.vaddr, note_align(p.align, p.offset)?));
                covered.push((p.offset, p.filesz));
            }
            _ => {}
        }
    }
    for p in &model.phdrs {
        if p.p_type == elf::PT_GNU_PROPERTY.0 && overlaps(p.offset, p.filesz, start, len) {
            let inside = covered
                .iter()
                .any(|&(o, l)| p.offset >= o && p.file_end() <= o.saturating_add(l));
            if !inside {
                room.blocks
                    .push((p.offset, p.filesz, p.vaddr, note_align(p.align, p.offset)?));
                covered.push((p.offset, p.filesz));
            }
        } else if !matches!(
            elf::ProgramType(p.p_type),
            elf::PT_LOAD | elf::PT_PHDR | elf::PT_INTERP | elf::PT_DYNAMIC | elf::PT_NOTE
        ) && !model.is_mips_info_segment(p.p_type)
            && overlaps(p.offset, p.filesz, start, len)
        {
            return Err(EditError::unsupported(
                "program header table",
                format!(
                    "segment of type {:#x} at offset {:#x} follows it and cannot be moved",
                    p.p_type, p.offset
                ),
            ));
        }
    }
    let dynstr = state.dynstr.as_ref().map(|d| (d.offset, d.capacity));
    for s in &model.shdrs {
        if s.flags & elf::SHF_ALLOC.0 == 0 || !overlaps(s.offset, s.file_size(), start, len) {
            continue;
        }
        let inside = covered
            .iter()
            .any(|&(o, l)| s.offset >= o && s.offset.saturating_add(s.size) <= o.saturating_add(l));
        if inside {
            continue;
        }
        if Some(s.offset) == dynstr.map(|d| d.0) {
            room.dynstr = true;
        } else if is_movable_section(model, s) {
            room.blocks
                .push((s.offset, s.size, s.addr, note_align(s.addralign, s.offset)?));
            covered.push((s.offset, s.size));
        } else {
            return Err(EditError::unsupported(
                "program header table",
                format!(
                    "section {} at offset {:#x} follows it and cannot be moved to make room for \
                     {count} program headers",
                    section_name(model, s),
                    s.offset
                ),
            ));
        }
    }
    // Without section headers, what the dynamic table points at tells what is there.
    for (tag, val) in model.dynamic.iter().flat_map(|d| d.entries.iter()) {
        if !model.is_address_tag(*tag) {
            continue;
        }
        let Some(off) = model.vaddr_to_offset(*val) else {
            continue;
        };
        if off < start
            || off >= end
            || covered
                .iter()
                .any(|&(o, l)| off >= o && off < o.saturating_add(l))
        {
            continue;
        }
        if *tag == elf::DT_STRTAB.0 {
            room.dynstr = true;
        } else {
            return Err(EditError::unsupported(
                "program header table",
                format!("dynamic tag {tag:#x} points at offset {off:#x}, right after it"),
            ));
        }
    }
    Ok(room)
}

/// Builds the edited file. The caller verifies it.
pub(crate) fn build(
    model: &Model<'_>,
    state: &mut State,
    page_size: Option<u64>,
) -> Result<Image, EditError> {
    let c = model.codec;
    let data = model.data;
    let ours = find_ours(model);
    let in_ours = |off: u64| ours.is_some_and(|o| o.contains(off));

    let pt_interp = model.find_phdr(elf::PT_INTERP.0).copied();
    let pt_dynamic = model.find_phdr(elf::PT_DYNAMIC.0).copied();
    let dyn_need = (state.entries.len() as u64 + 1) * c.dynsize();
    let dyn_cap = model
        .dynamic
        .as_ref()
        .map_or(0, |d| d.capacity * c.dynsize());
    let dyn_home = model.dynamic.as_ref().map(|d| (d.offset, d.vaddr));

    let mut move_dynamic = state.dynamic_changed && dyn_need > dyn_cap;
    let mut move_dynstr = state
        .dynstr
        .as_ref()
        .is_some_and(|d| state.dynstr_changed && d.bytes.len() as u64 > d.capacity);
    let mut move_interp = match (&state.interp, pt_interp) {
        (Some(i), Some(p)) => state.interp_changed && i.len() as u64 > p.filesz,
        _ => false,
    };
    let mut blocks: Vec<Block> = Vec::new();
    let mut move_pht = false;
    let extra_stack = u64::from(state.add_gnu_stack);

    // Objects already in our segment move with it whenever it is re-laid out.
    let any_move = |d: bool, s: bool, i: bool| d || s || i;
    let mut rebuild = ours.is_some() && any_move(move_dynamic, move_dynstr, move_interp);
    let pht_in_ours = in_ours(model.phoff);
    if extra_stack > 0 && pht_in_ours {
        rebuild = true;
    }
    let mut new_load = false;
    // Program headers to add (a LOAD, a GNU_STACK). PT_NULL entries are spare slots that every
    // reader skips (MIPS linkers leave one): they are taken first, so the table grows, and what
    // follows it moves, only when there are none left.
    let spare = model
        .phdrs
        .iter()
        .filter(|p| p.p_type == elf::PT_NULL.0)
        .count() as u64;
    let count = |added: u64| model.phdrs.len() as u64 + added.saturating_sub(spare);
    let mut added = extra_stack;
    if !rebuild && any_move(move_dynamic, move_dynstr, move_interp) {
        new_load = true;
        added += 1;
    }
    if !pht_in_ours && count(added) > model.phdrs.len() as u64 {
        // Keep the table where it is when what follows it can move: programs must (AT_PHDR on
        // old kernels), and binutils' strip cannot handle a table outside the first segment.
        let mut room = match make_room(model, state, count(added)) {
            Ok(r) => Some(r),
            Err(e) if model.is_program() => return Err(e),
            Err(_) => None,
        };
        if let Some(r) = &room {
            let moves_something = r.interp || r.dynamic || r.dynstr || !r.blocks.is_empty();
            if !new_load && ours.is_none() && moves_something {
                new_load = true;
                added += 1;
                room = match make_room(model, state, count(added)) {
                    Ok(r) => Some(r),
                    Err(e) if model.is_program() => return Err(e),
                    Err(_) => None,
                };
            } else if !new_load && ours.is_some() && moves_something {
                rebuild = true;
            }
        }
        if let Some(room) = room {
            move_interp |= room.interp;
            move_dynamic |= room.dynamic;
            move_dynstr |= room.dynstr;
            for (offset, len, vaddr, align) in room.blocks {
                let bytes = slice(data, offset, len)
                    .ok_or_else(|| EditError::truncated("section", offset, len, data))?
                    .to_vec();
                blocks.push(Block {
                    offset,
                    vaddr,
                    bytes,
                    align,
                });
            }
        } else {
            move_pht = true;
            if ours.is_some() {
                rebuild = true;
            } else if !new_load {
                new_load = true;
                added += 1;
            }
        }
    }
    if new_load && rebuild {
        // An existing reusable segment takes everything; no second LOAD.
        new_load = false;
        added -= 1;
    }
    let pht_count = count(added);
    let reused_nulls = added.min(spare);
    let building = new_load || rebuild;

    // Everything that lives in our segment is laid out again when it is rebuilt.
    if rebuild {
        if let Some(o) = ours {
            move_dynamic |= dyn_home.is_some_and(|(off, _)| o.contains(off));
            move_dynstr |= state.dynstr.as_ref().is_some_and(|d| o.contains(d.offset));
            move_interp |= pt_interp.is_some_and(|p| o.contains(p.offset));
            move_pht |= pht_in_ours;
            for p in &model.phdrs {
                let block = p.p_type == elf::PT_NOTE.0 || model.is_mips_info_segment(p.p_type);
                if block && o.contains(p.offset) {
                    let bytes = slice(data, p.offset, p.filesz)
                        .ok_or_else(|| EditError::truncated("note", p.offset, p.filesz, data))?
                        .to_vec();
                    blocks.push(Block {
                        offset: p.offset,
                        vaddr: p.vaddr,
                        bytes,
                        align: note_align(p.align, p.offset)?,
                    });
                }
            }
            // Sections moved there by earlier edits (hash tables, symbols, versions).
            let dyn_off = dyn_home.map(|h| h.0);
            let dynstr_off = state.dynstr.as_ref().map(|d| d.offset);
            let interp_off = pt_interp.map(|p| p.offset);
            for sec in &model.shdrs {
                let placed = blocks.iter().any(|b| {
                    sec.offset >= b.offset && sec.offset < b.offset + b.bytes.len() as u64
                });
                if sec.flags & elf::SHF_ALLOC.0 == 0
                    || sec.file_size() == 0
                    || !o.contains(sec.offset)
                    || placed
                    || [dyn_off, dynstr_off, interp_off].contains(&Some(sec.offset))
                {
                    continue;
                }
                let bytes = slice(data, sec.offset, sec.size)
                    .ok_or_else(|| EditError::truncated("section", sec.offset, sec.size, data))?
                    .to_vec();
                blocks.push(Block {
                    offset: sec.offset,
                    vaddr: sec.addr,
                    bytes,
                    align: note_align(sec.addralign, sec.offset)?,
                });
            }
        }
    }

    // Drop strings appended by earlier edits that nothing references any more.
    let orig_dynstr_len = match (ours, &state.dynstr) {
        (Some(o), Some(d)) if o.contains(d.offset) => o.orig_dynstr_len,
        (_, Some(d)) => d.capacity,
        _ => 0,
    };
    if building && move_dynstr {
        compact_dynstr(state, orig_dynstr_len);
    }

    // Segment placement.
    let max_align = model
        .loads()
        .map(|p| p.align)
        .chain([model.arch_page_size(), page_size.unwrap_or(0)])
        .max()
        .unwrap_or(0x1000);
    let content_end = model.referenced_end();
    let (seg_off, seg_vaddr, seg_align) = match (rebuild, ours) {
        (true, Some(o)) => (o.offset, o.vaddr, o.align),
        _ => {
            let off = align_up(content_end, 16)
                .ok_or_else(|| EditError::unsupported("file", "too large"))?;
            let top = model
                .loads()
                .filter(|p| !ours.is_some_and(|o| o.offset == p.offset && o.vaddr == p.vaddr))
                .map(Segment::mem_end)
                .chain(ours.map(|o| o.vaddr.saturating_add(o.filesz)))
                .max()
                .unwrap_or(0);
            let base = align_up(top, max_align)
                .ok_or_else(|| EditError::unsupported("address space", "exhausted"))?;
            let vaddr = base
                .checked_add(off % max_align)
                .ok_or_else(|| EditError::unsupported("address space", "exhausted"))?;
            (off, vaddr, max_align)
        }
    };

    // The segment's own offsets and addresses must not wrap (hostile p_vaddr/p_offset values).
    if seg_vaddr.checked_add(1 << 40).is_none() || seg_off.checked_add(1 << 40).is_none() {
        return Err(EditError::unsupported(
            "address space",
            format!("no room for a new segment above {seg_vaddr:#x}"),
        ));
    }
    // Lay out the segment: marker, program headers, dynamic, interpreter, strings, notes.
    let mut seg: Vec<u8> = Vec::new();
    let mut moves: Vec<Move> = Vec::new();
    let mut new_phoff = model.phoff;
    let mut new_dynstr: Option<(u64, u64)> = None; // offset, vaddr
    if building {
        let place = |seg: &mut Vec<u8>, len: u64, align: u64| -> (u64, u64) {
            let at = align_up(seg.len() as u64, align.max(1)).unwrap_or(seg.len() as u64);
            seg.resize(usize::try_from(at + len).unwrap_or(0), 0);
            (seg_off + at, seg_vaddr + at)
        };
        if move_pht {
            let (o, v) = place(&mut seg, pht_count * c.phentsize(), c.word());
            moves.push(Move {
                old_off: model.phoff,
                old_len: model.phdrs.len() as u64 * c.phentsize(),
                old_vaddr: model.find_phdr(elf::PT_PHDR.0).map_or(0, |p| p.vaddr),
                new_off: o,
                new_vaddr: v,
                new_len: pht_count * c.phentsize(),
                resized: true,
            });
            new_phoff = o;
        }
        // The marker follows the program header table when that opens the segment: binutils
        // (strip, objcopy) expect a table inside a segment to be at its start.
        seg.extend_from_slice(MAGIC);
        seg.extend_from_slice(&1u32.to_le_bytes());
        let orig = if move_dynstr { orig_dynstr_len } else { 0 };
        seg.extend_from_slice(&u32::try_from(orig).unwrap_or(0).to_le_bytes());
        if move_dynamic {
            let (o, v) = place(&mut seg, dyn_need, c.word());
            let (old_off, old_vaddr) = dyn_home.unwrap_or((0, 0));
            moves.push(Move {
                old_off,
                old_len: pt_dynamic.map_or(0, |p| p.filesz),
                old_vaddr,
                new_off: o,
                new_vaddr: v,
                new_len: dyn_need,
                resized: true,
            });
        }
        if move_interp {
            if let (Some(i), Some(p)) = (&state.interp, pt_interp) {
                let (o, v) = place(&mut seg, i.len() as u64, 1);
                let at = o - seg_off;
                put(&mut seg, at, i, "interpreter")?;
                moves.push(Move {
                    old_off: p.offset,
                    old_len: p.filesz,
                    old_vaddr: p.vaddr,
                    new_off: o,
                    new_vaddr: v,
                    new_len: i.len() as u64,
                    resized: true,
                });
            }
        }
        if move_dynstr {
            if let Some(d) = &state.dynstr {
                let (o, v) = place(&mut seg, d.bytes.len() as u64, 1);
                put(&mut seg, o - seg_off, &d.bytes, ".dynstr")?;
                moves.push(Move {
                    old_off: d.offset,
                    old_len: d.capacity,
                    old_vaddr: d.vaddr,
                    new_off: o,
                    new_vaddr: v,
                    new_len: d.bytes.len() as u64,
                    resized: true,
                });
                new_dynstr = Some((o, v));
            }
        }
        for b in &blocks {
            let (o, v) = place(&mut seg, b.bytes.len() as u64, b.align);
            put(&mut seg, o - seg_off, &b.bytes, "note")?;
            moves.push(Move {
                old_off: b.offset,
                old_len: b.bytes.len() as u64,
                old_vaddr: b.vaddr,
                new_off: o,
                new_vaddr: v,
                new_len: b.bytes.len() as u64,
                resized: false,
            });
        }
    }

    // Dynamic entries that point into moved blocks follow them.
    for e in &mut state.entries {
        if !model.is_address_tag(e.0) || e.0 == elf::DT_STRTAB.0 {
            continue;
        }
        for m in moves.iter().filter(|m| !m.resized) {
            if e.1 >= m.old_vaddr && e.1 < m.old_vaddr.saturating_add(m.old_len) {
                e.1 = (e.1 - m.old_vaddr).saturating_add(m.new_vaddr);
                state.dynamic_changed = true;
                break;
            }
        }
    }
    if let (Some((o, v)), Some(d)) = (new_dynstr, state.dynstr.as_ref()) {
        let len = d.bytes.len() as u64;
        for e in &mut state.entries {
            if e.0 == elf::DT_STRTAB.0 {
                e.1 = v;
            } else if e.0 == elf::DT_STRSZ.0 {
                e.1 = len;
            }
        }
        let _ = o; // the offset is reached through the section header move
    }
    let kept_verneeds = state.verneeds.iter().filter(|v| !v.removed).count() as u64;
    if state.verneed_changed {
        for e in &mut state.entries {
            if e.0 == elf::DT_VERNEEDNUM.0 {
                e.1 = kept_verneeds;
            }
        }
    }

    // Compose: prefix, our segment, trailing bytes.
    let (prefix_end, tail_start) = match (rebuild, ours) {
        (true, Some(o)) => (o.offset, o.offset + o.filesz),
        _ if building => (content_end, content_end),
        _ => (data.len() as u64, data.len() as u64),
    };
    if slice(data, 0, prefix_end).is_none() || tail_start > data.len() as u64 {
        return Err(EditError::truncated("file", 0, prefix_end, data));
    }
    let (seg_off, seg) = if building {
        (seg_off, seg)
    } else {
        (prefix_end, Vec::new())
    };
    let mut out = Image {
        prefix_end,
        seg_off,
        seg,
        tail_start,
        original_len: data.len() as u64,
        patches: Vec::new(),
    };

    // EI_OSABI.
    out.put(7, &[state.os_abi], "ELF identification")?;

    // The dynamic table, where it now lives.
    if state.dynamic_changed || move_dynamic || new_dynstr.is_some() || state.verneed_changed {
        let (at, vaddr, slots) = match moves
            .iter()
            .find(|m| Some(m.old_off) == dyn_home.map(|h| h.0) && move_dynamic)
        {
            Some(m) => (m.new_off, m.new_vaddr, dyn_need / c.dynsize()),
            None => (
                dyn_home.map_or(0, |h| h.0),
                dyn_home.map_or(0, |h| h.1),
                dyn_cap / c.dynsize(),
            ),
        };
        let entries = keep_rld_map_targets(model, &state.entries, vaddr);
        let mut bytes = Vec::new();
        for (t, v) in &entries {
            bytes.extend(c.dyn_entry(*t, *v)?);
        }
        for _ in state.entries.len() as u64..slots {
            bytes.extend(c.dyn_entry(0, 0)?);
        }
        out.put(at, &bytes, "dynamic table")?;
    }
    // .dynstr at its original place: its (possibly edited) prefix, even when a grown copy moved
    // away, so that a scrubbed old run path is gone from both.
    if let Some(d) = &state.dynstr {
        if state.dynstr_changed && (!move_dynstr || !in_ours(d.offset)) {
            let n = usize::try_from(d.capacity).unwrap_or(0).min(d.bytes.len());
            out.put(d.offset, d.bytes.get(..n).unwrap_or_default(), ".dynstr")?;
        }
    }
    // The interpreter in place, padded with NULs to its old size.
    if let (Some(i), Some(p), false) = (&state.interp, pt_interp, move_interp) {
        if state.interp_changed {
            let mut bytes = i.clone();
            bytes.resize(usize::try_from(p.filesz).unwrap_or(0), 0);
            out.put(p.offset, &bytes, "interpreter")?;
        }
    }
    let translate = |off: u64| -> u64 {
        moves
            .iter()
            .filter(|m| !m.resized)
            .find(|m| off >= m.old_off && off < m.old_off.saturating_add(m.old_len))
            .map_or(off, |m| (off - m.old_off).saturating_add(m.new_off))
    };
    if state.verneed_changed {
        write_verneeds(model, state, &mut out, &translate)?;
    }
    if !state.removed_versions.is_empty() {
        write_versyms(model, state, &mut out, &translate)?;
    }

    // Program headers.
    let remap = |off: u64, vaddr: u64, len: u64| -> Option<(u64, u64, u64)> {
        for m in &moves {
            if off == m.old_off && (m.resized || len == m.old_len) {
                return Some((m.new_off, m.new_vaddr, m.new_len));
            }
            if off >= m.old_off && off < m.old_off.saturating_add(m.old_len) {
                return Some((
                    off - m.old_off + m.new_off,
                    vaddr.wrapping_sub(m.old_vaddr).wrapping_add(m.new_vaddr),
                    len,
                ));
            }
        }
        None
    };
    let mut phdrs: Vec<Segment> = Vec::new();
    let last_load = model.phdrs.iter().rposition(|p| p.p_type == elf::PT_LOAD.0);
    let seg_len = out.seg.len() as u64;
    let mut nulls_left = reused_nulls;
    for (i, p) in model.phdrs.iter().enumerate() {
        let mut p = *p;
        match elf::ProgramType(p.p_type) {
            elf::PT_NULL if nulls_left > 0 => {
                // Its slot goes to a new header.
                nulls_left -= 1;
                continue;
            }
            elf::PT_LOAD => {
                if rebuild && ours.is_some_and(|o| o.index == i) {
                    p.filesz = seg_len;
                    p.memsz = seg_len;
                }
            }
            elf::PT_PHDR => {
                if let Some(m) = moves.iter().find(|m| m.old_off == model.phoff && move_pht) {
                    p.offset = m.new_off;
                    p.vaddr = m.new_vaddr;
                    p.paddr = m.new_vaddr;
                }
                p.filesz = pht_count * c.phentsize();
                p.memsz = p.filesz;
            }
            elf::PT_GNU_STACK => {
                if let Some(f) = state.gnu_stack_flags {
                    p.flags = f;
                }
            }
            _ => {
                if let Some((o, v, l)) = remap(p.offset, p.vaddr, p.filesz) {
                    let delta_p = p.paddr.wrapping_sub(p.vaddr);
                    p.offset = o;
                    p.vaddr = v;
                    p.paddr = v.wrapping_add(delta_p);
                    if p.memsz == p.filesz {
                        p.memsz = l;
                    }
                    p.filesz = l;
                }
            }
        }
        phdrs.push(p);
        if new_load && Some(i) == last_load {
            phdrs.push(Segment {
                p_type: elf::PT_LOAD.0,
                flags: elf::PF_R.0 | elf::PF_W.0,
                offset: seg_off,
                vaddr: seg_vaddr,
                paddr: seg_vaddr,
                filesz: seg_len,
                memsz: seg_len,
                align: seg_align,
            });
        }
    }
    if state.add_gnu_stack {
        phdrs.push(Segment {
            p_type: elf::PT_GNU_STACK.0,
            flags: state.gnu_stack_flags.unwrap_or(elf::PF_R.0 | elf::PF_W.0),
            offset: 0,
            vaddr: 0,
            paddr: 0,
            filesz: 0,
            memsz: 0,
            align: 16,
        });
    }
    if phdrs.len() as u64 != pht_count {
        return Err(EditError::invariant(format!(
            "internal: {} program headers laid out for {pht_count}",
            phdrs.len()
        )));
    }
    let mut pht_bytes = Vec::new();
    for p in &phdrs {
        pht_bytes.extend(c.phdr(p)?);
    }
    out.put(new_phoff, &pht_bytes, "program header table")?;
    let hf = model.header_fields();
    if c.is64 {
        let raw = object::U64::new(c.endian, new_phoff);
        out.put(hf.phoff_at, object::bytes_of(&raw), "ELF header")?;
    } else {
        let v = u32::try_from(new_phoff)
            .map_err(|_| EditError::unsupported("program header table", "offset above 4 GiB"))?;
        out.put(hf.phoff_at, &c.u32_bytes(v), "ELF header")?;
    }
    let n = u16::try_from(pht_count)
        .map_err(|_| EditError::unsupported("program header table", "too many entries"))?;
    out.put(hf.phnum_at, &c.u16_bytes(n), "ELF header")?;

    // Section headers follow what they describe.
    if !model.shdrs.is_empty() {
        let mut bytes = Vec::new();
        let verneed_off = state.verneeds.first().map(|v| v.offset);
        for s in &model.shdrs {
            let mut s = *s;
            if s.flags & elf::SHF_ALLOC.0 != 0 && s.sh_type != elf::SHT_NOBITS.0 {
                if let Some((o, v, l)) = remap(s.offset, s.addr, s.size) {
                    s.offset = o;
                    s.addr = v;
                    s.size = l;
                }
            }
            if state.verneed_changed
                && s.sh_type == elf::SHT_GNU_VERNEED.0
                && Some(s.offset) == verneed_off
            {
                s.info = u32::try_from(kept_verneeds).unwrap_or(0);
            }
            bytes.extend(c.shdr(&s)?);
        }
        out.put(model.shoff, &bytes, "section header table")?;
    }
    Ok(out)
}

/// Where each DT_MIPS_RLD_MAP_REL entry of a MIPS dynamic table at `vaddr` points: the address
/// of the entry itself plus its value. glibc (`sysdeps/mips/dl-debug.h`, `elf_setup_debug_entry`)
/// stores the `r_debug` pointer at `(char *) l_info[DT_MIPS_RLD_MAP_REL] + d_val`, where `l_info`
/// points at the entry in the loaded dynamic table, so the value is relative to the entry's own
/// address. An empty list on other machines, where the tag means something else.
pub(crate) fn rld_map_targets(model: &Model<'_>, entries: &[(i64, u64)], vaddr: u64) -> Vec<u64> {
    if !model.is_mips() {
        return Vec::new();
    }
    let c = model.codec;
    let mask = if c.is64 { u64::MAX } else { 0xffff_ffff };
    entries
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t == elf::DT_MIPS_RLD_MAP_REL.0)
        .map(|(i, (_, v))| {
            vaddr
                .wrapping_add((i as u64).wrapping_mul(c.dynsize()))
                .wrapping_add(*v)
                & mask
        })
        .collect()
}

/// The dynamic entries to write at `vaddr`, with every DT_MIPS_RLD_MAP_REL value recomputed so
/// that it still reaches the word it reached in the original file: the entry moves when the
/// table moves and when entries are added or removed before it (patchelf does the same in
/// `rewriteHeaders`, from the `.rld_map` section's address; this works without section headers).
fn keep_rld_map_targets(model: &Model<'_>, entries: &[(i64, u64)], vaddr: u64) -> Vec<(i64, u64)> {
    let Some(d) = model.dynamic.as_ref() else {
        return entries.to_vec();
    };
    let mut targets = rld_map_targets(model, &d.entries, d.vaddr).into_iter();
    let c = model.codec;
    let mask = if c.is64 { u64::MAX } else { 0xffff_ffff };
    let mut out = entries.to_vec();
    for (i, e) in out.iter_mut().enumerate() {
        if !model.is_mips() || e.0 != elf::DT_MIPS_RLD_MAP_REL.0 {
            continue;
        }
        let Some(target) = targets.next() else {
            break;
        };
        let at = vaddr.wrapping_add((i as u64).wrapping_mul(c.dynsize()));
        e.1 = target.wrapping_sub(at) & mask;
    }
    out
}

/// Rebuilds `.dynstr` as its original bytes plus only the appended strings still referenced.
fn compact_dynstr(state: &mut State, orig_len: u64) {
    let Some(d) = state.dynstr.as_ref() else {
        return;
    };
    if orig_len == 0 || orig_len > d.bytes.len() as u64 {
        return;
    }
    if state
        .fixed_refs
        .as_ref()
        .is_none_or(|r| r.iter().any(|&x| u64::from(x) >= orig_len))
    {
        return;
    }
    let mut bytes = d
        .bytes
        .get(..usize::try_from(orig_len).unwrap_or(0))
        .unwrap_or_default()
        .to_vec();
    let old = d.bytes.clone();
    let mut relocate = |off: u64| -> u64 {
        if off < orig_len {
            return off;
        }
        let s: Vec<u8> = old
            .get(usize::try_from(off).unwrap_or(usize::MAX)..)
            .and_then(|r| r.split(|&b| b == 0).next())
            .unwrap_or_default()
            .to_vec();
        match find_string(&bytes, &s) {
            Some(p) => p,
            None => {
                let p = bytes.len() as u64;
                bytes.extend_from_slice(&s);
                bytes.push(0);
                p
            }
        }
    };
    for e in &mut state.entries {
        if is_string_tag(e.0) {
            e.1 = relocate(e.1);
        }
    }
    let mut verneed_changed = false;
    for v in &mut state.verneeds {
        let new = relocate(u64::from(v.file));
        if new != u64::from(v.file) {
            v.file = u32::try_from(new).unwrap_or(v.file);
            verneed_changed = true;
        }
    }
    state.verneed_changed |= verneed_changed;
    if let Some(d) = state.dynstr.as_mut() {
        d.bytes = bytes;
    }
    state.dynstr_changed = true;
}

/// Rewrites the `.gnu.version_r` chain slot by slot, keeping only the requirements not removed.
fn write_verneeds(
    model: &Model<'_>,
    state: &State,
    out: &mut Image,
    translate: &dyn Fn(u64) -> u64,
) -> Result<(), EditError> {
    let c = model.codec;
    let slots: Vec<u64> = state.verneeds.iter().map(|v| v.offset).collect();
    let kept: Vec<_> = state.verneeds.iter().filter(|v| !v.removed).collect();
    for (i, v) in kept.iter().enumerate() {
        let slot = *slots
            .get(i)
            .ok_or_else(|| EditError::invariant("verneed slots"))?;
        let aux = v
            .aux_at
            .checked_sub(slot)
            .and_then(|a| u32::try_from(a).ok())
            .ok_or_else(|| {
                EditError::unsupported(
                    ".gnu.version_r",
                    format!("record at {slot:#x} cannot reach its aux entries"),
                )
            })?;
        let next = match slots.get(i + 1) {
            Some(n) if i + 1 < kept.len() => n
                .checked_sub(slot)
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| {
                    EditError::unsupported(".gnu.version_r", "records are not in file order")
                })?,
            _ => 0,
        };
        let mut rec = Vec::with_capacity(16);
        rec.extend(c.u16_bytes(v.version));
        rec.extend(c.u16_bytes(v.cnt));
        rec.extend(c.u32_bytes(v.file));
        rec.extend(c.u32_bytes(aux));
        rec.extend(c.u32_bytes(next));
        out.put(translate(slot), &rec, ".gnu.version_r record")?;
    }
    Ok(())
}

fn write_versyms(
    model: &Model<'_>,
    state: &State,
    out: &mut Image,
    translate: &dyn Fn(u64) -> u64,
) -> Result<(), EditError> {
    let c = model.codec;
    let (Some(at), Some(count)) = (
        model
            .dyn_value(elf::DT_VERSYM.0)
            .and_then(|a| model.vaddr_to_offset(a)),
        state.dynsym_count,
    ) else {
        return Ok(());
    };
    for i in 0..count {
        let off = at + 2 * i;
        let v = c.read_u16(model.data, off, ".gnu.version entry")?;
        if v & 0x7fff > 1 && state.removed_versions.contains(&(v & 0x7fff)) {
            out.put(translate(off), &c.u16_bytes(1), ".gnu.version entry")?;
        }
    }
    Ok(())
}
