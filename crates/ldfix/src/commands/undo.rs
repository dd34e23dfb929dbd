//! `ldfix undo`.

use crate::cli::UndoArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &UndoArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("undo", 7))
}
