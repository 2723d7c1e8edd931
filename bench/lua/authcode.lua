-- The authorization-code flow of a signed-in user whose consent is remembered:
--   GET /oauth/authorize (session cookie)  -> 302 Location: redirect_uri?code=...
--   POST /oauth/token (authorization_code) -> 200 with the tokens
-- Each 302 queues its code; the next request slot exchanges it. One flow = both legs.
--   BENCH_AUTHORIZE  the path and query of the authorization request
--   BENCH_COOKIE     "kt_session=..."
--   BENCH_AUTH       the client's Basic header
--   BENCH_REDIRECT   the redirect URI, form-encoded
local common = require("common")

local authorize = wrk.format("GET", os.getenv("BENCH_AUTHORIZE"), { ["Cookie"] = os.getenv("BENCH_COOKIE") })
local token_headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("BENCH_AUTH"),
}
local redirect = os.getenv("BENCH_REDIRECT")
local codes, head, tail = {}, 1, 0

function request()
  common.started()
  if tail >= head then
    local code = codes[head]
    codes[head] = nil
    head = head + 1
    return wrk.format("POST", "/oauth/token", token_headers,
      "grant_type=authorization_code&code=" .. code .. "&redirect_uri=" .. redirect)
  end
  return authorize
end

function response(status, headers, body)
  if status == 302 then
    local location = headers["location"] or headers["Location"] or ""
    local code = string.match(location, "[?&]code=([^&]+)")
    if code then
      tail = tail + 1
      codes[tail] = code
    else
      common.unexpected(status, location)
    end
  elseif status == 200 and string.find(body, '"access_token"', 1, true) then
    flows = flows + 1
  else
    common.unexpected(status, body)
  end
end
