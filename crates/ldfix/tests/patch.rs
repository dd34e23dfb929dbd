//! `ldfix patch` end to end: patchelf's flags and outputs, several files at once, `--output`,
//! errors, and what the atomic replacement keeps (mode, xattrs, ACLs, capabilities, hard links).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const INSTALL: &str =
    "scripts/install-deps (or: apt-get install -y $(grep -v '^#' scripts/apt/edit.txt))";

fn ldfix() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ldfix"))
}

fn out(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e}; install the test tools with {INSTALL}")
    })
}

fn ok(cmd: &mut Command) -> String {
    let o = out(cmd);
    assert!(
        o.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn patchelf_019() -> PathBuf {
    ldfix_testworld::references::patchelf_019(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

struct Fixture {
    dir: PathBuf,
    prog: PathBuf,
    lib: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("patch-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("p.c"),
            "#include <stdio.h>\nint main(void) { puts(\"works\"); return 0; }\n",
        )
        .unwrap();
        std::fs::write(dir.join("l.c"), "int foo(void) { return 1; }\n").unwrap();
        let prog = dir.join("prog");
        ok(Command::new("gcc")
            .arg("-o")
            .arg(&prog)
            .arg(dir.join("p.c"))
            .args(["-Wl,-rpath,/opt/old", "-Wl,--no-as-needed", "-lm"]));
        let lib = dir.join("libl.so");
        ok(Command::new("gcc")
            .args(["-shared", "-fPIC", "-Wl,-soname,libl.so.1", "-o"])
            .arg(&lib)
            .arg(dir.join("l.c")));
        Fixture { dir, prog, lib }
    })
}

/// A fresh copy of a fixture file.
fn copy(src: &Path, name: &str) -> PathBuf {
    let to = fixture().dir.join(name);
    let _ = std::fs::remove_file(&to);
    std::fs::copy(src, &to).unwrap();
    to
}

#[test]
fn print_flags_match_patchelf_019() {
    let f = fixture();
    let pe = patchelf_019();
    for (file, flags) in [
        (&f.prog, vec!["--print-interpreter"]),
        (&f.prog, vec!["--print-rpath"]),
        (&f.prog, vec!["--print-needed"]),
        (&f.prog, vec!["--print-os-abi"]),
        (&f.prog, vec!["--print-execstack"]),
        (&f.lib, vec!["--print-soname"]),
        (&f.lib, vec!["--print-rpath"]),
        (
            &f.prog,
            vec!["--print-interpreter", "--print-rpath", "--print-needed"],
        ),
    ] {
        let ours = ok(ldfix().arg("patch").args(&flags).arg(file));
        let theirs = ok(Command::new(&pe).args(&flags).arg(file));
        assert_eq!(ours, theirs, "{flags:?} on {}", file.display());
    }
}

#[test]
fn prints_show_the_values_before_the_edits() {
    let p = copy(&fixture().prog, "order");
    let printed = ok(ldfix()
        .args([
            "patch",
            "--print-rpath",
            "--set-rpath",
            "/new/dir",
            "--print-needed",
            "--add-needed",
            "libdl.so.2",
        ])
        .arg(&p));
    assert_eq!(printed, "/opt/old\nlibm.so.6\nlibc.so.6\n");
    assert_eq!(
        ok(ldfix()
            .args(["patch", "--print-rpath", "--print-needed"])
            .arg(&p)),
        "/new/dir\nlibdl.so.2\nlibm.so.6\nlibc.so.6\n"
    );
    assert_eq!(ok(&mut Command::new(&p)), "works\n");
}

#[test]
fn several_files_in_one_run() {
    let files: Vec<PathBuf> = (0..8)
        .map(|i| copy(&fixture().prog, &format!("multi{i}")))
        .collect();
    let long = format!(
        "/a/very/long/run/path/{}:/lib/x86_64-linux-gnu",
        "x".repeat(200)
    );
    ok(ldfix().args(["patch", "--set-rpath", &long]).args(&files));
    for f in &files {
        assert_eq!(
            ok(ldfix().args(["patch", "--print-rpath"]).arg(f)),
            format!("{long}\n")
        );
        assert_eq!(ok(&mut Command::new(f)), "works\n");
    }
}

#[test]
fn output_leaves_the_input_alone() {
    let p = copy(&fixture().prog, "in");
    let before = std::fs::read(&p).unwrap();
    let o = fixture().dir.join("out");
    ok(ldfix()
        .args([
            "patch",
            "--set-interpreter",
            "/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2",
            "--output",
        ])
        .arg(&o)
        .arg(&p));
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert_eq!(ok(&mut Command::new(&o)), "works\n");
    let err = out(ldfix()
        .args(["patch", "--set-rpath", "/x", "--output"])
        .arg(&o)
        .arg(&p)
        .arg(&p));
    assert_eq!(err.status.code(), Some(2));
}

#[test]
fn the_same_value_touches_nothing() {
    let p = copy(&fixture().prog, "same");
    let ino = std::fs::metadata(&p).unwrap().ino();
    let interp = ok(ldfix().args(["patch", "--print-interpreter"]).arg(&p));
    ok(ldfix()
        .args([
            "patch",
            "--set-interpreter",
            interp.trim(),
            "--set-rpath",
            "/opt/old",
            "--force-rpath",
        ])
        .arg(&p));
    assert_eq!(
        std::fs::metadata(&p).unwrap().ino(),
        ino,
        "the file was rewritten"
    );
    assert_eq!(
        std::fs::read(&p).unwrap(),
        std::fs::read(&fixture().prog).unwrap()
    );
}

#[test]
fn bad_files_fail_with_their_name_and_offset_and_stay_untouched() {
    let p = fixture().dir.join("truncated");
    let data = std::fs::read(&fixture().prog).unwrap();
    std::fs::write(&p, &data[..100]).unwrap();
    let good = copy(&fixture().prog, "good-next-to-bad");
    let o = out(ldfix()
        .args(["patch", "--set-rpath", "/x"])
        .arg(&p)
        .arg(&good));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("truncated") && err.contains("offset 0x"),
        "{err}"
    );
    assert_eq!(std::fs::read(&p).unwrap(), &data[..100]);
    // The good file in the same run is still patched.
    assert_eq!(
        ok(ldfix().args(["patch", "--print-rpath"]).arg(&good)),
        "/x\n"
    );
    let o = out(ldfix()
        .args(["patch", "--set-rpath", "/x"])
        .arg(fixture().dir.join("p.c")));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("p.c"));
}

/// glibc's loader aborts at start with a run path of its own: `patch` refuses, says why, and
/// leaves the file as it was; a change glibc allows (a new SONAME) still goes through.
#[test]
fn a_glibc_loader_gets_no_run_path() {
    let ld = copy(
        Path::new("/lib64/ld-linux-x86-64.so.2"),
        "ld-linux-x86-64.so.2",
    );
    let before = std::fs::read(&ld).unwrap();
    let o = out(ldfix().args(["patch", "--set-rpath", "/opt/lib"]).arg(&ld));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ld-linux-x86-64.so.2") && err.contains("get-dynamic-info.h"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ld).unwrap(), before);
    ok(ldfix()
        .args(["patch", "--set-soname", "ld-renamed.so.2"])
        .arg(&ld));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-soname"]).arg(&ld)),
        "ld-renamed.so.2\n"
    );
    assert!(ok(Command::new(&ld).arg("--version")).contains("ld.so"));
}

#[test]
fn replacement_keeps_mode_xattrs_acls_and_capabilities() {
    let p = copy(&fixture().prog, "attrs");
    ok(Command::new("chmod").arg("4750").arg(&p));
    ok(Command::new("setfattr")
        .args(["-n", "user.origin", "-v", "kept"])
        .arg(&p));
    ok(Command::new("setfacl").args(["-m", "u:nobody:r-x"]).arg(&p));
    ok(Command::new("setcap")
        .arg("cap_net_bind_service=+ep")
        .arg(&p));
    let acl_before = ok(Command::new("getfacl").arg("--omit-header").arg(&p));
    ok(ldfix()
        .args([
            "patch",
            "--set-rpath",
            &format!("/long/{}", "y".repeat(300)),
        ])
        .arg(&p));
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o4750);
    assert_eq!(
        ok(Command::new("getfattr")
            .args(["--only-values", "-n", "user.origin"])
            .arg(&p)),
        "kept"
    );
    assert_eq!(
        ok(Command::new("getfacl").arg("--omit-header").arg(&p)),
        acl_before
    );
    assert!(ok(Command::new("getcap").arg(&p)).contains("cap_net_bind_service"));
    assert_eq!(ok(&mut Command::new(&p)), "works\n");
}

#[test]
fn hard_links_are_refused_not_split() {
    let p = copy(&fixture().prog, "linked");
    let other = fixture().dir.join("linked2");
    let _ = std::fs::remove_file(&other);
    std::fs::hard_link(&p, &other).unwrap();
    let o = out(ldfix().args(["patch", "--set-rpath", "/x"]).arg(&p));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("2 hard links"));
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&other).unwrap());
}

#[test]
fn os_abi_and_execstack() {
    let p = copy(&fixture().prog, "abi");
    ok(ldfix()
        .args(["patch", "--set-os-abi", "freebsd", "--set-execstack"])
        .arg(&p));
    assert_eq!(
        ok(ldfix()
            .args(["patch", "--print-os-abi", "--print-execstack"])
            .arg(&p)),
        "FreeBSD\nexecstack: X\n"
    );
    ok(ldfix()
        .args(["patch", "--set-os-abi", "Linux", "--clear-execstack"])
        .arg(&p));
    assert_eq!(
        ok(ldfix()
            .args(["patch", "--print-os-abi", "--print-execstack"])
            .arg(&p)),
        "Linux\nexecstack: -\n"
    );
    let o = out(ldfix().args(["patch", "--set-os-abi", "plan9"]).arg(&p));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn shrink_rpath_keeps_directories_with_needed_libraries() {
    let p = copy(&fixture().prog, "shrink");
    ok(ldfix()
        .args([
            "patch",
            "--set-rpath",
            "/nonexistent:/lib/x86_64-linux-gnu:$ORIGIN/lib",
        ])
        .arg(&p));
    ok(ldfix().args(["patch", "--shrink-rpath"]).arg(&p));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-rpath"]).arg(&p)),
        "/lib/x86_64-linux-gnu:$ORIGIN/lib\n"
    );
    ok(ldfix()
        .args([
            "patch",
            "--shrink-rpath",
            "--allowed-rpath-prefixes",
            "/usr",
        ])
        .arg(&p));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-rpath"]).arg(&p)),
        "$ORIGIN/lib\n"
    );
}

#[test]
fn remove_and_replace_needed() {
    let p = copy(&fixture().prog, "needed");
    ok(ldfix()
        .args([
            "patch",
            "--remove-needed",
            "libm.so.6",
            "--replace-needed",
            "libc.so.6",
            "libc.so.6",
            "--add-needed",
            "libdl.so.2",
        ])
        .arg(&p));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-needed"]).arg(&p)),
        "libdl.so.2\nlibc.so.6\n"
    );
    assert_eq!(ok(&mut Command::new(&p)), "works\n");
    let l = copy(&fixture().lib, "libl2.so");
    ok(ldfix()
        .args(["patch", "--set-soname", "libl-renamed.so.2"])
        .arg(&l));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-soname"]).arg(&l)),
        "libl-renamed.so.2\n"
    );
}

/// Without section headers (sstrip, packers), patchelf refuses even to print; ldfix reads and
/// edits through the program headers.
#[test]
fn files_without_section_headers() {
    let p = copy(&fixture().prog, "noshdr");
    let mut data = std::fs::read(&p).unwrap();
    data[0x28..0x30].fill(0); // e_shoff
    data[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    std::fs::write(&p, &data).unwrap();
    let printed = ok(ldfix()
        .args(["patch", "--print-rpath", "--print-needed"])
        .arg(&p));
    assert_eq!(printed, "/opt/old\nlibm.so.6\nlibc.so.6\n");
    let theirs = out(Command::new(patchelf_019()).arg("--print-rpath").arg(&p));
    assert!(
        !theirs.status.success(),
        "patchelf 0.19 now reads files without section headers"
    );
    let long = format!("/long/{}:/lib/x86_64-linux-gnu", "z".repeat(200));
    ok(ldfix().args(["patch", "--set-rpath", &long]).arg(&p));
    assert_eq!(
        ok(ldfix().args(["patch", "--print-rpath"]).arg(&p)),
        format!("{long}\n")
    );
    assert_eq!(ok(&mut Command::new(&p)), "works\n");
}
