//! Fuzzes the editor: the first byte picks the operations, the rest is the ELF file. The editor
//! must return an error or a file that its own checks accepted; it must never panic.
#![no_main]

use ldfix_elf::edit::edit;
use libfuzzer_sys::fuzz_target;

#[path = "edit_ops.rs"]
mod edit_ops;
use edit_ops::edits_for;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, elf)) = data.split_first() else {
        return;
    };
    if let Ok(Some(out)) = edit(elf, &edits_for(sel)) {
        // What the editor returns must read back.
        assert!(ldfix_elf::parse(&out).is_ok());
    }
});
