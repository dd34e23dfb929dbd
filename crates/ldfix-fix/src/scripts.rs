//! `#!` scripts whose interpreter does not exist: `#!/bin/bash` or `#!/usr/bin/python3` on NixOS,
//! where only `/bin/sh` and `/usr/bin/env` exist at FHS paths.
//!
//! Like nixpkgs' `patchShebangs`, an interpreter at an FHS path (`/bin`, `/usr/bin`, …) is looked
//! up by its file name among the programs of the user and system profiles (the order of NixOS's
//! `PATH`) and written as its store path (a profile path can change under the script; the store
//! path is GC-rooted like every other reference). Only the interpreter's bytes change: its
//! argument and the rest of the file stay as they are.
//!
//! Left alone and reported instead: interpreters outside the FHS directories (a tree moved from
//! another place names its old prefix; the system's python would be the wrong one), `#!` lines
//! with DOS line endings, lines longer than the kernel reads, and large or binary files
//! (self-extracting installers read their payload at fixed offsets, which a longer line would
//! shift).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The `#!` line the kernel reads: `BINPRM_BUF_SIZE` is 256 bytes since Linux 5.1 (128 before),
/// including `#!`. A longer line would be cut.
const MAX_SHEBANG_LINE: usize = 255;

/// Scripts larger than this are not rewritten (self-extracting installers, see the module docs).
pub(crate) const MAX_SCRIPT_LEN: u64 = 1 << 20;

/// Directories whose programs a NixOS profile provides under the same name.
const FHS_BIN_DIRS: &[&str] = &[
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

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

/// Plans the fix of the script `data` (the whole file, `len` bytes). `exists` says whether a
/// path exists; `find` looks a program name up in the profiles and returns its store path.
pub(crate) fn plan(
    data: &[u8],
    len: u64,
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
    let line_end = data.iter().position(|&b| b == b'\n');
    let line = data.get(..line_end.unwrap_or(data.len())).unwrap_or(data);
    if line.ends_with(b"\r") {
        return ScriptPlan::Broken(format!(
            "its #! line ends in a carriage return (DOS line endings), so the kernel looks for {}; convert the file with dos2unix",
            interp.display().to_string().escape_debug()
        ));
    }
    let (Some(name), Some(dir)) = (interp.file_name(), interp.parent()) else {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist",
            interp.display()
        ));
    };
    if !FHS_BIN_DIRS.iter().any(|d| dir == Path::new(d)) {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist and is not an FHS program a profile provides (was the tree moved or copied from another place?)",
            interp.display()
        ));
    }
    let shown_name = name.to_string_lossy();
    let Some(found) = find(name) else {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist, and no `{shown_name}` is in the user or system profile (install it, or use `#!/usr/bin/env {shown_name}`)",
            interp.display()
        ));
    };
    if len > MAX_SCRIPT_LEN || data.contains(&0) {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist; it is a large or binary file (a self-extracting installer?), which ldfix does not rewrite: run it as `{} FILE`",
            interp.display(),
            found.display()
        ));
    }
    // Where the interpreter is on the line: after `#!` and blanks, as the kernel reads it.
    let start = 2 + line
        .get(2..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let end = start + sb.interpreter.len();
    let new_len = line.len() - sb.interpreter.len() + found.as_os_str().len();
    if line_end.is_none_or(|e| e > MAX_SHEBANG_LINE)
        || new_len > MAX_SHEBANG_LINE
        || line.get(start..end) != Some(sb.interpreter.as_slice())
    {
        return ScriptPlan::Broken(format!(
            "its #! interpreter {} does not exist, and its line with {} would be longer than the kernel reads ({MAX_SHEBANG_LINE} bytes)",
            interp.display(),
            found.display()
        ));
    }
    let mut new = Vec::with_capacity(data.len() + new_len - line.len());
    new.extend_from_slice(data.get(..start).unwrap_or_default());
    new.extend_from_slice(found.as_os_str().as_bytes());
    new.extend_from_slice(data.get(end..).unwrap_or_default());
    ScriptPlan::Rewrite {
        new,
        old_interpreter: sb.interpreter.clone(),
        new_interpreter: found,
    }
}

/// Looks `name` up in the `bin` directories in order and returns the program's path in the
/// store. Links are followed only while they keep the name: a profile's `bin/awk` leads to
/// `…-busybox/bin/awk`, not to the multi-call `…-busybox/bin/busybox` it links to, which would
/// see `argv[0]` = `busybox` and no longer act as awk.
pub(crate) fn find_in(bins: &[PathBuf], name: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    if name.as_bytes().contains(&b'/') || name.is_empty() {
        return None;
    }
    bins.iter().find_map(|bin| {
        let mut path = bin.join(name);
        // Linux follows at most 40 links in one lookup (`MAXSYMLINKS`).
        for _ in 0..40 {
            let Ok(target) = std::fs::read_link(&path) else {
                break;
            };
            if target.file_name() != Some(name) {
                break;
            }
            path = match path.parent() {
                Some(parent) if target.is_relative() => parent.join(target),
                _ => target,
            };
        }
        let dir = std::fs::canonicalize(path.parent()?).ok()?;
        let program = dir.join(name);
        let meta = std::fs::metadata(&program).ok()?;
        (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(program)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_bash(name: &OsStr) -> Option<PathBuf> {
        (name == "bash").then(|| PathBuf::from("/nix/store/aaaa-bash-5.2/bin/bash"))
    }

    fn plan_of(data: &[u8]) -> ScriptPlan {
        plan(data, data.len() as u64, &|_| false, &store_bash)
    }

    fn broken(data: &[u8]) -> String {
        match plan_of(data) {
            ScriptPlan::Broken(why) => why,
            other => panic!("expected Broken, got {other:?}"),
        }
    }

    #[test]
    fn only_the_interpreter_bytes_change() {
        assert_eq!(
            plan_of(b"#! /bin/bash   -e \necho hi\n"),
            ScriptPlan::Rewrite {
                new: b"#! /nix/store/aaaa-bash-5.2/bin/bash   -e \necho hi\n".to_vec(),
                old_interpreter: b"/bin/bash".to_vec(),
                new_interpreter: PathBuf::from("/nix/store/aaaa-bash-5.2/bin/bash"),
            }
        );
    }

    #[test]
    fn existing_or_relative_interpreters_are_left_alone() {
        let fine = |data: &[u8]| plan(data, 9, &|_| true, &store_bash);
        assert_eq!(fine(b"#!/bin/sh\n"), ScriptPlan::Fine);
        assert_eq!(plan_of(b"#!bash\n"), ScriptPlan::Fine);
        assert_eq!(plan_of(b"no shebang"), ScriptPlan::Fine);
    }

    #[test]
    fn what_cannot_be_rewritten_safely_is_reported() {
        assert!(broken(b"#!/usr/bin/perl\n").contains("no `perl`"));
        assert!(broken(b"#!/bin/bash\r\necho\r\n").contains("DOS line endings"));
        assert!(broken(b"#!/old/venv/bin/bash\n").contains("moved or copied"));
        assert!(broken(b"#!/bin/bash\n\0payload").contains("self-extracting"));
        let big = plan(
            b"#!/bin/bash\necho\n",
            MAX_SCRIPT_LEN + 1,
            &|_| false,
            &store_bash,
        );
        assert!(matches!(big, ScriptPlan::Broken(w) if w.contains("self-extracting")));
        let long = format!("#!/bin/bash {}\n", "x".repeat(250));
        assert!(broken(long.as_bytes()).contains("longer than the kernel reads"));
        let deep = |_: &OsStr| {
            Some(PathBuf::from(format!(
                "/nix/store/{}/bin/bash",
                "x".repeat(300)
            )))
        };
        let plan = plan(b"#!/bin/bash\n", 12, &|_| false, &deep);
        assert!(
            matches!(plan, ScriptPlan::Broken(w) if w.contains("longer than the kernel reads"))
        );
    }

    proptest::proptest! {
        /// Any bytes: no panic, and a rewrite changes exactly the interpreter's bytes of the
        /// first line, nothing before or after it.
        #[test]
        fn any_input_is_planned_safely(
            head in proptest::sample::select(vec![
                &b"#!/bin/bash"[..], b"#! /usr/bin/bash", b"#!\t/bin/bash", b"#!/bin/", b"#!", b"",
            ]),
            // Bytes that matter to the line's shape, and any others.
            rest in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![b'\n', b' ', b'\t', b'\r', b'-', b'e', 0]),
                    proptest::prelude::any::<u8>(),
                ],
                0..400,
            ),
        ) {
            let mut data = head.to_vec();
            data.extend_from_slice(&rest);
            if let ScriptPlan::Rewrite { new, old_interpreter, new_interpreter } = plan_of(&data) {
                let interp = new_interpreter.as_os_str().as_bytes();
                let at = new.windows(interp.len()).position(|w| w == interp).unwrap();
                proptest::prop_assert_eq!(&new[..at], &data[..at]);
                proptest::prop_assert_eq!(&new[at + interp.len()..], &data[at + old_interpreter.len()..]);
                proptest::prop_assert!(!new[..at + interp.len()].contains(&b'\n'));
            }
        }
    }

    #[test]
    fn find_in_follows_links_only_while_they_keep_the_name() {
        use std::os::unix::fs::{symlink, PermissionsExt as _};
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-busybox/bin");
        let profile = dir.path().join("profile/bin");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&profile).unwrap();
        std::fs::write(store.join("busybox"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            store.join("busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("busybox", store.join("awk")).unwrap();
        symlink(store.join("awk"), profile.join("awk")).unwrap();
        std::fs::write(store.join("data"), "").unwrap();
        symlink(store.join("data"), profile.join("data")).unwrap();
        let bins = [dir.path().join("missing"), profile];
        let real_store = std::fs::canonicalize(&store).unwrap();
        assert_eq!(
            find_in(&bins, OsStr::new("awk")),
            Some(real_store.join("awk")),
            "the applet's own name, not busybox"
        );
        assert_eq!(find_in(&bins, OsStr::new("data")), None, "not executable");
        assert_eq!(find_in(&bins, OsStr::new("../bin/awk")), None);
    }
}
