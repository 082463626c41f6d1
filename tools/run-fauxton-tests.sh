#!/usr/bin/env bash
# Fauxton (the web UI at /_utils/, installed in web/ by tools/install-web.sh) in Debian's
# headless Chromium: compat-tests/browser/fauxton.test.mjs against a settee started here on a
# free loopback port (tools/lib-settee.sh, admin:admin) with [settee] utils_dir pointing at
# web/'s Fauxton, stopped by pid. Screenshots of each step stay in LOG_DIR/shots.
# Last line: "N passed, N failed". Exit status non-zero on any failure.
#   SETTEE=path/to/settee   another binary (default build/settee)
#   CHROMIUM=path           another browser binary (default /usr/bin/chromium)
#   LOG_DIR=dir             where logs and screenshots go (default a new temp dir)
set -uo pipefail
cd "$(dirname "$0")/.."
SETTEE=${SETTEE:-build/settee}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
# a sanitizer build reports as tools/run-tests.sh has it (h2o's pools are not leaks)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
log_dir=${LOG_DIR:-$(mktemp -d /tmp/settee-fauxton-tests.XXXXXX)}
mkdir -p "$log_dir/shots"
fail() { echo "$*"; echo "logs kept in $log_dir"; echo "0 passed, 1 failed"; exit 1; }
server_pid=""
data=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null
    fi
    [ -n "$data" ] && rm -rf "$data"
}
trap cleanup EXIT

tools/install-web.sh || fail "the web UI could not be installed"
ui="$(pwd)/web/node_modules/fauxton/dist/release"
[ -f "$ui/index.html" ] || fail "$ui/index.html is missing (npm?)"
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is missing (tools/install-deps.sh --test installs chromium)"
nm=compat-tests/browser/node_modules
if [ ! -d "$nm" ] || [ compat-tests/browser/package-lock.json -nt "$nm" ]; then
    (cd compat-tests/browser && npm ci --ignore-scripts --no-audit --no-fund >"$log_dir/npm.log" 2>&1) \
        || { cat "$log_dir/npm.log"; fail "npm ci in compat-tests/browser failed"; }
    touch "$nm"
fi
[ -x "$SETTEE" ] || fail "$SETTEE is missing (run make first)"

. tools/lib-settee.sh
SETTEE_UTILS_DIR="$ui" start_test_settee "$SETTEE" "$log_dir" || { cat "$log_dir/server.log"; fail "settee did not start"; }

out="$log_dir/fauxton.log"
start=$(date +%s)
(cd compat-tests/browser && SHOTS="$log_dir/shots" COUCH_URL="http://admin:admin@127.0.0.1:$port" \
    node --test --test-concurrency=1 --test-reporter=spec ./fauxton.test.mjs) >"$out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
cat "$out"
p=$(grep -E '^ℹ pass [0-9]+' "$out" | awk '{print $3}' | tail -1)
f=$(grep -E '^ℹ fail [0-9]+' "$out" | awk '{print $3}' | tail -1)
c=$(grep -E '^ℹ cancelled [0-9]+' "$out" | awk '{print $3}' | tail -1)
p=${p:-0}
f=$(( ${f:-0} + ${c:-0} ))
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
kill -TERM "$server_pid" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
wait "$server_pid" 2>/dev/null
srv_rc=$?
server_pid=""
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log_dir/server.log" || [ "$srv_rc" -ne 0 ]; then
    echo "settee exited with status $srv_rc"; tail -30 "$log_dir/server.log"
    f=$((f + 1))
fi
echo "fauxton tests took ${secs}s; screenshots in $log_dir/shots"
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
