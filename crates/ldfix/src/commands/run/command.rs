//! Finding what to run: `CMD` looked up in `PATH` as a shell does, and `#!` scripts followed to
//! the ELF interpreter that will really run.

use std::ffi::{OsStr, OsString};
use std::io::Read as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ldfix_elf::read::{parse_shebang, Shebang};

use super::Stop;

/// glibc's `execvp` searches this when PATH is unset (`confstr(_CS_PATH)`, posix/execvpe.c).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// Linux follows at most this many nested `#!` interpreters (fs/exec.c, `bprm->interp_data`
/// recursion limit of binfmt_script is 4 levels plus the final binary).
const MAX_SCRIPT_DEPTH: usize = 4;

/// The resolved command.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The file found for CMD, as found (not canonical): what a direct exec would run.
    pub(crate) found: PathBuf,
    /// argv[0] of a direct exec: the name the user typed.
    pub(crate) typed: OsString,
    /// The ELF file that will run: `found` itself, or the interpreter of a `#!` script.
    pub(crate) elf: PathBuf,
    /// argv[0] the ELF sees: the typed name, or the interpreter as the `#!` line names it.
    pub(crate) elf_argv0: OsString,
    /// Arguments the kernel inserts before the user's: each script's `#!` argument and path.
    pub(crate) lead: Vec<OsString>,
    /// Whether a `#!` line was followed.
    pub(crate) via_script: bool,
}

/// Whether a path names an executable regular file. Root may execute a file when any execute
/// bit is set; others need theirs, which the mode approximates (no `access(2)` without libc).
fn executable_file(path: &Path) -> Result<bool, std::io::Error> {
    let meta = std::fs::metadata(path)?;
    Ok(meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Looks `name` up as a shell does: a name with a slash is used as it is; otherwise each PATH
/// entry is tried in order (an empty entry is the current directory), and the first executable
/// regular file wins. A matching file that is not executable is remembered: if nothing else is
/// found, the answer is "permission denied" (126), as `execvp` reports EACCES.
pub(crate) fn find(name: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, Stop> {
    let display = name.to_string_lossy();
    if name.is_empty() {
        return Err(Stop::not_found("'': command not found".into()));
    }
    if name.as_bytes().contains(&b'/') {
        let path = PathBuf::from(name);
        return match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Stop::not_found(format!(
                "{display}: No such file or directory"
            ))),
            Err(e) => Err(Stop::cannot_start(format!("{display}: {e}"))),
            Ok(meta) if meta.is_dir() => {
                Err(Stop::cannot_start(format!("{display}: Is a directory")))
            }
            Ok(_) => match executable_file(&path) {
                Ok(true) => Ok(path),
                _ => Err(Stop::cannot_start(format!("{display}: Permission denied"))),
            },
        };
    }
    let search = path_var.map_or(DEFAULT_PATH, OsStrExt::as_bytes);
    let mut denied = None;
    for dir in search.split(|&b| b == b':') {
        let dir: &Path = if dir.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(dir))
        };
        let candidate = dir.join(name);
        match executable_file(&candidate) {
            Ok(true) => return Ok(with_slash(candidate)),
            Ok(false) if candidate.is_file() => denied = denied.or(Some(candidate)),
            _ => {}
        }
    }
    match denied {
        Some(path) => Err(Stop::cannot_start(format!(
            "{}: Permission denied",
            path.display()
        ))),
        None => Err(Stop::not_found(format!("{display}: command not found"))),
    }
}

/// `dir/name` from an empty PATH entry is `./name`: a path without a slash would be searched in
/// PATH again by `execvp`.
fn with_slash(path: PathBuf) -> PathBuf {
    if path.as_os_str().as_bytes().contains(&b'/') {
        path
    } else {
        Path::new(".").join(path)
    }
}

/// The first bytes of a file (enough for `#!` lines: the kernel reads 256).
fn head(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let mut buf = Vec::with_capacity(256);
    std::fs::File::open(path)?.take(256).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Resolves CMD and follows `#!` lines (linux fs/binfmt_script.c: the interpreter gets its
/// optional argument, then the script's path as it was executed, then the arguments). A
/// `#!/usr/bin/env NAME` line is followed to NAME in PATH, as env(1) would run it.
pub(crate) fn resolve(cmd: &OsStr, path_var: Option<&OsStr>) -> Result<Launch, Stop> {
    let found = find(cmd, path_var)?;
    let mut launch = Launch {
        found: found.clone(),
        typed: cmd.to_owned(),
        elf: found,
        elf_argv0: cmd.to_owned(),
        lead: Vec::new(),
        via_script: false,
    };
    for _ in 0..=MAX_SCRIPT_DEPTH {
        let bytes = head(&launch.elf)
            .map_err(|e| Stop::cannot_start(format!("{}: {e}", launch.elf.display())))?;
        if bytes.starts_with(b"\x7fELF") {
            return Ok(launch);
        }
        // No `#!`: execve fails with ENOEXEC, and execvp (so env(1) and shells) then runs the
        // file with /bin/sh (glibc posix/execvpe.c `maybe_script_execute`).
        let shebang = parse_shebang(&bytes).unwrap_or(Shebang {
            interpreter: b"/bin/sh".to_vec(),
            argument: None,
        });
        let script = launch.elf.clone().into_os_string();
        let mut lead = Vec::new();
        let interpreter = OsString::from_vec(shebang.interpreter.clone());
        let followed_env = match &shebang.argument {
            Some(arg)
                if is_env(&shebang.interpreter)
                    && !arg.starts_with(b"-")
                    && !arg.contains(&b'=') =>
            {
                // env(1) runs NAME with argv[0] = NAME, found in PATH.
                let name = OsString::from_vec(arg.clone());
                let path = find(&name, path_var)?;
                launch.elf = path;
                launch.elf_argv0 = name;
                true
            }
            _ => false,
        };
        if !followed_env {
            if let Some(arg) = &shebang.argument {
                lead.push(OsString::from_vec(arg.clone()));
            }
            let interp_path = PathBuf::from(&interpreter);
            match std::fs::metadata(&interp_path) {
                Ok(meta) if meta.is_file() => {}
                _ => {
                    return Err(Stop::not_found(format!(
                        "{}: bad interpreter {}: No such file or directory",
                        PathBuf::from(&script).display(),
                        interp_path.display()
                    )))
                }
            }
            launch.elf = interp_path;
            launch.elf_argv0 = interpreter;
        }
        lead.push(script);
        lead.append(&mut launch.lead);
        launch.lead = lead;
        launch.via_script = true;
    }
    Err(Stop::cannot_start(format!(
        "{}: too many levels of #! interpreters",
        launch.found.display()
    )))
}

fn is_env(interpreter: &[u8]) -> bool {
    interpreter == b"/usr/bin/env" || interpreter == b"/bin/env"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn path_lookup_order_and_permission() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        write(&a.join("tool"), "x", 0o644);
        write(&b.join("tool"), "x", 0o755);
        let path = OsString::from(format!("{}:{}", a.display(), b.display()));
        assert_eq!(
            find(OsStr::new("tool"), Some(&path)).unwrap(),
            b.join("tool")
        );
        let only_a = a.clone().into_os_string();
        let denied = find(OsStr::new("tool"), Some(&only_a)).unwrap_err();
        assert_eq!(denied.outcome, crate::exit::Outcome::RunCannotStart);
        let missing = find(OsStr::new("nope"), Some(&path)).unwrap_err();
        assert_eq!(missing.outcome, crate::exit::Outcome::RunNotFound);
        let is_dir = find(a.as_os_str(), None).unwrap_err();
        assert_eq!(is_dir.outcome, crate::exit::Outcome::RunCannotStart);
    }

    #[test]
    fn scripts_follow_their_interpreter() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        write(&script, "#!/bin/sh -e\necho\n", 0o755);
        let launch = resolve(script.as_os_str(), None).unwrap();
        assert_eq!(launch.elf, PathBuf::from("/bin/sh"));
        assert_eq!(launch.elf_argv0, OsString::from("/bin/sh"));
        assert_eq!(
            launch.lead,
            vec![OsString::from("-e"), script.clone().into_os_string()]
        );
        let bad = dir.path().join("bad");
        write(&bad, "#!/nonexistent/interp\n", 0o755);
        let stop = resolve(bad.as_os_str(), None).unwrap_err();
        assert_eq!(stop.outcome, crate::exit::Outcome::RunNotFound);
    }

    #[test]
    fn a_file_without_shebang_runs_under_sh_as_execvp_does() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("plain");
        write(&script, "echo hi\n", 0o755);
        let launch = resolve(script.as_os_str(), None).unwrap();
        assert_eq!(launch.elf, PathBuf::from("/bin/sh"));
        assert_eq!(launch.lead, vec![script.into_os_string()]);
    }

    #[test]
    fn env_shebang_is_followed_through_path() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        write(&script, "#!/usr/bin/env sh\n", 0o755);
        let path = OsString::from("/bin:/usr/bin");
        let launch = resolve(script.as_os_str(), Some(&path)).unwrap();
        assert_eq!(launch.elf, PathBuf::from("/bin/sh"));
        assert_eq!(launch.elf_argv0, OsString::from("sh"));
        assert_eq!(launch.lead, vec![script.into_os_string()]);
    }
}
