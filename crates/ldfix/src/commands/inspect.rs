//! `ldfix inspect`.
//!
//! Walks the given files and directories, reads every ELF file with `ldfix_elf::parse` (in
//! parallel), and says in plain words why a program will not start: a missing interpreter,
//! NixOS's stub-ld or nix-ld at the interpreter path, a script whose `#!` interpreter is missing,
//! or a file for another architecture. The `--json` schema is documented in `docs/inspect-json.md`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ldfix_elf::read::{self as elf_read, InterpreterKind, Shebang};
use ldfix_elf::{Class, ElfInfo, Endian, FileKind};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

/// Version of the `--json` document; bumped on any incompatible change.
const SCHEMA: &str = "ldfix-inspect/1";

pub(crate) fn run(args: &InspectArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    if args.tree {
        return super::inspect_tree::run(args, printer);
    }
    let report = inspect_paths(&args.paths);
    let text = if args.json {
        let mut json = serde_json::to_string_pretty(&report)?;
        json.push('\n');
        json
    } else {
        render_human(&report)
    };
    printer.data(&text)?;
    if !args.json {
        printer.info(&report.summary.line());
    }
    Ok(if report.summary.errors > 0 {
        Outcome::Error
    } else if report.summary.with_problems > 0 {
        Outcome::NeedsAttention
    } else {
        Outcome::Success
    })
}

/// The whole result: one entry per reported file, in walk order, and the counts.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    schema: &'static str,
    files: Vec<Entry>,
    summary: Summary,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    /// ELF files read.
    elf: usize,
    /// `#!` scripts looked at.
    scripts: usize,
    /// Symlinks met while walking (reported, never followed).
    symlinks: usize,
    /// Files skipped because their magic is neither ELF nor `#!`.
    skipped: usize,
    /// Files or directories that could not be read.
    errors: usize,
    /// Files with at least one problem that stops them from starting.
    with_problems: usize,
}

impl Summary {
    fn line(&self) -> String {
        format!(
            "{} ELF file{}, {} script{}, {} symlink{}, {} other file{} skipped, {} with problems, {} error{}",
            self.elf,
            plural(self.elf),
            self.scripts,
            plural(self.scripts),
            self.symlinks,
            plural(self.symlinks),
            self.skipped,
            plural(self.skipped),
            self.with_problems,
            self.errors,
            plural(self.errors),
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One reported file.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum Entry {
    Elf(Box<ElfEntry>),
    Script(ScriptEntry),
    Symlink(SymlinkEntry),
    Other(OtherEntry),
    Error(ErrorEntry),
}

#[derive(Debug, Serialize)]
pub(crate) struct ElfEntry {
    path: String,
    class: &'static str,
    endian: &'static str,
    machine: String,
    e_machine: u16,
    os_abi: u8,
    e_type: u16,
    kind: &'static str,
    interpreter: Option<String>,
    needed: Vec<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    soname: Option<String>,
    flags: u64,
    flags_names: Vec<String>,
    flags_1: u64,
    flags_1_names: Vec<String>,
    version_needs: Vec<VersionNeedJson>,
    version_defs: Vec<String>,
    max_glibc: Option<String>,
    libc: &'static str,
    build_id: Option<String>,
    dlopen: Vec<DlopenJson>,
    section_headers: bool,
    file_size: u64,
    trailing_offset: u64,
    trailing_bytes: u64,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct VersionNeedJson {
    file: String,
    versions: Vec<String>,
}

#[derive(Debug, Serialize)]
struct DlopenJson {
    feature: Option<String>,
    description: Option<String>,
    priority: Option<String>,
    sonames: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ScriptEntry {
    path: String,
    interpreter: String,
    argument: Option<String>,
    problems: Vec<Problem>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SymlinkEntry {
    path: String,
    target: String,
    /// The target, resolved, lies outside every directory given on the command line.
    outside: bool,
    /// The target does not exist.
    dangling: bool,
}

/// A file named on the command line that is neither ELF nor a script.
#[derive(Debug, Serialize)]
pub(crate) struct OtherEntry {
    path: String,
    description: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorEntry {
    path: String,
    error: String,
}

/// A reason the file will not start (`severity: "error"`), or something worth knowing about how
/// it will start (`"note"`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Problem {
    code: &'static str,
    severity: &'static str,
    message: String,
    /// What to do about it, when ldfix knows.
    hint: Option<String>,
}

impl Problem {
    fn error(code: &'static str, message: String) -> Self {
        Problem {
            code,
            severity: "error",
            message,
            hint: None,
        }
    }

    fn note(code: &'static str, message: String) -> Self {
        Problem {
            code,
            severity: "note",
            message,
            hint: None,
        }
    }

    fn hint(mut self, hint: &str) -> Self {
        self.hint = Some(hint.to_owned());
        self
    }
}

/// For programs whose loader is missing or refuses them (the NixOS case).
const LOADER_HINT: &str = "`ldfix run FILE` runs it with a loader and libraries from the Nix store; `ldfix fix FILE` patches it to use them";

/// What the walk found at one path, before reading contents.
enum Found {
    /// A regular file to read.
    File {
        path: PathBuf,
        /// Named on the command line, rather than met in a walk.
        explicit: bool,
    },
    /// A symlink met during a walk.
    Symlink(SymlinkEntry),
    /// A path that could not be listed or stat'ed.
    Error(ErrorEntry),
}

/// What reading one file gave.
enum ReadResult {
    Elf(Box<ElfInfo>),
    Script(Shebang),
    Skipped,
    Error(String),
}

/// Walks `paths`, reads every candidate file in parallel and diagnoses each.
pub(crate) fn inspect_paths(paths: &[PathBuf]) -> Report {
    let mut found = Vec::new();
    for path in paths {
        collect(path, &mut found);
    }
    let read: Vec<ReadResult> = found
        .par_iter()
        .map(|item| match item {
            Found::File { path, .. } => read_one(path),
            Found::Symlink(_) | Found::Error(_) => ReadResult::Skipped,
        })
        .collect();

    let mut diagnoser = Diagnoser::default();
    let mut summary = Summary::default();
    let mut files = Vec::new();
    for (item, result) in found.into_iter().zip(read) {
        match (item, result) {
            (Found::File { path, .. }, ReadResult::Elf(info)) => {
                summary.elf += 1;
                let problems = diagnoser.elf(&info);
                if problems.iter().any(|p| p.severity == "error") {
                    summary.with_problems += 1;
                }
                files.push(Entry::Elf(Box::new(elf_entry(&path, &info, problems))));
            }
            (Found::File { path, .. }, ReadResult::Script(shebang)) => {
                summary.scripts += 1;
                let problems = diagnoser.script(&shebang);
                if !problems.is_empty() {
                    summary.with_problems += 1;
                }
                files.push(Entry::Script(ScriptEntry {
                    path: display_path(&path),
                    interpreter: display_bytes(&shebang.interpreter),
                    argument: shebang.argument.as_deref().map(display_bytes),
                    problems,
                }));
            }
            (Found::File { path, explicit }, ReadResult::Skipped) => {
                summary.skipped += 1;
                // A file the user named deserves an answer; one met in a walk is only counted.
                if explicit {
                    files.push(Entry::Other(OtherEntry {
                        path: display_path(&path),
                        description: "not an ELF file or an executable #! script".to_owned(),
                    }));
                }
            }
            (Found::File { path, .. }, ReadResult::Error(error)) => {
                summary.errors += 1;
                files.push(Entry::Error(ErrorEntry {
                    path: display_path(&path),
                    error,
                }));
            }
            (Found::Symlink(link), _) => {
                summary.symlinks += 1;
                files.push(Entry::Symlink(link));
            }
            (Found::Error(error), _) => {
                summary.errors += 1;
                files.push(Entry::Error(error));
            }
        }
    }
    Report {
        schema: SCHEMA,
        files,
        summary,
    }
}

/// Lists what is at `path`: a file given by name is always read (following a symlink, since the
/// user named it); a directory is walked without following symlinks.
fn collect(path: &Path, found: &mut Vec<Found>) {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) => {
            found.push(Found::Error(ErrorEntry {
                path: display_path(path),
                error: io_message(&error),
            }));
            return;
        }
    };
    if meta.is_dir() {
        let root = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        walk(path, &root, found);
    } else {
        found.push(Found::File {
            path: path.to_owned(),
            explicit: true,
        });
    }
}

/// Depth-first walk in name order, so that output is stable. Uses the directory entries' types,
/// so a file costs no `stat` until it is opened.
fn walk(dir: &Path, root: &Path, found: &mut Vec<Found>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            found.push(Found::Error(ErrorEntry {
                path: display_path(dir),
                error: io_message(&error),
            }));
            return;
        }
    };
    let mut entries: Vec<_> = entries.collect();
    entries.sort_by_key(|e| e.as_ref().map(fs::DirEntry::file_name).ok());
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                found.push(Found::Error(ErrorEntry {
                    path: display_path(dir),
                    error: io_message(&error),
                }));
                continue;
            }
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => walk(&path, root, found),
            Ok(kind) if kind.is_symlink() => found.push(symlink_entry(&path, root)),
            Ok(kind) if kind.is_file() => found.push(Found::File {
                path,
                explicit: false,
            }),
            // FIFOs, sockets and devices are never programs; opening a FIFO would block.
            Ok(_) => {}
            Err(error) => found.push(Found::Error(ErrorEntry {
                path: display_path(&path),
                error: io_message(&error),
            })),
        }
    }
}

fn symlink_entry(path: &Path, root: &Path) -> Found {
    let target = match fs::read_link(path) {
        Ok(target) => target,
        Err(error) => {
            return Found::Error(ErrorEntry {
                path: display_path(path),
                error: io_message(&error),
            })
        }
    };
    let resolved = fs::canonicalize(path);
    let dangling = resolved.is_err();
    let outside = match &resolved {
        Ok(resolved) => !resolved.starts_with(root),
        // A dangling link's lexical target tells where it meant to go.
        Err(_) => {
            let joined = path.parent().unwrap_or(Path::new("/")).join(&target);
            !lexical_normal(&joined).starts_with(root)
        }
    };
    Found::Symlink(SymlinkEntry {
        path: display_path(path),
        target: display_path(&target),
        outside,
        dangling,
    })
}

/// `a/b/../c` -> `a/c` without touching the file system.
fn lexical_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads a file: its head decides by magic; only ELF files are read whole (or mapped).
fn read_one(path: &Path) -> ReadResult {
    let contents = match elf_read::read_candidate(path) {
        Ok(contents) => contents,
        Err(error) => return ReadResult::Error(io_message(&error)),
    };
    if contents.is_elf {
        return match elf_read::parse(&contents.bytes) {
            Ok(info) => ReadResult::Elf(Box::new(info)),
            Err(error) => ReadResult::Error(error.to_string()),
        };
    }
    // Only executable scripts matter: the kernel reads `#!` only when asked to execute.
    if contents.bytes.starts_with(b"#!") && contents.mode & 0o111 != 0 {
        if let Some(shebang) = elf_read::parse_shebang(&contents.bytes) {
            return ReadResult::Script(shebang);
        }
    }
    ReadResult::Skipped
}

/// Diagnoses files; remembers what it found at each interpreter path, since a tree usually has
/// thousands of files sharing one or two interpreters.
#[derive(Default)]
struct Diagnoser {
    interpreters: HashMap<Vec<u8>, Option<Problem>>,
}

impl Diagnoser {
    fn elf(&mut self, info: &ElfInfo) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(problem) = architecture_problem(info) {
            problems.push(problem);
        }
        if let Some(interp) = &info.interpreter {
            let problem = self
                .interpreters
                .entry(interp.clone())
                .or_insert_with(|| interpreter_problem(interp, info))
                .clone();
            problems.extend(problem);
        }
        problems
    }

    fn script(&mut self, shebang: &Shebang) -> Vec<Problem> {
        let interp = &shebang.interpreter;
        let path = Path::new(OsStr::from_bytes(interp));
        if fs::metadata(path).is_err() {
            let problem = Problem::error(
                "script-interpreter-missing",
                format!(
                    "its #! interpreter {} does not exist (the shell says \"cannot execute: required file not found\")",
                    display_bytes(interp),
                ),
            );
            return vec![match nixos_hint(interp) {
                Some(hint) => problem.hint(hint),
                None => problem,
            }];
        }
        // `#!/usr/bin/env NAME` looks NAME up on PATH at run time.
        if interp.ends_with(b"/env") {
            if let Some(name) = shebang.argument.as_deref().filter(|a| !a.starts_with(b"-")) {
                if !on_path(name) {
                    return vec![Problem::error(
                        "script-command-missing",
                        format!(
                            "its #! line runs `env {}`, and {} is not on PATH",
                            display_bytes(name),
                            display_bytes(name)
                        ),
                    )];
                }
            }
        }
        Vec::new()
    }
}

/// NixOS has only `/bin/sh` and `/usr/bin/env` of the FHS paths scripts use.
fn nixos_hint(interp: &[u8]) -> Option<&'static str> {
    (interp.starts_with(b"/bin/") || interp.starts_with(b"/usr/"))
        .then_some("on NixOS only /bin/sh and /usr/bin/env exist: use #!/usr/bin/env NAME")
}

fn on_path(name: &[u8]) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(OsStr::from_bytes(name)))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The kernel refuses a program for another machine with ENOEXEC ("cannot execute binary file:
/// Exec format error"), and the loader skips a library for another machine as if it were
/// missing (glibc `elf/dl-load.c`, `elf_machine_matches_host`).
fn architecture_problem(info: &ElfInfo) -> Option<Problem> {
    let loadable = matches!(
        info.kind,
        FileKind::Executable
            | FileKind::Pie
            | FileKind::StaticExecutable
            | FileKind::StaticPie
            | FileKind::SharedLibrary
    );
    if !loadable || elf_read::host_can_run(info.machine, info.class, info.endian) {
        return None;
    }
    let (machine, class, endian) = elf_read::host_machine();
    Some(Problem::error(
        "wrong-architecture",
        format!(
            "it is for {}, this machine is {} (running it gives \"Exec format error\")",
            info.machine_name(),
            elf_read::machine_name(machine, class, endian)
        ),
    ))
}

/// What is (or is not) at the interpreter path. The kernel opens PT_INTERP as given (relative
/// paths against the working directory: linux fs/binfmt_elf.c, `open_exec(elf_interpreter)`).
fn interpreter_problem(interp: &[u8], info: &ElfInfo) -> Option<Problem> {
    let shown = display_bytes(interp);
    let path = Path::new(OsStr::from_bytes(interp));
    let data = match fs::read(path) {
        Ok(data) => data,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let dangling = fs::symlink_metadata(path).is_ok();
            return Some(Problem::error(
                "interpreter-missing",
                format!(
                    "its interpreter {shown} {} (the shell says \"cannot execute: required file not found\")",
                    if dangling {
                        "is a dangling symlink"
                    } else {
                        "does not exist"
                    }
                ),
            ).hint(LOADER_HINT));
        }
        Err(error) => {
            return Some(Problem::error(
                "interpreter-unreadable",
                format!(
                    "its interpreter {shown} cannot be read: {}",
                    io_message(&error)
                ),
            ))
        }
    };
    match elf_read::classify_interpreter(&data) {
        InterpreterKind::StubLd => Some(Problem::error(
            "interpreter-stub-ld",
            format!(
                "its interpreter {shown} is NixOS's stub-ld, which only prints \"cannot run dynamically linked executables\" and exits 127"
            ),
        ).hint(LOADER_HINT)),
        InterpreterKind::NixLd => Some(Problem::note(
            "interpreter-nix-ld",
            format!(
                "its interpreter {shown} is nix-ld: it starts the loader named by NIX_LD with the libraries in NIX_LD_LIBRARY_PATH"
            ),
        )),
        InterpreterKind::NotElf => Some(Problem::error(
            "interpreter-not-elf",
            format!("its interpreter {shown} is not an ELF file"),
        )),
        InterpreterKind::Loader => match elf_read::parse(&data) {
            Ok(loader) if loader.machine != info.machine || loader.class != info.class => {
                Some(Problem::error(
                    "interpreter-wrong-architecture",
                    format!(
                        "its interpreter {shown} is for {}, the program is for {}",
                        loader.machine_name(),
                        info.machine_name()
                    ),
                ))
            }
            Ok(_) => None,
            Err(error) => Some(Problem::error(
                "interpreter-unreadable",
                format!("its interpreter {shown} is damaged: {error}"),
            )),
        },
    }
}

fn elf_entry(path: &Path, info: &ElfInfo, problems: Vec<Problem>) -> ElfEntry {
    let strings = |list: &[Vec<u8>]| list.iter().map(|s| display_bytes(s)).collect::<Vec<_>>();
    ElfEntry {
        path: display_path(path),
        class: match info.class {
            Class::Elf32 => "elf32",
            Class::Elf64 => "elf64",
        },
        endian: match info.endian {
            Endian::Little => "little",
            Endian::Big => "big",
        },
        machine: info.machine_name(),
        e_machine: info.machine,
        os_abi: info.os_abi,
        e_type: info.e_type,
        kind: info.kind.as_str(),
        interpreter: info.interpreter.as_deref().map(display_bytes),
        needed: strings(&info.needed),
        rpath: info.rpath.as_deref().map(display_bytes),
        runpath: info.runpath.as_deref().map(display_bytes),
        soname: info.soname.as_deref().map(display_bytes),
        flags: info.flags,
        flags_names: elf_read::dt_flags_names(info.flags),
        flags_1: info.flags_1,
        flags_1_names: elf_read::dt_flags_1_names(info.flags_1),
        version_needs: info
            .version_needs
            .iter()
            .map(|need| VersionNeedJson {
                file: display_bytes(&need.file),
                versions: strings(&need.versions),
            })
            .collect(),
        version_defs: strings(&info.version_defs),
        max_glibc: info.max_glibc.as_ref().map(ToString::to_string),
        libc: info.libc.as_str(),
        build_id: info.build_id.as_deref().map(hex),
        dlopen: info
            .dlopen
            .iter()
            .map(|entry| DlopenJson {
                feature: entry.feature.clone(),
                description: entry.description.clone(),
                priority: entry.priority.clone(),
                sonames: strings(&entry.sonames),
            })
            .collect(),
        section_headers: info.has_section_headers,
        file_size: info.file_size,
        trailing_offset: info.referenced_end.min(info.file_size),
        trailing_bytes: info.trailing_bytes,
        problems,
        warnings: info.warnings.clone(),
    }
}

/// The human output: one short block per file.
fn render_human(report: &Report) -> String {
    let mut out = String::new();
    for entry in &report.files {
        match entry {
            Entry::Elf(elf) => render_elf(&mut out, elf),
            Entry::Script(script) => {
                let _ = writeln!(
                    out,
                    "{}: script, #!{}{}",
                    script.path,
                    script.interpreter,
                    script
                        .argument
                        .as_deref()
                        .map(|a| format!(" {a}"))
                        .unwrap_or_default()
                );
                render_problems(&mut out, &script.problems);
            }
            Entry::Symlink(link) => {
                // Links inside the tree point at files reported on their own; only links that
                // leave the tree or dangle are worth a line.
                if link.outside || link.dangling {
                    let why = if link.dangling {
                        "dangling"
                    } else {
                        "outside the tree, not followed"
                    };
                    let _ = writeln!(out, "{}: symlink to {} ({why})", link.path, link.target);
                } else {
                    continue;
                }
            }
            Entry::Other(other) => {
                let _ = writeln!(out, "{}: {}", other.path, other.description);
            }
            Entry::Error(error) => {
                let _ = writeln!(out, "{}: error: {}", error.path, error.error);
            }
        }
        out.push('\n');
    }
    // No trailing blank line after the last block.
    if out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn render_elf(out: &mut String, elf: &ElfEntry) {
    let _ = writeln!(
        out,
        "{}: {} {}, {}-endian {}{}",
        elf.path,
        if elf.class == "elf32" {
            "ELF 32-bit"
        } else {
            "ELF 64-bit"
        },
        elf.kind,
        elf.endian,
        elf.machine,
        if elf.os_abi == 0 {
            String::new()
        } else {
            format!(", {}", elf_read::os_abi_name(elf.os_abi))
        }
    );
    let mut line = |label: &str, value: &str| {
        let _ = writeln!(out, "  {label:<12} {value}");
    };
    if let Some(interp) = &elf.interpreter {
        line("interpreter", interp);
    }
    if let Some(soname) = &elf.soname {
        line("soname", soname);
    }
    if !elf.needed.is_empty() {
        line("needed", &elf.needed.join(" "));
    }
    if let Some(rpath) = &elf.rpath {
        line("rpath", rpath);
    }
    if let Some(runpath) = &elf.runpath {
        line("runpath", runpath);
    }
    let flags: Vec<&str> = elf
        .flags_names
        .iter()
        .chain(&elf.flags_1_names)
        .map(String::as_str)
        .collect();
    if !flags.is_empty() {
        line("flags", &flags.join(" "));
    }
    let mut libc = elf.libc.to_owned();
    if let Some(max) = &elf.max_glibc {
        let _ = write!(libc, ", needs GLIBC {max}");
    }
    if elf.libc != "none" || elf.max_glibc.is_some() {
        line("libc", &libc);
    }
    for need in &elf.version_needs {
        line(
            "versions",
            &format!("{}: {}", need.file, need.versions.join(" ")),
        );
    }
    if !elf.version_defs.is_empty() {
        line("defines", &elf.version_defs.join(" "));
    }
    for entry in &elf.dlopen {
        let mut text = entry.sonames.join(" | ");
        if let Some(feature) = &entry.feature {
            let _ = write!(text, " ({feature}");
            if let Some(priority) = &entry.priority {
                let _ = write!(text, ", {priority}");
            }
            text.push(')');
        }
        line("dlopen", &text);
    }
    if let Some(id) = &elf.build_id {
        line("build-id", id);
    }
    if !elf.section_headers {
        line("sections", "none (section headers removed)");
    }
    if elf.trailing_bytes > 0 {
        // Without section headers, the contents of non-loaded sections (symbol tables,
        // comments) are referenced by nothing either.
        let what = if elf.section_headers {
            "an appended payload"
        } else {
            "an appended payload, or sections whose headers were removed"
        };
        line(
            "trailing",
            &format!(
                "{} bytes after offset {:#x}, referenced by no header ({what})",
                elf.trailing_bytes, elf.trailing_offset
            ),
        );
    }
    for warning in &elf.warnings {
        line("warning", warning);
    }
    render_problems(out, &elf.problems);
}

fn render_problems(out: &mut String, problems: &[Problem]) {
    for problem in problems {
        let label = if problem.severity == "error" {
            "problem"
        } else {
            "note"
        };
        let _ = writeln!(out, "  {label:<12} {}", problem.message);
        if let Some(hint) = &problem.hint {
            let _ = writeln!(out, "  {:<12} {hint}", "hint");
        }
    }
}

/// Names are bytes; valid UTF-8 is shown as is, anything else with Rust's `escape_ascii` rules.
fn display_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

fn display_path(path: &Path) -> String {
    display_bytes(path.as_os_str().as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The OS error text without Rust's " (os error N)" suffix.
fn io_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text.get(..end).unwrap_or(&text).to_owned(),
        None => text,
    }
}
