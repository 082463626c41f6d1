#!/usr/bin/env bash
# Installs the Debian packages settee builds and tests with, and only those not yet
# installed, so that a second run costs a dpkg query and nothing else.
# Usage: tools/install-deps.sh [--test|--bench]   (--test adds what the test suite needs,
#        --bench what tools/bench/run.sh needs)
set -euo pipefail
pkgs=(build-essential pkg-config libh2o-evloop-dev libleveldb-dev libxxhash-dev libssl-dev
      libyajl-dev zlib1g-dev libcurl4-openssl-dev libmozjs-102-dev libicu-dev)
if [ "${1:-}" = "--test" ]; then
    # chromium: the browser tests (PouchDB in a page, Fauxton at /_utils/); clang: libFuzzer (make fuzz)
    pkgs+=(libcmocka-dev nodejs curl chromium clang)
fi
if [ "${1:-}" = "--bench" ]; then
    # nghttp2-client: h2load (make bench-h2load)
    pkgs+=(wrk time nodejs nghttp2-client)
fi
missing=()
for p in "${pkgs[@]}"; do
    # nodejs may come from elsewhere than Debian (a newer build): a working node is enough.
    if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if { [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; } && ! command -v npm >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq --no-install-recommends npm
fi
exit 0
