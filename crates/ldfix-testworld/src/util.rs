//! Small helpers: running commands with errors that say what ran and what it printed.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `cmd`, failing with its command line, status and stderr unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs `cmd` and returns its stdout as text, trimmed.
pub(crate) fn run_text(cmd: &mut Command) -> Result<String> {
    let out = run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `which`: the first executable named `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    which_in(name, &std::env::var_os("PATH")?)
}

/// The first file named `name` in the directories of `path` (a PATH value).
pub(crate) fn which_in(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// True when `path` starts with the ELF magic.
pub(crate) fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

/// `readelf -d` facts of one file: NEEDED names, whether it has PT_INTERP, its RPATH and RUNPATH.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DynInfo {
    /// DT_NEEDED entries in order.
    pub needed: Vec<String>,
    /// DT_RPATH, when present.
    pub rpath: Option<String>,
    /// DT_RUNPATH, when present.
    pub runpath: Option<String>,
    /// PT_INTERP, when present.
    pub interp: Option<String>,
}

/// Reads [`DynInfo`] with binutils' `readelf` (an independent reference, not ldfix's own reader).
pub fn readelf(path: &Path) -> Result<DynInfo> {
    let text = run_text(Command::new("readelf").args(["-dlW"]).arg(path))?;
    let mut info = DynInfo::default();
    for line in text.lines() {
        let bracket = || {
            line.split_once('[')
                .and_then(|(_, r)| r.split_once(']'))
                .map(|(v, _)| v.to_owned())
        };
        if line.contains("(NEEDED)") {
            info.needed.extend(bracket());
        } else if line.contains("(RPATH)") {
            info.rpath = bracket();
        } else if line.contains("(RUNPATH)") {
            info.runpath = bracket();
        } else if line.contains("[Requesting program interpreter:") {
            info.interp = line
                .split_once("interpreter: ")
                .map(|(_, r)| r.trim_end_matches(']').to_owned());
        }
    }
    Ok(info)
}
