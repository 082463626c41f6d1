#!/usr/bin/env bash
# Mango _find benchmark: settee beside pouchdb-server (find.mjs says what it runs and
# which environment it reads). Needs build/settee (make); sets up the bench tools as
# run.sh does.
exec "$(cd "$(dirname "$0")" && pwd)/run.sh" find
