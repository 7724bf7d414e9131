-- wrk script: POST heartbeats for node-0 .. node-(NODES-1) in turn; BODY_FILE (optional) is a full status body.
-- REQUEST=get instead GETs /api/v1/nodes/<name> (a response with a body, for keep-alive latency).
local nodes = tonumber(os.getenv("NODES") or "1000")
local body = nil
local body_file = os.getenv("BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "r"))
  body = f:read("*a")
  f:close()
end
-- RATE (optional): the whole run's target requests/s; each connection then waits CONNECTIONS/RATE s between
-- requests, so latency is measured at that offered load instead of at saturation.
local rate = tonumber(os.getenv("RATE") or "0")
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
local get = os.getenv("REQUEST") == "get"
local counter = 0
local headers = {["Content-Type"] = "application/json"}

function setup(thread)
  thread:set("offset", math.random(0, nodes - 1))
end

function request()
  counter = counter + 1
  local name = "node-" .. ((counter + offset) % nodes)
  if get then
    return wrk.format("GET", "/api/v1/nodes/" .. name)
  end
  return wrk.format("POST", "/api/v1/nodes/" .. name .. "/heartbeat", headers, body)
end

function delay()
  if rate > 0 then
    return math.floor(connections * 1000 / rate)
  end
  return 0
end

function done(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "errors_status": %d, "errors_connect": %d, ' ..
    '"errors_timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
