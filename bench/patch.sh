#!/usr/bin/env bash
# Benchmarks `ldfix patch` against patchelf. Not a test: run it by hand, on a quiet machine.
#
#   bench/patch.sh [N_LIBS]
#
# (1) N_LIBS (default 1000) real shared libraries from this system get a long new RPATH:
#     one `ldfix patch` run over all of them vs one `patchelf` process per file (same run).
# (2) One >= 100 MB library whose RPATH must grow: ldfix vs `cp --reflink=never` + fsync of the
#     copy, same filesystem, warm cache (best of 5).
# (3) Bytes of growth per file: ldfix vs patchelf 0.14.3 and 0.19 over the same libraries.
#
# Needs a release build (cargo build --release -p ldfix) and patchelf 0.19
# (bench/patch-fetch-patchelf.sh). Works in a scratch directory under the target dir.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
ldfix="$target/release/ldfix"
pe014=/usr/bin/patchelf
pe019="$target/patchelf-0.19/patchelf"
n="${1:-1000}"
[[ -x $ldfix ]] || { echo "missing $ldfix: cargo build --release -p ldfix" >&2; exit 1; }
[[ -x $pe019 ]] || { echo "missing $pe019: bench/patch-fetch-patchelf.sh" >&2; exit 1; }
[[ -x $pe014 ]] || { echo "missing $pe014: apt-get install -y patchelf" >&2; exit 1; }

# A fresh directory per run, removed at exit: on ext4 without a journal, creating files right
# after deleting many (a previous run's `rm -rf`) is slow (`recently_deleted` skips those inodes),
# which hits the temp files of an atomic replace and not patchelf's in-place rewrite.
mkdir -p "$target"
work=$(mktemp -d "$target/bench-patch.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src"
long="/nix/store/0123456789abcdfghijklmnpqrsvwxyz-some-package-with-a-long-name-1.2.3/lib:\
/nix/store/abcdfghijklmnpqrsvwxyz0123456789-another-dependency-4.5.6/lib:\$ORIGIN/../lib"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

# Real shared libraries, regular files only, that are ELF, dynamic, with a dynamic string table
# (the ones patchelf can edit), deduplicated by name.
i=0
while IFS= read -r f; do
    [[ $i -ge $n ]] && break
    name=$(basename "$f")
    [[ -e $work/src/$name ]] && continue
    head -c 4 "$f" 2>/dev/null | grep -q $'\x7fELF' || continue
    readelf -d "$f" 2>/dev/null | grep -q STRTAB || continue
    cp "$f" "$work/src/$name"
    i=$((i + 1))
done < <(find /usr/lib/x86_64-linux-gnu /usr/lib /usr/libexec -name '*.so*' -type f 2>/dev/null | sort)
echo "corpus: $i shared libraries, $(du -sh "$work/src" | cut -f1)"

for tool in ldfix pe014 pe019; do
    rm -rf "$work/$tool"
    cp -r "$work/src" "$work/$tool"
done
sync

# (1) one ldfix run vs one patchelf process per file.
# ldfix's writes are durable when it exits (fsync/syncfs before rename); patchelf's are only in
# the page cache, so the time of a `sync` right after each patchelf loop is reported too.
t0=$(now)
"$ldfix" patch --set-rpath "$long" "$work"/ldfix/* 2>"$work/ldfix.err" || true
t1=$(now)
for f in "$work"/pe014/*; do "$pe014" --set-rpath "$long" "$f" 2>>"$work/pe014.err" || true; done
t2=$(now)
sync
t2s=$(now)
for f in "$work"/pe019/*; do "$pe019" --set-rpath "$long" "$f" 2>>"$work/pe019.err" || true; done
t3=$(now)
sync
t3s=$(now)
tl=$(elapsed "$t0" "$t1"); t014=$(elapsed "$t1" "$t2"); t019=$(elapsed "$t2s" "$t3")
s014=$(elapsed "$t2" "$t2s"); s019=$(elapsed "$t3" "$t3s")
echo "(1) $i libraries, --set-rpath (${#long} bytes):"
echo "    ldfix, one run (durable):    ${tl} s   ($(grep -c '^error' "$work/ldfix.err" || true) files refused)"
echo "    patchelf 0.14.3, per file:   ${t014} s, + ${s014} s for sync   ($(grep -c . "$work/pe014.err" || true) error lines)"
echo "    patchelf 0.19, per file:     ${t019} s, + ${s019} s for sync   ($(grep -c . "$work/pe019.err" || true) error lines)"
echo "    speed-up vs 0.14.3: $(echo "scale=1; $t014 / $tl" | bc)x ($(echo "scale=1; ($t014 + $s014) / $tl" | bc)x with its sync)," \
    "vs 0.19: $(echo "scale=1; $t019 / $tl" | bc)x ($(echo "scale=1; ($t019 + $s019) / $tl" | bc)x with its sync)"

# (3) growth over the same files.
grow() { # dir
    local total=0 more=0 f base s0 s1
    for f in "$1"/*; do
        base="$work/src/$(basename "$f")"
        s0=$(stat -c %s "$base"); s1=$(stat -c %s "$f")
        total=$((total + s1 - s0))
    done
    echo "$total"
}
gl=$(grow "$work/ldfix"); g014=$(grow "$work/pe014"); g019=$(grow "$work/pe019")
echo "(3) total growth over $i libraries: ldfix $gl B, patchelf 0.14.3 $g014 B, patchelf 0.19 $g019 B"
worse=0
for f in "$work"/ldfix/*; do
    name=$(basename "$f")
    a=$(stat -c %s "$f"); b=$(stat -c %s "$work/pe019/$name"); c=$(stat -c %s "$work/pe014/$name")
    o=$(stat -c %s "$work/src/$name")
    # Only compare with a reference that changed the file (it may have refused).
    if { [[ $b != "$o" ]] && ((a > b)); } || { [[ $c != "$o" ]] && ((a > c)); }; then
        echo "    grows more than patchelf: $name ldfix $((a - o)) 0.19 $((b - o)) 0.14.3 $((c - o))"
        worse=$((worse + 1))
    fi
done
echo "    files where ldfix grows more than a reference: $worse"

# (2) one large library.
big="$work/big"
mkdir -p "$big"
cat >"$big/big.c" <<'EOF'
#define MB (1024 * 1024)
const unsigned char payload[110 * MB] = {1, 2, 3};
int big(void) { return payload[7]; }
EOF
gcc -shared -fPIC -O0 -o "$big/libbig.so" "$big/big.c"
size=$(stat -c %s "$big/libbig.so")
echo "(2) large library: $((size / 1024 / 1024)) MB"
best_ldfix=999; best_cp=999
for _ in 1 2 3 4 5; do
    cp --reflink=never "$big/libbig.so" "$big/libbig-ldfix.so"
    cat "$big/libbig-ldfix.so" >/dev/null
    sync
    t0=$(now); "$ldfix" patch --set-rpath "$long" "$big/libbig-ldfix.so"; t1=$(now)
    rm -f "$big/copy.so"; sync
    t2=$(now); cp --reflink=never "$big/libbig.so" "$big/copy.so"; sync "$big/copy.so"; t3=$(now)
    a=$(elapsed "$t0" "$t1"); b=$(elapsed "$t2" "$t3")
    (( $(echo "$a < $best_ldfix" | bc) )) && best_ldfix=$a
    (( $(echo "$b < $best_cp" | bc) )) && best_cp=$b
done
echo "    ldfix patch (grows, atomic replace with fsync): ${best_ldfix} s (best of 5)"
echo "    cp --reflink=never + fsync of the copy:         ${best_cp} s (best of 5)"
echo "    ratio: $(echo "scale=2; $best_ldfix / $best_cp" | bc)x"
