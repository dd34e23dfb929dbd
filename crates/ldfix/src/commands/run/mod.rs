//! `ldfix run [--] CMD [ARGS]`: run a foreign program without modifying it (issue #8).
//!
//! CMD is found as a shell finds it; the library emulation decides whether it starts as it is.
//! If not, ldfix replaces itself (execve) with a glibc loader run as a command:
//! `LOADER [--argv0 NAME] [--library-path DIRS] CANONICAL-PATH ARGS…`. The directories reach that
//! one process only; the environment is passed on exactly as ldfix received it, so nothing
//! leaks into children. See docs/run.md for the limits of an explicit loader.

mod command;
mod modules;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context as _;
use ldfix_fix::launch;
use ldfix_index::Index;

use crate::cli::RunArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

/// glibc's loader accepts `--argv0` from 2.33 on (NEWS for 2.33; `elf/rtld.c`).
const ARGV0_SINCE: (u32, u32) = (2, 33);

/// Stopping before the program starts, with env(1)'s status.
#[derive(Debug)]
pub(crate) struct Stop {
    pub(crate) outcome: Outcome,
    message: String,
}

impl Stop {
    pub(crate) fn not_found(message: String) -> Self {
        Self {
            outcome: Outcome::RunNotFound,
            message,
        }
    }

    pub(crate) fn cannot_start(message: String) -> Self {
        Self {
            outcome: Outcome::RunCannotStart,
            message,
        }
    }
}

/// What `ldfix run` reads from its own environment (and never changes in the program's).
struct RunEnv {
    path: Option<OsString>,
    ld_library_path: Option<OsString>,
    ld_preload: Option<OsString>,
    cwd: PathBuf,
}

pub(crate) fn run(args: &RunArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let Some((cmd, user_args)) = args.command.split_first() else {
        anyhow::bail!("no command given: ldfix run [--for DIR]... [--] CMD [ARGS]");
    };
    let env = RunEnv {
        path: std::env::var_os(crate::env_vars::PATH),
        ld_library_path: std::env::var_os("LD_LIBRARY_PATH"),
        ld_preload: std::env::var_os("LD_PRELOAD"),
        cwd: std::env::current_dir().context("cannot read the current directory")?,
    };
    let launch = match command::resolve(cmd, env.path.as_deref()) {
        Ok(launch) => launch,
        Err(stop) => return Ok(stopped(printer, &stop)),
    };
    let program = std::fs::canonicalize(&launch.elf)
        .with_context(|| format!("cannot resolve {}", launch.elf.display()))?;

    let mut for_dirs = args.for_dirs.clone();
    for dir in &for_dirs {
        if !dir.is_dir() {
            anyhow::bail!("--for {}: not a directory", dir.display());
        }
    }
    let python_dirs = modules::python_dirs(&launch.elf, &program);
    for dir in &python_dirs {
        printer.verbose(&format!("covering Python modules under {}", dir.display()));
    }
    for_dirs.extend(python_dirs);
    let module_files = modules::elf_files(&for_dirs, printer);

    let mut index_cell: Option<Arc<Index>> = None;
    let mut open_index = || -> Result<Arc<Index>, ldfix_index::IndexError> {
        if let Some(index) = &index_cell {
            return Ok(index.clone());
        }
        let opening = std::time::Instant::now();
        let index = Arc::new(open_index(printer)?);
        printer.verbose(&format!(
            "library index opened in {:.2} ms",
            opening.elapsed().as_secs_f64() * 1e3
        ));
        index_cell = Some(index.clone());
        Ok(index)
    };
    let loader_env = launch::LoaderEnv {
        ld_library_path: env.ld_library_path.as_ref().map(|v| v.as_bytes().to_vec()),
        ld_preload: env.ld_preload.as_ref().map(|v| v.as_bytes().to_vec()),
        cwd: env.cwd.clone(),
    };
    let profile_dirs: Vec<PathBuf> = crate::settings::index_config(Vec::new(), false)
        .profiles
        .into_iter()
        .map(|p| p.lib_dir)
        .collect();
    let plan = match launch::plan(
        &program,
        &module_files,
        &loader_env,
        &profile_dirs,
        &mut open_index,
    ) {
        Ok(plan) => plan,
        // As env(1): nothing to run with is "not found" (127), a file that cannot be used is
        // "cannot execute" (126); only ldfix's own failures (the index) are 125.
        Err(e @ ldfix_fix::FixError::NoLoader { .. }) => {
            printer.error(&anyhow::Error::new(e));
            return Ok(Outcome::RunNotFound);
        }
        Err(e @ (ldfix_fix::FixError::Program { .. } | ldfix_fix::FixError::Loader { .. })) => {
            printer.error(&anyhow::Error::new(e));
            return Ok(Outcome::RunCannotStart);
        }
        Err(e) => return Err(e.into()),
    };

    printer.verbose(&format!(
        "planned in {:.2} ms ({} module files)",
        started.elapsed().as_secs_f64() * 1e3,
        module_files.len()
    ));
    if let Some(reason) = &plan.loader_reason {
        printer.verbose(&format!("{}: {reason}", program.display()));
    }
    for missing in &plan.module_missing {
        printer.warn(&format!(
            "{} (needed by {}) was found nowhere on this system; loading that module will fail{}",
            show(&missing.name),
            show(&missing.needed_by),
            hint(&missing.name)
        ));
    }
    if !plan.missing.is_empty() {
        let mut text = format!(
            "{} cannot start: {} not found on this system",
            program.display(),
            if plan.missing.len() == 1 {
                "a library it needs was"
            } else {
                "libraries it needs were"
            }
        );
        for missing in &plan.missing {
            let _ = write!(
                text,
                "\n  {} (needed by {}){}",
                show(&missing.name),
                show(&missing.needed_by),
                hint(&missing.name)
            );
        }
        return Ok(stopped(printer, &Stop::not_found(text)));
    }

    let mut command = match &plan.loader {
        None => direct(&launch, user_args),
        Some(loader) => {
            warn_limits(&launch, &program, printer);
            through_loader(&launch, &program, loader, &plan, &env, user_args, printer)
        }
    };
    if args.print {
        printer.data(&(shell_line(&command) + "\n"))?;
        return Ok(Outcome::Success);
    }
    // exec only returns on failure; on success this process is the program.
    let error = command.exec();
    let what = command.get_program().to_owned();
    let stop = if error.kind() == std::io::ErrorKind::NotFound {
        Stop::not_found(format!("{}: {error}", Path::new(&what).display()))
    } else {
        Stop::cannot_start(format!(
            "cannot execute {}: {error}",
            Path::new(&what).display()
        ))
    };
    Ok(stopped(printer, &stop))
}

fn stopped(printer: &Printer, stop: &Stop) -> Outcome {
    printer.error(&anyhow::anyhow!("{}", stop.message));
    stop.outcome
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// "; provided by nixpkgs#unixODBC (nix profile install nixpkgs#unixODBC)", or nothing.
fn hint(name: &[u8]) -> String {
    ldfix_index::nixpkgs::lookup(name).map_or_else(String::new, |entry| {
        format!(
            "; provided by {} (install: {})",
            entry.installable(),
            entry.install_command()
        )
    })
}

/// Opens the library index; an unwritable cache is not a reason to fail a run.
fn open_index(printer: &Printer) -> Result<Index, ldfix_index::IndexError> {
    let config = crate::settings::index_config(Vec::new(), false);
    match Index::open(&config) {
        Ok(index) => Ok(index),
        Err(error) => {
            printer.warn(&format!(
                "the library index cache cannot be used ({error}); scanning without it"
            ));
            let config = ldfix_index::IndexConfig {
                cache_file: None,
                ..config
            };
            Index::open(&config)
        }
    }
}

/// The program starts as it is: run exactly what a shell would.
fn direct(launch: &command::Launch, user_args: &[OsString]) -> Command {
    let mut command = Command::new(&launch.found);
    command.arg0(&launch.typed).args(user_args);
    command
}

/// `LOADER [--argv0 NAME] [--library-path DIRS] PROGRAM LEAD… ARGS…`. Only arguments: the
/// environment is not touched, so `Command` hands this process's `environ` to execve as it is.
fn through_loader(
    launch: &command::Launch,
    program: &Path,
    loader: &Path,
    plan: &launch::Plan,
    env: &RunEnv,
    user_args: &[OsString],
    printer: &Printer,
) -> Command {
    let mut command = Command::new(loader);
    if plan.loader_glibc.is_none_or(|v| v >= ARGV0_SINCE) {
        command.arg("--argv0").arg(&launch.elf_argv0);
    } else {
        printer.warn(&format!(
            "the loader {} (glibc older than 2.33) cannot pass the program's name: it sees {} as argv[0]",
            loader.display(),
            program.display()
        ));
    }
    // `--library-path` replaces LD_LIBRARY_PATH for this process (ld.so(8); `elf/rtld.c` reads
    // the option after the environment), so the user's own value goes first in it.
    if !plan.dirs.is_empty() {
        if let Some(value) = launch::library_path(
            env.ld_library_path.as_ref().map(|v| v.as_bytes()),
            &plan.dirs,
        ) {
            command.arg("--library-path").arg(OsStr::from_bytes(&value));
        }
    }
    // The canonical path: ld.so takes $ORIGIN from the path it is given, and the kernel would
    // have taken it from the real file (a venv's bin/python is a symlink).
    command.arg(program).args(&launch.lead).args(user_args);
    command
}

/// Warns about what an explicit loader cannot do (docs/run.md, "Limits").
fn warn_limits(launch: &command::Launch, program: &Path, printer: &Printer) {
    for file in [launch.found.as_path(), program] {
        if let Ok(meta) = std::fs::metadata(file) {
            if meta.permissions().mode() & 0o6000 != 0 {
                printer.warn(&format!(
                    "{} is setuid or setgid; under an explicit loader that is ignored and it runs with your own privileges",
                    file.display()
                ));
            }
        }
    }
    if refers_to_proc_self_exe(program) {
        printer.warn(&format!(
            "{} refers to /proc/self/exe, which under an explicit loader names the loader: if it re-executes itself, that fails (`ldfix fix` avoids this)",
            program.display()
        ));
    }
    printer.verbose(
        "programs it starts get the same environment; a foreign one among them fails as it would without ldfix",
    );
}

/// Whether the program contains the string `/proc/self/exe` (Rust's `current_exe`, Node,
/// Electron and self-re-executing tools read it).
fn refers_to_proc_self_exe(program: &Path) -> bool {
    // Mapped, not copied, when large: this runs on every start through the loader.
    let Ok(contents) = ldfix_elf::read::read_candidate(program) else {
        return false;
    };
    memchr::memmem::find(&contents.bytes, b"/proc/self/exe").is_some()
}

/// The command as a shell line (single-quoted where needed; bytes that are not UTF-8 are shown
/// as `$'\xNN'`).
fn shell_line(command: &Command) -> String {
    let mut words = vec![quote(command.get_program())];
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let bytes = word.as_bytes();
    let plain = |b: &u8| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(b);
    if !bytes.is_empty() && bytes.iter().all(plain) {
        return show(bytes);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => {
            format!("'{}'", text.replace('\'', r"'\''"))
        }
        _ => {
            let mut out = String::from("$'");
            for &b in bytes {
                if b.is_ascii_graphic() && b != b'\'' && b != b'\\' || b == b' ' {
                    out.push(char::from(b));
                } else {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            out.push('\'');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(
            quote(OsStr::new("/nix/store/a-b/lib")),
            "/nix/store/a-b/lib"
        );
        assert_eq!(quote(OsStr::new("a b")), "'a b'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
        assert_eq!(quote(OsStr::from_bytes(b"x\xffy")), r"$'x\xffy'");
    }
}
