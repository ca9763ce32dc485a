-- One script for every scenario, driven by environment variables set by bench/run.py:
--   BENCH_METHOD, BENCH_PATH, BENCH_BODY, BENCH_HEADERS (k=v;k=v),
--   BENCH_UNIQUE_KEY=1 to send a fresh Idempotency-Key on every request.
package.path = package.path .. ";" .. os.getenv("BENCH_DIR") .. "/?.lua"
require("report")

local threads = {}
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("tid", tostring(#threads + 1))
  table.insert(threads, thread)
end

function init(args)
  wrk.method = os.getenv("BENCH_METHOD")
  wrk.path = os.getenv("BENCH_PATH")
  local body = os.getenv("BENCH_BODY")
  if body ~= nil and body ~= "" then wrk.body = body end
  for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^;]+") do
    local k, v = string.match(pair, "^([^=]+)=(.*)$")
    wrk.headers[k] = v
  end
  prefix = (os.getenv("BENCH_RUN") or "run") .. "-" .. tid .. "-"
end

local unique = os.getenv("BENCH_UNIQUE_KEY") == "1"

function request()
  if unique then
    counter = counter + 1
    wrk.headers["Idempotency-Key"] = prefix .. counter
  end
  return wrk.format()
end

function done(summary, latency, requests)
  report(summary, latency)
end
