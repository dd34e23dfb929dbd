//! Fuzzes the read model: `parse` and the content checks `inspect` runs on untrusted files.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = ldfix_elf::parse(data) {
        // Derived values must be consistent with the data they came from.
        assert!(info.referenced_end.saturating_add(info.trailing_bytes) >= info.file_size);
        let _ = info.machine_name();
    }
    let _ = ldfix_elf::read::classify_interpreter(data);
    let _ = ldfix_elf::read::parse_shebang(data);
});
