#!/usr/bin/env bash
# The admin dashboard on a big logs.sqlite: latency of every dashboard query and of the first
# page of the log searches, relay throughput while a dashboard refreshes every 2 s, and the UI's
# first-load size.
#
#   bench/dashboard.sh [RELAYBOX_BINARY]
#
# 1. Data: a data dir with DASH_ROWS request rows over DASH_DAYS days ending at generation time,
#    made once and kept in DASH_CACHE (per rows/days): relaybox starts on an empty data dir, 30
#    keys and 8 channels are created through the admin API (so names resolve), relaybox stops,
#    then `examples/gen_logs.rs` writes the rows through the library's insert path (roll-ups
#    included) and prints its rows/s. Each run works on a copy of it (the relay traffic of
#    step 3 adds rows), so every run starts from the same file.
# 2. Latency: relaybox on the copy; each query is run twice to warm up, then DASH_REPS times in
#    turn (one keep-alive connection, the answer read to its end); p50/p95 per query; a query
#    above 200 ms p95 is a FAIL.
# 3. Throughput: wrk (bench/messages.lua) through a relay lane to the mock upstream, DASH_ROUNDS
#    rounds, each with a plain run and a run while a poller sends the dashboard's calls (summary,
#    4 usage calls, one log page) every 2 s (the order alternates per round); the paired ratio
#    with / without per round, and its median (target ≥ 0.95).
# 4. UI size: `/`, then what index.html references and what the JS modules import (followed
#    from the running server), each gzip -9; sum (target ≤ 300 KB). Also the upper bound: every
#    file under assets/ (README.md excluded).
#
# Environment (all optional):
#   DASH_ROWS=10000000    rows to generate
#   DASH_DAYS=90          days they span, ending at generation time
#   DASH_CACHE=$TMPDIR/relaybox-dashboard   where generated data dirs are kept (GBs at 10M rows)
#   DASH_REGENERATE=0     1 = generate again even when a cached data dir exists
#   DASH_REPS=25          measured repetitions per query (≥ 20)
#   DASH_ROUNDS=8         throughput rounds (each: a plain run and a run with the poller)
#   DASH_DURATION=6       seconds per wrk run
#   DASH_CONNECTIONS=8    wrk connections
#   DASH_SKIP_THROUGHPUT=0  1 = latency and UI size only
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"
ROWS="${DASH_ROWS:-10000000}"
DAYS="${DASH_DAYS:-90}"
CACHE="${DASH_CACHE:-${TMPDIR:-/tmp}/relaybox-dashboard}"
REPS="${DASH_REPS:-25}"
ROUNDS="${DASH_ROUNDS:-8}"
DURATION="${DASH_DURATION:-6}"
CONNECTIONS="${DASH_CONNECTIONS:-8}"
SKIP_THROUGHPUT="${DASH_SKIP_THROUGHPUT:-0}"

ensure_tool wrk || { echo "could not install wrk; install it and rerun" >&2; exit 1; }
build_helpers
relaybox_binary "$@"
(cd "$ROOT" && cargo build --release -q --example gen_logs)
GEN_LOGS="$TARGET_DIR/release/examples/gen_logs"
use_scratch_dir dashboard

# Start $RELAYBOX on data dir $1 with admin key $2 (nothing configured); set RELAYBOX_URL,
# RELAYBOX_ADMIN, RELAYBOX_PID and STARTUP_SECONDS. A big logs.sqlite is checked at start, so
# this waits up to 10 minutes.
start_relaybox_on() {
  local data=$1 admin=$2 port started code
  port="$(free_port)"
  RELAYBOX_URL="http://127.0.0.1:$port"
  RELAYBOX_ADMIN="$admin"
  started="$(date +%s.%N)"
  env RELAYBOX_DATA_DIR="$data" RELAYBOX_LISTEN="127.0.0.1:$port" RELAYBOX_ADMIN_KEY="$admin" \
    RELAYBOX_LOG_LEVEL=warn "$RELAYBOX" serve >>"$WORK/relaybox.log" 2>&1 &
  RELAYBOX_PID=$!
  PIDS+=("$RELAYBOX_PID")
  for ((i = 0; i < 6000; i++)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$RELAYBOX_URL/health" || true)"
    [ "$code" != "000" ] && break
    kill -0 "$RELAYBOX_PID" 2>/dev/null || { cat "$WORK/relaybox.log" >&2; return 1; }
    sleep 0.1
  done
  [ "$code" != "000" ] || { echo "relaybox did not answer /health in 10 minutes" >&2; return 1; }
  STARTUP_SECONDS="$(python3 -c "import sys, time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$started")"
}

stop_relaybox() {
  kill -TERM "$RELAYBOX_PID" 2>/dev/null || true
  wait "$RELAYBOX_PID" 2>/dev/null || true
}

# Make the cached data dir $1: keys and channels through the admin API, then the rows.
generate() {
  local dir=$1 admin answer i pool service
  local -a call
  rm -rf "$dir"
  mkdir -p "$dir"
  admin="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  echo "$admin" >"$dir/admin.key"
  start_relaybox_on "$dir/data" "$admin"
  call=(curl -sS --fail-with-body -X POST -H "authorization: Bearer $admin"
    -H 'content-type: application/json')
  : >"$dir/ids.txt"
  # Heaviest first (gen_logs gives the first keys the most traffic).
  for name in laptop ci-runner claude-code-team cursor-alice batch-nightly \
    $(seq -f 'user-%02g' 6 30); do
    answer="$("${call[@]}" --data "{\"name\":\"$name\"}" "$RELAYBOX_URL/admin/api/keys")"
    python3 -c 'import json, sys; a = json.loads(sys.argv[1])["key"]; print("key", a["id"], a["name"])' \
      "$answer" >>"$dir/ids.txt"
  done
  for i in 1 2 3 4 5 6 7 8; do
    case $((i % 4)) in
      1) pool=messages service=claude ;;
      2) pool=chat service=openai ;;
      3) pool=responses service=responses ;;
      0) pool=gemini service=gemini ;;
    esac
    answer="$("${call[@]}" --data "{\"pool\":\"$pool\",\"name\":\"upstream-$i\",\"serviceType\":\"$service\",\"baseUrl\":\"http://127.0.0.1:9\",\"apiKeys\":[\"sk-bench-upstream-key-000000\"]}" \
      "$RELAYBOX_URL/admin/api/channels")"
    python3 -c 'import json, sys; a = json.loads(sys.argv[1]); print("channel", a["id"], a["name"])' \
      "$answer" >>"$dir/ids.txt"
  done
  stop_relaybox
  echo "generating $ROWS rows over $DAYS days (examples/gen_logs.rs)"
  "$GEN_LOGS" "$dir/data" --rows "$ROWS" --days "$DAYS" --ids "$dir/ids.txt" | tee "$dir/gen.txt"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/ready"
}

DATASET="$CACHE/rows-$ROWS-days-$DAYS"
if [ "${DASH_REGENERATE:-0}" = 1 ] || [ ! -f "$DATASET/ready" ]; then
  generate "$DATASET"
else
  echo "reusing $DATASET (generated $(cat "$DATASET/ready"); DASH_REGENERATE=1 makes a new one)"
  cat "$DATASET/gen.txt"
fi
GENERATED_AT="$(cat "$DATASET/ready")"

echo "copying the data dir ($(du -sh "$DATASET/data" | cut -f1)) to the scratch dir"
cp -a "$DATASET/data" "$WORK/data"
start_relaybox_on "$WORK/data" "$(cat "$DATASET/admin.key")"
echo "relaybox answered /health ${STARTUP_SECONDS} s after start"

# ---- 2. latency of the dashboard queries and the first log pages --------------------------------
cat >"$WORK/queries.py" <<'PY'
"""The dashboard's queries and log searches for a generated data set (shared by the latency
measurement and the poller)."""
import datetime as dt
import sqlite3
import urllib.parse


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def queries(db_path, ids_path, generated_at):
    # The data ends when it was generated; windows are placed relative to that moment, so a
    # reused data set is measured on the same rows.
    end = dt.datetime.strptime(generated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    keys = [line.split()[2] for line in open(ids_path) if line.startswith("key ")]
    channels = [line.split()[2] for line in open(ids_path) if line.startswith("channel ")]
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    old = rfc3339(end - dt.timedelta(days=45))
    old_ms = (end - dt.timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    recent_ms = (end - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    session_of = lambda since: db.execute(
        "SELECT session_id FROM request_log WHERE initial_time >= ? ORDER BY initial_time LIMIT 1",
        (since,)).fetchone()[0]
    old_session, recent_session = session_of(old_ms), session_of(recent_ms)
    rare_model = db.execute(
        "SELECT model FROM usage_daily GROUP BY model ORDER BY sum(requests) LIMIT 1").fetchone()[0]
    db.close()

    def usage(days=0, hours=0, group_by=""):
        start = end - dt.timedelta(days=days, hours=hours)
        return "/admin/api/usage?" + urllib.parse.urlencode(
            {"from": rfc3339(start), "to": rfc3339(end), "group_by": group_by})

    def logs(**filters):
        return "/admin/api/logs" + ("?" + urllib.parse.urlencode(filters) if filters else "")

    day_start = end - dt.timedelta(days=45)
    return [
        ("summary", "/admin/api/summary"),
        ("usage 24 h by hour", usage(hours=24, group_by="hour")),
        ("usage 7 d by day", usage(days=7, group_by="day")),
        ("usage 30 d by day", usage(days=30, group_by="day")),
        ("usage 90 d by day", usage(days=90, group_by="day")),
        ("usage 30 d by key", usage(days=30, group_by="key")),
        ("usage 30 d by model", usage(days=30, group_by="model")),
        ("usage 30 d by channel", usage(days=30, group_by="channel")),
        ("usage 90 d by day+model", usage(days=90, group_by="day,model")),
        ("logs: no filter", logs()),
        (f"logs: key (heaviest, {keys[0]})", logs(key=keys[0])),
        (f"logs: key (lightest, {keys[-1]})", logs(key=keys[-1])),
        (f"logs: model ({rare_model}, rarest)", logs(model=rare_model)),
        (f"logs: channel ({channels[4]})", logs(channel=channels[4])),
        ("logs: status 5xx", logs(status="5xx")),
        ("logs: error text 'overloaded'", logs(error="overloaded")),
        ("logs: session (1 h old)", logs(session=recent_session)),
        ("logs: session (45 d old)", logs(session=old_session)),
        ("logs: 1-day window 45 d ago", logs(**{"from": rfc3339(day_start),
                                                 "to": rfc3339(day_start + dt.timedelta(days=1))})),
        ("logs: stream=false", logs(stream="false")),
        # Selective filters whose matches are old or absent (each a full scan without the
        # roll-up hours / session hours).
        ("logs: key never used (deleted id)", logs(key="key-deleted-long-ago")),
        ("logs: status 418 (never occurred)", logs(status="418")),
        (f"logs: model {rare_model} + 5xx", logs(model=rare_model, status="5xx")),
        ("logs: session (unknown)", logs(session="session-never-seen")),
    ]


# What the dashboard page asks for on each refresh.
def dashboard_set(all_queries):
    wanted = {"summary", "usage 24 h by hour", "usage 7 d by day", "usage 30 d by day",
              "usage 30 d by model", "logs: no filter"}
    return [q for q in all_queries if q[0] in wanted]
PY

cat >"$WORK/latency.py" <<'PY'
import http.client, math, sys, time, urllib.parse
sys.path.insert(0, sys.argv[1])
from queries import queries

url, admin, reps, db, ids, generated_at = sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:8]
host = urllib.parse.urlparse(url).netloc
conn = http.client.HTTPConnection(host, timeout=120)
headers = {"authorization": f"Bearer {admin}"}


def get(path):
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    answer = conn.getresponse()
    body = answer.read()
    return time.perf_counter() - started, answer.status, body


def p(values, q):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


plan = queries(db, ids, generated_at)
for _, path in plan:  # warm-up: twice each
    for _ in range(2):
        get(path)
times = {name: [] for name, _ in plan}
problems = {}
for _ in range(reps):
    for name, path in plan:
        seconds, status, body = get(path)
        times[name].append(seconds * 1000)
        if status != 200 and name not in problems:
            problems[name] = f"HTTP {status}: {body[:200].decode(errors='replace')}"

print(f"{'query':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  verdict (p95 <= 200 ms)")
failed = 0
for name, path in plan:
    p50, p95, worst = p(times[name], 0.5), p(times[name], 0.95), max(times[name])
    verdict = "PASS" if p95 <= 200 and name not in problems else "FAIL"
    failed += verdict == "FAIL"
    note = f"  {problems[name]}" if name in problems else ""
    print(f"{name:44} {p50:8.1f} {p95:8.1f} {worst:8.1f}  {verdict}{note}")
print(f"latency verdict: {'PASS' if not failed else f'FAIL ({failed} of {len(plan)} queries)'}"
      f" ({reps} repetitions each, warm)")
print("paths:")
for name, path in plan:
    print(f"  {name}: {path}")
PY

echo
echo "== dashboard queries and first log pages on $ROWS rows over $DAYS days =="
python3 "$WORK/latency.py" "$WORK" "$RELAYBOX_URL" "$RELAYBOX_ADMIN" "$REPS" \
  "$WORK/data/logs.sqlite" "$DATASET/ids.txt" "$GENERATED_AT" | tee "$WORK/latency.txt"

# ---- 3. relay throughput with and without a dashboard refreshing every 2 s ----------------------
cat >"$WORK/poller.py" <<'PY'
"""A dashboard left open: its calls every 2 s until SIGTERM; then how many refreshes it made
and how long they took."""
import http.client, signal, statistics, sys, time, urllib.parse
sys.path.insert(0, sys.argv[1])
from queries import queries, dashboard_set

url, admin, db, ids, generated_at = sys.argv[2:7]
plan = dashboard_set(queries(db, ids, generated_at))
conn = http.client.HTTPConnection(urllib.parse.urlparse(url).netloc, timeout=60)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
refreshes = []
while not stop:
    started = time.perf_counter()
    for _, path in plan:
        conn.request("GET", path, headers={"authorization": f"Bearer {admin}"})
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            sys.exit(f"{path}: HTTP {answer.status}")
    took = time.perf_counter() - started
    refreshes.append(took * 1000)
    deadline = started + 2.0
    while not stop and time.perf_counter() < deadline:
        time.sleep(0.05)
if refreshes:
    print(f"{len(refreshes)} {statistics.median(refreshes):.0f}")
else:
    print("0 0")
PY

# One wrk run through the lane: prints answers/s.
wrk_run() {
  BENCH_API_KEY="$LANE_KEY" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" \
    -s "$BENCH_DIR/messages.lua" "$RELAYBOX_URL/v1/messages" >"$WORK/wrk.txt" 2>&1
  python3 - "$WORK/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
fields = dict(kv.split("=") for kv in re.search(r"^WRK_RESULT (.*)$", text, re.M).group(1).split())
requests, seconds = int(fields["requests"]), int(fields["duration_us"]) / 1e6
if int(fields["non2xx"]) or not requests:
    sys.exit(f"non-2xx answers or no requests: {text}")
print(f"{requests / seconds:.0f}")
PY
}

# One wrk run while the poller refreshes the dashboard: prints "answers/s refreshes median_ms".
wrk_with_dashboard() {
  local poller rate
  python3 "$WORK/poller.py" "$WORK" "$RELAYBOX_URL" "$RELAYBOX_ADMIN" "$WORK/data/logs.sqlite" \
    "$DATASET/ids.txt" "$GENERATED_AT" >"$WORK/poller.txt" &
  poller=$!
  rate="$(wrk_run)" || return 1
  kill -TERM "$poller" 2>/dev/null || true
  wait "$poller" || { echo "the dashboard poller failed (see above)" >&2; return 1; }
  echo "$rate $(cat "$WORK/poller.txt")"
}

if [ "$SKIP_THROUGHPUT" != 1 ]; then
  start_mock
  LANE_KEY="$(add_lane messages claude "$MOCK_URL")"
  BENCH_API_KEY="$LANE_KEY" wrk -t2 -c"$CONNECTIONS" -d2s -s "$BENCH_DIR/messages.lua" \
    "$RELAYBOX_URL/v1/messages" >/dev/null 2>&1
  echo
  echo "== relay throughput with a dashboard refreshing every 2 s (non-streaming /v1/messages, $CONNECTIONS connections, ${DURATION} s runs) =="
  echo "round  plain answers/s  with dashboard answers/s  refreshes  refresh median ms  ratio"
  RATIOS=()
  for ((round = 1; round <= ROUNDS; round++)); do
    if ((round % 2)); then
      plain="$(wrk_run)"
      dashboard="$(wrk_with_dashboard)"
    else
      dashboard="$(wrk_with_dashboard)"
      plain="$(wrk_run)"
    fi
    read -r with refreshes refresh_ms <<<"$dashboard"
    ratio="$(python3 -c "print(f'{$with / $plain:.3f}')")"
    RATIOS+=("$ratio")
    printf '%5d  %15s  %24s  %9s  %17s  %5s\n' "$round" "$plain" "$with" "$refreshes" "$refresh_ms" "$ratio"
  done
  python3 -c "
import statistics, sys
m = statistics.median(map(float, sys.argv[1:]))
print(f'median with / without dashboard: {m:.3f}; throughput verdict: {\"PASS\" if m >= 0.95 else \"FAIL\"} (target >= 0.95)')" "${RATIOS[@]}"
fi

# ---- 4. the UI's first load ---------------------------------------------------------------------
cat >"$WORK/ui_size.py" <<'PY'
"""gzip -9 size of what a browser loads first: / and what it references, followed through the
JS modules' static imports; and of every file under assets/ (an upper bound). When the server
serves no UI (404 on /), the same references are followed in the assets/ folder itself
(/ = assets/index.html, /assets/X = assets/X)."""
import gzip, os, re, sys, urllib.error, urllib.parse, urllib.request

url, assets = sys.argv[1], sys.argv[2]
gz = lambda data: len(gzip.compress(data, compresslevel=9))


def over_http(path):
    try:
        with urllib.request.urlopen(url + path, timeout=30) as answer:
            return answer.read()
    except urllib.error.HTTPError as err:
        return None if err.code == 404 else sys.exit(f"GET {path}: HTTP {err.code}")


def from_folder(path):
    file = "index.html" if path == "/" else path.removeprefix("/assets/")
    if path != "/" and not path.startswith("/assets/") or ".." in file.split("/"):
        return None
    try:
        return open(os.path.join(assets, file), "rb").read()
    except OSError:
        return None


REFS = [re.compile(p) for p in (
    r'<(?:script|link)[^>]*?(?:src|href)\s*=\s*["\']([^"\']+)["\']',   # scripts, styles, icons
    r'(?m)^\s*(?:import|export)\s*(?:[\w*{}\s,]+from\s*)?["\']([^"\']+)["\']',  # static ES imports
    r'@import\s+(?:url\()?["\']([^"\']+)["\']',                        # CSS imports
    r'url\(\s*["\']?([^"\')]+)["\']?\s*\)',                            # CSS fonts, images
)]

fetch = over_http
if url == "-":  # no server: the folder alone
    fetch = from_folder
elif over_http("/") is None:
    fetch = from_folder
    print("GET / answered 404 (this binary serves no UI): following references in assets/ instead")
first = {}
todo = ["/"]
while todo:
    path = todo.pop()
    if path in first:
        continue
    body = fetch(path)
    if body is None:
        print(f"  {path}: not found (referenced but missing)")
        continue
    first[path] = body
    if path == "/" or path.endswith((".html", ".js", ".mjs", ".css")):
        text = body.decode(errors="replace")
        for pattern in REFS:
            for ref in pattern.findall(text):
                if ref.startswith(("data:", "http:", "https:", "//", "#")):
                    continue
                todo.append(urllib.parse.urljoin(path, ref).split("#")[0].split("?")[0])
if first:
    print(f"{'first load (followed from /)':44} {'raw bytes':>10} {'gzip -9':>10}")
    for path, body in sorted(first.items()):
        print(f"  {path:42} {len(body):10} {gz(body):10}")
    total = sum(gz(b) for b in first.values())
    print(f"first load: {len(first)} files, {sum(map(len, first.values()))} bytes, "
          f"{total} bytes gzipped ({total / 1024:.1f} KB); "
          f"UI size verdict: {'PASS' if total <= 300 * 1024 else 'FAIL'} (target <= 300 KB)")
else:
    print("no UI: neither the server nor assets/ has an index.html")

files = []
for top, _, names in os.walk(assets):
    for name in names:
        if name != "README.md":
            files.append(os.path.join(top, name))
every = sum(gz(open(f, "rb").read()) for f in files)
print(f"every file under assets/ (upper bound): {len(files)} files, {every} bytes gzipped "
      f"({every / 1024:.1f} KB)")
PY
echo
echo "== UI first load =="
python3 "$WORK/ui_size.py" "$RELAYBOX_URL" "$ROOT/assets"

echo
echo "data: $ROWS rows over $DAYS days, generated $GENERATED_AT; relaybox started in ${STARTUP_SECONDS} s"
stop_relaybox
