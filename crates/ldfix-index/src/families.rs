//! Libraries that are special: the glibc family (only ever from the glibc that matches the
//! program's interpreter; defined in ldfix-elf, shared with the loader emulation) and GPU driver
//! libraries (only ever from the driver directory).

pub use ldfix_elf::is_glibc_family;

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
