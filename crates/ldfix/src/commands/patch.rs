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
use ldfix_fix::write::{replace_file, write_new_file, WriteOptions};
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

/// What one file produced: lines for stdout, and whether it was changed.
struct FileResult {
    printed: String,
    changed: bool,
    growth: i64,
}

fn patch_one(path: &Path, args: &PatchArgs, base: &Edits) -> anyhow::Result<FileResult> {
    let data = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let info = ldfix_elf::parse(&data)
        .with_context(|| format!("{}: not a readable ELF file", path.display()))?;
    let mut printed = String::new();
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
        printed.push_str(&show(
            info.runpath
                .as_ref()
                .or(info.rpath.as_ref())
                .map_or(&[][..], |v| v),
        ));
        printed.push('\n');
    }
    if args.print_execstack {
        let stack = info.segments.iter().find(|s| s.p_type == PT_GNU_STACK);
        let x = match stack {
            Some(s) => s.flags & 1 != 0,
            None => true,
        };
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
    let mut edits = base.clone();
    if args.shrink_rpath {
        edits.rpath =
            shrink_rpath(&info, args.allowed_rpath_prefixes.as_deref()).map(RpathEdit::Set);
    }
    let new = ldfix_elf::edit::edit(&data, &edits)
        .with_context(|| format!("{}: cannot patch", path.display()))?;
    let growth = new
        .as_ref()
        .map_or(0, |n| n.len() as i64 - data.len() as i64);
    match (&args.output, &new) {
        (Some(out), Some(bytes)) => write_new_file(out, bytes, path)?,
        (Some(out), None) => write_new_file(out, &data, path)?,
        (None, Some(bytes)) => replace_file(path, bytes, WriteOptions::default())?,
        (None, None) => {}
    }
    Ok(FileResult {
        printed,
        changed: new.is_some(),
        growth,
    })
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
    for (path, result) in results {
        match result {
            Ok(r) => {
                out.push_str(&r.printed);
                if r.changed {
                    printer.verbose(&format!(
                        "{}: patched ({:+} bytes)",
                        path.display(),
                        r.growth
                    ));
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
    printer.data(&out)?;
    Ok(outcome)
}
