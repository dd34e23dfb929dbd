//! The one error type of the editor.

/// Why an edit could not be made. The file on disk is never touched when this is returned; every
/// variant names the structure and, where there is one, its file offset.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// A structure extends past the end of the file.
    #[error("truncated: {what} at offset {offset:#x} needs {size} bytes, but the file ends at {file_len:#x}")]
    Truncated {
        /// The structure.
        what: &'static str,
        /// Its file offset.
        offset: u64,
        /// Bytes it needs.
        size: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// A structure is present but its contents are impossible.
    #[error("malformed {what} at offset {offset:#x}: {problem}")]
    Malformed {
        /// The structure.
        what: &'static str,
        /// Its file offset.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// The file is valid but the edit cannot be made safely.
    #[error("cannot edit {what}: {problem}")]
    Unsupported {
        /// What was to be edited.
        what: &'static str,
        /// Why not.
        problem: String,
    },
    /// The edited result failed the checks run before writing; nothing was written.
    #[error("the edited file would be invalid ({problem}); the original is unchanged")]
    Invariant {
        /// The violated invariant.
        problem: String,
    },
}

impl EditError {
    pub(crate) fn truncated(what: &'static str, offset: u64, size: u64, data: &[u8]) -> Self {
        EditError::Truncated {
            what,
            offset,
            size,
            file_len: data.len() as u64,
        }
    }

    pub(crate) fn unsupported(what: &'static str, problem: impl Into<String>) -> Self {
        EditError::Unsupported {
            what,
            problem: problem.into(),
        }
    }

    pub(crate) fn invariant(problem: impl Into<String>) -> Self {
        EditError::Invariant {
            problem: problem.into(),
        }
    }
}
