#!/usr/bin/env bash
# Runs each libFuzzer target of build/fuzz/ for SECONDS (default 60), one at a time,
# from its seed corpus fuzz/corpus/NAME (read only: new inputs go to build/fuzz/corpus/NAME,
# which later runs start from too). A crash leaves its input in build/fuzz/crashes/.
#   tools/run-fuzz.sh [SECONDS] [NAME...]      (make fuzz-build first)
# Last line: "N passed, N failed" (a target passes when it ran its time without a crash).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
mkdir -p build/fuzz/crashes
for n in "${names[@]}"; do
    bin=build/fuzz/$n
    [ -x "$bin" ] || { echo "$n: $bin missing (make fuzz-build)"; failed=$((failed + 1)); continue; }
    work=build/fuzz/corpus/$n
    mkdir -p "$work"
    dict=()
    [ -f "fuzz/$n.dict" ] && dict=(-dict="fuzz/$n.dict")
    log=build/fuzz/$n.log
    "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix=build/fuzz/crashes/"$n"- "${dict[@]}" "$work" "fuzz/corpus/$n" >"$log" 2>&1
    rc=$?
    execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "$n: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, no crash"
    else
        failed=$((failed + 1))
        echo "$n: FAILED (exit $rc) after ${execs:-?} executions"
        grep -E 'ERROR|runtime error|invariant|SUMMARY|Test unit written' "$log" | head -20
        grep -A12 -E '^==[0-9]+==ERROR' "$log" | head -30
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
