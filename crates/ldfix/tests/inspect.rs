//! `ldfix inspect` on a real tree: gcc-built programs whose interpreter is missing, is a
//! stub-ld or nix-ld, scripts, a foreign-architecture loader from Debian's cross packages,
//! a damaged file, symlinks. Every diagnosis is checked against what really happens when the
//! program is executed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const HELLO: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";

/// Freestanding x86_64 code: a program used as PT_INTERP must not run libc's static start-up,
/// which would read the main program's headers through AT_PHDR as if they were its own.
const FREESTANDING: &str = r#"
static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void _start(void) {
    sys3(1, 2, (long)msg, sizeof msg - 1);
    sys3(60, STATUS, 0, 0);
    for (;;) {}
}
"#;

/// What NixOS's stub-ld does (nixpkgs `pkgs/by-name/st/stub-ld`): print why, exit 127.
const STUB_LD: &str = "#define STATUS 127\nstatic const char msg[] = \
    \"Could not start dynamically linked executable\\n\"
    \"NixOS cannot run dynamically linked executables intended for generic\\n\"
    \"linux environments out of the box. For more information, see:\\n\"
    \"https://nix.dev/permalink/stub-ld\\n\";\n";

/// Stands in for nix-ld: carries the strings nix-ld is recognised by (its variables and its
/// compiled-in default library directory) and, like nix-ld without a loader to start, fails.
const NIX_LD: &str = "#define STATUS 1\nstatic const char msg[] = \
    \"[nix-ld] cannot start the loader: set NIX_LD and NIX_LD_LIBRARY_PATH \"
    \"(default /run/current-system/sw/share/nix-ld/lib)\\n\";\n";

const LOADER_FLAGS: [&str; 5] = [
    "-nostdlib",
    "-static",
    "-no-pie",
    "-fno-stack-protector",
    "-O2",
];

fn gcc(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(name);
    let status = Command::new("gcc")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .args(flags)
        .status()
        .expect("gcc is not installed; run `scripts/install-deps` (or `apt-get install -y gcc`)");
    assert!(status.success());
    std::fs::remove_file(src).unwrap();
    out
}

fn ldfix(args: &[&Path], json: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldfix"));
    command.arg("inspect");
    if json {
        command.arg("--json");
    }
    command.args(args).output().unwrap()
}

fn executable(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The tree under test, and a directory of interpreters outside it.
struct World {
    _temp: tempfile::TempDir,
    root: PathBuf,
    tree: PathBuf,
}

fn world() -> World {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().canonicalize().unwrap();
    let loaders = root.join("loaders");
    let tree = root.join("tree");
    std::fs::create_dir_all(&loaders).unwrap();
    std::fs::create_dir_all(tree.join("bin/sub")).unwrap();
    let stub = gcc(
        &loaders,
        "stub-ld",
        &format!("{STUB_LD}{FREESTANDING}"),
        &LOADER_FLAGS,
    );
    let nix_ld = gcc(
        &loaders,
        "nix-ld",
        &format!("{NIX_LD}{FREESTANDING}"),
        &LOADER_FLAGS,
    );

    let bin = tree.join("bin");
    let good = gcc(&bin, "good", HELLO, &[]);
    // The same program with a payload appended (as PyInstaller does), and without section headers.
    let mut packed = std::fs::read(&good).unwrap();
    packed.extend_from_slice(&[0x5a; 1000]);
    std::fs::write(bin.join("packed"), &packed).unwrap();
    executable(&bin.join("packed"));
    let mut bare = std::fs::read(&good).unwrap();
    bare[0x28..0x30].fill(0); // e_shoff
    bare[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    std::fs::write(bin.join("bare"), &bare).unwrap();
    executable(&bin.join("bare"));
    gcc(
        &bin,
        "no-interp",
        HELLO,
        &["-Wl,--dynamic-linker=/nonexistent/ld-linux-x86-64.so.2"],
    );
    gcc(
        &bin,
        "on-stub-ld",
        HELLO,
        &[&format!("-Wl,--dynamic-linker={}", stub.display())],
    );
    gcc(
        &bin,
        "on-nix-ld",
        HELLO,
        &[&format!("-Wl,--dynamic-linker={}", nix_ld.display())],
    );
    gcc(&bin.join("sub"), "static", HELLO, &["-static"]);
    std::fs::write(
        bin.join("missing-bash.sh"),
        "#!/nonexistent/bash\necho hi\n",
    )
    .unwrap();
    executable(&bin.join("missing-bash.sh"));
    std::fs::write(
        bin.join("env-missing.py"),
        "#!/usr/bin/env ldfix-test-no-such-command\n",
    )
    .unwrap();
    executable(&bin.join("env-missing.py"));
    std::fs::write(bin.join("ok.sh"), "#!/bin/sh\necho hi\n").unwrap();
    executable(&bin.join("ok.sh"));
    std::fs::write(tree.join("README.txt"), "not a program\n").unwrap();
    let foreign = "/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1";
    assert!(
        Path::new(foreign).exists(),
        "{foreign} is missing; run `scripts/install-deps` (or `apt-get install -y libc6-arm64-cross`)"
    );
    std::fs::copy(foreign, bin.join("ld-linux-aarch64.so.1")).unwrap();
    let libz = std::fs::read("/usr/lib/x86_64-linux-gnu/libz.so.1").unwrap();
    std::fs::write(tree.join("broken.so"), &libz[..100]).unwrap();
    symlink("/usr/bin/ls", tree.join("link-out")).unwrap();
    symlink("bin/good", tree.join("link-in")).unwrap();
    symlink("nowhere", tree.join("dangling")).unwrap();
    World {
        _temp: temp,
        root,
        tree,
    }
}

/// The diagnoses match what the kernel does with each file.
#[test]
fn diagnoses_match_real_execution() {
    let w = world();
    let bin = w.tree.join("bin");
    let run = |name: &str| Command::new(bin.join(name)).output();
    assert_eq!(
        run("env-missing.py").unwrap().status.code(),
        Some(127),
        "env: command not found"
    );
    assert_eq!(run("good").unwrap().stdout, b"hello\n");
    assert_eq!(run("packed").unwrap().stdout, b"hello\n");
    assert_eq!(run("bare").unwrap().stdout, b"hello\n");
    assert_eq!(
        run("no-interp").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(
        run("missing-bash.sh").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    let stub = run("on-stub-ld").unwrap();
    assert_eq!(stub.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&stub.stderr).contains("cannot run dynamically linked executables")
    );
    let nix = run("on-nix-ld").unwrap();
    assert!(String::from_utf8_lossy(&nix.stderr).contains("[nix-ld]"));
    assert_eq!(
        run("ld-linux-aarch64.so.1").unwrap_err().raw_os_error(),
        Some(libc_enoexec())
    );

    let out = ldfix(&[&w.tree], true);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a damaged file makes the exit status 2"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "ldfix-inspect/1");
    let problems = |name: &str| -> Vec<String> {
        let path = w.tree.join(name).display().to_string();
        let entry = json["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str());
        let entry = entry.unwrap_or_else(|| panic!("{path} not reported"));
        entry["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(problems("bin/good").is_empty());
    assert!(problems("bin/sub/static").is_empty());
    assert!(problems("bin/ok.sh").is_empty());
    assert_eq!(problems("bin/no-interp"), ["interpreter-missing"]);
    assert_eq!(problems("bin/on-stub-ld"), ["interpreter-stub-ld"]);
    assert_eq!(problems("bin/on-nix-ld"), ["interpreter-nix-ld"]);
    assert_eq!(
        problems("bin/missing-bash.sh"),
        ["script-interpreter-missing"]
    );
    assert_eq!(
        problems("bin/ld-linux-aarch64.so.1"),
        ["wrong-architecture"]
    );
    assert_eq!(
        json["summary"],
        serde_json::json!({"elf": 8, "scripts": 3, "symlinks": 3, "skipped": 1, "errors": 1, "with_problems": 5})
    );
    let by_path = |name: &str| {
        let path = w.tree.join(name).display().to_string();
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str())
            .unwrap()
            .clone()
    };
    let packed = by_path("bin/packed");
    assert_eq!(
        (
            packed["trailing_bytes"].as_u64(),
            packed["section_headers"].as_bool()
        ),
        (Some(1000), Some(true))
    );
    let bare = by_path("bin/bare");
    assert_eq!(bare["section_headers"], false);
    assert_eq!(bare["needed"], by_path("bin/good")["needed"]);
    assert_eq!(bare["version_needs"], by_path("bin/good")["version_needs"]);
    let broken = by_path("broken.so");
    assert_eq!(broken["type"], "error");
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("program header table at offset 0x40"),
        "{broken}"
    );
    let link_out = by_path("link-out");
    assert_eq!(
        (link_out["type"].as_str(), link_out["outside"].as_bool()),
        (Some("symlink"), Some(true))
    );
    assert_eq!(by_path("link-in")["outside"], false);
    assert_eq!(by_path("dangling")["dangling"], true);
}

fn libc_enoexec() -> i32 {
    8 // ENOEXEC on Linux
}

/// Without the damaged file, a problem makes the status 1; a healthy file alone gives 0.
#[test]
fn exit_status_follows_the_contract() {
    let w = world();
    std::fs::remove_file(w.tree.join("broken.so")).unwrap();
    assert_eq!(ldfix(&[&w.tree], false).status.code(), Some(1));
    assert_eq!(
        ldfix(&[&w.tree.join("bin/good")], false).status.code(),
        Some(0)
    );
    assert_eq!(
        ldfix(&[&w.tree.join("missing")], false).status.code(),
        Some(2)
    );
    // A file named on the command line that is not a program gets an answer, not silence.
    let out = ldfix(&[&w.tree.join("README.txt")], true);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["files"][0]["type"], "other");
    assert_eq!(out.status.code(), Some(0));
    // A symlink named on the command line is followed: the user asked for that file.
    let out = ldfix(&[&w.tree.join("link-in")], true);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["files"][0]["type"], "elf");
}

/// The human output, one block per file.
#[test]
fn human_output() {
    let w = world();
    let out = ldfix(&[&w.tree], false);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let root = w.root.display().to_string();
    let root = regex_escape(&root);
    insta::with_settings!({filters => vec![
        (root.as_str(), "[TMP]"),
        (r"[0-9a-f]{40}", "[BUILD-ID]"),
        (r"GLIBC_2\.[0-9.]+", "GLIBC_[V]"),
        (r"needs GLIBC 2\.[0-9.]+", "needs GLIBC [V]"),
        (r"after offset 0x[0-9a-f]+", "after offset [OFFSET]"),
        (r"\d+ bytes after", "[N] bytes after"),
    ]}, {
        insta::assert_snapshot!("tree_human", stdout);
        insta::assert_snapshot!("tree_summary", stderr);
    });
}

fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}
