#!/usr/bin/env bash
# What converting a stream costs: relaybox's CPU per stream event for an Anthropic client on an
# Anthropic channel (pass-through) and on a channel of another protocol (converted event by
# event), in alternating rounds against one relaybox process.
#
#   bench/conversion.sh [RELAYBOX_BINARY]
#
# Both channels point at the mock upstream with `chunks=N`, so every answer is a stream of N
# text deltas (plus the protocol's opening and closing events). Each round measures pass-through
# then converted with wrk (bench/messages.lua, "stream": true) and reads relaybox's CPU time
# from /proc; CPU per event = CPU time / (answers × N). It prints every round, the paired ratio
# converted / pass-through per round and the median over the rounds (the figure to read; the
# target is ≤ 1.5).
#
# Environment (all optional):
#   CONV_ROUNDS=8          rounds (each measures both lanes)
#   CONV_DURATION=4        seconds per wrk run
#   CONV_CHUNKS=100        text deltas per answer
#   CONV_CONNECTIONS=8     wrk connections
#   CONV_UPSTREAM=openai   serviceType of the converted channel (openai, responses, gemini)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
ROUNDS="${CONV_ROUNDS:-8}"
DURATION="${CONV_DURATION:-4}"
CHUNKS="${CONV_CHUNKS:-100}"
CONNECTIONS="${CONV_CONNECTIONS:-8}"
UPSTREAM="${CONV_UPSTREAM:-openai}"

ensure_tool wrk || { echo "could not install wrk; install it and rerun" >&2; exit 1; }
build_helpers
relaybox_binary "$@"
use_scratch_dir conversion
start_mock
start_relaybox "$RELAYBOX" ""
PASS_KEY="$(add_lane messages claude "$MOCK_URL/s/chunks=$CHUNKS")"
CONV_KEY="$(add_lane messages "$UPSTREAM" "$MOCK_URL/s/chunks=$CHUNKS")"

# One wrk run with key $1: "<answers/s> <CPU µs per event>".
measure() {
  local key=$1 before after
  BENCH_API_KEY="$key" BENCH_STREAM=1 wrk -t2 -c"$CONNECTIONS" -d1s \
    -s "$BENCH_DIR/messages.lua" "$RELAYBOX_URL/v1/messages" >/dev/null 2>&1
  before="$(cpu_ticks "$RELAYBOX_PID")"
  BENCH_API_KEY="$key" BENCH_STREAM=1 wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$BENCH_DIR/messages.lua" "$RELAYBOX_URL/v1/messages" >"$WORK/wrk.txt" 2>&1
  after="$(cpu_ticks "$RELAYBOX_PID")"
  python3 - "$WORK/wrk.txt" "$((after - before))" "$(getconf CLK_TCK)" "$CHUNKS" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
requests, seconds = int(fields["requests"]), int(fields["duration_us"]) / 1e6
if int(fields["non2xx"]) or not requests:
    sys.exit(f"non-2xx answers or no requests: {text}")
cpu_us = int(sys.argv[2]) / int(sys.argv[3]) * 1e6
print(f"{requests / seconds:.0f} {cpu_us / (requests * int(sys.argv[4])):.3f}")
PY
}

echo "streams of $CHUNKS text deltas, Anthropic client; pass-through (claude) vs converted ($UPSTREAM)"
echo "round  pass answers/s  pass µs/event  conv answers/s  conv µs/event  ratio"
RATIOS=()
for ((round = 1; round <= ROUNDS; round++)); do
  read -r pass_rate pass_cpu <<<"$(measure "$PASS_KEY")"
  read -r conv_rate conv_cpu <<<"$(measure "$CONV_KEY")"
  ratio="$(python3 -c "print(f'{$conv_cpu / $pass_cpu:.3f}')")"
  RATIOS+=("$ratio")
  printf '%5d  %14s  %13s  %14s  %13s  %5s\n' "$round" "$pass_rate" "$pass_cpu" "$conv_rate" "$conv_cpu" "$ratio"
done
python3 -c "import statistics, sys; print(f'median converted / pass-through CPU per event: {statistics.median(map(float, sys.argv[1:])):.3f} (target <= 1.5)')" "${RATIOS[@]}"
