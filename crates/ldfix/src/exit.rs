//! The exit-status contract (see ARCHITECTURE.md, "Commands").

use std::process::ExitCode;

/// How a subcommand ended, as far as the exit status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Everything asked for was done; nothing needs attention.
    Success,
    /// The command worked, but something needs attention (missing libraries, `fix --check`).
    NeedsAttention,
    /// Usage or runtime error (already reported).
    Error,
    /// `ldfix run`: the command or its libraries were not found (as env(1): 127).
    RunNotFound,
    /// `ldfix run`: found, but could not be started (as env(1): 126).
    RunCannotStart,
    /// `ldfix run`: usage or internal error before the program started (as env(1): 125).
    RunInternalError,
}

impl Outcome {
    pub(crate) fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Success => 0,
            Outcome::NeedsAttention => 1,
            Outcome::Error => 2,
            Outcome::RunNotFound => 127,
            Outcome::RunCannotStart => 126,
            Outcome::RunInternalError => 125,
        })
    }
}
