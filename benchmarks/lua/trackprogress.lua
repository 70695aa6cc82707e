-- wrk script: PUT /api/logger/trackprogress/{session_id}/ with an interaction, each line
-- a different learner's exercise session, sent with that learner's own token.
-- BENCH_FILE: token<TAB>path<TAB>body per line (run.py starts the sessions beforehand).
METHOD = "PUT"
PATH = nil
PER_LINE = true
SCRIPT_NAME = "trackprogress"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "common.lua")
