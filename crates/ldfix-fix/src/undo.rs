//! `undo`: restores the files `fix` changed, newest change first, each only when it is exactly
//! what `fix` wrote; then removes the GC roots once nothing of the tree refers to them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::engine::Machine;
use crate::error::FixError;
use crate::journal::{Journal, Record, STATE_DIR};
use crate::report::UndoReport;
use crate::roots::Roots;
use crate::write::{replace_file, WriteOptions};

/// The directory holding the journal for `path`: `path` itself or the nearest parent with one.
fn find_root(path: &Path) -> Option<PathBuf> {
    let start = if path.is_dir() {
        Some(path)
    } else {
        path.parent()
    };
    let mut dir = start;
    while let Some(d) = dir {
        if d.join(STATE_DIR).join("journal").is_file() {
            return Some(d.to_owned());
        }
        dir = d.parent();
    }
    None
}

/// Restores the files under each of `paths`.
pub fn undo(paths: &[PathBuf], machine: &Machine) -> Result<UndoReport, FixError> {
    let mut report = UndoReport::default();
    for path in paths {
        let path = std::fs::canonicalize(path).map_err(|source| FixError::Read {
            path: path.clone(),
            source,
        })?;
        let Some(root) = find_root(&path) else {
            return Err(FixError::NoJournal { path });
        };
        undo_tree(&root, &path, machine, &mut report)?;
    }
    Ok(report)
}

fn undo_tree(
    root: &Path,
    only: &Path,
    machine: &Machine,
    report: &mut UndoReport,
) -> Result<(), FixError> {
    let journal = Journal::of_tree(root);
    let records = journal.records()?;
    let mut keep: Vec<Record> = Vec::new();
    // Files whose newer change could not be undone: their older records stay too.
    let mut stuck: BTreeSet<PathBuf> = BTreeSet::new();
    let mut kept_rev: Vec<Record> = Vec::new();
    for record in records.iter().rev() {
        let Some(rel) = record.rel_path() else {
            kept_rev.push(record.clone());
            continue;
        };
        let file = root.join(&rel);
        if !file.starts_with(only) || stuck.contains(&file) {
            kept_rev.push(record.clone());
            continue;
        }
        let shown = file.display().to_string();
        let data = match std::fs::read(&file) {
            Ok(d) => d,
            Err(_) => {
                report.gone.push(shown);
                continue;
            }
        };
        if record.is_original(&data) {
            // Journaled, but the run stopped before the rename.
            if !report.already_original.contains(&shown) && !report.restored.contains(&shown) {
                report.already_original.push(shown);
            }
            continue;
        }
        if !record.is_written(&data) {
            report.modified.push(shown);
            stuck.insert(file);
            kept_rev.push(record.clone());
            continue;
        }
        let Some(original) = record.restore(&data) else {
            report.errors.push(format!(
                "{shown}: the journal record does not restore the original (hash mismatch)"
            ));
            stuck.insert(file);
            kept_rev.push(record.clone());
            continue;
        };
        match replace_file(
            &file,
            &original,
            WriteOptions {
                split_hard_links: true,
            },
        ) {
            Ok(()) => {
                report.already_original.retain(|s| s != &shown);
                if !report.restored.contains(&shown) {
                    report.restored.push(shown);
                }
            }
            Err(e) => {
                report.errors.push(e.to_string());
                stuck.insert(file);
                kept_rev.push(record.clone());
            }
        }
    }
    keep.extend(kept_rev.into_iter().rev());
    journal.rewrite(&keep)?;
    if keep.is_empty() {
        let roots = Roots::new(root, machine.nix.as_ref(), &machine.gcroots_auto);
        report
            .unrooted
            .extend(roots.remove_all().iter().map(|p| p.display().to_string()));
        let _ = std::fs::remove_dir(journal.dir());
    }
    Ok(())
}
