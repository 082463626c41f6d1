#!/usr/bin/env bash
# make bench-rapid-reset: a victim client's throughput and p99 during an HTTP/2 rapid-reset
# flood over TLS (tools/settee-h2flood), against the same without the flood, with
# settee's per-connection request-rate limit on (the default) and off. Loopback only,
# bounded: FLOOD_SECONDS (default 30) per flooded run. Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${FLOOD_SECONDS:-30}
work=$(mktemp -d /tmp/settee-rr.XXXXXX)
trap 'kill $sp 2>/dev/null || true; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 >/dev/null 2>&1
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
tport=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
run_server() { # $1: rate limit
    rm -rf "$work/db"
    printf '[log]\nlevel = warning\n[admins]\nadmin = admin\n[settee]\nhttp2_max_request_rate = %s\n' "$1" >"$work/ini"
    build/settee --bind 127.0.0.1 --port "$port" --data-dir "$work/db" --config "$work/ini" \
        --cert-file "$work/cert.pem" --key-file "$work/key.pem" --tls-port "$tport" >"$work/server.log" 2>&1 &
    sp=$!
    for _ in $(seq 50); do curl -sk "https://127.0.0.1:$tport/_up" >/dev/null && break; sleep 0.1; done
}
victim() { # req/s and p99 of 8 keep-alive HTTPS/1.1 clients for $1 s
    wrk -t1 -c8 -d"$1"s --latency "https://127.0.0.1:$tport/_up" |
        awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r, p}'
}
cpu_of() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
echo "| limit | flood | victim req/s | victim p99 | server RSS after (MB) | server CPU (s) | flood streams sent / conns closed by server |"
echo "|---|---|---:|---:|---:|---:|---|"
for limit in 2000 0; do
    run_server "$limit"
    read -r rps p99 < <(victim 10)
    echo "| ${limit/#0/off} | none | $rps | $p99 | $(($(ps -o rss= -p $sp) / 1024)) | $(cpu_of $sp) | - |"
    c0=$(cpu_of $sp)
    build/settee-h2flood --tls --bind 127.0.0.2 --streams 100000000000 --seconds "$SECS" 127.0.0.1 "$tport" >"$work/flood.json" &
    fp=$!
    sleep 1
    read -r rps p99 < <(victim $((SECS - 2)))
    wait $fp
    fl=$(node -e 'const j=require(process.argv[1]);console.log(`${j.streams} / ${j.closed_by_server}`)' "$work/flood.json")
    echo "| ${limit/#0/off} | ${SECS} s | $rps | $p99 | $(($(ps -o rss= -p $sp) / 1024)) | $(awk -v a="$(cpu_of $sp)" -v b="$c0" 'BEGIN{print a-b}') | $fl |"
    kill $sp; wait $sp 2>/dev/null || true
done
