-- wrk script of the view benchmark (views.mjs): single-key view lookups with a
-- random key per request. Settings come from the environment (wrk passes no
-- options to Lua before setup()):
--   BENCH_WRK_DB        database holding _design/b with view by_type
--   BENCH_WRK_NTYPES    keys are t0000 .. t(NTYPES-1)
--   BENCH_WRK_VIEWMODE  map (reduce=false&limit=10) | reduce (group=true)
--   BENCH_WRK_AUTH      optional Authorization header value
--   BENCH_WRK_PREFIX    optional path the server is mounted under
-- setup/init/done come from wrk-common.lua.

local db = os.getenv("BENCH_WRK_DB")
local ntypes = tonumber(os.getenv("BENCH_WRK_NTYPES") or "1")
local mode = os.getenv("BENCH_WRK_VIEWMODE") or "map"
local auth = os.getenv("BENCH_WRK_AUTH")
local prefix = os.getenv("BENCH_WRK_PREFIX") or ""
local headers = { ["Accept"] = "application/json" }
if auth and auth ~= "" then headers["Authorization"] = auth end
local tail = mode == "reduce" and "&group=true" or "&reduce=false&limit=10"

dofile(os.getenv("BENCH_WRK_COMMON"))

function request()
    local key = string.format("%%22t%04d%%22", math.random(0, ntypes - 1))
    return wrk.format("GET", prefix .. "/" .. db .. "/_design/b/_view/by_type?key=" .. key .. tail, headers)
end
