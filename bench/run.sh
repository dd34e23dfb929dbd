#!/usr/bin/env bash
# Benchmark for `ldfix run` (issue #8): the start-up overhead of `ldfix run -- prog` against running
# an already-fixed copy of prog directly, in the same run, inside the NixOS-like sandbox (stub-ld at
# /lib64), with the library index cache warm. Two trivial FHS programs: `hello` (needs only libc:
# ldfix picks the loader and never opens the index) and `needs-z` (needs libz.so.1: ldfix opens
# the index and adds zlib's directory).
#
#   bench/run.sh [runs_per_round=200] [rounds=5]
#
# The fixed copies get the store loader and the directories `ldfix run --print` chose, with patchelf.
# Rounds alternate fixed/ldfix; the report is the median round, per run.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200} rounds=${2:-5}
ldfix=$(scripts/build-static)
cargo build --release --quiet -p ldfix-testworld --bin ldfix-testworld
tw=${CARGO_TARGET_DIR:-$PWD/target}/release/ldfix-testworld
state=$("$tw" info | awk '$1 == "state" {print $2}')
work=$state/bench-run
rm -rf "$work"
mkdir -p "$work/home"
for prog in hello needs-z; do
    libs=()
    [[ $prog == needs-z ]] && libs=(-lz)
    gcc -O1 -o "$work/$prog" "crates/ldfix-testworld/c/$prog.c" -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 "${libs[@]}"
done

cat > "$work/bench.sh" <<SH
set -euo pipefail
cd "$work"
ldfix=$ldfix n=$n rounds=$rounds
for prog in hello needs-z; do
    # What ldfix would run (this also builds the index cache in HOME: warm from here on).
    read -r -a line < <("\$ldfix" run --print -- ./\$prog)
    cp \$prog \$prog-fixed
    rpath=
    for ((i = 0; i < \${#line[@]}; i++)); do
        [[ \${line[i]} == --library-path ]] && rpath=\${line[i+1]}
    done
    echo "\$prog: ldfix runs: \${line[*]}"
    echo "\$prog-fixed: interpreter \${line[0]} rpath \${rpath:-none}"
done
SH
"$tw" run --bind "$work" --bind "$(dirname "$ldfix")" -- /bin/sh "$work/bench.sh" > "$work/plan.txt"
cat "$work/plan.txt"
# patchelf runs on the host (the sandbox has no patchelf); the store paths are the same there.
while read -r prog _ interp _ rpath; do
    prog=${prog%:}
    patchelf --set-interpreter "$interp" "$work/$prog"
    [[ $rpath != none ]] && patchelf --set-rpath "$rpath" "$work/$prog"
done < <(grep -- '-fixed:' "$work/plan.txt")

cat > "$work/time.sh" <<SH
set -euo pipefail
cd "$work"
ldfix=$ldfix n=$n rounds=$rounds
TIMEFORMAT='%3R %3U %3S'
per_run() { # command... -> "wall_us cpu_us" per run over n runs (cpu: user + system of the runs)
    local t
    t=\$( { time for ((i = 0; i < n; i++)); do "\$@" > /dev/null; done; } 2>&1 )
    read -r real user sys <<< "\$t"
    echo "\$(( 10#\${real/./} * 1000 / n )) \$(( (10#\${user/./} + 10#\${sys/./}) * 1000 / n ))"
}
median() { printf '%s\n' "\$@" | sort -n | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}'; }
"\$ldfix" run -- ./hello > /dev/null   # warm the index cache in this HOME
"\$ldfix" run -- ./needs-z > /dev/null
for prog in hello needs-z; do
    fixed=() via=() fixed_cpu=() via_cpu=()
    for ((r = 0; r < rounds; r++)); do
        read -r w c < <(per_run ./\$prog-fixed); fixed+=(\$w); fixed_cpu+=(\$c)
        read -r w c < <(per_run "\$ldfix" run -- ./\$prog); via+=(\$w); via_cpu+=(\$c)
    done
    f=\$(median "\${fixed[@]}") v=\$(median "\${via[@]}")
    fc=\$(median "\${fixed_cpu[@]}") vc=\$(median "\${via_cpu[@]}")
    echo "\$prog: wall: fixed \${f} us/run, ldfix run \${v} us/run, added \$((v - f)) us (rounds: fixed \${fixed[*]}; ldfix \${via[*]})"
    echo "\$prog: cpu:  fixed \${fc} us/run, ldfix run \${vc} us/run, added \$((vc - fc)) us"
done
echo "load average: \$(cut -d' ' -f1-3 /proc/loadavg) on \$(nproc) cores"
SH
"$tw" run --bind "$work" --bind "$(dirname "$ldfix")" -- /bin/sh "$work/time.sh"
