-- wrk script: GET /v1/summary/list/{userId} (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one request path per line, e.g. /v1/summary/list/bu00000042.
METHOD = "GET"
PATH = nil
SCRIPT_NAME = "summary_list"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
