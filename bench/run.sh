#!/usr/bin/env bash
# relaybox load benchmark: direct-to-mock vs. a bare pass-through proxy vs. relaybox, plus
# relaybox's memory, the request-log writer alone and one-log-row-per-request.
# Prints a Markdown report and writes it to bench/results/latest.md. See bench/README.md.
#
# Environment (all optional):
#   BENCH_DURATION=10          seconds per measured wrk run
#   BENCH_CONNECTIONS=32       connections of the throughput runs
#   BENCH_THREADS=2            wrk threads of the throughput runs
#   BENCH_WARMUP=3             seconds of the warm-up run before each throughput run
#   BENCH_LATENCY_DURATION     seconds of the 1-connection latency runs (default BENCH_DURATION)
#   BENCH_WRITER_ROWS=200000   rows for the log-writer bench
#   BENCH_CHAT=1               also measure /v1/chat/completions (0 = skip)
#   BENCH_ROUNDS=3             rounds of the load runs; the report gives medians (one machine's
#                              noise moves single runs by ±10 %)
#   BENCH_SKIP_BUILD=0         1 = use the binaries already in target/release
#   BENCH_KEEP=0               1 = keep the scratch dir (data dir included) and print its path
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
DURATION="${BENCH_DURATION:-10}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
WARMUP="${BENCH_WARMUP:-3}"
LATENCY_DURATION="${BENCH_LATENCY_DURATION:-$DURATION}"
ROUNDS="${BENCH_ROUNDS:-3}"
WRITER_ROWS="${BENCH_WRITER_ROWS:-200000}"
WITH_CHAT="${BENCH_CHAT:-1}"
SKIP_BUILD="${BENCH_SKIP_BUILD:-0}"
KEEP="${BENCH_KEEP:-0}"
RESULTS="$BENCH_DIR/results"

START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaybox-bench.XXXXXX")"
PIDS=()

log() { printf '[bench %4ds] %s\n' $((SECONDS - START)) "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# Stop one process we started: SIGTERM, then SIGKILL after $2 seconds.
stop_pid() {
  local pid=$1 grace=${2:-10} i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not stop within ${grace}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$? pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid" 5; done
  # Keep the raw outputs of the last run next to the report (no data dir: it is large).
  mkdir -p "$RESULTS/last-run"
  rm -f "$RESULTS/last-run/"*
  cp "$WORK"/*.txt "$WORK"/*.log "$WORK"/*.env "$WORK"/*.json "$RESULTS/last-run/" 2>/dev/null || true
  if [ "$KEEP" = 1 ]; then
    log "scratch dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

meta() { printf '%s=%s\n' "$1" "$2" >>"$WORK/meta.env"; }

# ---- tools ------------------------------------------------------------------------------------
for tool in curl python3 cargo; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done
ensure_tool wrk || die "could not install wrk; install it and rerun"

# ---- build ------------------------------------------------------------------------------------
BUILD_START=$SECONDS
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release --workspace --bins --examples"
  (cd "$ROOT" && cargo build --release --workspace --bins --examples) || die "the release build failed"
fi
meta build_s $((SECONDS - BUILD_START))
TARGET_DIR="$(cargo_target_dir "$ROOT")"
BIN="$TARGET_DIR/release"
for exe in relaybox mock-upstream passthrough-proxy examples/log_writer_bench; do
  [ -x "$BIN/$exe" ] || die "$BIN/$exe is missing (build failed?)"
done

meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
meta cpus "$(nproc)"
meta cpu_model "$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)"
meta wrk_threads "$THREADS"
meta connections "$CONNECTIONS"
meta duration "$DURATION"
meta warmup "$WARMUP"
meta rounds "$ROUNDS"
meta loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- start the three servers ------------------------------------------------------------------

"$BIN/mock-upstream" --listen 127.0.0.1:0 --no-record >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
MOCK_URL="$(wait_url "$WORK/mock.log" "$MOCK_PID")" || die "mock-upstream did not start: $(cat "$WORK/mock.log")"
log "mock-upstream on $MOCK_URL (pid $MOCK_PID)"

"$BIN/passthrough-proxy" --listen 127.0.0.1:0 --upstream "$MOCK_URL" >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
PROXY_URL="$(wait_url "$WORK/proxy.log" "$PROXY_PID")" || die "passthrough-proxy did not start: $(cat "$WORK/proxy.log")"
log "passthrough-proxy on $PROXY_URL (pid $PROXY_PID)"

RELAY_PORT="$(free_port)"
RELAY_URL="http://127.0.0.1:$RELAY_PORT"
ADMIN_KEY="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
DATA_DIR="$WORK/data"
mkdir -p "$DATA_DIR"
# A clean environment for relaybox: only the variables set here.
mapfile -t INHERITED < <(compgen -e | grep '^RELAYBOX_' || true)
UNSET=()
for name in "${INHERITED[@]}"; do UNSET+=(-u "$name"); done
env "${UNSET[@]}" RELAYBOX_DATA_DIR="$DATA_DIR" RELAYBOX_LISTEN="127.0.0.1:$RELAY_PORT" \
  RELAYBOX_ADMIN_KEY="$ADMIN_KEY" RELAYBOX_LOG_LEVEL=warn \
  "$BIN/relaybox" serve >"$WORK/relaybox.log" 2>&1 &
RELAY_PID=$!
PIDS+=("$RELAY_PID")
for ((i = 0; ; i++)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "$RELAY_URL/health" || true)"
  [ "$code" != 000 ] && break
  kill -0 "$RELAY_PID" 2>/dev/null || die "relaybox exited at start: $(tail -20 "$WORK/relaybox.log")"
  [ "$i" -lt 300 ] || die "relaybox did not answer /health within 30 s"
  sleep 0.1
done
log "relaybox on $RELAY_URL (pid $RELAY_PID, data $DATA_DIR, /health → $code)"

# ---- configure relaybox through its admin API ---------------------------------------------------
CLIENT_KEY="$(configure_relaybox "$RELAY_URL" "$ADMIN_KEY" "$MOCK_URL")" ||
  die "configuring relaybox through its admin API failed (curl's error is above)"
[ -n "$CLIENT_KEY" ] || die "no client key in the admin API's answer"
log "relaybox configured: 2 channels, 1 price, client key ${CLIENT_KEY:0:8}…"

sleep 1
meta rss_idle_kb "$(awk '$1 == "VmRSS:" {print $2}' "/proc/$RELAY_PID/status")"

# ---- smoke test: one request of each kind through relaybox --------------------------------------
MESSAGES_BODY='{"model":"claude-sonnet-4-5","max_tokens":1024,"system":"You are a concise assistant. Answer in plain text.","messages":[{"role":"user","content":"Write a haiku about a relay that carries messages between clouds."}],"stream":STREAM}'
CHAT_BODY='{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"system","content":"You are a concise assistant. Answer in plain text."},{"role":"user","content":"Write a haiku about a relay that carries messages between clouds."}],"stream":STREAM}'
RELAY_CURL=0
SMOKE=ok
SAMPLE="$WORK/relaybox-sample.txt"
# One request through relaybox; a non-2xx answer is kept with curl -v in relaybox-sample.txt.
relay_request() {
  local path=$1 body=$2 code
  RELAY_CURL=$((RELAY_CURL + 1))
  if [ "$path" = /v1/chat/completions ]; then
    set -- -H "authorization: Bearer $CLIENT_KEY"
  else
    set -- -H "x-api-key: $CLIENT_KEY" -H 'anthropic-version: 2023-06-01'
  fi
  code="$(curl -sS -o "$WORK/last-response.txt" -w '%{http_code}' "$RELAY_URL$path" "$@" \
    -H 'content-type: application/json' --data "$body" || echo 000)"
  if [[ $code != 2* ]]; then
    if [ ! -f "$SAMPLE" ]; then
      RELAY_CURL=$((RELAY_CURL + 1))
      {
        echo "\$ curl -v $RELAY_URL$path (client key redacted) --data '$body'"
        curl -sS -v "$RELAY_URL$path" "$@" -H 'content-type: application/json' --data "$body" 2>&1 |
          sed "s/$CLIENT_KEY/<client key>/g"
        echo
        echo "---- relaybox log (last 40 lines) ----"
        tail -40 "$WORK/relaybox.log"
      } >"$SAMPLE"
    fi
    printf '%s' "$code"
    return 1
  fi
  printf '%s' "$code"
}
smoke() {
  local name=$1 path=$2 body=$3 code
  if code="$(relay_request "$path" "$body")"; then
    log "smoke: $name through relaybox → HTTP $code"
  else
    log "smoke: $name through relaybox → HTTP $code: $(head -c 400 "$WORK/last-response.txt")"
    if [ "$SMOKE" = ok ]; then SMOKE="$name → HTTP $code"; fi
  fi
  return 0
}
smoke "/v1/messages" /v1/messages "${MESSAGES_BODY/STREAM/false}"
smoke "/v1/messages stream" /v1/messages "${MESSAGES_BODY/STREAM/true}"
SMOKE_REQUESTS=2
if [ "$WITH_CHAT" = 1 ]; then
  smoke "/v1/chat/completions" /v1/chat/completions "${CHAT_BODY/STREAM/false}"
  SMOKE_REQUESTS=3
fi
# relay_request ran in $(…), so its counter did not survive: count by hand (+1 for the sample).
RELAY_CURL=$SMOKE_REQUESTS
if [ -f "$SAMPLE" ]; then RELAY_CURL=$((RELAY_CURL + 1)); fi
meta smoke "$SMOKE"

# ---- load -------------------------------------------------------------------------------------
# One line for the progress log from a WRK_RESULT line.
describe() {
  printf '%s\n' "$1" | awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (!("requests" in f) || f["duration_us"] == 0) { print "(no WRK_RESULT line)"; exit }
    printf "%9.0f req/s  p50 %7d us  p99 %7d us  non-2xx %d  socket errors %d\n",
      f["requests"] / (f["duration_us"] / 1e6), f["p50_us"], f["p99_us"], f["non2xx"],
      f["connect"] + f["read"] + f["write"] + f["timeout"] }'
}
declare -A URL=([direct]="$MOCK_URL" [proxy]="$PROXY_URL" [relaybox]="$RELAY_URL")
# The process whose CPU time a run is charged to (direct: the mock itself).
declare -A SERVER_PID=([direct]="$MOCK_PID" [proxy]="$PROXY_PID" [relaybox]="$RELAY_PID")
meta clk_tck "$(getconf CLK_TCK)"
run_wrk() {
  local target=$1 mode=$2 kind=$3 round=$4 script=messages.lua stream=0 file result
  local -a args
  case $mode in
    messages-stream) stream=1 ;;
    chat) script=chat.lua ;;
  esac
  case $kind in
    warmup) args=(-t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s") ;;
    throughput) args=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s") ;;
    latency) args=(-t1 -c1 -d"${LATENCY_DURATION}s" --latency) ;;
  esac
  file="wrk-$target-$mode-$kind-r$round.txt"
  local pid=${SERVER_PID[$target]} cpu_before mock_before
  cpu_before="$(cpu_ticks "$pid")"
  mock_before="$(cpu_ticks "$MOCK_PID")"
  BENCH_API_KEY="$CLIENT_KEY" BENCH_STREAM="$stream" \
    wrk "${args[@]}" -s "$BENCH_DIR/$script" "${URL[$target]}" >"$WORK/$file" 2>&1 ||
    log "wrk exited with an error for $target $mode $kind (see $file)"
  printf '%s|%s|%s|%s|%s|%s|%s\n' "$target" "$mode" "$kind" "$file" \
    $(($(cpu_ticks "$pid") - cpu_before)) $(($(cpu_ticks "$MOCK_PID") - mock_before)) "$round" >>"$WORK/runs.txt"
  result="$(grep -m1 '^WRK_RESULT' "$WORK/$file" || true)"
  if [ "$kind" != warmup ]; then
    log "$(printf 'r%s %-9s %-16s %-10s' "$round" "$target" "$mode" "$kind") $(describe "$result")"
  fi
  # A failing relaybox: keep one sample request with curl -v for the report.
  if [ "$target" = relaybox ] && [ ! -f "$SAMPLE" ] && [[ $result =~ non2xx=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" != 0 ]; then
    local body=${MESSAGES_BODY/STREAM/false} path=/v1/messages
    [ "$mode" = messages-stream ] && body=${MESSAGES_BODY/STREAM/true}
    [ "$mode" = chat ] && body=${CHAT_BODY/STREAM/false} && path=/v1/chat/completions
    relay_request "$path" "$body" >/dev/null || true # counts itself (and the sample)
  fi
  return 0
}

# How busy the CPUs are just before the load, with our three servers idle: the load average
# cannot tell (the release build above still weighs in it for minutes).
cpu_jiffies() { awk '/^cpu / {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6}' /proc/stat; }
read -r total_before idle_before < <(cpu_jiffies)
sleep 3
read -r total_after idle_after < <(cpu_jiffies)
meta cpu_busy_before_load_pct "$(( 100 - 100 * (idle_after - idle_before) / (total_after - total_before > 0 ? total_after - total_before : 1) ))"

MODES=(messages messages-stream)
[ "$WITH_CHAT" = 1 ] && MODES+=(chat)
# Rounds: every target once per round, so each round compares runs made minutes apart.
for ((round = 1; round <= ROUNDS; round++)); do
  log "round $round of $ROUNDS — throughput: ${THREADS} threads × ${CONNECTIONS} connections, ${WARMUP}s warm-up + ${DURATION}s per run"
  for mode in "${MODES[@]}"; do
    for target in direct proxy relaybox; do
      run_wrk "$target" "$mode" warmup "$round"
      run_wrk "$target" "$mode" throughput "$round"
    done
  done
  log "round $round of $ROUNDS — latency: 1 connection, ${LATENCY_DURATION}s per run"
  for target in direct proxy relaybox; do
    run_wrk "$target" messages latency "$round"
  done
done

meta loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
meta hwm_after_load_kb "$(awk '$1 == "VmHWM:" {print $2}' "/proc/$RELAY_PID/status")"
meta rss_after_load_kb "$(awk '$1 == "VmRSS:" {print $2}' "/proc/$RELAY_PID/status")"
meta relay_curl_requests "$RELAY_CURL"

# ---- one row per request: stop relaybox gracefully (it flushes every row), then count ----------
log "stopping relaybox (SIGTERM) to flush the request log"
kill -TERM "$RELAY_PID" 2>/dev/null || log "relaybox was no longer running"
for ((i = 0; i < 600; i++)); do
  kill -0 "$RELAY_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$RELAY_PID" 2>/dev/null; then
  log "relaybox did not stop within 60 s after SIGTERM"
  meta writer_dropped_warning "relaybox did not stop within 60 s after SIGTERM (row count may be short)"
fi
stop_pid "$RELAY_PID" 1
python3 - "$DATA_DIR/logs.sqlite" >"$WORK/rows.json" <<'EOF' || log "could not count request_log rows"
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1])
def groups(column):
    return {str(k): n for k, n in con.execute(f"SELECT {column}, COUNT(*) FROM request_log GROUP BY 1 ORDER BY 2 DESC")}
print(json.dumps({
    "total": con.execute("SELECT COUNT(*) FROM request_log").fetchone()[0],
    "by_status": groups("status"),
    "by_http_status": groups("http_status"),
    "by_endpoint": groups("endpoint"),
}))
EOF
if grep -q 'request-log queue full' "$WORK/relaybox.log"; then
  meta writer_dropped_warning "relaybox dropped request-log rows under load (queue full; see relaybox.log)"
fi

stop_pid "$PROXY_PID" 5
stop_pid "$MOCK_PID" 5

# ---- the log writer alone --------------------------------------------------------------------
log "log writer bench: $WRITER_ROWS rows"
"$BIN/examples/log_writer_bench" "$WRITER_ROWS" >"$WORK/writer.txt" 2>&1 || log "the log writer bench failed (see writer.txt)"
sed 's/^/    /' "$WORK/writer.txt" >&2
meta writer_result "$(grep -m1 '^RESULT ' "$WORK/writer.txt" | sed 's/^RESULT //' || true)"

# ---- report -----------------------------------------------------------------------------------
meta elapsed_s $((SECONDS - START))
mkdir -p "$RESULTS"
python3 "$BENCH_DIR/report.py" "$WORK" >"$WORK/report.md"
cp "$WORK/report.md" "$RESULTS/latest.md"
cat "$WORK/report.md"
log "report written to bench/results/latest.md (raw outputs in bench/results/last-run/)"
