use std::path::PathBuf;

/// Errors from building, reading or writing the library index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the index cache {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot check which store paths are valid")]
    Nix(#[from] ldfix_nix::NixError),
}
