#!/usr/bin/env bash
# Compare two relaybox builds under the same load, in alternating rounds.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY
#
# Each round measures the bare pass-through proxy, build A and build B, one after the other
# (the order flips every round), each relaybox on a fresh data dir. It prints every round and
# the medians: throughput of each build as a share of the proxy's in the same round, B/A, CPU
# time per request, and p50 latency (the figure to compare at AB_CONNECTIONS=1). One machine's noise moves single runs by ±10–25 %; only the medians of
# several rounds say whether a change helped. See bench/README.md.
#
# Environment (all optional):
#   AB_ROUNDS=6          rounds
#   AB_DURATION=5        seconds per measured wrk run (after a 2 s warm-up)
#   AB_CONNECTIONS=32    wrk connections (two wrk threads, one for a single connection)
#   AB_MODE=messages     messages | stream | chat
#   AB_ENV_A, AB_ENV_B   extra environment for relaybox A / B, e.g. "RELAYBOX_LOG_LEVEL=info"
set -euo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
  echo "usage: bench/ab.sh OLD_RELAYBOX_BINARY NEW_RELAYBOX_BINARY" >&2
  exit 2
fi
BIN_A="$(realpath "$1")"
BIN_B="$(realpath "$2")"
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
ROUNDS="${AB_ROUNDS:-6}"
DURATION="${AB_DURATION:-5}"
CONNECTIONS="${AB_CONNECTIONS:-32}"
THREADS=$((CONNECTIONS < 2 ? 1 : 2))
MODE="${AB_MODE:-messages}"
case $MODE in
  messages) SCRIPT=messages.lua PATH_=/v1/messages STREAM=0 ;;
  stream) SCRIPT=messages.lua PATH_=/v1/messages STREAM=1 ;;
  chat) SCRIPT=chat.lua PATH_=/v1/chat/completions STREAM=0 ;;
  *)
    echo "AB_MODE must be messages, stream or chat" >&2
    exit 2
    ;;
esac
command -v wrk >/dev/null || {
  echo "wrk is needed (apt-get install wrk)" >&2
  exit 1
}

use_scratch_dir ab

build_helpers
start_mock
start_proxy

# One wrk run against $1 (server pid $2): prints "req/s cpu_us_per_request p50_us".
measure() {
  local url=$1 pid=$2 key=$3 before after
  BENCH_API_KEY="$key" BENCH_STREAM="$STREAM" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s \
    -s "$BENCH_DIR/$SCRIPT" "$url$PATH_" >/dev/null 2>&1
  before="$(cpu_ticks "$pid")"
  BENCH_API_KEY="$key" BENCH_STREAM="$STREAM" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$BENCH_DIR/$SCRIPT" "$url$PATH_" >"$WORK/wrk.txt" 2>&1
  after="$(cpu_ticks "$pid")"
  python3 - "$WORK/wrk.txt" "$((after - before))" "$(getconf CLK_TCK)" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
requests, seconds = int(fields["requests"]), int(fields["duration_us"]) / 1e6
if int(fields["non2xx"]) or not requests:
    sys.exit(f"non-2xx answers or no requests: {text}")
print(f"{requests / seconds:.0f} {int(sys.argv[2]) / int(sys.argv[3]) * 1e6 / requests:.0f} "
      f"{fields['p50_us']}")
EOF
}

# Start relaybox $1 with extra environment $2 on a fresh data dir, measure it, stop it.
measure_relaybox() {
  start_relaybox "$1" "$2" || exit 1
  measure "$RELAYBOX_URL" "$RELAYBOX_PID" "$RELAYBOX_KEY"
  kill -TERM "$RELAYBOX_PID"
  wait "$RELAYBOX_PID" 2>/dev/null || true
}

echo "A: $BIN_A${AB_ENV_A:+ ($AB_ENV_A)}"
echo "B: $BIN_B${AB_ENV_B:+ ($AB_ENV_B)}"
echo "$MODE, $CONNECTIONS connections, $ROUNDS rounds of ${DURATION} s runs"
printf '%-6s %9s %9s %9s %7s %7s %6s %8s %8s %8s %8s %8s %8s\n' round proxy A B A/proxy B/proxy B/A \
  cpu-prx cpu-A cpu-B p50-prx p50-A p50-B
: >"$WORK/rounds.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  order=(proxy A B)
  ((round % 2 == 0)) && order=(B A proxy)
  declare -A result=()
  for target in "${order[@]}"; do
    case $target in
      proxy) result[proxy]="$(measure "$PROXY_URL" "$PROXY_PID" unused)" ;;
      A) result[A]="$(measure_relaybox "$BIN_A" "${AB_ENV_A:-}")" ;;
      B) result[B]="$(measure_relaybox "$BIN_B" "${AB_ENV_B:-}")" ;;
    esac
  done
  echo "$round ${result[proxy]} ${result[A]} ${result[B]}" | tee -a "$WORK/rounds.txt" |
    awk '{printf "%-6s %9d %9d %9d %6.1f%% %6.1f%% %6.3f %8d %8d %8d %8d %8d %8d\n",
      $1, $2, $5, $8, 100 * $5 / $2, 100 * $8 / $2, $8 / $5, $3, $6, $9, $4, $7, $10}'
done
python3 - "$WORK/rounds.txt" <<'EOF'
import statistics as st, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
med = lambda values: st.median(values)
# Columns: round, then req/s, CPU µs per request and p50 µs of the proxy, A and B.
print(f"medians: A {100 * med([r[4] / r[1] for r in rows]):.1f} % of the proxy, "
      f"B {100 * med([r[7] / r[1] for r in rows]):.1f} %, B/A {med([r[7] / r[4] for r in rows]):.3f}; "
      f"CPU per request: proxy {med([r[2] for r in rows]):.0f} µs, A {med([r[5] for r in rows]):.0f} µs, "
      f"B {med([r[8] for r in rows]):.0f} µs; p50: proxy {med([r[3] for r in rows]):.0f} µs, "
      f"A {med([r[6] for r in rows]):.0f} µs, B {med([r[9] for r in rows]):.0f} µs")
EOF
