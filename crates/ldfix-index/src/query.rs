//! Ranked answers to "who provides this library for this program?".

use std::cmp::Ordering;

use ldfix_nix::compare_versions;

use crate::families::is_glibc_family;
use crate::index::Index;
use crate::library::Library;

/// What the program asking for a library is: providers must match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub machine: u16,
    /// 1 for ELFCLASS32, 2 for ELFCLASS64.
    pub class: u8,
    /// 1 little endian, 2 big endian.
    pub data: u8,
    /// `glibc`, `musl`, … as ldfix-elf names them; `unknown` matches anything.
    pub libc: String,
    /// Symbol versions the requester needs from this library (`GLIBCXX_3.4.30`, …).
    pub versions: Vec<Vec<u8>>,
    /// The `lib/` directory of the glibc behind the requester's interpreter. glibc-family
    /// libraries are offered from there and nowhere else; `None` offers none.
    pub glibc_dir: Option<std::path::PathBuf>,
}

impl Requester {
    /// A 64-bit little-endian x86_64 glibc program, the common case on the machines ldfix is for.
    pub fn x86_64_glibc() -> Self {
        Self {
            machine: 62, // EM_X86_64
            class: 2,
            data: 1,
            libc: "glibc".into(),
            versions: Vec::new(),
            glibc_dir: None,
        }
    }
}

/// One provider with the facts that ranked it.
#[derive(Debug, Clone)]
pub struct Provider<'a> {
    pub library: &'a Library,
    /// Same machine, class, byte order and C library as the requester.
    pub compatible: bool,
    /// Versions the requester needs that this library does not define.
    pub missing_versions: Vec<Vec<u8>>,
}

impl<'a> Provider<'a> {
    /// How well `library` fits `requester`.
    fn judge(library: &'a Library, requester: &Requester) -> Self {
        Provider {
            library,
            compatible: compatible(library, requester),
            missing_versions: requester
                .versions
                .iter()
                .filter(|version| !library.defines_version(version))
                .cloned()
                .collect(),
        }
    }

    /// Whether this provider can serve the requester as it is.
    pub fn usable(&self) -> bool {
        self.compatible && self.missing_versions.is_empty()
    }
}

impl Index {
    /// Providers of `name` for `requester`, best first: compatible ones first; then by source
    /// (`--from`, system profile, user profiles, nix-ld, store); then those defining every
    /// needed symbol version; then the newest package version; then the newest build. glibc-family names are answered
    /// only from the requester's own glibc.
    pub fn lookup(&self, name: &[u8], requester: &Requester) -> Vec<Provider<'_>> {
        let glibc_family = is_glibc_family(name);
        let mut providers: Vec<Provider<'_>> = self
            .named(name)
            .filter(|library| {
                !glibc_family
                    || requester
                        .glibc_dir
                        .as_deref()
                        .is_some_and(|dir| library.real_dir_path() == dir)
            })
            .filter(|library| library.real_path().exists()) // collected since the scan
            .map(|library| Provider::judge(library, requester))
            .collect();
        providers.sort_by(rank);
        dedup_same_file(&mut providers);
        providers
    }
}

fn compatible(library: &Library, requester: &Requester) -> bool {
    let libc_matches = requester.libc == "unknown"
        || library.libc == "unknown"
        || library.libc == "none"
        || library.libc == requester.libc;
    library.machine == requester.machine
        && library.class == requester.class
        && library.data == requester.data
        && libc_matches
}

fn rank(a: &Provider<'_>, b: &Provider<'_>) -> Ordering {
    let key = |p: &Provider<'_>| (!p.compatible, p.library.source, p.missing_versions.len());
    key(a)
        .cmp(&key(b))
        .then_with(|| compare_versions(&b.library.version, &a.library.version))
        .then_with(|| b.library.built.cmp(&a.library.built))
        .then_with(|| a.library.real_path().cmp(&b.library.real_path()))
}

/// A profile entry and the store entry for the same real file are one provider; the better
/// ranked (the profile) is kept, so the answer lists each file once.
fn dedup_same_file(providers: &mut Vec<Provider<'_>>) {
    let mut seen = std::collections::HashSet::new();
    providers.retain(|p| seen.insert(p.library.real_path()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::SourceKind;

    fn lib(dir: &str, source: SourceKind, version: &str, defines: &[&str]) -> Library {
        Library {
            soname: b"libstdc++.so.6".to_vec(),
            file_name: b"libstdc++.so.6".to_vec(),
            dir: dir.as_bytes().to_vec(),
            real_dir: None,
            store_path_len: None,
            machine: 62,
            class: 2,
            data: 1,
            os_abi: 0,
            libc: "glibc".into(),
            defines: Library::encode_defines(defines.iter().map(|d| d.as_bytes())),
            pname: b"gcc".to_vec(),
            version: version.as_bytes().to_vec(),
            output: b"lib".to_vec(),
            source,
            built: 0,
        }
    }

    /// The ranking rules, without touching the filesystem for existence.
    fn ranked(libraries: Vec<Library>, requester: &Requester) -> Vec<String> {
        let index = Index::for_tests(libraries);
        let mut providers: Vec<Provider<'_>> = index
            .named(b"libstdc++.so.6")
            .map(|library| Provider::judge(library, requester))
            .collect();
        providers.sort_by(rank);
        providers
            .iter()
            .map(|p| String::from_utf8_lossy(&p.library.dir).into_owned())
            .collect()
    }

    #[test]
    fn source_order_then_versions_then_newest() {
        let libs = vec![
            lib(
                "/store/gcc12",
                SourceKind::Store,
                "12.3.0",
                &["GLIBCXX_3.4.30"],
            ),
            lib(
                "/store/gcc13",
                SourceKind::Store,
                "13.2.0",
                &["GLIBCXX_3.4.32"],
            ),
            lib(
                "/profile",
                SourceKind::UserProfile,
                "11.0",
                &["GLIBCXX_3.4.29"],
            ),
            lib("/from", SourceKind::From(0), "10.0", &[]),
            lib("/system", SourceKind::SystemProfile, "12.0", &[]),
        ];
        let plain = Requester::x86_64_glibc();
        assert_eq!(
            ranked(libs.clone(), &plain),
            [
                "/from",
                "/system",
                "/profile",
                "/store/gcc13",
                "/store/gcc12"
            ]
        );
        let needs = Requester {
            versions: vec![b"GLIBCXX_3.4.30".to_vec()],
            ..Requester::x86_64_glibc()
        };
        // Within the store, the one defining the needed version wins over the newer one.
        let store_only: Vec<_> = libs
            .into_iter()
            .filter(|l| l.source == SourceKind::Store)
            .collect();
        assert_eq!(ranked(store_only, &needs), ["/store/gcc12", "/store/gcc13"]);
    }

    #[test]
    fn incompatible_providers_rank_last() {
        let mut i386 = lib("/from32", SourceKind::From(0), "13.0", &[]);
        i386.machine = 3;
        i386.class = 1;
        let mut musl = lib("/musl", SourceKind::SystemProfile, "13.0", &[]);
        musl.libc = "musl".into();
        let store = lib("/store", SourceKind::Store, "12.0", &[]);
        assert_eq!(
            ranked(vec![i386, musl, store], &Requester::x86_64_glibc()),
            ["/store", "/from32", "/musl"]
        );
    }
}
