#!/usr/bin/env bash
# Builds the Debian package (dpkg-buildpackage -b from debian/), installs it, starts settee
# as the unit does and checks /_up and /_utils/, then removes the package.
#   - the build runs in a copy of the tree (git ls-files, plus web/node_modules when there,
#     hard-linked) in a temp dir, so the .deb and dpkg's files land there, not beside the tree;
#   - with systemd as PID 1 it starts settee.service and checks port 5984; otherwise it runs
#     the unit's command line (ExecStart with the unit's Environment=) as a plain process on
#     a free loopback port, stopped by pid.
# Needs root (dpkg -i) and debhelper; takes about a minute (npm ci when web/ is not installed).
# Not part of tools/run-tests.sh. Last line: "deb ok" or "deb FAILED: why".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/settee-deb.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" 2>/dev/null; fi
}
trap cleanup EXIT
fail() { echo "logs in $work"; echo "deb FAILED: $*"; exit 1; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
command -v dh >/dev/null 2>&1 || { $SUDO apt-get install -y -qq --no-install-recommends debhelper fakeroot >"$work/apt.log" 2>&1 || fail "apt-get install debhelper"; }

# --- build ----------------------------------------------------------------------------
mkdir -p "$work/src"
git ls-files -z | tar -c --null -T - | tar -x -C "$work/src"
[ -d web/node_modules ] && cp -al web/node_modules "$work/src/web/node_modules"
start=$(date +%s)
deps_flag=""
(cd "$work/src" && dpkg-checkbuilddeps >"$work/builddeps.log" 2>&1) || { echo "build deps not met (see $work/builddeps.log): building with -d"; deps_flag=-d; }
(cd "$work/src" && dpkg-buildpackage -b -us -uc $deps_flag) >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$work"/settee_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no .deb built"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $(( $(date +%s) - start ))s"
dpkg-deb -c "$deb" | awk '{print $6}' | grep -E 'bin/|systemd|man1|www/index.html|default' | sed 's/^/  /'

# --- install and start -------------------------------------------------------------------
$SUDO dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i"; }
unit=/usr/lib/systemd/system/settee.service
[ -f "$unit" ] || unit=/lib/systemd/system/settee.service
[ -f "$unit" ] || fail "the unit is not installed"
if [ "$(ps -o comm= -p 1)" = systemd ] && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl restart settee.service || fail "systemctl restart settee"
    url=http://127.0.0.1:5984
    how="systemctl"
else
    # the unit's command line and environment, as a plain process
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    env_line=$(sed -n 's/^Environment=//p' "$unit")
    port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    mkdir -p "$work/state"
    env $env_line SETTEE_DATA_DIR="$work/state" SETTEE_PORT="$port" SETTEE_ADMIN_USER=admin SETTEE_ADMIN_PASSWORD=admin \
        $exec_start >"$work/server.log" 2>&1 &
    pid=$!
    url=http://127.0.0.1:$port
    how="no systemd as PID 1: ran '$exec_start' with $env_line (data dir moved to $work/state)"
fi
ok=0
for _ in $(seq 1 100); do
    curl -fs "$url/_up" >"$work/up.json" 2>/dev/null && { ok=1; break; }
    sleep 0.1
done
[ "$ok" = 1 ] || { cat "$work/server.log" 2>/dev/null; fail "/_up did not answer ($how)"; }
echo "started ($how): /_up says $(cat "$work/up.json")"
code=$(curl -s -o "$work/utils.html" -w '%{http_code}' "$url/_utils/")
[ "$code" = 200 ] && grep -q Fauxton "$work/utils.html" || fail "/_utils/ answered $code, not Fauxton"
echo "/_utils/ serves Fauxton from /usr/share/settee/www"
man -w settee >/dev/null 2>&1 && echo "man settee: $(man -w settee)"
cleanup
pid=""
$SUDO dpkg -r settee >"$work/remove.log" 2>&1 || fail "dpkg -r"
echo "removed the package; build logs in $work"
echo "deb ok"
