//! `ldfix undo`: restores what `ldfix fix` changed, byte for byte (issue #7).

use std::fmt::Write as _;

use crate::cli::UndoArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(args: &UndoArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let machine = super::fix::machine();
    let report = ldfix_fix::undo(&args.paths, &machine)?;
    let mut out = String::new();
    for f in &report.restored {
        let _ = writeln!(out, "restored: {f}");
    }
    for f in &report.modified {
        let _ = writeln!(
            out,
            "left alone: {f}: changed since `ldfix fix` wrote it (upgraded?)"
        );
    }
    for f in &report.gone {
        let _ = writeln!(out, "gone: {f}");
    }
    for e in &report.errors {
        printer.warn(e);
    }
    if !report.unrooted.is_empty() {
        let _ = writeln!(out, "removed GC roots: {}", report.unrooted.join(", "));
    }
    let _ = writeln!(out, "{} files restored", report.restored.len());
    printer.data(&out)?;
    Ok(if report.modified.is_empty() && report.errors.is_empty() {
        Outcome::Success
    } else {
        Outcome::NeedsAttention
    })
}
