-- wrk script: POST /v1/view/update/validate (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- learnlog's own edge cost: same bodies as update.lua, validated and authorised, nothing
-- written (the SPEC §8 ceilings are the reference apps of benchmarks/refs/, run with
-- update.lua). BENCH_FILE: one view/update body per line.
METHOD = "POST"
PATH = "/v1/view/update/validate"
SCRIPT_NAME = "validate"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
