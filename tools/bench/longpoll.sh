#!/usr/bin/env bash
# make bench-longpoll: idle longpoll clients against a fresh release settee
# (build/settee-bench-longpoll): RSS per waiting client, and how long one write takes
# to reach all of them (first, t50, t99, t100 from sending the PUT) with the server's
# CPU over that span. LONGPOLL_CLIENTS (default 10000) clients, LONGPOLL_ROUNDS (3)
# rounds on one server; the first round's RSS figure is the one that counts (later
# rounds reuse the heap the first one grew). Loopback only. Prints one JSON line per
# round, then the server's RSS 25 s after the last round (the heap given back).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${LONGPOLL_CLIENTS:-10000}
ROUNDS=${LONGPOLL_ROUNDS:-3}
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CLIENTS * 2 + 100)) ]; then
    echo "bench-longpoll: open-file limit $(ulimit -n) is below the $((CLIENTS * 2 + 100)) this needs" >&2
    exit 1
fi
work=$(mktemp -d /tmp/settee-longpoll.XXXXXX)
sp=
trap '[ -n "$sp" ] && kill $sp 2>/dev/null; rm -rf "$work"' EXIT
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf '[log]\nlevel = warning\n[admins]\nadmin = admin\n' >"$work/ini"
build/settee --bind 127.0.0.1 --port "$port" --data-dir "$work/db" --config "$work/ini" >"$work/server.log" 2>&1 &
sp=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_up" >/dev/null && break; sleep 0.1; done
sleep 1
build/settee-bench-longpoll --clients "$CLIENTS" --rounds "$ROUNDS" --pid "$sp" --user admin --password admin \
    127.0.0.1 "$port"
sleep 25
echo "{\"rss_after_kb\":$(awk '/VmRSS/ {print $2}' "/proc/$sp/status")}"
