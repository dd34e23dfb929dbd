//! Diagnose -> plan -> apply (atomic, journaled) -> undo.
