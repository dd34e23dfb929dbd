//! The `ldfix` binary: parse arguments, run one subcommand, map its outcome to an exit status.

mod cli;
mod commands;
mod dirs;
mod env_vars;
mod exit;
mod printer;
mod settings;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit::Outcome;
use crate::printer::Printer;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let printer = Printer::new(cli.global.verbose, cli.global.quiet);
    let is_run = matches!(cli.command, Command::Run(_));
    let result = match cli.command {
        Command::Inspect(args) => commands::inspect::run(&args, &printer),
        Command::Locate(args) => commands::locate::run(&args, &printer),
        Command::Patch(args) => commands::patch::run(&args, &printer),
        Command::Fix(args) => commands::fix::run(&args, &printer),
        Command::Undo(args) => commands::undo::run(&args, &printer),
        Command::Run(args) => commands::run::run(&args, &printer),
    };
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(error) => {
            printer.error(&error);
            if is_run {
                Outcome::RunInternalError.exit_code()
            } else {
                Outcome::Error.exit_code()
            }
        }
    }
}

/// Prints a clap error (or `--help`/`--version`) and picks the status: `ldfix run` reports usage
/// errors as env(1) does (125), every other subcommand with 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    // Printing can only fail on a closed stream, where there is nobody left to tell.
    let _ = error.print();
    if !error.use_stderr() {
        return ExitCode::SUCCESS;
    }
    let subcommand = std::env::args_os()
        .skip(1)
        .find(|arg| !arg.to_string_lossy().starts_with('-'));
    if subcommand.as_deref() == Some(std::ffi::OsStr::new("run")) {
        Outcome::RunInternalError.exit_code()
    } else {
        Outcome::Error.exit_code()
    }
}
