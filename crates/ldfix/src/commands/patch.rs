//! `ldfix patch`.

use crate::cli::PatchArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &PatchArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("patch", 5))
}
