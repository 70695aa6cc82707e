-- wrk script: POST /v1/view/update (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one view/update body per line, each a different (user, content) key of a
-- pool that run.py has started beforehand (view.start), so rows spread. The references of
-- benchmarks/refs/ take the same script and bodies (they serve the same path; BENCH_PATH
-- sends the bodies elsewhere).
METHOD = "POST"
PATH = "/v1/view/update"
SCRIPT_NAME = "update"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
