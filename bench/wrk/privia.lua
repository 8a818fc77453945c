-- wrk script for the Privia benchmark (bench/run.py sets the environment).
--
--   BENCH_METHOD         GET or POST
--   BENCH_PATH           request path, e.g. /api/conversations?limit=50
--   BENCH_TOKEN          bearer token ("" for none)
--   BENCH_QUESTION       POST /api/query: the question; with it, each request is a chat turn
--   BENCH_CONVERSATIONS  comma-separated ids; every other turn continues one of them (round
--                        robin per thread), the others start a new conversation
--   BENCH_RATE           requests a second across all connections, arriving as a Poisson process
--                        (each thread draws its share's gaps); unset: each connection sends its
--                        next request as soon as it has the last response (saturation)
--   BENCH_THREADS        wrk's -t, which a script cannot read (for BENCH_RATE)
--
-- done() prints one line "BENCH_JSON {...}" with the counts and latency percentiles (µs).

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/api/health"
local token = os.getenv("BENCH_TOKEN") or ""
local question = os.getenv("BENCH_QUESTION")
local conversations = {}
for id in string.gmatch(os.getenv("BENCH_CONVERSATIONS") or "", "[^,]+") do
  conversations[#conversations + 1] = id
end

local headers = {}
if token ~= "" then headers["Authorization"] = "Bearer " .. token end

local counter = 0
local threads = 0

-- Threads start at different places in the conversation list.
setup = function(thread)
  thread:set("first", threads * 7919)
  threads = threads + 1
end

init = function(args)
  counter = first or 0
end

-- Paced load: wrk asks delay() before each request; the answer is how long this connection
-- waits for the thread's next arrival. An arrival that comes while all the thread's
-- connections are busy is sent as soon as one is free, late and timed from its write (wrk
-- times from the write), so a server that falls behind shows as a rate below BENCH_RATE.
local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock, bench_timespec *now);
  ]]
  local now = ffi.new("bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end
  local mean_gap_ms = 1000 * tonumber(os.getenv("BENCH_THREADS") or "1") / rate
  local next_arrival

  delay = function()
    local t = now_ms()
    if not next_arrival then
      math.randomseed((first or 0) + 1)
      next_arrival = t
    end
    next_arrival = next_arrival - math.log(1 - math.random()) * mean_gap_ms
    return math.max(0, math.floor(next_arrival - t + 0.5))
  end
end

local function turn()
  counter = counter + 1
  local body
  if counter % 2 == 0 and #conversations > 0 then
    local id = conversations[(math.floor(counter / 2) % #conversations) + 1]
    body = string.format('{"question":"%s","conversation_id":"%s"}', question, id)
  else
    body = string.format('{"question":"%s"}', question)
  end
  return wrk.format(method, path, headers, body)
end

if question then
  headers["Content-Type"] = "application/json"
  request = turn
else
  -- A fixed request: wrk builds it once.
  wrk.method = method
  wrk.path = path
  wrk.headers = headers
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
