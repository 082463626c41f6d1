#!/usr/bin/env bash
# Disk full, on a small tmpfs: settee answers 507 insufficient_storage to writes it cannot
# store, keeps serving reads, writes again by itself once space is freed (outside settee, or
# by deleting a database), recovers from a LevelDB write that failed with ENOSPC without a
# restart, starts read-only with little free space, and names ENOSPC in its log. Nothing
# acknowledged is lost (every acknowledged doc is read back; settee-check passes).
#   tools/test-disk-full.sh [SETTEE_BINARY]   (default build/asan/settee)
# Needs root for mount -t tmpfs; without it prints "skipped: ..." and exits 0.
# Last line: "N passed, N failed"; exit status non-zero on a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tools/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
BIN=${1:-build/asan/settee}
CHECK=$(dirname "$BIN")/settee-check
[ -x "$CHECK" ] || CHECK=build/settee-check
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

mnt=$(mktemp -d /tmp/settee-diskfull.XXXXXX)
logs=$(mktemp -d /tmp/settee-diskfull-logs.XXXXXX)
if ! err=$(mount -t tmpfs -o size=48m tmpfs "$mnt" 2>&1); then
    echo "skipped: cannot mount a tmpfs here ($err)"
    rmdir "$mnt"
    echo "0 passed, 0 failed"
    exit 0
fi
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill -KILL "$server_pid" 2>/dev/null
    umount "$mnt" 2>/dev/null && rmdir "$mnt"
}
trap cleanup EXIT

port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
U="http://admin:admin@127.0.0.1:$port"
cat >"$logs/test.ini" <<INI
[log]
level = warning
[admins]
admin = admin
INI

start() { # MIN_FREE_BYTES
    "$BIN" --bind 127.0.0.1 --port "$port" --data-dir "$mnt/db" --config "$logs/test.ini" \
        --write-buffer-size 1048576 --min-free-space "$1" >>"$logs/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 150); do
        curl -sf "$U/_up" >/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
stop() {
    kill -TERM "$server_pid"
    for _ in $(seq 1 200); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null && echo "settee did not stop on SIGTERM within 20 s: killed"
    wait "$server_pid"
    local rc=$?
    server_pid=
    return $rc
}
# status of a request; body in $logs/body
http() { curl -s -o "$logs/body" -w '%{http_code}' -X "$1" "$U$2" ${3:+-H 'Content-Type: application/json' --data-binary "$3"}; }
free_kb() { df -k --output=avail "$mnt" | tail -1 | tr -d ' '; }
# leaves about $1 KB free on the tmpfs with a ballast file named $2
ballast() { local n=$(($(free_kb) - $1)); [ "$n" -gt 0 ] && dd if=/dev/zero of="$mnt/$2" bs=1k count="$n" status=none 2>/dev/null; true; }
# docs of ~60 KB that LevelDB's snappy cannot shrink
pad=$(head -c 45000 /dev/urandom | base64 -w0)
acked="$logs/acked"
: >"$acked"
# writes docs into db $1 until one is refused; prints its status; acknowledged ids go to $acked
fill() {
    local db=$1 i st
    for i in $(seq 1 2000); do
        # ids unique across fills: each fill runs in a subshell of its own ($BASHPID), where
        # $RANDOM would repeat the sequence of an earlier fill (and "f" R i can also collide)
        st=$(http PUT "/$db/f${BASHPID}_${SECONDS}_$i" "{\"pad\":\"${pad:$((i % 1000)):59000}\"}")
        if [ "$st" = 201 ]; then
            echo "$db $(sed -E 's/.*"id":"([^"]+)".*/\1/' "$logs/body")" >>"$acked"
        else
            echo "$st"
            return
        fi
    done
    echo "never refused"
}
# polls a write into db $1 until it is accepted (up to $2 seconds)
write_again() {
    local t st
    for t in $(seq 1 $(($2 * 4))); do
        st=$(http PUT "/$1/again$RANDOM$t" '{"v":1}')
        [ "$st" = 201 ] && return 0
        sleep 0.25
    done
    echo "last answer $st $(cat "$logs/body")"
    return 1
}
log_has() { grep -q "$1" "$logs/server.log"; }

# ---------------------------------------------------------------- 1. the free-space floor
# 16 MiB: with a 1 MiB write buffer, LevelDB's compactions here stay below it
if ! start 16777216; then
    bad "settee did not start on the tmpfs"
    cat "$logs/server.log"
    echo "$passed passed, $failed failed"
    exit 1
fi
http PUT /keep >/dev/null
http PUT /big >/dev/null
http PUT /keep/doc1 '{"v":"kept"}' >/dev/null
dd if=/dev/zero of="$mnt/ballast1" bs=1M count=6 status=none
st=$(fill big)
if [ "$st" = 507 ] && grep -q '"error":"insufficient_storage"' "$logs/body"; then
    ok "a write that cannot be stored: 507 insufficient_storage ($(cat "$logs/body"))"
else
    bad "expected 507 insufficient_storage when the disk fills, got $st $(cat "$logs/body")"
fi
# the refusal came at the floor's edge, where a compaction ending can free a little:
# stay well below it for the checks that follow
ballast 4096 ballast1b
[ "$(http GET /keep/doc1)" = 200 ] && ok "reads keep working while the disk is full" || bad "read failed: $(cat "$logs/body")"
[ "$(http GET '/big/_all_docs?limit=2')" = 200 ] && ok "_all_docs keeps working" || bad "_all_docs failed"
log_has ENOSPC && ok "the log names ENOSPC" || bad "no ENOSPC in the log"
# a LevelDB compaction that ends meanwhile frees its inputs (on a loaded machine it can end
# late, after the ballast above): level the free space again right before each try
for try in 1 2 3; do
    ballast 4096 "ballast1c$try"
    st=$(http POST /keep/_bulk_docs "{\"docs\":[{\"_id\":\"b$try\"}]}")
    [ "$st" = 507 ] && break
done
[ "$st" = 507 ] && ok "_bulk_docs answers 507 too" || bad "_bulk_docs: $st $(cat "$logs/body")"

rm -f "$mnt"/ballast1 "$mnt"/ballast1b "$mnt"/ballast1c*
write_again keep 10 && ok "writes work again by themselves once space is freed outside settee" || bad "writes did not resume after freeing space"

st=$(fill big)
[ "$st" = 507 ] && ok "full again: 507" || bad "second fill: $st"
st=$(http DELETE /big)
[ "$st" = 200 ] && ok "deleting a database on a full disk works" || bad "DELETE /big: $st $(cat "$logs/body")"
write_again keep 30 && ok "writes work again after the deleted database's space came back" || bad "writes did not resume after deleting a database (free $(free_kb) KB)"
grep -v '^big ' "$acked" >"$acked.keep"
mv "$acked.keep" "$acked"

# ---------------------------------------------------------------- 2. LevelDB itself meets ENOSPC
stop || bad "settee exited with an error status on SIGTERM"
start 1 || bad "restart with no free-space floor"
http PUT /hard >/dev/null
ballast 400 ballast2
st=$(fill hard)
if [ "$st" = 507 ] && grep -q insufficient_storage "$logs/body"; then
    ok "a LevelDB write failing with ENOSPC: 507"
else
    bad "LevelDB ENOSPC: expected 507, got $st $(cat "$logs/body")"
fi
log_has "No space left on device (ENOSPC); writes answer 507" && ok "the log names LevelDB's ENOSPC" || bad "no LevelDB ENOSPC line in the log"
[ "$(http GET /keep/doc1)" = 200 ] && ok "reads work after LevelDB's write error" || bad "read after the LevelDB error: $(cat "$logs/body")"
rm -f "$mnt/ballast2"
write_again hard 15 && ok "writes work again without a restart (LevelDB reopened)" || bad "the LevelDB error stayed sticky"
log_has "reopened" && ok "the log says the store was reopened" || bad "no reopen line in the log"

# ---------------------------------------------------------------- 3. starting with little free space
stop || bad "settee exited with an error status on SIGTERM"
ballast 1500 ballast3
if start 4194304; then
    ok "settee starts with $(free_kb) KB free"
    [ "$(http GET /keep/doc1)" = 200 ] && ok "read-only start: reads work" || bad "read on a low-space start"
    st=$(http PUT /keep/lowstart '{"v":1}')
    [ "$st" = 507 ] && ok "read-only start: writes answer 507" || bad "write on a low-space start: $st"
    grep -q "read-only until space is freed" "$logs/server.log" && ok "the start-up log line names ENOSPC and read-only" || bad "no read-only line at start"
    rm -f "$mnt/ballast3"
    write_again keep 10 && ok "writes work once space returns" || bad "writes after space returned"
else
    bad "settee did not start with little free space"
    tail -20 "$logs/server.log"
fi

# ---------------------------------------------------------------- nothing acknowledged lost
lost=0
while read -r db id; do
    [ "$(http GET "/$db/$id")" = 200 ] || { lost=$((lost + 1)); echo "lost: $db/$id"; }
done <"$acked"
[ "$lost" = 0 ] && ok "all $(wc -l <"$acked") acknowledged docs read back" || bad "$lost acknowledged docs lost"
stop || bad "settee exited with an error status on SIGTERM"
if "$CHECK" "$mnt/db" >"$logs/check.log" 2>&1; then ok "settee-check is clean"; else
    bad "settee-check: $(tail -5 "$logs/check.log")"
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$logs/server.log"; then
    bad "sanitizer report:"
    grep -A30 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$logs/server.log" | head -60
fi
echo "logs: $logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
