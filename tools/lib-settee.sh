# Sourced by the test runners: starts a settee for tests and waits until it answers.
#   start_test_settee BINARY LOG_DIR
# picks a free loopback port, makes a fresh data dir with a CORS-enabled ini (as a
# browser client needs: origins *, credentials), one server admin admin:admin ([admins]; settee
# hashes the plaintext password at start and writes it back to the ini; the runners pass
# COUCH_URL=http://admin:admin@127.0.0.1:$port) and quiet logs, starts BINARY there
# with its output in LOG_DIR/server.log, and sets:
#   port, data (the temp dir, for the caller to remove), server_pid
# Returns 0 once /_up answers, 1 when it does not within 10 s (or the server exited).
start_test_settee() {
    local bin=$1 logs=$2
    port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    data=$(mktemp -d /tmp/settee-data.XXXXXX)
    cat >"$data/test.ini" <<INI
[chttpd]
enable_cors = true
[cors]
origins = *
credentials = true
[log]
level = warning
[admins]
admin = admin
INI
    "$bin" --bind 127.0.0.1 --port "$port" --data-dir "$data/db" --config "$data/test.ini" \
        >"$logs/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
            "http://127.0.0.1:$port/_up" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
