//! The only place that writes to stdout and stderr.
//!
//! stdout carries data (including `--json`); stderr carries progress, warnings, hints and errors.

use std::io::{self, Write};

/// Output policy chosen by `-v`/`-q`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    verbosity: i8,
}

impl Printer {
    pub(crate) fn new(verbose: u8, quiet: bool) -> Self {
        let verbosity = if quiet {
            -1
        } else {
            i8::try_from(verbose).unwrap_or(i8::MAX)
        };
        Self { verbosity }
    }

    /// Writes data to stdout. A closed pipe (`ldfix inspect … | head`) is not an error.
    pub(crate) fn data(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// A progress or status line, hidden by `--quiet`.
    pub(crate) fn info(&self, text: &str) {
        if self.verbosity >= 0 {
            eprintln!("{text}");
        }
    }

    /// Detail shown only with `-v`.
    pub(crate) fn verbose(&self, text: &str) {
        if self.verbosity >= 1 {
            eprintln!("{text}");
        }
    }

    /// A warning; shown even with `--quiet`, since it is about the result.
    pub(crate) fn warn(&self, text: &str) {
        eprintln!("warning: {text}");
    }

    /// An error with its chain of causes, one per line.
    pub(crate) fn error(&self, error: &anyhow::Error) {
        eprintln!("error: {error}");
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
}
