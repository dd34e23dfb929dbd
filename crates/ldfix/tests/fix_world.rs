//! `ldfix fix`, `fix --check` and `undo` in the NixOS-like test world, run inside the sandbox
//! with the static ldfix (issue #7's acceptance): real gcc-built programs, a real venv with
//! manylinux wheels, real GC with Debian's nix, a kill -9 in the middle of a run.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ldfix_testworld::{Lib64, RunOutput, World};

mod common;
use common::static_ldfix;

fn world() -> &'static World {
    World::get().unwrap()
}

/// A scratch directory the sandbox can see (bound at the same path).
fn scratch(name: &str) -> tempfile::TempDir {
    let base = world().state_dir().join("fix-tests");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(base)
        .unwrap()
}

/// Runs a shell line in the sandbox with `dir` bound and the static ldfix at `/ldfix-bin/ldfix`.
fn sh(dir: &Path, line: &str) -> RunOutput {
    let bin = static_ldfix();
    world()
        .sandbox()
        .bind(dir)
        .ro_bind(bin.parent().unwrap())
        .var("LDFIX", &bin)
        .sh(line)
        .unwrap()
}

/// [`sh`] on a NixOS without stub-ld: no `/lib64` at all.
fn sh_no_lib64(dir: &Path, line: &str) -> RunOutput {
    world()
        .sandbox()
        .lib64(Lib64::Absent)
        .bind(dir)
        .sh(line)
        .unwrap()
}

fn gcc(out: &Path, source: &str, args: &[&str]) {
    let dir = out.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let src = dir.join(format!("{}.c", out.file_name().unwrap().to_string_lossy()));
    std::fs::write(&src, source).unwrap();
    let status = Command::new("gcc")
        .arg("-o")
        .arg(out)
        .arg(&src)
        .args(args)
        .status()
        .expect("gcc (apt-get install -y gcc)");
    assert!(status.success());
    std::fs::remove_file(&src).unwrap();
}

const CRYPT_C: &str = r#"
#include <crypt.h>
#include <stdio.h>
int main(void) {
    const char *h = crypt("pw", "$6$salt$");
    printf("hash %s\n", h ? h : "null");
    return h ? 0 : 1;
}
"#;

/// Every regular file under `dir` (outside `.ldfix`) with its bytes and mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() && e.file_name() != ".ldfix" {
                stack.push(e.path());
            } else if t.is_file() {
                let m = e.metadata().unwrap();
                out.insert(
                    e.path(),
                    (std::fs::read(e.path()).unwrap(), m.mtime(), m.mtime_nsec()),
                );
            }
        }
    }
    out
}

fn bytes_only(s: &BTreeMap<PathBuf, (Vec<u8>, i64, i64)>) -> BTreeMap<PathBuf, Vec<u8>> {
    s.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
}

#[test]
fn fhs_program_needing_libcrypt_runs_after_fix_and_undo_restores_it() {
    let tmp = scratch("crypt-");
    let app = tmp.path().join("app");
    let prog = app.join("bin/hasher");
    gcc(&prog, CRYPT_C, &["-lcrypt"]);
    let original = snapshot(&app);
    let p = prog.display();
    let a = app.display();

    // Before: stub-ld refuses it; without /lib64 the kernel cannot find the interpreter.
    let before = sh(tmp.path(), &format!("{p}"));
    assert_eq!(before.status, 127, "{before}");
    assert!(
        before
            .stderr
            .contains("NixOS cannot run dynamically linked executables"),
        "{before}"
    );
    let no_lib64 = sh_no_lib64(tmp.path(), &format!("{p}"));
    assert_eq!(no_lib64.status, 127, "{no_lib64}");

    let check = sh(tmp.path(), &format!("$LDFIX fix --check {a}"));
    assert_eq!(check.status, 1, "{check}");
    assert!(check.stdout.contains("libcrypt.so.1"), "{check}");
    assert_eq!(
        bytes_only(&snapshot(&app)),
        bytes_only(&original),
        "--check wrote"
    );

    let dry = sh(tmp.path(), &format!("$LDFIX fix --dry-run {a}"));
    assert_eq!(dry.status, 0, "{dry}");
    assert!(dry.stdout.contains("would change"), "{dry}");
    assert_eq!(
        bytes_only(&snapshot(&app)),
        bytes_only(&original),
        "--dry-run wrote"
    );

    let fix = sh(tmp.path(), &format!("$LDFIX fix {a} && {p}"));
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains("hash $6$salt$"), "{fix}");
    // Several worlds' store paths may coexist in the store: match the package, not the hash.
    assert!(fix.stdout.contains("-libxcrypt-4.4.33/lib"), "{fix}");
    assert!(
        fix.stdout.contains("-glibc-2.36/lib/ld-linux-x86-64.so.2"),
        "{fix}"
    );
    let fixed = snapshot(&app);
    let mode = std::fs::metadata(&prog).unwrap().mode();
    assert_eq!(mode & 0o7777, 0o755);

    let check = sh(tmp.path(), &format!("$LDFIX fix --check {a}"));
    assert_eq!(check.status, 0, "{check}");

    // Idempotent: bytes and mtimes unchanged by a second run.
    let again = sh(tmp.path(), &format!("$LDFIX fix {a}"));
    assert_eq!(again.status, 0, "{again}");
    assert!(again.stdout.contains("0 of 1 ELF files changed"), "{again}");
    assert_eq!(snapshot(&app), fixed, "second fix changed something");

    // JSON report of a check.
    let json = sh(tmp.path(), &format!("$LDFIX fix --check --json {a}"));
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["elf_files"], 1);
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);

    let undo = sh(tmp.path(), &format!("$LDFIX undo {a}"));
    assert_eq!(undo.status, 0, "{undo}");
    assert_eq!(bytes_only(&snapshot(&app)), bytes_only(&original));
    assert!(
        !app.join(".ldfix").exists(),
        "undo left the state directory"
    );
}

#[test]
fn undo_leaves_a_file_changed_after_fix() {
    let tmp = scratch("upgraded-");
    let app = tmp.path().join("app");
    let prog = app.join("bin/hasher");
    gcc(&prog, CRYPT_C, &["-lcrypt"]);
    let fix = sh(tmp.path(), &format!("$LDFIX fix {}", app.display()));
    assert_eq!(fix.status, 0, "{fix}");
    let mut data = std::fs::read(&prog).unwrap();
    data.extend_from_slice(b"upgraded");
    std::fs::write(&prog, &data).unwrap();
    let undo = sh(tmp.path(), &format!("$LDFIX undo {}", app.display()));
    assert_eq!(undo.status, 1, "{undo}");
    assert!(undo.stdout.contains("left alone"), "{undo}");
    assert_eq!(std::fs::read(&prog).unwrap(), data);
}

#[test]
fn missing_library_is_reported_with_its_nixpkgs_attribute() {
    let tmp = scratch("missing-");
    let app = tmp.path().join("app");
    // libpng16.so.16 is in the nixpkgs table and nowhere in the test world's store.
    let lib = tmp.path().join("build/libpng16.so.16");
    gcc(
        &lib,
        "int png_x(void){return 1;}",
        &["-shared", "-fPIC", "-Wl,-soname,libpng16.so.16"],
    );
    gcc(
        &app.join("bin/png"),
        "int png_x(void); int main(void){return png_x()-1;}",
        &[
            &format!("-L{}", lib.parent().unwrap().display()),
            "-l:libpng16.so.16",
        ],
    );
    let fix = sh(tmp.path(), &format!("$LDFIX fix {}", app.display()));
    assert_eq!(fix.status, 1, "{fix}");
    assert!(fix.stdout.contains("missing: libpng16.so.16"), "{fix}");
    assert!(fix.stdout.contains("nixpkgs#libpng"), "{fix}");
}

fn import_line(order: &[&str]) -> String {
    let mut py = String::new();
    for m in order {
        py.push_str(match *m {
            "numpy" => "import numpy, numpy.linalg; print('numpy', numpy.linalg.det(numpy.eye(3)));",
            "PIL" => "from PIL import Image, ImageFont; im = Image.new('RGB', (4, 4)); import io; b = io.BytesIO(); im.save(b, 'PNG'); print('pillow', len(b.getvalue()) > 0);",
            "cv2" => "import cv2, numpy; ok, buf = cv2.imencode('.png', numpy.zeros((4, 4, 3), numpy.uint8)); print('cv2', ok);",
            "pyodbc" => "import pyodbc; print('pyodbc', pyodbc.drivers());",
            _ => unreachable!(),
        });
    }
    py
}

#[test]
fn venv_with_real_wheels_imports_after_fix() {
    let tmp = scratch("venv-");
    let venv = tmp.path().join("venv");
    world()
        .venv(
            &venv,
            &["numpy", "pillow", "opencv-python-headless", "pyodbc"],
        )
        .unwrap();
    let py = venv.join("bin/python");
    let v = venv.display();
    let original = snapshot(&venv);

    // Before: pyodbc fails naming libodbc.so.2 (in the store, in no profile).
    let before = sh(
        tmp.path(),
        &format!("{} -c \"{}\"", py.display(), import_line(&["pyodbc"])),
    );
    assert_ne!(before.status, 0, "{before}");
    assert!(before.stderr.contains("libodbc.so.2"), "{before}");

    let check = sh(tmp.path(), &format!("$LDFIX fix --check {v}"));
    assert_eq!(check.status, 1, "{check}");

    let fix = sh(tmp.path(), &format!("$LDFIX fix {v}"));
    assert_eq!(fix.status, 0, "{fix}");
    eprintln!("{fix}");
    assert!(fix.stdout.contains("-unixODBC-2.3.11/lib"), "{fix}");
    // Bundled libraries that find their siblings through the module's RPATH are left alone.
    assert!(!fix.stdout.contains("RPATH (none) -> $ORIGIN\n"), "{fix}");

    for order in [
        ["numpy", "PIL", "cv2", "pyodbc"],
        ["pyodbc", "cv2", "PIL", "numpy"],
    ] {
        let run = sh(
            tmp.path(),
            &format!("{} -c \"{}\"", py.display(), import_line(&order)),
        );
        assert_eq!(run.status, 0, "{order:?}: {run}");
        assert!(run.stdout.contains("pyodbc ["), "{run}");
        assert!(run.stdout.contains("cv2 True"), "{run}");
        assert!(run.stdout.contains("pillow True"), "{run}");
        assert!(run.stdout.contains("numpy 1.0"), "{run}");
    }

    let check = sh(tmp.path(), &format!("$LDFIX fix --check {v}"));
    assert_eq!(check.status, 0, "{check}");
    let fixed = snapshot(&venv);
    let again = sh(tmp.path(), &format!("$LDFIX fix {v}"));
    assert_eq!(again.status, 0, "{again}");
    assert_eq!(snapshot(&venv), fixed, "second fix changed something");

    let undo = sh(tmp.path(), &format!("$LDFIX undo {v}"));
    assert_eq!(undo.status, 0, "{undo}");
    // Python wrote __pycache__ files since; every original file is back byte for byte.
    let now = snapshot(&venv);
    for (path, (bytes, _, _)) in &original {
        let same = now.get(path).is_some_and(|n| &n.0 == bytes);
        assert!(
            same,
            "{} differs from the original after undo",
            path.display()
        );
    }
}

/// Adds `dir` to the store as a new path that nothing refers to (no GC root).
fn add_to_store(dir: &Path) -> PathBuf {
    let out = Command::new("nix-store")
        .arg("--add")
        .arg(dir)
        .output()
        .expect("nix-store (apt-get install -y nix-bin)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// `nix-store --delete`: the collector's own liveness check for one path (unlike a full
/// `nix-collect-garbage`, it cannot remove other tests' unrooted paths).
fn try_collect(path: &Path) -> bool {
    Command::new("nix-store")
        .arg("--delete")
        .arg(path)
        .output()
        .unwrap()
        .status
        .success()
        && !path.exists()
}

/// The whole store's dead paths as the collector computes them: `nix-store --gc --print-dead`
/// runs the same root scan and reachability as `nix-collect-garbage` but deletes nothing, so
/// other tests and other worlds using this store at the same time lose nothing. The test then
/// deletes only its own path, with the same liveness check (`try_collect`).
fn dead_paths() -> std::collections::BTreeSet<PathBuf> {
    let out = Command::new("nix-store")
        .args(["--gc", "--print-dead"])
        .output()
        .expect("nix-store (apt-get install -y nix-bin)");
    assert!(
        out.status.success(),
        "nix-store --gc --print-dead: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

#[test]
fn gc_root_keeps_the_provider_until_undo() {
    let tmp = scratch("gc-");
    let uniq = format!("ldfixgc{}", std::process::id());
    let soname = format!("lib{uniq}.so.1");
    let pkg = tmp.path().join(format!("{uniq}-1.0"));
    gcc(
        &pkg.join("lib").join(&soname),
        "int gc_answer(void){return 42;}",
        &["-shared", "-fPIC", &format!("-Wl,-soname,{soname}")],
    );

    // Negative control (no fix): added and never referenced, the collector finds it dead.
    let control = add_to_store(&pkg);
    assert!(
        dead_paths().contains(&control),
        "an unrooted path must be garbage"
    );
    assert!(
        try_collect(&control),
        "an unrooted path must be collectable"
    );

    let provider = add_to_store(&pkg);
    let app = tmp.path().join("app");
    gcc(
        &app.join("bin/answer"),
        "#include <stdio.h>\nint gc_answer(void); int main(void){printf(\"%d\\n\", gc_answer()); return 0;}",
        &[&format!("-L{}", pkg.join("lib").display()), &format!("-l:{soname}")],
    );
    let a = app.display();
    let fix = sh(tmp.path(), &format!("$LDFIX fix {a} && {a}/bin/answer"));
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains("42"), "{fix}");
    assert!(
        fix.stdout.contains(&provider.display().to_string()),
        "{fix}"
    );

    assert!(
        !dead_paths().contains(&provider),
        "fix's GC root did not keep {}",
        provider.display()
    );
    assert!(
        !try_collect(&provider),
        "the collector deleted a rooted path"
    );
    let run = sh(tmp.path(), &format!("{a}/bin/answer"));
    assert_eq!(run.status, 0, "{run}");
    assert!(run.stdout.contains("42"), "{run}");

    let undo = sh(tmp.path(), &format!("$LDFIX undo {a}"));
    assert_eq!(undo.status, 0, "{undo}");
    assert!(
        dead_paths().contains(&provider),
        "undo did not drop the GC root of {}",
        provider.display()
    );
    assert!(try_collect(&provider), "undo did not drop the GC root");
}

#[test]
fn kill_during_fix_of_a_large_tree_never_leaves_a_broken_file() {
    let tmp = scratch("kill-");
    let tree = tmp.path().join("tree");
    let proto = tmp.path().join("proto/hasher");
    gcc(&proto, CRYPT_C, &["-lcrypt"]);
    let original = std::fs::read(&proto).unwrap();
    for d in 0..20 {
        let dir = tree.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::copy(&proto, dir.join(format!("p{f}"))).unwrap();
        }
    }
    // The fixed bytes, from a reference run on one copy.
    let reference = tmp.path().join("ref");
    std::fs::create_dir_all(&reference).unwrap();
    std::fs::copy(&proto, reference.join("hasher")).unwrap();
    let r = sh(tmp.path(), &format!("$LDFIX fix {}", reference.display()));
    assert_eq!(r.status, 0, "{r}");
    let fixed = std::fs::read(reference.join("hasher")).unwrap();
    assert_ne!(fixed, original);

    let bin = static_ldfix();
    let home = tempfile::tempdir_in(world().state_dir()).unwrap();
    let mut kills = 0;
    let mut partial = 0;
    for round in 0..8u64 {
        let mut cmd = world()
            .sandbox()
            .bind(tmp.path())
            .ro_bind(bin.parent().unwrap())
            .command(
                &[bin.as_os_str(), "fix".as_ref(), tree.as_os_str()],
                home.path(),
            )
            .unwrap();
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Different moments: while reading, resolving, writing.
        std::thread::sleep(Duration::from_millis(100 + round * 150));
        if child.try_wait().unwrap().is_none() {
            kills += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let mut n_fixed = 0;
        for d in 0..20 {
            for f in 0..100 {
                let data = std::fs::read(tree.join(format!("d{d}/p{f}"))).unwrap();
                assert!(
                    data == original || data == fixed,
                    "round {round}: d{d}/p{f} is neither the original nor the fixed file"
                );
                n_fixed += usize::from(data == fixed);
            }
        }
        if n_fixed > 0 && n_fixed < 2000 {
            partial += 1;
        }
        // Undo after a partial run restores every file; the next round starts afresh.
        if tree.join(".ldfix/journal").exists() {
            let undo = sh(tmp.path(), &format!("$LDFIX undo {}", tree.display()));
            assert_eq!(undo.status, 0, "round {round}: {undo}");
        }
        for d in 0..20 {
            for f in 0..100 {
                let data = std::fs::read(tree.join(format!("d{d}/p{f}"))).unwrap();
                assert!(
                    data == original,
                    "round {round}: undo left d{d}/p{f} changed"
                );
            }
        }
    }
    assert!(
        kills > 0,
        "no run was interrupted; the tree is too small to test this"
    );
    eprintln!("{kills} runs killed, {partial} of them in the middle of writing");
    let fix = sh(
        tmp.path(),
        &format!(
            "$LDFIX fix {t} && $LDFIX fix --check {t} && {t}/d7/p7",
            t = tree.display()
        ),
    );
    assert_eq!(fix.status, 0, "{fix}");
    let undo = sh(tmp.path(), &format!("$LDFIX undo {}", tree.display()));
    assert_eq!(undo.status, 0, "{undo}");
    for d in 0..20 {
        for f in 0..100 {
            assert_eq!(
                std::fs::read(tree.join(format!("d{d}/p{f}"))).unwrap(),
                original
            );
        }
    }
}

/// A library package `NAME-VERSION/lib/libNAME.so.1` added to the store (no GC root).
fn store_lib(tmp: &Path, uniq: &str, version: &str) -> PathBuf {
    let soname = format!("lib{uniq}.so.1");
    let pkg = tmp.join(format!("{uniq}-{version}"));
    gcc(
        &pkg.join("lib").join(&soname),
        &format!("int gc_answer(void){{return {};}}", 40 + version.len()),
        &["-shared", "-fPIC", &format!("-Wl,-soname,{soname}")],
    );
    add_to_store(&pkg)
}

#[test]
fn update_repoints_to_the_newer_provider_and_drops_the_old_root() {
    let tmp = scratch("update-");
    let uniq = format!("ldfixup{}", std::process::id());
    let old = store_lib(tmp.path(), &uniq, "1.0");
    let app = tmp.path().join("app");
    gcc(
        &app.join("bin/answer"),
        "#include <stdio.h>\nint gc_answer(void); int main(void){printf(\"%d\\n\", gc_answer()); return 0;}",
        &[&format!("-L{}/lib", old.display()), &format!("-l:lib{uniq}.so.1")],
    );
    let original = std::fs::read(app.join("bin/answer")).unwrap();
    let a = app.display();
    let fix = sh(tmp.path(), &format!("$LDFIX fix {a}"));
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains(&old.display().to_string()), "{fix}");

    // A newer package appears (a system update); plain fix keeps the working file as it is.
    let new = store_lib(tmp.path(), &uniq, "2.0.1");
    let again = sh(tmp.path(), &format!("$LDFIX fix {a}"));
    assert!(again.stdout.contains("0 of 1 ELF files changed"), "{again}");
    let update = sh(
        tmp.path(),
        &format!("$LDFIX fix --update {a} && {a}/bin/answer"),
    );
    assert_eq!(update.status, 0, "{update}");
    assert!(
        update.stdout.contains(&new.display().to_string()),
        "{update}"
    );
    assert!(update.stdout.contains("dropped GC roots"), "{update}");
    assert!(
        update.stdout.contains("45"),
        "the new library is used: {update}"
    );
    assert!(try_collect(&old), "the old provider's root was not dropped");
    assert!(!try_collect(&new), "the new provider is not rooted");

    // Undo walks back through both changes.
    let undo = sh(tmp.path(), &format!("$LDFIX undo {a}"));
    assert_eq!(undo.status, 0, "{undo}");
    assert_eq!(std::fs::read(app.join("bin/answer")).unwrap(), original);
    assert!(try_collect(&new));
}

#[test]
fn check_flags_a_copied_tree_and_fix_roots_it_again() {
    let tmp = scratch("moved-");
    let app = tmp.path().join("app");
    gcc(&app.join("bin/hasher"), CRYPT_C, &["-lcrypt"]);
    let copy = tmp.path().join("copy");
    let fix = sh(
        tmp.path(),
        &format!(
            "$LDFIX fix {a} && cp -a {a} {c} && $LDFIX fix --check {c}",
            a = app.display(),
            c = copy.display()
        ),
    );
    assert_eq!(fix.status, 1, "{fix}");
    assert!(fix.stdout.contains("moved or copied"), "{fix}");
    let refix = sh(
        tmp.path(),
        &format!(
            "$LDFIX fix {c} && $LDFIX fix --check {c} && {c}/bin/hasher",
            c = copy.display()
        ),
    );
    assert_eq!(refix.status, 0, "{refix}");
}

/// A foreign-architecture program with no loader for it on the machine (aarch64's libc.so.6,
/// which is also a program) is refused, never given the x86_64 loader; a script whose
/// interpreter no profile has is reported. Nothing is modified.
#[test]
fn foreign_program_is_refused_and_broken_script_reported() {
    let tmp = scratch("foreign-");
    let app = tmp.path().join("app");
    std::fs::create_dir_all(app.join("bin")).unwrap();
    std::fs::copy(
        "/usr/aarch64-linux-gnu/lib/libc.so.6",
        app.join("bin/libc-aarch64"),
    )
    .expect("aarch64's libc.so.6 (apt-get install -y libc6-arm64-cross)");
    let script = app.join("bin/tool.sh");
    // No perl in the profiles: reported, left as it is.
    std::fs::write(&script, "#!/usr/bin/perl\nprint 1;\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&script)
        .status()
        .unwrap();
    let original = snapshot(&app);
    let fix = sh(tmp.path(), &format!("$LDFIX fix {}", app.display()));
    assert_eq!(fix.status, 1, "{fix}");
    assert!(fix.stdout.contains("not fixed:"), "{fix}");
    assert!(
        fix.stdout
            .contains("aarch64 executable whose loader /lib/ld-linux-aarch64.so.1")
            && fix.stdout.contains("never gives it a 64-bit x86_64 loader"),
        "{fix}"
    );
    assert!(
        fix.stdout.contains("script:")
            && fix
                .stdout
                .contains("no `perl` is in the user or system profile"),
        "{fix}"
    );
    assert_eq!(
        bytes_only(&snapshot(&app)),
        bytes_only(&original),
        "a refused file was modified"
    );
}

/// i386 programs get the store's i386 glibc (nixpkgs' `pkgsi686Linux.glibc`) and i386
/// providers, never the x86_64 ones: one tree holds an i386 and an x86_64 program that both
/// need `libz.so.1`, and each gets its own architecture's zlib.
#[test]
fn i386_and_x86_64_programs_of_one_tree_get_their_own_loader_and_providers() {
    let w = world();
    let tmp = scratch("i386-");
    let app = tmp.path().join("app");
    let zver = "#include <stdio.h>\n#include <zlib.h>\nint main(void){printf(\"zlib %s %d-bit ok\\n\", zlibVersion(), (int)(8 * sizeof(void *)));return 0;}\n";
    let p32 = app.join("bin/zver32");
    let p64 = app.join("bin/zver64");
    gcc(&p32, zver, &["-m32", "-lz"]);
    gcc(&p64, zver, &["-lz"]);
    let original = snapshot(&app);
    let before = sh(tmp.path(), &p32.display().to_string());
    assert_eq!(before.status, 127, "{before}");

    let fix = sh(
        tmp.path(),
        &format!(
            "$LDFIX fix {} && {} && {}",
            app.display(),
            p32.display(),
            p64.display()
        ),
    );
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains("zlib 1.2.13 32-bit ok"), "{fix}");
    assert!(fix.stdout.contains("zlib 1.2.13 64-bit ok"), "{fix}");
    // Several worlds may share the store: match the packages, not the hashes; the runs above
    // prove the architectures (an x86_64 libz cannot load into an i386 process).
    let x86_64_zlib = std::fs::canonicalize(w.zlib())
        .unwrap()
        .display()
        .to_string();
    let d32 = ldfix_testworld::readelf(&p32).unwrap();
    let interp32 = d32.interp.unwrap_or_default();
    assert!(
        interp32.starts_with("/nix/store/") && interp32.ends_with("-glibc-2.36/lib/ld-linux.so.2"),
        "{interp32}: {fix}"
    );
    // Debian's i386 loader searches /lib32: its own libc directory is in the run path.
    let glibc32_lib = interp32.trim_end_matches("/ld-linux.so.2");
    let rpath32 = d32.rpath.unwrap_or_default();
    assert!(
        rpath32.ends_with(&format!("-zlib-1.2.13/lib:{glibc32_lib}"))
            && !rpath32.contains(&x86_64_zlib),
        "{rpath32}: {fix}"
    );
    let d64 = ldfix_testworld::readelf(&p64).unwrap();
    let rpath64 = d64.rpath.unwrap_or_default();
    assert!(
        rpath64 == format!("{x86_64_zlib}/lib")
            || (rpath64.ends_with("-zlib-1.2.13/lib") && !rpath64.contains(glibc32_lib)),
        "{rpath64}: {fix}"
    );
    assert_ne!(rpath64, rpath32);

    let again = sh(tmp.path(), &format!("$LDFIX fix --check {}", app.display()));
    assert_eq!(again.status, 0, "{again}");
    let undo = sh(tmp.path(), &format!("$LDFIX undo {}", app.display()));
    assert_eq!(undo.status, 0, "{undo}");
    assert_eq!(bytes_only(&snapshot(&app)), bytes_only(&original));
}

/// Copies `src` into `dst` (regular files, directories and symlinks as they are).
fn copy_tree(src: &Path, dst: &Path, skip: &[&str]) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let t = e.file_type().unwrap();
        let to = dst.join(&name);
        if t.is_dir() {
            copy_tree(&e.path(), &to, skip);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn foreign_cpython_prefix_runs_and_imports_ssl_sqlite3_ctypes_after_fix() {
    // An FHS CPython prefix: Debian's python3.11 and its standard library (with lib-dynload's
    // extension modules, which need libssl, libsqlite3, libffi from the machine).
    let python = Path::new("/usr/bin/python3.11");
    let stdlib = Path::new("/usr/lib/python3.11");
    assert!(
        python.is_file() && stdlib.is_dir(),
        "needs Debian's python3.11: apt-get install -y python3.11"
    );
    let tmp = scratch("cpython-");
    let prefix = tmp.path().join("python");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::copy(python, prefix.join("bin/python3.11")).unwrap();
    copy_tree(
        stdlib,
        &prefix.join("lib/python3.11"),
        &["dist-packages", "site-packages", "__pycache__", "test"],
    );
    let py = prefix.join("bin/python3.11");
    let imports = "import ssl, sqlite3, ctypes; print('ok', ssl.OPENSSL_VERSION, sqlite3.sqlite_version, ctypes.sizeof(ctypes.c_void_p))";
    let line = format!("{} -c \"{imports}\"", py.display());

    let stub = sh(tmp.path(), &line);
    assert_eq!(stub.status, 127, "{stub}");
    assert!(stub.stderr.contains("NixOS cannot run"), "{stub}");
    let absent = sh_no_lib64(tmp.path(), &line);
    assert_eq!(absent.status, 127, "{absent}");

    // Optional modules need libraries the machine lacks (libuuid, libnsl, Berkeley DB): they are
    // reported with their nixpkgs attribute, and fix exits 1; everything else is fixed.
    let fix = sh(tmp.path(), &format!("$LDFIX fix {}", prefix.display()));
    assert_eq!(fix.status, 1, "{fix}");
    assert!(fix.stdout.contains("missing: libuuid.so.1"), "{fix}");
    assert!(fix.stdout.contains("nixpkgs#libuuid"), "{fix}");
    let run = sh(tmp.path(), &line);
    assert_eq!(run.status, 0, "{run}");
    assert!(run.stdout.contains("ok OpenSSL 3"), "{run}");
    assert!(run.stdout.contains(" 8\n"), "{run}");
    // Without /lib64 at all, the fixed interpreter still starts it.
    let absent = sh_no_lib64(tmp.path(), &line);
    assert_eq!(absent.status, 0, "{absent}");
}

/// Issue 7: Debian 13's `hello` needs `GLIBC_2.38`; the system glibc is 2.36. `fix` gives it the
/// store's glibc 2.41 loader (in no profile, found through the index), says why, and roots it.
#[test]
fn program_needing_a_newer_glibc_gets_the_newer_store_loader_and_the_reason() {
    let w = world();
    let tmp = scratch("glibc-next-");
    let app = tmp.path().join("app");
    let prog = app.join("bin/hello");
    std::fs::create_dir_all(prog.parent().unwrap()).unwrap();
    std::fs::copy(w.debian13().unwrap().hello(), &prog).unwrap();
    let versions = Command::new("readelf")
        .arg("-V")
        .arg(&prog)
        .output()
        .expect("readelf (apt-get install -y binutils)");
    let versions = String::from_utf8_lossy(&versions.stdout).into_owned();
    assert!(
        versions.contains("GLIBC_2.38"),
        "the sample must need GLIBC_2.38:\n{versions}"
    );
    let original = snapshot(&app);
    let p = prog.display();
    let a = app.display();
    let system_loader = w.loader();
    // Several worlds may share the store: the loader is any store glibc 2.41's.
    let next_suffix = "-glibc-2.41/lib/ld-linux-x86-64.so.2";

    // Before: stub-ld refuses it, and the system glibc cannot run it either.
    let before = sh(tmp.path(), &format!("{p}"));
    assert_eq!(before.status, 127, "{before}");
    let old = sh(tmp.path(), &format!("{} {p}", system_loader.display()));
    assert_ne!(old.status, 0, "{old}");
    assert!(
        old.stderr.contains("GLIBC_2.38' not found"),
        "the system glibc must lack GLIBC_2.38: {old}"
    );

    let fix = sh(tmp.path(), &format!("$LDFIX fix {a} && {p}"));
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains("Hello, world!"), "{fix}");
    assert!(
        fix.stdout.contains(&format!(
            "{next_suffix} (glibc 2.41): {p} needs GLIBC_2.38, newer than the system glibc 2.36 defines"
        )),
        "{fix}"
    );
    let interp = ldfix_testworld::readelf(&prog).unwrap().interp.unwrap();
    assert!(
        interp.starts_with("/nix/store/") && interp.ends_with(next_suffix),
        "{interp}: {fix}"
    );

    let check = sh(tmp.path(), &format!("$LDFIX fix --check {a}"));
    assert_eq!(check.status, 0, "{check}");
    let undo = sh(tmp.path(), &format!("$LDFIX undo {a}"));
    assert_eq!(undo.status, 0, "{undo}");
    assert!(
        undo.stdout.contains("-glibc-2.41"),
        "undo must drop the root of the newer glibc: {undo}"
    );
    assert_eq!(bytes_only(&snapshot(&app)), bytes_only(&original));
}

/// A library that `dlopen`s `libcrypt.so.1` (only in the store, in no profile), declared — or
/// not — in a `.note.dlopen` note laid out as systemd's `ELF_NOTE_DLOPEN` macro does.
fn dlopen_host_c(with_note: bool) -> String {
    let note = ldfix_testworld::fixtures::dlopen_note_c(
        r#"[{\"feature\":\"password-hashing\",\"description\":\"crypt(3)\",\"priority\":\"required\",\"soname\":[\"libcrypt.so.1\"]}]"#,
    );
    format!(
        r#"#include <dlfcn.h>
#include <stdio.h>
{}
int host_hash(void) {{
    void *h = dlopen("libcrypt.so.1", RTLD_NOW);
    if (!h) {{ printf("dlopen failed: %s\n", dlerror()); return 1; }}
    char *(*c)(const char *, const char *) = (char *(*)(const char *, const char *))dlsym(h, "crypt");
    printf("hash %s\n", c("pw", "$6$salt$"));
    return 0;
}}
"#,
        if with_note { note.as_str() } else { "" }
    )
}

/// Issue 7: `.note.dlopen` dependencies are made resolvable from the object that declares them.
/// The negative control is the same tree without the note: nothing tells `fix` about the
/// `dlopen`, so the run fails there.
#[test]
fn dlopen_note_dependency_becomes_loadable_from_the_declaring_library() {
    let w = world();
    let tmp = scratch("dlopen-");
    for with_note in [true, false] {
        let app = tmp.path().join(if with_note { "noted" } else { "plain" });
        let host = app.join("lib/libhost.so");
        gcc(
            &host,
            &dlopen_host_c(with_note),
            &["-shared", "-fPIC", "-Wl,-soname,libhost.so"],
        );
        gcc(
            &app.join("bin/main"),
            "int host_hash(void); int main(void){return host_hash();}",
            &[
                &format!("-L{}", host.parent().unwrap().display()),
                "-lhost",
                "-Wl,-rpath,$ORIGIN/../lib",
            ],
        );
        let a = app.display();
        let fix = sh(tmp.path(), &format!("$LDFIX fix {a} && {a}/bin/main"));
        let host_dyn = ldfix_testworld::readelf(&host).unwrap();
        let host_path = host_dyn.rpath.or(host_dyn.runpath).unwrap_or_default();
        // Several worlds may share the store: match the package, not the hash.
        let xcrypt_suffix = w
            .libxcrypt()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .split_once('-')
            .unwrap()
            .1
            .to_owned();
        if with_note {
            assert_eq!(fix.status, 0, "{fix}");
            assert!(fix.stdout.contains("hash $6$salt$"), "{fix}");
            assert!(
                fix.stdout.contains("dlopen:") && fix.stdout.contains("libcrypt.so.1"),
                "{fix}"
            );
            assert!(
                host_path.starts_with("/nix/store/")
                    && host_path.ends_with(&format!("-{xcrypt_suffix}/lib"))
                    && Path::new(&host_path).is_dir(),
                "{host_path}: {fix}"
            );
        } else {
            assert_ne!(fix.status, 0, "{fix}");
            assert!(
                fix.stdout
                    .contains("dlopen failed: libcrypt.so.1: cannot open shared object file"),
                "{fix}"
            );
            assert!(host_path.is_empty(), "{fix}");
        }
    }
}

/// Dynamically linked musl programs (musl-gcc) get the store's musl loader (nixpkgs' `musl`,
/// in no profile), never a glibc one; a library they need that only glibc builds provide
/// (`libz.so.1`) is reported, never taken from a glibc package.
#[test]
fn musl_programs_get_the_store_musl_loader_and_never_glibc_libraries() {
    let w = world();
    let tmp = scratch("musl-");
    let app = tmp.path().join("app");
    let bin = app.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let musl_gcc = |out: &Path, src: &str, extra: &[&str]| {
        let c = tmp.path().join("src.c");
        std::fs::write(&c, src).unwrap();
        let status = Command::new("musl-gcc")
            .arg("-o")
            .arg(out)
            .arg(&c)
            .args(extra)
            .status()
            .expect("musl-gcc (apt-get install -y musl-tools)");
        assert!(status.success());
    };
    let hello = bin.join("hello-musl");
    musl_gcc(
        &hello,
        "#include <stdio.h>\nint main(void){puts(\"musl ok\");return 0;}\n",
        &[],
    );
    // A musl program that needs libz.so.1: built against a musl stub outside the tree.
    let stub_dir = tmp.path().join("stub");
    std::fs::create_dir_all(&stub_dir).unwrap();
    musl_gcc(
        &stub_dir.join("libz.so.1"),
        "const char *zlibVersion(void){return \"stub\";}\n",
        &["-shared", "-fPIC", "-Wl,-soname,libz.so.1"],
    );
    let needs_z = bin.join("zver-musl");
    musl_gcc(
        &needs_z,
        "const char *zlibVersion(void); int main(void){return zlibVersion()[0] == 0;}\n",
        &[&format!("-L{}", stub_dir.display()), "-l:libz.so.1"],
    );
    assert_eq!(
        ldfix_testworld::readelf(&hello).unwrap().interp.as_deref(),
        Some("/lib/ld-musl-x86_64.so.1")
    );
    let before = sh(tmp.path(), &hello.display().to_string());
    assert_eq!(before.status, 127, "{before}");

    let fix = sh(
        tmp.path(),
        &format!(
            "$LDFIX fix {}; echo status=$?; {}",
            app.display(),
            hello.display()
        ),
    );
    assert!(fix.stdout.contains("status=1"), "libz is missing: {fix}");
    assert!(fix.stdout.contains("musl ok"), "{fix}");
    // Several worlds may share the store: match the package, not the hash.
    let interp = ldfix_testworld::readelf(&hello).unwrap().interp.unwrap();
    assert!(
        interp.starts_with("/nix/store/")
            && interp.ends_with("-musl-1.2.3/lib/ld-musl-x86_64.so.1"),
        "{interp}: {fix}"
    );
    assert!(fix.stdout.contains("loader of musl"), "{fix}");
    assert!(
        fix.stdout.contains(&format!(
            "missing: libz.so.1 (needed by {}): no library of this name for x86_64 musl",
            needs_z.display()
        )),
        "{fix}"
    );
    let z_info = ldfix_testworld::readelf(&needs_z).unwrap();
    let glibc_zlib = std::fs::canonicalize(w.zlib())
        .unwrap()
        .display()
        .to_string();
    assert!(
        !z_info.rpath.unwrap_or_default().contains(&glibc_zlib),
        "a glibc zlib was given to a musl program: {fix}"
    );
    let undo = sh(tmp.path(), &format!("$LDFIX undo {}", app.display()));
    assert_eq!(undo.status, 0, "{undo}");
}

/// `#!/bin/bash` does not exist on NixOS: `fix` rewrites it to the store path of the profile's
/// bash (keeping its argument), roots it, and a second run writes nothing. A script whose
/// interpreter no profile has is reported and left alone; a non-executable one is not a program.
#[test]
fn scripts_with_a_missing_interpreter_get_the_profiles_one_as_a_store_path() {
    let w = world();
    let tmp = scratch("scripts-");
    let app = tmp.path().join("app");
    let bin = app.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("tool");
    let perl = bin.join("perl-tool");
    let sourced = bin.join("completion.sh");
    std::fs::write(
        &tool,
        "#! /bin/bash  -e\necho \"hi from bash $BASH_VERSION\"\n",
    )
    .unwrap();
    std::fs::write(&perl, "#!/usr/bin/perl\nprint 1;\n").unwrap();
    std::fs::write(&sourced, "#!/bin/bash\ncomplete -F f x\n").unwrap();
    // busybox's awk: the applet's own link, not the multi-call binary it points to.
    let awk = bin.join("count");
    std::fs::write(
        &awk,
        "#!/usr/bin/awk -f\nBEGIN { print \"awk applet ok\" }\n",
    )
    .unwrap();
    for (f, mode) in [
        (&tool, "755"),
        (&perl, "755"),
        (&sourced, "644"),
        (&awk, "755"),
    ] {
        assert!(Command::new("chmod")
            .arg(mode)
            .arg(f)
            .status()
            .unwrap()
            .success());
    }
    let original = snapshot(&app);
    let t = tool.display();
    let a = app.display();

    let before = sh(tmp.path(), &format!("{t}"));
    assert_eq!(before.status, 127, "{before}");

    let fix = sh(
        tmp.path(),
        &format!("$LDFIX fix {a}; echo status=$?; {t}; {}", awk.display()),
    );
    let bash = std::fs::canonicalize(w.bash().join("bin/bash")).unwrap();
    assert!(
        fix.stdout.contains("status=1"),
        "perl is still missing: {fix}"
    );
    assert!(fix.stdout.contains("hi from bash 5."), "{fix}");
    assert!(
        fix.stdout
            .contains(&format!("interpreter /bin/bash -> {}", bash.display())),
        "{fix}"
    );
    assert!(fix.stdout.contains("awk applet ok"), "{fix}");
    assert!(
        fix.stdout
            .contains("0 of 0 ELF files and 2 #! scripts changed"),
        "{fix}"
    );
    assert!(
        fix.stdout.contains(&format!("script: {}", perl.display())),
        "{fix}"
    );
    assert!(!fix.stdout.contains("completion.sh"), "{fix}");
    let text = std::fs::read_to_string(&tool).unwrap();
    assert_eq!(
        text,
        format!(
            "#! {}  -e\necho \"hi from bash $BASH_VERSION\"\n",
            bash.display()
        )
    );
    assert_eq!(
        std::fs::metadata(&tool).unwrap().mode() & 0o7777,
        0o755,
        "mode kept"
    );
    let bash_store = w.bash().display().to_string();
    let roots = std::fs::read_dir(app.join(".ldfix/gcroots"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert!(
        roots.iter().any(|r| r.display().to_string() == bash_store),
        "bash is not rooted: {roots:?}"
    );

    let fixed = snapshot(&app);
    let again = sh(tmp.path(), &format!("$LDFIX fix {a}"));
    assert!(again.stdout.contains("0 of 0 ELF files changed"), "{again}");
    assert_eq!(snapshot(&app), fixed, "second fix changed something");
    let roots_again = std::fs::read_dir(app.join(".ldfix/gcroots"))
        .unwrap()
        .count();
    assert_eq!(
        roots_again,
        roots.len(),
        "a second run must keep the root of bash"
    );

    let undo = sh(tmp.path(), &format!("$LDFIX undo {a}"));
    assert_eq!(undo.status, 0, "{undo}");
    assert_eq!(bytes_only(&snapshot(&app)), bytes_only(&original));
}

/// Hard links are not split silently: the fixed name gets a new inode, the report says so, and
/// the other name keeps the original bytes (uv's cache links one file into many venvs).
#[test]
fn hard_linked_file_is_split_and_the_report_says_so() {
    let tmp = scratch("hardlink-");
    let app = tmp.path().join("app");
    let prog = app.join("bin/hasher");
    gcc(&prog, CRYPT_C, &["-lcrypt"]);
    let cache = tmp.path().join("cache-copy");
    std::fs::hard_link(&prog, &cache).unwrap();
    let original = std::fs::read(&prog).unwrap();
    let dry = sh(
        tmp.path(),
        &format!("$LDFIX fix --dry-run {}", app.display()),
    );
    assert!(
        dry.stderr.contains(&format!(
            "1 files are hard links ({}): their names in this tree would get their own fixed copies; 1 other names outside this run would keep the original contents",
            prog.display()
        )),
        "{dry}"
    );
    let fix = sh(
        tmp.path(),
        &format!("$LDFIX fix {} && {}", app.display(), prog.display()),
    );
    assert_eq!(fix.status, 0, "{fix}");
    assert!(fix.stdout.contains("hash $6$salt$"), "{fix}");
    assert!(
        fix.stderr.contains(&format!(
            "1 files are hard links ({}): their names in this tree get their own fixed copies; 1 other names outside this run keep the original contents",
            prog.display()
        )),
        "{fix}"
    );
    assert_eq!(
        std::fs::read(&cache).unwrap(),
        original,
        "the other name changed"
    );
    assert_eq!(std::fs::metadata(&cache).unwrap().nlink(), 1);
    assert_ne!(std::fs::read(&prog).unwrap(), original);
}
