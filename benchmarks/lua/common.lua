-- Shared by the benchmark's wrk scripts: status counts per thread, and one JSON line at the end.
-- Loaded with dofile() from the scripts beside it; wrk runs each script in one Lua state per thread
-- plus one for setup() and done().

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

statuses = {}

-- BENCH_DELAY_MS > 0: each connection pauses between requests (a paced load, not a closed loop at
-- full speed), for a random time of that mean, drawn from an exponential distribution: clients that
-- act independently, so that requests arrive spread out (a Poisson stream) rather than in step.
-- A fixed pause kept the connections in step: all of them connect at once, a refusal comes back at
-- once, so a flood of 1,000 logins a second arrived as one burst of 1,000 each second.
-- Defined at the top level, where wrk looks for it.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if delay_ms > 0 then
  function delay()
    return -delay_ms * math.log(1 - math.random())
  end
end

function count_status(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function response(status, headers, body)
  count_status(status)
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d},' ..
    '"statuses":{%s}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    table.concat(parts, ",")))
end
