//! Property test: random sequences of operations keep every file valid (the editor's own checks
//! pass, readelf and eu-readelf accept it) and runnable with the same output.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use std::process::Command;

use edit_corpus::{corpus, run, write_exec};
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

/// A run path that keeps the program loadable: junk directories, then the real one.
fn rpath(len: usize) -> Vec<u8> {
    format!("/{}:/lib/x86_64-linux-gnu", "d".repeat(len)).into_bytes()
}

fn to_edits(s: &Step, libz_real: &str) -> Edits {
    let mut e = Edits::default();
    match s {
        Step::SetRpath(n) => e.rpath = Some(RpathEdit::Set(rpath(*n))),
        Step::AddRpath(n) => {
            e.rpath = Some(RpathEdit::Add(format!("/{}", "a".repeat(*n)).into_bytes()))
        }
        Step::RemoveRpath => e.rpath = Some(RpathEdit::Remove),
        Step::ForceRpath(n) => {
            e.rpath = Some(RpathEdit::Set(rpath(*n)));
            e.force_rpath = true;
        }
        Step::Interp(long) => {
            e.interpreter = Some(if *long {
                b"/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2".to_vec()
            } else {
                b"/lib64/ld-linux-x86-64.so.2".to_vec()
            })
        }
        Step::AddNeeded(k) => e.add_needed = vec![format!("libfake{k}.so").into_bytes()],
        Step::RemoveNeeded(k) => e.remove_needed = vec![format!("libfake{k}.so").into_bytes()],
        Step::ReplaceZ(forward) => {
            let (a, b) = if *forward {
                ("libz.so.1", libz_real)
            } else {
                (libz_real, "libz.so.1")
            };
            e.replace_needed = vec![(a.as_bytes().to_vec(), b.as_bytes().to_vec())];
        }
        Step::Soname(n) => e.soname = Some(format!("lib{}.so", "s".repeat(*n)).into_bytes()),
        Step::ExecStack(x) => e.execstack = Some(*x),
        Step::NoDefaultLib => {
            e.no_default_lib = true;
            e.rpath = Some(RpathEdit::Set(rpath(0)));
        }
    }
    e
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
        let mut data = std::fs::read(&sample.path).unwrap();
        for s in &steps {
            let e = to_edits(s, &libz_real);
            match edit(&data, &e) {
                Ok(Some(new)) => data = new,
                Ok(None) => {}
                Err(err) => prop_assert!(false, "{s:?} on {}: {err}", sample.name),
            }
        }
        // Drop the fake libraries and make sure the real directory is searched (a sequence may set
        // DF_1_NODEFLIB and then remove the run path: correctly unloadable), then the program
        // must run as before.
        let fakes = (0..4).map(|k| format!("libfake{k}.so").into_bytes()).collect();
        if let Some(new) = edit(&data, &Edits {
            remove_needed: fakes,
            rpath: Some(RpathEdit::Add(b"/lib/x86_64-linux-gnu".to_vec())),
            ..Edits::default()
        }).unwrap() {
            data = new;
        }
        let out = corpus().dir.join(format!("prop-{}-{}", sample.name, std::process::id()));
        write_exec(&out, &data);
        run(Command::new("readelf").arg("-aW").arg(&out));
        run(Command::new("eu-readelf").arg("-a").arg(&out));
        prop_assert_eq!(sample.exercise(&out), sample.exercise(&sample.path), "{:?}", steps);
    }
}
