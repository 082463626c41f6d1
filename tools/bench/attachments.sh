#!/usr/bin/env bash
# make bench-attachments: what attachment transfers cost settee in memory (issue 10's
# bounded-memory goals). One settee (BIN, default build/settee) on loopback; the peak
# resident memory (sampled, see step_begin) minus that at rest before the step, for:
#   - one PUT of a SIZE_MB (default 60) binary attachment, and its ratio to the body;
#   - four concurrent GETs of it;
#   - one GET of a ranged half of it;
#   - the doc with it inline (base64 in JSON: doc GET, _bulk_get) and open_revs multipart;
#   - a PUT and a GET of a BIG_MB (default 200) attachment (max_http_request_size raised).
# Prints a markdown table; bounded: a handful of requests.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/settee}
SIZE_MB=${SIZE_MB:-60}
BIG_MB=${BIG_MB:-200}
work=$(mktemp -d /tmp/settee-attbench.XXXXXX)
sp=
trap '[ -n "$sp" ] && kill $sp 2>/dev/null; rm -rf "$work"' EXIT
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
printf '[log]\nlevel = warning\n[admins]\nadmin = admin\n[chttpd]\nmax_http_request_size = %d\n' \
    $(((BIG_MB + 16) << 20)) >"$work/ini"
"$BIN" --bind 127.0.0.1 --port "$port" --data-dir "$work/db" --config "$work/ini" >"$work/server.log" 2>&1 &
sp=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/_up" >/dev/null && break; sleep 0.1; done
U="http://admin:admin@127.0.0.1:$port"
head -c $((SIZE_MB << 20)) /dev/urandom >"$work/a.bin"
head -c $((BIG_MB << 20)) /dev/urandom >"$work/big.bin"
curl -sf -X PUT "$U/db" >/dev/null

kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# Peaks are sampled every 10 ms, anonymous memory (RssAnon: heap, buffers) apart from
# file pages mapped in (RssFile + RssShmem: LevelDB's table files, h2o's temp file for
# a large request body), which the kernel can reclaim under pressure.
rest_anon=0 rest_file=0 sampler=
step_begin() {
    sync
    sleep 0.5
    rest_anon=$(kb $sp RssAnon) rest_file=$(($(kb $sp RssFile) + $(kb $sp RssShmem)))
    echo "$rest_anon $rest_file" >"$work/peak"
    touch "$work/sampling"
    (
        pa=0 pf=0
        while [ -e "$work/sampling" ]; do
            a=$(kb $sp RssAnon) f=$(($(kb $sp RssFile) + $(kb $sp RssShmem)))
            [ "$a" -gt "$pa" ] && pa=$a
            [ "$f" -gt "$pf" ] && pf=$f
            echo "$pa $pf" >"$work/peak"
            sleep 0.01
        done
    ) &
    sampler=$!
    t0=$(date +%s.%N)
}
step_end() { # $1 step, $2 body MB, $3 check
    local secs
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    rm -f "$work/sampling"
    wait $sampler
    read -r pa pf <"$work/peak"
    awk -v s="$1" -v b="$2" -v ra="$rest_anon" -v pa="$pa" -v rf="$rest_file" -v pf="$pf" -v c="$3" -v t="$secs" \
        'BEGIN{a=(pa-ra)/1024; if (a<0) a=0; f=(pf-rf)/1024; if (f<0) f=0;
               printf "| %s | %d | %.1f | %.1f | %.2fx | %.1f | %s | %s |\n", s, b, ra/1024, a, a/b, f, t, c}'
}

echo "| step | body (MB) | anon RSS at rest (MB) | anon peak above rest (MB) | anon peak / body | file pages peak above rest (MB) | time (s) | check |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
step_begin
curl -sf -X PUT "$U/db/doc/a.bin" -H 'content-type: application/octet-stream' --data-binary @"$work/a.bin" >/dev/null
step_end "PUT one attachment" "$SIZE_MB" 201

step_begin
pids=()
for i in 1 2 3 4; do
    curl -sf "$U/db/doc/a.bin" -o "$work/got$i" &
    pids+=($!)
done
wait "${pids[@]}"
ok=ok
for i in 1 2 3 4; do cmp -s "$work/got$i" "$work/a.bin" || ok=DIFFERS; done
step_end "4 concurrent GETs" "$((SIZE_MB * 4))" "$ok"
rm -f "$work"/got*

step_begin
half=$(((SIZE_MB << 20) / 2))
curl -sf -H "range: bytes=$half-" "$U/db/doc/a.bin" -o "$work/r"
ok=$(tail -c +$((half + 1)) "$work/a.bin" | cmp -s - "$work/r" && echo ok || echo DIFFERS)
step_end "GET Range (second half)" "$((SIZE_MB / 2))" "$ok"
rm -f "$work/r"

step_begin
curl -sf "$U/db/doc?attachments=true" -o "$work/j"
ok=$(node -e 'const fs=require("fs");const d=JSON.parse(fs.readFileSync(process.argv[1]));
  process.stdout.write(Buffer.from(d._attachments["a.bin"].data,"base64").equals(fs.readFileSync(process.argv[2]))?"ok":"DIFFERS")' \
    "$work/j" "$work/a.bin")
step_end "GET doc?attachments=true (base64 in JSON)" "$((SIZE_MB * 4 / 3))" "$ok"
step_begin
curl -sf -X POST "$U/db/_bulk_get?revs=true&attachments=true" -H 'content-type: application/json' \
    -d '{"docs":[{"id":"doc"}]}' -o "$work/j"
ok=$(node -e 'const fs=require("fs");const d=JSON.parse(fs.readFileSync(process.argv[1])).results[0].docs[0].ok;
  process.stdout.write(Buffer.from(d._attachments["a.bin"].data,"base64").equals(fs.readFileSync(process.argv[2]))?"ok":"DIFFERS")' \
    "$work/j" "$work/a.bin")
step_end "_bulk_get attachments=true" "$((SIZE_MB * 4 / 3))" "$ok"
step_begin
curl -sf -H 'accept: multipart/mixed' "$U/db/doc?open_revs=all&attachments=true" -o "$work/j"
ok=$([ "$(stat -c %s "$work/j")" -gt $((SIZE_MB << 20)) ] && echo ok || echo SHORT)
step_end "open_revs multipart/mixed" "$SIZE_MB" "$ok"
rm -f "$work/j"

step_begin
curl -sf -X PUT "$U/db/big/big.bin" -H 'content-type: application/octet-stream' --data-binary @"$work/big.bin" >/dev/null
step_end "PUT big attachment" "$BIG_MB" 201
step_begin
curl -sf "$U/db/big/big.bin" -o "$work/got"
ok=$(cmp -s "$work/got" "$work/big.bin" && echo ok || echo DIFFERS)
step_end "GET big attachment" "$BIG_MB" "$ok"
echo
echo "server RSS at the end: $(($(kb $sp VmRSS) / 1024)) MB"
