#!/usr/bin/env bash
# Count the CPU instructions relaybox executes per request, next to the bare proxy's.
#
#   bench/instructions.sh [RELAYBOX_BINARY]
#
# Throughput on a shared 2-core machine moves by ±10–25 % between runs; instruction counts do
# not. Each server runs under valgrind's callgrind while one wrk connection sends the
# benchmark's non-streaming /v1/messages request (bench/messages.lua) for a fixed time; the
# counters are zeroed after a warm-up and read when wrk stops. It prints instructions per request
# for the proxy and relaybox (request threads and log-writer thread apart), the ratio, and the
# relaybox functions with the most instructions per request (inclusive). A change that removes
# work shows here at once, and exactly; bench/ab.sh then says what it is worth in requests/s.
#
# It also measures the same request on a channel of another protocol (an OpenAI Chat upstream,
# the request and answer converted; INSN_UPSTREAM picks another serviceType) in the same
# relaybox process, and prints converted / pass-through (the target is ≤ 1.5).
#
# Caveat: under valgrind the CPU reports no SHA extensions, so sha2 falls back to its software
# code (about 3,400 instructions per key hash that natively are a few hundred).
#
# Environment (all optional):
#   INSN_DURATION=10   seconds of measured load per server (about 500–1,000 requests/s under valgrind)
#   INSN_TOP=25        how many relaybox functions to list
#   INSN_KEEP=DIR      keep the callgrind files there (callgrind_annotate them for call trees)
#   INSN_UPSTREAM=openai  serviceType of the converted channel (openai, responses, gemini)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
DURATION="${INSN_DURATION:-10}"
TOP="${INSN_TOP:-25}"

for tool in wrk valgrind; do
  ensure_tool "$tool" || { echo "could not install $tool; install it and rerun" >&2; exit 1; }
done

build_helpers
relaybox_binary "$@"

use_scratch_dir insn

start_mock

CALLGRIND=(valgrind --tool=callgrind --separate-threads=yes)

# Load $1 (server pid $2, client key $3): warm up, zero the counters, measure, dump them.
# Prints the number of requests answered during the measured run.
count() {
  local url=$1 pid=$2 key=$3
  BENCH_API_KEY="$key" wrk -t1 -c1 -d3s -s "$BENCH_DIR/messages.lua" "$url/v1/messages" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  BENCH_API_KEY="$key" wrk -t1 -c1 -d"${DURATION}s" -s "$BENCH_DIR/messages.lua" \
    "$url/v1/messages" >"$WORK/wrk.txt"
  callgrind_control -d "$pid" >/dev/null
  python3 - "$WORK/wrk.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
if int(fields["non2xx"]) or not int(fields["requests"]):
    sys.exit(f"non-2xx answers or no requests: {text}")
print(fields["requests"])
EOF
}

echo "proxy under callgrind..." >&2
start_proxy "${CALLGRIND[@]}" --callgrind-out-file="$WORK/proxy.out"
PROXY_REQUESTS="$(count "$PROXY_URL" "$PROXY_PID" unused)"
kill "$PROXY_PID"

echo "relaybox under callgrind..." >&2
start_relaybox "$RELAYBOX" "" "${CALLGRIND[@]}" --callgrind-out-file="$WORK/relaybox.out"
PASS_KEY="$(add_lane messages claude "$MOCK_URL")"
CONVERTED_KEY="$(add_lane messages "${INSN_UPSTREAM:-openai}" "$MOCK_URL")"
RELAYBOX_REQUESTS="$(count "$RELAYBOX_URL" "$RELAYBOX_PID" "$PASS_KEY")"
echo "relaybox, converted (${INSN_UPSTREAM:-openai} upstream)..." >&2
CONVERTED_REQUESTS="$(count "$RELAYBOX_URL" "$RELAYBOX_PID" "$CONVERTED_KEY")"
kill -TERM "$RELAYBOX_PID"
wait "$RELAYBOX_PID" 2>/dev/null || true

if [ -n "${INSN_KEEP:-}" ]; then
  mkdir -p "$INSN_KEEP" && cp "$WORK"/*.out* "$INSN_KEEP"/
  echo "proxy $PROXY_REQUESTS relaybox $RELAYBOX_REQUESTS" >"$INSN_KEEP/requests.txt"
fi

python3 - "$WORK" "$PROXY_REQUESTS" "$RELAYBOX_REQUESTS" "$TOP" "$CONVERTED_REQUESTS" "${INSN_UPSTREAM:-openai}" <<'EOF'
import glob, re, subprocess, sys

work, proxy_requests, relaybox_requests, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
converted_requests, upstream = int(sys.argv[5]), sys.argv[6]

def dumps(name, part=1):
    """The per-thread files of the dump taken after measured run `part` (not the final one)."""
    return glob.glob(f"{work}/{name}.out.{part}-*")

def total(path):
    for line in open(path):
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0

def is_log_writer(path):
    # Only the writer thread's file names its loop (`run`, or `commit` where `run` is inlined).
    return re.search(r"sqlite::writer::(run|commit)\b", open(path, errors="replace").read()) is not None

proxy = sum(total(f) for f in dumps("proxy")) / proxy_requests
relaybox_files = dumps("relaybox")
writer_files = [f for f in relaybox_files if is_log_writer(f)]
request_files = [f for f in relaybox_files if f not in writer_files]
request_threads = sum(total(f) for f in request_files) / relaybox_requests
writer = sum(total(f) for f in writer_files) / relaybox_requests

print(f"instructions per non-streaming /v1/messages request "
      f"(proxy {proxy_requests} requests, relaybox {relaybox_requests})")
print(f"  proxy                        {proxy:9,.0f}")
print(f"  relaybox                     {request_threads + writer:9,.0f}   "
      f"{(request_threads + writer) / proxy:.2f} x the proxy")
print(f"    request threads            {request_threads:9,.0f}")
print(f"    log writer thread          {writer:9,.0f}")
converted = sum(total(f) for f in dumps("relaybox", 2)) / converted_requests
print(f"  relaybox, converted          {converted:9,.0f}   "
      f"{converted / (request_threads + writer):.2f} x pass-through "
      f"(Anthropic client, {upstream} upstream; {converted_requests} requests; target <= 1.5)")
print(f"\nrelaybox functions by instructions per request (inclusive, request threads and writer):")
costs = {}
for path in relaybox_files:
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    # One function can be listed once per source file its code came from (inlining): take the
    # largest entry in each thread's file, then add up the threads.
    in_thread = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*?):(.*?)(?: \[.*\])?$", line)
        if m and m.group(3).startswith(("relaybox::", "<relaybox::")):
            name = m.group(3)
            in_thread[name] = max(in_thread.get(name, 0), int(m.group(1).replace(",", "")))
    for name, cost in in_thread.items():
        costs[name] = costs.get(name, 0) + cost
for name, cost in sorted(costs.items(), key=lambda kv: -kv[1])[:top]:
    print(f"  {cost / relaybox_requests:9,.0f}  {name[:150]}")
EOF
