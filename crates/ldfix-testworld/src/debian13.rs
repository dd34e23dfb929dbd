//! Files from Debian 13 (trixie): a newer glibc (2.41) for the store, and a real program that
//! needs it.
//!
//! The machine runs Debian 12 (glibc 2.36). Issue 7 asks for a program that needs a newer glibc
//! than the system's, and a second glibc in the store that provides it. Debian 13's `libc6` is
//! that glibc, and Debian 13's `hello` is that program: built with glibc 2.41's headers, it calls
//! `__isoc23_strtol`, versioned `GLIBC_2.38`.
//!
//! The packages are downloaded (not installed) with apt, using a private sources list and lists
//! directory, so the machine's own apt configuration is never touched. They are kept in the world's
//! state directory and reused; whatever version the archive serves on the first download is the one
//! the world keeps (its version is part of the world key).

use crate::util::run;
use anyhow::{ensure, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian 13 packages the world uses.
const PACKAGES: &[&str] = &["libc6", "hello"];

/// Downloaded and unpacked Debian 13 packages.
#[derive(Debug, Clone)]
pub struct Debian13 {
    dir: PathBuf,
    /// `name=version` of each package, for the world key.
    versions: Vec<String>,
}

impl Debian13 {
    /// The packages under `state/debian13`, downloading and unpacking them the first time.
    pub(crate) fn get(state: &Path) -> Result<Self> {
        let dir = state.join("debian13");
        let done = dir.join("versions");
        if let Ok(text) = fs::read_to_string(&done) {
            let versions: Vec<String> = text.lines().map(str::to_owned).collect();
            let unpacked = PACKAGES.iter().all(|p| dir.join("root").join(p).is_dir());
            if versions.len() == PACKAGES.len() && unpacked {
                return Ok(Self { dir, versions });
            }
        }
        fetch(&dir).with_context(|| {
            format!(
                "downloading Debian 13 packages {PACKAGES:?} into {} (the Debian archive must be reachable)",
                dir.display()
            )
        })
    }

    /// `name=version` of each package.
    pub(crate) fn versions(&self) -> &[String] {
        &self.versions
    }

    /// The unpacked root of one package (`usr/…` inside).
    pub(crate) fn root(&self, package: &str) -> PathBuf {
        self.dir.join("root").join(package)
    }

    /// Debian 13's `/usr/bin/hello`: an FHS program that needs `GLIBC_2.38`.
    pub fn hello(&self) -> PathBuf {
        self.root("hello").join("usr/bin/hello")
    }

    /// The Debian version of Debian 13's libc6, e.g. `2.41-12+deb13u5`.
    pub(crate) fn libc6_version(&self) -> Result<&str> {
        self.versions
            .iter()
            .find_map(|v| v.strip_prefix("libc6="))
            .context("no libc6 among the Debian 13 packages")
    }
}

fn fetch(dir: &Path) -> Result<Debian13> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let apt = dir.join("apt");
    for sub in ["lists/partial", "cache/archives/partial", "debs"] {
        fs::create_dir_all(apt.join(sub))?;
    }
    let sources = apt.join("sources.list");
    fs::write(
        &sources,
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} trixie main\n",
            debian_mirror()?
        ),
    )?;
    let opts = |cmd: &mut Command| {
        cmd.arg("-o")
            .arg(format!("Dir::Etc::SourceList={}", sources.display()))
            .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
            .arg("-o")
            .arg(format!("Dir::State::Lists={}", apt.join("lists").display()))
            .arg("-o")
            .arg(format!("Dir::Cache={}", apt.join("cache").display()))
            // Downloads into a root-owned directory: no privilege drop to the _apt user.
            .args(["-o", "APT::Sandbox::User=root", "-q"]);
    };
    let mut update = Command::new("apt-get");
    opts(&mut update);
    run(update.arg("update")).context("apt-get update with a Debian 13 sources list")?;
    let debs = apt.join("debs");
    let mut download = Command::new("apt-get");
    opts(&mut download);
    run(download
        .current_dir(&debs)
        .arg("download")
        .args(PACKAGES.iter().map(|p| format!("{p}:amd64/trixie"))))
    .context("apt-get download from Debian 13")?;
    let mut versions = Vec::new();
    for package in PACKAGES {
        let deb = fs::read_dir(&debs)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
            .with_context(|| format!("apt-get download left no {package}_*.deb"))?;
        let out = run(Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb)
            .arg("Version"))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        ensure!(!version.is_empty(), "{} has no version", deb.display());
        let root = dir.join("root").join(package);
        fs::create_dir_all(&root)?;
        run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
        versions.push(format!("{package}={version}"));
    }
    // The archive lists and downloaded .debs are not needed once unpacked.
    fs::remove_dir_all(&apt)?;
    fs::write(dir.join("versions"), versions.join("\n"))?;
    Ok(Debian13 {
        dir: dir.to_owned(),
        versions,
    })
}

/// The Debian archive this machine's apt uses (the first non-security source), so the download
/// goes where the machine's other packages come from.
fn debian_mirror() -> Result<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if let Some(uri) = mirror_in(&text) {
            return Ok(uri);
        }
    }
    anyhow::bail!("no Debian archive found in /etc/apt/sources.list or /etc/apt/sources.list.d")
}

/// The first non-security archive URI of one sources file, one-line or deb822 format.
fn mirror_in(text: &str) -> Option<String> {
    let usable = |uri: &str| uri.starts_with("http") && !uri.contains("security");
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("deb") => {
                // Options in brackets may hold spaces; the URI is the first word with a scheme.
                if let Some(uri) = words.find(|w| w.contains("://")).filter(|u| usable(u)) {
                    return Some(uri.trim_end_matches('/').to_owned());
                }
            }
            Some("URIs:") => {
                if let Some(uri) = words.find(|u| usable(u)) {
                    return Some(uri.trim_end_matches('/').to_owned());
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::mirror_in;

    #[test]
    fn mirror_from_both_source_formats() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n";
        assert_eq!(
            mirror_in(deb822).as_deref(),
            Some("http://mirror.example/debian")
        );
        let security_first =
            "URIs: http://mirror.example/debian-security/\nURIs: http://mirror.example/debian/\n";
        assert_eq!(
            mirror_in(security_first).as_deref(),
            Some("http://mirror.example/debian")
        );
        let one_line = "# comment\ndeb cdrom:[Debian]/ bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
        assert_eq!(
            mirror_in(one_line).as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror_in("deb-src http://x/debian bookworm main\n"), None);
    }
}
