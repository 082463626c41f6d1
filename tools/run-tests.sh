#!/usr/bin/env bash
# Runs every test runner and sums them: the C unit tests (cmocka, sanitizer build)
# and the compat tests (node --test) against a sanitizer-built settee started here
# on a free loopback port with a fresh data dir, stopped by pid.
# Last line: "N passed, N failed". Exit status non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ASAN_BUILD=${ASAN_BUILD:-build/asan}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export STT_GOLDEN_DIR=${STT_GOLDEN_DIR:-$(cd .. && pwd)/shared/couchdb-golden}
[ -d "$STT_GOLDEN_DIR" ] || [ "${STT_GOLDEN_OPTIONAL:-0}" = 1 ] || echo "warning: $STT_GOLDEN_DIR is missing: the golden replays will fail"
passed=0
failed=0
log_dir=$(mktemp -d /tmp/settee-tests.XXXXXX)

# Adds a node --test run's counts (its spec output in $1, its exit status $2) to the
# totals and prints them under the name $3.
count_node_tests() {
    local out=$1 rc=$2 name=$3 p f
    p=$(grep -E '^ℹ pass [0-9]+' "$out" | awk '{print $3}' | tail -1)
    f=$(grep -E '^ℹ fail [0-9]+' "$out" | awk '{print $3}' | tail -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "$name: $p passed, $f failed"
    [ "$f" -eq 0 ]
}

# The same for a runner whose last summary line is "N passed, N failed".
count_line_tests() {
    local out=$1 rc=$2 name=$3 line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
    p=$(echo "$line" | awk '{print $1}')
    f=$(echo "$line" | awk '{print $3}')
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "$name: $p passed, $f failed"
    [ "$f" -eq 0 ]
}

# --- C unit tests -----------------------------------------------------------
for t in "$ASAN_BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out="$log_dir/$name.log"
    CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$out" 2>&1
    rc=$?
    p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$out" | awk '{s+=$4} END {print s+0}')
    f=$(grep -Eo '\[  FAILED  \] [0-9]+ test' "$out" | awk '{s+=$4} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "unit $name: $p passed, $f failed"
    [ "$f" -ne 0 ] && tail -40 "$out"
done

# --- compat tests -------------------------------------------------------------
if [ ! -d compat-tests/node_modules ] || [ compat-tests/package-lock.json -nt compat-tests/node_modules ]; then
    (cd compat-tests && npm ci --no-audit --no-fund >"$log_dir/npm.log" 2>&1) || { cat "$log_dir/npm.log"; echo "npm ci failed"; }
fi
. tools/lib-settee.sh
if ! start_test_settee "$ASAN_BUILD/settee" "$log_dir"; then
    echo "settee did not start:"; cat "$log_dir/server.log"
    failed=$((failed + 1))
else
    out="$log_dir/compat.log"
    (cd compat-tests && COUCH_URL="http://admin:admin@127.0.0.1:$port" COMPAT_CORS=1 \
        node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs) >"$out" 2>&1
    count_node_tests "$out" $? compat || grep -E '^✖|not ok|Error|expected|actual' "$out" | head -120
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    srv_rc=$?
    # the sanitizers report through the server's log and its exit status
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log_dir/server.log"; then
        echo "sanitizer report from the server:"
        grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log_dir/server.log" | head -80
        failed=$((failed + 1))
    elif [ "$srv_rc" -ne 0 ]; then
        echo "server exited with status $srv_rc"; tail -20 "$log_dir/server.log"
        failed=$((failed + 1))
    fi
fi
rm -rf "$data"

# --- tools: backup and restore end to end (servers of their own) ---------------
out="$log_dir/tools.log"
SETTEE_BIN_DIR="$ASAN_BUILD" node --test --test-concurrency=1 --test-reporter=spec tests/tools/*.test.mjs >"$out" 2>&1
count_node_tests "$out" $? tools || grep -E '^✖|Error|expected|actual' "$out" | head -60

# --- replicator: _replicate, _replicator, _scheduler (servers of their own: settee and
# pouchdb-server from tests/replicator/node_modules, installed by npm ci when the lock is newer) ---
if [ ! -d tests/replicator/node_modules ] || [ tests/replicator/package-lock.json -nt tests/replicator/node_modules ]; then
    (cd tests/replicator && npm ci --no-audit --no-fund >"$log_dir/npm-replicator.log" 2>&1) || { cat "$log_dir/npm-replicator.log"; echo "npm ci in tests/replicator failed"; }
fi
out="$log_dir/replicator.log"
SETTEE_BIN_DIR="$ASAN_BUILD" REPL_WAIT_MS="${REPL_WAIT_MS:-30000}" \
    node --test --test-concurrency=1 --test-reporter=spec tests/replicator/*.test.mjs >"$out" 2>&1
count_node_tests "$out" $? replicator || grep -E '^✖|Error|expected|actual' "$out" | head -80

# --- disk full on a small tmpfs (skipped, saying why, where tmpfs cannot be mounted) ---
out="$log_dir/disk-full.log"
tools/test-disk-full.sh "$ASAN_BUILD/settee" >"$out" 2>&1
count_line_tests "$out" $? disk-full || tail -40 "$out"
grep -E '^skipped:' "$out"

# --- SIGKILL under concurrent writers, a short version of make crash-test ---
out="$log_dir/crash-loop.log"
node tools/crash-loop.mjs --cycles "${SETTEE_CRASH_CYCLES:-3}" --bin "$ASAN_BUILD/settee" --check "$ASAN_BUILD/settee-check" >"$out" 2>&1
count_line_tests "$out" $? crash-loop || tail -20 "$out"

# --- behind nginx (packaging/nginx/settee.conf): PouchDB live sync and the smuggling shapes ---
if command -v nginx >/dev/null 2>&1; then
    out="$log_dir/nginx.log"
    SETTEE="$ASAN_BUILD/settee" tools/test-nginx.sh >"$out" 2>&1
    count_line_tests "$out" $? nginx || tail -30 "$out"
else
    echo "nginx: skipped: no nginx (tools/install-deps.sh --test installs nginx-light)"
fi

# --- libFuzzer targets, a few seconds each (make fuzz-build; make fuzz runs them longer) ---
if ls build/fuzz/fuzz_* >/dev/null 2>&1; then
    out="$log_dir/fuzz.log"
    tools/run-fuzz.sh "${SETTEE_FUZZ_SECONDS:-4}" >"$out" 2>&1
    count_line_tests "$out" $? fuzz || tail -40 "$out"
else
    echo "fuzz: skipped: no build/fuzz/fuzz_* (make fuzz-build needs clang)"
fi

# --- browser: PouchDB 9 in headless Chromium, cross-origin ---------------------
if [ "${SETTEE_SKIP_BROWSER:-0}" != 1 ]; then
    out="$log_dir/browser.log"
    SETTEE="$ASAN_BUILD/settee" tools/run-browser-tests.sh >"$out" 2>&1
    count_line_tests "$out" $? browser || tail -60 "$out"
fi
# --- Fauxton at /_utils/ in headless Chromium (screenshots kept in the log dir) ------
if [ "${SETTEE_SKIP_BROWSER:-0}" != 1 ] && [ "${SETTEE_SKIP_FAUXTON:-0}" != 1 ]; then
    out="$log_dir/fauxton.log"
    SETTEE="$ASAN_BUILD/settee" LOG_DIR="$log_dir/fauxton" tools/run-fauxton-tests.sh >"$out" 2>&1
    count_line_tests "$out" $? fauxton || tail -60 "$out"
    echo "fauxton screenshots: $log_dir/fauxton/shots"
fi
echo "logs: $log_dir"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
