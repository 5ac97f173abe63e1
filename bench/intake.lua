-- wrk script for bench/intake.py: POST /api/v1/issues with a fresh Idempotency-Key per request.
--
-- Run with one connection per thread (-t N -c N): a thread's responses then come back in the order
-- of its requests, so response n answers the request whose key ends in n. Each thread records the
-- status of every answered key; done() writes "thread,n,status" lines to the results file, which
-- bench/intake.py checks against the database (every 201 stored exactly once).
--
-- Argument after "--": the data file; the environment variable INTAKE_RESULTS names the results
-- file. The data file holds lines "token <t>",
-- "tag <description>", "run <key prefix>", "path <url path>", "category <code>" and "point <lon> <lat>".

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local tokens, categories, points = {}, {}, {}
local tag, run, path
-- globals: done() reads them with thread:get
sent, answered, statuses, codes = 0, 0, {}, {}

local function read_data(file)
  for line in io.lines(file) do
    local kind, rest = line:match("^(%S+) (.*)$")
    if kind == "token" then table.insert(tokens, rest)
    elseif kind == "category" then table.insert(categories, rest)
    elseif kind == "point" then
      local lon, lat = rest:match("^(%S+) (%S+)$")
      table.insert(points, {lon, lat})
    elseif kind == "tag" then tag = rest
    elseif kind == "run" then run = rest
    elseif kind == "path" then path = rest
    end
  end
end

function init(args)
  read_data(args[1])
  math.randomseed(id * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. tokens[(id - 1) % #tokens + 1]
end

-- The key of a request is the number of answers so far plus one: a request whose answer never
-- came (wrk reconnects after an error) is retried with its key and its body, as a tablet would
-- (the same key with another point or category is a conflict, 409), and the one request() call
-- wrk makes on the first thread to inspect the script, never sent, costs no key.
local body_of = {}  -- the body of the key being sent (sent): drawn once, resent on a retry

function request()
  sent = answered + 1
  if body_of.n ~= sent then
    local p = points[math.random(#points)]
    body_of.n = sent
    body_of.body = string.format(
      '{"category":"%s","lon":%s,"lat":%s,"description":"%s","channel":"app"}',
      categories[math.random(#categories)], p[1], p[2], tag)
  end
  local body = body_of.body
  -- a UUID, as the field app sends (bench/intake.py, request_key)
  wrk.headers["Idempotency-Key"] = string.format("%s-4%03x-8000-%012x", run, id, sent)
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  codes[answered] = status
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("INTAKE_RESULTS"), "w"))
  for _, thread in ipairs(threads) do
    local id = thread:get("id")
    local got = thread:get("codes")
    out:write(string.format("sent,%d,%d\n", id, thread:get("sent")))
    for n, status in ipairs(got) do
      out:write(string.format("%d,%d,%d\n", id, n, status))
    end
  end
  out:write(string.format("summary,%d,%d,%d,%d,%d,%d,%d\n", summary.duration, summary.requests,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
  for _, q in ipairs({50, 90, 99, 99.9}) do
    out:write(string.format("latency,%s,%d\n", q, latency:percentile(q)))
  end
  out:write(string.format("latency,max,%d\n", latency.max))
  out:close()
end
