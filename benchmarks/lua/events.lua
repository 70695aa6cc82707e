-- wrk script: POST /v1/events (see common.lua for BENCH_TOKEN / BENCH_FILE).
-- BENCH_FILE: one body per line, each {"request":{"events":[1000 view.update events]}}.
-- events/s = requests/s x 1000.
METHOD = "POST"
PATH = "/v1/events"
SCRIPT_NAME = "events"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
