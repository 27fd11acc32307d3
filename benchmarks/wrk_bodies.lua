-- wrk script for http_bench.py: each wrk thread sends its own file of request
-- bodies (or query strings, for GET), one per line, in order, and counts the
-- answers that were not 2xx. At the end it prints one line of JSON.
--
--   wrk -t2 -c8 -d10s -s wrk_bodies.lua URL -- PREFIX METHOD
--
-- reads PREFIX-0.txt, PREFIX-1.txt, ... (one file per thread).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local prefix = args[1]
  method = args[2] or "POST"
  bodies = {}
  for line in io.lines(prefix .. "-" .. id .. ".txt") do
    bodies[#bodies + 1] = line
  end
  sent = 0
  bad = 0
  wrapped = 0
end

function request()
  sent = sent + 1
  if sent > #bodies then
    wrapped = 1 -- a body sent twice: a signed write is then refused as a replay
  end
  local body = bodies[((sent - 1) % #bodies) + 1]
  if method == "GET" then
    return wrk.format("GET", wrk.path .. "?" .. body)
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status < 200 or status >= 300 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local errors, reused = 0, 0
  for _, t in ipairs(threads) do
    errors = errors + t:get("bad")
    reused = reused + t:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "errors": %d, "socket_errors": %d, "reused_bodies": %d, ' ..
    '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors,
    e.connect + e.read + e.write + e.timeout, reused,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
