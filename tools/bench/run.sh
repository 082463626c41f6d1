#!/usr/bin/env bash
# make bench: settee side by side with pouchdb-server (issue 6). Builds nothing
# (the Makefile's bench target runs `make all` first); sets up the tools, a private
# copy of build/settee and a temp dir, then runs bench.mjs. See bench.mjs for the
# environment it reads (BENCH_QUICK=1, BENCH_TARGETS, BENCH_ROUNDS, BENCH_OUT).
# `run.sh auth` (make bench-auth) runs auth.mjs instead: settee's authentication
# costs, settee alone (see auth.mjs; BENCH_TARGETS does not apply). `run.sh views`
# (make bench-views) runs views.mjs: the view index benchmark. `run.sh find`
# (tools/bench/find.sh) runs find.mjs: Mango _find beside pouchdb-server. `run.sh replicator`
# (make bench-replicate, through replicate.sh) runs replicator.mjs: _replicate and
# continuous jobs (see replicator.mjs for its BENCH_REPL_* environment).
set -euo pipefail
driver=bench.mjs
if [ "${1:-}" = auth ]; then driver=auth.mjs; unset BENCH_TARGETS; fi
if [ "${1:-}" = views ]; then driver=views.mjs; unset BENCH_TARGETS; fi
if [ "${1:-}" = find ]; then driver=find.mjs; unset BENCH_TARGETS; fi
if [ "${1:-}" = replicator ]; then driver=replicator.mjs; unset BENCH_TARGETS; fi
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# wrk drives workload 2; install it only when missing, so a ready machine costs nothing.
if ! command -v wrk >/dev/null 2>&1; then
    "$root/tools/install-deps.sh" --bench
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || "$root/tools/install-deps.sh" --bench

# npm ci wipes node_modules and reinstalls: run it only when the lock file changed
# since the last install (the stamp is a copy of the lock it installed).
if ! cmp -s "$here/package-lock.json" "$here/node_modules/.bench-lock" 2>/dev/null; then
    echo "bench: npm ci in tools/bench"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$here/node_modules/.bench-lock"
fi

# pouchdb-server's LevelDB backend is leveldown, a native module. Its package ships
# prebuilt N-API binaries (no compiler needed); should none load here, the run falls
# back to pouchdb-server's in-memory mode and the table says so.
export BENCH_POUCH_MEMORY=0
if [ -z "${BENCH_TARGETS:-}" ] && ! (cd "$here" && node -e "require('leveldown')" 2>/dev/null); then
    echo "bench: leveldown does not load here; pouchdb-server runs in memory (-m)" >&2
    BENCH_POUCH_MEMORY=1
fi

# Workload 9 holds 10,000 sockets in the client and as many in the server; the
# servers and the client are children of this shell, so they inherit the limit.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10240 ]; then
    echo "bench: open-file limit $(ulimit -n) is below the 10,240 workload 9 needs" >&2
fi

tmp="$(mktemp -d /tmp/settee-bench.XXXXXX)"
# bench.mjs stops the servers it started (by their pids) on its way out; this trap
# only removes the temp dir, whatever way the run ends.
trap 'rm -rf "$tmp"' EXIT
export BENCH_TMP="$tmp"

if [ -z "${BENCH_TARGETS:-}" ]; then
    [ -x "$root/build/settee" ] || { echo "bench: build/settee is missing; run make first" >&2; exit 1; }
    # A private copy: someone rebuilding build/settee mid-run must not change the
    # binary under test.
    cp "$root/build/settee" "$tmp/settee"
    # the query server runs from the settee binary's folder (views, design docs)
    if [ -x "$root/build/settee-qs" ]; then cp "$root/build/settee-qs" "$tmp/settee-qs"; fi
    export BENCH_SETTEE="$tmp/settee"
fi
# The commit the binary was built from, read now: others may commit during the run.
# Only changes to the server's sources make it "uncommitted".
BENCH_COMMIT="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- src store replication Makefile 2>/dev/null)" ]; then
    BENCH_COMMIT="$BENCH_COMMIT (with uncommitted changes in the work tree)"
fi
export BENCH_COMMIT

cd "$root"
node "$here/$driver"
