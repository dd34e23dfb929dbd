//! `ldfix run`.

use crate::cli::RunArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &RunArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("run", 8))
}
