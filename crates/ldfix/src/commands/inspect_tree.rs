//! `ldfix inspect --tree`: the resolved dependency tree (issue #4).

use crate::cli::InspectArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &InspectArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("inspect --tree", 4))
}
