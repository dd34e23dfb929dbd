//! The editor: computes the new bytes of an ELF file after patchelf-style edits.
