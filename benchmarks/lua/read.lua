-- wrk script: POST /v1/view/read (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one view/read body per line: a seeded learner and the 20 contents of its
-- collection/context.
METHOD = "POST"
PATH = "/v1/view/read"
SCRIPT_NAME = "read"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
