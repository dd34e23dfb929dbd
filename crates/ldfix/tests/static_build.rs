//! The static ldfix: it must run where foreign binaries cannot, so it has no interpreter, no
//! NEEDED libraries, and no path into NSS (`getpwuid` and friends would dlopen the host's
//! `libnss_*`, which on the machines ldfix is for is exactly what cannot work).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

mod common;

use std::process::Command;

use common::static_ldfix;

fn tool_output(tool: &str, args: &[&str], install_hint: &str) -> String {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {tool} ({error}); install it: {install_hint}"));
    assert!(output.status.success(), "{tool} {args:?} failed");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn static_binary_has_no_interpreter_and_no_needed_libraries() {
    let bin = static_ldfix();
    let bin = bin.to_str().unwrap();
    let headers = tool_output("readelf", &["-lW", bin], "apt-get install binutils");
    assert!(
        headers.contains("LOAD"),
        "readelf shows no LOAD segment:\n{headers}"
    );
    assert!(
        !headers.contains("INTERP"),
        "static ldfix has PT_INTERP:\n{headers}"
    );
    let dynamic = tool_output("readelf", &["-dW", bin], "apt-get install binutils");
    assert!(
        !dynamic.contains("(NEEDED)"),
        "static ldfix needs libraries:\n{dynamic}"
    );
}

#[test]
fn static_binary_never_reaches_nss() {
    let bin = static_ldfix();
    // Defined symbols only: glibc's static fork leaves unresolved references to
    // `__nss_database_fork_*` that are never called when NSS is not linked in.
    let symbols = tool_output(
        "nm",
        &["--defined-only", bin.to_str().unwrap()],
        "apt-get install binutils",
    );
    assert!(
        symbols.lines().count() > 1000,
        "nm found too few symbols to judge"
    );
    let nss: Vec<&str> = symbols
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .filter(|name| {
            // getgroups(2) is a plain system call; these are the NSS-backed lookups.
            [
                "getpw",
                "getgrnam",
                "getgrgid",
                "getgrent",
                "getgrouplist",
                "initgroups",
                "getspnam",
                "getlogin",
                "gethostbyname",
                "getaddrinfo",
                "__nss_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        })
        .collect();
    assert!(
        nss.is_empty(),
        "static ldfix links NSS entry points: {nss:?}"
    );
}

#[test]
fn static_binary_runs_without_home_or_any_environment() {
    let bin = static_ldfix();
    let output = Command::new(&bin)
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("ldfix {}", env!("CARGO_PKG_VERSION"))
    );
}
