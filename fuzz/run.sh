#!/usr/bin/env bash
# Usage: fuzz/run.sh SECONDS [BUILD_DIR] [TARGET...]: runs each fuzz target (all by default) for SECONDS on its corpus
# (BUILD_DIR/corpus/<target>, seeded by fuzz/seed_corpus.sh) after replaying fuzz/regressions/<target>/, and prints
# one line per target: executions and whether it crashed, leaked or hung. Exit status 1 when any did; the input that
# did it is saved as BUILD_DIR/artifacts/<target>/crash-*|leak-*|timeout-*|oom-*, the log beside it.
set -uo pipefail
seconds=${1:?usage: fuzz/run.sh SECONDS [BUILD_DIR] [TARGET...]}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build-fuzz}
shift $(($# >= 2 ? 2 : 1))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_model fuzz_plan fuzz_npy fuzz_tensor_pb fuzz_options)
[ -d "$build/corpus" ] || "$root/fuzz/seed_corpus.sh" "$build" >/dev/null

failed=0
for target in "${targets[@]}"; do
  artifacts=$build/artifacts/$target
  mkdir -p "$artifacts" "$build/corpus/$target"
  log=$artifacts/run.log
  args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
  dict=$root/fuzz/${target#fuzz_}.dict
  [ -f "$dict" ] && args+=(-dict="$dict")
  status=ok
  regressions=("$root/fuzz/regressions/$target"/*)
  if [ -e "${regressions[0]}" ] && ! "$build/$target" "${args[@]}" "${regressions[@]}" >"$log" 2>&1; then
    status="FAILED on a regression input (see $log)"
  elif ! "$build/$target" "${args[@]}" -max_total_time="$seconds" "$build/corpus/$target" >"$log" 2>&1; then
    status="FAILED: $(grep -m1 -oE 'ERROR: [A-Za-z]+: [^ ]+|SUMMARY: [^(]*|Test unit written to [^ ]+' "$log" | head -1)"
  fi
  [ "$status" = ok ] || failed=1
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  printf '%-16s %12s executions in %ss: %s\n' "$target" "$runs" "$seconds" "$status"
done
exit $failed
