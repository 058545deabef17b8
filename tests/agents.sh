#!/usr/bin/env bash
# Real coding agents through relaybox, offline: Claude Code (`claude -p`) and Codex CLI
# (`codex exec`) against channels whose upstream speaks another protocol, and against a
# pass-through channel each.
#
#   bash tests/agents.sh [RUN...]      RUN = agent/serviceType, e.g. claude/openai codex/claude
#
# 1. Installs @anthropic-ai/claude-code and @openai/codex (pinned below) with npm into
#    ${RELAYBOX_AGENTS_CACHE:-~/.cache/relaybox-agents}, once. A package that cannot be
#    installed is reported with a "SKIPPED: …" line and its runs are left out; when neither
#    installs the script exits 0 without running anything.
# 2. Builds relaybox and mock-upstream (debug; RELAYBOX_AGENTS_PROFILE=release for release).
# 3. Re-runs itself inside a user + network namespace (`unshare -rn`) whose only interface is
#    loopback: the agents can reach nothing but the relay, the relay nothing but the mock.
#    There it starts tools/mock-upstream and relaybox, and for each run adds a channel (in the
#    agent's pool, with the run's serviceType, pointing at the mock) and a client key that may
#    use only that channel, then runs the agent in a temp HOME and working dir.
#
# The agents' tool round trip is real: the mock calls the first tool of a request and, once a
# tool result comes back, answers with text (its default reply, or "The tool said: …" quoting
# the result). Claude Code runs with `--tools Read` (and tool search off, so Read is the first
# tool): it reads the file `mock` of its temp working dir. Codex's first tool is its shell:
# it runs the command `mock`, found first on the shell's PATH in a temp folder, a script that
# prints the file — in Codex's read-only sandbox. So nothing outside the run's temp folders is
# read or run, and the file's random canary must reach the upstream in the upstream's protocol.
#
# Each run passes when: the agent exits 0 and prints the mock's answer ("Hello from the mock
# upstream", or "The tool said: …" with the canary); every request the mock got is in the channel's protocol and a
# later one carries the canary; relaybox's log has only success rows for the run's key, each
# naming the conversion in failover_info (`anthropic→openai_chat`), none for a pass-through.
# Any failure exits non-zero, after the summary table.
set -euo pipefail

CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
CACHE="${RELAYBOX_AGENTS_CACHE:-${HOME:-/tmp}/.cache/relaybox-agents}"
# Seconds one agent run may take (each run normally takes 1–10 s).
AGENT_TIMEOUT="${RELAYBOX_AGENTS_TIMEOUT:-60}"
CODEX_MODEL="${RELAYBOX_AGENTS_CODEX_MODEL:-claude-sonnet-4-5}"
PROMPT="Say hello to relaybox."

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECK=(python3 "$ROOT/tests/agents/check.py")
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

# agent/serviceType of every run, the pass-through one first per agent.
ALL_RUNS=(claude/claude claude/openai claude/gemini codex/responses codex/claude codex/openai)

die() { printf 'agents.sh: %s\n' "$*" >&2; exit 1; }

# ---- outside the namespace: packages, binaries -------------------------------------------

# Install npm package $2 at version $3 into $CACHE/$1-$3 unless it is there; echo the path of
# its executable $4. Fails (saying why on stderr) when it cannot be installed or run.
install_agent() {
  local name=$1 package=$2 version=$3 executable=$4 dir partial bin
  dir="$CACHE/$name-$version"
  bin="$dir/node_modules/.bin/$executable"
  if [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -qF "$version"; then
    printf '%s' "$bin"
    return 0
  fi
  command -v npm >/dev/null || { echo "npm is not installed" >&2; return 1; }
  echo "installing $package@$version into $dir" >&2
  partial="$dir.partial.$$"
  rm -rf "$dir" "$partial"
  mkdir -p "$partial"
  if ! npm install --prefix "$partial" --no-audit --no-fund --loglevel=error \
    "$package@$version" >"$partial.log" 2>&1; then
    tail -n 5 "$partial.log" >&2
    rm -rf "$partial" "$partial.log"
    return 1
  fi
  rm -f "$partial.log"
  mv "$partial" "$dir"
  "$bin" --version 2>&1 | grep -qF "$version" || {
    echo "$bin --version does not say $version: $("$bin" --version 2>&1 | head -n 3)" >&2
    return 1
  }
  printf '%s' "$bin"
}

outside() {
  local -a runs=("$@") wanted=() kept=()
  local run claude_bin="" codex_bin=""
  ((${#runs[@]})) || runs=("${ALL_RUNS[@]}")
  for run in "${runs[@]}"; do
    [[ " ${ALL_RUNS[*]} " == *" $run "* ]] || die "unknown run $run (known: ${ALL_RUNS[*]})"
    wanted+=("${run%%/*}")
  done
  if [[ " ${wanted[*]} " == *" claude "* ]]; then
    claude_bin="$(install_agent claude-code @anthropic-ai/claude-code "$CLAUDE_CODE_VERSION" claude)" ||
      echo "SKIPPED: Claude Code runs: @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION cannot be installed from npm here"
  fi
  if [[ " ${wanted[*]} " == *" codex "* ]]; then
    codex_bin="$(install_agent codex @openai/codex "$CODEX_VERSION" codex)" ||
      echo "SKIPPED: Codex CLI runs: @openai/codex@$CODEX_VERSION cannot be installed from npm here"
  fi
  for run in "${runs[@]}"; do
    case $run in
      claude/*) [[ -n $claude_bin ]] && kept+=("$run") ;;
      codex/*) [[ -n $codex_bin ]] && kept+=("$run") ;;
    esac
  done
  if ((${#kept[@]} == 0)); then
    echo "SKIPPED: no agent could be installed; nothing ran"
    exit 0
  fi

  unshare -rn true 2>/dev/null ||
    die "cannot create a user + network namespace (unshare -rn): are unprivileged user namespaces disabled (sysctl kernel.unprivileged_userns_clone, kernel.apparmor_restrict_unprivileged_userns)?"
  # Debug builds by default: the test suite has built them already (RELAYBOX_AGENTS_PROFILE=release
  # for release builds).
  local profile="${RELAYBOX_AGENTS_PROFILE:-debug}" flag=()
  [[ $profile == release ]] && flag=(--release)
  echo "building relaybox and mock-upstream ($profile)" >&2
  (cd "$ROOT" && cargo build "${flag[@]}" -q -p relaybox -p relaybox-mock-upstream \
    --bin relaybox --bin mock-upstream)
  TARGET_DIR="$(cargo_target_dir "$ROOT")"

  AGENTS_CLAUDE="$claude_bin" AGENTS_CODEX="$codex_bin" AGENTS_TARGET_DIR="$TARGET_DIR/$profile" \
    exec unshare -rn bash "$ROOT/tests/agents.sh" --in-namespace "${kept[@]}"
}

# ---- inside the namespace: mock, relaybox, agents ----------------------------------------

# Bring the namespace's loopback interface up (with `ip`, else one ioctl from Python).
loopback_up() {
  if command -v ip >/dev/null; then
    ip link set lo up
  else
    python3 -c '
import fcntl, socket, struct
s = socket.socket()
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP'
  fi
  # Proof that nothing but loopback is reachable.
  if python3 -c 'import socket; socket.create_connection(("1.1.1.1", 443), timeout=2)' 2>/dev/null; then
    die "the namespace reaches the outside network"
  fi
}

admin() {
  curl -sS --fail-with-body -H "authorization: Bearer $RELAYBOX_ADMIN" \
    -H 'content-type: application/json' "$@"
}

start_servers() {
  "$AGENTS_TARGET_DIR/mock-upstream" --listen 127.0.0.1:0 >"$WORK/mock.log" 2>&1 &
  PIDS+=($!)
  MOCK_URL="$(wait_url "$WORK/mock.log" $!)" || { cat "$WORK/mock.log" >&2; die "mock-upstream did not start"; }

  local port
  port="$(free_port)"
  RELAYBOX_URL="http://127.0.0.1:$port"
  RELAYBOX_ADMIN="agents-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  RELAYBOX_DATA_DIR="$WORK/data" RELAYBOX_LISTEN="127.0.0.1:$port" \
    RELAYBOX_ADMIN_KEY="$RELAYBOX_ADMIN" RELAYBOX_LOG_LEVEL=warn \
    "$AGENTS_TARGET_DIR/relaybox" serve >"$WORK/relaybox.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  until curl -sf -o /dev/null "$RELAYBOX_URL/health"; do
    kill -0 "$pid" 2>/dev/null || { cat "$WORK/relaybox.log" >&2; die "relaybox did not start"; }
    sleep 0.1
  done
}

# The protocol name relaybox's log uses for serviceType $1.
protocol_of() {
  case $1 in
    claude) echo anthropic ;;
    openai) echo openai_chat ;;
    responses) echo openai_responses ;;
    gemini) echo gemini ;;
  esac
}

# Claude Code in print mode in $dir/work, key $1; the answer in $dir/answer.txt. The model is
# the pinned version's default. `--tools Read` and ENABLE_TOOL_SEARCH=false make Read the
# request's only (so first) tool: without them the first is Bash, or the placeholder of
# deferred tool loading (`defer_loading`).
run_claude() {
  (cd "$dir/work" && env -i PATH="$PATH" HOME="$dir/home" TMPDIR="$dir/tmp" LANG=C.UTF-8 \
    ANTHROPIC_BASE_URL="$RELAYBOX_URL" ANTHROPIC_API_KEY="$1" \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 \
    DISABLE_ERROR_REPORTING=1 DISABLE_BUG_COMMAND=1 CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY=1 \
    CLAUDE_CODE_MAX_RETRIES=1 API_TIMEOUT_MS=30000 ENABLE_TOOL_SEARCH=false \
    timeout -k 5 "$AGENT_TIMEOUT" "$AGENTS_CLAUDE" -p "$PROMPT" --tools Read \
    --no-session-persistence --output-format text \
    </dev/null >"$dir/answer.txt" 2>"$dir/agent.log")
}

# Codex CLI `exec` in $dir/work with its own CODEX_HOME, key $1; the answer in $dir/answer.txt.
# The model is $CODEX_MODEL, by default a Claude model name as a user of a Claude channel would
# configure it (Codex has no metadata for it and warns): its tools are then all `function`
# tools once web search and the multi-agent `namespace` tool are off. With Codex's own models
# (e.g. RELAYBOX_AGENTS_CODEX_MODEL=gpt-5.5) it also sends a `custom` (freeform) apply_patch
# tool and a `tool_search` tool.
run_codex() {
  mkdir -p "$dir/codex"
  cat >"$dir/codex/config.toml" <<EOF
model = "$CODEX_MODEL"
model_provider = "relaybox"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false
web_search = "disabled"

[features]
multi_agent = false

[analytics]
enabled = false

[shell_environment_policy]
inherit = "core"
set = { PATH = "$dir/bin:/usr/bin:/bin" }

[model_providers.relaybox]
name = "relaybox"
base_url = "$RELAYBOX_URL/v1"
wire_api = "responses"
env_key = "RELAYBOX_AGENTS_KEY"
request_max_retries = 0
stream_max_retries = 0
EOF
  (cd "$dir/work" && env -i PATH="$PATH" HOME="$dir/home" TMPDIR="$dir/tmp" LANG=C.UTF-8 \
    CODEX_HOME="$dir/codex" RELAYBOX_AGENTS_KEY="$1" \
    timeout -k 5 "$AGENT_TIMEOUT" "$AGENTS_CODEX" exec --strict-config --skip-git-repo-check \
    --ephemeral --color never -o "$dir/answer.txt" "$PROMPT" \
    </dev/null >"$dir/agent.out" 2>"$dir/agent.log")
}

# One run: agent $1 against a channel of serviceType $2. Appends a line to $SUMMARY; returns 1
# when a check failed.
run_case() {
  local agent=$1 service=$2 pool client conversion channel key key_id canary rc=0
  local upstream_note="" rows_note="" answer="" why=""
  case $agent in
    claude) pool=messages client=anthropic ;;
    codex) pool=responses client=openai_responses ;;
  esac
  conversion="$client→$(protocol_of "$service")"
  [[ $(protocol_of "$service") == "$client" ]] && conversion="-"
  dir="$WORK/runs/$agent-$service"
  mkdir -p "$dir/home" "$dir/work" "$dir/tmp" "$dir/bin"
  canary="relaybox-agents-canary-$RANDOM$RANDOM"
  printf '%s\n' "$canary" >"$dir/work/mock"
  printf '#!/bin/sh\ncat %q\n' "$dir/work/mock" >"$dir/bin/mock"
  chmod +x "$dir/bin/mock"
  # Codex's shell gets PATH from its config, but a login shell (bash -lc) resets it in
  # /etc/profile and then reads ~/.bash_profile.
  # shellcheck disable=SC2016 # $PATH is the profile's
  printf 'PATH=%q:"$PATH"\n' "$dir/bin" >"$dir/home/.bash_profile"

  # Under `run_case … || …` errexit is off: every step checks its own result.
  if ! channel="$(admin --data "{\"pool\":\"$pool\",\"name\":\"agents-$agent-$service\",\"serviceType\":\"$service\",\"baseUrl\":\"$MOCK_URL\",\"apiKeys\":[\"sk-agents-upstream-key-0000\"]}" \
    "$RELAYBOX_URL/admin/api/channels")" || ! channel="$("${CHECK[@]}" field id <<<"$channel")" ||
    ! key="$(admin --data "{\"name\":\"agents-$agent-$service\",\"allow\":{\"channels${pool^}\":[\"$channel\"]}}" \
      "$RELAYBOX_URL/admin/api/keys")" || ! key_id="$("${CHECK[@]}" field key.id <<<"$key")" ||
    ! key="$("${CHECK[@]}" field plaintext <<<"$key")" ||
    ! curl -sS -f -X POST -o /dev/null "$MOCK_URL/_mock/reset"; then
    printf 'FAIL %-6s %-9s could not set the run up (channel, key or mock reset): %s\n' \
      "$agent" "$service" "$channel${key:+ / $key}" | tee -a "$SUMMARY"
    return 1
  fi

  local started=$SECONDS
  "run_$agent" "$key" || rc=$?
  local took=$((SECONDS - started))

  # The log writer commits within tens of milliseconds; wait until the rows stop growing.
  local logs="" previous="x" i
  for ((i = 0; i < 30; i++)); do
    logs="$(admin "$RELAYBOX_URL/admin/api/logs?key=$key_id&limit=1000")" || logs='{"logs":[]}'
    [[ $logs == "$previous" && $logs != '{"logs":[]}' ]] && break
    previous=$logs
    sleep 0.2
  done

  answer="$(tr '\n\t' '  ' <"$dir/answer.txt" 2>/dev/null | cut -c1-70)"
  if ((rc == 124)); then
    why="timed out after ${AGENT_TIMEOUT}s"
  elif ((rc != 0)); then
    # The agent's last error line (Claude Code prints it on stdout, Codex on stderr).
    why="exit code $rc: $(cat "$dir/answer.txt" "$dir/agent.log" 2>/dev/null |
      grep -iE 'error' | tail -n 1 | cut -c1-300)"
  elif ! grep -qE 'Hello from the mock upstream|The tool said:' "$dir/answer.txt"; then
    why="the answer is not the mock's: $(tr '\n' ' ' <"$dir/answer.txt" | cut -c1-200)"
  elif grep -q 'The tool said:' "$dir/answer.txt" && ! grep -qF "$canary" "$dir/answer.txt"; then
    why="the answer quotes a tool result without the canary: $(tr '\n' ' ' <"$dir/answer.txt" | cut -c1-200)"
  fi
  curl -sS -f -o "$dir/upstream.json" "$MOCK_URL/_mock/requests" || echo '[]' >"$dir/upstream.json"
  printf '%s\n' "$logs" >"$dir/rows.json"
  upstream_note="$("${CHECK[@]}" upstream "$service" "$canary" <"$dir/upstream.json")" ||
    why="${why:+$why; }$upstream_note"
  rows_note="$("${CHECK[@]}" rows "$conversion" <<<"$logs")" || why="${why:+$why; }$rows_note"

  local verdict=PASS
  [[ -n $why ]] && verdict=FAIL
  printf '%-4s %-6s %-9s %-30s %3ss  %s\n' "$verdict" "$agent" "$service" \
    "${conversion/#-/pass-through}" "$took" "${why:-$rows_note; $upstream_note; answer: $answer}" |
    tee -a "$SUMMARY"
  [[ -z $why ]]
}

# Stop the servers; keep the scratch dir (logs, each run's files) when a run failed or
# RELAYBOX_AGENTS_KEEP is set.
finish() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((rc == 0)) && [[ -z ${RELAYBOX_AGENTS_KEEP:-} ]]; then
    rm -rf "$WORK"
  else
    echo "kept for a look: $WORK (runs/AGENT-SERVICETYPE: answer, agent.log, upstream.json, rows.json)" >&2
  fi
}

in_namespace() {
  loopback_up
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/relaybox-agents.XXXXXX")"
  PIDS=()
  trap finish EXIT
  SUMMARY="$WORK/summary.txt"
  start_servers
  printf 'offline (loopback only): mock %s, relaybox %s\n' "$MOCK_URL" "$RELAYBOX_URL"
  [[ -n $AGENTS_CLAUDE ]] && echo "Claude Code $("$AGENTS_CLAUDE" --version 2>/dev/null)"
  [[ -n $AGENTS_CODEX ]] && "$AGENTS_CODEX" --version 2>/dev/null

  local run failed=0
  for run in "$@"; do
    run_case "${run%%/*}" "${run#*/}" || failed=$((failed + 1))
  done
  printf '\n==== summary (agent, upstream serviceType, conversion, time, findings) ====\n'
  cat "$SUMMARY"
  if ((failed)); then
    printf '%d of %d runs failed; the files of each run are in %s/runs\n' "$failed" "$#" "$WORK"
    exit 1
  fi
  printf 'all %d runs passed\n' "$#"
}

if [[ ${1:-} == --in-namespace ]]; then
  shift
  in_namespace "$@"
else
  outside "$@"
fi
