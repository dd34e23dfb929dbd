//! `ldfix inspect`.

use crate::cli::InspectArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &InspectArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("inspect", 3))
}
