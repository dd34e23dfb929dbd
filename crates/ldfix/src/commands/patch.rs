//! `ldfix patch`: patchelf's flags over ldfix's editor.
//!
//! Each file is read once, every requested operation is applied in patchelf 0.19's fixed order
//! (prints show the values before any change), the result is checked by the editor, and the file
//! is written once through the atomic-replace routine, and only if a byte changed. Files are
//! patched in parallel; their printed values and errors come out in command-line order.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use ldfix_elf::edit::{Edits, RpathEdit};
use ldfix_fix::write::{commit, stage_edit, write_new_file, Staged, WriteOptions};
use rayon::prelude::*;

use crate::cli::PatchArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

/// EI_OSABI names patchelf accepts and prints (case-insensitive on input).
const OS_ABIS: &[(&str, u8)] = &[
    ("System V", 0),
    ("HP-UX", 1),
    ("NetBSD", 2),
    ("Linux", 3),
    ("GNU Hurd", 4),
    ("Solaris", 6),
    ("AIX", 7),
    ("IRIX", 8),
    ("FreeBSD", 9),
    ("Tru64", 10),
    ("OpenBSD", 12),
    ("OpenVMS", 13),
];

fn parse_os_abi(name: &str) -> anyhow::Result<u8> {
    let lower = name.to_ascii_lowercase();
    let alias = match lower.as_str() {
        "none" | "sysv" => "system v",
        "gnu" => "linux",
        "hurd" => "gnu hurd",
        other => other,
    };
    OS_ABIS
        .iter()
        .find(|(n, _)| n.to_ascii_lowercase() == alias)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = OS_ABIS.iter().map(|(n, _)| *n).collect();
            anyhow!(
                "unrecognized OS ABI {name:?}; expected one of: {}",
                names.join(", ")
            )
        })
}

fn os_abi_name(value: u8) -> String {
    OS_ABIS
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| format!("unknown ({value})"), |(n, _)| (*n).to_owned())
}

fn bytes(s: &OsStr) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The edits common to every file (shrink-rpath is computed per file).
fn edits_from(args: &PatchArgs) -> anyhow::Result<Edits> {
    if args.set_rpath.is_some() && args.add_rpath.is_some() {
        bail!("--set-rpath and --add-rpath cannot be combined");
    }
    if args.output.is_some() && args.files.len() != 1 {
        bail!("--output needs exactly one input file");
    }
    let rpath = if args.remove_rpath {
        Some(RpathEdit::Remove)
    } else if let Some(v) = &args.set_rpath {
        Some(RpathEdit::Set(bytes(v)))
    } else {
        args.add_rpath.as_ref().map(|v| RpathEdit::Add(bytes(v)))
    };
    let replace_needed = args
        .replace_needed
        .chunks(2)
        .filter_map(|pair| match pair {
            [old, new] => Some((bytes(old), bytes(new))),
            _ => None,
        })
        .collect();
    Ok(Edits {
        os_abi: args.set_os_abi.as_deref().map(parse_os_abi).transpose()?,
        soname: args.set_soname.as_deref().map(bytes),
        interpreter: args.set_interpreter.as_deref().map(bytes),
        execstack: if args.set_execstack {
            Some(true)
        } else if args.clear_execstack {
            Some(false)
        } else {
            None
        },
        rpath,
        force_rpath: args.force_rpath,
        remove_needed: args.remove_needed.iter().map(|s| bytes(s)).collect(),
        replace_needed,
        add_needed: args.add_needed.iter().map(|s| bytes(s)).collect(),
        no_default_lib: args.no_default_lib,
        page_size: args.page_size,
    })
}

/// `--shrink-rpath`: keeps relative entries (`$ORIGIN/..`) and directories that hold one of the
/// file's NEEDED libraries built for the same machine; with `--allowed-rpath-prefixes`, absolute
/// directories must also start with one of the prefixes (patchelf's rules).
fn shrink_rpath(info: &ldfix_elf::read::ElfInfo, allowed: Option<&OsStr>) -> Option<Vec<u8>> {
    let current = info.runpath.as_ref().or(info.rpath.as_ref())?;
    let prefixes: Vec<&[u8]> = allowed
        .map(|a| {
            a.as_bytes()
                .split(|&b| b == b':')
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut kept: Vec<&[u8]> = Vec::new();
    for dir in current.split(|&b| b == b':').filter(|d| !d.is_empty()) {
        if dir.first() != Some(&b'/') {
            kept.push(dir);
            continue;
        }
        if !prefixes.is_empty() && !prefixes.iter().any(|p| dir.starts_with(p)) {
            continue;
        }
        let holds_needed = info.needed.iter().any(|lib| {
            let mut path = PathBuf::from(OsStr::from_bytes(dir));
            path.push(OsStr::from_bytes(lib));
            std::fs::read(&path)
                .ok()
                .and_then(|d| ldfix_elf::parse(&d).ok())
                .is_some_and(|l| l.machine == info.machine)
        });
        if holds_needed {
            kept.push(dir);
        }
    }
    Some(kept.join(&b':'))
}

/// What one file produced: lines for stdout, and the replacement waiting to be committed.
struct FileResult {
    printed: String,
    staged: Option<Staged>,
    growth: i64,
}

fn patch_one(path: &Path, args: &PatchArgs, base: &Edits) -> anyhow::Result<FileResult> {
    // Large files are mapped: the editor reads a few pages and copies the rest once.
    let contents = ldfix_elf::read::read_candidate(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if !contents.is_elf {
        bail!(
            "{}: not an ELF file (no \\x7fELF magic at offset 0x0)",
            path.display()
        );
    }
    let data: &[u8] = &contents.bytes;
    let wants_info = args.print_interpreter
        || args.print_os_abi
        || args.print_soname
        || args.print_rpath
        || args.print_execstack
        || args.print_needed
        || args.shrink_rpath;
    let info = if wants_info {
        Some(
            ldfix_elf::parse(data)
                .with_context(|| format!("{}: not a readable ELF file", path.display()))?,
        )
    } else {
        None
    };
    let mut printed = String::new();
    let mut edits = base.clone();
    if let Some(info) = &info {
        print_values(info, args, path, &mut printed)?;
        if args.shrink_rpath {
            edits.rpath =
                shrink_rpath(info, args.allowed_rpath_prefixes.as_deref()).map(RpathEdit::Set);
        }
    }
    let planned = ldfix_elf::edit::plan(data, &edits)
        .with_context(|| format!("{}: cannot patch", path.display()))?;
    let growth = planned
        .as_ref()
        .map_or(0, |n| n.len() as i64 - data.len() as i64);
    let staged = match (&args.output, &planned) {
        (Some(out), Some(planned)) => {
            let bytes = planned.to_vec(data);
            planned
                .check(data, &bytes)
                .with_context(|| format!("{}: cannot patch", path.display()))?;
            write_new_file(out, &bytes, path)?;
            None
        }
        (Some(out), None) => {
            write_new_file(out, data, path)?;
            None
        }
        (None, Some(planned)) => Some(stage_edit(path, data, planned, WriteOptions::default())?),
        (None, None) => None,
    };
    Ok(FileResult {
        printed,
        staged,
        growth,
    })
}

/// The `--print-*` values in patchelf's order; they show the file before any edit.
fn print_values(
    info: &ldfix_elf::read::ElfInfo,
    args: &PatchArgs,
    path: &Path,
    printed: &mut String,
) -> anyhow::Result<()> {
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if args.print_interpreter {
        let interp = info.interpreter.as_ref().ok_or_else(|| {
            anyhow!(
                "{}: no interpreter (PT_INTERP) in this file",
                path.display()
            )
        })?;
        printed.push_str(&show(interp));
        printed.push('\n');
    }
    if args.print_os_abi {
        printed.push_str(&os_abi_name(info.os_abi));
        printed.push('\n');
    }
    if args.print_soname {
        let soname = info
            .soname
            .as_ref()
            .ok_or_else(|| anyhow!("{}: no DT_SONAME in this file", path.display()))?;
        printed.push_str(&show(soname));
        printed.push('\n');
    }
    if args.print_rpath {
        let rpath = info.runpath.as_ref().or(info.rpath.as_ref());
        printed.push_str(&show(rpath.map_or(&[][..], |v| v)));
        printed.push('\n');
    }
    if args.print_execstack {
        // A missing PT_GNU_STACK means an executable stack.
        let x = info
            .segments
            .iter()
            .find(|s| s.p_type == PT_GNU_STACK)
            .is_none_or(|s| s.flags & 1 != 0);
        printed.push_str(if x {
            "execstack: X\n"
        } else {
            "execstack: -\n"
        });
    }
    if args.print_needed {
        for n in &info.needed {
            printed.push_str(&show(n));
            printed.push('\n');
        }
    }
    Ok(())
}

/// PT_GNU_STACK (elf.h).
const PT_GNU_STACK: u32 = 0x6474_e551;

pub(crate) fn run(args: &PatchArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let base = edits_from(args)?;
    let results: Vec<(PathBuf, anyhow::Result<FileResult>)> = args
        .files
        .par_iter()
        .map(|p| (p.clone(), patch_one(p, args, &base)))
        .collect();
    let mut outcome = Outcome::Success;
    let mut out = String::new();
    // Every replacement is made durable together, then renamed into place.
    let mut staged = Vec::new();
    for (path, result) in results {
        match result {
            Ok(r) => {
                out.push_str(&r.printed);
                if let Some(s) = r.staged {
                    printer.verbose(&format!(
                        "{}: patched ({:+} bytes)",
                        path.display(),
                        r.growth
                    ));
                    staged.push((path, s));
                } else {
                    printer.verbose(&format!("{}: unchanged", path.display()));
                }
            }
            Err(e) => {
                printer.error(&e);
                outcome = Outcome::Error;
            }
        }
    }
    let (paths, staged): (Vec<PathBuf>, Vec<Staged>) = staged.into_iter().unzip();
    for (path, result) in paths.iter().zip(commit(staged)) {
        if let Err(e) = result {
            printer
                .error(&anyhow::Error::new(e).context(format!("{}: cannot write", path.display())));
            outcome = Outcome::Error;
        }
    }
    printer.data(&out)?;
    Ok(outcome)
}
