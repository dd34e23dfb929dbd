//! The one error type of `ldfix-fix`.

use std::path::PathBuf;

/// Why `fix` or `undo` could not do its job. File-level problems that leave the rest of the tree
/// fixable are not errors: they are reported in the [`crate::Report`].
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// A path given on the command line, or a directory of the tree, cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The journal or the GC-root directory cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The journal exists but is not one ldfix wrote.
    #[error("{}: line {line}: not an ldfix journal record: {why}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        why: String,
    },
    /// No journal was found for an `undo`.
    #[error("{}: no ldfix journal here or in a parent directory (nothing was fixed, or it was already undone)", path.display())]
    NoJournal {
        /// The path given.
        path: PathBuf,
    },
    /// The library index could not be built.
    #[error("cannot build the library index")]
    Index(#[from] ldfix_index::IndexError),
    /// `run`: the program cannot be read as an ELF file.
    #[error("cannot read the program {}: {why}", path.display())]
    Program {
        /// The program.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// `run`: no loader on this system fits the program.
    #[error("no dynamic loader {name} for this program was found on this system (the system's own, or one in the Nix store{glibc})")]
    NoLoader {
        /// The loader's file name (`ld-linux-x86-64.so.2`).
        name: String,
        /// ` with glibc X.Y or newer` when the program needs a minimum version, else empty.
        glibc: String,
    },
    /// `run`: the chosen loader cannot be read.
    #[error("cannot use the loader {}: {why}", path.display())]
    Loader {
        /// The loader.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// A file could not be replaced.
    #[error(transparent)]
    Replace(#[from] crate::write::WriteError),
}
