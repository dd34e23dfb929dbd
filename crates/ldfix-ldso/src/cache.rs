//! The glibc loader cache (`/etc/ld.so.cache`), read from its binary format.
//!
//! Layout and lookup follow glibc `sysdeps/generic/dl-cache.h` and `elf/dl-cache.c`
//! (`_dl_load_cache_lookup`, `search_cache`, `_dl_cache_libcmp`). Three layouts exist: the old
//! libc5 format (`ld.so-1.7.0`), the old format with the new one appended (glibc 2.2 – 2.31
//! default), and the new format alone (`glibc-ld.so.cache1.1`, glibc ≥ 2.32 default), optionally
//! with an extension directory naming the `glibc-hwcaps` subdirectories of entries.

use std::cmp::Ordering;
use std::path::Path;

use crate::error::LdsoError;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `sizeof (struct cache_file)`: 11 magic bytes padded to 12, then `nlibs`.
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
/// `sizeof (struct cache_file_new)`.
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
/// `cache_extension_magic` = (uint32_t) -358342284.
const EXTENSION_MAGIC: u32 = 0xEAA4_2174;
const TAG_GLIBC_HWCAPS: u32 = 1;
/// `DL_CACHE_HWCAP_EXTENSION`: the low 32 bits index the glibc-hwcaps subdirectory list.
const HWCAP_EXTENSION: u64 = 1 << 62;
/// `DL_CACHE_HWCAP_ISA_LEVEL_MASK`, applied to the upper 32 bits.
const ISA_LEVEL_MASK: u64 = (1 << 10) - 1;
/// `_DL_HWCAP_TLS_MASK`.
const HWCAP_TLS: u64 = 1 << 63;

/// Which layout the file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheFormat {
    /// `ld.so-1.7.0` only.
    Old,
    /// `ld.so-1.7.0` followed by `glibc-ld.so.cache1.1` (the loader uses the new part).
    Compat,
    /// `glibc-ld.so.cache1.1` only.
    New,
}

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// `FLAG_ELF_LIBC6` plus the architecture flag, e.g. 0x303 for x86-64.
    pub flags: i32,
    /// The library name (usually a SONAME).
    pub key: Vec<u8>,
    /// The path the loader opens.
    pub value: Vec<u8>,
    /// The hwcap word (0 in the old format).
    pub hwcap: u64,
}

impl CacheEntry {
    /// `dl_cache_hwcap_extension`: whether the entry lies in a `glibc-hwcaps` subdirectory.
    fn is_named_hwcap(&self) -> bool {
        (self.hwcap >> 32) & !ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32
    }
}

/// A parsed ld.so.cache.
#[derive(Debug, Clone)]
pub struct LdCache {
    /// The layout.
    pub format: CacheFormat,
    /// Entries in file order (sorted the way ldconfig sorts them).
    pub entries: Vec<CacheEntry>,
    /// `glibc-hwcaps` subdirectory names of the extension section, by index.
    pub hwcaps: Vec<Vec<u8>>,
    /// Whether the file declares big-endian data.
    pub big_endian: bool,
}

/// What the running loader knows about the CPU when it searches the cache.
#[derive(Debug, Clone, Default)]
pub struct CacheQuery {
    /// The `_DL_CACHE_DEFAULT_ID` of the loader's architecture (0x303 on x86-64).
    pub default_id: i32,
    /// Whether flags == 1 (`FLAG_ELF`) also matches (the generic `_dl_cache_check_flags`).
    pub accept_plain_elf: bool,
    /// Supported `glibc-hwcaps` subdirectories, most preferred first.
    pub hwcaps: Vec<Vec<u8>>,
    /// x86 ISA level bits the CPU supports (1 baseline, 2 v2, 4 v3, 8 v4); 0 = no check.
    pub isa_level: u32,
    /// `GLRO(dl_hwcap) & hwcap_mask` for legacy hwcap entries.
    pub legacy_hwcap: u64,
}

impl CacheQuery {
    fn flags_ok(&self, flags: i32) -> bool {
        flags == self.default_id || (self.accept_plain_elf && flags == 1)
    }

    /// Priority of a named hwcaps entry: 0 unusable, lower is better (`glibc_hwcaps_priority`).
    fn priority(&self, name: &[u8]) -> u32 {
        self.hwcaps.iter().position(|h| h == name).map_or(0, |i| {
            u32::try_from(i).map_or(u32::MAX, |i| i.saturating_add(1))
        })
    }
}

struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn u32(&self, offset: usize) -> Option<u32> {
        let bytes: [u8; 4] = self
            .data
            .get(offset..offset.checked_add(4)?)?
            .try_into()
            .ok()?;
        Some(if self.big {
            u32::from_be_bytes(bytes)
        } else {
            u32::from_le_bytes(bytes)
        })
    }

    fn u64(&self, offset: usize) -> Option<u64> {
        let bytes: [u8; 8] = self
            .data
            .get(offset..offset.checked_add(8)?)?
            .try_into()
            .ok()?;
        Some(if self.big {
            u64::from_be_bytes(bytes)
        } else {
            u64::from_le_bytes(bytes)
        })
    }

    /// A NUL-terminated string at `offset`.
    fn cstr(&self, offset: usize) -> Option<Vec<u8>> {
        let rest = self.data.get(offset..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some(rest.get(..end)?.to_vec())
    }
}

impl LdCache {
    /// Reads and parses a cache file; the error names the file and the offset.
    pub fn read(fs: &dyn crate::Fs, path: &Path) -> Result<Self, LdsoError> {
        let data = fs.read(path).map_err(|source| LdsoError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&data, false).map_err(|(offset, what)| LdsoError::Cache {
            path: path.to_owned(),
            offset,
            what,
        })
    }

    /// Parses cache bytes. `big_endian` is the loader's byte order, used when the file does not
    /// say (old format, or the new format's flags left unset).
    pub fn parse(data: &[u8], big_endian: bool) -> Result<Self, (usize, &'static str)> {
        if data.starts_with(NEW_MAGIC) {
            return Self::parse_new(data, 0, big_endian, CacheFormat::New);
        }
        if !data.starts_with(OLD_MAGIC) {
            return Err((
                0,
                "neither the `ld.so-1.7.0` nor the `glibc-ld.so.cache1.1` magic",
            ));
        }
        let r = Reader {
            data,
            big: big_endian,
        };
        let nlibs = r.u32(12).ok_or((12, "the entry count"))? as usize;
        let table_end = nlibs
            .checked_mul(OLD_ENTRY)
            .and_then(|n| n.checked_add(OLD_HEADER))
            .filter(|&end| end <= data.len())
            .ok_or((12, "an entry count that fits the file"))?;
        // ALIGN_CACHE: struct cache_file_new is 8-byte aligned.
        let new_offset = table_end.div_ceil(8) * 8;
        if data
            .get(new_offset..)
            .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
        {
            return Self::parse_new(data, new_offset, big_endian, CacheFormat::Compat);
        }
        // Old format: string offsets count from the end of the entry table.
        let mut entries = Vec::with_capacity(nlibs);
        for i in 0..nlibs {
            let at = OLD_HEADER + i * OLD_ENTRY;
            let field = |n: usize| r.u32(at + n).ok_or((at + n, "an entry field"));
            let flags = field(0)? as i32;
            let key = field(4)? as usize;
            let value = field(8)? as usize;
            let string = |off: usize| {
                table_end
                    .checked_add(off)
                    .and_then(|o| r.cstr(o))
                    .ok_or((at, "a string offset inside the file"))
            };
            entries.push(CacheEntry {
                flags,
                key: string(key)?,
                value: string(value)?,
                hwcap: 0,
            });
        }
        Ok(Self {
            format: CacheFormat::Old,
            entries,
            hwcaps: Vec::new(),
            big_endian,
        })
    }

    fn parse_new(
        data: &[u8],
        base: usize,
        big_endian: bool,
        format: CacheFormat,
    ) -> Result<Self, (usize, &'static str)> {
        let header = data.get(base..).unwrap_or_default();
        if header.len() < NEW_HEADER {
            return Err((base, "a complete glibc-ld.so.cache1.1 header"));
        }
        // cache_file_new_flags_endian_*: 0 unset, 1 invalid, 2 little, 3 big.
        let big = match header.get(28).map(|f| f & 3) {
            Some(2) => false,
            Some(3) => true,
            Some(1) => return Err((base + 28, "a cache not marked invalid by ldconfig")),
            _ => big_endian,
        };
        // Strings and the extension offset count from the start of the new header.
        let r = Reader { data: header, big };
        let nlibs = r.u32(20).ok_or((base + 20, "the entry count"))? as usize;
        let fits = (header.len() - NEW_HEADER) / NEW_ENTRY >= nlibs;
        if !fits {
            return Err((base + 20, "an entry count that fits the file"));
        }
        let mut entries = Vec::with_capacity(nlibs);
        for i in 0..nlibs {
            let at = NEW_HEADER + i * NEW_ENTRY;
            let field = |n: usize| r.u32(at + n).ok_or((base + at + n, "an entry field"));
            let string = |off: u32| {
                r.cstr(off as usize)
                    .ok_or((base + at, "a string offset inside the file"))
            };
            entries.push(CacheEntry {
                flags: field(0)? as i32,
                key: string(field(4)?)?,
                value: string(field(8)?)?,
                hwcap: r.u64(at + 16).ok_or((base + at + 16, "the hwcap field"))?,
            });
        }
        // The extension directory, its sections and the hwcaps name offsets count from the
        // start of the file (`cache_extension_load`, `glibc_hwcaps_compare` use `cache`).
        let offset = r.u32(32).ok_or((base + 32, "the extension offset"))? as usize;
        let hwcaps = Self::parse_extension(&Reader { data, big }, offset, base)?;
        Ok(Self {
            format,
            entries,
            hwcaps,
            big_endian: big,
        })
    }

    /// The extension directory (`cache_extension_load`): only the glibc-hwcaps section matters.
    fn parse_extension(
        r: &Reader<'_>,
        offset: usize,
        base: usize,
    ) -> Result<Vec<Vec<u8>>, (usize, &'static str)> {
        if offset == 0 {
            return Ok(Vec::new());
        }
        let bad = (base + 32, "a valid extension directory");
        if !offset.is_multiple_of(4) || r.u32(offset) != Some(EXTENSION_MAGIC) {
            return Err(bad);
        }
        let count = r.u32(offset + 4).ok_or(bad)? as usize;
        let mut hwcaps = Vec::new();
        for i in 0..count {
            let at = offset + 8 + i * 16;
            let tag = r.u32(at).ok_or(bad)?;
            let data_offset = r.u32(at + 8).ok_or(bad)? as usize;
            let size = r.u32(at + 12).ok_or(bad)? as usize;
            if data_offset
                .checked_add(size)
                .is_none_or(|end| end > r.data.len())
            {
                return Err((at, "extension data inside the file"));
            }
            // cache_extension_verify drops a malformed hwcaps section rather than the cache.
            if tag != TAG_GLIBC_HWCAPS
                || size == 0
                || !size.is_multiple_of(4)
                || !data_offset.is_multiple_of(4)
            {
                continue;
            }
            hwcaps.clear();
            for j in 0..size / 4 {
                let string = r.u32(data_offset + 4 * j).ok_or(bad)?;
                hwcaps.push(r.cstr(string as usize).unwrap_or_default());
            }
        }
        Ok(hwcaps)
    }

    /// The path the loader would take from the cache for `name`, exactly as `search_cache` picks
    /// it: binary search by `_dl_cache_libcmp`, then among equal keys the best glibc-hwcaps entry
    /// (they come first), else the first entry whose flags and legacy hwcaps fit.
    pub fn lookup(&self, name: &[u8], query: &CacheQuery) -> Option<&[u8]> {
        let entries = &self.entries;
        let (mut left, mut right) = (0isize, entries.len() as isize - 1);
        while left <= right {
            let middle = (left + right) / 2;
            let entry = entries.get(middle as usize)?;
            match cache_libcmp(name, &entry.key) {
                Ordering::Equal => return self.pick(name, middle as usize, right as usize, query),
                // ldconfig sorts the table in descending order.
                Ordering::Less => left = middle + 1,
                Ordering::Greater => right = middle - 1,
            }
        }
        None
    }

    fn pick(&self, name: &[u8], found: usize, right: usize, query: &CacheQuery) -> Option<&[u8]> {
        let entries = &self.entries;
        let mut start = found;
        while start > 0
            && entries
                .get(start - 1)
                .is_some_and(|e| cache_libcmp(name, &e.key).is_eq())
        {
            start -= 1;
        }
        let mut best: Option<&CacheEntry> = None;
        let mut best_priority = 0;
        for index in start..=right {
            let entry = entries.get(index)?;
            if index > found && !cache_libcmp(name, &entry.key).is_eq() {
                break;
            }
            if !query.flags_ok(entry.flags) {
                continue;
            }
            let named = self.format != CacheFormat::Old && entry.is_named_hwcap();
            if self.format != CacheFormat::Old {
                if named {
                    let needed = ((entry.hwcap >> 32) & ISA_LEVEL_MASK) as u32;
                    if query.isa_level != 0 && query.isa_level & needed != needed {
                        continue;
                    }
                }
                if !named && best.is_some() {
                    break;
                }
                let exclude = !(query.legacy_hwcap | platform_mask() | HWCAP_TLS);
                if !named && entry.hwcap & exclude != 0 {
                    continue;
                }
                if named {
                    let index = (entry.hwcap & 0xffff_ffff) as usize;
                    let priority = self.hwcaps.get(index).map_or(0, |h| query.priority(h));
                    if priority == 0 || (best.is_some() && priority >= best_priority) {
                        continue;
                    }
                    best_priority = priority;
                }
            }
            best = Some(entry);
            if !named && entry.flags == query.default_id {
                break;
            }
        }
        best.map(|e| e.value.as_slice())
    }
}

/// `_DL_HWCAP_PLATFORM` bits (x86: four platforms from bit 48). Legacy entries tagged with a
/// platform are accepted here; only Intel `haswell`/`xeon_phi` directories carry them.
const fn platform_mask() -> u64 {
    0xf << 48
}

/// `_dl_cache_libcmp`: compares runs of digits numerically, and sorts digits after other bytes.
pub fn cache_libcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0, 0);
    loop {
        let (Some(&ca), cb) = (a.get(i), b.get(j).copied()) else {
            return if j < b.len() {
                Ordering::Less
            } else {
                Ordering::Equal
            };
        };
        let cb = cb.unwrap_or(0);
        if ca.is_ascii_digit() {
            if !cb.is_ascii_digit() {
                return Ordering::Greater;
            }
            let (mut va, mut vb) = (0u64, 0u64);
            while let Some(d) = a.get(i).filter(|d| d.is_ascii_digit()) {
                va = va.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                i += 1;
            }
            while let Some(d) = b.get(j).filter(|d| d.is_ascii_digit()) {
                vb = vb.saturating_mul(10).saturating_add(u64::from(d - b'0'));
                j += 1;
            }
            if va != vb {
                return va.cmp(&vb);
            }
        } else if cb.is_ascii_digit() {
            return Ordering::Less;
        } else if ca != cb {
            return ca.cmp(&cb);
        } else {
            i += 1;
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libcmp_is_numeric_and_digits_sort_high() {
        assert_eq!(
            cache_libcmp(b"libfoo.so.10", b"libfoo.so.9"),
            Ordering::Greater
        );
        assert_eq!(
            cache_libcmp(b"libfoo.so.01", b"libfoo.so.1"),
            Ordering::Equal
        );
        assert_eq!(cache_libcmp(b"libfoo1", b"libfoo.so"), Ordering::Greater);
        assert_eq!(cache_libcmp(b"libz.so", b"libz.so.1"), Ordering::Less);
        assert_eq!(cache_libcmp(b"libz.so.1", b"libz.so"), Ordering::Greater);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(LdCache::parse(b"", false).is_err());
        assert!(LdCache::parse(b"glibc-ld.so.cache1.1\xff\xff\xff\xff", false).is_err());
        let mut data = b"glibc-ld.so.cache1.1".to_vec();
        data.resize(48, 0);
        data[20] = 200;
        assert!(LdCache::parse(&data, false).is_err());
        let mut old = b"ld.so-1.7.0\0".to_vec();
        old.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(LdCache::parse(&old, false).is_err());
    }
}
