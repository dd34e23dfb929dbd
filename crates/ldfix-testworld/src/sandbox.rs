//! Runs a command in a NixOS-like root with bubblewrap.
//!
//! Inside: `/nix/store` read-only, `/nix/var/nix` writable (as the daemon makes it on NixOS),
//! `/run/current-system/sw` → the system profile, `/bin/sh` (bash, as NixOS's `environment.binsh`)
//! and `/usr/bin/env` (busybox) only,
//! no `/lib`, no `/usr/lib`, no `/etc/ld.so.cache`; `/lib64/ld-linux-x86-64.so.2` is absent or
//! NixOS's stub-ld; a writable HOME with `~/.nix-profile`. Networking is unshared.

use crate::World;
use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What sits at `/lib64/ld-linux-x86-64.so.2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lib64 {
    /// Nothing: no `/lib64` at all (NixOS before 24.05, or `environment.stub-ld.enable = false`).
    Absent,
    /// NixOS's stub-ld (the default since 24.05).
    StubLd,
    /// A given file (e.g. a loader shim under test), linked at that path.
    File(PathBuf),
}

/// The environment the command starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    /// A NixOS login: PATH=/run/current-system/sw/bin, HOME, USER, no LD_LIBRARY_PATH.
    Login,
    /// `env -i`: nothing at all (the command runs under `/usr/bin/env -i`).
    Empty,
}

/// Exit status and output of a sandboxed command.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Exit code; 128 + signal number when killed by a signal (as a shell reports it).
    pub status: i32,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl RunOutput {
    /// True when the command exited 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

impl std::fmt::Display for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A configured sandbox run; see the module documentation.
#[derive(Debug, Clone)]
pub struct Sandbox<'w> {
    world: &'w World,
    lib64: Lib64,
    env: Env,
    nix_cli: bool,
    binds: Vec<(PathBuf, PathBuf, bool)>,
    vars: Vec<(OsString, OsString)>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
}

/// HOME inside the sandbox (the login user is root, uid 0, as the tests run as root).
pub const HOME: &str = "/root";

impl<'w> Sandbox<'w> {
    pub(crate) fn new(world: &'w World) -> Self {
        Sandbox {
            world,
            lib64: Lib64::StubLd,
            env: Env::Login,
            nix_cli: true,
            binds: Vec::new(),
            vars: Vec::new(),
            home: None,
            cwd: None,
        }
    }

    /// What to put at `/lib64/ld-linux-x86-64.so.2` (default: stub-ld).
    pub fn lib64(mut self, lib64: Lib64) -> Self {
        self.lib64 = lib64;
        self
    }

    /// The starting environment (default: a NixOS login).
    pub fn env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// Whether the system profile has the Nix CLI (default: yes).
    pub fn nix_cli(mut self, yes: bool) -> Self {
        self.nix_cli = yes;
        self
    }

    /// Binds a host directory or file read-write at the same path.
    pub fn bind(mut self, path: impl AsRef<Path>) -> Self {
        let p = path.as_ref().to_owned();
        self.binds.push((p.clone(), p, true));
        self
    }

    /// Binds a host directory or file read-only at the same path.
    pub fn ro_bind(mut self, path: impl AsRef<Path>) -> Self {
        let p = path.as_ref().to_owned();
        self.binds.push((p.clone(), p, false));
        self
    }

    /// Binds `host` at `inside`, read-write.
    pub fn bind_to(mut self, host: impl AsRef<Path>, inside: impl AsRef<Path>) -> Self {
        self.binds
            .push((host.as_ref().to_owned(), inside.as_ref().to_owned(), true));
        self
    }

    /// Sets an environment variable (after the base environment).
    pub fn var(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.vars
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Uses a host directory as HOME (default: a fresh temporary directory per run).
    pub fn home(mut self, dir: impl AsRef<Path>) -> Self {
        self.home = Some(dir.as_ref().to_owned());
        self
    }

    /// Working directory inside (default: HOME).
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The full bubblewrap command line for `argv` (for humans and `world shell`).
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S], home: &Path) -> Result<Command> {
        let w = self.world;
        let etc = w.state_dir().join("etc");
        fs::create_dir_all(&etc)?;
        write_if_changed(&etc.join("passwd"), "root:x:0:0:System administrator:/root:/run/current-system/sw/bin/bash\nnobody:x:65534:65534:Unprivileged account:/var/empty:/run/current-system/sw/bin/nologin\n")?;
        write_if_changed(&etc.join("group"), "root:x:0:\nnogroup:x:65534:\n")?;
        // Single-user Nix, as the host's: no build users (the sandbox maps only uid/gid 0).
        write_if_changed(
            &etc.join("nix.conf"),
            "build-users-group =\nsandbox = false\nsubstituters =\n",
        )?;
        let link = home.join(".nix-profile");
        if fs::symlink_metadata(&link).is_err() {
            symlink(w.user_profile_link(), &link)
                .with_context(|| format!("creating {}", link.display()))?;
        }
        let profile = if self.nix_cli {
            w.system_profile()
        } else {
            w.system_profile_no_nix()
        };
        let mut c = Command::new("bwrap");
        c.args(["--unshare-all", "--die-with-parent", "--tmpfs", "/"]);
        c.args(["--dir", "/nix/store"])
            .arg("--ro-bind")
            .arg("/nix/store")
            .arg("/nix/store");
        c.args(["--dir", "/nix/var/nix"])
            .arg("--bind")
            .arg("/nix/var/nix")
            .arg("/nix/var/nix");
        c.args([
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--dir",
            "/run/current-system",
        ]);
        c.arg("--symlink")
            .arg(profile)
            .arg("/run/current-system/sw");
        c.args(["--dir", "/bin"])
            .arg("--symlink")
            .arg(w.bash().join("bin/sh"))
            .arg("/bin/sh");
        c.args(["--dir", "/usr/bin"])
            .arg("--symlink")
            .arg(w.busybox().join("bin/env"))
            .arg("/usr/bin/env");
        c.args(["--dir", "/etc", "--dir", "/etc/nix"]);
        c.arg("--ro-bind")
            .arg(etc.join("nix.conf"))
            .arg("/etc/nix/nix.conf");
        c.arg("--ro-bind")
            .arg(etc.join("passwd"))
            .arg("/etc/passwd");
        c.arg("--ro-bind").arg(etc.join("group")).arg("/etc/group");
        match &self.lib64 {
            Lib64::Absent => {}
            Lib64::StubLd => {
                c.args(["--dir", "/lib64"])
                    .arg("--symlink")
                    .arg(w.stub_ld())
                    .arg("/lib64/ld-linux-x86-64.so.2");
            }
            Lib64::File(f) => {
                c.args(["--dir", "/lib64"])
                    .arg("--ro-bind")
                    .arg(f)
                    .arg("/lib64/ld-linux-x86-64.so.2");
            }
        }
        c.arg("--bind").arg(home).arg(HOME);
        for (host, inside, rw) in &self.binds {
            c.arg(if *rw { "--bind" } else { "--ro-bind" })
                .arg(host)
                .arg(inside);
        }
        c.arg("--clearenv");
        if self.env == Env::Login {
            c.args(["--setenv", "PATH", "/run/current-system/sw/bin"]);
            c.args([
                "--setenv", "HOME", HOME, "--setenv", "USER", "root", "--setenv", "LOGNAME", "root",
            ]);
            c.args(["--setenv", "SHELL", "/run/current-system/sw/bin/bash"]);
            c.args([
                "--setenv",
                "NIX_PROFILES",
                "/run/current-system/sw /root/.nix-profile",
            ]);
        }
        for (k, v) in &self.vars {
            c.arg("--setenv").arg(k).arg(v);
        }
        c.arg("--chdir")
            .arg(self.cwd.as_deref().unwrap_or(Path::new(HOME)));
        c.arg("--");
        if self.env == Env::Empty {
            // bwrap itself sets PWD; `env -i` is what users type to get an empty environment.
            c.args(["/usr/bin/env", "-i"]);
        }
        c.args(argv);
        Ok(c)
    }

    /// Runs `argv` inside and returns its status and output.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<RunOutput> {
        let tmp;
        let home = match &self.home {
            Some(h) => h.clone(),
            None => {
                tmp = tempfile::Builder::new()
                    .prefix("home-")
                    .tempdir_in(self.world.state_dir())?;
                tmp.path().to_owned()
            }
        };
        let mut cmd = self.command(argv, &home)?;
        let out = cmd
            .output()
            .context("cannot start bwrap (apt-get install -y bubblewrap)")?;
        let status = out
            .status
            .code()
            .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Ok(RunOutput {
            status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs a shell command line (`/bin/sh -c LINE`) inside.
    pub fn sh(&self, line: &str) -> Result<RunOutput> {
        self.run(&["/bin/sh", "-c", line])
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        fs::write(&tmp, text)?;
        fs::rename(&tmp, path)?;
    }
    Ok(())
}
