//! The operations the `edit` fuzz target applies, selected by the first input byte. Shared with
//! the stable replay test `crates/ldfix-elf/tests/edit_fuzz_replay.rs` through `#[path]`.

use ldfix_elf::edit::{Edits, RpathEdit};

/// The operations selected by the bits of `sel`, shared with the stable replay test.
pub(crate) fn edits_for(sel: u8) -> Edits {
    let mut e = Edits::default();
    if sel & 1 != 0 {
        e.rpath = Some(RpathEdit::Set(
            b"/a/long/enough/run/path/to/need/growth/0123456789".to_vec(),
        ));
    }
    if sel & 2 != 0 {
        e.interpreter = Some(b"/lib64/ld-linux-x86-64.so.2.with-a-longer-name".to_vec());
    }
    if sel & 4 != 0 {
        e.add_needed = vec![b"libadded.so.1".to_vec()];
    }
    if sel & 8 != 0 {
        e.remove_needed = vec![b"libc.so.6".to_vec(), b"libm.so.6".to_vec()];
    }
    if sel & 16 != 0 {
        e.replace_needed = vec![(b"libc.so.6".to_vec(), b"libc-renamed.so.6".to_vec())];
    }
    if sel & 32 != 0 {
        e.soname = Some(b"libsoname.so.9".to_vec());
    }
    if sel & 64 != 0 {
        e.execstack = Some(sel & 128 != 0);
        e.no_default_lib = true;
    }
    if sel & 128 != 0 && sel & 1 == 0 {
        e.rpath = Some(RpathEdit::Remove);
    }
    e
}
