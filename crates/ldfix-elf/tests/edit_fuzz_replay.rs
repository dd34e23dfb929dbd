//! Replays the editor's fuzz corpus and every crash found (`fuzz/corpus/edit`,
//! `fuzz/artifacts/edit`) on stable Rust, with the same checks as `fuzz/fuzz_targets/edit.rs`.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::{Path, PathBuf};

use ldfix_elf::edit::edit;

#[path = "../../../fuzz/fuzz_targets/edit_ops.rs"]
mod edit_ops;
use edit_ops::edits_for;

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn edit_fuzz_corpus_and_crashes_replay_without_panic() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = inputs(&fuzz.join("corpus/edit"));
    assert!(
        corpus.len() >= 8,
        "the edit fuzz corpus at {} is missing",
        fuzz.display()
    );
    let mut edited = 0;
    for path in corpus.iter().chain(&inputs(&fuzz.join("artifacts/edit"))) {
        let data = std::fs::read(path).unwrap();
        let Some((&sel, elf)) = data.split_first() else {
            continue;
        };
        if let Ok(Some(out)) = edit(elf, &edits_for(sel)) {
            assert!(ldfix_elf::parse(&out).is_ok(), "{}", path.display());
            edited += 1;
        }
    }
    // The seeds include real programs and libraries: some edits must succeed.
    assert!(edited > 0, "no corpus entry was edited");
}
