#!/usr/bin/env bash
# Benchmark for `ldfix locate` (issue #6): a synthetic store of real libraries, cold index build,
# warm refresh, in-process lookup, whole-process query; against `find -name` and `grep -F` over a
# flat file list, in the same run.
#
#   bench/locate.sh [store_paths=2000] [libs_per_path=5] [other_files_per_path=10]
#
# Libraries are hard links to this machine's real shared libraries (so 30,000 files cost little
# disk), under per-package names. The synthetic paths are not registered with Nix, so the index is
# built without validity checks (no nix-store on PATH) — the scan is the same.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=${1:-2000} libs=${2:-5} others=${3:-10}
work=${BENCH_DIR:-/var/tmp/ldfix-bench-locate}
store=$work/nix/store
cache=$work/cache

cargo build --release --quiet --bin ldfix
ldfix=${CARGO_TARGET_DIR:-$PWD/target}/release/ldfix

if [[ ! -f $work/.built-$paths-$libs-$others ]]; then
    rm -rf "$work"; mkdir -p "$store"
    mapfile -t real < <(find /usr/lib/x86_64-linux-gnu -maxdepth 1 -type f -name 'lib*.so.*' -size +8k | sort | head -200)
    python3 - "$store" "$paths" "$libs" "$others" "${real[@]}" <<'PY'
import os, sys, hashlib
store, paths, libs, others, real = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
for i in range(paths):
    h = hashlib.sha256(str(i).encode()).digest()
    name = "".join(alphabet[b % 32] for b in h[:32])
    out = os.path.join(store, f"{name}-pkg{i}-1.{i % 7}.0")
    os.makedirs(os.path.join(out, "lib"))
    os.makedirs(os.path.join(out, "share/doc"))
    for j in range(libs):
        src = real[(i * libs + j) % len(real)]
        os.link(src, os.path.join(out, "lib", f"libpkg{i}_{j}.so.1"))
    for k in range(others):
        with open(os.path.join(out, "share/doc", f"file{k}.txt"), "w") as f:
            f.write("x\n")
PY
    touch "$work/.built-$paths-$libs-$others"
fi
files=$(find "$store" -type f | wc -l)
echo "store: $paths store paths, $files files"

ms() { python3 -c 'import sys; print(f"{float(sys.argv[1])*1000:.1f}")' "$1"; }
# Runs a command N times, prints the median wall time in ms.
median_ms() {
    local n=$1; shift
    python3 - "$n" "$@" <<'PY'
import subprocess, sys, time, statistics
n, cmd = int(sys.argv[1]), sys.argv[2:]
times = []
for _ in range(n):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); times.append(time.perf_counter() - t)
print(f"{statistics.median(times)*1000:.2f}")
PY
}
export NIX_STORE_DIR=$store LDFIX_CACHE_DIR=$cache
# No nix-store on ldfix's PATH: the synthetic paths are not registered (see above).
ldfix_cmd=(env PATH=/var/empty "$ldfix")
query=libpkg1234_3.so.1

rm -rf "$cache"
start=$(date +%s.%N)
"${ldfix_cmd[@]}" locate --rebuild --stats >/dev/null 2>&1
cold=$(python3 -c "import time; print(time.time() - $start)")
echo "cold index build:            $(ms "$cold") ms"
echo "locate --stats p50 (process): $(median_ms 20 "${ldfix_cmd[@]}" locate --stats) ms (process start, refresh, and decoding every library to count them)"
"${ldfix_cmd[@]}" locate --stats --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print("warm refresh (in process):   %.1f ms" % d["refresh_ms"])'
echo "ldfix locate $query p50:  $(median_ms 30 "${ldfix_cmd[@]}" locate "$query") ms"
LDFIX_BENCH_CACHE=$cache/bench.bin cargo bench --quiet -p ldfix-index --bench lookup 2>/dev/null | grep in_process
echo "find \$STORE -name p50:       $(median_ms 5 find "$store" -name "$query") ms"
find "$store" > "$work/filelist"
echo "grep -F filelist p50:        $(median_ms 20 grep -F "$query" "$work/filelist") ms"
