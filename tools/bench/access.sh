#!/usr/bin/env bash
# Per-document access (issue 16): one user's initial PouchDB pull from a shared access
# database against the same documents in a database of their own. Starts build/settee
# (release build; `make` first) on a free loopback port with a temp data dir, runs
# access.mjs, stops the server. The issue's scale (1M docs, 10,000 users of 100 docs)
# takes long to load on a small machine: the defaults are 100,000 docs and 1,000 users
# of 100 docs; ACCESS_DOCS and ACCESS_PER_USER change them (ACCESS_DOCS=1000000 for the
# issue's). Uses PouchDB from compat-tests/node_modules.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
. "$root/tools/lib-settee.sh"
bin="${ACCESS_SETTEE:-$root/build/settee}"
[ -x "$bin" ] || { echo "access bench: $bin is missing; run make first" >&2; exit 1; }
[ -d "$root/compat-tests/node_modules/pouchdb-core" ] || { echo "access bench: compat-tests/node_modules lacks PouchDB (npm ci there)" >&2; exit 1; }
logs="$(mktemp -d /tmp/settee-access-bench.XXXXXX)"
start_test_settee "$bin" "$logs" || { echo "access bench: server did not start" >&2; cat "$logs/server.log"; exit 1; }
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; rm -rf "$data" "$logs"' EXIT
COUCH_URL="http://admin:admin@127.0.0.1:$port" SETTEE_PID="$server_pid" SETTEE_DATA="$data/db" \
    node "$here/access.mjs"
