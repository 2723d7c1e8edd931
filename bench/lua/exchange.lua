-- Not a measurement: makes refresh tokens for the refresh workload. Exchanges each
-- authorization code of BENCH_CODES (a file, one a line) at POST /oauth/token and, once
-- every code has its answer, writes the refresh tokens to BENCH_OUT (one a line) and
-- then creates BENCH_OUT .. ".done"; the harness stops wrk when it sees that file.
-- BENCH_AUTH is the client's Basic header.
local common = require("common")

local codes = {}
for line in io.lines(os.getenv("BENCH_CODES")) do
  if line ~= "" then codes[#codes + 1] = line end
end
local out_path = os.getenv("BENCH_OUT")
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("BENCH_AUTH"),
}
local sent, answered, written = 0, 0, false
local tokens = {}
-- wrk calls request() once before the run to check it; that answer is never sent.
local checked = false

function request()
  if not checked then
    checked = true
    return wrk.format("GET", "/healthz")
  end
  if sent < #codes then
    sent = sent + 1
    return wrk.format("POST", "/oauth/token", headers, "grant_type=authorization_code&code=" .. codes[sent])
  end
  -- Every code is out: keep the connection slots busy with something harmless until
  -- the last answers are in.
  return wrk.format("GET", "/healthz")
end

local function finish()
  local out = assert(io.open(out_path, "w"))
  out:write(table.concat(tokens, "\n"), "\n")
  out:close()
  local marker = assert(io.open(out_path .. ".done", "w"))
  marker:write(tostring(unexpected), "\n")
  marker:close()
  written = true
end

function response(status, headers, body)
  if written then return end
  local token = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
  if status == 200 and token then
    tokens[#tokens + 1] = token
    answered = answered + 1
  elseif status == 200 and string.find(body, '"status"', 1, true) then
    return -- /healthz
  else
    common.unexpected(status, body)
    answered = answered + 1
  end
  if answered >= #codes then finish() end
end
