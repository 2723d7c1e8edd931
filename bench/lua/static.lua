-- One fixed request, sent over and over on keep-alive connections:
--   BENCH_METHOD  GET or POST (default GET)
--   BENCH_BODY    the form body of a POST (application/x-www-form-urlencoded)
--   BENCH_AUTH    the Authorization header, if any
--   BENCH_EXPECT  the expected status (default 200); anything else is counted as unexpected
local common = require("common")

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH") or ""
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local expect = tonumber(os.getenv("BENCH_EXPECT") or "200")

function response(status, headers, body)
  if status ~= expect then common.unexpected(status, body) end
end
