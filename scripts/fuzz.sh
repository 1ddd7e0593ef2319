#!/usr/bin/env bash
# Fuzzes the topology parser and validator (and the pure engine behind them) and the rate, CIDR
# and MAC/name parsers with libFuzzer, SECONDS per target (default 60):
#   scripts/fuzz.sh [SECONDS] [TARGET ...]      targets: topology rate cidr mac
# Builds quiver-fuzz with -sanitize=fuzzer,address into .build-fuzz, seeds each corpus from
# topologies/, the test fixtures and Tests/QuiverFuzz/Seeds (the corpus grows across runs in
# .build-fuzz/work), and prints executions and crashes per target. Crashing or hanging inputs are
# kept in .build-fuzz/work/artifacts; `swift run quiver-fuzz TARGET FILE` replays one. Exits 1 if
# any target crashed, leaked, hung or ran out of memory. (Tests/QuiverFuzz/lsan.supp names the
# once-made tables LeakSanitizer cannot see.)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(topology rate cidr mac)
swift build --scratch-path .build-fuzz --product quiver-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DQUIVER_FUZZ >/dev/null
bin=.build-fuzz/debug/quiver-fuzz
work=.build-fuzz/work
mkdir -p "$work/artifacts"
failed=0
rows=()
for t in "${targets[@]}"; do
  corpus="$work/corpus/$t"
  mkdir -p "$corpus"
  if [ "$t" = topology ]; then
    cp topologies/*.yaml Tests/QuiverTopologyTests/Fixtures/*.yaml "$corpus/"
    extra=(-dict=Tests/QuiverFuzz/topology.dict)
  else
    cp Tests/QuiverFuzz/Seeds/"$t"/* "$corpus/"
    extra=()
  fi
  rm -f "$work/artifacts/$t-"*
  status=0
  LSAN_OPTIONS=suppressions=Tests/QuiverFuzz/lsan.supp QUIVER_FUZZ_TARGET=$t "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$t-" "${extra[@]}" "$corpus" >"$work/$t.log" 2>&1 || status=$?
  runs=$(awk '/^Done [0-9]+ runs/ {print $2}' "$work/$t.log" | tail -1)
  [ -n "$runs" ] || runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$t.log" | tail -1)
  found=$(find "$work/artifacts" -name "$t-*" | wc -l)
  rows+=("$(printf '%-9s %8ss %12s %8s %7s' "$t" "$seconds" "${runs:-?}" "$(ls "$corpus" | wc -l)" "$found")")
  if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
    failed=1
    echo "fuzz.sh: $t failed (exit $status); last lines of $work/$t.log:" >&2
    tail -20 "$work/$t.log" >&2
  fi
done
printf '%-9s %9s %12s %8s %7s\n' target time executions corpus crashes
printf '%s\n' "${rows[@]}"
exit $failed
