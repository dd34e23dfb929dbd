//! Programs and libraries built by gcc at test time, in every shape the loader distinguishes,
//! read back through `ldfix_elf::parse`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use common::{gcc, run, without_section_headers};
use ldfix_elf::{parse_file, Class, ElfInfo, Endian, FileKind, LibcFlavour};

const HELLO: &str = r#"
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
"#;

const LIB: &str = r#"
int foo_old(void) { return 1; }
int foo_new(void) { return 2; }
"#;

const LIB_MAP: &str =
    "FOO_1.0 { global: foo_old; local: *; };\nFOO_2.0 { global: foo_new; } FOO_1.0;\n";

const USES_LIB: &str = r#"
#include <stdio.h>
int foo_new(void);
int main(void) { printf("%d\n", foo_new()); return 0; }
"#;

/// A program carrying an FDO dlopen metadata note.
fn dlopen_note_program() -> String {
    format!(
        "#include <stdio.h>\n{}int main(void) {{ puts(\"hello\"); return 0; }}\n",
        ldfix_testworld::fixtures::dlopen_note_c(
            r#"[{\"feature\":\"compression\",\"description\":\"zstd support\",\"priority\":\"recommended\",\"soname\":[\"libzstd.so.1\",\"libzstd.so\"]}]"#
        )
    )
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn parse(path: &Path) -> ElfInfo {
    parse_file(path).unwrap_or_else(|e| panic!("{e}"))
}

fn libc_versions(info: &ElfInfo) -> Vec<String> {
    info.version_needs
        .iter()
        .find(|n| n.file == b"libc.so.6")
        .map(|n| {
            n.versions
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn runs(path: &Path, env: &[(&str, &Path)]) -> String {
    let mut command = Command::new(path);
    for (name, value) in env {
        command.env(name, value);
    }
    String::from_utf8(run(&mut command).stdout).unwrap()
}

#[test]
fn pie_and_no_pie_executables() {
    let dir = tempfile::tempdir().unwrap();
    let pie = gcc(dir.path(), "pie", HELLO, &[os("-pie"), os("-fPIE")]);
    let nopie = gcc(dir.path(), "nopie", HELLO, &[os("-no-pie"), os("-fno-PIE")]);
    for (path, kind, e_type) in [(&pie, FileKind::Pie, 3), (&nopie, FileKind::Executable, 2)] {
        assert_eq!(runs(path, &[]), "hello\n");
        let info = parse(path);
        assert_eq!(info.kind, kind, "{}", path.display());
        assert_eq!(info.e_type, e_type);
        assert_eq!((info.class, info.endian), (Class::Elf64, Endian::Little));
        assert_eq!(info.machine, object::elf::EM_X86_64.0);
        assert_eq!(
            info.interpreter.as_deref(),
            Some(&b"/lib64/ld-linux-x86-64.so.2"[..])
        );
        assert_eq!(info.needed, vec![b"libc.so.6".to_vec()]);
        assert_eq!(info.libc, LibcFlavour::Glibc);
        assert!(libc_versions(&info).contains(&"GLIBC_2.2.5".to_owned()));
        assert!(info.max_glibc.is_some());
        assert_eq!(
            info.build_id.as_ref().map(Vec::len),
            Some(20),
            "gcc's default build-id is sha1"
        );
        assert!(info.has_section_headers);
        assert_eq!(info.trailing_bytes, 0);
        assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    }
    assert_ne!(parse(&pie).flags_1 & object::elf::DF_1_PIE.0, 0);
}

#[test]
fn static_and_static_pie() {
    let dir = tempfile::tempdir().unwrap();
    let stat = gcc(dir.path(), "static", HELLO, &[os("-static")]);
    let spie = gcc(dir.path(), "static-pie", HELLO, &[os("-static-pie")]);
    for (path, kind) in [
        (&stat, FileKind::StaticExecutable),
        (&spie, FileKind::StaticPie),
    ] {
        assert_eq!(runs(path, &[]), "hello\n");
        let info = parse(path);
        assert_eq!(info.kind, kind, "{}", path.display());
        assert_eq!(info.interpreter, None);
        assert!(info.needed.is_empty());
        assert_eq!(info.libc, LibcFlavour::None);
        assert!(info.version_needs.is_empty());
    }
    assert!(parse(&stat).dynamic.is_empty());
    assert!(
        !parse(&spie).dynamic.is_empty(),
        "static-pie keeps a dynamic table for its own relocation"
    );
}

/// A library with a SONAME and version definitions, used through RPATH and through RUNPATH.
#[test]
fn library_with_versions_rpath_and_runpath() {
    let dir = tempfile::tempdir().unwrap();
    let libdir = dir.path().join("lib");
    std::fs::create_dir(&libdir).unwrap();
    std::fs::write(dir.path().join("foo.map"), LIB_MAP).unwrap();
    let lib = gcc(
        &libdir,
        "libfoo.so.1",
        LIB,
        &[
            os("-shared"),
            os("-fPIC"),
            os("-Wl,-soname,libfoo.so.1"),
            os("-Wl,--version-script=../foo.map"),
        ],
    );
    let info = parse(&lib);
    assert_eq!(info.kind, FileKind::SharedLibrary);
    assert_eq!(info.soname.as_deref(), Some(&b"libfoo.so.1"[..]));
    assert_eq!(
        info.version_defs,
        vec![
            b"libfoo.so.1".to_vec(),
            b"FOO_1.0".to_vec(),
            b"FOO_2.0".to_vec()
        ]
    );

    let link = |name: &str, dtags: &str| {
        gcc(
            dir.path(),
            name,
            USES_LIB,
            &[
                os("-Llib"),
                os("-lfoo"),
                os("-Wl,-rpath,$ORIGIN/lib"),
                os(dtags),
            ],
        )
    };
    std::os::unix::fs::symlink("libfoo.so.1", libdir.join("libfoo.so")).unwrap();
    let with_rpath = link("with-rpath", "-Wl,--disable-new-dtags");
    let with_runpath = link("with-runpath", "-Wl,--enable-new-dtags");
    for path in [&with_rpath, &with_runpath] {
        assert_eq!(runs(path, &[]), "2\n", "found through $ORIGIN/lib");
        let info = parse(path);
        assert_eq!(
            info.needed,
            vec![b"libfoo.so.1".to_vec(), b"libc.so.6".to_vec()]
        );
        let foo = info
            .version_needs
            .iter()
            .find(|n| n.file == b"libfoo.so.1")
            .unwrap();
        assert_eq!(foo.versions, vec![b"FOO_2.0".to_vec()]);
    }
    let rpath = parse(&with_rpath);
    assert_eq!(
        (rpath.rpath.as_deref(), rpath.runpath.as_deref()),
        (Some(&b"$ORIGIN/lib"[..]), None)
    );
    let runpath = parse(&with_runpath);
    assert_eq!(
        (runpath.rpath.as_deref(), runpath.runpath.as_deref()),
        (None, Some(&b"$ORIGIN/lib"[..]))
    );
}

/// Stripping and removing the section header table change nothing the loader sees.
#[test]
fn stripped_and_without_section_headers() {
    let dir = tempfile::tempdir().unwrap();
    let orig = gcc(
        dir.path(),
        "orig",
        HELLO,
        &[os("-Wl,-rpath,/opt/x"), os("-Wl,-z,now")],
    );
    let stripped = dir.path().join("stripped");
    run(Command::new("strip").arg("-o").arg(&stripped).arg(&orig));
    let bare = dir.path().join("bare");
    without_section_headers(&stripped, &bare);
    let readelf = run(Command::new("readelf").arg("-S").arg(&bare));
    assert!(String::from_utf8_lossy(&readelf.stdout).contains("There are no sections"));
    assert_eq!(runs(&bare, &[]), "hello\n");

    let base = parse(&orig);
    for path in [&stripped, &bare] {
        let info = parse(path);
        assert_eq!(info.interpreter, base.interpreter);
        assert_eq!(info.needed, base.needed);
        assert_eq!(info.runpath, base.runpath);
        assert_eq!(info.flags, base.flags);
        assert_eq!(info.flags_1, base.flags_1);
        assert_eq!(info.version_needs, base.version_needs);
        assert_eq!(info.build_id, base.build_id, "build-id is in a PT_NOTE");
        assert_eq!(info.kind, base.kind);
    }
    assert!(!parse(&bare).has_section_headers);
    // Without the table, the section names and the table itself are unreferenced bytes.
    assert!(parse(&bare).trailing_bytes > 0);
    assert_eq!(parse(&stripped).trailing_bytes, 0);
}

#[test]
fn trailing_payload_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let orig = gcc(dir.path(), "orig", HELLO, &[]);
    let packed = dir.path().join("packed");
    let mut data = std::fs::read(&orig).unwrap();
    let len = data.len() as u64;
    data.extend(std::iter::repeat_n(0xa5u8, 12_345));
    std::fs::write(&packed, &data).unwrap();
    std::fs::set_permissions(&packed, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(
        runs(&packed, &[]),
        "hello\n",
        "the kernel ignores appended bytes"
    );
    let info = parse(&packed);
    assert_eq!(info.trailing_bytes, 12_345);
    assert_eq!(info.referenced_end, len);
}

#[test]
fn dlopen_note() {
    let dir = tempfile::tempdir().unwrap();
    let prog = gcc(dir.path(), "dl", &dlopen_note_program(), &[]);
    // readelf exits 1 on a note type it does not know, after printing it.
    let notes = Command::new("readelf")
        .arg("-n")
        .arg(&prog)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&notes.stdout).contains("FDO"),
        "readelf sees the note"
    );
    let bare = dir.path().join("bare");
    without_section_headers(&prog, &bare);
    for path in [&prog, &bare] {
        let info = parse(path);
        assert_eq!(info.dlopen.len(), 1, "{:?}", info.warnings);
        let entry = &info.dlopen[0];
        assert_eq!(entry.feature.as_deref(), Some("compression"));
        assert_eq!(entry.priority.as_deref(), Some("recommended"));
        assert_eq!(
            entry.sonames,
            vec![b"libzstd.so.1".to_vec(), b"libzstd.so".to_vec()]
        );
    }
}

/// ELF names are bytes: an RPATH that is not UTF-8 comes back byte for byte.
#[test]
fn non_utf8_names() {
    let dir = tempfile::tempdir().unwrap();
    let rpath = OsStr::from_bytes(b"-Wl,-rpath,/opt/\xff\xfe/lib");
    let prog = gcc(
        dir.path(),
        "odd",
        HELLO,
        &[rpath, os("-Wl,-soname,lib\u{e9}.so")],
    );
    let info = parse(&prog);
    assert_eq!(info.runpath.as_deref(), Some(&b"/opt/\xff\xfe/lib"[..]));
    assert_eq!(info.soname.as_deref(), Some("lib\u{e9}.so".as_bytes()));
}

#[test]
fn musl_program() {
    common::require_tool("musl-gcc", "musl-tools");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.c");
    std::fs::write(&src, HELLO).unwrap();
    let prog = dir.path().join("m");
    run(Command::new("musl-gcc")
        .arg("-o")
        .arg(&prog)
        .arg(&src)
        .arg("-Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1"));
    let info = parse(&prog);
    assert_eq!(
        info.interpreter.as_deref(),
        Some(&b"/lib/ld-musl-x86_64.so.1"[..])
    );
    assert_eq!(info.libc, LibcFlavour::Musl);
    assert!(info.version_needs.is_empty(), "musl has no symbol versions");
    assert_eq!(info.max_glibc, None);
}

/// patchelf moves a grown `.dynstr` into a new segment, which may run on into the next PT_LOAD;
/// the names must still read as readelf and the loader see them.
#[test]
fn patchelf_relocated_string_table() {
    common::require_tool("patchelf", "patchelf");
    let dir = tempfile::tempdir().unwrap();
    let prog = gcc(dir.path(), "p", HELLO, &[]);
    let long = format!("/opt/{}/lib", "x".repeat(600));
    // Two calls: patchelf 0.14 given both flags at once writes the new NEEDED name into
    // DT_RUNPATH as well (readelf shows `Library runpath: [libm.so.6]`).
    run(Command::new("patchelf")
        .arg("--set-rpath")
        .arg(&long)
        .arg(&prog));
    run(Command::new("patchelf")
        .arg("--add-needed")
        .arg("libm.so.6")
        .arg(&prog));
    assert_eq!(runs(&prog, &[]), "hello\n");
    let info = parse(&prog);
    assert_eq!(info.runpath.as_deref(), Some(long.as_bytes()));
    assert!(
        info.needed.contains(&b"libm.so.6".to_vec()),
        "{:?}",
        info.needed
    );
    let readelf = run(Command::new("readelf").arg("-dW").arg(&prog));
    let text = String::from_utf8_lossy(&readelf.stdout);
    for name in &info.needed {
        assert!(text.contains(&format!(
            "Shared library: [{}]",
            String::from_utf8_lossy(name)
        )));
    }
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
}
