//! One module per subcommand. Each takes its parsed arguments and the printer, and returns how it
//! ended; errors propagate to `main`, which prints them and picks the exit status.

pub(crate) mod fix;
pub(crate) mod inspect;
pub(crate) mod inspect_tree;
pub(crate) mod locate;
pub(crate) mod patch;
pub(crate) mod run;
pub(crate) mod undo;

/// The error of a subcommand whose issue has not landed yet.
pub(crate) fn not_yet_implemented(command: &str, issue: u32) -> anyhow::Error {
    anyhow::anyhow!("`ldfix {command}` is not yet implemented (tracked in issue #{issue})")
}
