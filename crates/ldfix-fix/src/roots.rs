//! GC roots: every store path a fixed file refers to is kept alive by an indirect root whose
//! link lives in the tree (`TREE/.ldfix/gcroots/NAME -> /nix/store/NAME`), registered the way
//! `nix-store --add-root --indirect` does: through the machine's Nix CLI when there is one, else
//! by writing the `gcroots/auto` symlink ourselves when that directory is writable, else with a
//! warning that the tree is not GC-safe. Moving or deleting the tree makes the root dangle, and
//! Nix drops it at the next collection, as for any indirect root.

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ldfix_nix::{NixCli, StorePath};

use crate::error::FixError;
use crate::journal::STATE_DIR;

const ROOTS_DIR: &str = "gcroots";
/// The tree's absolute path when its roots were registered: a moved or copied tree has roots
/// that point to the old place.
const TREE_FILE: &str = "tree";

/// The GC roots of one tree.
pub(crate) struct Roots<'a> {
    tree: PathBuf,
    nix: Option<&'a NixCli>,
    auto_dir: &'a Path,
}

/// How a root was registered.
pub(crate) enum Registered {
    /// With `nix-store --add-root`.
    NixCli,
    /// By writing `gcroots/auto/NAME` directly.
    AutoLink,
    /// Only the link in the tree: the store path is not protected.
    Unprotected(String),
}

impl<'a> Roots<'a> {
    pub(crate) fn new(tree: &Path, nix: Option<&'a NixCli>, auto_dir: &'a Path) -> Self {
        Self {
            tree: tree.to_owned(),
            nix,
            auto_dir,
        }
    }

    fn dir(&self) -> PathBuf {
        self.tree.join(STATE_DIR).join(ROOTS_DIR)
    }

    fn link(&self, path: &StorePath) -> PathBuf {
        self.dir().join(path.path().file_name().unwrap_or_default())
    }

    /// Our name in `gcroots/auto` for a link (Nix names it by a hash of the link's path too).
    fn auto_name(&self, link: &Path) -> PathBuf {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in link.as_os_str().as_bytes() {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.auto_dir.join(format!("ldfix-{h:016x}"))
    }

    /// Store paths with a root link in the tree.
    pub(crate) fn rooted(&self) -> BTreeSet<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return BTreeSet::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .collect()
    }

    /// Problems `--check` reports: roots registered for another place (a moved or copied tree),
    /// root links whose store path is gone, and `needed` store paths without a root.
    pub(crate) fn problems(&self, needed: &BTreeSet<PathBuf>) -> Vec<String> {
        let mut out = Vec::new();
        let rooted = self.rooted();
        if !rooted.is_empty() {
            let recorded = std::fs::read(self.tree.join(STATE_DIR).join(TREE_FILE)).ok();
            if recorded.as_deref() != Some(self.tree.as_os_str().as_bytes()) {
                out.push(format!(
                    "the GC roots of {} were registered for {} (moved or copied tree): run `ldfix fix` to register them here",
                    self.tree.display(),
                    recorded.map_or_else(|| "another place".into(), |r| String::from_utf8_lossy(&r).into_owned())
                ));
            }
        }
        for path in &rooted {
            if !path.exists() {
                out.push(format!(
                    "GC root for {} points to a store path that no longer exists",
                    path.display()
                ));
            }
        }
        for path in needed {
            if !rooted.contains(path) {
                out.push(format!(
                    "{} is used by files of the tree but has no GC root",
                    path.display()
                ));
            }
        }
        out
    }

    /// Whether the roots were registered for this very tree.
    pub(crate) fn registered_here(&self) -> bool {
        std::fs::read(self.tree.join(STATE_DIR).join(TREE_FILE))
            .ok()
            .as_deref()
            == Some(self.tree.as_os_str().as_bytes())
    }

    /// Creates the roots directory and records where the tree is; [`Roots::ensure`] does it
    /// too, so calling this first lets several `ensure` calls run in parallel.
    pub(crate) fn prepare(&self) -> Result<(), FixError> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|source| FixError::Write {
            path: dir.clone(),
            source,
        })?;
        let tree_file = self.tree.join(STATE_DIR).join(TREE_FILE);
        if !self.registered_here() {
            std::fs::write(&tree_file, self.tree.as_os_str().as_bytes()).map_err(|source| {
                FixError::Write {
                    path: tree_file.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Roots `path`, then checks that it still exists (a collection may have run in between).
    pub(crate) fn ensure(&self, path: &StorePath) -> Result<Registered, FixError> {
        self.prepare()?;
        let link = self.link(path);
        let how = match self.nix.map(|nix| nix.add_indirect_root(&link, path)) {
            Some(Ok(())) => Registered::NixCli,
            nix_result => {
                replace_symlink(&link, path.path())?;
                let auto = self.auto_name(&link);
                match replace_symlink(&auto, &link) {
                    Ok(()) => Registered::AutoLink,
                    Err(e) => Registered::Unprotected(match nix_result {
                        Some(Err(nix_error)) => format!("{nix_error}; {e}"),
                        _ => e.to_string(),
                    }),
                }
            }
        };
        if !path.path().exists() {
            return Err(FixError::Read {
                path: path.path().to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the store path was garbage-collected before its GC root was registered",
                ),
            });
        }
        Ok(how)
    }

    /// Removes the roots of store paths not in `keep` (after `--update` re-pointed files).
    pub(crate) fn prune(&self, keep: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir()) else {
            return removed;
        };
        for entry in entries.filter_map(Result::ok) {
            let link = entry.path();
            let Ok(target) = std::fs::read_link(&link) else {
                continue;
            };
            if !keep.contains(&target) {
                let _ = std::fs::remove_file(self.auto_name(&link));
                if std::fs::remove_file(&link).is_ok() {
                    removed.push(target);
                }
            }
        }
        removed
    }

    /// Removes every root (undo).
    pub(crate) fn remove_all(&self) -> Vec<PathBuf> {
        let removed = self.prune(&BTreeSet::new());
        let _ = std::fs::remove_dir(self.dir());
        let _ = std::fs::remove_file(self.tree.join(STATE_DIR).join(TREE_FILE));
        removed
    }
}

/// Creates (or re-points) a symlink atomically.
fn replace_symlink(link: &Path, target: &Path) -> Result<(), FixError> {
    if std::fs::read_link(link).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let werr = |source| FixError::Write {
        path: link.to_owned(),
        source,
    };
    let tmp = link.with_file_name(format!(
        ".{}.ldfix-tmp-{}",
        link.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(werr)?;
    std::fs::rename(&tmp, link).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        werr(e)
    })
}
