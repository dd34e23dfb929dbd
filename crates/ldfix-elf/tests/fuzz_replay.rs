//! Replays the fuzz corpus and every crash the fuzzer ever found (`fuzz/corpus/read`,
//! `fuzz/artifacts/read`) through the read model on stable Rust: none may panic.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// The same checks as `fuzz/fuzz_targets/read.rs`.
fn exercise(data: &[u8]) {
    if let Ok(info) = ldfix_elf::parse(data) {
        assert!(info.referenced_end.saturating_add(info.trailing_bytes) >= info.file_size);
        let _ = info.machine_name();
    }
    let _ = ldfix_elf::read::classify_interpreter(data);
    let _ = ldfix_elf::read::parse_shebang(data);
}

#[test]
fn fuzz_corpus_and_crashes_replay_without_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = inputs(&fuzz.join("corpus/read"));
    assert!(
        corpus.len() >= 8,
        "the fuzz corpus at {} is missing",
        fuzz.display()
    );
    let crashes = inputs(&fuzz.join("artifacts/read"));
    for path in corpus.iter().chain(&crashes) {
        let data = std::fs::read(path).unwrap();
        exercise(&data);
    }
}
