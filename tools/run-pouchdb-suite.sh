#!/usr/bin/env bash
# Runs PouchDB 9.0.0's own Node test suites against a settee started here (fresh data
# dir, free loopback port, admin:admin), through the shared runner
# (../shared/pouchdb-suite/run.sh; its README says how the PouchDB tree is prepared),
# then stops that settee by pid. See docs/pouchdb-suite.md for what passes and why
# the rest fails.
#
#   tools/run-pouchdb-suite.sh [TEST_FILE...]    (paths in the PouchDB tree)
#
# Environment (all optional):
#   SETTEE_BIN   default build/settee (build/asan/settee checks sanitizers too: slower)
#   SUITES       default "integration find mapreduce" (all three)
#   RESULTS_DIR  default /tmp/settee-pouchdb-suite (emptied by the runner)
#   PDB_SUITE    the runner's directory, default ../shared/pouchdb-suite
#   POUCHDB_DIR, GREP, FILE_TIMEOUT, TIMEOUT: passed on to the runner
# Exit status: the runner's (0 only when nothing failed), 3 when the server logged a
# sanitizer error.
set -uo pipefail
cd "$(dirname "$0")/.."
SETTEE_BIN=${SETTEE_BIN:-build/settee}
PDB_SUITE=${PDB_SUITE:-$(cd .. && pwd)/shared/pouchdb-suite}
export SUITES=${SUITES:-integration find mapreduce}
export RESULTS_DIR=${RESULTS_DIR:-/tmp/settee-pouchdb-suite}
# h2o's recycle pools are reachable until exit (as in tools/run-tests.sh)
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tools/lsan.supp:print_suppressions=0}
[ -x "$SETTEE_BIN" ] || { echo "$SETTEE_BIN not built (make -j2 all asan)" >&2; exit 2; }
[ -x "$PDB_SUITE/run.sh" ] || { echo "runner not found at $PDB_SUITE" >&2; exit 2; }

log_dir=$(mktemp -d /tmp/settee-pouchdb-logs.XXXXXX)
. tools/lib-settee.sh
if ! start_test_settee "$SETTEE_BIN" "$log_dir"; then
    echo "settee did not start:" >&2
    cat "$log_dir/server.log" >&2
    exit 2
fi
"$PDB_SUITE/run.sh" "http://admin:admin@127.0.0.1:$port" "$@"
rc=$?
kill -TERM "$server_pid"
wait "$server_pid" 2>/dev/null
rm -rf "$data"
if grep -Eq 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$log_dir/server.log"; then
    echo "sanitizer report in $log_dir/server.log" >&2
    rc=3
fi
echo "server log: $log_dir/server.log; results: $RESULTS_DIR"
exit "$rc"
