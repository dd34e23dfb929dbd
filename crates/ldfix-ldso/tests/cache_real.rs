//! The cache parser against this machine's real `/etc/ld.so.cache` and `ldconfig -p`, and
//! against caches written by `ldconfig` itself in every format it can write.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use ldfix_ldso::cache::{CacheFormat, CacheQuery, LdCache};
use ldfix_ldso::RealFs;

fn ldconfig() -> &'static str {
    let path = "/sbin/ldconfig";
    assert!(
        Path::new(path).exists(),
        "ldconfig is missing: apt-get install -y libc-bin"
    );
    path
}

/// `ldconfig -p` lines: `\tNAME (FLAGS) => PATH`, as (name, path).
fn ldconfig_entries(cache: &Path) -> Vec<(String, String)> {
    ldconfig_listing(cache)
        .into_iter()
        .map(|(n, _, p)| (n, p))
        .collect()
}

/// `ldconfig -p` lines as (name, flags text, path).
fn ldconfig_listing(cache: &Path) -> Vec<(String, String, String)> {
    let out = Command::new(ldconfig())
        .arg("-p")
        .arg("-C")
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldconfig -p failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            let (left, path) = line.split_once(" => ")?;
            let (name, flags) = left.trim().split_once(' ')?;
            Some((name.to_string(), flags.to_string(), path.to_string()))
        })
        .collect()
}

fn x86_64_query() -> CacheQuery {
    CacheQuery {
        default_id: 0x303,
        accept_plain_elf: false,
        hwcaps: vec![b"x86-64-v3".to_vec(), b"x86-64-v2".to_vec()],
        isa_level: 0b111,
        legacy_hwcap: 1 << 1,
    }
}

#[test]
fn this_machines_cache_matches_ldconfig_p() {
    let path = Path::new("/etc/ld.so.cache");
    let cache = LdCache::read(&RealFs, path).unwrap();
    let ours: Vec<(String, String)> = cache
        .entries
        .iter()
        .map(|e| {
            (
                String::from_utf8_lossy(&e.key).into_owned(),
                String::from_utf8_lossy(&e.value).into_owned(),
            )
        })
        .collect();
    let theirs = ldconfig_entries(path);
    assert!(!theirs.is_empty());
    assert_eq!(ours, theirs);
    println!("{} entries agree", ours.len());
    // Every entry can be found again by its name.
    let query = x86_64_query();
    // The loader takes the first x86-64 entry of a name (this cache has no hwcaps entries).
    let listing = ldconfig_listing(path);
    for (name, _, _) in &listing {
        let hit = cache
            .lookup(name.as_bytes(), &query)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let first = listing
            .iter()
            .find(|(n, f, _)| n == name && f == "(libc6,x86-64)")
            .map(|(_, _, v)| v.clone());
        assert_eq!(hit, first, "lookup of {name}");
    }
    assert_eq!(cache.lookup(b"libdoes-not-exist.so.9", &query), None);
}

/// Builds a cache with ldconfig from a private configuration, in the given format.
fn build_cache(dir: &Path, format: &str) -> std::path::PathBuf {
    let conf = dir.join("ld.so.conf");
    std::fs::write(&conf, format!("{}\n", dir.join("lib").display())).unwrap();
    let cache = dir.join(format!("ld.so.cache.{format}"));
    let out = Command::new(ldconfig())
        .args(["-X", "-f"])
        .arg(&conf)
        .arg("-C")
        .arg(&cache)
        .args(["-c", format])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldconfig -c {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    cache
}

#[test]
fn caches_written_by_ldconfig_with_hwcaps_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let v3 = lib.join("glibc-hwcaps/x86-64-v3");
    let v2 = lib.join("glibc-hwcaps/x86-64-v2");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::create_dir_all(&v2).unwrap();
    // Real shared objects with a SONAME: copies of libz, whose SONAME is libz.so.1.
    let libz = Path::new("/lib/x86_64-linux-gnu/libz.so.1");
    assert!(
        libz.exists(),
        "zlib1g is missing: apt-get install -y zlib1g"
    );
    for d in [&lib, &v2, &v3] {
        std::fs::copy(libz, d.join("libz.so.1")).unwrap();
    }
    for format in ["new", "compat"] {
        let path = build_cache(dir.path(), format);
        let cache = LdCache::read(&RealFs, &path).unwrap();
        let want = if format == "new" {
            CacheFormat::New
        } else {
            CacheFormat::Compat
        };
        assert_eq!(cache.format, want);
        assert_eq!(cache.hwcaps.len(), 2, "{format}: {:?}", cache.hwcaps);
        let lookup = |query: &CacheQuery| {
            cache
                .lookup(b"libz.so.1", query)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let mut query = x86_64_query();
        if format == "compat" {
            // ldconfig writes the hwcaps name offsets relative to the new header, but the
            // loader reads them relative to the file (`glibc_hwcaps_compare` adds `cache`), as
            // does `ldconfig -p`, which prints `hwcap: ""`: no name matches, so the
            // glibc-hwcaps entries are never used with a compat cache.
            assert!(!cache.hwcaps.contains(&b"x86-64-v3".to_vec()));
            assert_eq!(
                lookup(&query),
                Some(lib.join("libz.so.1").display().to_string())
            );
            continue;
        }
        assert_eq!(
            lookup(&query),
            Some(v3.join("libz.so.1").display().to_string()),
            "{format}"
        );
        query.hwcaps = vec![b"x86-64-v2".to_vec()];
        assert_eq!(
            lookup(&query),
            Some(v2.join("libz.so.1").display().to_string()),
            "{format}"
        );
        query.hwcaps.clear();
        assert_eq!(
            lookup(&query),
            Some(lib.join("libz.so.1").display().to_string()),
            "{format}"
        );
        // The entries agree with ldconfig's own listing.
        let ours: Vec<String> = cache
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .collect();
        let theirs: Vec<String> = ldconfig_entries(&path)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(ours, theirs, "{format}");
    }
}
