-- wrk script: POST /v1/messages (Anthropic Messages), the request Claude Code and the
-- anthropic SDK send. Environment:
--   BENCH_API_KEY  client key (relaybox key; the mock accepts any non-empty one)
--   BENCH_STREAM   "1" for "stream": true (SSE), anything else for a JSON reply
--   BENCH_AUTH     "bearer" for Authorization: Bearer, else x-api-key (default)
-- done() prints one machine-readable WRK_RESULT line (microseconds) for bench/report.py.

local key = os.getenv("BENCH_API_KEY") or "sk-bench-missing-key"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.path = "/v1/messages"
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.headers["user-agent"] = "claude-cli/2.0.14 (external, cli)"
if os.getenv("BENCH_AUTH") == "bearer" then
  wrk.headers["authorization"] = "Bearer " .. key
else
  wrk.headers["x-api-key"] = key
end
wrk.body = '{"model":"claude-sonnet-4-5","max_tokens":1024,'
  .. '"system":"You are a concise assistant. Answer in plain text.",'
  .. '"messages":[{"role":"user","content":"Write a haiku about a relay that carries messages between clouds."}],'
  .. '"metadata":{"user_id":"user_3f9a_account__session_5b2e8c1d-7a4f-4e0b-9c61-2d8f0a7b3e15"},'
  .. '"stream":' .. (stream and "true" or "false") .. '}'

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f"
      .. " non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
