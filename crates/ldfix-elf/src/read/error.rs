//! The one error type of the read model.

use std::path::PathBuf;

/// Why an ELF file could not be read. Every variant names the structure and its file offset, so
/// that a user (or a fuzz crash report) can find the damaged bytes with a hex dump.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The first bytes are not `\x7fELF`.
    #[error("not an ELF file (no \\x7fELF magic at offset 0x0)")]
    NotElf,
    /// A structure extends past the end of the file.
    #[error(
        "truncated: {what} at offset {offset:#x} needs {size} bytes, but the file ends at {file_len:#x}"
    )]
    Truncated {
        /// The structure, e.g. "program header table".
        what: &'static str,
        /// Its file offset.
        offset: u64,
        /// Bytes it needs.
        size: u64,
        /// Length of the data.
        file_len: u64,
    },
    /// A structure is present but its contents are impossible.
    #[error("malformed {what} at offset {offset:#x}: {problem}")]
    Malformed {
        /// The structure, e.g. "dynamic section".
        what: &'static str,
        /// Its file offset.
        offset: u64,
        /// What is wrong, in plain words.
        problem: String,
    },
    /// The file could not be read at all.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A parse error, with the file it happened in.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: Box<ReadError>,
    },
}

impl ReadError {
    /// Adds the file name to a parse error.
    pub fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            ReadError::Io { .. } | ReadError::InFile { .. } => self,
            other => ReadError::InFile {
                path: path.into(),
                error: Box::new(other),
            },
        }
    }

    /// The error without the file name, for matching in callers.
    pub fn inner(&self) -> &ReadError {
        match self {
            ReadError::InFile { error, .. } => error.inner(),
            other => other,
        }
    }
}

pub(crate) fn malformed(what: &'static str, offset: u64, problem: impl Into<String>) -> ReadError {
    ReadError::Malformed {
        what,
        offset,
        problem: problem.into(),
    }
}
