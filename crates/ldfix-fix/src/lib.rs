//! Diagnose -> plan -> apply (atomic, journaled) -> undo.

pub mod write;
