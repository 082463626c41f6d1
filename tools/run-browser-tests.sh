#!/usr/bin/env bash
# PouchDB 9 in headless Chromium syncing cross-origin with settee (compat-tests/browser).
# Installs what is missing (Debian's chromium, the npm packages), builds nothing (build/settee
# comes from the caller's make), starts build/settee on a free loopback port with a fresh data
# dir, CORS on and the server admin admin:admin, runs node --test in compat-tests/browser with
# COUCH_URL (credentials in it), stops settee by pid.
# Last line: "N passed, N failed". Exit status non-zero on any failure.
#   SETTEE=path/to/settee   another binary (default build/settee)
#   CHROMIUM=path           another browser binary (default /usr/bin/chromium)
set -uo pipefail
cd "$(dirname "$0")/.."
SETTEE=${SETTEE:-build/settee}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
log_dir=$(mktemp -d /tmp/settee-browser-tests.XXXXXX)
data=""
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    [ -n "$data" ] && rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "$*"; echo "logs kept in $log_dir"; echo "0 passed, 1 failed"; exit 1; }

# --- what the tests need ------------------------------------------------------
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ "$CHROMIUM" = /usr/bin/chromium ] && [ ! -x /usr/bin/chromium ]; then
    echo "run-browser-tests: installing chromium"
    $SUDO apt-get update -qq >"$log_dir/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium \
        >>"$log_dir/apt.log" 2>&1 || { tail -20 "$log_dir/apt.log"; fail "apt-get install chromium failed"; }
fi
# node (playwright-core wants >= 20; a machine's newer node is used as it is) and npm
need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
    echo "run-browser-tests: installing ${need[*]}"
    $SUDO apt-get update -qq >>"$log_dir/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" \
        >>"$log_dir/apt.log" 2>&1 || { tail -20 "$log_dir/apt.log"; fail "apt-get install ${need[*]} failed"; }
fi
nm=compat-tests/browser/node_modules
if [ ! -d "$nm" ] || [ compat-tests/browser/package-lock.json -nt "$nm" ]; then
    # --ignore-scripts: only the pouchdb package's prebuilt browser bundle is used, none of its
    # node-side (leveldown) install steps; playwright-core downloads nothing (Debian's chromium).
    (cd compat-tests/browser && npm ci --ignore-scripts --no-audit --no-fund >"$log_dir/npm.log" 2>&1) \
        || { cat "$log_dir/npm.log"; fail "npm ci in compat-tests/browser failed"; }
    touch "$nm"
fi
[ -x "$SETTEE" ] || fail "$SETTEE is missing (run make first)"

# --- settee with CORS on a free loopback port --------------------------------------
. tools/lib-settee.sh
start_test_settee "$SETTEE" "$log_dir" || { cat "$log_dir/server.log"; fail "settee did not start"; }

# --- the tests ----------------------------------------------------------------------
out="$log_dir/browser.log"
start=$(date +%s)
(cd compat-tests/browser && COUCH_URL="http://admin:admin@127.0.0.1:$port" \
    node --test --test-concurrency=1 --test-reporter=spec ./browser.test.mjs) >"$out" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
cat "$out"
p=$(grep -E '^ℹ pass [0-9]+' "$out" | awk '{print $3}' | tail -1)
f=$(grep -E '^ℹ fail [0-9]+' "$out" | awk '{print $3}' | tail -1)
p=${p:-0}
f=${f:-0}
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi

kill -TERM "$server_pid" 2>/dev/null
for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
srv_rc=$?
server_pid=""
if [ "$srv_rc" -ne 0 ]; then
    echo "settee exited with status $srv_rc"; tail -20 "$log_dir/server.log"
    f=$((f + 1))
fi
if [ "$f" -eq 0 ]; then
    rm -rf "$log_dir"
    echo "browser tests took ${secs}s"
else
    echo "browser tests took ${secs}s; logs kept in $log_dir (settee's in server.log)"
fi
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
