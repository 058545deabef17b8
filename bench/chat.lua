-- wrk script: POST /v1/chat/completions (OpenAI Chat Completions, Authorization: Bearer), the
-- request of OpenAI-compatible tools. Environment: BENCH_API_KEY, BENCH_STREAM ("1" = SSE).
-- done() prints one machine-readable WRK_RESULT line (microseconds) for bench/report.py.

local key = os.getenv("BENCH_API_KEY") or "sk-bench-missing-key"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. key
wrk.headers["user-agent"] = "OpenAI/Python 1.109.1"
wrk.body = '{"model":"claude-sonnet-4-5","max_tokens":1024,'
  .. '"messages":[{"role":"system","content":"You are a concise assistant. Answer in plain text."},'
  .. '{"role":"user","content":"Write a haiku about a relay that carries messages between clouds."}],'
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
