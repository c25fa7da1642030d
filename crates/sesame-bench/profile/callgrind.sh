#!/bin/bash
# Instruction counts of one sesamed path under callgrind, zeroed after set-up and warm-up.
#
#   crates/sesame-bench/profile/callgrind.sh introspect-EdDSA 2000   # token-EdDSA, token-RS256,
#                                                                     # introspect-RS256, discovery, jwks
# Output: $OUT/cg-LOAD.PID.out.1 (the measured requests only); read it with
#   callgrind_annotate --inclusive=yes FILE | less
# Caveats: callgrind sees user space only (no syscalls, context switches or wake-ups), and under
# valgrind aws-lc takes its generic code paths (no AVX-512/ADX), so crypto shares are overstated.
set -euo pipefail
load=${1:?usage: $0 LOAD N}; n=${2:-2000}
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${OUT:-/tmp/sesame-callgrind}; mkdir -p "$out"
port=$((20000 + RANDOM % 10000)); data=$(mktemp -d "$out/data-XXXX")
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg-$load.%p.out" \
    "$root/target/release/sesamed" serve --dev --listen 127.0.0.1:$port --data-dir "$data" \
    > "$out/cg-$load.log" 2>&1 &
vg=$!
trap 'kill -TERM $vg 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -sf http://127.0.0.1:$port/readyz >/dev/null 2>&1 && break; sleep 0.2; done
coproc DRV { taskset -c 1 python3 "$(dirname "$0")/drive.py" $port "$data" "$load" "$n" 4; }
read -r line <&"${DRV[0]}"; echo "driver: $line"
callgrind_control -z $vg >/dev/null
echo go >&"${DRV[1]}"
read -r line <&"${DRV[0]}"; echo "driver: $line"
callgrind_control -d "$load" $vg >/dev/null
kill -TERM $vg; wait $vg || true
trap - EXIT
ls "$out"/cg-"$load".*.out.1
