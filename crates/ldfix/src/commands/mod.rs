//! One module per subcommand. Each takes its parsed arguments and the printer, and returns how it
//! ended; errors propagate to `main`, which prints them and picks the exit status.

pub(crate) mod fix;
pub(crate) mod inspect;
pub(crate) mod inspect_tree;
pub(crate) mod locate;
pub(crate) mod patch;
pub(crate) mod run;
pub(crate) mod undo;
