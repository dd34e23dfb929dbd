//! The built-in table from SONAME to the nixpkgs attribute and output that holds the file, for
//! libraries nobody on this machine provides. `data/nixpkgs-sonames.tsv` records the nixpkgs
//! revision it was checked against and how it was made (`docs/nixpkgs-table.md`).

use std::sync::OnceLock;

const TABLE: &str = include_str!("../data/nixpkgs-sonames.tsv");

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NixpkgsEntry {
    pub soname: &'static str,
    /// Attribute path at the recorded revision, e.g. `unixODBC`, `stdenv.cc.cc`.
    pub attribute: &'static str,
    /// Output holding the library, e.g. `out`, `lib`.
    pub output: &'static str,
    /// The nixpkgs file that defines the attribute.
    pub evidence: &'static str,
}

impl NixpkgsEntry {
    /// `nixpkgs#unixODBC`, or `nixpkgs#stdenv.cc.cc.lib` for a non-default output.
    pub fn installable(&self) -> String {
        if self.output == "out" {
            format!("nixpkgs#{}", self.attribute)
        } else {
            format!("nixpkgs#{}.{}", self.attribute, self.output)
        }
    }

    /// The command that installs the library for the current user.
    pub fn install_command(&self) -> String {
        format!("nix profile install {}", self.installable())
    }

    /// The NixOS configuration line that makes nix-ld provide it.
    pub fn nix_ld_line(&self) -> String {
        let expression = if self.output == "out" {
            self.attribute.to_owned()
        } else {
            format!("{}.{}", self.attribute, self.output)
        };
        format!("programs.nix-ld.libraries = with pkgs; [ {expression} ];")
    }
}

/// The nixpkgs revision the table was checked against (its `# revision:` header line).
pub fn revision() -> Option<&'static str> {
    TABLE
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .find_map(|line| line.trim().strip_prefix("revision:"))
        .map(str::trim)
}

/// Every row, in file order.
pub fn entries() -> &'static [NixpkgsEntry] {
    static ENTRIES: OnceLock<Vec<NixpkgsEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| TABLE.lines().filter_map(parse_row).collect())
}

/// The row for `soname`.
pub fn lookup(soname: &[u8]) -> Option<&'static NixpkgsEntry> {
    entries()
        .iter()
        .find(|entry| entry.soname.as_bytes() == soname)
}

fn parse_row(line: &'static str) -> Option<NixpkgsEntry> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut fields = line.split('\t');
    let entry = NixpkgsEntry {
        soname: fields.next()?,
        attribute: fields.next()?,
        output: fields.next()?,
        evidence: fields.next()?,
    };
    Some(entry)
}
