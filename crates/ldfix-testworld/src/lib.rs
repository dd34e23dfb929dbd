//! Dev-only: builds the NixOS-like test world (a real Nix store, profiles, a bubblewrap sandbox,
//! fixtures) that ldfix's tests run in.
//!
//! [`World::get`] builds the world once per machine (cached in [`state_dir`], guarded by a file
//! lock because tests run in parallel threads and processes) and returns it; its accessors give the
//! store paths, profiles, the sandbox runner and the fixtures. `docs/testworld.md` explains the
//! design.

mod debian13;
pub mod fixtures;
pub mod loader;
pub mod references;
pub mod sandbox;
mod store;
mod util;

pub use debian13::Debian13;
pub use fixtures::{Fixture, Fixtures};
pub use sandbox::{Env, Lib64, RunOutput, Sandbox};
pub use store::STUB_LD_MESSAGE;
pub use util::{readelf, DynInfo};

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// Bumped whenever the way the world is built changes, so old caches and store paths are rebuilt.
const WORLD_VERSION: &str = "ldfix-testworld-8";

/// Where the world keeps its state: `$LDFIX_TESTWORLD_DIR`, else `/var/tmp/ldfix-testworld/v1`.
pub fn state_dir() -> PathBuf {
    std::env::var_os("LDFIX_TESTWORLD_DIR").map_or_else(
        || PathBuf::from("/var/tmp/ldfix-testworld/v1"),
        PathBuf::from,
    )
}

/// Directory of the C sources of stub-ld and the fixtures.
pub fn c_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("c")
}

/// The built world: output paths of every package, by attribute name.
#[derive(Debug)]
pub struct World {
    state: PathBuf,
    outs: BTreeMap<String, PathBuf>,
    /// Debian 13's packages (the full world only).
    debian13: Option<Debian13>,
}

static WORLD: Mutex<Option<&'static World>> = Mutex::new(None);

/// Which packages a world has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageSet {
    /// Everything (what [`World::get`] builds).
    Full,
    /// Only [`CORE`]: enough to test building, caching and rebuilding quickly.
    Core,
}

/// The packages of [`PackageSet::Core`].
pub const CORE: &[&str] = &["busybox", "stubLd", "libgcc", "glibc", "zlib"];

/// A prerequisite: a command and the Debian package that provides it.
const TOOLS: &[(&str, &str)] = &[
    ("nix-build", "nix-bin"),
    ("nix-store", "nix-bin"),
    ("nix-instantiate", "nix-bin"),
    ("bwrap", "bubblewrap"),
    ("patchelf", "patchelf"),
    ("gcc", "gcc"),
    ("g++", "g++"),
    ("readelf", "binutils"),
    ("ldd", "libc-bin"),
    ("dpkg-query", "dpkg"),
];

/// Fails with the install command when something the world needs is missing. Never skips.
pub fn check_prerequisites() -> Result<()> {
    check_prerequisites_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// [`check_prerequisites`] with the commands looked up in `path` (a PATH value).
pub fn check_prerequisites_in(path: &std::ffi::OsStr) -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|r| r.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    ensure!(
        euid == "0",
        "the ldfix test world needs root (it writes /nix/store and /nix/var/nix with Debian's single-user nix); run the tests as root, e.g. `sudo -E cargo test`"
    );
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| util::which_in(t, path).is_none())
        .map(|(_, p)| *p)
        .collect();
    if !Path::new("/bin/busybox").is_file() {
        bail!("the ldfix test world needs the static /bin/busybox: run `scripts/install-deps` (or `apt-get install -y busybox-static`)");
    }
    if !missing.is_empty() {
        let mut pkgs = missing.clone();
        pkgs.dedup();
        bail!(
            "the ldfix test world needs {}: run `scripts/install-deps` (or `apt-get install -y {}`)",
            pkgs.join(", "),
            pkgs.join(" ")
        );
    }
    Ok(())
}

/// The cache key: world version plus the Debian versions of everything packaged.
fn world_key() -> Result<String> {
    let mut debs: Vec<&str> = vec![
        "libc6",
        "libgcc-s1",
        "libstdc++6",
        "zlib1g",
        "libcrypt1",
        "libssl3",
        "libffi8",
    ];
    debs.extend([
        "libsqlite3-0",
        "libexpat1",
        "libbz2-1.0",
        "liblzma5",
        "libodbc2",
        "libltdl7",
        "python3.11-minimal",
    ]);
    debs.extend([
        "libpython3.11-stdlib",
        "busybox-static",
        "nix-bin",
        "bash",
        "libtinfo6",
        "libc6-i386",
        "lib32z1",
        "musl",
    ]);
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}=${Version}\n"])
        .args(&debs)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "Debian packages missing for the test world ({}): run `scripts/install-deps`",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(format!(
        "{WORLD_VERSION} {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    ))
}

fn parse_stamp(text: &str) -> Option<(String, BTreeMap<String, PathBuf>)> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let key = v.get("key")?.as_str()?.to_owned();
    let outs = v
        .get("outs")?
        .as_object()?
        .iter()
        .map(|(k, p)| Some((k.clone(), PathBuf::from(p.as_str()?))))
        .collect::<Option<_>>()?;
    Some((key, outs))
}

impl World {
    /// The world, built (or checked) once per process; concurrent processes wait on a file lock.
    pub fn get() -> Result<&'static World> {
        let mut guard = WORLD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(w) = *guard {
            return Ok(w);
        }
        let world: &'static World = Box::leak(Box::new(Self::open_or_build(&state_dir())?));
        *guard = Some(world);
        Ok(world)
    }

    /// Opens the world in `state`, building it first when it is missing, stale or half-built.
    pub fn open_or_build(state: &Path) -> Result<World> {
        Self::open_or_build_set(state, PackageSet::Full)
    }

    /// [`World::open_or_build`] with a chosen package set (tests of the build logic itself use
    /// [`PackageSet::Core`], which builds in a fraction of the time).
    pub fn open_or_build_set(state: &Path, set: PackageSet) -> Result<World> {
        check_prerequisites()?;
        fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
        let lock_path = state.join("lock");
        let lock = fs::File::create(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        let debian13 = match set {
            PackageSet::Full => Some(Debian13::get(state)?),
            PackageSet::Core => None,
        };
        let mut key = format!("{} {set:?}", world_key()?);
        for v in debian13.iter().flat_map(Debian13::versions) {
            key.push_str(&format!(" debian13:{v}"));
        }
        if let Some(world) = Self::open_valid(state, &key, debian13.as_ref())? {
            return Ok(world);
        }
        let start = Instant::now();
        eprintln!(
            "ldfix-testworld: building the test world in {} (once; cached afterwards)",
            state.display()
        );
        let world = Self::build(state, &key, set, debian13)?;
        eprintln!(
            "ldfix-testworld: built in {:.1}s",
            start.elapsed().as_secs_f64()
        );
        Ok(world)
    }

    /// The world in `state` if its stamp matches `key` and every store path is still valid.
    fn open_valid(state: &Path, key: &str, debian13: Option<&Debian13>) -> Result<Option<World>> {
        let Ok(text) = fs::read_to_string(state.join("world.json")) else {
            return Ok(None);
        };
        let Some((stamp_key, outs)) = parse_stamp(&text) else {
            return Ok(None);
        };
        if stamp_key != key {
            return Ok(None);
        }
        let valid = Command::new("nix-store")
            .arg("--check-validity")
            .args(outs.values())
            .output()?;
        if !valid.status.success() {
            eprintln!("ldfix-testworld: store paths of the cached world are gone; rebuilding");
            return Ok(None);
        }
        Ok(Some(World {
            state: state.to_owned(),
            outs,
            debian13: debian13.cloned(),
        }))
    }

    fn build(
        state: &Path,
        key: &str,
        set: PackageSet,
        debian13: Option<Debian13>,
    ) -> Result<World> {
        let stamp = state.join("world.json");
        let _ = fs::remove_file(&stamp);
        let stage = state.join("stage");
        if stage.exists() {
            fs::remove_dir_all(&stage).with_context(|| format!("removing {}", stage.display()))?;
        }
        fs::create_dir_all(&stage)?;
        let mut pkgs = store::packages(debian13.as_ref())?;
        if set == PackageSet::Core {
            pkgs.retain(|p| CORE.contains(&p.attr));
        }
        let expr_file = state.join("world.nix");
        fs::write(&expr_file, store::nix_expr(&pkgs, &stage, key)?)?;
        let outs = store::eval_out_paths(&expr_file)?;
        let t = Instant::now();
        store::stage_all(&pkgs, &outs, &stage, &c_dir())?;
        eprintln!(
            "ldfix-testworld: staged in {:.1}s",
            t.elapsed().as_secs_f64()
        );
        let nix_build_start = Instant::now();
        util::run(
            Command::new("nix-build")
                .arg(&expr_file)
                .arg("--no-out-link")
                .arg("--quiet")
                // Offline: never ask a binary cache (each try costs seconds of retries).
                .args(["--option", "substituters", ""])
                // Builders read the stage from the state directory, which may be private
                // (mode 0700 temp dirs); build as the calling root, like a single-user install.
                .args(["--option", "build-users-group", ""]),
        )
        .context("nix-build of the test world")?;
        eprintln!(
            "ldfix-testworld: nix-build in {:.1}s",
            nix_build_start.elapsed().as_secs_f64()
        );
        let world = World {
            state: state.to_owned(),
            outs,
            debian13,
        };
        world.make_roots()?;
        let json = serde_json::json!({
            "key": key,
            "outs": world.outs.iter().map(|(k, v)| (k.clone(), v.display().to_string())).collect::<BTreeMap<_, _>>(),
        });
        // Written last: its presence means the world is complete.
        let tmp = state.join("world.json.tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(serde_json::to_string_pretty(&json)?.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &stamp)?;
        Ok(world)
    }

    /// GC roots for every package, and NixOS-like profile generation links.
    fn make_roots(&self) -> Result<()> {
        let roots = self.gc_roots_dir();
        if roots.exists() {
            fs::remove_dir_all(&roots)?;
        }
        fs::create_dir_all(&roots)?;
        for (attr, out) in &self.outs {
            symlink(out, roots.join(attr))?;
        }
        let profiles = self.profiles_dir();
        if profiles.exists() {
            fs::remove_dir_all(&profiles)?;
        }
        fs::create_dir_all(&profiles)?;
        for (name, attr) in [
            ("system", "systemPath"),
            ("system-nonix", "systemPathNoNix"),
            ("user", "userProfile"),
        ] {
            let Some(out) = self.outs.get(attr) else {
                continue; // not in this package set
            };
            symlink(out, profiles.join(format!("{name}-1-link")))?;
            symlink(format!("{name}-1-link"), profiles.join(name))?;
        }
        Ok(())
    }

    /// Removes this world: its GC roots, profiles and state directory, then deletes its store
    /// paths from the store (paths something else still keeps alive are left).
    pub fn destroy(self) -> Result<()> {
        for dir in [self.gc_roots_dir(), self.profiles_dir(), self.state.clone()] {
            if dir.exists() {
                fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        // One call: Nix deletes the set in reference order (profiles before what they link to).
        let _ = Command::new("nix-store")
            .arg("--delete")
            .args(self.outs.values())
            .output();
        Ok(())
    }

    /// A name for this world's roots and profiles that differs between state directories.
    fn tag(&self) -> String {
        let s = self.state.display().to_string();
        let mut h: u32 = 2166136261;
        for b in s.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(16777619);
        }
        format!("ldfix-testworld-{h:08x}")
    }

    /// `/nix/var/nix/gcroots/<tag>`: one direct GC root per package.
    pub fn gc_roots_dir(&self) -> PathBuf {
        Path::new("/nix/var/nix/gcroots").join(self.tag())
    }

    /// `/nix/var/nix/profiles/<tag>`: `system`, `system-nonix` and `user` profiles (generation
    /// links, which Nix's garbage collector treats as roots, as on NixOS).
    pub fn profiles_dir(&self) -> PathBuf {
        Path::new("/nix/var/nix/profiles").join(self.tag())
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Output path of a package by attribute: `busybox`, `stubLd`, `libgcc`, `glibc`, `gccLib`,
    /// `zlib`, `ncurses`, `bash`, `libxcrypt`, `openssl`, `libffi`, `sqlite`, `expat`, `bzip2`, `xz`, `unixODBC`,
    /// `python3`, `nix`, `systemPath`, `systemPathNoNix`, `userProfile`.
    pub fn pkg(&self, attr: &str) -> Result<&Path> {
        self.outs
            .get(attr)
            .map(PathBuf::as_path)
            .with_context(|| format!("the test world has no package {attr:?}"))
    }

    /// Every package: attribute → output path.
    pub fn packages(&self) -> &BTreeMap<String, PathBuf> {
        &self.outs
    }

    fn must(&self, attr: &str) -> &Path {
        self.outs
            .get(attr)
            .map_or(Path::new("/nonexistent"), PathBuf::as_path)
    }

    /// `…-glibc-2.36`.
    pub fn glibc(&self) -> &Path {
        self.must("glibc")
    }
    /// The store loader, `…-glibc-2.36/lib/ld-linux-x86-64.so.2` (behaves like nixpkgs').
    pub fn loader(&self) -> PathBuf {
        self.glibc().join("lib/ld-linux-x86-64.so.2")
    }
    /// `…-glibc-2.41`: Debian 13's glibc as a second store glibc, in no profile (only in the full
    /// world).
    pub fn glibc_next(&self) -> &Path {
        self.must("glibcNext")
    }
    /// `…-glibc-2.36` for i386 (Debian's libc6-i386, like nixpkgs' `pkgsi686Linux.glibc`): its
    /// `lib/ld-linux.so.2` is Debian's, not rewritten (see `store.rs`, `Kind::Libs32`).
    pub fn glibc32(&self) -> &Path {
        self.must("glibc32")
    }
    /// `…-musl-1.2.3`: musl's `lib/libc.so` and `lib/ld-musl-x86_64.so.1`, in no profile.
    pub fn musl(&self) -> &Path {
        self.must("musl")
    }
    /// `…-zlib-1.2.13` for i386 (lib32z1).
    pub fn zlib32(&self) -> &Path {
        self.must("zlib32")
    }
    /// Debian 13's packages: the newer glibc's source and a program that needs it.
    pub fn debian13(&self) -> Result<&Debian13> {
        self.debian13
            .as_ref()
            .context("this test world was built without Debian 13's packages")
    }
    /// `…-gcc-12.2.0-libgcc` (libgcc_s.so.1).
    pub fn libgcc(&self) -> &Path {
        self.must("libgcc")
    }
    /// `…-gcc-12.2.0-lib` (libstdc++.so.6).
    pub fn gcc_lib(&self) -> &Path {
        self.must("gccLib")
    }
    /// `…-zlib-1.2.13`.
    pub fn zlib(&self) -> &Path {
        self.must("zlib")
    }
    /// `…-libxcrypt-4.4.33` (libcrypt.so.1; only in the store, not in the profiles).
    pub fn libxcrypt(&self) -> &Path {
        self.must("libxcrypt")
    }
    /// `…-unixODBC-2.3.11` (libodbc.so.2; only in the store, not in the profiles).
    pub fn unixodbc(&self) -> &Path {
        self.must("unixODBC")
    }
    /// `…-python3-3.11.2`, whose standard library works from the store.
    pub fn python(&self) -> &Path {
        self.must("python3")
    }
    /// `…-python3-3.11.2/bin/python3`.
    pub fn python_bin(&self) -> PathBuf {
        self.python().join("bin/python3")
    }
    /// `…-bash-5.2.15`: `/bin/sh` in the sandbox, as on NixOS.
    pub fn bash(&self) -> &Path {
        self.must("bash")
    }
    /// `…-busybox-1.35.0` (static).
    pub fn busybox(&self) -> &Path {
        self.must("busybox")
    }
    /// `…-nix-2.8.0`: Debian's nix CLI, patched into the store.
    pub fn nix_cli(&self) -> &Path {
        self.must("nix")
    }
    /// `…-stub-ld`: the static stub loader file itself.
    pub fn stub_ld(&self) -> &Path {
        self.must("stubLd")
    }
    /// The system profile store path (`/run/current-system/sw` in the sandbox), with the Nix CLI.
    pub fn system_profile(&self) -> &Path {
        self.must("systemPath")
    }
    /// The system profile without any Nix CLI.
    pub fn system_profile_no_nix(&self) -> &Path {
        self.must("systemPathNoNix")
    }
    /// The user profile store path (`~/.nix-profile` in the sandbox).
    pub fn user_profile(&self) -> &Path {
        self.must("userProfile")
    }
    /// `/nix/var/nix/profiles/<tag>/user`, the link `~/.nix-profile` points to in the sandbox.
    pub fn user_profile_link(&self) -> PathBuf {
        self.profiles_dir().join("user")
    }

    /// A sandbox runner with the default NixOS-like settings (login environment, stub-ld at
    /// `/lib64/ld-linux-x86-64.so.2`, Nix CLI in the system profile).
    pub fn sandbox(&self) -> Sandbox<'_> {
        Sandbox::new(self)
    }

    /// The FHS fixtures, compiled once per process (see [`Fixtures::shared`]).
    pub fn fixtures(&self) -> Result<&'static Fixtures> {
        Fixtures::shared(self)
    }

    /// Builds a virtualenv at `dir` with the store's Python and the given pinned manylinux wheels
    /// (see [`fixtures::WHEELS`]), downloading them once into the world cache.
    pub fn venv(&self, dir: &Path, wheels: &[&str]) -> Result<PathBuf> {
        fixtures::venv(self, dir, wheels)
    }
}
