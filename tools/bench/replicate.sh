#!/usr/bin/env bash
# make bench-replicate: the replicator benchmark (issue 11), tools/bench/replicator.mjs.
# Builds nothing (the Makefile target runs `make all` first); run.sh sets up the tools
# (pouchdb-server from tools/bench's lock), a private copy of build/settee and a temp dir.
# Environment: BENCH_REPL_DOCS, BENCH_REPL_RUNS, BENCH_REPL_JOBS, BENCH_REPL_SAMPLES,
# BENCH_REPL_POUCH=0, BENCH_REPL_COUCH(_PID), BENCH_QUICK=1, BENCH_OUT (see replicator.mjs).
set -euo pipefail
exec "$(cd "$(dirname "$0")" && pwd)/run.sh" replicator
