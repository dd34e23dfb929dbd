//! The editor's errors. Structural problems in the input are the read model's [`ReadError`]
//! (which names the structure and its offset); this adds what only editing can hit.

use crate::read::ReadError;

/// Why an edit could not be made. The file on disk is never touched when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The input is truncated or malformed.
    #[error(transparent)]
    Read(#[from] ReadError),
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
        EditError::Read(ReadError::Truncated {
            what,
            offset,
            size,
            file_len: data.len() as u64,
        })
    }

    pub(crate) fn malformed(what: &'static str, offset: u64, problem: impl Into<String>) -> Self {
        EditError::Read(ReadError::Malformed {
            what,
            offset,
            problem: problem.into(),
        })
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
