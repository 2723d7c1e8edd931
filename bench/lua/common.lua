-- Shared by the workload scripts of bench/run: per-thread counters, a monotonic clock,
-- and done(), which prints one line "BENCH_RESULT {json}" for the harness to read.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local M = {}

function M.now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- Globals of each thread's Lua state; done() reads them with thread:get().
unexpected = 0          -- responses with a status (or body) the workload did not expect
first_unexpected = ""   -- the first of them, for the report
flows = 0               -- completed multi-request flows (authorization-code workload)
started_at = -1         -- monotonic time of the first request
stopped_at = -1         -- set when a script ran out of input and stopped early

function M.started()
  if started_at < 0 then started_at = M.now() end
end

function M.unexpected(status, body)
  unexpected = unexpected + 1
  if first_unexpected == "" then
    first_unexpected = tostring(status) .. " " .. string.sub(body or "", 1, 200)
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local total_unexpected, total_flows, first = 0, 0, ""
  local started, stopped = -1, -1
  for _, thread in ipairs(threads) do
    total_unexpected = total_unexpected + thread:get("unexpected")
    total_flows = total_flows + thread:get("flows")
    if first == "" then first = thread:get("first_unexpected") end
    local s, e = thread:get("started_at"), thread:get("stopped_at")
    if s >= 0 and (started < 0 or s < started) then started = s end
    if e >= 0 and e > stopped then stopped = e end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "status": %d}, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d, "unexpected": %d, "first_unexpected": %s, '
      .. '"flows": %d, "ran_out_after_s": %.6f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max,
    total_unexpected, json_string(first), total_flows,
    (stopped >= 0 and started >= 0) and (stopped - started) or -1))
end

return M
