//! Libraries that are special: the glibc family (only ever from the glibc that matches the
//! program's interpreter) and GPU driver libraries (only ever from the driver directory).

/// SONAMEs that belong to glibc itself. Mixing two glibcs in one process crashes, so these are
/// never offered from a package other than the loader's own glibc. (auditwheel's policy lists and
/// glibc's own `shlib-versions`; see `shared/research/autopatchelf-nixindex-auditwheel.md` §6.)
const GLIBC_FAMILY: &[&[u8]] = &[
    b"libc.so.6",
    b"libm.so.6",
    b"libmvec.so.1",
    b"libpthread.so.0",
    b"libdl.so.2",
    b"librt.so.1",
    b"libresolv.so.2",
    b"libutil.so.1",
    b"libanl.so.1",
    b"libBrokenLocale.so.1",
    b"libnss_files.so.2",
    b"libnss_dns.so.2",
    b"libnss_compat.so.2",
    b"libnss_db.so.2",
    b"libnss_hesiod.so.2",
    b"libthread_db.so.1",
    b"libc_malloc_debug.so.0",
    b"libmemusage.so",
    b"libpcprofile.so",
    b"libSegFault.so",
];

/// Whether `soname` is part of glibc (the loaders `ld-linux*.so.*`, `ld64.so.*`, `ld.so.1`
/// included).
pub fn is_glibc_family(soname: &[u8]) -> bool {
    GLIBC_FAMILY.contains(&soname)
        || soname.starts_with(b"ld-linux")
        || soname.starts_with(b"ld64.so.")
        || soname == b"ld.so.1"
}

/// Whether `name` is a GPU driver library: it must match the running kernel module, so it is
/// provided by `/run/opengl-driver/lib` and nowhere else (a copy in some store path is the wrong
/// driver as soon as the system updates). libglvnd's dispatch libraries (`libGL.so.1`,
/// `libEGL.so.1`) are ordinary packages; the vendor libraries behind them are not.
pub fn is_gpu_driver_library(name: &[u8]) -> bool {
    const PREFIXES: &[&[u8]] = &[
        b"libcuda.so",
        b"libcudadebugger.so",
        b"libnvidia-",
        b"libnvcuvid.so",
        b"libnvoptix.so",
        b"libGLX_nvidia.so",
        b"libEGL_nvidia.so",
        b"libGLESv1_CM_nvidia.so",
        b"libGLESv2_nvidia.so",
        b"libGLX_mesa.so",
        b"libEGL_mesa.so",
        b"libvulkan_",
        b"libvdpau_",
        b"libxatracker.so",
    ];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_family_includes_loaders_and_excludes_lookalikes() {
        for name in [
            "libc.so.6",
            "libm.so.6",
            "ld-linux-x86-64.so.2",
            "ld-linux.so.2",
            "ld64.so.2",
        ] {
            assert!(is_glibc_family(name.as_bytes()), "{name}");
        }
        for name in [
            "libcrypt.so.1",
            "libstdc++.so.6",
            "libc.musl-x86_64.so.1",
            "libcap.so.2",
        ] {
            assert!(!is_glibc_family(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn gpu_driver_libraries_are_vendor_libraries_not_glvnd() {
        assert!(is_gpu_driver_library(b"libcuda.so.1"));
        assert!(is_gpu_driver_library(b"libEGL_nvidia.so.0"));
        assert!(is_gpu_driver_library(b"libvulkan_radeon.so"));
        assert!(!is_gpu_driver_library(b"libGL.so.1"));
        assert!(!is_gpu_driver_library(b"libvulkan.so.1"));
        assert!(!is_gpu_driver_library(b"libcudart.so.12"));
    }
}
