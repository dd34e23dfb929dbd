//! Package name, version and output from a store path name, as nixpkgs writes them.

use std::cmp::Ordering;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Output names nixpkgs appends to a store path name (`gcc-13.2.0-lib`, `glibc-2.39-52-bin`).
/// A name without one of these is the default `out` output.
const OUTPUTS: &[&[u8]] = &[
    b"bin", b"data", b"debug", b"dev", b"devdoc", b"dist", b"doc", b"getent", b"info", b"lib",
    b"libgcc", b"man", b"modules", b"out", b"static", b"tools",
];

/// `pname`, `version` and `output` of a store path name, e.g. `gcc`, `13.2.0`, `lib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageName {
    pub pname: Vec<u8>,
    /// Empty when the name has no version (symlink farms, profiles, `hello-world` scripts).
    pub version: Vec<u8>,
    pub output: Vec<u8>,
}

impl PackageName {
    /// Splits like Nix's `builtins.parseDrvName` (the version starts at the first dash followed
    /// by a non-letter), after taking off a trailing output name.
    pub fn parse(name: &OsStr) -> Self {
        let mut bytes = name.as_bytes();
        let mut output: &[u8] = b"out";
        if let Some(dash) = bytes.iter().rposition(|&b| b == b'-') {
            let suffix = &bytes[dash + 1..];
            if OUTPUTS.contains(&suffix) {
                output = suffix;
                bytes = &bytes[..dash];
            }
        }
        let split = bytes
            .windows(2)
            .position(|w| w[0] == b'-' && !w[1].is_ascii_alphabetic());
        let (pname, version) = match split {
            Some(at) => (&bytes[..at], &bytes[at + 1..]),
            None => (bytes, &b""[..]),
        };
        Self {
            pname: pname.to_vec(),
            version: version.to_vec(),
            output: output.to_vec(),
        }
    }
}

/// Compares two versions the way Nix's `builtins.compareVersions` does: components split at
/// `.` and `-` and between digits and letters; numbers compare numerically, `pre` sorts before
/// everything, other strings lexically, and a number is newer than a string.
pub fn compare_versions(a: &[u8], b: &[u8]) -> Ordering {
    let (mut left, mut right) = (components(a), components(b));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (l, r) => {
                let ordering = compare_component(l.unwrap_or(b""), r.unwrap_or(b""));
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
        }
    }
}

fn components(version: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = version;
    std::iter::from_fn(move || {
        // As Nix's `nextComponent`: skip anything that is not a letter or digit, then take a run
        // of digits, or a run of anything up to a digit, `.` or `-`.
        let start = rest.iter().position(u8::is_ascii_alphanumeric)?;
        rest = &rest[start..];
        let digits = rest.first().is_some_and(u8::is_ascii_digit);
        let len = rest
            .iter()
            .position(|&b| {
                if digits {
                    !b.is_ascii_digit()
                } else {
                    b.is_ascii_digit() || b == b'.' || b == b'-'
                }
            })
            .unwrap_or(rest.len());
        let (component, tail) = rest.split_at(len);
        rest = tail;
        Some(component)
    })
}

fn compare_component(a: &[u8], b: &[u8]) -> Ordering {
    let is_number = |c: &[u8]| !c.is_empty() && c.iter().all(u8::is_ascii_digit);
    match (is_number(a), is_number(b)) {
        (true, true) => {
            let (a, b) = (trim_leading_zeros(a), trim_leading_zeros(b));
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        _ if a == b => Ordering::Equal,
        // Nix: an empty component (a shorter version) is older than anything but `pre`.
        _ if a == b"pre" => Ordering::Less,
        _ if b == b"pre" => Ordering::Greater,
        _ if a.is_empty() => Ordering::Less,
        _ if b.is_empty() => Ordering::Greater,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.cmp(b),
    }
}

fn trim_leading_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str) -> (String, String, String) {
        let p = PackageName::parse(OsStr::new(name));
        let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
        (s(p.pname), s(p.version), s(p.output))
    }

    #[test]
    fn parses_nixpkgs_names() {
        let cases = [
            ("zlib-1.3.1", ("zlib", "1.3.1", "out")),
            ("gcc-13.2.0-lib", ("gcc", "13.2.0", "lib")),
            ("gcc-13.2.0-libgcc", ("gcc", "13.2.0", "libgcc")),
            ("glibc-2.39-52", ("glibc", "2.39-52", "out")),
            ("glibc-2.39-52-bin", ("glibc", "2.39-52", "bin")),
            ("unixODBC-2.3.12", ("unixODBC", "2.3.12", "out")),
            (
                "util-linux-minimal-2.39.4-lib",
                ("util-linux-minimal", "2.39.4", "lib"),
            ),
            ("python3-3.11.9", ("python3", "3.11.9", "out")),
            ("system-path", ("system-path", "", "out")),
            ("nix-2.18.1-man", ("nix", "2.18.1", "man")),
        ];
        for (name, (pname, version, output)) in cases {
            assert_eq!(
                parsed(name),
                (pname.into(), version.into(), output.into()),
                "{name}"
            );
        }
    }

    #[test]
    fn compares_versions_like_nix() {
        use Ordering::{Equal, Greater, Less};
        let cases = [
            ("1.0", "2.3", Less),
            ("2.1", "2.3", Less),
            ("2.3", "2.3", Equal),
            ("2.5", "2.3", Greater),
            ("3.1", "2.3", Greater),
            ("2.3.1", "2.3", Greater),
            ("2.3.1", "2.3a", Greater),
            ("2.3pre1", "2.3", Less),
            ("2.3", "2.3pre1", Greater),
            ("2.10", "2.9", Greater),
            ("2.39-52", "2.39-5", Greater),
            ("3.0.13", "3.0.9", Greater),
            ("1.2.010", "1.2.9", Greater),
        ];
        for (a, b, expected) in cases {
            assert_eq!(
                compare_versions(a.as_bytes(), b.as_bytes()),
                expected,
                "{a} vs {b}"
            );
        }
    }
}
