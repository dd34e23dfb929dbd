//! The world's packages: Debian's files, patched like Nix-built files, built into /nix/store by
//! real input-addressed derivations.
//!
//! How it works (and why the glibc store path is known before the loader's bytes are final):
//! every derivation's builder is the static busybox copying one prepared directory, named by a plain
//! string attribute `stage`, to `$out`. The stage path is a string, not a Nix path, so it is not
//! hashed into the derivation; what is hashed is the package name, its declared dependencies and a
//! `key` with the world version and the Debian package versions. So `nix-instantiate --eval` yields
//! every output path first ([`eval_out_paths`]); then the stages are prepared with those paths
//! written into PT_INTERP, RUNPATH and the loader ([`crate::loader`]); then one `nix-build` realises
//! everything in dependency order, and Nix's reference scanning records the real graph from the
//! store paths written into the files. Builders are impure by design (`sandbox = false` reads the
//! stage from the host); the `key` makes a Debian upgrade produce new paths.

use crate::debian13::Debian13;
use crate::loader::{nixify_loader, NixLoaderPaths};
use crate::util::{is_elf, readelf, run, run_text};
use anyhow::{bail, ensure, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's multiarch library directory (merged /usr).
const MULTIARCH: &str = "/usr/lib/x86_64-linux-gnu";

/// What a package's stage is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Shared libraries of the Debian packages, into `lib/`.
    Libs,
    /// glibc: libraries plus the rewritten loader.
    Glibc,
    /// The static busybox with its applet links.
    Busybox,
    /// The static stub-ld, as a single file (NixOS: `pkgs.runCommandCC "stub-ld"`).
    StubLd,
    /// Debian's bash as `bin/bash` and `bin/sh` (NixOS's `/bin/sh` is bash).
    Bash,
    /// python3.11 with its standard library.
    Python,
    /// Debian's nix CLI with the libraries it needs that no other world package provides.
    NixCli,
    /// A symlink farm of other packages (profiles).
    Farm,
    /// 32-bit x86 libraries from Debian's `lib32` multilib packages (nixpkgs' `pkgsi686Linux`),
    /// left as Debian built them: the i386 loader is not rewritten (its code addresses the
    /// strings through the GOT, not RIP-relative), so it searches `/lib32/`, `/usr/lib32/`,
    /// `/lib/` and `/usr/lib/`, none of which exists in the sandbox.
    Libs32,
    /// musl (nixpkgs' `musl`): `lib/libc.so`, which is also the loader, and the loader's name
    /// `lib/ld-musl-x86_64.so.1` linking to it.
    Musl,
}

/// One world package.
#[derive(Debug, Clone)]
pub(crate) struct Pkg {
    pub attr: &'static str,
    pub name: String,
    pub kind: Kind,
    pub debs: Vec<&'static str>,
    pub deps: Vec<&'static str>,
    /// Library file name prefixes to take from `debs` (empty: every shared library).
    pub only: Vec<&'static str>,
    /// Files from an unpacked package instead of the installed `debs`: its root and its
    /// `name=version` (for the derivation's key).
    pub unpacked: Option<(PathBuf, String)>,
}

/// `dpkg-query` version of an installed Debian package.
pub(crate) fn deb_version(pkg: &str) -> Result<String> {
    let v = run_text(Command::new("dpkg-query").args(["-W", "-f", "${Version}", pkg]))
        .with_context(|| {
            format!("Debian package {pkg} is not installed: run scripts/install-deps")
        })?;
    ensure!(
        !v.is_empty(),
        "Debian package {pkg} is not installed: run scripts/install-deps"
    );
    Ok(v)
}

/// Upstream version from a Debian version: no epoch, no revision, no `.dfsg`-like suffix.
pub(crate) fn upstream(v: &str) -> String {
    let v = v.split_once(':').map_or(v, |(_, r)| r);
    let v = v.rsplit_once('-').map_or(v, |(l, _)| l);
    v.chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<String>()
        .trim_end_matches('.')
        .to_owned()
}

/// Files of an installed Debian package: (where it is, its path as installed).
fn deb_files(pkg: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    let text = run_text(Command::new("dpkg").args(["-L", pkg]))?;
    Ok(text
        .lines()
        .map(|l| (PathBuf::from(l), PathBuf::from(l)))
        .collect())
}

/// Files of an unpacked package's library directory: (where it is, its path as installed).
fn unpacked_files(root: &Path) -> Result<Vec<(PathBuf, PathBuf)>> {
    let dir = root.join(MULTIARCH.trim_start_matches('/'));
    let mut out = Vec::new();
    for name in list_dir(&dir)? {
        out.push((dir.join(&name), Path::new(MULTIARCH).join(&name)));
    }
    Ok(out)
}

/// The package set, in dependency order; with Debian 13's files, also a second, newer glibc.
pub(crate) fn packages(debian13: Option<&Debian13>) -> Result<Vec<Pkg>> {
    let v = |p: &str| deb_version(p).map(|v| upstream(&v));
    let gcc = v("libgcc-s1")?;
    let p = |attr, name: String, kind, debs: &[&'static str], deps: &[&'static str]| Pkg {
        attr,
        name,
        kind,
        debs: debs.to_vec(),
        deps: deps.to_vec(),
        only: Vec::new(),
        unpacked: None,
    };
    let mut pkgs = vec![
        p(
            "busybox",
            format!("busybox-{}", v("busybox-static")?),
            Kind::Busybox,
            &["busybox-static"],
            &[],
        ),
        p("stubLd", "stub-ld".into(), Kind::StubLd, &[], &[]),
        p(
            "libgcc",
            format!("gcc-{gcc}-libgcc"),
            Kind::Libs,
            &["libgcc-s1"],
            &[],
        ),
        p(
            "glibc",
            format!("glibc-{}", v("libc6")?),
            Kind::Glibc,
            &["libc6"],
            &["libgcc"],
        ),
        p(
            "gccLib",
            format!("gcc-{gcc}-lib"),
            Kind::Libs,
            &["libstdc++6"],
            &["glibc", "libgcc"],
        ),
        p(
            "zlib",
            format!("zlib-{}", v("zlib1g")?),
            Kind::Libs,
            &["zlib1g"],
            &["glibc"],
        ),
        p(
            "libxcrypt",
            format!("libxcrypt-{}", v("libcrypt1")?),
            Kind::Libs,
            &["libcrypt1"],
            &["glibc"],
        ),
        p(
            "openssl",
            format!("openssl-{}", v("libssl3")?),
            Kind::Libs,
            &["libssl3"],
            &["glibc"],
        ),
        p(
            "libffi",
            format!("libffi-{}", v("libffi8")?),
            Kind::Libs,
            &["libffi8"],
            &["glibc"],
        ),
        p(
            "sqlite",
            format!("sqlite-{}", v("libsqlite3-0")?),
            Kind::Libs,
            &["libsqlite3-0"],
            &["glibc"],
        ),
        p(
            "expat",
            format!("expat-{}", v("libexpat1")?),
            Kind::Libs,
            &["libexpat1"],
            &["glibc"],
        ),
        p(
            "bzip2",
            format!("bzip2-{}", v("libbz2-1.0")?),
            Kind::Libs,
            &["libbz2-1.0"],
            &["glibc"],
        ),
        p(
            "xz",
            format!("xz-{}", v("liblzma5")?),
            Kind::Libs,
            &["liblzma5"],
            &["glibc"],
        ),
        p(
            "unixODBC",
            format!("unixODBC-{}", v("libodbc2")?),
            Kind::Libs,
            &["libodbc2", "libltdl7"],
            &["glibc"],
        ),
        p(
            "ncurses",
            format!("ncurses-{}", v("libtinfo6")?),
            Kind::Libs,
            &["libtinfo6"],
            &["glibc"],
        ),
        p(
            "bash",
            format!("bash-{}", v("bash")?),
            Kind::Bash,
            &["bash"],
            &["glibc", "ncurses"],
        ),
        p(
            "python3",
            format!("python3-{}", v("python3.11-minimal")?),
            Kind::Python,
            &[
                "python3.11-minimal",
                "libpython3.11-minimal",
                "libpython3.11-stdlib",
            ],
            &[
                "glibc",
                "zlib",
                "expat",
                "openssl",
                "libffi",
                "sqlite",
                "bzip2",
                "xz",
                "libxcrypt",
            ],
        ),
        p(
            "nix",
            format!("nix-{}", v("nix-bin")?),
            Kind::NixCli,
            &["nix-bin"],
            &[
                "glibc", "libgcc", "gccLib", "zlib", "openssl", "sqlite", "libffi", "bzip2", "xz",
                "ncurses",
            ],
        ),
        // NixOS's /run/current-system/sw: no glibc libraries, no unixODBC, no libxcrypt.
        p(
            "systemPath",
            "system-path".into(),
            Kind::Farm,
            &[],
            &[
                "bash", "busybox", "python3", "nix", "zlib", "openssl", "libffi", "sqlite",
                "expat", "bzip2", "xz", "gccLib",
            ],
        ),
        p(
            "systemPathNoNix",
            "system-path".into(),
            Kind::Farm,
            &[],
            &[
                "bash", "busybox", "python3", "zlib", "openssl", "libffi", "sqlite", "expat",
                "bzip2", "xz", "gccLib",
            ],
        ),
        p(
            "userProfile",
            "user-environment".into(),
            Kind::Farm,
            &[],
            &["python3", "zlib"],
        ),
    ];
    // nixpkgs' pkgsi686Linux.glibc and .zlib (present on NixOS with 32-bit graphics enabled).
    pkgs.push(p(
        "glibc32",
        format!("glibc-{}", v("libc6-i386")?),
        Kind::Libs32,
        &["libc6-i386"],
        &[],
    ));
    pkgs.push(p(
        "zlib32",
        format!("zlib-{}", v("lib32z1")?),
        Kind::Libs32,
        &["lib32z1"],
        &["glibc32"],
    ));
    pkgs.push(p(
        "musl",
        format!("musl-{}", v("musl")?),
        Kind::Musl,
        &["musl"],
        &[],
    ));
    if let Some(d13) = debian13 {
        // Last, so the system glibc stays the first provider of every glibc library name.
        let libc6 = d13.libc6_version()?;
        let mut next = p(
            "glibcNext",
            format!("glibc-{}", upstream(libc6)),
            Kind::Glibc,
            &[],
            &["libgcc"],
        );
        next.unpacked = Some((d13.root("libc6"), format!("libc6={libc6}")));
        pkgs.push(next);
    }
    for pkg in &mut pkgs {
        if pkg.attr == "unixODBC" {
            pkg.only = vec!["libodbc.so", "libltdl.so"];
        }
        if pkg.attr == "ncurses" {
            pkg.only = vec!["libtinfo.so"];
        }
        if pkg.attr == "openssl" {
            pkg.only = vec!["libssl.so", "libcrypto.so"];
        }
    }
    Ok(pkgs)
}

/// The Nix expression for the whole world: one derivation per package.
pub(crate) fn nix_expr(pkgs: &[Pkg], stage_root: &Path, key: &str) -> Result<String> {
    let mut s = String::from(
        "# Generated by ldfix-testworld: Debian's files as nixpkgs-like store paths.\nlet\n  mk = { name, attr, deps, key }: derivation {\n    inherit name deps key;\n    system = \"x86_64-linux\";\n    # The host's static busybox (busybox-static); the build is impure by design, see store.rs.\n    builder = \"/bin/busybox\";\n    args = [ \"sh\" \"-c\" \"exec /bin/busybox cp -a \\\"$stage\\\" \\\"$out\\\"\" ];\n    stage = \"",
    );
    s.push_str(&nix_str(stage_root)?);
    s.push_str("/${attr}\";\n  };\n");
    for p in pkgs {
        let mut debs: Vec<String> = p
            .debs
            .iter()
            .map(|d| deb_version(d).map(|v| format!("{d}={v}")))
            .collect::<Result<_>>()?;
        if let Some((_, version)) = &p.unpacked {
            debs.push(format!("debian13:{version}"));
        }
        writeln!(
            s,
            "  {} = mk {{ name = \"{}\"; attr = \"{}\"; deps = [ {} ]; key = \"{key} {}\"; }};",
            p.attr,
            p.name,
            p.attr,
            p.deps.join(" "),
            debs.join(" ")
        )?;
    }
    s.push_str("in {\n");
    for p in pkgs {
        writeln!(s, "  inherit {};", p.attr)?;
    }
    s.push_str("}\n");
    Ok(s)
}

fn nix_str(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?;
    ensure!(
        !s.contains(['"', '\\', '$']),
        "{s} contains characters that need quoting in Nix"
    );
    Ok(s.to_owned())
}

/// Output paths of every attribute of `expr_file`, without building anything.
pub(crate) fn eval_out_paths(expr_file: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let expr = format!(
        "builtins.mapAttrs (n: d: d.outPath) (import {})",
        nix_str(expr_file)?
    );
    let json = run_text(
        Command::new("nix-instantiate").args(["--eval", "--strict", "--json", "-E", &expr]),
    )?;
    let map: BTreeMap<String, String> =
        serde_json::from_str(&json).context("nix-instantiate --eval output")?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, PathBuf::from(v)))
        .collect())
}

/// Prepares every package's stage directory under `stage_root`.
pub(crate) fn stage_all(
    pkgs: &[Pkg],
    outs: &BTreeMap<String, PathBuf>,
    stage_root: &Path,
    c_dir: &Path,
) -> Result<()> {
    let out = |a: &str| {
        outs.get(a)
            .cloned()
            .with_context(|| format!("no output path for {a}"))
    };
    // soname -> (attr, lib dir in the store)
    let mut providers: HashMap<String, (&'static str, PathBuf)> = HashMap::new();
    let loader = out("glibc")?.join("lib/ld-linux-x86-64.so.2");
    for p in pkgs {
        let stage = stage_root.join(p.attr);
        let me = out(p.attr)?;
        match p.kind {
            Kind::Busybox => stage_busybox(&stage)?,
            Kind::StubLd => stage_stub_ld(&stage, c_dir)?,
            Kind::Libs32 => copy_libs(p, &stage.join("lib"))?,
            Kind::Musl => {
                let lib = stage.join("lib");
                fs::create_dir_all(&lib)?;
                fs::copy("/lib/x86_64-linux-musl/libc.so", lib.join("libc.so"))
                    .context("copying musl's libc.so (apt-get install -y musl)")?;
                symlink("libc.so", lib.join("ld-musl-x86_64.so.1"))?;
            }
            Kind::Libs | Kind::Glibc => {
                copy_libs(p, &stage.join("lib"))?;
                if p.kind == Kind::Glibc {
                    let paths = NixLoaderPaths {
                        system_dirs: vec![
                            format!("{}/lib/", me.display()),
                            format!("{}/lib/", out("libgcc")?.display()),
                        ],
                        cache: format!("{}/etc/ld.so.cache", me.display()),
                    };
                    let ld = stage.join("lib/ld-linux-x86-64.so.2");
                    let orig =
                        fs::read(&ld).with_context(|| format!("reading {}", ld.display()))?;
                    let new = nixify_loader(&orig, &paths)
                        .with_context(|| format!("rewriting {}", ld.display()))?;
                    fs::write(&ld, new)?;
                }
            }
            Kind::Python => stage_python(&stage, &me)?,
            Kind::Bash => {
                fs::create_dir_all(stage.join("bin"))?;
                fs::copy("/bin/bash", stage.join("bin/bash")).context("copying /bin/bash")?;
                symlink("bash", stage.join("bin/sh"))?;
            }
            Kind::NixCli => stage_nix(&stage, &providers)?,
            Kind::Farm => {
                let dirs: Vec<(PathBuf, PathBuf)> = p
                    .deps
                    .iter()
                    .map(|d| Ok((out(d)?, stage_root.join(d))))
                    .collect::<Result<_>>()?;
                farm(&stage, &dirs)?;
            }
        }
        // libgcc_s is left as is: in nixpkgs it has no RUNPATH (glibc's loader finds libc by its
        // default directories, and libgcc is one of them).
        if matches!(
            p.kind,
            Kind::Libs | Kind::Bash | Kind::Python | Kind::NixCli
        ) && p.attr != "libgcc"
        {
            patch_tree(p, &stage, &me, &loader, &providers)?;
        }
        if matches!(p.kind, Kind::Libs | Kind::Glibc | Kind::NixCli) {
            for name in list_dir(&stage.join("lib"))? {
                providers.entry(name).or_insert((p.attr, me.join("lib")));
            }
        }
    }
    Ok(())
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if dir.is_dir() {
        for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            names.push(e?.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Copies a file or symlink (a symlink stays a symlink; see below for hard links).
fn copy_entry(from: &Path, to: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(from).with_context(|| format!("reading {}", from.display()))?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if meta.file_type().is_symlink() {
        symlink(fs::read_link(from)?, to).with_context(|| format!("linking {}", to.display()))?;
    } else if is_elf(from) || fs::hard_link(from, to).is_err() {
        // ELF files are copied: they are patched in place later. Other files are hard-linked
        // (never written; Nix copies them into the store), which makes staging much cheaper.
        fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

fn copy_libs(p: &Pkg, lib: &Path) -> Result<()> {
    fs::create_dir_all(lib)?;
    let mut n = 0;
    let mut lists = Vec::new();
    for deb in &p.debs {
        lists.push(deb_files(deb)?);
    }
    if let Some((root, _)) = &p.unpacked {
        lists.push(unpacked_files(root)?);
    }
    for files in lists {
        for (f, shown) in files {
            let Some(name) = f.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let parent_ok = shown.parent().is_some_and(|d| {
                if p.kind == Kind::Libs32 {
                    d == Path::new("/lib32") || d == Path::new("/usr/lib32")
                } else {
                    d == Path::new(MULTIARCH) || d == Path::new("/lib/x86_64-linux-gnu")
                }
            });
            let wanted = p.only.is_empty() || p.only.iter().any(|o| name.starts_with(o));
            if parent_ok && name.contains(".so") && wanted && !lib.join(&name).exists() {
                copy_entry(&f, &lib.join(&name))?;
                n += 1;
            }
        }
    }
    ensure!(n > 0, "no libraries found in Debian packages {:?}", p.debs);
    Ok(())
}

fn stage_busybox(stage: &Path) -> Result<()> {
    let bin = stage.join("bin");
    fs::create_dir_all(&bin)?;
    fs::copy("/bin/busybox", bin.join("busybox"))
        .context("copying /bin/busybox (apt-get install busybox-static)")?;
    let list = run_text(Command::new("/bin/busybox").arg("--list"))?;
    for applet in list.lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", bin.join(applet))?;
    }
    Ok(())
}

/// NixOS's stub-ld message (nixpkgs `nixos/modules/config/stub-ld.nix`).
pub const STUB_LD_MESSAGE: &str = "NixOS cannot run dynamically linked executables intended for generic\nlinux environments out of the box. For more information, see:\nhttps://nix.dev/permalink/stub-ld\n";

fn stage_stub_ld(stage: &Path, c_dir: &Path) -> Result<()> {
    if let Some(parent) = stage.parent() {
        fs::create_dir_all(parent)?;
    }
    run(Command::new("gcc")
        .args([
            "-static-pie",
            "-nostdlib",
            "-ffreestanding",
            "-fPIE",
            "-fno-stack-protector",
            "-Os",
            "-o",
        ])
        .arg(stage)
        .arg(c_dir.join("stub-ld.c")))
    .context("compiling the static stub-ld (needs gcc)")?;
    Ok(())
}

/// lib-dynload modules left out because the world has no package for what they need (as a
/// minimal nixpkgs python without ncurses, readline, db, libuuid, libnsl would).
const PYTHON_DROPPED: &[&str] = &[
    "_curses",
    "_curses_panel",
    "_dbm",
    "_uuid",
    "nis",
    "readline",
    "_xxtestfuzz",
    "_ctypes_test",
];

/// True for a lib-dynload file that the world leaves out (see [`PYTHON_DROPPED`]; test modules too).
fn python_dropped(name: &str) -> bool {
    let module = name.split('.').next().unwrap_or(name);
    PYTHON_DROPPED.contains(&module)
        || module.starts_with("_test")
        || module.starts_with("xxlimited")
}

fn stage_python(stage: &Path, out: &Path) -> Result<()> {
    let bin = stage.join("bin");
    fs::create_dir_all(&bin)?;
    fs::copy("/usr/bin/python3.11", bin.join("python3.11"))
        .context("copying /usr/bin/python3.11")?;
    symlink("python3.11", bin.join("python3"))?;
    symlink("python3", bin.join("python"))?;
    let src = Path::new("/usr/lib/python3.11");
    let dst = stage.join("lib/python3.11");
    copy_tree(src, &dst, &|rel: &Path| {
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let skip_top = [
            "test",
            "idlelib",
            "tkinter",
            "turtledemo",
            "dist-packages",
            "site-packages",
            "lib2to3",
            "pydoc_data",
            // libpython3.11.a and the Makefile, for building C extensions: not needed here.
            "config-3.11-x86_64-linux-gnu",
            // Debian's PEP 668 marker; nixpkgs' Python has none.
            "EXTERNALLY-MANAGED",
        ]
        .contains(&first.as_str());
        let dropped = rel.starts_with("lib-dynload") && python_dropped(&name);
        skip_top
            || dropped
            || name == "__pycache__"
            || rel.components().any(|c| c.as_os_str() == "tests")
    })?;
    // Byte-compile the stdlib for its store location, as nixpkgs does: the store is read-only,
    // so without .pyc files every Python start would recompile what it imports. Hash-based,
    // unchecked pyc files stay valid although Nix resets every mtime to 1; `-d` names the
    // store path in code objects (tracebacks). Debian's python3.11 is the same interpreter.
    let ddir = out.join("lib/python3.11");
    run(Command::new("/usr/bin/python3.11")
        .args([
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
        ])
        .arg(&ddir)
        .arg(&dst))
    .context("byte-compiling the store Python's standard library")?;
    Ok(())
}

fn copy_tree(src: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<()> {
    fn walk(root: &Path, dir: &Path, dst: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<()> {
        for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let path = e.path();
            let rel = path.strip_prefix(root)?;
            if skip(rel) {
                continue;
            }
            let ft = e.file_type()?;
            if ft.is_dir() {
                fs::create_dir_all(dst.join(rel))?;
                walk(root, &path, dst, skip)?;
            } else {
                copy_entry(&path, &dst.join(rel))?;
            }
        }
        Ok(())
    }
    fs::create_dir_all(dst)?;
    walk(src, src, dst, skip)
}

/// Debian's nix CLI: `bin/nix` (the other commands are links to it) and every library from its
/// `ldd` closure that no earlier world package provides.
fn stage_nix(stage: &Path, providers: &HashMap<String, (&'static str, PathBuf)>) -> Result<()> {
    let bin = stage.join("bin");
    let lib = stage.join("lib");
    fs::create_dir_all(&bin)?;
    fs::create_dir_all(&lib)?;
    fs::copy("/usr/bin/nix", bin.join("nix"))
        .context("copying /usr/bin/nix (apt-get install nix-bin)")?;
    for cmd in [
        "nix-store",
        "nix-build",
        "nix-env",
        "nix-instantiate",
        "nix-shell",
        "nix-collect-garbage",
        "nix-hash",
        "nix-channel",
        "nix-copy-closure",
        "nix-prefetch-url",
    ] {
        symlink("nix", bin.join(cmd))?;
    }
    let ldd = run_text(Command::new("ldd").arg("/usr/bin/nix"))?;
    for line in ldd.lines() {
        let Some((name, rest)) = line.trim().split_once(" => ") else {
            continue;
        };
        let Some(path) = rest.split_whitespace().next() else {
            continue;
        };
        if providers.contains_key(name) {
            continue;
        }
        ensure!(
            path.starts_with('/'),
            "ldd /usr/bin/nix: {name} not found on this machine"
        );
        fs::copy(path, lib.join(name)).with_context(|| format!("copying {path}"))?;
    }
    Ok(())
}

/// A symlink farm: `bin/*` and `lib/*` of each package, first one wins (like buildEnv).
fn farm(stage: &Path, pkgs: &[(PathBuf, PathBuf)]) -> Result<()> {
    for sub in ["bin", "lib"] {
        let dir = stage.join(sub);
        fs::create_dir_all(&dir)?;
        for (out, pkg_stage) in pkgs {
            // nix's lib/ holds its private closure (libcurl, libarchive, …), which a NixOS system
            // profile would not expose (in nixpkgs those are separate packages): only its bin/.
            if sub == "lib" && pkg_stage.file_name() == Some(std::ffi::OsStr::new("nix")) {
                continue;
            }
            // The package's stage has the same layout as its future output.
            for name in list_dir(&pkg_stage.join(sub))? {
                let link = dir.join(&name);
                if fs::symlink_metadata(&link).is_err() {
                    symlink(out.join(sub).join(&name), &link)?;
                }
            }
        }
    }
    Ok(())
}

/// Sets PT_INTERP (executables) and RUNPATH (all dynamic ELF files) of every file in a stage.
fn patch_tree(
    p: &Pkg,
    stage: &Path,
    me: &Path,
    loader: &Path,
    providers: &HashMap<String, (&'static str, PathBuf)>,
) -> Result<()> {
    let own: Vec<String> = list_dir(&stage.join("lib"))?;
    let mut files = Vec::new();
    collect_files(stage, &mut files)?;
    for f in files {
        if !is_elf(&f) {
            continue;
        }
        let info = readelf(&f)?;
        let mut dirs: Vec<PathBuf> = Vec::new();
        for needed in &info.needed {
            let dir = if own.contains(needed) {
                me.join("lib")
            } else if let Some((attr, dir)) = providers.get(needed) {
                ensure!(
                    p.deps.contains(attr) || *attr == "glibc" || *attr == "libgcc",
                    "{}: {needed} is provided by {attr}, which {} does not depend on",
                    f.display(),
                    p.attr
                );
                dir.clone()
            } else {
                bail!(
                    "{}: NEEDED {needed} is provided by no world package",
                    f.display()
                );
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        let rpath = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        let mut cmd = Command::new("patchelf");
        if info.interp.is_some() {
            cmd.arg("--set-interpreter").arg(loader);
        }
        if !rpath.is_empty() {
            cmd.args(["--set-rpath", &rpath]);
        } else if info.runpath.is_some() || info.rpath.is_some() {
            cmd.arg("--remove-rpath");
        }
        if cmd.get_args().len() > 0 {
            run(cmd.arg(&f)).with_context(|| format!("patching {}", f.display()))?;
        }
    }
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            collect_files(&e.path(), out)?;
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}
