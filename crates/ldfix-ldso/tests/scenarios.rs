//! The search rules, one scenario each, on an in-memory filesystem holding real ELF files built
//! by gcc here and Debian's real loader and libc (read, never run).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ldfix_ldso::{
    Cpu, Environment, Finding, MemFs, Outcome, Request, Resolver, ReuseBy, Rule, Tree, TryResult,
};

/// gcc-built objects: (file name, bytes).
struct Built {
    files: Vec<(String, Vec<u8>)>,
}

impl Built {
    fn get(&self, name: &str) -> Vec<u8> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap()
    }
}

fn gcc(args: &[&str]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .expect("gcc is missing: apt-get install -y gcc gcc-multilib");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ldfix-ldso-scenarios-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = |n: &str| dir.join(n).to_str().unwrap().to_string();
        std::fs::write(dir.join("e.c"), "int f(void) { return 0; }\n").unwrap();
        std::fs::write(dir.join("m.c"), "int main(void) { return 0; }\n").unwrap();
        let lib = |out: &str, extra: &[&str]| {
            let mut args = vec![
                "-shared".to_string(),
                "-fPIC".into(),
                "-o".into(),
                p(out),
                p("e.c"),
                format!("-Wl,-soname,{out}"),
                format!("-L{}", p("")),
                "-Wl,--no-as-needed".into(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
        };
        lib("libc1.so", &[]);
        lib("libb.so", &["-l:libc1.so"]);
        lib("liba.so", &["-l:libb.so"]);
        lib(
            "liba-runpath.so",
            &["-l:libb.so", "-Wl,--enable-new-dtags,-rpath,/own"],
        );
        // 32-bit libb.so, to be skipped.
        gcc(&[
            "-m32",
            "-shared",
            "-fPIC",
            "-o",
            &p("libb32.so"),
            &p("e.c"),
            "-Wl,-soname,libb.so",
        ]);
        let exe = |out: &str, extra: &[&str]| {
            let mut args = vec![
                "-o".to_string(),
                p(out),
                p("m.c"),
                format!("-L{}", p("")),
                "-Wl,--no-as-needed".into(),
                format!("-Wl,-rpath-link,{}", p("")),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            gcc(&args.iter().map(String::as_str).collect::<Vec<_>>());
        };
        exe(
            "main-rpath",
            &["-l:liba.so", "-Wl,--disable-new-dtags,-rpath,/app/lib"],
        );
        exe(
            "main-runpath",
            &["-l:liba.so", "-Wl,--enable-new-dtags,-rpath,/app/lib"],
        );
        exe(
            "main-origin",
            &[
                "-l:liba.so",
                "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
            ],
        );
        exe("main-plain", &["-l:liba.so"]);
        exe("main-nodeflib", &["-l:liba.so", "-Wl,-z,nodefaultlib"]);
        exe(
            "main-arunpath",
            &[
                "-l:liba-runpath.so",
                "-Wl,--disable-new-dtags,-rpath,/app/lib",
            ],
        );
        // Symbol versions: libv.so defines V1 and V2; the old one only V1.
        std::fs::write(dir.join("v.c"), "int f(void) { return 1; }\nint g(void) { return 2; }\n").unwrap();
        std::fs::write(dir.join("v.map"), "V1 { global: f; local: *; };\nV2 { global: g; } V1;\n").unwrap();
        std::fs::write(dir.join("v1.map"), "V1 { global: f; g; local: *; };\n").unwrap();
        gcc(&["-shared", "-fPIC", "-o", &p("libv.so"), &p("v.c"), "-Wl,-soname,libv.so", &format!("-Wl,--version-script,{}", p("v.map"))]);
        gcc(&["-shared", "-fPIC", "-o", &p("libv-old.so"), &p("v.c"), "-Wl,-soname,libv.so", &format!("-Wl,--version-script,{}", p("v1.map"))]);
        std::fs::write(dir.join("uses-g.c"), "int g(void); int main(void) { return g(); }\n").unwrap();
        gcc(&["-o", &p("main-v"), &p("uses-g.c"), &p("libv.so"), "-Wl,--disable-new-dtags,-rpath,/app/lib"]);
        // A stand-in for NixOS's stub-ld: an ELF program carrying its message.
        std::fs::write(dir.join("stub.c"), "#include <stdio.h>\nint main(void) { puts(\"NixOS cannot run dynamically linked executables intended for generic linux environments out of the box.\"); return 127; }\n").unwrap();
        gcc(&["-static", "-o", &p("stub-ld"), &p("stub.c")]);
        // zlib from the cache, with and without DF_1_NODEFLIB.
        exe("main-z", &["-lz"]);
        exe("main-z-nodeflib", &["-lz", "-Wl,-z,nodefaultlib"]);
        let names = ["libv.so", "libv-old.so", "main-v", "stub-ld", "main-z", "main-z-nodeflib", 
            "libc1.so",
            "libb.so",
            "liba.so",
            "liba-runpath.so",
            "libb32.so",
            "main-rpath",
            "main-runpath",
            "main-origin",
            "main-plain",
            "main-nodeflib",
            "main-arunpath",
        ];
        let files = names
            .iter()
            .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
            .collect();
        let _ = std::fs::remove_dir_all(&dir);
        Built { files }
    })
}

/// A filesystem with Debian's loader and libc at their usual places.
fn base() -> MemFs {
    let mut fs = MemFs::new();
    let loader =
        std::fs::read("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").expect("libc6 is missing");
    fs.add_file("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", loader);
    fs.add_symlink(
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    fs.add_file(
        "/lib/x86_64-linux-gnu/libc.so.6",
        std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap(),
    );
    fs
}

/// Puts the built libraries `names` into `dir`.
fn add_libs(fs: &mut MemFs, dir: &str, names: &[&str]) {
    for name in names {
        fs.add_file(format!("{dir}/{name}"), built().get(name));
    }
}

fn resolve(fs: &MemFs, program: &str, env: &Environment) -> Tree {
    let cpu = Cpu::x86_64(3, false);
    let resolver = Resolver::new(fs);
    let req = Request {
        program: Path::new(program),
        env,
        cpu: &cpu,
        host: None,
        fallback_loader: None,
    };
    resolver.resolve(&req).unwrap()
}

fn env() -> Environment {
    Environment {
        cwd: PathBuf::from("/"),
        ..Environment::default()
    }
}

/// (name, resolved path or "missing", rule) for every request.
fn summary(tree: &Tree) -> Vec<(String, String, String)> {
    tree.edges
        .iter()
        .map(|e| {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            match &e.outcome {
                Outcome::Loaded(i) | Outcome::Reused(i, _) => {
                    let o = &tree.objects[*i];
                    let rule = match (&e.outcome, o.rule) {
                        (Outcome::Reused(_, by), _) => format!("reused-{by:?}"),
                        (_, Rule::Rpath(of)) => format!(
                            "RPATH of {}",
                            String::from_utf8_lossy(&tree.objects[of].path)
                        ),
                        (_, r) => r.as_str().to_string(),
                    };
                    (name, String::from_utf8_lossy(&o.path).into_owned(), rule)
                }
                Outcome::Missing => (name, "missing".into(), String::new()),
                Outcome::Failed { reason, .. } => (name, "failed".into(), reason.clone()),
            }
        })
        .collect()
}

fn find<'t>(s: &'t [(String, String, String)], name: &str) -> &'t (String, String, String) {
    s.iter().find(|(n, _, _)| n == name).unwrap()
}

#[test]
fn rpath_is_inherited_along_the_loading_chain() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-rpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    let s = summary(&resolve(&fs, "/app/bin/main", &env()));
    assert_eq!(find(&s, "libb.so").1, "/app/lib/libb.so");
    assert_eq!(find(&s, "libb.so").2, "RPATH of /app/bin/main");
    assert_eq!(find(&s, "libc1.so").1, "/app/lib/libc1.so");
    assert_eq!(find(&s, "libc.so.6").2, "default");
}

#[test]
fn runpath_applies_to_direct_dependencies_only() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-runpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    let tree = resolve(&fs, "/app/bin/main", &env());
    let s = summary(&tree);
    assert_eq!(find(&s, "liba.so").2, "RUNPATH");
    assert_eq!(find(&s, "libb.so").1, "missing");
    assert!(tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::Missing { .. })));
    // Every place tried is recorded. Directories found missing by an earlier search are not
    // tried again (glibc's r_dir_status), so the hwcaps subdirectories appear only once.
    let tried: Vec<String> = tree
        .edges
        .iter()
        .flat_map(|e| &e.tried)
        .map(|t| String::from_utf8_lossy(&t.path).into_owned())
        .collect();
    assert!(tried.contains(&"/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libc.so.6".to_string()));
    assert!(!tried.contains(&"/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libb.so".to_string()));
    assert!(tried.contains(&"/lib/x86_64-linux-gnu/libb.so".to_string()));
}

#[test]
fn an_object_with_runpath_ignores_the_inherited_rpath() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-arunpath"));
    add_libs(
        &mut fs,
        "/app/lib",
        &["liba-runpath.so", "libb.so", "libc1.so"],
    );
    let s = summary(&resolve(&fs, "/app/bin/main", &env()));
    // liba-runpath.so has RUNPATH /own, so main's RPATH is not searched for its libb.so.
    assert_eq!(find(&s, "libb.so").1, "missing");
    fs.add_file("/own/libb.so", b.get("libb.so"));
    let s = summary(&resolve(&fs, "/app/bin/main", &env()));
    assert_eq!(find(&s, "libb.so").1, "/own/libb.so");
    assert_eq!(find(&s, "libb.so").2, "RUNPATH");
    // libb.so has no RUNPATH: its libc1.so comes through the RPATH chain (main's RPATH).
    assert_eq!(find(&s, "libc1.so").2, "RPATH of /app/bin/main");
}

#[test]
fn ld_library_path_comes_after_rpath_and_before_runpath_and_not_in_secure_mode() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/rpath", b.get("main-rpath"));
    fs.add_file("/app/bin/runpath", b.get("main-runpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    add_libs(&mut fs, "/llp", &["liba.so", "libb.so", "libc1.so"]);
    let mut e = env();
    e.ld_library_path = Some(b"/nowhere:/llp".to_vec());
    let s = summary(&resolve(&fs, "/app/bin/rpath", &e));
    assert_eq!(find(&s, "liba.so").1, "/app/lib/liba.so");
    let s = summary(&resolve(&fs, "/app/bin/runpath", &e));
    assert_eq!(find(&s, "liba.so").1, "/llp/liba.so");
    assert_eq!(find(&s, "liba.so").2, "LD_LIBRARY_PATH");
    e.secure = true;
    let s = summary(&resolve(&fs, "/app/bin/runpath", &e));
    assert_eq!(find(&s, "liba.so").1, "/app/lib/liba.so");
}

#[test]
fn origin_of_a_symlinked_program_is_its_real_directory() {
    let b = built();
    let mut fs = base();
    fs.add_file("/opt/real/bin/main", b.get("main-origin"));
    fs.add_symlink("/usr/bin/main", "/opt/real/bin/main");
    add_libs(
        &mut fs,
        "/opt/real/lib",
        &["liba.so", "libb.so", "libc1.so"],
    );
    let s = summary(&resolve(&fs, "/usr/bin/main", &env()));
    assert_eq!(find(&s, "liba.so").1, "/opt/real/bin/../lib/liba.so");
}

#[test]
fn wrong_class_files_are_skipped_and_the_search_goes_on() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-rpath"));
    fs.add_file("/app/lib/liba.so", b.get("liba.so"));
    fs.add_file("/app/lib/libb.so", b.get("libb32.so"));
    fs.add_file("/lib/x86_64-linux-gnu/libb.so", b.get("libb.so"));
    fs.add_file("/lib/x86_64-linux-gnu/libc1.so", b.get("libc1.so"));
    let tree = resolve(&fs, "/app/bin/main", &env());
    let s = summary(&tree);
    assert_eq!(find(&s, "libb.so").1, "/lib/x86_64-linux-gnu/libb.so");
    let edge = tree.edges.iter().find(|e| e.name == b"libb.so").unwrap();
    assert!(edge
        .tried
        .iter()
        .any(|t| t.path == b"/app/lib/libb.so" && t.result == TryResult::OtherClass));
    assert!(tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::WrongArchSkipped { what: "class", .. })));
}

#[test]
fn nodeflib_skips_the_default_directories() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-nodeflib"));
    add_libs(
        &mut fs,
        "/lib/x86_64-linux-gnu",
        &["liba.so", "libb.so", "libc1.so"],
    );
    let s = summary(&resolve(&fs, "/app/bin/main", &env()));
    // main's own NEEDED may not come from the default directories; liba's may.
    assert_eq!(find(&s, "liba.so").1, "missing");
    assert_eq!(find(&s, "libc.so.6").1, "missing");
}

#[test]
fn reuse_by_soname_and_by_file_identity() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-rpath"));
    fs.add_file("/app/lib/liba.so", b.get("liba.so"));
    fs.add_file("/store/libb.so", b.get("libb.so"));
    fs.add_symlink("/app/lib/libb.so", "/store/libb.so");
    fs.add_file("/app/lib/libc1.so", b.get("libc1.so"));
    let mut e = env();
    // Preloading the same file under its store path: the later search finds the same inode.
    e.ld_preload = Some(b"/store/libb.so".to_vec());
    let tree = resolve(&fs, "/app/bin/main", &e);
    let s = summary(&tree);
    assert_eq!(find(&s, "/store/libb.so").2, "LD_PRELOAD");
    assert_eq!(find(&s, "libb.so").2, "reused-Soname");
    // The loader's NEEDED name from libc is its SONAME: reused, never searched.
    // (ld.so lists its SONAME among its names, rtld.c `_dl_rtld_libname2`.)
    assert!(tree.edges.iter().any(|e| e.name == b"ld-linux-x86-64.so.2"
        && matches!(e.outcome, Outcome::Reused(_, ReuseBy::Name))));
}

#[test]
fn a_missing_interpreter_is_reported_and_a_fallback_used() {
    let b = built();
    let mut fs = MemFs::new();
    fs.add_file("/app/bin/main", b.get("main-plain"));
    fs.add_file(
        "/other/ld.so",
        std::fs::read("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").unwrap(),
    );
    let cpu = Cpu::x86_64(1, false);
    let e = env();
    let resolver = Resolver::new(&fs);
    let req = Request {
        program: Path::new("/app/bin/main"),
        env: &e,
        cpu: &cpu,
        host: None,
        fallback_loader: Some(Path::new("/other/ld.so")),
    };
    let tree = resolver.resolve(&req).unwrap();
    assert!(tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::InterpreterMissing(_))));
    assert!(tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::AssumedLoader(_))));
}

#[test]
fn musl_searches_ld_library_path_first_and_inherits_run_paths() {
    let b = built();
    let musl = std::fs::read("/lib/ld-musl-x86_64.so.1")
        .expect("musl is missing: apt-get install -y musl");
    let mut fs = MemFs::new();
    fs.add_file("/lib/ld-musl-x86_64.so.1", musl);
    fs.add_file("/etc/ld-musl-x86_64.path", b"/musl/lib\n/other\n".to_vec());
    // A glibc-linked program read with musl's rules: the loader is chosen by the caller here.
    fs.add_file("/app/bin/main", b.get("main-runpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    add_libs(&mut fs, "/llp", &["liba.so", "libb.so", "libc1.so"]);
    fs.add_file("/musl/lib/libc1.so", b.get("libc1.so"));
    let cpu = Cpu::x86_64(1, false);
    let e = env();
    let resolver = Resolver::new(&fs);
    let req = Request {
        program: Path::new("/app/bin/main"),
        env: &e,
        cpu: &cpu,
        host: None,
        fallback_loader: Some(Path::new("/lib/ld-musl-x86_64.so.1")),
    };
    let s = summary(&resolver.resolve(&req).unwrap());
    // RUNPATH is inherited under musl: libb.so (needed by liba.so) comes from main's run path.
    assert_eq!(find(&s, "libb.so").1, "/app/lib/libb.so");
    // libc.so.6 is one of musl's reserved names: musl itself.
    assert_eq!(find(&s, "libc.so.6").1, "/lib64/ld-linux-x86-64.so.2");
    let mut e2 = env();
    e2.ld_library_path = Some(b"/llp".to_vec());
    let req = Request { env: &e2, ..req };
    let s = summary(&Resolver::new(&fs).resolve(&req).unwrap());
    assert_eq!(find(&s, "liba.so").1, "/llp/liba.so");
}

#[test]
fn a_libc_from_another_directory_is_two_glibcs() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-rpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    fs.add_file(
        "/app/lib/libc.so.6",
        std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").unwrap(),
    );
    let tree = resolve(&fs, "/app/bin/main", &env());
    let s = summary(&tree);
    assert_eq!(find(&s, "libc.so.6").1, "/app/lib/libc.so.6");
    assert!(tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::TwoGlibcs { dir, .. } if dir == Path::new("/app/lib"))));
    // With the loader's own libc there is no such finding.
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-rpath"));
    add_libs(&mut fs, "/app/lib", &["liba.so", "libb.so", "libc1.so"]);
    let tree = resolve(&fs, "/app/bin/main", &env());
    assert!(!tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::TwoGlibcs { .. })));
}

#[test]
fn a_required_version_the_library_does_not_define_is_reported() {
    let b = built();
    let mut fs = base();
    fs.add_file("/app/bin/main", b.get("main-v"));
    fs.add_file("/app/lib/libv.so", b.get("libv.so"));
    let tree = resolve(&fs, "/app/bin/main", &env());
    assert!(!tree
        .findings
        .iter()
        .any(|f| matches!(f, Finding::MissingVersion { .. })));
    fs.add_file("/app/lib/libv.so", b.get("libv-old.so"));
    let tree = resolve(&fs, "/app/bin/main", &env());
    let missing: Vec<String> = tree
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::MissingVersion { version, .. } => {
                Some(String::from_utf8_lossy(version).into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(missing, ["V2"]);
}

#[test]
fn stub_ld_as_interpreter_is_reported_by_content() {
    let b = built();
    let mut fs = MemFs::new();
    fs.add_file("/lib64/ld-linux-x86-64.so.2", b.get("stub-ld"));
    fs.add_file("/app/bin/main", b.get("main-plain"));
    fs.add_file(
        "/real/ld.so",
        std::fs::read("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").unwrap(),
    );
    let cpu = Cpu::x86_64(1, false);
    let e = env();
    let resolver = Resolver::new(&fs);
    let req = Request {
        program: Path::new("/app/bin/main"),
        env: &e,
        cpu: &cpu,
        host: None,
        fallback_loader: None,
    };
    // No loader to assume: an error naming the file.
    assert!(resolver.resolve(&req).is_err());
    let req = Request {
        fallback_loader: Some(Path::new("/real/ld.so")),
        ..req
    };
    let tree = resolver.resolve(&req).unwrap();
    assert!(tree.findings.iter().any(|f| matches!(
        f,
        Finding::InterpreterNotLoader {
            kind: "stub-ld",
            ..
        }
    )));
}

#[test]
fn nodeflib_discards_cache_hits_in_default_directories() {
    let b = built();
    let mut fs = base();
    fs.add_file(
        "/etc/ld.so.cache",
        std::fs::read("/etc/ld.so.cache").unwrap(),
    );
    fs.add_file(
        "/lib/x86_64-linux-gnu/libz.so.1",
        std::fs::read("/lib/x86_64-linux-gnu/libz.so.1").unwrap(),
    );
    fs.add_file("/app/bin/z", b.get("main-z"));
    fs.add_file("/app/bin/z-nodeflib", b.get("main-z-nodeflib"));
    let tree = resolve(&fs, "/app/bin/z", &env());
    let s = summary(&tree);
    assert_eq!(find(&s, "libz.so.1").1, "/lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(find(&s, "libz.so.1").2, "cache");
    let tree = resolve(&fs, "/app/bin/z-nodeflib", &env());
    let s = summary(&tree);
    assert_eq!(find(&s, "libz.so.1").1, "missing");
    let edge = tree.edges.iter().find(|e| e.name == b"libz.so.1").unwrap();
    assert!(edge
        .tried
        .iter()
        .any(|t| t.result == TryResult::NodeflibExcluded));
}

#[test]
fn secure_mode_drops_untrusted_origin_paths_and_slash_preloads() {
    let b = built();
    let mut fs = base();
    fs.add_file("/opt/real/bin/main", b.get("main-origin"));
    add_libs(
        &mut fs,
        "/opt/real/lib",
        &["liba.so", "libb.so", "libc1.so"],
    );
    fs.add_file("/pre/libc1.so", b.get("libc1.so"));
    let mut e = env();
    e.ld_preload = Some(b"/pre/libc1.so".to_vec());
    let s = summary(&resolve(&fs, "/opt/real/bin/main", &e));
    assert_eq!(find(&s, "/pre/libc1.so").2, "LD_PRELOAD");
    assert_eq!(find(&s, "liba.so").1, "/opt/real/bin/../lib/liba.so");
    // AT_SECURE: $ORIGIN/../lib expands outside the trusted directories and is dropped
    // (`_dl_dst_substitute`); a preload with a slash is ignored (rtld.c).
    e.secure = true;
    let s = summary(&resolve(&fs, "/opt/real/bin/main", &e));
    assert!(!s.iter().any(|(n, _, _)| n == "/pre/libc1.so"));
    assert_eq!(find(&s, "liba.so").1, "missing");
}
