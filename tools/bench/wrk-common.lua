-- What the wrk scripts run by lib.mjs runWrk share (wrk-view.lua, wrk-find.lua load
-- it with dofile from BENCH_WRK_COMMON): a per-thread id that seeds math.random, and
-- done() printing the one JSON line runWrk reads.

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end

function init(args)
    math.randomseed(os.time() * 1000 + (tid or 0))
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        '{"requests":%d,"seconds":%f,"p50_ms":%f,"p99_ms":%f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
        summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
        e.connect, e.read, e.write, e.status, e.timeout))
end
