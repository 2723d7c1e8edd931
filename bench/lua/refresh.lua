-- Refresh-token rotation: every request presents the next refresh token of a list made
-- before the run (BENCH_TOKENS: a file, one token a line); no token is sent twice.
-- BENCH_AUTH is the client's Basic header. When the list is used up, the thread stops
-- and the harness reports the rate over the time the tokens lasted.
local common = require("common")

local auth = os.getenv("BENCH_AUTH")
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  if line ~= "" then tokens[#tokens + 1] = line end
end
local next_index = 1
-- wrk calls request() once before the run to check it; that answer is never sent.
local checked = false
local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = auth,
}

function request()
  if not checked then
    checked = true
    return wrk.format("GET", "/healthz")
  end
  common.started()
  local token = tokens[next_index]
  if token == nil then
    if stopped_at < 0 then stopped_at = common.now() end
    wrk.thread:stop()
    -- Something harmless for the request slot wrk asks for while stopping.
    return wrk.format("GET", "/healthz")
  end
  next_index = next_index + 1
  return wrk.format("POST", "/oauth/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

function response(status, headers, body)
  if status ~= 200 then
    common.unexpected(status, body)
  elseif stopped_at < 0 and not string.find(body, '"refresh_token"', 1, true) then
    common.unexpected(status, body)
  end
end
