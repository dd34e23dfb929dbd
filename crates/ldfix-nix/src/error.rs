use std::path::PathBuf;

/// Errors from reading the store or running the Nix CLI.
#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run `{program}`")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("no Nix CLI found (looked for `{program}` in PATH)")]
    NoCli { program: &'static str },
}
