-- wrk script of the Mango benchmark (find.mjs): POST _find with a random type per
-- request. Settings come from the environment:
--   BENCH_WRK_DB        database
--   BENCH_WRK_NTYPES    types are t00 .. t(NTYPES-1)
--   BENCH_WRK_NDOCS     ts runs 0 .. NDOCS-1 (range mode picks a random lower bound)
--   BENCH_WRK_FINDMODE  eq: {"type": T} sorted by [type, ts] descending (the index
--                       needs ts in the selector or the sort) | range: {"type": T,
--                       "ts": {"$gt": X}}; limit 100
--   BENCH_WRK_AUTH      optional Authorization header value
--   BENCH_WRK_PREFIX    optional path the server is mounted under
-- setup/init/done come from wrk-common.lua.

local db = os.getenv("BENCH_WRK_DB")
local ntypes = tonumber(os.getenv("BENCH_WRK_NTYPES") or "1")
local ndocs = tonumber(os.getenv("BENCH_WRK_NDOCS") or "1")
local mode = os.getenv("BENCH_WRK_FINDMODE") or "eq"
local auth = os.getenv("BENCH_WRK_AUTH")
local prefix = os.getenv("BENCH_WRK_PREFIX") or ""
local headers = { ["Accept"] = "application/json", ["Content-Type"] = "application/json" }
if auth and auth ~= "" then headers["Authorization"] = auth end

dofile(os.getenv("BENCH_WRK_COMMON"))

function request()
    local t = string.format("t%02d", math.random(0, ntypes - 1))
    local sel
    if mode == "range" then
        sel = string.format('{"type":"%s","ts":{"$gt":%d}}', t, math.random(0, ndocs - 1))
    else
        sel = string.format('{"type":"%s"}', t)
    end
    local sort = mode == "range" and "" or ',"sort":[{"type":"desc"},{"ts":"desc"}]'
    local body = '{"selector":' .. sel .. sort .. ',"limit":100}'
    return wrk.format("POST", prefix .. "/" .. db .. "/_find", headers, body)
end
