#!/usr/bin/env bash
# Benchmark of `ldfix fix` against the shell loop people use today (fix-python, batou's
# FixELFRunPath): `patchelf --print-rpath`, then `patchelf --set-interpreter --set-rpath` per file.
#
#   bench/fix.sh [N]      (N synthetic ELF files, default 5000)
#
# Both tools fix identical copies of the same trees in the same run:
#   1. a synthetic tree of N gcc-built programs (each needs libcrypt.so.1, interpreter stub-ld);
#   2. a venv of the test world's Python with numpy, pillow, opencv-python-headless and pyodbc.
# ldfix runs inside the NixOS-like sandbox (as on NixOS: it has to find the providers itself);
# the patchelf loop runs on the host with the answers given to it (the store loader and the
# provider directories), i.e. it is timed doing strictly less work. Then `ldfix fix --check` on
# the already fixed N-file tree (goal < 0.5 s). Times are wall clock, best of 3 for --check.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
command -v patchelf >/dev/null || { echo "needs patchelf: apt-get install -y patchelf" >&2; exit 2; }
LDFIX=$(scripts/build-static)
cargo build --quiet --release -p ldfix-testworld --bin ldfix-testworld
TW=$CARGO_TARGET_DIR/release/ldfix-testworld
INFO=$("$TW" info)
get() { awk -v k="$1" '$1 == k { print $2 }' <<<"$INFO"; }
STATE=$(get state)
GLIBC=$(get glibc); XCRYPT=$(get libxcrypt); ODBC=$(get unixODBC); GCCLIB=$(get gccLib)
PYTHON=$(get python3)
LOADER=$GLIBC/lib/ld-linux-x86-64.so.2

W=$(mktemp -d "$STATE/bench-fix-XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/bin"
cp "$LDFIX" "$W/bin/ldfix"

now() { date +%s.%N; }
inside() { "$TW" run --bind "$W" -- /bin/sh -c "$1"; }
# Wall time of a command inside the sandbox, measured inside (no bwrap start-up).
inside_time() {
    inside "s=\$EPOCHREALTIME; $1 >/dev/null 2>&1; rc=\$?; e=\$EPOCHREALTIME; echo \"\$s \$e \$rc\"" |
        awk '{ printf "%.3f %d\n", $2 - $1, $3 }'
}

echo "== building the synthetic tree ($N ELF files)" >&2
cat >"$W/p.c" <<'C'
#include <crypt.h>
#include <stdio.h>
int main(void){ const char *h = crypt("pw", "$6$salt$"); puts(h ? h : "null"); return !h; }
C
gcc -O2 -o "$W/proto" "$W/p.c" -lcrypt
for tree in tree-ldfix tree-patchelf; do
    for ((d = 0; d < N / 100; d++)); do
        mkdir -p "$W/$tree/d$d"
        for ((f = 0; f < 100; f++)); do cp "$W/proto" "$W/$tree/d$d/p$f"; done
    done
done

echo "== building two identical venvs" >&2
for v in venv-ldfix venv-patchelf; do
    "$PYTHON/bin/python3" -m venv --without-pip "$W/$v"
    python3 -m pip --python "$W/$v/bin/python" install --quiet --disable-pip-version-check \
        --no-index --no-deps --no-compile --find-links "$STATE/wheels" \
        numpy pillow opencv-python-headless pyodbc
done
VENV_FILES=$(find "$W/venv-ldfix" -type f \( -name '*.so' -o -name '*.so.*' \) | wc -l)

patchelf_loop() { # tree, interpreter-or-empty, dirs
    find "$1" -type f | while read -r f; do
        head -c4 "$f" | grep -q ELF || continue
        old=$(patchelf --print-rpath "$f")
        if [ -n "$2" ] && patchelf --print-interpreter "$f" >/dev/null 2>&1; then
            patchelf --set-interpreter "$2" --set-rpath "${old:+$old:}$3" "$f"
        else
            patchelf --set-rpath "${old:+$old:}$3" "$f"
        fi
    done
}

# The library index cache is warmed first (a user's second ldfix command finds it warm); the
# sandbox gives every run a fresh HOME, so the cache directory is set explicitly.
L="LDFIX_CACHE_DIR=$W/cache $W/bin/ldfix"
s=$(now); inside "$L locate libz.so.1" >/dev/null; e=$(now)
t_index=$(echo "$e - $s" | bc)

echo "== synthetic tree" >&2
read -r t_ldfix rc <<<"$(inside_time "$L fix $W/tree-ldfix")"
[ "$rc" = 0 ] || { echo "ldfix fix failed ($rc)" >&2; inside "$L fix $W/tree-ldfix" | tail; exit 1; }
s=$(now); patchelf_loop "$W/tree-patchelf" "$LOADER" "$XCRYPT/lib"; e=$(now)
t_loop=$(echo "$e - $s" | bc)
inside "$W/tree-ldfix/d0/p0 && $W/tree-patchelf/d0/p0" >/dev/null

best=999
for i in 1 2 3; do
    read -r t rc <<<"$(inside_time "$L fix --check $W/tree-ldfix")"
    [ "$rc" = 0 ] || { echo "fix --check after fix exited $rc" >&2; exit 1; }
    best=$(echo "if ($t < $best) $t else $best" | bc)
done

echo "== venv ($VENV_FILES shared objects)" >&2
read -r v_ldfix rc <<<"$(inside_time "$L fix $W/venv-ldfix")"
inside "$W/venv-ldfix/bin/python -c 'import numpy.linalg, cv2, pyodbc, PIL.Image'" >/dev/null
s=$(now); patchelf_loop "$W/venv-patchelf" "" "$ODBC/lib:$GCCLIB/lib"; e=$(now)
v_loop=$(echo "$e - $s" | bc)

printf '\n%-44s %10s %10s %8s\n' "" "ldfix" "patchelf" "ratio"
printf '%-44s %9.3fs %9.3fs %7.1fx\n' "fix: synthetic tree, $N ELF files" "$t_ldfix" "$t_loop" "$(echo "$t_loop / $t_ldfix" | bc -l)"
printf '%-44s %9.3fs %9.3fs %7.1fx\n' "fix: venv, $VENV_FILES shared objects" "$v_ldfix" "$v_loop" "$(echo "$v_loop / $v_ldfix" | bc -l)"
printf '%-44s %9.3fs  (goal < 0.5 s)\n' "fix --check: fixed tree, $N ELF files" "$best"
printf '%-44s %9.3fs  (once per store change; not in the times above)\n' "index build, cold (ldfix locate)" "$t_index"
