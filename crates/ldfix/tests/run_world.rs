//! `ldfix run` in the NixOS-like test world, with the static ldfix inside the bubblewrap sandbox
//! (both with NixOS's stub-ld at `/lib64/ld-linux-x86-64.so.2` and with no `/lib64` at all):
//! gcc-built FHS programs, a foreign CPython prefix and a venv of real manylinux wheels run with
//! no file modified; the environment reaches the program and its children byte for byte; exit
//! statuses and signals are the program's own.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash as _, Hasher as _};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ldfix_testworld::{Fixture, Fixtures, Lib64, RunOutput, Sandbox, World};

const VARIANTS: [Lib64; 2] = [Lib64::StubLd, Lib64::Absent];

/// The static ldfix, built once per test process with the documented script.
fn ldfix() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new(root.join("scripts/build-static"))
            .output()
            .expect("run scripts/build-static");
        assert!(
            out.status.success(),
            "scripts/build-static failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn world() -> &'static World {
    World::get().expect("the test world (see crates/ldfix-testworld)")
}

/// A scratch directory inside the world's state directory, bound into the sandbox at the same
/// path, with a persistent HOME (so the library index cache is reused between runs).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(name: &str) -> Work {
        let dir = tempfile::Builder::new()
            .prefix(&format!("run-{name}-"))
            .tempdir_in(world().state_dir())
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Work { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn sandbox(&self, lib64: &Lib64) -> Sandbox<'static> {
        world()
            .sandbox()
            .lib64(lib64.clone())
            .home(self.path().join("home"))
            .ro_bind(ldfix().parent().unwrap())
            .bind(self.path())
            .cwd(self.path())
    }
}

fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// Compiles with gcc; the program names the FHS loader, as every foreign binary does.
fn gcc(out: &Path, args: &[&OsStr]) {
    let status = Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(out)
        .args(args)
        .status()
        .expect("gcc (apt-get install -y gcc libc6-dev zlib1g-dev libcrypt-dev)");
    assert!(status.success(), "gcc {args:?} failed");
}

fn fhs_program(out: &Path, source: &str, libs: &[&str]) {
    let src = c_source(source);
    let mut args: Vec<&OsStr> = vec![
        src.as_os_str(),
        OsStr::new("-Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2"),
    ];
    args.extend(libs.iter().map(OsStr::new));
    gcc(out, &args);
}

/// Every file under `dir` (symlinks not followed): content hash, mode, mtime, or link target.
fn snapshot(dir: &Path) -> Snapshot {
    let mut map = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            if meta.is_dir() {
                stack.push(path.clone());
            } else if meta.is_symlink() {
                std::fs::read_link(&path).unwrap().hash(&mut hasher);
            } else {
                std::fs::read(&path).unwrap().hash(&mut hasher);
            }
            map.insert(
                path,
                (
                    hasher.finish(),
                    meta.mode(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                ),
            );
        }
    }
    map
}

type Snapshot = BTreeMap<PathBuf, (u64, u32, i64, i64)>;

/// Fails naming the files that differ (not the whole listing).
fn assert_unchanged(before: &Snapshot, after: &Snapshot) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .collect();
    assert!(
        changed.is_empty(),
        "files changed, appeared or vanished: {changed:#?}"
    );
}

fn run(sandbox: &Sandbox<'_>, argv: &[&OsStr]) -> RunOutput {
    sandbox.run(argv).unwrap()
}

/// Runs `argv` as a shell would (`exec` from `/bin/sh`): a program whose loader is missing
/// then fails with 127, as users see it.
fn without_ldfix(sandbox: &Sandbox<'_>, argv: &[&OsStr]) -> RunOutput {
    let mut full: Vec<&OsStr> = vec![
        OsStr::new("/bin/sh"),
        OsStr::new("-c"),
        OsStr::new("exec \"$0\" \"$@\""),
    ];
    full.extend_from_slice(argv);
    run(sandbox, &full)
}

fn ldfix_run(sandbox: &Sandbox<'_>, extra: &[&OsStr]) -> RunOutput {
    let mut argv: Vec<&OsStr> = vec![ldfix().as_os_str(), OsStr::new("run")];
    argv.extend_from_slice(extra);
    run(sandbox, &argv)
}

#[test]
fn fhs_fixtures_run_unmodified() {
    let work = Work::new("fixtures");
    let fixtures = Fixtures::build(&work.path().join("fx")).unwrap();
    let before = snapshot(fixtures.dir());
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        for fixture in Fixture::ALL {
            let program = fixtures.path(fixture);
            let direct = without_ldfix(&sb, &[program.as_os_str()]);
            assert_eq!(
                direct.status, 127,
                "{lib64:?} {fixture:?} without ldfix: {direct}"
            );
            let out = ldfix_run(&sb, &[OsStr::new("--"), program.as_os_str()]);
            assert!(
                out.success() && out.stdout.starts_with(fixture.expected_stdout_prefix()),
                "{lib64:?} {fixture:?}: {out}"
            );
        }
    }
    assert_unchanged(&before, &snapshot(fixtures.dir()));
}

#[test]
fn print_shows_the_loader_command_line_without_glibc_dirs() {
    let w = world();
    let work = Work::new("print");
    let fixtures = Fixtures::build(&work.path().join("fx")).unwrap();
    let program = fixtures.path(Fixture::NeedsStdcxx);
    let sb = work.sandbox(&Lib64::StubLd);
    let out = ldfix_run(
        &sb,
        &[
            OsStr::new("--print"),
            OsStr::new("--"),
            program.as_os_str(),
            OsStr::new("two words"),
        ],
    );
    assert!(out.success(), "{out}");
    let words: Vec<&str> = out.stdout.trim_end().split(' ').collect();
    let loader = std::fs::canonicalize(w.loader()).unwrap();
    assert_eq!(
        words.first().copied(),
        Some(loader.to_str().unwrap()),
        "{out}"
    );
    assert_eq!(
        words.get(1..3),
        Some(&["--argv0", program.to_str().unwrap()][..])
    );
    assert_eq!(words.get(3).copied(), Some("--library-path"), "{out}");
    let dirs: Vec<&str> = words.get(4).unwrap().split(':').collect();
    let gcc_lib = std::fs::canonicalize(w.gcc_lib().join("lib")).unwrap();
    assert_eq!(dirs, [gcc_lib.to_str().unwrap()], "{out}");
    let glibc = std::fs::canonicalize(w.glibc()).unwrap();
    assert!(!out.stdout.contains(&format!("{}/lib:", glibc.display())));
    assert_eq!(words.get(5).copied(), Some(program.to_str().unwrap()));
    assert_eq!(words.get(6..), Some(&["'two", "words'"][..]), "{out}");

    // The user's own LD_LIBRARY_PATH goes first, exactly as given (an empty element included).
    let out = ldfix_run(
        &sb.clone().var("LD_LIBRARY_PATH", "/mine/a::/mine/b"),
        &[OsStr::new("--print"), OsStr::new("--"), program.as_os_str()],
    );
    let expected = format!("--library-path /mine/a::/mine/b:{} ", gcc_lib.display());
    assert!(out.success() && out.stdout.contains(&expected), "{out}");
}

/// A CPython prefix copied from Debian: an FHS program with its standard library and extension
/// modules (`_ssl`, `_sqlite3`, `_ctypes` in `lib-dynload`, covered without `--for`).
fn foreign_cpython(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    let python = dir.join("bin/python3.11");
    let copy = |from: &str, to: &Path| {
        let status = Command::new("cp")
            .args(["-a", from])
            .arg(to)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cp -a {from} (apt-get install -y python3.11)"
        );
    };
    copy("/usr/bin/python3.11", &python);
    copy("/usr/lib/python3.11", &dir.join("lib"));
    python
}

const CPYTHON_CHECK: &str = "import ssl, sqlite3, ctypes, zlib, sys\n\
    con = sqlite3.connect(':memory:')\n\
    assert con.execute('select 6 * 7').fetchone() == (42,)\n\
    assert ctypes.sizeof(ctypes.c_void_p) == 8\n\
    ssl.create_default_context()\n\
    print('cpython ok', sys.prefix, sys.executable)";

#[test]
fn foreign_cpython_prefix_runs_unmodified() {
    let work = Work::new("cpython");
    let prefix = work.path().join("cpython");
    let python = foreign_cpython(&prefix);
    let script = work.path().join("script.py");
    std::fs::write(
        &script,
        format!("#!{}\nimport ssl\nprint('script ok')\n", python.display()),
    )
    .unwrap();
    let env_script = work.path().join("env-script.py");
    std::fs::write(
        &env_script,
        "#!/usr/bin/env python3.11\nimport sqlite3, sys\nprint('env script ok', sys.argv[1])\n",
    )
    .unwrap();
    for s in [&script, &env_script] {
        std::fs::set_permissions(s, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let before = snapshot(work.path());
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        let direct = without_ldfix(
            &sb,
            &[python.as_os_str(), OsStr::new("-c"), OsStr::new("pass")],
        );
        assert_eq!(direct.status, 127, "{lib64:?} without ldfix: {direct}");
        let out = ldfix_run(
            &sb,
            &[
                OsStr::new("--"),
                python.as_os_str(),
                OsStr::new("-c"),
                OsStr::new(CPYTHON_CHECK),
            ],
        );
        let expected = format!("cpython ok {} {}", prefix.display(), python.display());
        assert!(
            out.success() && out.stdout.trim() == expected,
            "{lib64:?}: {out}"
        );

        // A script whose interpreter is the foreign Python is followed to it.
        let out = ldfix_run(&sb, &[OsStr::new("--"), script.as_os_str()]);
        assert!(
            out.success() && out.stdout == "script ok\n",
            "{lib64:?}: {out}"
        );
        // And through `#!/usr/bin/env python3.11`, found in PATH.
        let path = format!(
            "{}:/run/current-system/sw/bin",
            prefix.join("bin").display()
        );
        let out = ldfix_run(
            &sb.clone().var("PATH", &path),
            &[OsStr::new("--"), env_script.as_os_str(), OsStr::new("arg")],
        );
        assert!(
            out.success() && out.stdout == "env script ok arg\n",
            "{lib64:?}: {out}"
        );
    }
    // The sandbox's HOME holds ldfix's index cache; everything else must be untouched.
    let after = snapshot(work.path());
    let outside_home = |m: &BTreeMap<PathBuf, (u64, u32, i64, i64)>| {
        m.iter()
            .filter(|(p, _)| !p.starts_with(work.path().join("home")))
            .map(|(p, v)| (p.clone(), *v))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        outside_home(&before),
        outside_home(&after),
        "a file changed"
    );
}

const VENV_CHECK: &str = "import sys\n\
    order = sys.argv[1].split(',')\n\
    def numpy_():\n    import numpy, numpy.linalg\n    a = numpy.array([[2.0, 1.0], [1.0, 3.0]])\n    assert abs(numpy.linalg.det(a) - 5.0) < 1e-9\n    numpy.linalg.inv(a)\n\
    def pillow():\n    from PIL import Image, ImageFont\n    Image.new('RGB', (8, 8), (255, 0, 0)).save('/tmp/ldfix-run.png')\n    ImageFont.load_default()\n    assert Image.open('/tmp/ldfix-run.png').size == (8, 8)\n\
    def cv2_():\n    import cv2, numpy\n    ok, buf = cv2.imencode('.png', numpy.zeros((4, 4, 3), numpy.uint8))\n    assert ok and bytes(buf[:4]) == b'\\x89PNG'\n\
    def pyodbc_():\n    import pyodbc\n    assert isinstance(pyodbc.drivers(), list)\n\
    for name in order:\n    {'numpy': numpy_, 'pillow': pillow, 'cv2': cv2_, 'pyodbc': pyodbc_}[name]()\n\
    print('venv ok', sys.prefix)";

#[test]
fn venv_of_manylinux_wheels_runs_unmodified() {
    let w = world();
    let work = Work::new("venv");
    let venv = w
        .venv(
            &work.path().join(".venv"),
            &["numpy", "pillow", "opencv-python-headless", "pyodbc"],
        )
        .unwrap();
    let before = snapshot(&venv);
    let python = Path::new(".venv/bin/python");
    for lib64 in &VARIANTS {
        // Python itself would write `__pycache__` directories into site-packages.
        let sb = work.sandbox(lib64).var("PYTHONDONTWRITEBYTECODE", "1");
        let direct = without_ldfix(
            &sb,
            &[
                python.as_os_str(),
                OsStr::new("-c"),
                OsStr::new("import pyodbc"),
            ],
        );
        assert!(
            !direct.success() && direct.stderr.contains("libodbc.so.2"),
            "{lib64:?} without ldfix: {direct}"
        );
        for order in ["numpy,pillow,cv2,pyodbc", "pyodbc,cv2,pillow,numpy"] {
            let out = ldfix_run(
                &sb,
                &[
                    OsStr::new("--"),
                    python.as_os_str(),
                    OsStr::new("-c"),
                    OsStr::new(VENV_CHECK),
                    OsStr::new(order),
                ],
            );
            assert!(
                out.success() && out.stdout.trim() == format!("venv ok {}", venv.display()),
                "{lib64:?} {order}: {out}"
            );
            // The wheels' bundled libraries load through their extension modules' RPATH: none
            // of them may be reported missing.
            assert!(!out.stderr.contains("warning"), "{lib64:?} {order}: {out}");
        }
    }
    assert_unchanged(&before, &snapshot(&venv));
}

/// The names `ldfix` reads (crates/ldfix/src/env_vars.rs), read from the source so that a new
/// one is covered without editing this test.
fn names_ldfix_reads() -> Vec<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/env_vars.rs"))
            .unwrap();
    let names: Vec<String> = text
        .lines()
        .filter(|l| l.contains("const ") && l.contains(": &str = \""))
        .filter_map(|l| l.split('"').nth(1).map(str::to_owned))
        .collect();
    assert!(names.len() >= 8, "env_vars.rs changed shape: {names:?}");
    names
}

/// Sentinels around every name ldfix reads and every LD_LIBRARY_PATH-like name, with values
/// that a careless rewrite would damage (the `NIX_PATH` → `PATH=nixpkgxpkgs=` bug of nix-ld 1.2).
fn sentinel_environment(home: &str, ld_library_path: Option<&str>) -> Vec<Vec<u8>> {
    let mut names = names_ldfix_reads();
    names.extend(
        [
            "NIX_LD",
            "NIX_LD_x86_64_linux",
            "NIX_PATH",
            "LD_LIBRARY_PATH_",
            "XLD_LIBRARY_PATH",
            "LD_LIBRARY_PATHS",
        ]
        .map(str::to_owned),
    );
    if ld_library_path.is_some() {
        names.push("LD_LIBRARY_PATH".into());
    }
    let mut env: Vec<Vec<u8>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        env.push(format!("SENTINEL_{i}_BEFORE=<{name}> x=y:z").into_bytes());
        let value: Vec<u8> = match name.as_str() {
            "PATH" => b"/run/current-system/sw/bin".to_vec(),
            "HOME" => home.as_bytes().to_vec(),
            "LD_LIBRARY_PATH" => ld_library_path.unwrap_or_default().as_bytes().to_vec(),
            // The cache must stay usable; everything else gets odd but harmless bytes.
            "LDFIX_CACHE_DIR" | "XDG_CACHE_HOME" | "NIX_STORE_DIR" => continue,
            "NIX_PATH" => b"nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos:nixos-config=/etc/nixos/configuration.nix".to_vec(),
            _ => {
                let mut v = format!("value of {name} =:; ").into_bytes();
                v.extend_from_slice(b"\xff\xfe\x01 end");
                v
            }
        };
        let mut entry = name.clone().into_bytes();
        entry.push(b'=');
        entry.extend(value);
        env.push(entry);
        env.push(format!("SENTINEL_{i}_AFTER=</{name}>").into_bytes());
    }
    env
}

fn read_env(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn show_env(env: &[Vec<u8>]) -> String {
    env.iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn environment_reaches_the_program_and_its_children_byte_for_byte() {
    let work = Work::new("env");
    let parent = work.path().join("envparent");
    fhs_program(&parent, "envparent.c", &["-lz"]);
    let child = work.path().join("envchild");
    let src = c_source("envchild.c");
    gcc(&child, &[src.as_os_str(), OsStr::new("-static")]);
    for lib64 in &VARIANTS {
        for user_llp in [None, Some("/nonexistent/a::/nonexistent/b")] {
            let expected = sentinel_environment(sandbox_home(), user_llp);
            let out_dir = work.path().join("out");
            let _ = std::fs::remove_dir_all(&out_dir);
            std::fs::create_dir_all(&out_dir).unwrap();
            // `env -i NAME=VALUE… CMD`: exactly these variables, in this order.
            let mut argv: Vec<OsString> = vec!["/usr/bin/env".into(), "-i".into()];
            argv.extend(expected.iter().map(|e| OsString::from_vec(e.clone())));
            argv.extend([
                ldfix().as_os_str().to_owned(),
                "run".into(),
                "--".into(),
                parent.clone().into_os_string(),
                out_dir.clone().into_os_string(),
                child.clone().into_os_string(),
            ]);
            let argv: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
            let out = run(&work.sandbox(lib64), &argv);
            assert!(out.success(), "{lib64:?} {user_llp:?}: {out}");
            assert!(out.stdout.starts_with("parent ok"), "{out}");
            let seen_by_parent = read_env(&out_dir.join("parent.env"));
            let seen_by_child = read_env(&out_dir.join("child.env"));
            assert_eq!(
                seen_by_parent,
                expected,
                "{lib64:?} {user_llp:?}: the program's environment differs:\n{}\n--- expected\n{}",
                show_env(&seen_by_parent),
                show_env(&expected)
            );
            assert_eq!(
                seen_by_child, expected,
                "{lib64:?} {user_llp:?}: the child's environment differs"
            );
            if user_llp.is_none() {
                assert!(!seen_by_child
                    .iter()
                    .any(|e| e.starts_with(b"LD_LIBRARY_PATH=")));
            }
        }
    }
}

fn sandbox_home() -> &'static str {
    ldfix_testworld::sandbox::HOME
}

#[test]
fn exit_statuses_are_env1s_before_the_exec_and_the_programs_after() {
    let work = Work::new("status");
    let probe = work.path().join("probe");
    fhs_program(&probe, "probe.c", &["-lz", "-ldl"]);
    let not_exec = work.path().join("not-executable");
    std::fs::copy(&probe, &not_exec).unwrap();
    std::fs::set_permissions(&not_exec, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A program needing a library nothing on the system provides (the SONAME is a real
    // nixpkgs one, so the error names the attribute to install).
    let hidden = tempfile::tempdir().unwrap();
    let fake = hidden.path().join("libyaml-0.so.2");
    let fake_src = c_source("fakelib.c");
    gcc(
        &fake,
        &[
            fake_src.as_os_str(),
            OsStr::new("-shared"),
            OsStr::new("-fPIC"),
            OsStr::new("-Wl,-soname,libyaml-0.so.2"),
        ],
    );
    let needs_fake = work.path().join("needs-fake");
    let link_dir = format!("-L{}", hidden.path().display());
    fhs_program(
        &needs_fake,
        "needsfake.c",
        &[link_dir.as_str(), "-l:libyaml-0.so.2"],
    );

    let broken_elf = work.path().join("broken-elf");
    std::fs::write(&broken_elf, b"\x7fELF\x02\x01\x01 truncated").unwrap();
    std::fs::set_permissions(&broken_elf, std::fs::Permissions::from_mode(0o755)).unwrap();
    let foreign = work.path().join("libc-aarch64");
    std::fs::copy("/usr/aarch64-linux-gnu/lib/libc.so.6", &foreign)
        .expect("aarch64's libc.so.6 (apt-get install -y libc6-arm64-cross)");
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        let status = |args: &[&OsStr]| ldfix_run(&sb, args);
        let out = status(&[
            OsStr::new("--"),
            probe.as_os_str(),
            OsStr::new("exit"),
            OsStr::new("42"),
        ]);
        assert_eq!(out.status, 42, "{out}");
        assert_eq!(
            out.stdout,
            format!("argv0={} zlib=1.2.13\n", probe.display()),
            "{out}"
        );
        let out = status(&[OsStr::new("--"), OsStr::new("/nonexistent/program")]);
        assert_eq!(out.status, 127, "{out}");
        let out = status(&[OsStr::new("--"), OsStr::new("no-such-command-anywhere")]);
        assert!(
            out.status == 127 && out.stderr.contains("command not found"),
            "{out}"
        );
        let out = status(&[OsStr::new("--"), not_exec.as_os_str()]);
        assert_eq!(out.status, 126, "{out}");
        let out = status(&[OsStr::new("--"), work.path().as_os_str()]);
        assert_eq!(out.status, 126, "{out}");
        // An executable ELF file that cannot be read as one: cannot execute.
        let out = status(&[broken_elf.as_os_str()]);
        assert!(
            out.status == 126 && out.stderr.contains("cannot read the program"),
            "{out}"
        );
        // An aarch64 program: no loader for it on this machine is "not found".
        let out = status(&[foreign.as_os_str()]);
        assert!(
            out.status == 127
                && out
                    .stderr
                    .contains("no dynamic loader ld-linux-aarch64.so.1"),
            "{out}"
        );
        let out = status(&[]);
        assert_eq!(out.status, 125, "{out}");
        let out = status(&[
            OsStr::new("--no-such-flag"),
            OsStr::new("--"),
            probe.as_os_str(),
        ]);
        assert_eq!(out.status, 125, "{out}");
        let out = status(&[OsStr::new("--"), needs_fake.as_os_str()]);
        assert!(
            out.status == 127
                && out.stderr.contains("libyaml-0.so.2")
                && out.stderr.contains("nixpkgs#libyaml"),
            "{lib64:?}: {out}"
        );
    }
}

#[test]
fn the_program_has_ldfix_pid_and_gets_its_signals() {
    let work = Work::new("signal");
    let probe = work.path().join("probe");
    fhs_program(&probe, "probe.c", &["-lz", "-ldl"]);
    let ldfix = ldfix().display().to_string();
    let probe = probe.display().to_string();
    // `exec` keeps the shell's pid for ldfix; ldfix's exec keeps it for the program.
    let line = format!(
        "(echo shell=$BASHPID; exec {ldfix} run -- {probe} pause) > out & pid=$!\n\
         for i in $(seq 100); do grep -q '^pid=' out && break; sleep 0.05; done\n\
         kill -TERM $pid; wait $pid; echo status=$?; cat out"
    );
    for lib64 in &VARIANTS {
        let out = work.sandbox(lib64).sh(&line).unwrap();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("status=143"),
            "{lib64:?}: {out}"
        );
        let shell = lines.get(1).and_then(|l| l.strip_prefix("shell=")).unwrap();
        let program = lines.get(2).and_then(|l| l.strip_prefix("pid=")).unwrap();
        assert_eq!(shell, program, "{lib64:?}: {out}");
    }
}

#[test]
fn for_dir_covers_modules_the_program_dlopens() {
    let work = Work::new("for");
    let probe = work.path().join("probe");
    fhs_program(&probe, "probe.c", &["-lz", "-ldl"]);
    let modules = work.path().join("modules");
    std::fs::create_dir_all(&modules).unwrap();
    let module = modules.join("module.so");
    let src = c_source("module.c");
    gcc(
        &module,
        &[
            src.as_os_str(),
            OsStr::new("-shared"),
            OsStr::new("-fPIC"),
            OsStr::new("-lcrypt"),
        ],
    );
    let before = snapshot(&modules);
    let args = |with_for: bool| {
        let mut v: Vec<OsString> = Vec::new();
        if with_for {
            v.extend(["--for".into(), modules.clone().into_os_string()]);
        }
        v.extend([
            "--".into(),
            probe.clone().into_os_string(),
            "dlopen".into(),
            module.clone().into_os_string(),
            "module_check".into(),
        ]);
        v
    };
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        let without = args(false);
        let without: Vec<&OsStr> = without.iter().map(OsString::as_os_str).collect();
        let out = ldfix_run(&sb, &without);
        assert!(
            out.status == 3 && out.stderr.contains("libcrypt.so.1"),
            "{lib64:?} without --for: {out}"
        );
        let with = args(true);
        let with: Vec<&OsStr> = with.iter().map(OsString::as_os_str).collect();
        let out = ldfix_run(&sb, &with);
        assert!(
            out.success() && out.stdout == "module says 42\n",
            "{lib64:?}: {out}"
        );
    }
    assert_unchanged(&before, &snapshot(&modules));
}

#[test]
fn limits_of_an_explicit_loader_are_warned_about() {
    let w = world();
    let work = Work::new("limits");
    let probe = work.path().join("probe");
    fhs_program(&probe, "probe.c", &["-lz", "-ldl"]);
    let setuid = work.path().join("probe-setuid");
    std::fs::copy(&probe, &setuid).unwrap();
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let loader = std::fs::canonicalize(w.loader()).unwrap();
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        // The program names /proc/self/exe: ldfix warns, and it does name the loader.
        let out = ldfix_run(
            &sb,
            &[OsStr::new("--"), probe.as_os_str(), OsStr::new("self")],
        );
        assert!(out.success(), "{out}");
        assert_eq!(out.stdout, format!("exe={}\n", loader.display()), "{out}");
        assert!(
            out.stderr.contains("refers to /proc/self/exe"),
            "no warning: {out}"
        );
        let out = ldfix_run(
            &sb,
            &[
                OsStr::new("--"),
                setuid.as_os_str(),
                OsStr::new("exit"),
                OsStr::new("0"),
            ],
        );
        assert!(
            out.success() && out.stderr.contains("setuid or setgid"),
            "{out}"
        );
    }
}

/// Debian 13's `hello` needs `GLIBC_2.38`, newer than the system glibc 2.36: `run` takes the
/// newest fitting loader from the index (the store's glibc 2.41, in no profile). Also: no `--`
/// is needed before the program, and its own options reach it.
#[test]
fn program_needing_a_newer_glibc_runs_with_the_newer_store_loader() {
    let w = world();
    let work = Work::new("glibc-next");
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let program = app.join("hello");
    std::fs::copy(w.debian13().unwrap().hello(), &program).unwrap();
    let before = snapshot(&app);
    // Several worlds may share the store: the loader is any store glibc 2.41's.
    let next_suffix = "-glibc-2.41/lib/ld-linux-x86-64.so.2 --argv0 ";
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        let direct = without_ldfix(&sb, &[program.as_os_str()]);
        assert_eq!(direct.status, 127, "{lib64:?} without ldfix: {direct}");
        let printed = ldfix_run(&sb, &[OsStr::new("--print"), program.as_os_str()]);
        assert!(
            printed.success()
                && printed.stdout.starts_with("/nix/store/")
                && printed.stdout.contains(next_suffix),
            "{lib64:?}: {printed}"
        );
        let out = ldfix_run(
            &sb,
            &[
                program.as_os_str(),
                OsStr::new("-g"),
                OsStr::new("newer glibc ok"),
            ],
        );
        assert!(
            out.success() && out.stdout == "newer glibc ok\n",
            "{lib64:?}: {out}"
        );
    }
    assert_unchanged(&before, &snapshot(&app));
}

/// An i386 program that needs `libz.so.1`: `run` takes the store's i386 glibc loader (nixpkgs'
/// `pkgsi686Linux.glibc`) and the i386 zlib, never the x86_64 ones, and changes no file.
#[test]
fn i386_program_runs_with_the_i386_loader_and_providers() {
    let w = world();
    let work = Work::new("i386");
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let src = app.join("zver.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <zlib.h>\nint main(void){printf(\"zlib %s %d-bit ok\\n\", zlibVersion(), (int)(8 * sizeof(void *)));return 0;}\n",
    )
    .unwrap();
    let program = app.join("zver32");
    gcc(
        &program,
        &[src.as_os_str(), OsStr::new("-m32"), OsStr::new("-lz")],
    );
    let before = snapshot(&app);
    // Several worlds may share the store: match the packages, not the hashes; the run below
    // proves the architecture (an x86_64 libz cannot load into an i386 process).
    let x86_64_zlib = std::fs::canonicalize(w.zlib())
        .unwrap()
        .display()
        .to_string();
    for lib64 in &VARIANTS {
        let sb = work.sandbox(lib64);
        let direct = without_ldfix(&sb, &[program.as_os_str()]);
        assert_eq!(direct.status, 127, "{lib64:?} without ldfix: {direct}");
        let printed = ldfix_run(&sb, &[OsStr::new("--print"), program.as_os_str()]);
        let words: Vec<&str> = printed.stdout.split(' ').collect();
        assert!(
            printed.success()
                && words.first().is_some_and(|l| l.starts_with("/nix/store/")
                    && l.ends_with("-glibc-2.36/lib/ld-linux.so.2"))
                && words.get(3) == Some(&"--library-path")
                && words.get(4).is_some_and(|d| d.contains("-glibc-2.36/lib:")
                    && d.ends_with("-zlib-1.2.13/lib")
                    && !d.contains(&x86_64_zlib)),
            "{lib64:?}: {printed}"
        );
        let out = ldfix_run(&sb, &[program.as_os_str()]);
        assert!(
            out.success() && out.stdout == "zlib 1.2.13 32-bit ok\n",
            "{lib64:?}: {out}"
        );
    }
    assert_unchanged(&before, &snapshot(&app));
}
