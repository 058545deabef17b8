#!/usr/bin/env bash
# Latency at one connection: direct to the mock, through the bare proxy and through relaybox,
# in alternating rounds.
#
#   bench/latency.sh [RELAYBOX_BINARY]
#
# One connection sends the benchmark's non-streaming /v1/messages request (bench/messages.lua).
# Each round measures direct, proxy and relaybox one after the other, so all three see the same
# state of a shared machine; the medians over the rounds are what to read. It prints every round
# and, per target, the median p50 and p99 and the median latency added over direct in the same
# round.
#
# Environment (all optional):
#   LATENCY_ROUNDS=10    rounds
#   LATENCY_DURATION=4   seconds per wrk run
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
ROUNDS="${LATENCY_ROUNDS:-10}"
DURATION="${LATENCY_DURATION:-4}"

ensure_tool wrk || { echo "could not install wrk; install it and rerun" >&2; exit 1; }
build_helpers
relaybox_binary "$@"

use_scratch_dir latency

start_mock
start_proxy
start_relaybox "$RELAYBOX" ""

# One wrk run against $1 with client key $2: prints "p50_us p99_us".
measure() {
  BENCH_API_KEY="$2" wrk -t1 -c1 -d"${DURATION}s" -s "$BENCH_DIR/messages.lua" \
    "$1/v1/messages" >"$WORK/wrk.txt"
  python3 - "$WORK/wrk.txt" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
if int(fields["non2xx"]) or not int(fields["requests"]):
    sys.exit(f"non-2xx answers or no requests: {text}")
print(fields["p50_us"], fields["p99_us"])
EOF
}

echo "1 connection, non-streaming /v1/messages, $ROUNDS rounds of ${DURATION} s runs (µs)"
printf '%-6s %12s %12s %12s\n' round "direct p50/p99" "proxy p50/p99" "relaybox p50/p99"
: >"$WORK/rounds.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  direct="$(measure "$MOCK_URL" any-key)"
  proxy="$(measure "$PROXY_URL" any-key)"
  relaybox="$(measure "$RELAYBOX_URL" "$RELAYBOX_KEY")"
  echo "$round $direct $proxy $relaybox" | tee -a "$WORK/rounds.txt" |
    awk '{printf "%-6s %12s %12s %12s\n", $1, $2 "/" $3, $4 "/" $5, $6 "/" $7}'
done
python3 - "$WORK/rounds.txt" <<'EOF'
import statistics as st, sys
rows = [list(map(int, line.split())) for line in open(sys.argv[1])]
for name, col in (("direct", 1), ("proxy", 3), ("relaybox", 5)):
    line = (f"{name:9} p50 {st.median(r[col] for r in rows):7.0f} µs   "
            f"p99 {st.median(r[col + 1] for r in rows):7.0f} µs")
    if col > 1:
        line += (f"   added over direct: p50 {st.median(r[col] - r[1] for r in rows):+.0f} µs, "
                 f"p99 {st.median(r[col + 1] - r[2] for r in rows):+.0f} µs")
    print(line)
EOF
