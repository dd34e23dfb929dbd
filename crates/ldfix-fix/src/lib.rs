//! Diagnose -> plan -> apply (atomic, journaled) -> undo.

mod engine;
mod error;
mod journal;
pub mod launch;
mod overlay;
mod report;
mod roots;
mod scripts;
mod undo;
mod walk;
pub mod write;
pub use engine::{fix, Event, Machine, Mode, Options, OPENGL_DRIVER_DIR, OPENGL_DRIVER_DIR_32};
pub use error::FixError;
pub use journal::{content_hash, Journal, Record, STATE_DIR};
pub use report::*;
pub use undo::undo;
