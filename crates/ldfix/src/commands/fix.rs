//! `ldfix fix`, `fix --check`, `fix --dry-run`, `fix --update` (issue #7). The work is
//! `ldfix-fix`'s; this module builds the machine description from the environment, shows
//! progress on a terminal, and prints the report (docs/fix.md).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use ldfix_fix::{Event, Machine, Mode, Options, Report};
use ldfix_ldso::Cpu;

use crate::cli::FixArgs;
use crate::exit::Outcome;
use crate::printer::Printer;
use crate::settings;

/// Changes listed one by one up to this many; beyond, a summary.
const LIST_LIMIT: usize = 40;

/// The machine as this process sees it.
pub(crate) fn machine() -> Machine {
    let store = settings::store_dir();
    let index = settings::index_config(Vec::new(), false);
    let state = store
        .path()
        .parent()
        .unwrap_or(Path::new("/nix"))
        .join("var/nix");
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        nix: index.nix.clone(),
        store,
        index,
        system_profile: PathBuf::from("/run/current-system/sw"),
        gcroots_auto: state.join("gcroots/auto"),
        cpu: Cpu::from_cpuinfo(&cpuinfo, std::env::consts::ARCH.as_bytes()),
    }
}

/// A one-line progress display on stderr, only on a terminal.
struct Progress {
    on: bool,
    phase: Mutex<(String, usize)>,
    done: AtomicUsize,
}

impl Progress {
    fn event(&self, e: Event<'_>) {
        if !self.on {
            return;
        }
        match e {
            Event::Start(what, total) => {
                if let Ok(mut p) = self.phase.lock() {
                    *p = (what.to_owned(), total);
                }
                self.done.store(0, Ordering::Relaxed);
            }
            Event::Step => {
                let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) {
                    if let Ok(p) = self.phase.lock() {
                        eprint!("\r{} {n}/{}   ", p.0, p.1);
                    }
                }
            }
            Event::Finish => eprint!("\r\x1b[K"),
        }
    }
}

pub(crate) fn run(args: &FixArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let mode = if args.check {
        Mode::Check
    } else if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Fix
    };
    let machine = machine();
    let progress = Progress {
        on: !args.json && std::io::stderr().is_terminal(),
        phase: Mutex::new((String::new(), 0)),
        done: AtomicUsize::new(0),
    };
    let report = ldfix_fix::fix(
        &args.paths,
        &machine,
        Options {
            mode,
            update: args.update,
        },
        &|e| progress.event(e),
    )?;
    if args.json {
        printer.data(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        printer.data(&render(&report, mode))?;
        for w in &report.warnings {
            printer.warn(w);
        }
    }
    Ok(if report.needs_attention(mode == Mode::Check) {
        Outcome::NeedsAttention
    } else {
        Outcome::Success
    })
}

fn render(report: &Report, mode: Mode) -> String {
    let mut out = String::new();
    let verb = match mode {
        Mode::Fix => "changed",
        Mode::Check => "needs fixing",
        Mode::DryRun => "would change",
    };
    for l in &report.loaders {
        let _ = writeln!(out, "loader {} (glibc {}): {}", l.loader, l.glibc, l.why);
    }
    for (n, c) in report.changes.iter().enumerate() {
        if n == LIST_LIMIT {
            let _ = writeln!(
                out,
                "… and {} more files",
                report.changes.len() - LIST_LIMIT
            );
            break;
        }
        let _ = writeln!(out, "{verb}: {}", c.file);
        if let Some((old, new)) = &c.interpreter {
            let _ = writeln!(out, "    interpreter {old} -> {new}");
        }
        if let Some(rp) = &c.run_path {
            let old = if rp.old.is_empty() { "(none)" } else { &rp.old };
            let _ = writeln!(out, "    {} {old} -> {}", rp.tag, rp.new);
        }
        for r in &c.reasons {
            let _ = writeln!(out, "    because {r}");
        }
    }
    for p in &report.rejected {
        let _ = writeln!(out, "rejected: {}: {}", p.file, p.what);
    }
    for p in &report.refused {
        let _ = writeln!(out, "not fixed: {}: {}", p.file, p.what);
    }
    for m in &report.missing {
        let _ = write!(
            out,
            "missing: {} (needed by {}",
            m.soname,
            m.needed_by.join(", ")
        );
        if !m.versions.is_empty() {
            let _ = write!(out, "; versions {}", m.versions.join(", "));
        }
        let _ = writeln!(out, "): {}", m.why);
        if let (Some(attr), Some(cmd)) = (&m.nixpkgs, &m.install) {
            let _ = writeln!(
                out,
                "    provided by {attr}: `{cmd}`, then run `ldfix fix` again"
            );
        }
    }
    for s in &report.scripts {
        let _ = writeln!(out, "script: {}: {}", s.file, s.what);
    }
    for d in &report.dlopen {
        let state = if d.resolved {
            "loadable".to_owned()
        } else if let Some(p) = &d.provider {
            format!("from {p}")
        } else {
            "not found".to_owned()
        };
        let _ = writeln!(
            out,
            "dlopen: {} may load {} ({}): {state}",
            d.file,
            d.sonames.join(" or "),
            if d.priority.is_empty() {
                "no priority"
            } else {
                &d.priority
            }
        );
    }
    for p in &report.dangling {
        let _ = writeln!(out, "dangling: {}: {}", p.file, p.what);
    }
    for r in &report.roots {
        let _ = writeln!(out, "gc-root: {r}");
    }
    if !report.unrooted.is_empty() {
        let _ = writeln!(out, "dropped GC roots: {}", report.unrooted.join(", "));
    }
    let trees = report.trees.join(", ");
    let planned_scripts = report.changes.iter().filter(|c| c.script).count();
    let planned_elf = report.changes.len() - planned_scripts;
    let and_scripts = |n: usize| match n {
        0 => String::new(),
        1 => " and 1 #! script".to_owned(),
        n => format!(" and {n} #! scripts"),
    };
    let _ = match mode {
        Mode::Fix => writeln!(
            out,
            "{} of {} ELF files{} changed in {trees}{}",
            report.written - report.scripts_written,
            report.elf_files,
            and_scripts(report.scripts_written),
            if report.written > 0 {
                format!("; undo with `ldfix undo {trees}`")
            } else {
                String::new()
            }
        ),
        Mode::DryRun => writeln!(
            out,
            "{planned_elf} of {} ELF files{} would change in {trees}",
            report.elf_files,
            and_scripts(planned_scripts)
        ),
        Mode::Check => writeln!(
            out,
            "{}: {planned_elf} of {} ELF files{} need fixing in {trees}",
            if report.needs_attention(true) {
                "needs attention"
            } else {
                "ok"
            },
            report.elf_files,
            and_scripts(planned_scripts)
        ),
    };
    out
}
