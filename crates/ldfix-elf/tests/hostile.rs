//! Truncated, malformed and hostile inputs: never a panic, never an allocation sized by an
//! unchecked field, and an error that names the structure and its offset (and, through
//! `parse_file`, the file).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code"
)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ldfix_elf::{parse, parse_file, ReadError};
use proptest::prelude::*;

const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";

/// A gcc-built PIE, made once per test binary.
fn hello() -> &'static [u8] {
    static HELLO_BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    HELLO_BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = common::gcc(
            dir.path(),
            "hello",
            HELLO,
            &[OsStr::new("-Wl,-rpath,/opt/lib")],
        );
        std::fs::read(path).unwrap()
    })
}

/// Small real files of other classes and byte orders.
fn cross_samples() -> Vec<(PathBuf, Vec<u8>)> {
    common::require_cross();
    [
        "/usr/mips-linux-gnu/lib/libanl.so.1",
        "/usr/powerpc64-linux-gnu/lib/libanl.so.1",
        "/usr/arm-linux-gnueabihf/lib/libanl.so.1",
        "/usr/s390x-linux-gnu/lib/libanl.so.1",
    ]
    .iter()
    .map(|p| (PathBuf::from(p), std::fs::read(p).unwrap()))
    .collect()
}

fn u16_at(data: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([data[at], data[at + 1]])
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

fn put_u64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn put_u16(data: &mut [u8], at: usize, value: u16) {
    data[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn truncated_what(error: &ReadError) -> (&'static str, u64) {
    match error {
        ReadError::Truncated { what, offset, .. } => (what, *offset),
        other => panic!("expected a truncation error, got {other:?}"),
    }
}

/// Every prefix of a real program either parses or names what is cut off and where.
#[test]
fn every_truncation_is_reported_with_structure_and_offset() {
    let data = hello();
    let phoff = u64_at(data, 0x20);
    let shoff = u64_at(data, 0x28);
    let phnum = u64::from(u16_at(data, 0x38));
    assert!(matches!(parse(&data[..3]), Err(ReadError::NotElf)));
    assert_eq!(
        truncated_what(&parse(&data[..10]).unwrap_err()),
        ("ELF identification", 0)
    );
    assert_eq!(
        truncated_what(&parse(&data[..40]).unwrap_err()),
        ("ELF header", 0)
    );
    let in_phdrs = (phoff + 56 * phnum - 1) as usize;
    assert_eq!(
        truncated_what(&parse(&data[..in_phdrs]).unwrap_err()),
        ("program header table", phoff)
    );
    assert_eq!(
        truncated_what(&parse(&data[..shoff as usize + 10]).unwrap_err()),
        ("section header table", shoff)
    );
    for len in 0..data.len() {
        match parse(&data[..len]) {
            Ok(_) => panic!("a {len}-byte prefix of a {}-byte file parsed", data.len()),
            Err(ReadError::NotElf) => assert!(len < 4),
            Err(error) => {
                let text = error.to_string();
                assert!(text.contains("offset 0x"), "{len}: {text}");
            }
        }
    }
}

/// The file name is part of the message a user sees.
#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.so");
    std::fs::write(&path, &hello()[..200]).unwrap();
    let error = parse_file(&path).unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(
        text.contains("program header table") || text.contains("section header table"),
        "{text}"
    );
    assert!(matches!(error.inner(), ReadError::Truncated { .. }));
}

fn dynamic_entry_offset(data: &[u8], tag: u64) -> usize {
    let info = parse(data).unwrap();
    let start = info.dynamic_offset.unwrap() as usize;
    (start..start + 16 * info.dynamic.len())
        .step_by(16)
        .find(|&at| u64_at(data, at) == tag)
        .unwrap_or_else(|| panic!("no dynamic tag {tag:#x}"))
}

/// A named edit of a file's bytes.
type Mutation = Box<dyn Fn(&mut Vec<u8>)>;

#[test]
fn malformed_headers_and_tables_are_named() {
    let data = hello();
    let cases: Vec<(&str, Mutation, &str, &str)> = vec![
        (
            "bad class",
            Box::new(|d| d[4] = 7),
            "ELF identification at offset 0x4",
            "unknown class",
        ),
        (
            "bad data",
            Box::new(|d| d[5] = 0),
            "ELF identification at offset 0x5",
            "data encoding",
        ),
        (
            "phentsize",
            Box::new(|d| put_u16(d, 0x36, 55)),
            "ELF header",
            "e_phentsize is 55",
        ),
        (
            "shentsize",
            Box::new(|d| put_u16(d, 0x3a, 1)),
            "ELF header",
            "e_shentsize is 1",
        ),
        (
            "phoff",
            Box::new(|d| put_u64(d, 0x20, u64::MAX - 8)),
            "program header table",
            "0xfffffffffffffff7",
        ),
        (
            "phnum",
            Box::new(|d| put_u16(d, 0x38, 0xfff0)),
            "program header table",
            "offset 0x40",
        ),
        (
            "shnum",
            Box::new(|d| put_u16(d, 0x3c, 0xff00)),
            "section header table",
            "offset 0x",
        ),
        (
            "strtab",
            Box::new(|d| {
                let at = dynamic_entry_offset(d, 5);
                put_u64(d, at + 8, 0x7fff_0000_0000);
            }),
            "dynamic segment",
            "DT_STRTAB address 0x7fff00000000 is not in",
        ),
        (
            "needed",
            Box::new(|d| {
                let at = dynamic_entry_offset(d, 1);
                put_u64(d, at + 8, 0xffff_ffff);
            }),
            "dynamic string table",
            "DT_NEEDED name at index 0xffffffff",
        ),
        (
            "verneed",
            Box::new(|d| {
                let at = dynamic_entry_offset(d, 0x6fff_fffe);
                put_u64(d, at + 8, 0x1234_5678_9abc);
            }),
            "dynamic segment",
            "DT_VERNEED address 0x123456789abc",
        ),
    ];
    for (name, mutate, what, detail) in cases {
        let mut bad = data.to_vec();
        mutate(&mut bad);
        let text = parse(&bad)
            .map(|_| String::from("parsed"))
            .unwrap_or_else(|e| e.to_string());
        assert!(
            text.contains(what) && text.contains(detail),
            "{name}: {text}"
        );
    }
}

/// A string table size that overruns its segment is clamped, with a warning, not an error:
/// the names the loader needs are still there.
#[test]
fn overlong_strsz_is_a_warning() {
    let data = hello();
    let mut bad = data.to_vec();
    let at = dynamic_entry_offset(data, 10); // DT_STRSZ
    put_u64(&mut bad, at + 8, 1 << 40);
    let info = parse(&bad).unwrap();
    assert_eq!(info.needed, parse(data).unwrap().needed);
    assert!(
        info.warnings.iter().any(|w| w.contains("DT_STRSZ")),
        "{:?}",
        info.warnings
    );
}

/// Counts from the file never size an allocation: a dynamic segment claiming 2^60 bytes, or
/// a version chain claiming 65535 entries per record, is an error or a short list, at once.
#[test]
fn huge_counts_are_bounded_by_the_data() {
    let data = hello();
    let info = parse(data).unwrap();
    let mut bad = data.to_vec();
    let phoff = u64_at(data, 0x20) as usize;
    let dyn_index = info.segments.iter().position(|s| s.p_type == 2).unwrap();
    put_u64(&mut bad, phoff + 56 * dyn_index + 0x20, 1 << 60);
    let error = parse(&bad).unwrap_err();
    assert_eq!(truncated_what(&error).0, "dynamic segment");

    // vn_cnt = 0xffff on every Verneed: reading stays within the segment.
    let mut bad = data.to_vec();
    let at = dynamic_entry_offset(data, 0x6fff_fffe);
    let verneed = u64_at(data, at + 8) as usize; // PIE: vaddr == offset in the first PT_LOAD
    put_u16(&mut bad, verneed + 2, 0xffff);
    let _ = parse(&bad);
}

/// `n` mutations (position, byte) and an optional cut, applied to real files of four classes.
fn mutations() -> impl Strategy<Value = (usize, Vec<(usize, u8)>, Option<usize>)> {
    let byte = prop_oneof![
        Just(0u8),
        Just(0xff),
        Just(0x7f),
        Just(0x80),
        Just(1),
        any::<u8>()
    ];
    // Half the mutations hit the headers, where every field matters.
    let position = prop_oneof![0usize..512, any::<usize>()];
    (
        0usize..5,
        proptest::collection::vec((position, byte), 1..8),
        proptest::option::of(any::<usize>()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated and truncated real files never panic.
    #[test]
    fn mutated_real_files_never_panic((which, edits, cut) in mutations()) {
        static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        let samples = SAMPLES.get_or_init(|| {
            let mut all = vec![hello().to_vec()];
            all.extend(cross_samples().into_iter().map(|(_, d)| d));
            all
        });
        let mut data = samples[which % samples.len()].clone();
        for (position, byte) in edits {
            let len = data.len();
            data[position % len] = byte;
        }
        if let Some(cut) = cut {
            data.truncate(cut % (data.len() + 1));
        }
        let _ = parse(&data);
        let _ = ldfix_elf::read::classify_interpreter(&data);
        let _ = ldfix_elf::read::parse_shebang(&data);
    }

    /// Random bytes behind a valid identification never panic either.
    #[test]
    fn random_bytes_never_panic(class in 1u8..=2, endian in 1u8..=2, rest in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut data = vec![0x7f, b'E', b'L', b'F', class, endian, 1, 0];
        data.extend(rest);
        let _ = parse(&data);
    }
}

#[test]
fn cross_samples_parse_cleanly() {
    for (path, data) in cross_samples() {
        let info = parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(info.warnings.is_empty());
        assert_eq!(
            info.soname.as_deref(),
            Some(&b"libanl.so.1"[..]),
            "{}",
            Path::new(&path).display()
        );
    }
}
