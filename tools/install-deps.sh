#!/usr/bin/env bash
# Installs the Debian packages settee builds and tests with, and only those not yet
# installed, so that a second run costs a dpkg query and nothing else.
# Usage: tools/install-deps.sh [--test|--bench]   (--test adds what the test suite needs,
#        --bench what tools/bench/run.sh needs)
set -euo pipefail
pkgs=(build-essential pkg-config libh2o-evloop-dev libleveldb-dev libxxhash-dev libssl-dev
      libyajl-dev zlib1g-dev libcurl4-openssl-dev libmozjs-102-dev libicu-dev)
if [ "${1:-}" = "--test" ]; then
    # chromium: the browser tests (PouchDB in a page, Fauxton at /_utils/); clang: libFuzzer (make fuzz);
    # nginx-light: the front-proxy test (tools/test-nginx.sh starts its own on loopback)
    pkgs+=(libcmocka-dev nodejs curl chromium clang nginx-light)
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
    # Debian starts a packaged daemon on install (nginx on port 80 of every address): the
    # tests start their own on loopback, so a policy-rc.d of our own keeps it from starting
    # and the unit is left disabled, unless the machine already has such a policy.
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    rc=0
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || rc=$?
    if [ "$own_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable nginx >/dev/null 2>&1 || true
    fi
    [ "$rc" -eq 0 ] || exit "$rc"
fi
if { [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; } && ! command -v npm >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq --no-install-recommends npm
fi
exit 0
