//! `ldfix fix`.

use crate::cli::FixArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &FixArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("fix", 7))
}
