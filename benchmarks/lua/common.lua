-- Shared by the learnlog wrk scripts (benchmarks/lua/*.lua). Not run on its own.
--
-- Environment:
--   BENCH_TOKEN   bearer token sent on every request (required)
--   BENCH_FILE    requests, one per line: a JSON body for POST scripts, a path for GET
--                 scripts (required). Every request is pre-formatted once per thread;
--                 thread n starts at its own offset so threads send different keys.
--   BENCH_NAME    name echoed in the JSON summary (defaults to the script's name)
--   BENCH_THREADS the -t given to wrk, to spread the threads' starting offsets (default 2)
--   BENCH_PATH    the path to send the script's bodies to, instead of the script's own PATH
--                 (e.g. update.lua's bodies to another route or app; scripts whose lines
--                 carry the path ignore it)
--
-- The script that loads this file sets METHOD and PATH (PATH = nil: the line is the path;
-- PER_LINE = true: each line is token<TAB>path<TAB>body, BENCH_TOKEN is still required).
-- At the end one JSON line is printed (prefixed by nothing, starting with {"bench":):
-- requests, duration, req/s, latency percentiles in ms, and every kind of error,
-- including responses outside 2xx counted in response() (wrk itself counts only >= 400).

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

local function fail(message)
  io.stderr:write("wrk script: " .. message .. "\n")
  os.exit(2)
end

local function read_lines(path)
  local f, e = io.open(path, "r")
  if not f then fail("cannot open BENCH_FILE " .. tostring(path) .. ": " .. tostring(e)) end
  local lines = {}
  for line in f:lines() do
    if #line > 0 then lines[#lines + 1] = line end
  end
  f:close()
  if #lines == 0 then fail("BENCH_FILE " .. path .. " is empty") end
  return lines
end

local requests_ = {}
local index = 1
non2xx = 0
first_bad = nil

local override = os.getenv("BENCH_PATH")
if PATH and override and override ~= "" then PATH = override end

function init(args)
  local token = os.getenv("BENCH_TOKEN")
  if not token or token == "" then fail("BENCH_TOKEN is not set") end
  local lines = read_lines(os.getenv("BENCH_FILE"))
  local headers = { ["Authorization"] = "Bearer " .. token }
  if METHOD ~= "GET" then headers["Content-Type"] = "application/json" end
  for i, line in ipairs(lines) do
    if PER_LINE then
      -- "<token>\t<path>\t<body>": each request acts as its own caller
      local tok, path, body = string.match(line, "^([^\t]+)\t([^\t]+)\t(.*)$")
      if not tok then fail("BENCH_FILE line " .. i .. " is not token<TAB>path<TAB>body") end
      local own = { ["Authorization"] = "Bearer " .. tok,
                    ["Content-Type"] = "application/json" }
      requests_[i] = wrk.format(METHOD, path, own, body)
    elseif PATH then
      requests_[i] = wrk.format(METHOD, PATH, headers, line)
    else
      requests_[i] = wrk.format(METHOD, line, headers, nil)
    end
  end
  -- Spread the threads' starting points over the pool (wrk runs init() right after each
  -- thread's setup(), so the thread count comes from the environment: BENCH_THREADS).
  local id = thread_id or 1
  local total = tonumber(os.getenv("BENCH_THREADS") or "2") or 2
  local n = #requests_
  index = (math.floor((id - 1) * n / total) % n) + 1
end

function request()
  local r = requests_[index]
  index = index + 1
  if index > #requests_ then index = 1 end
  return r
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == nil then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 400)
    end
  end
end

local function json_string(s)
  if s == nil then return "null" end
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, sample = 0, nil
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    if sample == nil then sample = t:get("first_bad") end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local function ms(p) return latency:percentile(p) / 1000.0 end
  local name = os.getenv("BENCH_NAME") or SCRIPT_NAME or "wrk"
  io.write(string.format(
    '{"bench":%s,"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"latency_ms":{"mean":%.3f,"stdev":%.3f,"min":%.3f,"p50":%.3f,"p75":%.3f,"p90":%.3f,' ..
    '"p99":%.3f,"p999":%.3f,"max":%.3f},' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status_ge_400":%d,' ..
    '"non2xx":%d},"first_bad":%s}\n',
    json_string(name), summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency.mean / 1000.0, latency.stdev / 1000.0, latency.min / 1000.0,
    ms(50), ms(75), ms(90), ms(99), ms(99.9), latency.max / 1000.0,
    e.connect, e.read, e.write, e.timeout, e.status, bad, json_string(sample)))
end
