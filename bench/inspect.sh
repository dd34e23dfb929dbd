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

# Time with getrusage: wall time suffers from whatever else runs on the machine, CPU time
# (user + system of ldfix and its threads, or of all readelf processes) does not.
python3 - "$ldfix" "$tree" "$runs" "${files[@]}" <<'PY'
import json, os, resource, subprocess, sys, time
ldfix, tree, runs, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]

def measure(commands):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = None
    for command in commands:
        out = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out

results = [measure([[ldfix, "inspect", "--json", tree]]) for _ in range(runs)]
l_wall = min(r[0] for r in results)
l_cpu = sorted(r[1] for r in results)[len(results) // 2]
elf = json.loads(results[-1][2])["summary"]["elf"]
r_wall, r_cpu, _ = measure([["readelf", "-d", "-V", f] for f in files])
n = len(files)
print(f"ldfix inspect --json: {l_wall:.3f} s wall (best of {runs}), {l_cpu:.3f} s CPU (median), {elf} ELF files reported")
print(f"readelf -d -V loop:   {r_wall:.3f} s wall, {r_cpu:.3f} s CPU")
print(f"ratio, wall: {r_wall / l_wall:.1f}x   ratio, CPU: {r_cpu / l_cpu:.1f}x")
print(f"ldfix rate: {n / l_wall:.0f} files/s wall on {os.cpu_count()} cores, {n / l_cpu:.0f} files per CPU second (per core)")
PY
