//! The read model against the real world: every ELF file of Debian's /usr (programs,
//! libraries, Python extension modules) and of the `libc6-<arch>-cross` packages, cross-checked
//! field by field against binutils' `readelf`, plus a check that the corpus covers every
//! (class, byte order, machine) combination the issue names.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldfix_elf::{parse_file, Class, ElfInfo, Endian, FileKind};
use object::elf;

/// What readelf says about one file.
#[derive(Debug, Default)]
struct Readelf {
    class: String,
    data: String,
    os_abi: String,
    file_type: String,
    machine: String,
    /// e_shoff, e_shentsize, e_shnum.
    section_headers: [u64; 3],
    interpreter: Option<String>,
    needed: Vec<String>,
    soname: Option<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    flags: Option<String>,
    flags_1: Option<String>,
    version_needs: Vec<(String, Vec<String>)>,
    version_defs: Vec<String>,
    build_id: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Other,
    Header,
    Dynamic,
    Needs,
    Defs,
}

/// Parses the output of `readelf -hldVnW` for one file.
fn parse_readelf(text: &str) -> Readelf {
    let mut out = Readelf::default();
    let mut part = Part::Other;
    for line in text.lines() {
        if line.starts_with("ELF Header:") {
            part = Part::Header;
        } else if line.starts_with("Dynamic section at offset") {
            part = Part::Dynamic;
        } else if line.starts_with("Version needs section") {
            part = Part::Needs;
        } else if line.starts_with("Version definition section") {
            part = Part::Defs;
        } else if line.starts_with("Program Headers:")
            || line.starts_with("Version symbols section")
            || line.starts_with("Displaying notes")
            || line.starts_with("There is no dynamic section")
        {
            part = Part::Other;
        }
        if let Some(interp) = line
            .trim()
            .strip_prefix("[Requesting program interpreter: ")
        {
            out.interpreter = Some(interp.trim_end_matches(']').to_owned());
        }
        if let Some(pos) = line.find("Build ID: ") {
            out.build_id = Some(line[pos + 10..].trim().to_owned());
        }
        match part {
            Part::Header => {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.trim().to_owned();
                match key.trim() {
                    "Class" => out.class = value,
                    "Data" => out.data = value,
                    "OS/ABI" => out.os_abi = value,
                    "Type" => out.file_type = value,
                    "Machine" => out.machine = value,
                    "Start of section headers" => out.section_headers[0] = number(&value),
                    "Size of section headers" => out.section_headers[1] = number(&value),
                    "Number of section headers" => out.section_headers[2] = number(&value),
                    _ => {}
                }
            }
            Part::Dynamic => {
                let Some(open) = line.find(" (") else {
                    continue;
                };
                let Some(close) = line[open..].find(')') else {
                    continue;
                };
                let tag = &line[open + 2..open + close];
                let value = line[open + close + 1..].trim();
                let bracketed = || {
                    let start = value.find('[').unwrap() + 1;
                    value[start..value.len() - 1].to_owned()
                };
                match tag {
                    "NEEDED" => out.needed.push(bracketed()),
                    "SONAME" => out.soname = Some(bracketed()),
                    "RPATH" => out.rpath = Some(bracketed()),
                    "RUNPATH" => out.runpath = Some(bracketed()),
                    "FLAGS" => out.flags = Some(value.to_owned()),
                    "FLAGS_1" => {
                        out.flags_1 = Some(value.trim_start_matches("Flags:").trim().to_owned())
                    }
                    _ => {}
                }
            }
            Part::Needs => {
                if let Some(pos) = line.find("File: ") {
                    let file = line[pos + 6..].split("  Cnt:").next().unwrap().to_owned();
                    out.version_needs.push((file, Vec::new()));
                } else if let Some(pos) = line.find("Name: ") {
                    let name = line[pos + 6..].split("  Flags:").next().unwrap().to_owned();
                    out.version_needs
                        .last_mut()
                        .expect("Name before File")
                        .1
                        .push(name);
                }
            }
            Part::Defs => {
                if line.contains("Rev: ") {
                    if let Some(pos) = line.find("Name: ") {
                        out.version_defs.push(line[pos + 6..].to_owned());
                    }
                }
            }
            Part::Other => {}
        }
    }
    out
}

/// The leading decimal number of a readelf value such as "119488 (bytes into file)".
fn number(value: &str) -> u64 {
    value.split_whitespace().next().unwrap().parse().unwrap()
}

/// readelf's name for each machine of the corpus.
fn readelf_machine(machine: u16) -> &'static str {
    match elf::Machine(machine) {
        elf::EM_X86_64 => "Advanced Micro Devices X86-64",
        elf::EM_386 => "Intel 80386",
        elf::EM_AARCH64 => "AArch64",
        elf::EM_ARM => "ARM",
        elf::EM_RISCV => "RISC-V",
        elf::EM_PPC64 => "PowerPC64",
        elf::EM_S390 => "IBM S/390",
        elf::EM_MIPS => "MIPS R3000",
        _ => panic!("machine {machine} is new in the corpus: add readelf's name for it"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every field readelf shows, compared. Returns the differences.
fn compare(path: &Path, ours: &ElfInfo, theirs: &Readelf) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, ours: String, theirs: String| {
        if ours != theirs {
            diffs.push(format!(
                "{}: {what}: ours {ours:?}, readelf {theirs:?}",
                path.display()
            ));
        }
    };
    check(
        "class",
        format!("{:?}", ours.class).to_uppercase(),
        theirs.class.clone(),
    );
    let endian = match ours.endian {
        Endian::Little => "2's complement, little endian",
        Endian::Big => "2's complement, big endian",
    };
    check("data", endian.to_owned(), theirs.data.clone());
    let os_abi = match ours.os_abi {
        0 => "UNIX - System V",
        3 => "UNIX - GNU",
        _ => "other",
    };
    check("os_abi", os_abi.to_owned(), theirs.os_abi.clone());
    check(
        "machine",
        readelf_machine(ours.machine).to_owned(),
        theirs.machine.clone(),
    );
    let e_type = match ours.e_type {
        1 => "REL",
        2 => "EXEC",
        3 => "DYN",
        4 => "CORE",
        _ => "other",
    };
    check(
        "e_type",
        e_type.to_owned(),
        theirs.file_type.split(' ').next().unwrap_or("").to_owned(),
    );
    // readelf calls an ET_DYN with DF_1_PIE a "Position-Independent Executable file".
    let readelf_pie = theirs.file_type.contains("Position-Independent");
    let our_pie = matches!(ours.kind, FileKind::Pie | FileKind::StaticPie)
        && ours.flags_1 & elf::DF_1_PIE.0 != 0;
    check("pie", our_pie.to_string(), readelf_pie.to_string());
    check(
        "interpreter",
        format!("{:?}", ours.interpreter.as_deref().map(text)),
        format!("{:?}", theirs.interpreter),
    );
    check(
        "needed",
        format!(
            "{:?}",
            ours.needed.iter().map(|n| text(n)).collect::<Vec<_>>()
        ),
        format!("{:?}", theirs.needed),
    );
    check(
        "soname",
        format!("{:?}", ours.soname.as_deref().map(text)),
        format!("{:?}", theirs.soname),
    );
    check(
        "rpath",
        format!("{:?}", ours.rpath.as_deref().map(text)),
        format!("{:?}", theirs.rpath),
    );
    check(
        "runpath",
        format!("{:?}", ours.runpath.as_deref().map(text)),
        format!("{:?}", theirs.runpath),
    );
    let has = |tag: elf::DynamicTag| ours.dynamic.iter().any(|d| d.tag == tag.0);
    let flags = has(elf::DT_FLAGS).then(|| ldfix_elf::read::dt_flags_names(ours.flags).join(" "));
    check("flags", format!("{flags:?}"), format!("{:?}", theirs.flags));
    let flags_1 =
        has(elf::DT_FLAGS_1).then(|| ldfix_elf::read::dt_flags_1_names(ours.flags_1).join(" "));
    check(
        "flags_1",
        format!("{flags_1:?}"),
        format!("{:?}", theirs.flags_1),
    );
    let needs: Vec<(String, Vec<String>)> = ours
        .version_needs
        .iter()
        .map(|n| (text(&n.file), n.versions.iter().map(|v| text(v)).collect()))
        .collect();
    check(
        "version_needs",
        format!("{needs:?}"),
        format!("{:?}", theirs.version_needs),
    );
    let defs: Vec<String> = ours.version_defs.iter().map(|d| text(d)).collect();
    check(
        "version_defs",
        format!("{defs:?}"),
        format!("{:?}", theirs.version_defs),
    );
    // Debian's files end with their section header table: nothing trails it.
    let [shoff, shentsize, shnum] = theirs.section_headers;
    check(
        "referenced_end",
        ours.referenced_end.to_string(),
        (shoff + shentsize * shnum).to_string(),
    );
    check(
        "trailing_bytes",
        ours.trailing_bytes.to_string(),
        "0".to_owned(),
    );
    check(
        "build_id",
        format!("{:?}", ours.build_id.as_deref().map(hex)),
        format!("{:?}", theirs.build_id),
    );
    diffs
}

/// Runs readelf over `files` in batches on all cores; returns (path, readelf's text) in order.
fn readelf_all(files: &[PathBuf]) -> Vec<(PathBuf, String)> {
    common::require_tool("readelf", "binutils");
    let batches: Vec<&[PathBuf]> = files.chunks(40).collect();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2);
    let results: Vec<Vec<(PathBuf, String)>> = std::thread::scope(|scope| {
        let per_thread = batches.len().div_ceil(threads);
        let handles: Vec<_> = batches
            .chunks(per_thread.max(1))
            .map(|mine| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for batch in mine {
                        out.extend(readelf_batch(batch));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    results.into_iter().flatten().collect()
}

fn readelf_batch(batch: &[PathBuf]) -> Vec<(PathBuf, String)> {
    // readelf's status is 1 after any warning (an unknown note type, say); the text is what counts.
    let output = Command::new("readelf")
        .arg("-hldVnW")
        .args(batch)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if batch.len() == 1 {
        return vec![(batch[0].clone(), stdout)];
    }
    let mut out = Vec::new();
    for block in stdout.split("\nFile: ").skip(1) {
        let (name, rest) = block.split_once('\n').unwrap();
        out.push((PathBuf::from(name), rest.to_owned()));
    }
    let names: Vec<&PathBuf> = out.iter().map(|(p, _)| p).collect();
    assert_eq!(
        names,
        batch.iter().collect::<Vec<_>>(),
        "readelf printed every file in order"
    );
    out
}

/// Every field of every corpus file equals readelf's reading.
#[test]
fn every_field_matches_readelf_over_the_corpus() {
    let files = common::debian_corpus();
    assert!(
        files.len() > 1000,
        "the corpus has {} ELF files",
        files.len()
    );
    let mut diffs = Vec::new();
    let mut compared = 0;
    // How many files readelf found each field in: proves the comparison compared something.
    let mut seen = [0usize; 8];
    for (path, output) in readelf_all(&files) {
        let ours = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let theirs = parse_readelf(&output);
        let present = [
            theirs.interpreter.is_some(),
            !theirs.needed.is_empty(),
            theirs.soname.is_some(),
            theirs.rpath.is_some() || theirs.runpath.is_some(),
            theirs.flags.is_some() || theirs.flags_1.is_some(),
            !theirs.version_needs.is_empty(),
            !theirs.version_defs.is_empty(),
            theirs.build_id.is_some(),
        ];
        for (count, present) in seen.iter_mut().zip(present) {
            *count += usize::from(present);
        }
        diffs.extend(compare(&path, &ours, &theirs));
        compared += 1;
    }
    assert_eq!(compared, files.len());
    let names = [
        "interpreter",
        "needed",
        "soname",
        "rpath/runpath",
        "flags",
        "version needs",
        "version defs",
        "build-id",
    ];
    for (name, count) in names.iter().zip(seen) {
        assert!(
            count >= 10,
            "readelf showed {name} in only {count} files: is its output still parsed?"
        );
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// The corpus holds every (class, byte order, machine) the issue names, each cross package
/// gives its own, and reading any corpus file gives neither an error nor a warning.
#[test]
fn corpus_covers_every_class_endianness_and_machine() {
    let expected: [(&str, Class, Endian, elf::Machine); 10] = [
        ("/usr/bin", Class::Elf64, Endian::Little, elf::EM_X86_64),
        (
            "/usr/i686-linux-gnu",
            Class::Elf32,
            Endian::Little,
            elf::EM_386,
        ),
        (
            "/usr/aarch64-linux-gnu",
            Class::Elf64,
            Endian::Little,
            elf::EM_AARCH64,
        ),
        (
            "/usr/arm-linux-gnueabihf",
            Class::Elf32,
            Endian::Little,
            elf::EM_ARM,
        ),
        (
            "/usr/riscv64-linux-gnu",
            Class::Elf64,
            Endian::Little,
            elf::EM_RISCV,
        ),
        (
            "/usr/powerpc64le-linux-gnu",
            Class::Elf64,
            Endian::Little,
            elf::EM_PPC64,
        ),
        (
            "/usr/powerpc64-linux-gnu",
            Class::Elf64,
            Endian::Big,
            elf::EM_PPC64,
        ),
        (
            "/usr/s390x-linux-gnu",
            Class::Elf64,
            Endian::Big,
            elf::EM_S390,
        ),
        (
            "/usr/mips-linux-gnu",
            Class::Elf32,
            Endian::Big,
            elf::EM_MIPS,
        ),
        (
            "/usr/mipsel-linux-gnu",
            Class::Elf32,
            Endian::Little,
            elf::EM_MIPS,
        ),
    ];
    common::require_cross();
    let mut seen = BTreeSet::new();
    for (dir, class, endian, machine) in expected {
        let mut files = Vec::new();
        common::elf_files_under(Path::new(dir), &mut files);
        let mut here = BTreeSet::new();
        for path in &files {
            let info = parse_file(path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                info.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                info.warnings
            );
            here.insert((info.class, info.endian, info.machine));
        }
        assert!(
            here.contains(&(class, endian, machine.0)),
            "{dir} has no {class:?} {endian:?} machine {machine:?} file: {here:?}"
        );
        seen.extend(here);
    }
    let want: BTreeSet<_> = expected.iter().map(|(_, c, e, m)| (*c, *e, m.0)).collect();
    assert!(
        want.is_subset(&seen),
        "missing: {:?}",
        want.difference(&seen).collect::<Vec<_>>()
    );
}

/// Wheels built by the manylinux and musllinux toolchains: flavour and minimum glibc, the facts
/// auditwheel checks.
#[test]
fn wheel_extension_modules() {
    use ldfix_elf::LibcFlavour;
    let dir = common::wheels_dir();
    let read = |name: &str| parse_file(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
    let many = read("_speedups.cpython-311-x86_64-linux-gnu.so");
    assert_eq!(many.libc, LibcFlavour::Glibc);
    assert_eq!(
        many.max_glibc.map(|v| v.to_string()).as_deref(),
        Some("2.14")
    );
    assert_eq!(many.kind, FileKind::SharedLibrary);
    let musl = read("_speedups.cpython-311-x86_64-linux-musl.so");
    assert_eq!(musl.libc, LibcFlavour::Musl);
    assert_eq!(musl.needed, vec![b"libc.musl-x86_64.so.1".to_vec()]);
    assert_eq!(musl.max_glibc, None);
    let arm = read("_speedups.cpython-311-aarch64-linux-gnu.so");
    assert_eq!((arm.machine, arm.class), (elf::EM_AARCH64.0, Class::Elf64));
    assert_eq!(
        arm.max_glibc.map(|v| v.to_string()).as_deref(),
        Some("2.17")
    );
}
