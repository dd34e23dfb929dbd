//! `#!` scripts whose interpreter does not exist: `#!/bin/bash` or `#!/usr/bin/python3` on NixOS,
//! where only `/bin/sh` and `/usr/bin/env` exist at FHS paths.
//!
//! Like nixpkgs' `patchShebangs`, the interpreter is looked up by its file name among the
//! programs of the system and user profiles and written as its canonical store path (a profile
//! path can change under the script; the store path is GC-rooted like every other reference).
//! The arguments after the interpreter are kept. Nothing else in the file changes.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The longest `#!` line the kernel reads (`BINPRM_BUF_SIZE` is 256 since Linux 5.1, including
/// `#!`; older kernels read 128). A longer line would be cut, so such a rewrite is refused.
const MAX_SHEBANG_LINE: usize = 255;

/// What to do with one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScriptPlan {
    /// Its interpreter exists (or is not an absolute path): nothing to do.
    Fine,
    /// Rewrite it: the new contents, and the old and new interpreter.
    Rewrite {
        new: Vec<u8>,
        old_interpreter: Vec<u8>,
        new_interpreter: PathBuf,
    },
    /// It cannot run and ldfix cannot fix it: why.
    Broken(String),
}

/// Plans the fix of the script `data`. `exists` says whether a path exists; `find` looks a
/// program name up in the profiles and returns its canonical store path.
pub(crate) fn plan(
    data: &[u8],
    exists: &dyn Fn(&Path) -> bool,
    find: &dyn Fn(&OsStr) -> Option<PathBuf>,
) -> ScriptPlan {
    let Some(sb) = ldfix_elf::read::parse_shebang(data) else {
        return ScriptPlan::Fine;
    };
    let interp = Path::new(OsStr::from_bytes(&sb.interpreter));
    if !interp.is_absolute() || exists(interp) {
        return ScriptPlan::Fine;
    }
    let Some(name) = interp.file_name() else {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist",
            interp.display()
        ));
    };
    let Some(found) = find(name) else {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist, and no `{}` is in the system or user profile (install it, or use `#!/usr/bin/env {}`)",
            interp.display(),
            name.to_string_lossy(),
            name.to_string_lossy()
        ));
    };
    // The kernel passes at most one argument, everything after the first blank, trimmed: the
    // rewritten line passes exactly the same one.
    let mut line = b"#!".to_vec();
    line.extend_from_slice(found.as_os_str().as_bytes());
    if let Some(argument) = &sb.argument {
        line.push(b' ');
        line.extend_from_slice(argument);
    }
    if line.len() > MAX_SHEBANG_LINE {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist, and the line with {} would be {} bytes, longer than the kernel reads ({MAX_SHEBANG_LINE})",
            interp.display(),
            found.display(),
            line.len()
        ));
    }
    let line_end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let mut new = line;
    new.extend_from_slice(data.get(line_end..).unwrap_or_default());
    ScriptPlan::Rewrite {
        new,
        old_interpreter: sb.interpreter.clone(),
        new_interpreter: found,
    }
}

/// Looks `name` up in the `bin` directories in order; the first executable file wins, returned
/// canonical (its store path, never the profile path).
pub(crate) fn find_in(bins: &[PathBuf], name: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    if name.as_bytes().contains(&b'/') || name.is_empty() {
        return None;
    }
    bins.iter().find_map(|bin| {
        let real = std::fs::canonicalize(bin.join(name)).ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(real)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_bash(name: &OsStr) -> Option<PathBuf> {
        (name == "bash").then(|| PathBuf::from("/nix/store/aaaa-bash-5.2/bin/bash"))
    }

    #[test]
    fn missing_interpreter_gets_the_store_path_and_keeps_its_arguments() {
        let data = b"#! /bin/bash   -e \necho hi\n";
        let plan = plan(data, &|_| false, &store_bash);
        assert_eq!(
            plan,
            ScriptPlan::Rewrite {
                new: b"#!/nix/store/aaaa-bash-5.2/bin/bash -e\necho hi\n".to_vec(),
                old_interpreter: b"/bin/bash".to_vec(),
                new_interpreter: PathBuf::from("/nix/store/aaaa-bash-5.2/bin/bash"),
            }
        );
    }

    #[test]
    fn existing_or_relative_interpreters_are_left_alone() {
        assert_eq!(
            plan(b"#!/bin/sh\n", &|_| true, &store_bash),
            ScriptPlan::Fine
        );
        assert_eq!(plan(b"#!bash\n", &|_| false, &store_bash), ScriptPlan::Fine);
        assert_eq!(
            plan(b"no shebang", &|_| false, &store_bash),
            ScriptPlan::Fine
        );
    }

    #[test]
    fn unknown_interpreter_and_too_long_lines_are_reported_not_written() {
        let ScriptPlan::Broken(why) = plan(b"#!/usr/bin/perl\n", &|_| false, &store_bash) else {
            panic!("perl is not in the profiles")
        };
        assert!(why.contains("no `perl`"), "{why}");
        let long = |_: &OsStr| {
            Some(PathBuf::from(format!(
                "/nix/store/{}/bin/bash",
                "x".repeat(300)
            )))
        };
        let ScriptPlan::Broken(why) = plan(b"#!/bin/bash\n", &|_| false, &long) else {
            panic!("the line is too long")
        };
        assert!(why.contains("longer than the kernel reads"), "{why}");
    }

    #[test]
    fn find_in_returns_the_canonical_path_of_the_first_executable() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store/bin");
        let profile = dir.path().join("profile");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(store.join("tool"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(store.join("data"), "").unwrap();
        std::os::unix::fs::symlink(&store, &profile).unwrap();
        let bins = [dir.path().join("missing"), profile];
        let real = std::fs::canonicalize(store.join("tool")).unwrap();
        assert_eq!(find_in(&bins, OsStr::new("tool")), Some(real));
        assert_eq!(find_in(&bins, OsStr::new("data")), None, "not executable");
        assert_eq!(find_in(&bins, OsStr::new("../bin/tool")), None);
    }
}
