#!/usr/bin/env bash
# Benchmark: resolve every ELF file of a tree with `ldfix inspect --tree --json` (release),
# Debian's lddtree (pax-utils) and an ldd loop, in the same run. Not a test.
#
# Usage: bench/tree.sh [DIR...]   (default /usr/lib/x86_64-linux-gnu)
# For the venv of the issue: python3 -m venv V && V/bin/pip install numpy pillow
# opencv-python-headless, then bench/tree.sh /usr/lib/x86_64-linux-gnu V
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=("$@")
((${#dirs[@]})) || dirs=(/usr/lib/x86_64-linux-gnu)
# Debian's lddtree is a Python script using the system python3's pyelftools; call it with
# /usr/bin/python3 so that another python3 first on PATH (pyenv) does not break it.
lddtree=(/usr/bin/python3 /usr/bin/lddtree)
"${lddtree[@]}" /bin/true >/dev/null || { echo "lddtree missing: apt-get install -y pax-utils python3-pyelftools" >&2; exit 1; }

cargo build --release -q -p ldfix
target=${CARGO_TARGET_DIR:-target}
ldfix="$target/release/ldfix"

list=$(mktemp)
trap 'rm -f "$list"' EXIT
# Regular ELF files (symlinks are not followed, as ldfix's own directory walk does).
find "${dirs[@]}" -type f -print0 | while IFS= read -r -d '' f; do
    if [[ $(head -c4 "$f" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]]; then
        printf '%s\0' "$f"
    fi
done >"$list"
count=$(tr -cd '\0' <"$list" | wc -c)
echo "files: $count ELF files under ${dirs[*]}"

# Warm the page cache so that whichever tool runs first does not pay for the disk.
xargs -0 cat <"$list" >/dev/null

now() { date +%s.%N; }
t0=$(now)
# The same file list for all three (ldfix would also walk the directories itself).
xargs -0 "$ldfix" inspect --tree --json <"$list" >/dev/null 2>&1 || true
t1=$(now)
xargs -0 "${lddtree[@]}" <"$list" >/dev/null 2>&1 || true
t2=$(now)
while IFS= read -r -d '' f; do ldd "$f" >/dev/null 2>&1 || true; done <"$list"
t3=$(now)

awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
    l = b - a; t = c - b; d2 = d - c;
    printf "ldfix inspect --tree --json: %.2f s\n", l;
    printf "lddtree:                     %.2f s  (ldfix is %.1fx faster)\n", t, t / l;
    printf "ldd loop:                    %.2f s  (ldfix is %.1fx faster)\n", d2, d2 / l;
}'
