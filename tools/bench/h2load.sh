#!/usr/bin/env bash
# make bench-h2load: settee under nghttp2's h2load, by protocol: HTTP/2 over TLS (ALPN h2),
# HTTP/2 cleartext (prior knowledge; [settee] http2_cleartext = true), HTTP/1.1 plain and
# over TLS (h2load --h1), each on GET /_up and GET of a ~1 KB doc, as a server admin
# (basic auth, verified once and then cached). Loopback only, bounded: H2LOAD_N requests
# per run (default 200000) on H2LOAD_C connections (32) with H2LOAD_M streams each (10;
# for HTTP/1.1 that is pipelining, so HTTP/1.1 also runs with 1). Prints a markdown table:
# req/s, and latency percentiles computed from h2load's per-request log (--log-file).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v h2load >/dev/null 2>&1 || tools/install-deps.sh --bench
N=${H2LOAD_N:-200000}
C=${H2LOAD_C:-32}
M=${H2LOAD_M:-10}
work=$(mktemp -d /tmp/settee-h2load.XXXXXX)
sp=
trap '[ -n "$sp" ] && kill $sp 2>/dev/null; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 1 \
    -subj /CN=127.0.0.1 >/dev/null 2>&1
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port=$(free_port)
tport=$(free_port)
printf '[log]\nlevel = warning\n[admins]\nadmin = admin\n[settee]\nhttp2_cleartext = true\n' >"$work/ini"
build/settee --bind 127.0.0.1 --port "$port" --data-dir "$work/db" --config "$work/ini" \
    --cert-file "$work/cert.pem" --key-file "$work/key.pem" --tls-port "$tport" >"$work/server.log" 2>&1 &
sp=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_up" >/dev/null && break; sleep 0.1; done
auth="Authorization: Basic $(printf admin:admin | base64)"
curl -sf -X PUT -H "$auth" "http://127.0.0.1:$port/bench" >/dev/null
body=$(node -e 'console.log(JSON.stringify({type: "bench", text: "x".repeat(900), n: 42, tags: ["a", "b", "c"]}))')
curl -sf -X PUT -H "$auth" -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$port/bench/doc1" >/dev/null

# $1 label, $2 path, $3 m, then h2load's protocol arguments and the base URL last
run() {
    local label=$1 path=$2 m=$3
    shift 3
    local base=${*: -1}
    local args=("${@:1:$#-1}")
    rm -f "$work/log"
    h2load -n "$N" -c "$C" -m "$m" -t 1 -H "$auth" --log-file="$work/log" "${args[@]}" "$base$path" >"$work/out" 2>&1 || true
    local rps ok
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$work/out")
    ok=$(awk '/^status codes:/ {print $3}' "$work/out")
    # the log's third column: microseconds from request start to the end of its response
    read -r p50 p99 p999 max < <(awk -F'\t' '{print $3}' "$work/log" | sort -n |
        awk '{v[NR] = $1} END {printf "%.2f %.2f %.2f %.2f\n", v[int(NR*0.5)]/1000, v[int(NR*0.99)]/1000, v[int(NR*0.999)]/1000, v[NR]/1000}')
    echo "| $label | GET $path | $C×$m | ${rps:-failed} | $p50 | $p99 | $p999 | $max | ${ok:-0} of $N |"
}

echo "| protocol | request | conns×streams | req/s | p50 ms | p99 ms | p99.9 ms | max ms | 2xx |"
echo "|---|---|---|---:|---:|---:|---:|---:|---|"
for path in /_up /bench/doc1; do
    run "HTTP/2 TLS" "$path" "$M" "https://127.0.0.1:$tport"
    run "HTTP/2 h2c" "$path" "$M" "http://127.0.0.1:$port"
    run "HTTP/1.1" "$path" 1 --h1 "http://127.0.0.1:$port"
    run "HTTP/1.1 pipelined" "$path" "$M" --h1 "http://127.0.0.1:$port"
    run "HTTP/1.1 TLS" "$path" 1 --h1 "https://127.0.0.1:$tport"
done
