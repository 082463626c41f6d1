#!/usr/bin/env bash
# settee behind Debian's nginx with packaging/nginx/settee.conf (TLS, HTTP/2 to clients,
# keep-alive to settee, no buffering of feeds): starts a settee and an nginx of its own on
# free loopback ports (a self-signed certificate made here), runs compat-tests/nginx-check.mjs
# through them (PouchDB live sync, request smuggling shapes, a login), and stops both by pid.
# Needs nginx (nginx-light, which tools/install-deps.sh --test installs) and openssl; make test runs it.
#   SETTEE=path/to/settee (default build/settee)
# Last line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
SETTEE=${SETTEE:-build/settee}
command -v nginx >/dev/null || { echo "nginx is missing (apt-get install nginx-light)"; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d /tmp/settee-nginx.XXXXXX)
nginx_pid=""
server_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp" "${data:-}"
}
trap cleanup EXIT
. tools/lib-settee.sh
start_test_settee "$SETTEE" "$tmp" || { cat "$tmp/server.log"; echo "0 passed, 1 failed"; exit 1; }
curl -s -u admin:admin -X PUT "http://127.0.0.1:$port/_node/_local/_config/settee/trusted_proxies" -d '"127.0.0.1"' >/dev/null
nport=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
mkdir -p "$tmp/body" "$tmp/proxy"
sed -e "s|server 127.0.0.1:5984; .*|server 127.0.0.1:$port;|" \
    -e "s|listen 443 ssl http2; .*|listen 127.0.0.1:$nport ssl http2;|" \
    -e "s|ssl_certificate .*|ssl_certificate $tmp/cert.pem;|" \
    -e "s|ssl_certificate_key .*|ssl_certificate_key $tmp/key.pem;|" \
    packaging/nginx/settee.conf >"$tmp/settee.conf"
cat >"$tmp/nginx.conf" <<CONF
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 256; }
http {
    access_log $tmp/access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    include $tmp/settee.conf;
}
CONF
nginx -p "$tmp" -c "$tmp/nginx.conf" -g 'daemon off; master_process off;' &
nginx_pid=$!
for _ in $(seq 1 50); do curl -sk "https://127.0.0.1:$nport/_up" >/dev/null && break; sleep 0.1; done
(cd compat-tests && NGINX_ACCESS_LOG="$tmp/access.log" PROXY="https://admin:admin@127.0.0.1:$nport" SETTEE="http://admin:admin@127.0.0.1:$port" node nginx-check.mjs)
rc=$?
[ $rc -ne 0 ] && { echo "--- nginx error log"; tail -20 "$tmp/error.log"; }
exit $rc
