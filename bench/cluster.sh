#!/usr/bin/env bash
# What cluster mode costs: one relaybox binary single node vs in cluster mode against a local
# PostgreSQL, under the same load, in alternating rounds.
#
#   bench/cluster.sh [RELAYBOX_BINARY]        # builds target/release/relaybox when none is given
#
# Each round measures the binary single node and in cluster mode (--postgres-url), one after the
# other (the order flips every round), each on a fresh data dir; cluster mode on a fresh database
# (CREATE DATABASE, dropped WITH (FORCE) after the run), so the first instance seeds it and the
# benchmark's admin setup never meets a record of an earlier round. It prints every round and the
# medians: requests/s of each, cluster/single (target ≥ 0.95: nothing on the request path talks
# to PostgreSQL), CPU time per request of relaybox (utime + stime) and of PostgreSQL's processes
# in the cluster run, and p50 latency. See bench/README.md.
#
# Environment (all optional):
#   BENCH_PG_URL         a PostgreSQL server the script may CREATE and DROP databases on, e.g.
#                        postgres://postgres@127.0.0.1:5432/postgres. Unset: a throwaway one is
#                        started on free ports the way tests/services.sh does, and stopped at the end
#   AB_ROUNDS=8          rounds
#   AB_DURATION=5        seconds per measured wrk run (after a 2 s warm-up)
#   AB_CONNECTIONS=32    wrk connections
#   AB_MODE=messages     messages | stream | chat
set -euo pipefail

if [ $# -gt 1 ] || { [ $# -eq 1 ] && [ ! -x "$1" ]; }; then
  echo "usage: bench/cluster.sh [RELAYBOX_BINARY]" >&2
  exit 2
fi
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
ROUNDS="${AB_ROUNDS:-8}"
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
ensure_tool wrk || {
  echo "wrk is needed (apt-get install wrk)" >&2
  exit 1
}
command -v psql >/dev/null || {
  echo "psql is needed (apt-get install postgresql-client)" >&2
  exit 1
}

use_scratch_dir cluster
# Every instance of a cluster shares one key; the single node gets it too, so both runs unlock
# their secrets the same way.
CLUSTER_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

# The PostgreSQL server: the one given, or a throwaway one (tests/services.sh, on free ports so
# it never meets the test suite's).
if [ -n "${BENCH_PG_URL:-}" ]; then
  PG_URL="$BENCH_PG_URL"
else
  RELAYBOX_TEST_PG_PORT="$(free_port)"
  RELAYBOX_TEST_REDIS_PORT="$(free_port)"
  # shellcheck source=tests/services.sh
  source "$ROOT/tests/services.sh"
  services_install >&2
  trap 'remove_scratch_dir; services_down >/dev/null' EXIT
  services_up >&2
  PG_URL="$RELAYBOX_TEST_PG_URL"
fi
pg() { psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$2" "$1"; }
pg "$PG_URL" 'SELECT 1' >/dev/null || {
  echo "cannot reach PostgreSQL at ${PG_URL%%\?*}" >&2
  exit 1
}
PG_VERSION="$(pg "$PG_URL" 'SHOW server_version')"
# The server's postmaster, when it runs on this machine and its data dir is readable: its
# processes' CPU is then counted too.
PG_PID="$(head -n 1 "$(pg "$PG_URL" 'SHOW data_directory' 2>/dev/null)/postmaster.pid" 2>/dev/null || true)"
kill -0 "${PG_PID:-0}" 2>/dev/null || PG_PID=""

build_helpers
relaybox_binary "$@"
start_mock

# utime + stime of the PostgreSQL server (the postmaster and its children), in clock ticks;
# 0 when unknown. A backend that exits during a run takes its ticks with it.
pg_cpu_ticks() {
  local total=0 pid
  [ -n "$PG_PID" ] || { echo 0; return 0; }
  # shellcheck disable=SC2046 # one word per pid
  for pid in "$PG_PID" $(ps -o pid= --ppid "$PG_PID"); do
    total=$((total + $(cpu_ticks "$pid")))
  done
  echo "$total"
}

# One wrk run against $1 (server pid $2, client key $3): prints "req/s relaybox_cpu_us_per_request
# pg_cpu_us_per_request p50_us".
measure() {
  local url=$1 pid=$2 key=$3 before after pg_before pg_after
  BENCH_API_KEY="$key" BENCH_STREAM="$STREAM" wrk -t"$THREADS" -c"$CONNECTIONS" -d2s \
    -s "$BENCH_DIR/$SCRIPT" "$url$PATH_" >/dev/null 2>&1
  before="$(cpu_ticks "$pid")"
  pg_before="$(pg_cpu_ticks)"
  BENCH_API_KEY="$key" BENCH_STREAM="$STREAM" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$BENCH_DIR/$SCRIPT" "$url$PATH_" >"$WORK/wrk.txt" 2>&1
  after="$(cpu_ticks "$pid")"
  pg_after="$(pg_cpu_ticks)"
  python3 - "$WORK/wrk.txt" "$((after - before))" "$((pg_after - pg_before))" "$(getconf CLK_TCK)" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
requests, seconds = int(fields["requests"]), int(fields["duration_us"]) / 1e6
if int(fields["non2xx"]) or not requests:
    sys.exit(f"non-2xx answers or no requests: {text}")
us_per_request = lambda ticks: int(ticks) / int(sys.argv[4]) * 1e6 / requests
print(f"{requests / seconds:.0f} {us_per_request(sys.argv[2]):.0f} {us_per_request(sys.argv[3]):.0f} "
      f"{fields['p50_us']}")
EOF
}

stop_relaybox() {
  kill -TERM "$RELAYBOX_PID"
  wait "$RELAYBOX_PID" 2>/dev/null || true
  RELAYBOX_PID=""
}

# The measure_* functions run in a subshell ($(…)), where the script's EXIT trap does not: a
# failed run stops its own relaybox (and drops its database) here.
measure_single() {
  RELAYBOX_PID=""
  trap '[ -z "$RELAYBOX_PID" ] || kill "$RELAYBOX_PID" 2>/dev/null || true' EXIT
  start_relaybox "$RELAYBOX" "RELAYBOX_ENCRYPTION_KEY=$CLUSTER_KEY" || exit 1
  measure "$RELAYBOX_URL" "$RELAYBOX_PID" "$RELAYBOX_KEY"
  stop_relaybox
}

# Cluster mode on database $1 (created here, dropped after the run).
measure_cluster() {
  local db=$1 db_url revision
  db_url="${PG_URL%%\?*}"
  db_url="${db_url%/*}/$db"
  [ "$PG_URL" = "${PG_URL%%\?*}" ] || db_url="$db_url?${PG_URL#*\?}"
  RELAYBOX_PID=""
  pg "$PG_URL" "CREATE DATABASE $db" || exit 1
  # (the database's name is expanded now: $db is gone when the trap runs)
  trap '[ -z "$RELAYBOX_PID" ] || kill "$RELAYBOX_PID" 2>/dev/null || true
    pg "$PG_URL" "DROP DATABASE IF EXISTS '"$db"' WITH (FORCE)" || true' EXIT
  start_relaybox "$RELAYBOX" "RELAYBOX_ENCRYPTION_KEY=$CLUSTER_KEY RELAYBOX_POSTGRES_URL=$db_url" || exit 1
  # The setup went through PostgreSQL: its head revision moved (else this is no cluster run).
  revision="$(pg "$db_url" 'SELECT rev FROM cfg_head')"
  [ "${revision:-0}" -gt 0 ] || {
    echo "cluster run: PostgreSQL's config revision is '${revision}' after the setup" >&2
    exit 1
  }
  measure "$RELAYBOX_URL" "$RELAYBOX_PID" "$RELAYBOX_KEY"
  stop_relaybox
}

echo "relaybox: $RELAYBOX"
echo "PostgreSQL $PG_VERSION at ${PG_URL%%\?*}${PG_PID:+ (postmaster $PG_PID: its CPU is counted)}"
echo "$MODE, $CONNECTIONS connections, $ROUNDS rounds of ${DURATION} s runs"
printf '%-6s %9s %9s %8s %9s %9s %9s %8s %8s\n' round single cluster cl/single \
  cpu-single cpu-clust cpu-pg p50-sgl p50-cl
: >"$WORK/rounds.txt"
for ((round = 1; round <= ROUNDS; round++)); do
  order=(single cluster)
  ((round % 2 == 0)) && order=(cluster single)
  declare -A result=()
  for target in "${order[@]}"; do
    case $target in
      single) result[single]="$(measure_single)" ;;
      cluster) result[cluster]="$(measure_cluster "relaybox_bench_$$_$round")" ;;
    esac
  done
  # Columns: round, then req/s, relaybox CPU µs, PostgreSQL CPU µs (per request) and p50 µs of
  # single, then of cluster.
  echo "$round ${result[single]} ${result[cluster]}" | tee -a "$WORK/rounds.txt" |
    awk '{printf "%-6s %9d %9d %8.3f %9d %9d %9d %8d %8d\n", $1, $2, $6, $6 / $2, $3, $7, $8, $5, $9}'
done
python3 - "$WORK/rounds.txt" "${PG_PID:+known}" <<'EOF'
import statistics as st, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
med = lambda values: st.median(values)
ratio = med([r[5] / r[1] for r in rows])
pg = f"{med([r[7] for r in rows]):.0f} µs" if sys.argv[2] else "not measured (server not on this machine)"
print(f"medians: single {med([r[1] for r in rows]):.0f} req/s, cluster {med([r[5] for r in rows]):.0f} req/s, "
      f"cluster/single {ratio:.3f} (target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'}; "
      f"{sum(r[5] / r[1] >= 0.95 for r in rows)} of {len(rows)} rounds)")
print(f"CPU per request: single {med([r[2] for r in rows]):.0f} µs, cluster {med([r[6] for r in rows]):.0f} µs "
      f"+ PostgreSQL {pg}; p50: single {med([r[4] for r in rows]):.0f} µs, cluster {med([r[8] for r in rows]):.0f} µs")
EOF
