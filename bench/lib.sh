# shellcheck shell=bash
# Helpers shared by the bench/*.sh scripts (sourced, not run).

# Echo the URL of the "... listening on http://ADDR" line that process $2 printed to file $1;
# fail when the process exits or 10 s pass first.
wait_url() {
  local file=$1 pid=$2 i url
  for ((i = 0; i < 100; i++)); do
    url="$(grep -o -m1 'listening on http://[^ ]*' "$file" 2>/dev/null | sed 's/^listening on //' || true)"
    if [ -n "$url" ]; then
      printf '%s' "$url"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat, after "(comm)");
# 0 when it is gone.
cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || { echo 0; return 0; }
  stat="${stat##*) }"
  awk '{print $12 + $13}' <<<"$stat"
}

# Cargo's target directory of the workspace at $1 (honours CARGO_TARGET_DIR and config).
cargo_target_dir() {
  (cd "$1" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
}

# Install Debian package $1 (with sudo when not root) unless command $1 exists; tries without
# `apt-get update` first. Fails when it cannot.
ensure_tool() {
  local tool=$1 sudo=""
  command -v "$tool" >/dev/null && return 0
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing $tool (apt-get)" >&2
  $sudo apt-get install -y "$tool" >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y "$tool" >/dev/null; }
}

# A TCP port on 127.0.0.1 that is free right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Configure the relaybox at URL $1 (admin key $2) for the benchmark through its admin API: a
# `claude` channel in the messages pool and an `openai` channel in the chat pool, both pointing at
# the mock at $3, a price for claude-sonnet-4-5, and one client key, whose plaintext it echoes.
# Fails (curl reports the status on stderr) when any call is not answered 2xx.
configure_relaybox() {
  local url=$1 admin=$2 mock=$3 body answer
  local -a call=(curl -sS --fail-with-body -X POST -H "authorization: Bearer $admin"
    -H 'content-type: application/json')
  for body in \
    "{\"pool\":\"messages\",\"name\":\"mock\",\"serviceType\":\"claude\",\"baseUrl\":\"$mock\",\"apiKeys\":[\"sk-bench-upstream-key-000000\"]}" \
    "{\"pool\":\"chat\",\"name\":\"mock\",\"serviceType\":\"openai\",\"baseUrl\":\"$mock\",\"apiKeys\":[\"sk-bench-upstream-key-000000\"]}"; do
    "${call[@]}" -o /dev/null --data "$body" "$url/admin/api/channels" || return 1
  done
  "${call[@]}" -o /dev/null --data '{"model":"claude-sonnet-4-5","inputPrice":3,"outputPrice":15}' \
    "$url/admin/api/pricing" || return 1
  answer="$("${call[@]}" --data '{"name":"bench"}' "$url/admin/api/keys")" || return 1
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])["plaintext"])' "$answer"
}

# Make a scratch dir $WORK (named after $1) and an empty $PIDS; on exit, stop every process in
# $PIDS and remove $WORK. For scripts that keep nothing of a run (run.sh has its own).
use_scratch_dir() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaybox-$1.XXXXXX")"
  PIDS=()
  trap remove_scratch_dir EXIT
}

remove_scratch_dir() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

# Build the mock upstream and the bare proxy of the workspace at $ROOT (release); set TARGET_DIR.
build_helpers() {
  (cd "$ROOT" && cargo build --release -q -p relaybox-mock-upstream -p relaybox-passthrough-proxy)
  TARGET_DIR="$(cargo_target_dir "$ROOT")"
}

# Set RELAYBOX to binary $1 when given, else build relaybox in $ROOT and use that (after
# build_helpers, which sets TARGET_DIR).
# shellcheck disable=SC2034 # RELAYBOX is for the calling script
relaybox_binary() {
  if [ $# -ge 1 ]; then
    RELAYBOX="$(realpath "$1")"
  else
    (cd "$ROOT" && cargo build --release -q --bin relaybox)
    RELAYBOX="$TARGET_DIR/release/relaybox"
  fi
}

# Start the mock upstream (not recording requests) from $TARGET_DIR; set MOCK_URL.
start_mock() {
  "$TARGET_DIR/release/mock-upstream" --listen 127.0.0.1:0 --no-record >"$WORK/mock.log" 2>&1 &
  PIDS+=($!)
  MOCK_URL="$(wait_url "$WORK/mock.log" $!)" || { cat "$WORK/mock.log" >&2; return 1; }
}

# Start the bare proxy in front of $MOCK_URL, under the command words given (none, or e.g.
# valgrind and its options); set PROXY_URL and PROXY_PID.
# shellcheck disable=SC2120 # the wrapper words are optional
start_proxy() {
  "$@" "$TARGET_DIR/release/passthrough-proxy" --listen 127.0.0.1:0 --upstream "$MOCK_URL" \
    >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  # shellcheck disable=SC2034 # for the calling script
  PROXY_URL="$(wait_url "$WORK/proxy.log" "$PROXY_PID")" || { cat "$WORK/proxy.log" >&2; return 1; }
}

# Start relaybox binary $1 on a fresh $WORK/data, with extra environment $2 ("NAME=value …",
# may be empty; it wins over the defaults), under the command words that follow (none, or e.g.
# valgrind and its options). Wait for /health, configure it (configure_relaybox) and set
# RELAYBOX_URL, RELAYBOX_PID and RELAYBOX_KEY.
start_relaybox() {
  local binary=$1 extra=$2 port admin
  shift 2
  port="$(free_port)"
  admin="bench-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  RELAYBOX_URL="http://127.0.0.1:$port"
  RELAYBOX_ADMIN="$admin"
  rm -rf "$WORK/data"
  # shellcheck disable=SC2086 # $extra is a list of NAME=value words
  env RELAYBOX_DATA_DIR="$WORK/data" RELAYBOX_LISTEN="127.0.0.1:$port" RELAYBOX_ADMIN_KEY="$admin" \
    RELAYBOX_LOG_LEVEL=warn $extra "$@" "$binary" serve >"$WORK/relaybox.log" 2>&1 &
  RELAYBOX_PID=$!
  PIDS+=("$RELAYBOX_PID")
  until curl -sf -o /dev/null "$RELAYBOX_URL/health"; do
    kill -0 "$RELAYBOX_PID" 2>/dev/null || { cat "$WORK/relaybox.log" >&2; return 1; }
    sleep 0.1
  done
  # shellcheck disable=SC2034 # for the calling script
  RELAYBOX_KEY="$(configure_relaybox "$RELAYBOX_URL" "$admin" "$MOCK_URL")"
}

# Add a channel of pool $1 and serviceType $2 with base URL $3 to the running relaybox
# ($RELAYBOX_URL, $RELAYBOX_ADMIN), and a client key that may use only that channel; echo the key.
add_lane() {
  local pool=$1 service_type=$2 base=$3 channel answer allow
  local -a call=(curl -sS --fail-with-body -X POST -H "authorization: Bearer $RELAYBOX_ADMIN"
    -H 'content-type: application/json')
  channel="$("${call[@]}" --data "{\"pool\":\"$pool\",\"name\":\"$pool-$service_type-$RANDOM\",\"serviceType\":\"$service_type\",\"baseUrl\":\"$base\",\"apiKeys\":[\"sk-bench-upstream-key-000000\"]}" \
    "$RELAYBOX_URL/admin/api/channels")" || return 1
  allow="$(python3 -c 'import json, sys; print(json.dumps({"name": "lane-" + json.loads(sys.argv[1])["id"], "allow": {"channels" + sys.argv[2].capitalize(): [json.loads(sys.argv[1])["id"]]}}))' "$channel" "$pool")"
  answer="$("${call[@]}" --data "$allow" "$RELAYBOX_URL/admin/api/keys")" || return 1
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])["plaintext"])' "$answer"
}
