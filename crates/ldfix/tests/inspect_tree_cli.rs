//! `ldfix inspect --tree` as users call it: human output, `--explain`, `--json`, `--root`, the
//! dlopen assumption for libraries, and exit statuses.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ldfix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ldfix"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "ldfix-tree-cli-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gcc(args: &[&str]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .expect("gcc is missing: apt-get install -y gcc");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_system_program_resolves_with_rules_and_exit_0() {
    let out = ldfix(&["inspect", "--tree", "/usr/bin/ls"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("/usr/bin/ls  (loader /lib64/ld-linux-x86-64.so.2, glibc 2."),
        "{stdout}"
    );
    assert!(
        stdout.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 [cache]"),
        "{stdout}"
    );
}

#[test]
fn json_has_objects_edges_and_the_loader_facts() {
    let out = ldfix(&["inspect", "--tree", "--json", "/usr/bin/ls"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let trees: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tree = &trees[0];
    assert_eq!(tree["program"], "/usr/bin/ls");
    assert_eq!(tree["target"], 0);
    assert_eq!(tree["loader"]["flavour"], "glibc");
    assert_eq!(tree["loader"]["cache"], "/etc/ld.so.cache");
    assert_eq!(tree["loader"]["lib"], "lib/x86_64-linux-gnu");
    assert_eq!(tree["objects"][0]["rule"], "main");
    let libc = tree["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "libc.so.6" && e["outcome"] == "loaded")
        .unwrap();
    let object = &tree["objects"][libc["object"].as_u64().unwrap() as usize];
    assert_eq!(object["rule"], "cache");
    assert_eq!(
        libc["tried"].as_array().unwrap().last().unwrap()["result"],
        "found"
    );
}

#[test]
fn a_library_is_resolved_as_if_dlopened_and_says_so() {
    let out = ldfix(&["inspect", "--tree", "/lib/x86_64-linux-gnu/libz.so.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no PT_INTERP; resolved as if dlopen'ed by /lib64/ld-linux-x86-64.so.2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6"),
        "{stdout}"
    );
}

/// A root that looks like a minimal FHS system, built from this machine's loader and libc, with
/// an absolute symlink that must resolve inside the root.
fn make_root(root: &Path, with_zlib: bool) -> PathBuf {
    let lib = root.join("lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::copy(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        lib.join("ld-linux-x86-64.so.2"),
    )
    .unwrap();
    std::fs::copy("/lib/x86_64-linux-gnu/libc.so.6", lib.join("libc.so.6")).unwrap();
    let link = root.join("lib64/ld-linux-x86-64.so.2");
    if !link.exists() {
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &link).unwrap();
    }
    if with_zlib {
        std::fs::copy("/lib/x86_64-linux-gnu/libz.so.1", lib.join("libz.so.1")).unwrap();
    }
    let src = root.join("p.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let prog = root.join("usr/bin/prog");
    gcc(&[
        "-o",
        prog.to_str().unwrap(),
        src.to_str().unwrap(),
        "-Wl,--no-as-needed",
        "-lz",
    ]);
    prog
}

#[test]
fn root_resolves_inside_the_root_and_explains_what_is_missing() {
    let dir = Scratch::new("root");
    let root = dir.0.join("root");
    make_root(&root, false);
    let root_s = root.to_str().unwrap();
    let out = ldfix(&[
        "inspect",
        "--tree",
        "--explain",
        "--root",
        root_s,
        "/usr/bin/prog",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("libz.so.1 => not found"), "{stdout}");
    // Every place tried is a path inside the root, as the loader there would see it; the host's
    // own libz (in its cache and default directories) is not visible.
    assert!(
        stdout.contains("tried /lib/x86_64-linux-gnu/libz.so.1 (default, absent)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 [default]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: libz.so.1 (needed by /usr/bin/prog) not found"),
        "{stdout}"
    );
    // The program may also be named by its host path.
    let host_path = root.join("usr/bin/prog");
    let out = ldfix(&[
        "inspect",
        "--tree",
        "--root",
        root_s,
        host_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    make_root(&root, true);
    let out = ldfix(&["inspect", "--tree", "--root", root_s, "/usr/bin/prog"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 [default]"));
}

#[test]
fn a_missing_library_on_the_host_exits_1_and_a_non_elf_file_exits_2() {
    let dir = Scratch::new("missing");
    let src = dir.0.join("p.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    std::fs::write(dir.0.join("l.c"), "int l(void) { return 0; }\n").unwrap();
    let lib = dir.0.join("libgone.so");
    gcc(&[
        "-shared",
        "-fPIC",
        "-o",
        lib.to_str().unwrap(),
        dir.0.join("l.c").to_str().unwrap(),
        "-Wl,-soname,libgone.so",
    ]);
    let prog = dir.0.join("prog");
    gcc(&[
        "-o",
        prog.to_str().unwrap(),
        src.to_str().unwrap(),
        "-Wl,--no-as-needed",
        lib.to_str().unwrap(),
    ]);
    // Linked by path without a SONAME: the NEEDED entry is the path, so remove the file.
    std::fs::remove_file(&lib).unwrap();
    let out = ldfix(&["inspect", "--tree", prog.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("=> not found"));
    let out = ldfix(&["inspect", "--tree", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn on_a_nixos_like_root_stub_ld_is_reported_and_the_store_glibc_assumed() {
    let dir = Scratch::new("nixos");
    let root = dir.0.join("root");
    let glibc = root.join("nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.36/lib");
    std::fs::create_dir_all(&glibc).unwrap();
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::fs::create_dir_all(root.join("opt/app")).unwrap();
    std::fs::copy(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        glibc.join("ld-linux-x86-64.so.2"),
    )
    .unwrap();
    // NixOS's stub-ld at the FHS path: an ELF program carrying stub-ld's message.
    let stub = dir.0.join("stub.c");
    std::fs::write(&stub, "#include <stdio.h>\nint main(void) { puts(\"NixOS cannot run dynamically linked executables intended for generic linux environments out of the box.\"); return 127; }\n").unwrap();
    gcc(&[
        "-static",
        "-o",
        root.join("lib64/ld-linux-x86-64.so.2").to_str().unwrap(),
        stub.to_str().unwrap(),
    ]);
    let src = dir.0.join("p.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    gcc(&[
        "-o",
        root.join("opt/app/prog").to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    let out = ldfix(&[
        "inspect",
        "--tree",
        "--root",
        root.to_str().unwrap(),
        "/opt/app/prog",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "error: the interpreter /lib64/ld-linux-x86-64.so.2 is stub-ld, not a dynamic loader"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: resolved with the rules of /nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.36/lib/ld-linux-x86-64.so.2"),
        "{stdout}"
    );
    assert!(stdout.contains("libc.so.6 => not found"), "{stdout}");
}
