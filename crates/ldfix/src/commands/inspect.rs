//! `ldfix inspect`.

use crate::cli::InspectArgs;
use crate::exit::Outcome;
use crate::printer::Printer;

pub(crate) fn run(args: &InspectArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    if args.tree {
        return super::inspect_tree::run(args, printer);
    }
    Err(super::not_yet_implemented("inspect", 3))
}
