#!/usr/bin/env bash
# Installs the Debian packages settee builds and tests with, and only those not yet
# installed, so that a second run costs a dpkg query and nothing else.
# Usage: tools/install-deps.sh [--test|--bench]   (--test adds what the test suite needs,
#        --bench what tools/bench/run.sh needs)
set -euo pipefail
pkgs=(build-essential pkg-config libh2o-evloop-dev libleveldb-dev libxxhash-dev libssl-dev
      libyajl-dev zlib1g-dev)
if [ "${1:-}" = "--test" ]; then
    pkgs+=(libcmocka-dev nodejs curl clang) # clang: libFuzzer (make fuzz)
fi
if [ "${1:-}" = "--bench" ]; then
    pkgs+=(wrk time nodejs)
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
