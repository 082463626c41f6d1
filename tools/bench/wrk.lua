-- wrk script of workload 2: single-document GETs of existing docs and PUTs of new
-- ones. Settings come from the environment because wrk passes no options to Lua
-- before setup():
--   BENCH_WRK_MODE   get | put | mix (80% GET, 20% PUT, like CouchDB's figure)
--   BENCH_WRK_GETDB  database that holds docs d0000000 .. d(NDOCS-1)
--   BENCH_WRK_NDOCS  how many docs that database holds
--   BENCH_WRK_PUTDB  database the new docs go to
--   BENCH_WRK_AUTH   optional Authorization header value
--   BENCH_WRK_COOKIE optional Cookie header value (auth.mjs: a session cookie)
--   BENCH_WRK_PREFIX optional path the server is mounted under (from BENCH_TARGETS)
-- done() prints one JSON line that bench.mjs reads.

local mode  = os.getenv("BENCH_WRK_MODE") or "get"
local getdb = os.getenv("BENCH_WRK_GETDB")
local putdb = os.getenv("BENCH_WRK_PUTDB")
local ndocs = tonumber(os.getenv("BENCH_WRK_NDOCS") or "1")
local auth  = os.getenv("BENCH_WRK_AUTH")
local cookie = os.getenv("BENCH_WRK_COOKIE")
local prefix = os.getenv("BENCH_WRK_PREFIX") or ""

-- Each thread gets a number so that the ids of the docs it PUTs never collide.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
if auth and auth ~= "" then headers["Authorization"] = auth end
if cookie and cookie ~= "" then headers["Cookie"] = cookie end

-- A ~1 KB body, like the other workloads' docs; built once per thread.
local filler = string.rep("lorem ipsum dolor sit amet consectetur adipiscing elit ", 18)
local body = '{"type":"bench","n":0,"body":"' .. filler .. '"}'
local n = 0

function init(args)
    math.randomseed(os.time() * 1000 + (tid or 0))
end

function request()
    if mode == "put" or (mode == "mix" and math.random() < 0.2) then
        n = n + 1
        return wrk.format("PUT", string.format("%s/%s/%s-t%d-%d", prefix, putdb, mode, tid, n), headers, body)
    end
    local id = string.format("d%07d", math.random(0, ndocs - 1))
    return wrk.format("GET", prefix .. "/" .. getdb .. "/" .. id, headers)
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"seconds":%f,"p50_ms":%f,"p99_ms":%f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        e.connect, e.read, e.write, e.status, e.timeout))
end
