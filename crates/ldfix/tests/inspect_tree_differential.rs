//! `ldfix inspect --tree` against the real loader.
//!
//! For every executable (every ELF under /usr/bin and /usr/lib/x86_64-linux-gnu, and programs
//! built here with RPATH/RUNPATH/$ORIGIN chains), the real glibc loader runs it with
//! `LD_TRACE_LOADED_OBJECTS=1` as a direct exec (not `ld.so --list`, which takes `$ORIGIN` from
//! the path as typed) and `LD_DEBUG=files,libs`, which reports every search the loader makes: the
//! name, the object that needed it and every file tried. Shared libraries without PT_INTERP are
//! `dlopen`ed by a small host program built here. Each search is compared with the emulation's:
//! same order, same name, same requesting object, same resolved file (or both missing), and the
//! same list of every file tried (which checks the hwcaps subdirectory order, directories skipped
//! once known missing, cache hits and wrong-class skips).
//! Requests satisfied by an already loaded object involve no search; the loader prints nothing
//! for them, and they are covered by the next search being the same on both sides.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

/// One search: (requested name, requesting object, resolved path or None when missing, every
/// file tried in order).
type Event = (String, String, Option<String>, Vec<String>);

#[derive(Debug, Clone)]
struct Case {
    path: PathBuf,
    env: Vec<(String, String)>,
}

fn gcc() -> &'static str {
    let ok = Command::new("gcc")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "gcc is missing: apt-get install -y gcc gcc-multilib");
    "gcc"
}

fn run_gcc(args: &[&str]) {
    let out = Command::new(gcc()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// Every regular file or symlink to one, with the ELF magic, under `dir`.
fn elf_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            elf_files(&path, out);
        } else if (kind.is_file() || (kind.is_symlink() && path.is_file())) && is_elf(&path) {
            out.push(path);
        }
    }
}

/// The dlopen host: opens argv[1] lazily, reports a failure on stdout, and leaves at once.
fn build_host(dir: &Path) -> PathBuf {
    let src = dir.join("host.c");
    std::fs::write(
        &src,
        "#include <dlfcn.h>\n#include <stdio.h>\n#include <unistd.h>\n\
         int main(int c, char **v) { if (c < 2) return 2; void *h = dlopen(v[1], RTLD_LAZY);\n\
         if (!h) printf(\"ERR %s\\n\", dlerror()); fflush(stdout); _exit(0); }\n",
    )
    .unwrap();
    let host = dir.join("dlopen-host");
    run_gcc(&["-o", host.to_str().unwrap(), src.to_str().unwrap()]);
    host
}

fn write_c(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
}

/// Programs exercising every rule: RPATH inheritance up the loading chain, RUNPATH for direct
/// dependencies only, $ORIGIN through a symlinked program, $LIB and $PLATFORM, glibc-hwcaps
/// subdirectories, a 32-bit library shadowing a 64-bit one, DF_1_NODEFLIB, SONAME reuse, one
/// file under two names, a NEEDED path, LD_LIBRARY_PATH and LD_PRELOAD.
fn build_chains(dir: &Path) -> Vec<Case> {
    let d = |p: &str| dir.join(p);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for sub in [
        "app/lib",
        "app/bin",
        "real/bin",
        "run/lib",
        "deep/lib",
        "lib32",
        "x/lib/x86_64-linux-gnu",
        "x/x86_64",
        "hw/lib/glibc-hwcaps/x86-64-v2",
        "pre",
    ] {
        std::fs::create_dir_all(d(sub)).unwrap();
    }
    write_c(&d("c.c"), "int c(void) { return 3; }\n");
    write_c(&d("b.c"), "int c(void); int b(void) { return c() + 1; }\n");
    write_c(&d("a.c"), "int b(void); int a(void) { return b() + 1; }\n");
    write_c(
        &d("main.c"),
        "int a(void); int main(void) { return a() == 5 ? 0 : 1; }\n",
    );
    write_c(&d("plain.c"), "int main(void) { return 0; }\n");
    let so = |out: &Path, src: &str, soname: &str, extra: &[&str]| {
        let mut args = vec!["-shared", "-fPIC", "-o", out.to_str().unwrap(), src];
        let soname_arg = format!("-Wl,-soname,{soname}");
        args.push(&soname_arg);
        args.extend_from_slice(extra);
        run_gcc(&args);
    };
    // RPATH chain: main has RPATH $ORIGIN/../lib; liba and libb have none, so libb and libc1
    // are found through main's RPATH, inherited along the loading chain.
    so(&d("app/lib/libc1.so"), &s(&d("c.c")), "libc1.so", &[]);
    so(
        &d("app/lib/libb.so"),
        &s(&d("b.c")),
        "libb.so",
        &["-L", &s(&d("app/lib")), "-lc1"],
    );
    so(
        &d("app/lib/liba.so"),
        &s(&d("a.c")),
        "liba.so",
        &["-L", &s(&d("app/lib")), "-lb"],
    );
    let link = |out: &Path, libdir: &Path, flags: &[&str]| {
        let mut args = vec![
            "-o",
            out.to_str().unwrap(),
            dir.join("main.c").to_str().unwrap().to_owned().leak() as &str,
        ];
        let l = format!("-L{}", libdir.display());
        args.push(&l);
        let rl = format!("-Wl,-rpath-link,{}", libdir.display());
        args.push(&rl);
        args.push("-la");
        args.extend_from_slice(flags);
        run_gcc(&args);
    };
    link(
        &d("app/bin/rpath"),
        &d("app/lib"),
        &["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib"],
    );
    // RUNPATH is not inherited: liba's dependency libb is missing.
    link(
        &d("app/bin/runpath"),
        &d("app/lib"),
        &["-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
    );
    // $ORIGIN through a symlink: the real file is in real/bin, libraries in real/lib.
    std::fs::create_dir_all(d("real/lib")).unwrap();
    for lib in ["liba.so", "libb.so", "libc1.so"] {
        std::fs::copy(d("app/lib").join(lib), d("real/lib").join(lib)).unwrap();
    }
    link(
        &d("real/bin/prog"),
        &d("app/lib"),
        &["-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib"],
    );
    std::os::unix::fs::symlink(d("real/bin/prog"), d("app/bin/link-to-prog")).unwrap();
    // $LIB and $PLATFORM in RPATH.
    for lib in ["liba.so", "libb.so", "libc1.so"] {
        std::fs::copy(
            d("app/lib").join(lib),
            d("x/lib/x86_64-linux-gnu").join(lib),
        )
        .unwrap();
    }
    let xrpath = format!(
        "-Wl,--disable-new-dtags,-rpath,{}/$LIB:{}/$PLATFORM",
        s(&d("x")),
        s(&d("x"))
    );
    link(&d("app/bin/dst"), &d("app/lib"), &[&xrpath]);
    // glibc-hwcaps: the x86-64-v2 copy wins over the plain one on any x86-64-v2 CPU.
    for lib in ["liba.so", "libb.so", "libc1.so"] {
        std::fs::copy(d("app/lib").join(lib), d("hw/lib").join(lib)).unwrap();
    }
    std::fs::copy(
        d("app/lib/libb.so"),
        d("hw/lib/glibc-hwcaps/x86-64-v2/libb.so"),
    )
    .unwrap();
    let hwrpath = format!("-Wl,--disable-new-dtags,-rpath,{}", s(&d("hw/lib")));
    link(&d("app/bin/hwcaps"), &d("app/lib"), &[&hwrpath]);
    // A 32-bit libb.so first in the path is skipped; the 64-bit one after it is used.
    so(&d("lib32/libb.so"), &s(&d("b.c")), "libb.so", &["-m32"]);
    let rp32 = format!(
        "-Wl,--disable-new-dtags,-rpath,{}:{}",
        s(&d("lib32")),
        s(&d("app/lib"))
    );
    link(&d("app/bin/wrongclass"), &d("app/lib"), &[&rp32]);
    // DF_1_NODEFLIB: libc.so.6 may come neither from the cache nor the default directories.
    run_gcc(&[
        "-o",
        &s(&d("app/bin/nodeflib")),
        &s(&d("plain.c")),
        "-Wl,-z,nodefaultlib",
    ]);
    // RUNPATH deep: each library has its own RUNPATH.
    so(&d("deep/lib/libc1.so"), &s(&d("c.c")), "libc1.so", &[]);
    so(
        &d("deep/lib/libb.so"),
        &s(&d("b.c")),
        "libb.so",
        &[
            "-L",
            &s(&d("deep/lib")),
            "-lc1",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN",
        ],
    );
    so(
        &d("deep/lib/liba.so"),
        &s(&d("a.c")),
        "liba.so",
        &[
            "-L",
            &s(&d("deep/lib")),
            "-lb",
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN",
        ],
    );
    link(
        &d("app/bin/deep"),
        &d("deep/lib"),
        &["-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../deep/lib"],
    );
    // One file under two names (same inode), and a SONAME that differs from the file name.
    std::os::unix::fs::symlink("libc1.so", d("run/lib/libc1.so")).ok();
    std::fs::copy(d("app/lib/libc1.so"), d("run/lib/libc1.so.real")).unwrap();
    std::fs::remove_file(d("run/lib/libc1.so")).ok();
    std::os::unix::fs::symlink("libc1.so.real", d("run/lib/libc1.so")).unwrap();
    std::os::unix::fs::symlink("libc1.so.real", d("run/lib/libother.so")).unwrap();
    write_c(&d("two.c"), "int c(void); int two(void) { return c(); }\n");
    so(
        &d("run/lib/libtwo.so"),
        &s(&d("two.c")),
        "libtwo.so",
        &["-L", &s(&d("run/lib")), "-lother"],
    );
    so(
        &d("run/lib/libb.so"),
        &s(&d("b.c")),
        "libb-alias.so",
        &["-L", &s(&d("run/lib")), "-lc1"],
    );
    let runrp = format!("-Wl,--disable-new-dtags,-rpath,{}", s(&d("run/lib")));
    run_gcc(&[
        "-o",
        &s(&d("app/bin/sameinode")),
        &s(&d("plain.c")),
        &format!("-L{}", s(&d("run/lib"))),
        "-Wl,--no-as-needed",
        "-lc1",
        "-ltwo",
        "-lb",
        &runrp,
    ]);
    // A NEEDED entry that is a path (a library without SONAME linked by path).
    run_gcc(&[
        "-shared",
        "-fPIC",
        "-o",
        &s(&d("pre/libnosoname.so")),
        &s(&d("c.c")),
    ]);
    run_gcc(&[
        "-o",
        &s(&d("app/bin/needed-path")),
        &s(&d("plain.c")),
        "-Wl,--no-as-needed",
        &s(&d("pre/libnosoname.so")),
    ]);
    // LD_PRELOAD and LD_LIBRARY_PATH.
    so(&d("pre/libpre.so"), &s(&d("c.c")), "libpre.so", &[]);
    let cases = [
        ("app/bin/rpath", vec![]),
        ("app/bin/runpath", vec![]),
        ("app/bin/link-to-prog", vec![]),
        ("app/bin/dst", vec![]),
        ("app/bin/hwcaps", vec![]),
        ("app/bin/wrongclass", vec![]),
        ("app/bin/nodeflib", vec![]),
        ("app/bin/deep", vec![]),
        ("app/bin/sameinode", vec![]),
        ("app/bin/needed-path", vec![]),
        (
            "app/bin/runpath",
            vec![(
                "LD_LIBRARY_PATH".to_string(),
                format!("{}:{}", s(&d("nonexistent")), s(&d("app/lib"))),
            )],
        ),
        (
            "app/bin/rpath",
            vec![(
                "LD_PRELOAD".to_string(),
                format!("{} libc1.so", s(&d("pre/libpre.so"))),
            )],
        ),
        (
            "app/bin/rpath",
            vec![(
                "LD_LIBRARY_PATH".to_string(),
                s(&d("x/lib/x86_64-linux-gnu")),
            )],
        ),
    ];
    cases
        .into_iter()
        .map(|(p, env)| Case { path: d(p), env })
        .collect()
}

/// The emulation's searches for every file, from `ldfix inspect --tree --json`.
fn emulate(cases: &[Case], host: &Path) -> Vec<Option<(Vec<Event>, bool)>> {
    let bin = env!("CARGO_BIN_EXE_ldfix");
    let mut out = Vec::new();
    for chunk in cases.chunks(200) {
        let mut cmd = Command::new(bin);
        cmd.args(["inspect", "--tree", "--json", "--host"])
            .arg(host);
        for (k, v) in &chunk[0].env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        assert!(chunk.iter().all(|c| c.env == chunk[0].env));
        cmd.args(chunk.iter().map(|c| &c.path));
        let output = cmd.output().unwrap();
        let trees: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "ldfix output is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        for tree in trees.as_array().unwrap() {
            out.push(tree_events(tree));
        }
    }
    out
}

/// (searches, whether the file is an executable); None when ldfix declined (static files).
fn tree_events(tree: &Value) -> Option<(Vec<Event>, bool)> {
    if tree.get("error").is_some() {
        return None;
    }
    let objects = tree["objects"].as_array().unwrap();
    let path_of = |i: &Value| {
        i.as_u64()
            .and_then(|i| objects.get(i as usize))
            .map(|o| o["path"].as_str().unwrap().to_string())
    };
    let executable = tree["target"].as_u64() == Some(0);
    let mut events = Vec::new();
    for edge in tree["edges"].as_array().unwrap() {
        let from = path_of(&edge["from"]).unwrap();
        let name = edge["name"].as_str().unwrap().to_string();
        let found_try = edge["tried"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|t| t["result"] == "found")
            .map(|t| t["path"].as_str().unwrap().to_string());
        let resolved = match edge["outcome"].as_str().unwrap() {
            "loaded" => path_of(&edge["object"]),
            "reused" if edge["reuse"] == "file-id" => found_try,
            "reused" => continue,
            "failed" => Some(format!(
                "FAILED {}",
                edge["failed_path"].as_str().unwrap_or("")
            )),
            _ => None,
        };
        // glibc prints "trying file=" for every candidate of a search, and for a cache hit
        // (even one NODEFLIB then discards), but not for a name with a slash.
        let tries = edge["tried"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["rule"] != "path")
            .map(|t| t["path"].as_str().unwrap().to_string())
            .collect();
        events.push((name, from, resolved, tries));
    }
    Some((events, executable))
}

/// The real loader's searches, parsed from `LD_DEBUG=files,libs`.
fn real_events(case: &Case, executable: bool, host: &Path) -> (Vec<Event>, bool) {
    let mut cmd = if executable {
        let mut c = Command::new(&case.path);
        c.env("LD_TRACE_LOADED_OBJECTS", "1");
        c
    } else {
        let mut c = Command::new(host);
        c.arg(&case.path);
        c
    };
    cmd.env("LD_DEBUG", "files,libs")
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null());
    for (k, v) in &case.env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    parse_debug(&stdout, &stderr, host)
}

/// The searches in `LD_DEBUG=files,libs` output (stderr), and whether a `dlopen` failed.
fn parse_debug(stdout: &str, stderr: &str, host: &Path) -> (Vec<Event>, bool) {
    // Names the loader reported missing: trace lines "\tNAME => not found", or dlerror.
    let mut missing: HashSet<String> = stdout
        .lines()
        .filter_map(|l| l.trim().strip_suffix(" => not found"))
        .map(str::to_string)
        .collect();
    let failed = stdout.lines().find_map(|l| l.strip_prefix("ERR "));
    if let Some(err) = failed {
        if let Some((name, _)) = err.split_once(": cannot open shared object file") {
            missing.insert(name.to_string());
        }
    }
    struct Raw {
        name: String,
        from: String,
        tries: Vec<String>,
        generated: bool,
    }
    let mut raw: Vec<Raw> = Vec::new();
    for line in stderr.lines() {
        let Some((_, msg)) = line.split_once(":\t") else {
            continue;
        };
        if let Some(rest) = msg.strip_prefix("file=") {
            if let Some((name, tail)) = rest.split_once(" [") {
                // Lazy binding reports symbol lookups as "(relocation dependency)": no search.
                if tail.ends_with("(relocation dependency)") {
                    continue;
                }
                // A dlopen made by code (a constructor) rather than by the host comes after
                // the mapping being compared; stop there.
                if let Some((_, by)) = tail.split_once("dynamically loaded by ") {
                    if !by.starts_with(host.to_str().unwrap()) {
                        break;
                    }
                }
                let from = tail
                    .split_once("needed by ")
                    .or_else(|| tail.split_once("dynamically loaded by "));
                if let Some((_, from)) = from {
                    let from = from.rsplit_once(" [").map_or(from, |(f, _)| f);
                    raw.push(Raw {
                        name: name.to_string(),
                        from: from.to_string(),
                        tries: Vec::new(),
                        generated: false,
                    });
                } else if tail.ends_with("generating link map") {
                    if let Some(r) = raw.iter_mut().rev().find(|r| r.name == name) {
                        r.generated = true;
                    }
                }
            }
        } else if let Some(p) = msg.trim_start().strip_prefix("trying file=") {
            if let Some(r) = raw.last_mut() {
                r.tries.push(p.to_string());
            }
        }
    }
    let n = raw.len();
    let events = raw
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let found = r
                .tries
                .last()
                .cloned()
                .or_else(|| r.name.contains('/').then(|| r.name.clone()));
            let is_missing =
                !r.generated && (missing.contains(&r.name) || (failed.is_some() && i + 1 == n));
            let resolved = if is_missing { None } else { found };
            (r.name, r.from, resolved, r.tries)
        })
        .collect();
    (events, failed.is_some())
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("ldfix-tree-diff-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn emulation_agrees_with_the_real_loader() {
    let dir = TempDir::new();
    let host = build_host(dir.path());
    let mut cases = build_chains(dir.path());
    let chains = cases.len();
    let mut files = Vec::new();
    for root in ["/usr/bin", "/usr/lib/x86_64-linux-gnu"] {
        elf_files(Path::new(root), &mut files);
    }
    assert!(
        files.len() > 500,
        "too few ELF files found: {}",
        files.len()
    );
    // The manylinux wheels of the test world (numpy, pillow, opencv, pyodbc): extension modules
    // and their bundled libraries, `dlopen`ed on this machine.
    let world = ldfix_testworld::World::get().unwrap();
    let venv = world
        .venv(&dir.path().join("venv"), ldfix_testworld::fixtures::WHEELS)
        .unwrap();
    let before = files.len();
    elf_files(&venv.join("lib"), &mut files);
    let wheels = files.len() - before;
    assert!(
        wheels > 20,
        "too few ELF files in the wheels venv: {wheels}"
    );
    cases.extend(files.into_iter().map(|path| Case {
        path,
        env: Vec::new(),
    }));
    // Group by environment so that one ldfix run serves each group.
    let mut groups: Vec<Vec<Case>> = Vec::new();
    for case in &cases {
        match groups.iter_mut().find(|g| g[0].env == case.env) {
            Some(g) => g.push(case.clone()),
            None => groups.push(vec![case.clone()]),
        }
    }
    let mut work = Vec::new();
    for group in &groups {
        let emulated = emulate(group, &host);
        work.extend(group.iter().cloned().zip(emulated));
    }
    let compared = Mutex::new(0usize);
    let skipped = Mutex::new(Vec::<String>::new());
    let differences = Mutex::new(Vec::<String>::new());
    let next = Mutex::new(0usize);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some((case, emulated)) = work.get(i) else {
                    break;
                };
                let Some((emu, executable)) = emulated else {
                    skipped
                        .lock()
                        .unwrap()
                        .push(format!("{} (static)", case.path.display()));
                    continue;
                };
                let mode = std::fs::metadata(&case.path)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if *executable && mode & 0o6000 != 0 {
                    // Set-user-ID or set-group-ID: the loader runs in secure mode and ignores
                    // LD_DEBUG, so there is nothing to compare with.
                    skipped.lock().unwrap().push(format!("{} (setuid/setgid)", case.path.display()));
                    continue;
                }
                if *executable && mode & 0o111 == 0 {
                    skipped
                        .lock()
                        .unwrap()
                        .push(format!("{} (not executable)", case.path.display()));
                    continue;
                }
                let (real, dlopen_failed) = real_events(case, *executable, &host);
                let agree = if dlopen_failed {
                    // dlopen stops at the first failure; the emulation goes on.
                    !real.is_empty() && emu.len() >= real.len() && emu[..real.len()] == real[..]
                } else {
                    *emu == real
                };
                *compared.lock().unwrap() += 1;
                if !agree {
                    {
                    let at = real.iter().zip(emu.iter()).take_while(|(a, b)| a == b).count();
                    differences.lock().unwrap().push(format!(
                        "{} {:?}: {} real searches, {} emulated; first difference at {at}:\n  real:     {:?}\n  emulated: {:?}",
                        case.path.display(),
                        case.env,
                        real.len(),
                        emu.len(),
                        real.get(at..(at + 2).min(real.len())),
                        emu.get(at..(at + 2).min(emu.len())),
                    ));
                    }
                }
            });
        }
    });
    let compared = compared.into_inner().unwrap();
    let skipped = skipped.into_inner().unwrap();
    let differences = differences.into_inner().unwrap();
    println!(
        "compared {compared} files ({chains} built programs, {wheels} files of the wheels venv), {} skipped, {} differ",
        skipped.len(),
        differences.len()
    );
    assert!(
        differences.is_empty(),
        "{} of {compared} differ:\n{}",
        differences.len(),
        differences
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(compared > 500);
}

/// The programs of the NixOS-like test world's store, run by their store loader inside the
/// world's sandbox (no /lib, no /usr/lib, stub-ld at /lib64), against the emulation of the same
/// store files. The emulation reads the store at the same paths from the host.
#[test]
fn emulation_agrees_with_the_store_loader_inside_the_test_world() {
    let world = ldfix_testworld::World::get().unwrap();
    let mut files = Vec::new();
    for out in world.packages().values() {
        elf_files(out, &mut files);
    }
    files.sort();
    files.dedup();
    let cases: Vec<Case> = files
        .into_iter()
        .map(|path| Case {
            path,
            env: Vec::new(),
        })
        .collect();
    let loader = world.loader();
    let emulated = emulate(&cases, &loader);
    let (mut compared, mut libraries, mut statics) = (0, 0, 0);
    let mut differences = Vec::new();
    for (case, emulated) in cases.iter().zip(emulated) {
        let Some((emu, executable)) = emulated else {
            statics += 1;
            continue;
        };
        if !executable {
            // Shared libraries would need a dlopen host built against the store's glibc.
            libraries += 1;
            continue;
        }
        let out = world
            .sandbox()
            .var("LD_TRACE_LOADED_OBJECTS", "1")
            .var("LD_DEBUG", "files,libs")
            .run(&[&case.path])
            .unwrap();
        let (real, _) = parse_debug(&out.stdout, &out.stderr, &loader);
        assert!(
            !real.is_empty() || emu.is_empty(),
            "no LD_DEBUG output for {}: {out}",
            case.path.display()
        );
        compared += 1;
        if real != emu {
            let at = real
                .iter()
                .zip(emu.iter())
                .take_while(|(a, b)| a == b)
                .count();
            differences.push(format!(
                "{}: first difference at {at}:\n  real:     {:?}\n  emulated: {:?}",
                case.path.display(),
                real.get(at..),
                emu.get(at..)
            ));
        }
    }
    println!(
        "test world: compared {compared} store programs; not compared: {libraries} shared libraries, {statics} files ldfix declined (static, or unreadable by the read model); {} differ",
        differences.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    assert!(compared >= 10, "too few store programs: {compared}");
}

/// musl: programs built with musl-gcc, listed by musl's own loader in ldd mode
/// (`ld-musl --list`, which prints `NAME => PATH` for every library it loads; musl reuses a
/// library by the name it was found under, so that mapping is the same for every requester).
#[test]
fn emulation_agrees_with_musl() {
    let musl_gcc = "musl-gcc";
    let ok = Command::new(musl_gcc)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "musl-gcc is missing: apt-get install -y musl-tools musl-dev"
    );
    let loader = Path::new("/lib/ld-musl-x86_64.so.1");
    let dir = TempDir::new();
    let d = |p: &str| dir.path().join(p);
    for sub in ["app/lib", "app/bin", "llp", "deep/lib"] {
        std::fs::create_dir_all(d(sub)).unwrap();
    }
    write_c(&d("c.c"), "int c(void) { return 3; }\n");
    write_c(&d("b.c"), "int c(void); int b(void) { return c(); }\n");
    write_c(
        &d("m.c"),
        "int b(void); int main(void) { return b() - 3; }\n",
    );
    let cc = |args: &[&str]| {
        let out = Command::new(musl_gcc).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "musl-gcc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for lib_dir in ["app/lib", "llp"] {
        cc(&[
            "-shared",
            "-fPIC",
            "-o",
            &s(&d(lib_dir).join("libc1.so")),
            &s(&d("c.c")),
            "-Wl,-soname,libc1.so",
        ]);
        cc(&[
            "-shared",
            "-fPIC",
            "-o",
            &s(&d(lib_dir).join("libb.so")),
            &s(&d("b.c")),
            "-Wl,-soname,libb.so",
            &format!("-L{}", s(&d(lib_dir))),
            "-lc1",
        ]);
    }
    let link = |out: &str, flags: &str| {
        cc(&[
            "-o",
            &s(&d(out)),
            &s(&d("m.c")),
            &format!("-L{}", s(&d("app/lib"))),
            "-lb",
            &format!("-Wl,-rpath-link,{}", s(&d("app/lib"))),
            flags,
        ]);
    };
    // RUNPATH is inherited under musl: libb's libc1 comes from the program's run path.
    link(
        "app/bin/runpath",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",
    );
    link(
        "app/bin/rpath",
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
    );
    // No run path: nothing is found.
    link("app/bin/none", "-Wl,--enable-new-dtags");
    let llp = s(&d("llp"));
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("app/bin/runpath", None),
        ("app/bin/rpath", None),
        ("app/bin/none", None),
        // LD_LIBRARY_PATH comes before the run path under musl.
        ("app/bin/runpath", Some(llp.as_str())),
    ];
    let bin = env!("CARGO_BIN_EXE_ldfix");
    for (prog, llp) in cases {
        let path = d(prog);
        let mut cmd = Command::new(bin);
        cmd.args(["inspect", "--tree", "--json"]);
        if let Some(l) = llp {
            cmd.arg("--env").arg(format!("LD_LIBRARY_PATH={l}"));
        }
        let out = cmd.arg(&path).output().unwrap();
        let trees: Value = serde_json::from_slice(&out.stdout).unwrap();
        let tree = &trees[0];
        assert_eq!(tree["loader"]["flavour"], "musl", "{tree}");
        let objects = tree["objects"].as_array().unwrap();
        let mut emulated: Vec<(String, String)> = Vec::new();
        for edge in tree["edges"].as_array().unwrap() {
            let name = edge["name"].as_str().unwrap().to_string();
            let resolved = match edge["object"].as_u64() {
                Some(i) => objects[i as usize]["path"].as_str().unwrap().to_string(),
                None => "not found".to_string(),
            };
            if !emulated.iter().any(|(n, _)| *n == name) {
                emulated.push((name, resolved));
            }
        }
        let mut real_cmd = Command::new(loader);
        real_cmd
            .arg("--list")
            .arg(&path)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LD_PRELOAD");
        if let Some(l) = llp {
            real_cmd.env("LD_LIBRARY_PATH", l);
        }
        let real_out = real_cmd.output().unwrap();
        let mut real: Vec<(String, String)> = String::from_utf8_lossy(&real_out.stdout)
            .lines()
            .filter_map(|l| l.trim().split_once(" => "))
            .map(|(n, p)| {
                (
                    n.to_string(),
                    p.rsplit_once(" (").map_or(p, |(p, _)| p).to_string(),
                )
            })
            .collect();
        for line in String::from_utf8_lossy(&real_out.stderr).lines() {
            if let Some(rest) = line.strip_prefix("Error loading shared library ") {
                if let Some((name, _)) = rest.split_once(": ") {
                    real.push((name.to_string(), "not found".to_string()));
                }
            }
        }
        let mut emulated_sorted = emulated.clone();
        emulated_sorted.sort();
        real.sort();
        assert_eq!(emulated_sorted, real, "{prog} with LD_LIBRARY_PATH={llp:?}");
    }
}
