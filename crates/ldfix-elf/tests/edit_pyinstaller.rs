//! A real PyInstaller onefile program still runs after a growing run path edit and after a new
//! interpreter, with its archive unchanged: PyInstaller 6 stores it in a `pydata` section that
//! the bootloader finds through the section headers (older versions appended it after the ELF
//! contents, which `trailing_payload_stays_at_the_end` in `edit.rs` covers).
#![allow(clippy::unwrap_used, reason = "test code: a panic is a failed test")]

use std::path::Path;
use std::process::Command;

#[test]
fn pyinstaller_onefile_keeps_working() {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let pyi = target.join("pyinstaller");
    assert!(
        pyi.join("PyInstaller").is_dir(),
        "PyInstaller is missing at {}; fetch it with: CARGO_TARGET_DIR=<target dir> bench/patch-fetch-patchelf.sh",
        pyi.display()
    );
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pyinstaller-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.py"), "print('onefile works')\n").unwrap();
    let out = Command::new("python3")
        .env("PYTHONPATH", &pyi)
        .current_dir(&dir)
        .args([
            "-m",
            "PyInstaller",
            "--onefile",
            "--distpath",
            "dist",
            "--workpath",
            "build",
            "--specpath",
            ".",
        ])
        .arg("hello.py")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = dir.join("dist/hello");
    let data = std::fs::read(&exe).unwrap();
    // Where the archive is: the `pydata` section, else the bytes after the ELF contents.
    let sections = String::from_utf8(
        Command::new("readelf")
            .args(["-SW"])
            .arg(&exe)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let archive = sections.lines().find(|l| l.contains(" pydata ")).map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let at = f.iter().position(|x| *x == "pydata").unwrap();
        let off = usize::from_str_radix(f[at + 3], 16).unwrap();
        let size = usize::from_str_radix(f[at + 4], 16).unwrap();
        (off, size)
    });
    let info = ldfix_elf::parse(&data).unwrap();
    let (off, size) =
        archive.unwrap_or((info.referenced_end as usize, info.trailing_bytes as usize));
    assert!(
        size > 100_000,
        "test premise: the archive is in the file ({off:#x}, {size} bytes)"
    );
    let payload = data[off..off + size].to_vec();
    for edits in [
        ldfix_elf::edit::Edits {
            rpath: Some(ldfix_elf::edit::RpathEdit::Set(
                b"/a/long/run/path/that/does/not/fit/in/place/0123456789abcdef:/usr/lib".to_vec(),
            )),
            ..Default::default()
        },
        ldfix_elf::edit::Edits {
            interpreter: Some(b"/lib/x86_64-linux-gnu/../../lib64/ld-linux-x86-64.so.2".to_vec()),
            ..Default::default()
        },
    ] {
        let new = ldfix_elf::edit::edit(&data, &edits).unwrap().unwrap();
        let kept = if archive.is_some() {
            new.get(off..off + size) == Some(&payload[..])
        } else {
            new.ends_with(&payload)
        };
        assert!(kept, "the archive moved or changed");
        let patched = dir.join("hello-patched");
        std::fs::write(&patched, &new).unwrap();
        std::fs::set_permissions(
            &patched,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755),
        )
        .unwrap();
        let run = Command::new(&patched).output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run.stdout),
            "onefile works\n",
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
