#!/usr/bin/env bash
# Installs the web UI settee serves at /_utils/ (Apache CouchDB's Fauxton, npm package
# "fauxton", pinned by web/package-lock.json) into web/node_modules with npm ci, only
# when it is missing or older than the lockfile. The UI is optional: without npm this
# says so and succeeds, and settee answers /_utils/ with a 404 that says how to install it.
# --ignore-scripts: only the package's prebuilt dist/release is used, nothing of its own
# build tool chain runs. Prints the directory settee should serve (web/.../dist/release).
set -euo pipefail
cd "$(dirname "$0")/../web"
ui=node_modules/fauxton/dist/release
stamp=node_modules/.settee-installed
if [ -f "$ui/index.html" ] && [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-web: npm is missing: the web UI (/_utils) is not installed" >&2
    exit 0
fi
echo "install-web: npm ci in web/ (Fauxton)" >&2
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
[ -f "$ui/index.html" ] || { echo "install-web: $ui/index.html is missing after npm ci" >&2; exit 1; }
touch "$stamp"
