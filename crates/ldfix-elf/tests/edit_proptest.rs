//! Property test: random sequences of operations keep every file valid (the editor's own checks
//! pass, readelf and eu-readelf accept it) and runnable with the same output: x86-64 programs
//! natively, and the foreign files (the libcs of aarch64, s390x, mips, mipsel, mips64el and
//! ppc64, MIPS programs with DT_MIPS_RLD_MAP_REL) under qemu-user.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use std::process::Command;

use edit_corpus::{corpus, foreign, run, write_exec, Sample};
use ldfix_elf::edit::{edit, Edits, RpathEdit};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    SetRpath(usize),
    AddRpath(usize),
    RemoveRpath,
    ForceRpath(usize),
    Interp(bool),
    AddNeeded(u8),
    RemoveNeeded(u8),
    ReplaceZ(bool),
    Soname(usize),
    ExecStack(bool),
    NoDefaultLib,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..600).prop_map(Step::SetRpath),
        (0usize..200).prop_map(Step::AddRpath),
        Just(Step::RemoveRpath),
        (0usize..300).prop_map(Step::ForceRpath),
        any::<bool>().prop_map(Step::Interp),
        (0u8..4).prop_map(Step::AddNeeded),
        (0u8..4).prop_map(Step::RemoveNeeded),
        any::<bool>().prop_map(Step::ReplaceZ),
        (1usize..200).prop_map(Step::Soname),
        any::<bool>().prop_map(Step::ExecStack),
        Just(Step::NoDefaultLib),
    ]
}

/// What the steps need to know about a sample's architecture.
struct Arch {
    /// Its C library's directory: every run path ends with it, so the program stays loadable.
    libdir: &'static str,
    /// Two paths to its interpreter, a short and a long one.
    interp: (&'static str, &'static str),
    /// A NEEDED entry and another name of the same library, if the sample has one.
    replace: Option<(String, String)>,
    /// Whether the sample may be renamed: glibc's libc.so.6 may not (ldfix refuses: the loader
    /// recognises libc by that name).
    rename: bool,
    /// What readelf must accept (binutils 2.40 already rejects the `.gnu.attributes` that llc
    /// writes into the MIPS programs, so `-a` is too much there).
    readelf: &'static [&'static str],
}

const X86_64: Arch = Arch {
    libdir: "/lib/x86_64-linux-gnu",
    interp: (
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2",
    ),
    replace: None,
    rename: true,
    readelf: &["-aW"],
};

/// A run path that keeps the program loadable: junk directories, then the real one.
fn rpath(len: usize, arch: &Arch) -> Vec<u8> {
    format!("/{}:{}", "d".repeat(len), arch.libdir).into_bytes()
}

fn to_edits(s: &Step, arch: &Arch) -> Edits {
    let mut e = Edits::default();
    match s {
        Step::SetRpath(n) => e.rpath = Some(RpathEdit::Set(rpath(*n, arch))),
        Step::AddRpath(n) => {
            e.rpath = Some(RpathEdit::Add(format!("/{}", "a".repeat(*n)).into_bytes()))
        }
        Step::RemoveRpath => e.rpath = Some(RpathEdit::Remove),
        Step::ForceRpath(n) => {
            e.rpath = Some(RpathEdit::Set(rpath(*n, arch)));
            e.force_rpath = true;
        }
        Step::Interp(long) => {
            let (short, long_path) = arch.interp;
            e.interpreter = Some(if *long { long_path } else { short }.as_bytes().to_vec())
        }
        Step::AddNeeded(k) => e.add_needed = vec![format!("libfake{k}.so").into_bytes()],
        Step::RemoveNeeded(k) => e.remove_needed = vec![format!("libfake{k}.so").into_bytes()],
        Step::ReplaceZ(forward) => {
            if let Some((a, b)) = &arch.replace {
                let (a, b) = if *forward { (a, b) } else { (b, a) };
                e.replace_needed = vec![(a.as_bytes().to_vec(), b.as_bytes().to_vec())];
            }
        }
        Step::Soname(n) if arch.rename => {
            e.soname = Some(format!("lib{}.so", "s".repeat(*n)).into_bytes())
        }
        Step::Soname(_) => {}
        Step::ExecStack(x) => e.execstack = Some(*x),
        Step::NoDefaultLib => {
            e.no_default_lib = true;
            e.rpath = Some(RpathEdit::Set(rpath(0, arch)));
        }
    }
    e
}

/// Applies the steps to the sample, then checks that the result is valid and runs as before.
fn check_steps(sample: &Sample, arch: &Arch, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut data = std::fs::read(&sample.path).unwrap();
    for s in steps {
        let e = to_edits(s, arch);
        if e == Edits::default() {
            continue;
        }
        match edit(&data, &e) {
            Ok(Some(new)) => data = new,
            Ok(None) => {}
            Err(err) => prop_assert!(false, "{s:?} on {}: {err}", sample.name),
        }
    }
    // Drop the fake libraries and make sure the real directory is searched (a sequence may set
    // DF_1_NODEFLIB and then remove the run path: correctly unloadable), then the program
    // must run as before.
    let fakes = (0..4)
        .map(|k| format!("libfake{k}.so").into_bytes())
        .collect();
    if let Some(new) = edit(
        &data,
        &Edits {
            remove_needed: fakes,
            rpath: Some(RpathEdit::Add(arch.libdir.as_bytes().to_vec())),
            ..Edits::default()
        },
    )
    .unwrap()
    {
        data = new;
    }
    let out = sample
        .path
        .with_file_name(format!("prop-{}-{}", sample.name, std::process::id()));
    write_exec(&out, &data);
    run(Command::new("readelf").args(arch.readelf).arg(&out));
    run(Command::new("eu-readelf").arg("-a").arg(&out));
    prop_assert_eq!(
        sample.exercise(&out),
        sample.exercise(&sample.path),
        "{:?}",
        steps
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_programs_valid_and_runnable(
        which in 0usize..4,
        steps in proptest::collection::vec(step(), 1..10),
    ) {
        let names = ["pie", "nopie", "lld", "debian-ls"];
        let sample = corpus().samples.iter().find(|s| s.name == names[which]).unwrap();
        let libz_real = std::fs::canonicalize("/lib/x86_64-linux-gnu/libz.so.1").unwrap();
        let libz_real = libz_real.file_name().unwrap().to_string_lossy().into_owned();
        let arch = Arch {
            replace: Some(("libz.so.1".into(), libz_real)),
            ..X86_64
        };
        check_steps(sample, &arch, &steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences_keep_foreign_files_valid_and_runnable(
        which in 0usize..64,
        steps in proptest::collection::vec(step(), 1..10),
    ) {
        let sample = &foreign()[which % foreign().len()];
        let original = std::fs::read(&sample.path).unwrap();
        let own = ldfix_elf::parse(&original).unwrap().interpreter.unwrap();
        let own: &'static str = String::from_utf8(own).unwrap().leak();
        let long: &'static str = sample.long_interp.clone().unwrap().leak();
        let arch = Arch {
            libdir: "/lib",
            interp: (own, long),
            replace: None,
            rename: !sample.name.starts_with("libc"),
            readelf: &["-W", "--file-header", "--segments", "--sections", "--dynamic",
                "--version-info", "--dyn-syms"],
        };
        check_steps(sample, &arch, &steps)?;
    }
}
