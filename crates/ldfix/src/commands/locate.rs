//! `ldfix locate`.

use crate::cli::LocateArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(_args: &LocateArgs, _printer: &Printer) -> anyhow::Result<Outcome> {
    Err(super::not_yet_implemented("locate", 6))
}
