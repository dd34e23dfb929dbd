//! The editor on real files built at test time: every operation reads back in readelf and
//! eu-readelf, changes nothing else, and the program still runs (the library still loads).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use std::path::Path;
use std::process::Command;

use edit_corpus::{
    corpus, dynsyms, foreign, in_parallel, ops_for, readelf, run, write_exec, Expect, Sample,
};
use ldfix_elf::edit::{edit, Edits, RpathEdit};

/// Checks every operation on one sample. `binutils`: strip and objcopy must also rewrite the
/// result into a working file (the host's binutils know only the host's architectures).
fn check_sample(sample: &Sample, binutils: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let original = std::fs::read(&sample.path).unwrap();
    let (ok, want) = sample.exercise(&sample.path);
    assert!(
        ok,
        "{}: the unpatched file does not work: {want}",
        sample.name
    );
    let syms = dynsyms(&sample.path);
    for op in ops_for(sample) {
        let out = sample
            .path
            .with_file_name(format!("{}.{}", sample.name, op.name));
        let new = match edit(&original, &op.edits) {
            Ok(Some(n)) => n,
            Ok(None) => original.clone(),
            Err(e) => {
                failures.push(format!("{} {}: {e}", sample.name, op.name));
                continue;
            }
        };
        write_exec(&out, &new);
        for e in &op.expect {
            if let Err(msg) = e.check(&out) {
                failures.push(format!("{} {}: {msg}", sample.name, op.name));
            }
        }
        let (ok, got) = sample.exercise(&out);
        if !ok || got != want {
            failures.push(format!(
                "{} {}: output changed: {got:?} (was {want:?})",
                sample.name, op.name
            ));
        }
        let removes = op
            .expect
            .iter()
            .any(|e| matches!(e, Expect::Needed { lacks, .. } if !lacks.is_empty()));
        if !removes && dynsyms(&out) != syms {
            failures.push(format!(
                "{} {}: dynamic symbols or their versions changed",
                sample.name, op.name
            ));
        }
        // Setting what is already there changes no byte.
        if let (false, Ok(again)) = (op.name == "add-rpath", edit(&new, &op.edits)) {
            if again.is_some() {
                failures.push(format!(
                    "{} {}: a second identical edit still changes the file",
                    sample.name, op.name
                ));
            }
        }
        // strip and objcopy still understand the result, and what they write still works.
        if !binutils {
            continue;
        }
        let stripped = out.with_extension("stripped");
        let copied = out.with_extension("objcopied");
        let mut strip = Command::new("strip");
        strip.arg("-o").arg(&stripped).arg(&out);
        let mut objcopy = Command::new("objcopy");
        objcopy.arg(&out).arg(&copied);
        for (tool, mut command, result) in
            [("strip", strip, &stripped), ("objcopy", objcopy, &copied)]
        {
            let (ok, err) = edit_corpus::try_run(&mut command);
            if !ok {
                failures.push(format!("{} {}: {tool} fails: {err}", sample.name, op.name));
            } else if sample.exercise(result) != (true, want.clone()) {
                failures.push(format!(
                    "{} {}: the result of {tool} does not work",
                    sample.name, op.name
                ));
            }
        }
    }
    failures
}

/// Checks every sample in parallel; fails with every failure listed.
fn check_all(samples: &[Sample], binutils: bool) {
    let failures: Vec<String> = in_parallel(samples, |s| check_sample(s, binutils))
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_operation_reads_back_keeps_the_rest_and_still_runs() {
    check_all(&corpus().samples, true);
}

/// The libcs of aarch64, s390x, mips, mipsel, mips64el and ppc64, and four MIPS programs (see
/// `edit_corpus::foreign`).
#[test]
fn foreign_architectures_run_under_qemu() {
    check_all(foreign(), false);
}

#[test]
fn new_segments_on_64k_page_architectures_are_64k_congruent() {
    let sample = foreign_sample("libc-aarch64");
    let data = std::fs::read(&sample.path).unwrap();
    let long = format!("{}:/lib", edit_corpus::LONG_DIR);
    let new = edit(
        &data,
        &Edits {
            rpath: Some(RpathEdit::Set(long.into_bytes())),
            ..Edits::default()
        },
    )
    .unwrap()
    .unwrap();
    let info = ldfix_elf::parse(&new).unwrap();
    let load = info.segments.iter().rfind(|s| s.p_type == 1).unwrap();
    assert!(load.align >= 0x10000, "{load:?}");
    assert_eq!(load.vaddr % 0x10000, load.offset % 0x10000, "{load:?}");
}

fn foreign_sample(name: &str) -> &'static Sample {
    foreign().iter().find(|s| s.name == name).unwrap()
}

/// (p_type, p_offset) of every program header, from readelf.
fn segments(path: &Path) -> Vec<(String, String)> {
    readelf(&["-l"], path)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[1].starts_with("0x")).then(|| (f[0].to_owned(), f[1].to_owned()))
        })
        .collect()
}

fn long_rpath() -> Edits {
    Edits {
        rpath: Some(RpathEdit::Set(
            format!("{}:/lib", edit_corpus::LONG_DIR).into_bytes(),
        )),
        ..Edits::default()
    }
}

/// MIPS linkers leave a spare PT_NULL program header: the new LOAD takes it, so the table does
/// not grow and nothing after it (here `.MIPS.abiflags` and the large `.MIPS.options`) moves.
#[test]
fn a_spare_pt_null_slot_is_taken_before_the_table_grows() {
    let sample = foreign_sample("libc-mips64el");
    let before = segments(&sample.path);
    assert!(
        before.iter().any(|(t, _)| t == "NULL"),
        "test premise: a PT_NULL slot\n{before:?}"
    );
    let data = std::fs::read(&sample.path).unwrap();
    let new = edit(&data, &long_rpath()).unwrap().unwrap();
    let out = sample.path.with_file_name("libc-mips64el.null-slot");
    write_exec(&out, &new);
    let after = segments(&out);
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert!(!after.iter().any(|(t, _)| t == "NULL"), "{after:?}");
    for kind in ["PHDR", "ABIFLAGS", "DYNAMIC", "NOTE"] {
        let at = |v: &[(String, String)]| v.iter().find(|(t, _)| t == kind).cloned();
        assert_eq!(at(&after), at(&before), "{kind} moved");
    }
    assert_eq!(
        sample.exercise(&out),
        sample.exercise(&sample.path),
        "runs differently"
    );
}

/// Without a spare slot, growing the program header table moves PT_MIPS_ABIFLAGS and
/// PT_MIPS_REGINFO, which follow it, a MIPS address tag into them follows, and the result still
/// runs.
#[test]
fn mips_abiflags_and_reginfo_move_when_the_table_grows() {
    let sample = foreign_sample("libc-mips");
    let mut data = std::fs::read(&sample.path).unwrap();
    // Fill the spare PT_NULL slot, the last of the 32-bit big-endian headers, with a second copy
    // of the PT_NOTE header (harmless: it describes the same notes), so that the table has
    // neither a spare slot nor slack before `.MIPS.abiflags`.
    let be16 = |d: &[u8], at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    let be32 = |d: &[u8], at: usize| u32::from_be_bytes(d[at..at + 4].try_into().unwrap());
    let phoff = be32(&data, 28) as usize;
    let phnum = be16(&data, 44) as usize;
    let null = phoff + (phnum - 1) * 32;
    assert_eq!(be32(&data, null), 0, "test premise: PT_NULL last");
    let note = (0..phnum)
        .map(|i| phoff + i * 32)
        .find(|&h| be32(&data, h) == 4)
        .unwrap();
    data.copy_within(note..note + 32, null);
    // And turn DT_MIPS_UNREFEXTNO (informational; glibc ignores it) into a DT_MIPS_OPTIONS entry
    // holding `.reginfo`'s address: an address tag into a block that moves must follow it.
    let dynamic = (0..phnum)
        .map(|i| phoff + i * 32)
        .find(|&h| be32(&data, h) == 2)
        .map(|h| be32(&data, h + 4) as usize)
        .unwrap();
    let unrefextno = (0..)
        .map(|i| dynamic + i * 8)
        .find(|&e| be32(&data, e) == 0x7000_0012)
        .unwrap();
    data[unrefextno..unrefextno + 4].copy_from_slice(&0x7000_0029u32.to_be_bytes());
    data[unrefextno + 4..unrefextno + 8].copy_from_slice(&0x1f0u32.to_be_bytes());
    let trimmed = sample.path.with_file_name("libc-mips.no-spare");
    write_exec(&trimmed, &data);
    assert_eq!(sample.exercise(&trimmed), sample.exercise(&sample.path));
    let before = segments(&trimmed);
    assert!(
        before.contains(&("REGINFO".to_owned(), "0x0001f0".to_owned())),
        "test premise: .reginfo at 0x1f0\n{before:?}"
    );

    let new = edit(&data, &long_rpath()).unwrap().unwrap();
    let out = sample.path.with_file_name("libc-mips.grown-table");
    write_exec(&out, &new);
    let after = segments(&out);
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    assert!(
        !before.iter().any(|(t, _)| t == "NULL"),
        "test premise: no spare slot\n{before:?}"
    );
    for kind in ["ABIFLAGS", "REGINFO"] {
        let at = |v: &[(String, String)]| v.iter().find(|(t, _)| t == kind).cloned();
        assert_ne!(at(&after), at(&before), "{kind} did not move");
    }
    let reginfo = readelf(&["-l"], &out)
        .lines()
        .find(|l| l.trim_start().starts_with("REGINFO"))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .unwrap();
    let options = readelf(&["-d"], &out)
        .lines()
        .find(|l| l.contains("MIPS_OPTIONS"))
        .and_then(|l| l.split_whitespace().last().map(str::to_owned))
        .unwrap();
    assert_eq!(
        u64::from_str_radix(options.trim_start_matches("0x"), 16).unwrap(),
        u64::from_str_radix(reginfo.trim_start_matches("0x"), 16).unwrap(),
        "DT_MIPS_OPTIONS does not follow the block it points into"
    );
    Expect::Runpath(format!("{}:/lib", edit_corpus::LONG_DIR))
        .check(&out)
        .unwrap();
    assert_eq!(sample.exercise(&out), sample.exercise(&sample.path));
}

/// glibc's loader recognises libc by its DT_SONAME `libc.so.6`; renamed, libc crashes every
/// program (patchelf writes such a file). ldfix refuses, and setting the same name is a no-op.
#[test]
fn glibc_libc_is_not_renamed() {
    let sample = foreign_sample("libc-mips");
    let data = std::fs::read(&sample.path).unwrap();
    let rename = |name: &[u8]| {
        edit(
            &data,
            &Edits {
                soname: Some(name.to_vec()),
                ..Edits::default()
            },
        )
    };
    let err = rename(b"libs.so").unwrap_err().to_string();
    assert!(err.contains("glibc's C library"), "{err}");
    assert!(rename(b"libc.so.6").unwrap().is_none());
    // The reference's result, recorded: it crashes.
    let pe = sample.path.with_file_name("libc-mips.renamed-by-patchelf");
    std::fs::copy(&sample.path, &pe).unwrap();
    run(Command::new("patchelf")
        .args(["--set-soname", "libs.so"])
        .arg(&pe));
    let (ok, text) = sample.exercise(&pe);
    assert!(!ok, "patchelf 0.14.3's renamed libc runs: {text}");
}

#[test]
fn repeated_growth_reuses_one_segment_and_stays_bounded() {
    let sample = corpus().samples.iter().find(|s| s.name == "pie").unwrap();
    let original = std::fs::read(&sample.path).unwrap();
    let loads = |d: &[u8]| {
        ldfix_elf::parse(d)
            .unwrap()
            .segments
            .iter()
            .filter(|s| s.p_type == 1)
            .count()
    };
    let a = format!("{}/a:{}", edit_corpus::LONG_DIR, "/lib/x86_64-linux-gnu");
    let b = format!(
        "{}/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:{}",
        edit_corpus::LONG_DIR,
        "/lib/x86_64-linux-gnu"
    );
    let mut data = original.clone();
    let mut first_growth = 0;
    for i in 0..100 {
        let value = if i % 2 == 0 { &a } else { &b };
        let mut edits = Edits {
            rpath: Some(RpathEdit::Set(value.clone().into_bytes())),
            ..Edits::default()
        };
        if i % 3 == 0 {
            edits.add_needed = vec![format!("libextra{}.so", i % 5).into_bytes()];
            edits.remove_needed = vec![format!("libextra{}.so", (i + 3) % 5).into_bytes()];
        }
        data = edit(&data, &edits).unwrap().unwrap_or(data);
        if i == 0 {
            first_growth = data.len() - original.len();
        }
    }
    assert_eq!(
        loads(&data),
        loads(&original) + 1,
        "one LOAD added in total"
    );
    let bound = original.len() + first_growth + b.len() + 5 * 16 + 4096;
    assert!(
        data.len() <= bound,
        "{} bytes after 100 edits, bound {bound}",
        data.len()
    );
    // The last state must still run (drop the fake NEEDED entries first).
    let names: Vec<Vec<u8>> = (0..5)
        .map(|k| format!("libextra{k}.so").into_bytes())
        .collect();
    let data = edit(
        &data,
        &Edits {
            remove_needed: names,
            ..Edits::default()
        },
    )
    .unwrap()
    .unwrap_or(data);
    let out = corpus().dir.join("pie.repeated");
    write_exec(&out, &data);
    assert_eq!(sample.exercise(&out), sample.exercise(&sample.path));
}

#[test]
fn trailing_payload_stays_at_the_end() {
    let sample = corpus().samples.iter().find(|s| s.name == "pie").unwrap();
    let mut data = std::fs::read(&sample.path).unwrap();
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    data.extend_from_slice(&payload);
    for edits in [
        Edits {
            rpath: Some(RpathEdit::Set(edit_corpus::LONG_DIR.as_bytes().to_vec())),
            ..Edits::default()
        },
        Edits {
            interpreter: sample.long_interp.clone().map(String::into_bytes),
            ..Edits::default()
        },
    ] {
        let new = edit(&data, &edits).unwrap().unwrap();
        assert!(new.ends_with(&payload), "payload no longer at the end");
        let out = corpus().dir.join("pie.payload");
        write_exec(&out, &new);
        assert_eq!(sample.exercise(&out), sample.exercise(&sample.path));
    }
}

/// patchelf leaves the `.gnu.version_r` entry of a removed library, and ld.so then aborts with
/// "Assertion `needed != NULL' failed"; ldfix drops it.
#[test]
fn remove_needed_drops_its_version_requirement() {
    let dir = corpus().dir.join("verneed");
    std::fs::create_dir_all(&dir).unwrap();
    // ldexp is in both libm and libc; linked against libm first, it requires libm's version.
    std::fs::write(
        dir.join("m.c"),
        "#include <math.h>\n#include <stdio.h>\nint main(int c, char **v) { printf(\"%g\\n\", ldexp(1.5, c)); return 0; }\n",
    )
    .unwrap();
    let prog = dir.join("m");
    run(Command::new("gcc")
        .arg("-fno-builtin")
        .arg("-o")
        .arg(&prog)
        .arg(dir.join("m.c"))
        .args(["-Wl,--no-as-needed", "-lm"]));
    let before = readelf(&["-V"], &prog);
    assert!(
        before.contains("File: libm.so.6"),
        "test premise: the program requires a libm version\n{before}"
    );
    let want = run(&mut Command::new(&prog));
    let data = std::fs::read(&prog).unwrap();
    let new = edit(
        &data,
        &Edits {
            remove_needed: vec![b"libm.so.6".to_vec()],
            ..Edits::default()
        },
    )
    .unwrap()
    .unwrap();
    let out = dir.join("m.ldfix");
    write_exec(&out, &new);
    assert!(!readelf(&["-V"], &out).contains("libm.so.6"));
    assert_eq!(run(&mut Command::new(&out)), want);
    // The reference's failure, recorded.
    let pe = dir.join("m.patchelf");
    std::fs::copy(&prog, &pe).unwrap();
    run(Command::new("patchelf")
        .arg("--remove-needed")
        .arg("libm.so.6")
        .arg(&pe));
    let (ok, text) = edit_corpus::try_run(&mut Command::new(&pe));
    assert!(
        !ok && text.contains("needed != NULL"),
        "patchelf 0.14.3 result: {ok} {text}"
    );
}

#[test]
fn static_pie_works_where_it_can_and_refuses_a_run_path() {
    let dir = corpus().dir.join("static");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("s.c"),
        "#include <stdio.h>\nint main(void) { puts(\"static\"); return 0; }\n",
    )
    .unwrap();
    let prog = dir.join("s");
    run(Command::new("gcc")
        .arg("-static-pie")
        .arg("-o")
        .arg(&prog)
        .arg(dir.join("s.c")));
    let data = std::fs::read(&prog).unwrap();
    let err = edit(
        &data,
        &Edits {
            rpath: Some(RpathEdit::Set(b"/x".to_vec())),
            ..Edits::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("static-pie"), "{err}");
    let new = edit(
        &data,
        &Edits {
            soname: Some(b"a-name-long-enough-to-need-a-new-string-table.so".to_vec()),
            execstack: Some(false),
            no_default_lib: true,
            ..Edits::default()
        },
    )
    .unwrap()
    .unwrap();
    let out = dir.join("s.ldfix");
    write_exec(&out, &new);
    assert_eq!(run(&mut Command::new(&out)), "static\n");
}

#[test]
fn files_without_section_headers_are_edited_through_segments() {
    let sample = corpus().samples.iter().find(|s| s.name == "pie").unwrap();
    let mut data = std::fs::read(&sample.path).unwrap();
    // Drop the section headers, as sstrip and UPX-style packers do.
    data[0x28..0x30].fill(0); // e_shoff
    data[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    let long = format!("{}:/lib/x86_64-linux-gnu", edit_corpus::LONG_DIR);
    let new = edit(
        &data,
        &Edits {
            rpath: Some(RpathEdit::Set(long.clone().into_bytes())),
            interpreter: sample.long_interp.clone().map(String::into_bytes),
            ..Edits::default()
        },
    )
    .unwrap()
    .unwrap();
    let out = corpus().dir.join("pie.noshdr");
    write_exec(&out, &new);
    assert_eq!(sample.exercise(&out), sample.exercise(&sample.path));
    let info = ldfix_elf::parse(&new).unwrap();
    assert_eq!(info.runpath, Some(long.into_bytes()));
}

#[test]
fn malformed_input_is_an_error_never_a_panic() {
    let sample = corpus().samples.iter().find(|s| s.name == "pie").unwrap();
    let data = std::fs::read(&sample.path).unwrap();
    let edits = Edits {
        rpath: Some(RpathEdit::Set(edit_corpus::LONG_DIR.as_bytes().to_vec())),
        interpreter: Some(b"/lib64/ld-linux-x86-64.so.2.x".to_vec()),
        add_needed: vec![b"libq.so".to_vec()],
        remove_needed: vec![b"libm.so.6".to_vec()],
        ..Edits::default()
    };
    // Every truncation point in the headers, and a spread of them after.
    for len in (0..4096).step_by(7).chain((4096..data.len()).step_by(997)) {
        let _ = edit(&data[..len], &edits);
    }
    let err = edit(&data[..40], &edits).unwrap_err().to_string();
    assert!(err.contains("offset"), "{err}");
    // Single-byte corruptions of every header byte and of the dynamic table.
    let info = ldfix_elf::parse(&data).unwrap();
    let dyn_off = info.dynamic_offset.unwrap() as usize;
    for at in (0..0x400)
        .step_by(3)
        .chain((dyn_off..dyn_off + 0x200).step_by(5))
    {
        for value in [0x00, 0xff] {
            let mut bad = data.clone();
            bad[at] = value;
            let _ = edit(&bad, &edits);
        }
    }
}
