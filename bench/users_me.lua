-- wrk script: GET /api/v1/users/me with a random bearer token per request.
--
-- Usage: wrk ... -s bench/users_me.lua http://127.0.0.1:PORT -- /path/to/tokens.txt
-- The tokens file holds one access token per line. done() prints one line,
-- "BENCH_RESULT {json}", which bench/__main__.py parses.

local path = "/api/v1/users/me"
local tokens = {}
local threads = {}

-- Per-thread counters (each wrk thread has its own Lua state; done() reads them back via
-- thread:get, so they must be globals of the thread's state).
status_2xx = 0
status_4xx = 0
status_500 = 0
status_503 = 0
status_5xx_other = 0
status_other = 0

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_id", #threads)
end

function init(args)
   local file = args[1]
   if file == nil then
      error("pass the tokens file after --")
   end
   for line in io.lines(file) do
      if #line > 0 then
         table.insert(tokens, line)
      end
   end
   if #tokens == 0 then
      error("no tokens in " .. file)
   end
   -- Different seed per thread, so threads do not replay the same token sequence.
   math.randomseed(os.time() * 1000 + thread_id)
end

function request()
   local token = tokens[math.random(#tokens)]
   return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      status_2xx = status_2xx + 1
   elseif status >= 400 and status < 500 then
      status_4xx = status_4xx + 1
   elseif status == 500 then
      status_500 = status_500 + 1
   elseif status == 503 then
      status_503 = status_503 + 1
   elseif status >= 500 then
      status_5xx_other = status_5xx_other + 1
   else
      status_other = status_other + 1
   end
end

function done(summary, latency, requests)
   local counts = {
      status_2xx = 0, status_4xx = 0, status_500 = 0, status_503 = 0,
      status_5xx_other = 0, status_other = 0,
   }
   for _, thread in ipairs(threads) do
      for key, _ in pairs(counts) do
         counts[key] = counts[key] + (thread:get(key) or 0)
      end
   end
   local fields = {
      string.format('"requests": %d', summary.requests),
      string.format('"duration_us": %d', summary.duration),
      string.format('"bytes": %d', summary.bytes),
      string.format('"latency_p50_us": %d', latency:percentile(50)),
      string.format('"latency_p90_us": %d', latency:percentile(90)),
      string.format('"latency_p99_us": %d', latency:percentile(99)),
      string.format('"latency_max_us": %d', latency.max),
      string.format('"latency_mean_us": %.1f', latency.mean),
      -- wrk's own count of responses with status > 399
      string.format('"non_2xx": %d', summary.errors.status),
      string.format('"socket_connect": %d', summary.errors.connect),
      string.format('"socket_read": %d', summary.errors.read),
      string.format('"socket_write": %d', summary.errors.write),
      string.format('"socket_timeout": %d', summary.errors.timeout),
   }
   for key, value in pairs(counts) do
      table.insert(fields, string.format('"%s": %d', key, value))
   end
   io.write("BENCH_RESULT {" .. table.concat(fields, ", ") .. "}\n")
end
