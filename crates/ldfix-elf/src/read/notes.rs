//! ELF notes: the GNU build-id and the FDO `.note.dlopen` metadata.
//!
//! Notes are read from PT_NOTE segments (what survives when section headers are stripped) and
//! from SHT_NOTE sections that no PT_NOTE covers. A damaged note is a warning, not an error: the
//! loader never reads notes.

use object::elf;
use object::read::elf::{FileHeader, SectionHeader};
use object::{Endianness, ReadRef};

use super::{DlopenEntry, Segment};

/// `n_type` of the dlopen metadata note, owner "FDO" (systemd's ELF_DLOPEN_METADATA spec).
const NT_FDO_DLOPEN_METADATA: u32 = 0x407c_0c0a;

#[derive(Default)]
pub(crate) struct Notes {
    pub(crate) build_id: Option<Vec<u8>>,
    pub(crate) dlopen: Vec<DlopenEntry>,
}

pub(crate) fn read<Elf: FileHeader<Endian = Endianness>>(
    segments: &[Segment],
    sections: &[Elf::SectionHeader],
    endian: Endianness,
    data: &[u8],
    warnings: &mut Vec<String>,
) -> Notes {
    let mut notes = Notes::default();
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for seg in segments.iter().filter(|s| s.p_type == elf::PT_NOTE.0) {
        read_area(
            seg.offset, seg.filesz, seg.align, endian, data, &mut notes, warnings,
        );
        seen.push((seg.offset, seg.offset.saturating_add(seg.filesz)));
    }
    for section in sections
        .iter()
        .filter(|s| s.sh_type(endian) == elf::SHT_NOTE)
    {
        let offset: u64 = section.sh_offset(endian).into();
        let size: u64 = section.sh_size(endian).into();
        if seen
            .iter()
            .any(|&(start, end)| offset >= start && offset < end)
        {
            continue;
        }
        let align: u64 = section.sh_addralign(endian).into();
        read_area(offset, size, align, endian, data, &mut notes, warnings);
    }
    notes
}

fn read_area(
    offset: u64,
    size: u64,
    align: u64,
    endian: Endianness,
    data: &[u8],
    notes: &mut Notes,
    warnings: &mut Vec<String>,
) {
    let Ok(area) = data.read_bytes_at(offset, size) else {
        warnings.push(format!(
            "note area at offset {offset:#x} ({size} bytes) extends past the end of the file"
        ));
        return;
    };
    // gABI: 4-byte alignment; 8 for notes in an 8-aligned segment (GNU property notes).
    let align: usize = if align == 8 { 8 } else { 4 };
    let mut pos = 0usize;
    while pos < area.len() {
        let Some((name, desc, n_type, next)) = note_at(area, pos, align, endian) else {
            warnings.push(format!(
                "note at offset {:#x} is malformed; the rest of its area is ignored",
                offset.saturating_add(pos as u64)
            ));
            return;
        };
        if name == b"GNU" && n_type == elf::NT_GNU_BUILD_ID.0 && notes.build_id.is_none() {
            notes.build_id = Some(desc.to_vec());
        } else if name == b"FDO" && n_type == NT_FDO_DLOPEN_METADATA {
            match parse_dlopen(desc) {
                Some(entries) => notes.dlopen.extend(entries),
                None => warnings.push(format!(
                    "dlopen note at offset {:#x} is not the expected JSON array",
                    offset.saturating_add(pos as u64)
                )),
            }
        }
        pos = next;
    }
}

/// One note at `pos`: (name without NUL, descriptor, type, offset of the next note).
fn note_at(
    area: &[u8],
    pos: usize,
    align: usize,
    endian: Endianness,
) -> Option<(&[u8], &[u8], u32, usize)> {
    let word = |at: usize| -> Option<u32> {
        let bytes: [u8; 4] = area.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match endian {
            Endianness::Little => u32::from_le_bytes(bytes),
            Endianness::Big => u32::from_be_bytes(bytes),
        })
    };
    let namesz = usize::try_from(word(pos)?).ok()?;
    let descsz = usize::try_from(word(pos.checked_add(4)?)?).ok()?;
    let n_type = word(pos.checked_add(8)?)?;
    let name_start = pos.checked_add(12)?;
    let name = area.get(name_start..name_start.checked_add(namesz)?)?;
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    let desc_start = round_up(name_start.checked_add(namesz)?, align)?;
    let desc = area.get(desc_start..desc_start.checked_add(descsz)?)?;
    let next = round_up(desc_start.checked_add(descsz)?, align)?;
    Some((name, desc, n_type, next.max(pos + 1)))
}

fn round_up(value: usize, align: usize) -> Option<usize> {
    Some(value.checked_add(align - 1)? / align * align)
}

/// The descriptor is a NUL-padded JSON array of objects with `feature`, `description`,
/// `priority` and `soname` (an array of alternatives).
fn parse_dlopen(desc: &[u8]) -> Option<Vec<DlopenEntry>> {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    let value: serde_json::Value = serde_json::from_slice(desc.get(..end)?).ok()?;
    let text = |object: &serde_json::Map<String, serde_json::Value>, key: &str| {
        object.get(key).and_then(|v| v.as_str()).map(str::to_owned)
    };
    value
        .as_array()?
        .iter()
        .map(|item| {
            let object = item.as_object()?;
            let sonames = match object.get("soname")? {
                serde_json::Value::Array(names) => names
                    .iter()
                    .map(|n| n.as_str().map(|s| s.as_bytes().to_vec()))
                    .collect::<Option<Vec<_>>>()?,
                serde_json::Value::String(name) => vec![name.as_bytes().to_vec()],
                _ => return None,
            };
            Some(DlopenEntry {
                feature: text(object, "feature"),
                description: text(object, "description"),
                priority: text(object, "priority"),
                sonames,
            })
        })
        .collect()
}
