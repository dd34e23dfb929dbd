//! The machine's Nix CLI: the only place in ldfix that spawns it.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::NixError;
use crate::store::{StoreDir, StorePath};

/// How many paths go into one `nix-store` invocation (keeps argv well under the kernel's limit).
const PATHS_PER_CALL: usize = 500;

/// `nix-store`, found in the caller's `PATH`.
#[derive(Debug, Clone)]
pub struct NixCli {
    nix_store: PathBuf,
    store: StoreDir,
}

impl NixCli {
    /// Finds `nix-store` in `path` (the caller's `PATH` value).
    pub fn find(path: Option<&OsStr>, store: StoreDir) -> Result<Self, NixError> {
        let program = "nix-store";
        let found = path
            .map(std::env::split_paths)
            .into_iter()
            .flatten()
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate));
        match found {
            Some(nix_store) => Ok(Self { nix_store, store }),
            None => Err(NixError::NoCli { program }),
        }
    }

    /// Uses this `nix-store` binary.
    pub fn with_program(nix_store: PathBuf, store: StoreDir) -> Self {
        Self { nix_store, store }
    }

    pub fn program(&self) -> &Path {
        &self.nix_store
    }

    /// Which of `paths` are valid (registered, fully built) store paths, in input order.
    pub fn check_validity(&self, paths: &[StorePath]) -> Result<Vec<bool>, NixError> {
        let mut invalid = std::collections::HashSet::new();
        for chunk in paths.chunks(PATHS_PER_CALL) {
            let mut args: Vec<OsString> = vec!["--check-validity".into(), "--print-invalid".into()];
            args.extend(chunk.iter().map(|p| p.path().as_os_str().to_owned()));
            for line in self.run(&args)? {
                invalid.insert(PathBuf::from(line));
            }
        }
        Ok(paths.iter().map(|p| !invalid.contains(p.path())).collect())
    }

    /// The direct references of a valid store path.
    pub fn references(&self, path: &StorePath) -> Result<Vec<StorePath>, NixError> {
        let args = [
            OsStr::new("--query"),
            OsStr::new("--references"),
            path.path().as_os_str(),
        ];
        Ok(self
            .run(&args)?
            .into_iter()
            .filter_map(|line| self.store.store_path_of(Path::new(&line)))
            .collect())
    }

    /// Registers `link` (a symlink that ldfix creates, pointing to `path`) as an indirect GC root,
    /// the way `nix-store --add-root` does.
    pub fn add_indirect_root(&self, link: &Path, path: &StorePath) -> Result<(), NixError> {
        let args = [
            OsStr::new("--add-root"),
            link.as_os_str(),
            OsStr::new("--indirect"),
            OsStr::new("--realise"),
            path.path().as_os_str(),
        ];
        self.run(&args).map(drop)
    }

    /// Runs `nix-store ARGS` and returns its stdout lines.
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Vec<OsString>, NixError> {
        let output = Command::new(&self.nix_store)
            .args(args)
            .output()
            .map_err(|source| NixError::Spawn {
                program: self.nix_store.clone(),
                source,
            })?;
        if !output.status.success() {
            let shown: Vec<_> = args
                .iter()
                .take(4)
                .map(|a| a.as_ref().to_string_lossy())
                .collect();
            return Err(NixError::Command {
                command: format!("{} {}", self.nix_store.display(), shown.join(" ")),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(output
            .stdout
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| OsStr::from_bytes(line).to_owned())
            .collect())
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
