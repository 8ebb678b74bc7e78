-- wrk script: POST /v1/skills with a new document on every request. Two modes:
--   versions  one skill, a new version per request (NAME 1.0.1, 1.0.2, ...)
--   names     a new skill per request (NAME-1, NAME-2, ... each at 1.0.0)
-- Usage: wrk -t1 -c8 -d10s --latency -s bench/publish.lua http://127.0.0.1:PORT -- NAME [versions|names]
-- Every answer must be 201 Created; anything else is counted and reported by done() as
-- "BENCH_NON201 <count>" plus the first bad status and body, so read_path.py can fail loudly.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  name = args[1] or "bench"
  mode = args[2] or "versions"
  counter = 0
  non201 = 0
  first_bad = ""
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  counter = counter + 1
  -- Threads get disjoint names or minor versions, so -t N still publishes distinct documents.
  local skill, version
  if mode == "names" then
    skill, version = string.format("%s-%d-%d", name, tid, counter), "1.0.0"
  else
    skill, version = name, string.format("1.%d.%d", tid, counter)
  end
  local body = string.format(
    '{"apiVersion":"agentreg.dev/v1","kind":"Skill",'
      .. '"metadata":{"namespace":"com.bench","name":"%s","version":"%s"},'
      .. '"spec":{"description":"benchmark skill","instructions":"publish benchmark"}}',
    skill, version
  )
  return wrk.format("POST", "/v1/skills", headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    non201 = non201 + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local total = 0
  local bad = ""
  for _, thread in ipairs(threads) do
    total = total + (thread:get("non201") or 0)
    local first = thread:get("first_bad") or ""
    if bad == "" and first ~= "" then
      bad = first
    end
  end
  io.write(string.format("BENCH_NON201 %d\n", total))
  if bad ~= "" then
    io.write("BENCH_FIRST_BAD " .. string.gsub(bad, "\n", " ") .. "\n")
  end
end
