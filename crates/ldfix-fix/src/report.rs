//! What `fix`, `fix --check`, `fix --dry-run` and `undo` found and did, for the printer and
//! `--json`. Paths and ELF names are shown lossily here; the journal keeps them as bytes.

use serde::Serialize;

/// The result of one `fix` run over one or more trees.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The trees, as given (canonical).
    pub trees: Vec<String>,
    /// ELF files examined.
    pub elf_files: usize,
    /// The glibc loaders given to executables, with the reason.
    pub loaders: Vec<LoaderChoice>,
    /// Planned (dry run, check) or applied changes, file by file.
    pub changes: Vec<Change>,
    /// Libraries nobody on this machine provides.
    pub missing: Vec<Missing>,
    /// `#!` scripts whose interpreter does not exist and cannot be found in the profiles.
    pub scripts: Vec<Problem>,
    /// `.note.dlopen` dependencies.
    pub dlopen: Vec<DlopenDep>,
    /// Files left alone, with the reason (other architecture, musl without a musl loader, …).
    pub refused: Vec<Problem>,
    /// Plans that the re-resolution rejected because they broke a dependency.
    pub rejected: Vec<Problem>,
    /// Run path entries or interpreters pointing to store paths that no longer exist.
    pub dangling: Vec<Problem>,
    /// GC-root problems (`--check`), or roots that could not protect the tree.
    pub roots: Vec<String>,
    /// Store paths rooted in this run.
    pub rooted: Vec<String>,
    /// Store paths whose roots were dropped (`--update`).
    pub unrooted: Vec<String>,
    /// Other warnings.
    pub warnings: Vec<String>,
    /// Files written (ELF files and scripts).
    pub written: usize,
    /// Of those, `#!` scripts.
    pub scripts_written: usize,
}

impl Report {
    /// Whether something needs the user's attention once the run is over (exit 1). In check
    /// mode, pending changes count too.
    pub fn needs_attention(&self, check: bool) -> bool {
        (check && !self.changes.is_empty())
            || !self.missing.is_empty()
            || !self.scripts.is_empty()
            || !self.refused.is_empty()
            || !self.rejected.is_empty()
            || (check && !self.dangling.is_empty())
            || !self.roots.is_empty()
            || self
                .dlopen
                .iter()
                .any(|d| d.required && d.provider.is_none() && !d.resolved)
    }
}

/// The loader chosen for a group of executables.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderChoice {
    /// The loader (a canonical store path).
    pub loader: String,
    /// Its glibc version.
    pub glibc: String,
    /// Why this one.
    pub why: String,
}

/// One file's change.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// The file.
    pub file: String,
    /// Old and new PT_INTERP.
    pub interpreter: Option<(String, String)>,
    /// `RPATH` or `RUNPATH`, with the old and new value.
    pub run_path: Option<RunPathChange>,
    /// Why: the libraries each new run path entry provides, the interpreter problem.
    pub reasons: Vec<String>,
    /// A `#!` script (its interpreter line), not an ELF file.
    pub script: bool,
}

/// A run path change.
#[derive(Debug, Clone, Serialize)]
pub struct RunPathChange {
    /// `RPATH` or `RUNPATH`.
    pub tag: &'static str,
    /// Before (empty when there was none).
    pub old: String,
    /// After.
    pub new: String,
}

/// A library nobody on the machine provides.
#[derive(Debug, Clone, Serialize)]
pub struct Missing {
    /// The SONAME.
    pub soname: String,
    /// Files that need it.
    pub needed_by: Vec<String>,
    /// Symbol versions they need from it.
    pub versions: Vec<String>,
    /// The nixpkgs attribute that provides it, when known.
    pub nixpkgs: Option<String>,
    /// How to install it.
    pub install: Option<String>,
    /// Why no provider was taken (e.g. providers lack a version).
    pub why: String,
}

/// A file with a problem.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file.
    pub file: String,
    /// The problem.
    pub what: String,
}

/// A `.note.dlopen` dependency.
#[derive(Debug, Clone, Serialize)]
pub struct DlopenDep {
    /// The declaring file.
    pub file: String,
    /// The alternatives.
    pub sonames: Vec<String>,
    /// `required`, `recommended`, `suggested` (or unset).
    pub priority: String,
    /// Whether `required`.
    pub required: bool,
    /// Already loadable from the declaring file.
    pub resolved: bool,
    /// The directory added for it, if any.
    pub provider: Option<String>,
}

/// The result of `undo`.
#[derive(Debug, Default, Serialize)]
pub struct UndoReport {
    /// Files restored to their original bytes.
    pub restored: Vec<String>,
    /// Files left alone because they changed since `fix` wrote them.
    pub modified: Vec<String>,
    /// Files already original (a run killed before the rename).
    pub already_original: Vec<String>,
    /// Files named in the journal that no longer exist.
    pub gone: Vec<String>,
    /// Store paths whose GC roots were removed.
    pub unrooted: Vec<String>,
    /// Errors restoring individual files.
    pub errors: Vec<String>,
}
