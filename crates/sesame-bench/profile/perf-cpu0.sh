#!/bin/bash
# Samples CPU 0 (the core sesamed is pinned to) with perf's cpu-clock software event while
# sesame-bench drives ONE load, then classifies the samples (see classify-perf.py).
#
#   crates/sesame-bench/profile/perf-cpu0.sh introspect-eddsa     # any name accepted by --only
#
# Needs: perf (apt-get install linux-perf), root or perf_event_paranoid <= 0, a release build.
# cpu-clock is used because hardware counters are often missing in VMs; --call-graph dwarf
# because the release profile has no frame pointers.
set -euo pipefail
load=${1:?usage: $0 LOAD (token-eddsa, introspect-eddsa, ...)}
root=$(cd "$(dirname "$0")/../../.." && pwd)
out=${OUT:-/tmp/sesame-perf}
mkdir -p "$out"
"$root/target/release/sesame-bench" --only "$load" --no-baseline --seconds 10 --sign-seconds 0.2 \
    > "$out/bench-$load.out" 2> "$out/bench-$load.err" &
bench=$!
until grep -q "sesamed ready" "$out/bench-$load.err"; do
    kill -0 $bench 2>/dev/null || { cat "$out/bench-$load.err"; exit 1; }
    sleep 0.1
done
sleep 2.5   # past the set-up and the warm-up, inside the 10 s window
perf record -q -e cpu-clock -F 1000 -C 0 --call-graph dwarf,16384 -o "$out/perf-$load.data" -- sleep 6
wait $bench
grep -E "req/s|flows/s" "$out/bench-$load.err"
perf script -i "$out/perf-$load.data" -F comm,ip,sym,dso 2>/dev/null > "$out/script-$load.txt"
python3 "$(dirname "$0")/classify-perf.py" "$out/script-$load.txt"
