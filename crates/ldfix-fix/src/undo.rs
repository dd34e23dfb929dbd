//! `undo`: restores the files `fix` changed, newest change first, each only when it is exactly
//! what `fix` wrote; then removes the GC roots once nothing of the tree refers to them.

use std::collections::BTreeMap;

use rayon::prelude::*;
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

/// What became of one file.
enum FileUndo {
    Restored,
    AlreadyOriginal,
    Gone,
    Modified,
    Failed(String),
}

/// Undoes the records of one file, newest first, in memory; writes the file once.
fn undo_file(file: &Path, records: &[&Record]) -> FileUndo {
    let Ok(mut data) = std::fs::read(file) else {
        return FileUndo::Gone;
    };
    let mut changed = false;
    for record in records.iter().rev() {
        if record.is_original(&data) {
            // Journaled, but the run stopped before the rename.
            continue;
        }
        if !record.is_written(&data) {
            return FileUndo::Modified;
        }
        match record.restore(&data) {
            Some(original) => {
                data = original;
                changed = true;
            }
            None => {
                return FileUndo::Failed(format!(
                    "{}: the journal record does not restore the original (hash mismatch)",
                    file.display()
                ))
            }
        }
    }
    if !changed {
        return FileUndo::AlreadyOriginal;
    }
    match replace_file(
        file,
        &data,
        WriteOptions {
            split_hard_links: true,
        },
    ) {
        Ok(()) => FileUndo::Restored,
        Err(e) => FileUndo::Failed(e.to_string()),
    }
}

fn undo_tree(
    root: &Path,
    only: &Path,
    machine: &Machine,
    report: &mut UndoReport,
) -> Result<(), FixError> {
    let journal = Journal::of_tree(root);
    let records = journal.records()?;
    let mut keep: Vec<usize> = Vec::new();
    let mut by_file: BTreeMap<PathBuf, Vec<usize>> = BTreeMap::new();
    for (n, record) in records.iter().enumerate() {
        match record.rel_path().map(|rel| root.join(rel)) {
            Some(file) if file.starts_with(only) => by_file.entry(file).or_default().push(n),
            _ => keep.push(n),
        }
    }
    let files: Vec<(&PathBuf, &Vec<usize>)> = by_file.iter().collect();
    // Files are independent; the writes wait on fsync, so many run at once.
    let run = |(file, ns): &(&PathBuf, &Vec<usize>)| {
        let recs: Vec<&Record> = ns.iter().filter_map(|n| records.get(*n)).collect();
        undo_file(file, &recs)
    };
    let outcomes: Vec<FileUndo> = match rayon::ThreadPoolBuilder::new().num_threads(16).build() {
        Ok(pool) => pool.install(|| files.par_iter().map(run).collect()),
        Err(_) => files.iter().map(run).collect(),
    };
    for ((file, ns), outcome) in files.iter().zip(outcomes) {
        let shown = file.display().to_string();
        match outcome {
            FileUndo::Restored => report.restored.push(shown),
            FileUndo::AlreadyOriginal => report.already_original.push(shown),
            FileUndo::Gone => report.gone.push(shown),
            FileUndo::Modified => {
                report.modified.push(shown);
                keep.extend(ns.iter().copied());
            }
            FileUndo::Failed(e) => {
                report.errors.push(e);
                keep.extend(ns.iter().copied());
            }
        }
    }
    keep.sort_unstable();
    let kept: Vec<Record> = keep
        .iter()
        .filter_map(|n| records.get(*n).cloned())
        .collect();
    journal.rewrite(&kept)?;
    if kept.is_empty() {
        let roots = Roots::new(root, machine.nix.as_ref(), &machine.gcroots_auto);
        report
            .unrooted
            .extend(roots.remove_all().iter().map(|p| p.display().to_string()));
        let _ = std::fs::remove_dir(journal.dir());
    }
    Ok(())
}
