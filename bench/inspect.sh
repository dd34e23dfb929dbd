#!/usr/bin/env bash
# Benchmark for `ldfix inspect` (issue 3): `ldfix inspect --json` (release build) over a tree of at
# least N real ELF files (Debian's own, hard-linked or copied from /usr) against a
# `readelf -d -V` loop over the same files, in the same run, on a warm page cache.
#
#   bench/inspect.sh            # N=2000
#   N=5000 bench/inspect.sh
#
# Prints both times, the ratio and ldfix's rate in files per second per core (files divided by
# the CPU seconds, user + system, that ldfix used). Goals: ratio >= 20, rate >= 10,000.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${N:-2000}
runs=${RUNS:-5}
target=${CARGO_TARGET_DIR:-target}

command -v readelf >/dev/null || { echo "readelf missing: apt-get install -y binutils" >&2; exit 1; }
cargo build --release --quiet -p ldfix
ldfix="$target/release/ldfix"

tree=$(mktemp -d "${TMPDIR:-/tmp}/ldfix-bench.XXXXXX")
trap 'rm -rf "$tree"' EXIT

# Collect N ELF files: Debian's programs and libraries first, then the cross libraries; when
# there are fewer than N, the same files again under another directory (hard links when the
# tree is on the same file system, copies otherwise).
python3 - "$tree" "$n" <<'PY'
import os, shutil, sys
tree, want = sys.argv[1], int(sys.argv[2])
roots = ["/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/sbin", "/usr/libexec", "/usr/lib/gcc",
         "/usr/lib/python3", "/usr/aarch64-linux-gnu", "/usr/arm-linux-gnueabihf",
         "/usr/i686-linux-gnu", "/usr/riscv64-linux-gnu", "/usr/powerpc64le-linux-gnu",
         "/usr/powerpc64-linux-gnu", "/usr/s390x-linux-gnu", "/usr/mips-linux-gnu", "/usr/mipsel-linux-gnu"]
files = []
for root in roots:
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        files.append(path)
            except OSError:
                pass
count, round_ = 0, 0
while count < want:
    for i, src in enumerate(files):
        if count >= want:
            break
        dst = os.path.join(tree, f"copy{round_}", f"{i:05d}-{os.path.basename(src)}")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        count += 1
    round_ += 1
print(f"tree: {count} ELF files ({len(files)} distinct) in {tree}", file=sys.stderr)
PY
mapfile -t files < <(find "$tree" -type f | sort)
total_bytes=$(du -sbL "$tree" | cut -f1)
echo "files: ${#files[@]}, $((total_bytes / 1024 / 1024)) MiB, cores: $(nproc)"

# Warm the page cache for both tools.
"$ldfix" inspect --json "$tree" >/dev/null || true
for f in "${files[@]}"; do readelf -d -V "$f" >/dev/null 2>&1 || true; done

best_ldfix=""
for _ in $(seq "$runs"); do
    # Exit status 1 is expected: the cross-architecture libraries are reported as problems.
    out=$( { /usr/bin/time -f "%e %U %S" "$ldfix" inspect --json "$tree" >/dev/null || true; } 2>&1 | tail -1)
    read -r wall user sys <<<"$out"
    if [[ -z $best_ldfix ]] || awk -v a="$wall" -v b="${best_ldfix%% *}" 'BEGIN{exit !(a<b)}'; then
        best_ldfix="$wall $user $sys"
    fi
done
read -r l_wall l_user l_sys <<<"$best_ldfix"
elf_count=$( ("$ldfix" inspect --json "$tree" || true) | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["elf"])')

start=$(date +%s.%N)
for f in "${files[@]}"; do readelf -d -V "$f" >/dev/null 2>&1 || true; done
end=$(date +%s.%N)
r_wall=$(awk -v s="$start" -v e="$end" 'BEGIN{printf "%.3f", e-s}')

awk -v n="${#files[@]}" -v elf="$elf_count" -v lw="$l_wall" -v lu="$l_user" -v ls="$l_sys" -v rw="$r_wall" 'BEGIN{
    cpu = lu + ls; if (cpu < 0.01) cpu = 0.01; if (lw < 0.01) lw = 0.01
    printf "ldfix inspect --json: %.2f s wall, %.2f s user, %.2f s sys (best of runs), %d ELF files reported\n", lw, lu, ls, elf
    printf "readelf -d -V loop:   %.2f s wall\n", rw
    printf "ratio (readelf loop wall / ldfix wall): %.1fx\n", rw / lw
    printf "ldfix rate: %.0f files/s wall, %.0f files per CPU second (per core)\n", n / lw, n / cpu
}'
