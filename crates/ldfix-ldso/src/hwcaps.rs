//! Hardware-capability subdirectories: which `D/<subdir>/` the loader tries before `D/` itself.
//!
//! glibc ≥ 2.33 tries `glibc-hwcaps/<name>/` for each supported name, most capable first
//! (`elf/dl-hwcaps.c`, `_dl_important_hwcaps`). Up to 2.36 it then tries the legacy
//! subdirectories, every combination of `tls`, the platform (AT_PLATFORM) and the important
//! hwcap bits; 2.37 removed them. The order below reproduces `LD_DEBUG=libs` of Debian 12's
//! glibc 2.36 on x86-64: `glibc-hwcaps/x86-64-v4 … v2`, `tls/x86_64/x86_64`, `tls/x86_64`,
//! `tls/x86_64`, `tls`, `x86_64/x86_64`, `x86_64`, `x86_64`, then the directory itself.

/// What the loader learns about the CPU at startup. An input: the machine being resolved for is
/// not necessarily this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpu {
    /// Supported `glibc-hwcaps` subdirectory names, most preferred first.
    pub glibc_hwcaps: Vec<Vec<u8>>,
    /// x86 ISA level bits (1 baseline, 2 v2, 4 v3, 8 v4), for cache entries; 0 elsewhere.
    pub isa_level: u32,
    /// AT_PLATFORM, the value of `$PLATFORM`.
    pub platform: Option<Vec<u8>>,
    /// Names of the important legacy hwcap bits that are set, lowest bit first.
    pub legacy_hwcaps: Vec<Vec<u8>>,
    /// The same bits as a mask (`GLRO(dl_hwcap) & hwcap_mask`), for legacy cache entries.
    pub legacy_hwcap_bits: u64,
}

impl Cpu {
    /// An x86-64 CPU of micro-architecture level 1–4 (x86-64, -v2, -v3, -v4).
    ///
    /// `intel_haswell` selects Intel's `haswell` platform string, which glibc sets only for
    /// Intel CPUs with the Haswell feature set (`sysdeps/x86/cpu-features.c`); AMD CPUs get
    /// `x86_64`. The legacy `avx512_1` hwcap is likewise Intel-only and is left out.
    pub fn x86_64(level: u8, intel_haswell: bool) -> Self {
        let level = level.clamp(1, 4);
        let glibc_hwcaps = (2..=level)
            .rev()
            .map(|l| format!("x86-64-v{l}").into_bytes())
            .collect();
        let isa_level = (1u32 << level) - 1;
        let platform: &[u8] = if intel_haswell { b"haswell" } else { b"x86_64" };
        Self {
            glibc_hwcaps,
            isa_level,
            platform: Some(platform.to_vec()),
            // HWCAP_X86_64 = 1 << 1 (sysdeps/x86/dl-hwcap.h).
            legacy_hwcaps: vec![b"x86_64".to_vec()],
            legacy_hwcap_bits: 1 << 1,
        }
    }

    /// A CPU with no hwcaps subdirectories, only a platform name (other architectures).
    pub fn plain(platform: Option<&[u8]>) -> Self {
        Self {
            glibc_hwcaps: Vec::new(),
            isa_level: 0,
            platform: platform.map(<[u8]>::to_vec),
            legacy_hwcaps: Vec::new(),
            legacy_hwcap_bits: 0,
        }
    }

    /// The subdirectories glibc `major.minor` tries in every search directory, in order, each
    /// ending in `/`, the last one empty (the directory itself).
    pub fn subdirs(&self, glibc: (u32, u32)) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        if glibc >= (2, 33) {
            for name in &self.glibc_hwcaps {
                let mut dir = b"glibc-hwcaps/".to_vec();
                dir.extend_from_slice(name);
                dir.push(b'/');
                out.push(dir);
            }
        }
        if glibc <= (2, 36) {
            // Components, least significant first: the hwcap names, the platform, then "tls"
            // (always present in builds with TLS). Subsets are listed from all components down
            // to none, with "tls" the most significant bit; each path is written most
            // significant component first.
            let mut parts: Vec<&[u8]> = self.legacy_hwcaps.iter().map(Vec::as_slice).collect();
            if let Some(platform) = &self.platform {
                parts.push(platform);
            }
            parts.push(b"tls");
            let n = parts.len().min(16);
            for mask in (1u32..(1 << n)).rev() {
                let mut dir = Vec::new();
                for (bit, part) in parts.iter().enumerate().take(n).rev() {
                    if mask & (1 << bit) != 0 {
                        dir.extend_from_slice(part);
                        dir.push(b'/');
                    }
                }
                out.push(dir);
            }
        }
        out.push(Vec::new());
        out
    }
}

impl Cpu {
    /// The CPU described by the text of a Linux `/proc/cpuinfo` (first processor), judged the
    /// way glibc 2.36 does for x86-64 (`sysdeps/x86/cpu-features.c`, `dl-hwcaps-subdirs.c`):
    /// the x86-64 level from the feature flags; on Intel only, the `haswell` platform and the
    /// legacy `avx512_1` hwcap. Other machines get no hwcaps subdirectories.
    pub fn from_cpuinfo(text: &str, machine_platform: &[u8]) -> Self {
        let field = |name: &str| {
            text.lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        if machine_platform != b"x86_64" {
            return Self::plain(Some(machine_platform));
        }
        let flags = field("flags");
        let flags: Vec<&str> = flags.split_whitespace().collect();
        let all = |names: &[&str]| names.iter().all(|n| flags.contains(n));
        let v2 = all(&["cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"]);
        let v3 = v2
            && all(&[
                "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave",
            ]);
        let v4 = v3 && all(&["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]);
        let level = if v4 {
            4
        } else if v3 {
            3
        } else if v2 {
            2
        } else {
            1
        };
        let intel = field("vendor_id") == "GenuineIntel";
        let xeon_phi = intel && all(&["avx512cd", "avx512er", "avx512pf"]);
        let avx512_1 = intel && !xeon_phi && all(&["avx512cd", "avx512bw", "avx512dq", "avx512vl"]);
        let haswell =
            intel && !xeon_phi && all(&["avx2", "bmi1", "bmi2", "abm", "movbe", "popcnt"]);
        let mut cpu = Self::x86_64(level, haswell);
        if xeon_phi {
            cpu.platform = Some(b"xeon_phi".to_vec());
        }
        if avx512_1 {
            // HWCAP_X86_AVX512_1 = 1 << 2.
            cpu.legacy_hwcaps.push(b"avx512_1".to_vec());
            cpu.legacy_hwcap_bits |= 1 << 2;
        }
        cpu
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_12_order_on_an_x86_64_v4_amd_cpu() {
        let dirs = Cpu::x86_64(4, false).subdirs((2, 36));
        let dirs: Vec<String> = dirs
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect();
        assert_eq!(
            dirs,
            [
                "glibc-hwcaps/x86-64-v4/",
                "glibc-hwcaps/x86-64-v3/",
                "glibc-hwcaps/x86-64-v2/",
                "tls/x86_64/x86_64/",
                "tls/x86_64/",
                "tls/x86_64/",
                "tls/",
                "x86_64/x86_64/",
                "x86_64/",
                "x86_64/",
                "",
            ]
        );
        assert_eq!(
            Cpu::x86_64(2, false).subdirs((2, 40)),
            vec![b"glibc-hwcaps/x86-64-v2/".to_vec(), Vec::new()]
        );
    }
}
