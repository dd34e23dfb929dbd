//! Fixtures: FHS programs compiled with gcc at test time, and virtualenvs of real manylinux wheels.

use crate::util::{readelf, run, run_text, DynInfo};
use crate::World;
use anyhow::{bail, ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The FHS loader every fixture names as its interpreter.
pub const FHS_INTERP: &str = "/lib64/ld-linux-x86-64.so.2";
/// The (absent) directory the rpath fixtures name.
pub const FIXTURE_RPATH: &str = "/opt/ldfix-fixture/lib";

/// C source of an FDO `.note.dlopen` note (the ELF dlopen metadata of systemd's `ELF_NOTE_DLOPEN`
/// macro) carrying `json`, written as the contents of a C string literal (quotes escaped). GCC
/// gives sections named `.note*` the SHT_NOTE type, and ld puts them into a PT_NOTE segment.
pub fn dlopen_note_c(json: &str) -> String {
    format!(
        r#"#define LDFIX_DLOPEN_JSON "{json}"
__attribute__((used, section(".note.dlopen"), aligned(4)))
static const struct {{
    unsigned namesz, descsz, type;
    char name[4];
    char desc[(sizeof(LDFIX_DLOPEN_JSON) + 3) & ~3];
}} ldfix_dlopen_note = {{ 4, (sizeof(LDFIX_DLOPEN_JSON) + 3) & ~3, 0x407c0c0a, "FDO", LDFIX_DLOPEN_JSON }};
"#
    )
}

/// One FHS fixture program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    /// Needs only libc.so.6; prints `hello ok`.
    Hello,
    /// Needs libz.so.1; prints `zlib <version> ok`.
    NeedsZ,
    /// Needs libcrypt.so.1 (libxcrypt); prints `crypt ok`.
    NeedsCrypt,
    /// C++: needs libstdc++.so.6 and libgcc_s.so.1; prints `stdc++ ldfix ok`.
    NeedsStdcxx,
    /// Like [`Fixture::NeedsZ`] with DT_RUNPATH = [`FIXTURE_RPATH`] (`-Wl,-rpath`).
    NeedsZRunpath,
    /// Like [`Fixture::NeedsZ`] with DT_RPATH = [`FIXTURE_RPATH`] (`-Wl,--disable-new-dtags`).
    NeedsZRpath,
}

impl Fixture {
    /// Every fixture.
    pub const ALL: [Fixture; 6] = [
        Fixture::Hello,
        Fixture::NeedsZ,
        Fixture::NeedsCrypt,
        Fixture::NeedsStdcxx,
        Fixture::NeedsZRunpath,
        Fixture::NeedsZRpath,
    ];

    /// File name of the built program.
    pub fn name(self) -> &'static str {
        match self {
            Fixture::Hello => "hello",
            Fixture::NeedsZ => "needs-z",
            Fixture::NeedsCrypt => "needs-crypt",
            Fixture::NeedsStdcxx => "needs-stdcxx",
            Fixture::NeedsZRunpath => "needs-z-runpath",
            Fixture::NeedsZRpath => "needs-z-rpath",
        }
    }

    /// What a successful run prints on stdout (a prefix; the zlib version follows `zlib `).
    pub fn expected_stdout_prefix(self) -> &'static str {
        match self {
            Fixture::Hello => "hello ok",
            Fixture::NeedsZ | Fixture::NeedsZRunpath | Fixture::NeedsZRpath => "zlib ",
            Fixture::NeedsCrypt => "crypt ok",
            Fixture::NeedsStdcxx => "stdc++ ldfix ok",
        }
    }

    /// The DT_NEEDED entries gcc must have produced, in order.
    pub fn expected_needed(self) -> &'static [&'static str] {
        match self {
            Fixture::Hello => &["libc.so.6"],
            Fixture::NeedsZ | Fixture::NeedsZRunpath | Fixture::NeedsZRpath => {
                &["libz.so.1", "libc.so.6"]
            }
            Fixture::NeedsCrypt => &["libcrypt.so.1", "libc.so.6"],
            Fixture::NeedsStdcxx => &["libstdc++.so.6", "libgcc_s.so.1", "libc.so.6"],
        }
    }

    fn compile(self, c_dir: &Path, out: &Path) -> Command {
        let (cc, src, libs): (&str, &str, &[&str]) = match self {
            Fixture::Hello => ("gcc", "hello.c", &[]),
            Fixture::NeedsZ | Fixture::NeedsZRunpath | Fixture::NeedsZRpath => {
                ("gcc", "needs-z.c", &["-lz"])
            }
            Fixture::NeedsCrypt => ("gcc", "needs-crypt.c", &["-lcrypt"]),
            Fixture::NeedsStdcxx => ("g++", "needs-stdcxx.cc", &[]),
        };
        let mut c = Command::new(cc);
        c.args(["-O1", "-o"]).arg(out).arg(c_dir.join(src));
        c.arg(format!("-Wl,--dynamic-linker={FHS_INTERP}"));
        match self {
            Fixture::NeedsZRunpath => {
                c.arg(format!("-Wl,-rpath,{FIXTURE_RPATH}"));
            }
            Fixture::NeedsZRpath => {
                c.arg(format!("-Wl,--disable-new-dtags,-rpath,{FIXTURE_RPATH}"));
            }
            _ => {}
        }
        c.args(libs);
        c
    }
}

/// A directory of freshly compiled FHS fixtures.
#[derive(Debug, Clone)]
pub struct Fixtures {
    dir: PathBuf,
}

impl Fixtures {
    /// Compiles every [`Fixture`] into `dir` and checks each one's NEEDED entries, interpreter and
    /// RPATH/RUNPATH tag with `readelf`, failing if gcc produced anything else.
    pub fn build(dir: &Path) -> Result<Fixtures> {
        fs::create_dir_all(dir)?;
        let c_dir = crate::c_dir();
        for f in Fixture::ALL {
            let out = dir.join(f.name());
            run(&mut f.compile(&c_dir, &out)).with_context(|| {
                format!(
                    "compiling fixture {} (needs gcc, g++, zlib1g-dev, libcrypt-dev)",
                    f.name()
                )
            })?;
            let info = readelf(&out)?;
            check_fixture(f, &info).with_context(|| format!("fixture {}", out.display()))?;
        }
        Ok(Fixtures {
            dir: dir.to_owned(),
        })
    }

    /// The fixtures of this process, compiled once (at test time) into
    /// `<state>/fixtures/<pid>`; directories of processes that are gone are removed first.
    pub fn shared(world: &World) -> Result<&'static Fixtures> {
        static SHARED: std::sync::Mutex<Option<&'static Fixtures>> = std::sync::Mutex::new(None);
        let mut guard = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(f) = *guard {
            return Ok(f);
        }
        let root = world.state_dir().join("fixtures");
        fs::create_dir_all(&root)?;
        for e in fs::read_dir(&root)?.flatten() {
            let name = e.file_name();
            let alive = name
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !alive {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let f: &'static Fixtures = Box::leak(Box::new(Fixtures::build(&dir)?));
        *guard = Some(f);
        Ok(f)
    }

    /// Path of a built fixture.
    pub fn path(&self, f: Fixture) -> PathBuf {
        self.dir.join(f.name())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Checks a fixture's dynamic section against what it is meant to be.
pub fn check_fixture(f: Fixture, info: &DynInfo) -> Result<()> {
    ensure!(
        info.interp.as_deref() == Some(FHS_INTERP),
        "interpreter is {:?}",
        info.interp
    );
    ensure!(
        info.needed == f.expected_needed(),
        "NEEDED is {:?}, expected {:?}",
        info.needed,
        f.expected_needed()
    );
    let (rpath, runpath) = match f {
        Fixture::NeedsZRunpath => (None, Some(FIXTURE_RPATH)),
        Fixture::NeedsZRpath => (Some(FIXTURE_RPATH), None),
        _ => (None, None),
    };
    ensure!(
        info.rpath.as_deref() == rpath,
        "DT_RPATH is {:?}, expected {rpath:?}",
        info.rpath
    );
    ensure!(
        info.runpath.as_deref() == runpath,
        "DT_RUNPATH is {:?}, expected {runpath:?}",
        info.runpath
    );
    Ok(())
}

/// Pinned manylinux wheels (cp311, x86_64) a venv can be made of: requirement → what it needs
/// from the system that the wheel does not bundle.
pub const WHEELS: &[&str] = &[
    "numpy==1.26.4",
    "pillow==10.3.0",
    "opencv-python-headless==4.9.0.80",
    "pyodbc==5.1.0",
];

/// A host Python whose pip has `--python` (pip >= 22.3), to download wheels and install them into
/// venvs of the store's Python (which has no pip of its own).
fn host_pip_python() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("LDFIX_TESTWORLD_PIP_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    candidates.extend(crate::util::which("python3"));
    candidates.push(PathBuf::from("/usr/bin/python3"));
    if let Ok(rd) = fs::read_dir("/root/.pyenv/versions") {
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path().join("bin/python3")))
            .collect();
        v.sort();
        v.reverse();
        candidates.extend(v);
    }
    for py in candidates {
        let Ok(out) = Command::new(&py).args(["-m", "pip", "--version"]).output() else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let ver: Vec<u32> = text
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .split('.')
            .map_while(|p| p.parse().ok())
            .collect();
        if out.status.success() && ver.as_slice() >= [22, 3].as_slice() {
            return Ok(py);
        }
    }
    bail!("no Python with pip >= 22.3 found to install wheels: run `apt-get install -y python3-pip` or set LDFIX_TESTWORLD_PIP_PYTHON")
}

/// Downloads the pinned wheels once into `<state>/wheels` (under its own lock).
pub fn wheels_dir(world: &World) -> Result<PathBuf> {
    let dir = world.state_dir().join("wheels");
    fs::create_dir_all(&dir)?;
    let lock = fs::File::create(world.state_dir().join("wheels.lock"))?;
    lock.lock()?;
    let done = dir.join(".complete");
    let want = WHEELS.join("\n");
    if fs::read_to_string(&done).ok().as_deref() == Some(want.as_str()) {
        return Ok(dir);
    }
    let py = host_pip_python()?;
    let mut c = Command::new(&py);
    c.args([
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
    ]);
    c.args([
        "--platform",
        "manylinux2014_x86_64",
        "--platform",
        "manylinux_2_28_x86_64",
    ]);
    c.args([
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--abi",
        "abi3",
        "-d",
    ]);
    c.arg(&dir).args(WHEELS);
    run(&mut c)
        .context("downloading the fixture wheels (needs network once; cached afterwards)")?;
    fs::write(&done, want)?;
    Ok(dir)
}

/// Creates a venv at `dir` with the store's Python and installs `reqs` (each one of [`WHEELS`],
/// by name or pinned) from the wheel cache, offline.
pub fn venv(world: &World, dir: &Path, reqs: &[&str]) -> Result<PathBuf> {
    let wheels = wheels_dir(world)?;
    run(Command::new(world.python_bin())
        .args(["-m", "venv", "--without-pip"])
        .arg(dir))
    .context("creating a venv with the store's Python")?;
    let python = dir.join("bin/python");
    let pins: Vec<&str> = reqs
        .iter()
        .map(|r| {
            let name = r.split("==").next().unwrap_or(r);
            WHEELS
                .iter()
                .copied()
                .find(|w| w.split("==").next() == Some(name))
                .with_context(|| format!("{r} is not one of the pinned wheels {WHEELS:?}"))
        })
        .collect::<Result<_>>()?;
    if !pins.is_empty() {
        let py = host_pip_python()?;
        let mut c = Command::new(py);
        c.args(["-m", "pip", "--python"]).arg(&python);
        c.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--find-links",
        ]);
        c.arg(&wheels).args(&pins);
        run(&mut c).context("installing wheels into the venv")?;
    }
    let _ = run_text(Command::new(&python).args(["-c", "import sys"]))?;
    Ok(dir.to_owned())
}
