-- wrk script: POST /v1/view/update (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one view/update body per line, each a different (user, content) key of a
-- pool that run.py has started beforehand (view.start), so rows spread.
METHOD = "POST"
PATH = "/v1/view/update"
SCRIPT_NAME = "update"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
