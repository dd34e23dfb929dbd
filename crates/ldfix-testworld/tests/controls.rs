//! Controls proving the test world is sound (positive) and NixOS-like (negative).

use anyhow::{ensure, Context, Result};
use ldfix_testworld::{readelf, Env, Fixture, Fixtures, Lib64, World, STUB_LD_MESSAGE};
use std::path::Path;
use std::process::Command;

fn world() -> Result<&'static World> {
    World::get()
}

fn tmp() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("ldfix-testworld-")
        .tempdir()?)
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every directory the loader's `LD_DEBUG=libs` output says it searched, and every cache it tried.
fn searched(debug: &str) -> (Vec<String>, Vec<String>) {
    let mut dirs = Vec::new();
    let mut caches = Vec::new();
    for line in debug.lines() {
        if let Some((_, rest)) = line.split_once("search path=") {
            let list = rest.split('\t').next().unwrap_or("").trim();
            dirs.extend(list.split(':').map(str::to_owned));
        }
        if let Some((_, rest)) = line.split_once("search cache=") {
            caches.push(rest.trim().to_owned());
        }
    }
    (dirs, caches)
}

fn check_nixpkgs_like_search(glibc: &Path, debug: &str) -> Result<()> {
    let (dirs, caches) = searched(debug);
    ensure!(
        !dirs.is_empty(),
        "no search path in LD_DEBUG output:\n{debug}"
    );
    for d in &dirs {
        ensure!(
            d.starts_with("/nix/store/"),
            "searched {d} outside the store:\n{debug}"
        );
    }
    let cache = glibc.join("etc/ld.so.cache");
    for c in &caches {
        ensure!(
            Path::new(c) == cache,
            "tried cache {c}, expected {}",
            cache.display()
        );
    }
    ensure!(!cache.exists(), "{} must not exist", cache.display());
    ensure!(
        !debug.contains("=/etc/") && !debug.contains("x86_64-linux-gnu"),
        "Debian's cache or directories in:\n{debug}"
    );
    Ok(())
}

/// Both store glibcs: Debian 12's 2.36 and Debian 13's 2.41, each rewritten like nixpkgs'.
#[test]
fn loader_has_only_store_defaults_outside_the_sandbox() -> Result<()> {
    let w = world()?;
    for (glibc, version) in [(w.glibc(), "2.36"), (w.glibc_next(), "2.41")] {
        store_loader_has_only_store_defaults(w, glibc, version)
            .with_context(|| format!("the loader of {}", glibc.display()))?;
    }
    Ok(())
}

fn store_loader_has_only_store_defaults(w: &World, glibc: &Path, version: &str) -> Result<()> {
    let ld = glibc.join("lib/ld-linux-x86-64.so.2");
    let out = Command::new(&ld)
        .arg("--list-diagnostics")
        .env_remove("LD_LIBRARY_PATH")
        .output()?;
    let (stdout, _) = text(&out);
    let dirs: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("path.system_dirs"))
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim_matches('"')))
        .collect();
    let want = [
        format!("{}/lib/", glibc.display()),
        format!("{}/lib/", w.libgcc().display()),
    ];
    ensure!(dirs == want, "system_dirs {dirs:?}, expected {want:?}");
    ensure!(
        stdout.contains(&format!("version.version=\"{version}\"")),
        "not glibc {version}:\n{stdout}"
    );
    ensure!(
        stdout.contains("dl_dst_lib=\"lib\""),
        "$LIB is not lib:\n{stdout}"
    );

    // A host binary without RUNPATH: libc comes from the store glibc's own lib/, not Debian's.
    let out = Command::new(&ld)
        .args(["--list", "/usr/bin/true"])
        .env("LD_DEBUG", "libs")
        .env_remove("LD_LIBRARY_PATH")
        .output()?;
    let (stdout, stderr) = text(&out);
    ensure!(out.status.success(), "{stdout}{stderr}");
    let libc = glibc.join("lib/libc.so.6");
    ensure!(
        stdout.contains(&format!("libc.so.6 => {}", libc.display())),
        "{stdout}"
    );
    check_nixpkgs_like_search(glibc, &stderr)?;

    // A library Debian's loader finds in /usr/lib/x86_64-linux-gnu is not found by the store one.
    let fx = w.fixtures()?;
    let out = Command::new(&ld)
        .arg("--list")
        .arg(fx.path(Fixture::NeedsZ))
        .env("LD_DEBUG", "libs")
        .env_remove("LD_LIBRARY_PATH")
        .output()?;
    let (stdout, stderr) = text(&out);
    ensure!(
        out.status.code() == Some(127)
            && stderr
                .contains("libz.so.1: cannot open shared object file: No such file or directory"),
        "{stdout}{stderr}"
    );
    check_nixpkgs_like_search(glibc, &stderr)
}

#[test]
fn loader_has_only_store_defaults_inside_the_sandbox() -> Result<()> {
    let w = world()?;
    let ld = w.loader();
    let line = format!(
        "LD_DEBUG=libs {} --list /run/current-system/sw/bin/python3",
        ld.display()
    );
    let out = w.sandbox().sh(&line)?;
    ensure!(out.success(), "{out}");
    ensure!(
        out.stdout
            .contains(&format!("{}/lib/libc.so.6", w.glibc().display())),
        "{out}"
    );
    check_nixpkgs_like_search(w.glibc(), &out.stderr)?;
    let out = w
        .sandbox()
        .sh(&format!("{} --list-diagnostics", ld.display()))?;
    ensure!(out.success(), "{out}");
    ensure!(!out.stdout.contains("x86_64-linux-gnu/\""), "{out}");
    Ok(())
}

#[test]
fn store_files_are_patched_like_nix_builds_and_the_graph_is_real() -> Result<()> {
    let w = world()?;
    let py = readelf(&w.python().join("bin/python3.11"))?;
    ensure!(
        py.interp.as_deref() == Some(w.loader().to_str().context("utf-8")?),
        "{py:?}"
    );
    let runpath = py.runpath.context("python has no RUNPATH")?;
    for d in runpath.split(':') {
        ensure!(
            d.starts_with("/nix/store/") && d.ends_with("/lib"),
            "{runpath}"
        );
    }
    let refs = |p: &Path| -> Result<String> {
        let out = Command::new("nix-store")
            .args(["-q", "--references"])
            .arg(p)
            .output()?;
        ensure!(out.status.success(), "{}", text(&out).1);
        Ok(text(&out).0)
    };
    let py_refs = refs(w.python())?;
    for dep in [
        "glibc",
        "zlib",
        "openssl",
        "sqlite",
        "libffi",
        "bzip2",
        "xz",
        "expat",
        "libxcrypt",
    ] {
        let p = w.pkg(dep)?;
        ensure!(
            py_refs.contains(p.to_str().context("utf-8")?),
            "python lacks {dep}:\n{py_refs}"
        );
    }
    ensure!(
        refs(w.glibc())?.contains(w.libgcc().to_str().context("utf-8")?),
        "glibc -> libgcc"
    );
    ensure!(
        refs(w.unixodbc())?.contains(w.glibc().to_str().context("utf-8")?),
        "unixODBC -> glibc"
    );
    let sys = refs(w.system_profile())?;
    for absent in [w.unixodbc(), w.libxcrypt(), w.glibc()] {
        ensure!(
            !sys.contains(absent.to_str().context("utf-8")?),
            "profile has {}",
            absent.display()
        );
    }
    ensure!(
        sys.contains(w.nix_cli().to_str().context("utf-8")?),
        "{sys}"
    );
    ensure!(!refs(w.system_profile_no_nix())?.contains(w.nix_cli().to_str().context("utf-8")?));
    let lib = w.system_profile().join("lib");
    for absent in [
        "libodbc.so.2",
        "libcrypt.so.1",
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "libarchive.so.13",
    ] {
        ensure!(
            std::fs::symlink_metadata(lib.join(absent)).is_err(),
            "profile has lib/{absent}"
        );
    }
    for present in ["libz.so.1", "libssl.so.3", "libstdc++.so.6"] {
        ensure!(lib.join(present).is_file(), "profile lacks lib/{present}");
    }
    ensure!(w.system_profile().join("bin/nix-store").is_file());
    ensure!(!w.system_profile_no_nix().join("bin/nix-store").exists());
    Ok(())
}

#[test]
fn store_programs_run_inside_the_sandbox() -> Result<()> {
    let w = world()?;
    let imports =
        "import ssl, sqlite3, ctypes, zlib, bz2, lzma; print('imports ok', ssl.OPENSSL_VERSION)";
    let out = w.sandbox().run(&["python3", "-c", imports])?;
    ensure!(
        out.success() && out.stdout.starts_with("imports ok OpenSSL 3"),
        "{out}"
    );
    let out =
        w.sandbox()
            .env(Env::Empty)
            .run(&["/run/current-system/sw/bin/python3", "-c", imports])?;
    ensure!(out.success(), "{out}");

    let probe = "echo PATH=$PATH; echo HOME=$HOME USER=$USER; echo LD=${LD_LIBRARY_PATH-unset}; \
                 for p in /lib /usr/lib /etc/ld.so.cache /lib64; do [ -e $p ] && echo has $p; done; \
                 touch /nix/store/x 2>/dev/null && echo store-writable; \
                 touch /nix/var/nix/.ldfix-probe && rm /nix/var/nix/.ldfix-probe && echo var-writable; \
                 readlink /run/current-system/sw; ls -d ~/.nix-profile/bin";
    let out = w.sandbox().lib64(Lib64::Absent).sh(probe)?;
    ensure!(out.success(), "{out}");
    let o = &out.stdout;
    ensure!(o.contains("PATH=/run/current-system/sw/bin\n"), "{out}");
    ensure!(
        o.contains("HOME=/root USER=root") && o.contains("LD=unset"),
        "{out}"
    );
    ensure!(
        !o.contains("has ") && !o.contains("store-writable") && o.contains("var-writable"),
        "{out}"
    );
    ensure!(
        o.contains(w.system_profile().to_str().context("utf-8")?),
        "{out}"
    );

    let out = w.sandbox().env(Env::Empty).run(&["/usr/bin/env"])?;
    ensure!(
        out.success() && out.stdout.trim().is_empty(),
        "env -i is not empty: {out}"
    );

    let out = w
        .sandbox()
        .sh(&format!("nix-store -q --references {}", w.zlib().display()))?;
    ensure!(
        out.success() && out.stdout.contains(w.glibc().to_str().context("utf-8")?),
        "{out}"
    );
    let out = w
        .sandbox()
        .nix_cli(false)
        .sh("command -v nix-store || echo no-nix")?;
    ensure!(out.stdout.trim() == "no-nix", "{out}");
    Ok(())
}

#[test]
fn fhs_fixtures_have_the_intended_dynamic_sections_and_run_on_the_host() -> Result<()> {
    let dir = tmp()?;
    let fx = Fixtures::build(dir.path())?; // checks NEEDED, interpreter, RPATH/RUNPATH tags
    let z = readelf(&fx.path(Fixture::NeedsZRpath))?;
    ensure!(z.rpath.is_some() && z.runpath.is_none(), "{z:?}");
    let z = readelf(&fx.path(Fixture::NeedsZRunpath))?;
    ensure!(z.runpath.is_some() && z.rpath.is_none(), "{z:?}");
    for f in Fixture::ALL {
        let out = Command::new(fx.path(f)).output()?;
        let (stdout, stderr) = text(&out);
        ensure!(
            out.status.success() && stdout.starts_with(f.expected_stdout_prefix()),
            "{}: {stdout}{stderr}",
            f.name()
        );
    }
    Ok(())
}

#[test]
fn fhs_fixtures_fail_inside_as_on_nixos() -> Result<()> {
    let w = world()?;
    let fx = w.fixtures()?;
    let z = fx.path(Fixture::NeedsZ);
    let zs = z.to_str().context("utf-8")?;

    // No /lib64 at all: the shell's message, and execve's ENOENT.
    let sb = w.sandbox().lib64(Lib64::Absent).ro_bind(fx.dir());
    let out = sb.sh(zs)?;
    ensure!(out.status == 127, "{out}");
    ensure!(
        out.stderr
            .contains(&format!("{zs}: cannot execute: required file not found")),
        "{out}"
    );
    let out = sb.run(&[zs])?;
    ensure!(
        out.stderr
            .contains(&format!("execvp {zs}: No such file or directory")),
        "{out}"
    );

    // stub-ld (NixOS >= 24.05 default): its message and status 127, for every fixture.
    for f in Fixture::ALL {
        let p = fx.path(f);
        let ps = p.to_str().context("utf-8")?;
        let out = w.sandbox().ro_bind(fx.dir()).sh(ps)?;
        ensure!(out.status == 127, "{out}");
        let want =
            format!("Could not start dynamically linked executable: {ps}\n{STUB_LD_MESSAGE}");
        ensure!(out.stderr == want, "{out}");
        ensure!(out.stdout.is_empty(), "{out}");
    }

    // Through the store loader: the libraries are not found.
    for (f, soname) in [
        (Fixture::NeedsCrypt, "libcrypt.so.1"),
        (Fixture::NeedsZ, "libz.so.1"),
        (Fixture::NeedsStdcxx, "libstdc++.so.6"),
    ] {
        let p = fx.path(f);
        let out = w
            .sandbox()
            .ro_bind(fx.dir())
            .run(&[w.loader().as_os_str(), p.as_os_str()])?;
        ensure!(out.status == 127, "{out}");
        let want = format!("error while loading shared libraries: {soname}: cannot open shared object file: No such file or directory");
        ensure!(out.stderr.contains(&want), "{out}");
    }
    // ... while libc alone is found in the store glibc.
    let hello = fx.path(Fixture::Hello);
    let out = w
        .sandbox()
        .ro_bind(fx.dir())
        .run(&[w.loader().as_os_str(), hello.as_os_str()])?;
    ensure!(out.success() && out.stdout == "hello ok\n", "{out}");
    Ok(())
}

#[test]
fn venv_wheel_fails_for_the_right_reason() -> Result<()> {
    let w = world()?;
    let dir = tmp()?;
    let venv = w.venv(&dir.path().join("venv"), &["numpy", "pyodbc"])?;
    let py = venv.join("bin/python");
    // Positive: numpy's wheel bundles what it needs beyond glibc, so it imports inside.
    let out = w.sandbox().ro_bind(dir.path()).run(&[
        py.as_os_str(),
        "-c".as_ref(),
        "import numpy; print('numpy', numpy.arange(4).sum())".as_ref(),
    ])?;
    ensure!(out.success() && out.stdout == "numpy 6\n", "{out}");
    // The interpreter must not have libodbc loaded already, or the import would succeed by accident.
    let code = "import sys\nmaps = open('/proc/self/maps').read()\nassert 'libodbc' not in maps, maps\n\
                try:\n    import pyodbc\nexcept ImportError as e:\n    print('ImportError:', e)\n    sys.exit(3)\n\
                print('imported')";
    for out in [
        w.sandbox()
            .ro_bind(dir.path())
            .run(&[py.as_os_str(), "-c".as_ref(), code.as_ref()])?,
        w.sandbox().ro_bind(dir.path()).env(Env::Empty).run(&[
            py.as_os_str(),
            "-c".as_ref(),
            code.as_ref(),
        ])?,
    ] {
        ensure!(out.status == 3, "{out}");
        ensure!(
            out.stdout.contains(
                "libodbc.so.2: cannot open shared object file: No such file or directory"
            ),
            "{out}"
        );
    }
    Ok(())
}

#[test]
fn profiles_are_gc_roots() -> Result<()> {
    let w = world()?;
    for profile in [
        w.system_profile(),
        w.system_profile_no_nix(),
        w.user_profile(),
    ] {
        let out = Command::new("nix-store")
            .args(["-q", "--roots"])
            .arg(profile)
            .output()?;
        let (stdout, stderr) = text(&out);
        ensure!(out.status.success(), "{stderr}");
        let link = w.profiles_dir();
        ensure!(
            stdout.contains(link.to_str().context("utf-8")?),
            "no profile root for {}: {stdout}",
            profile.display()
        );
        // Garbage collection of exactly this path must refuse: it is alive.
        let out = Command::new("nix-store")
            .arg("--delete")
            .arg(profile)
            .output()?;
        let (_, stderr) = text(&out);
        ensure!(
            !out.status.success() && stderr.contains("still alive"),
            "{stderr}"
        );
        ensure!(profile.is_dir());
    }
    // What a real `nix-store --gc` would delete (without deleting anything others may need).
    let out = Command::new("nix-store")
        .args(["--gc", "--print-dead"])
        .output()?;
    let (dead, stderr) = text(&out);
    ensure!(out.status.success(), "{stderr}");
    for path in w.packages().values() {
        let p = path.to_str().context("utf-8")?;
        ensure!(!dead.lines().any(|l| l == p), "{p} would be collected");
    }
    for (attr, path) in w.packages() {
        let root = w.gc_roots_dir().join(attr);
        ensure!(std::fs::read_link(&root)? == *path, "{}", root.display());
    }
    Ok(())
}

#[test]
fn missing_prerequisites_fail_with_the_install_command() -> Result<()> {
    let empty = tmp()?;
    let err = ldfix_testworld::check_prerequisites_in(empty.path().as_os_str())
        .err()
        .context("an empty PATH must fail")?;
    let msg = format!("{err:#}");
    ensure!(
        msg.contains("apt-get install -y") && msg.contains("bubblewrap") && msg.contains("nix-bin"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn not_root_fails_with_an_explanation() -> Result<()> {
    // The world's own CLI, run as nobody (setpriv from util-linux): it must refuse, not skip.
    // A copy in a world-readable directory: the checkout may live under a private /root.
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let bin = dir.path().join("ldfix-testworld");
    std::fs::copy(env!("CARGO_BIN_EXE_ldfix-testworld"), &bin)?;
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(&bin)
        .arg("build")
        .output()
        .context("setpriv (apt-get install -y util-linux)")?;
    let (_, stderr) = text(&out);
    ensure!(out.status.code() == Some(2), "{stderr}");
    ensure!(
        stderr.contains("needs root") && stderr.contains("sudo"),
        "{stderr}"
    );
    Ok(())
}
