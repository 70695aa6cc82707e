-- wrk script: POST /v1/view/update/validate (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one JSON request body per line.
METHOD = "POST"
PATH = "/v1/view/update/validate"
SCRIPT_NAME = "validate"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
