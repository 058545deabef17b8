#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a developer's box:
#
#   bash tests/run.sh
#
# As root (CI) or as a user with sudo (used only for apt-get). Safe to run again: it installs
# only what is missing (redis-server, postgresql, python3-venv, a C compiler, chromium), starts a
# throwaway Redis and PostgreSQL on 127.0.0.1 (tests/services.sh), stops them on exit, and
# fails at the first failing step:
#   1. cargo fmt --check   2. cargo clippy -D warnings   3. cargo build (debug)
#   4. cargo test          5. pytest tests/sdk (when it has tests)
#   6. pytest tests/ui: the web console in Debian's Chromium (Playwright; no browser download),
#      screenshots in $UI_SCREENSHOTS (default target/ui-screenshots)
#   7. tests/agents.sh: Claude Code and Codex CLI through converted channels, offline
#   8. tests/container.sh: packaging lints, then the image built and run with podman
# Needs a Rust toolchain (cargo, rustfmt, clippy) on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_STARTED=$SECONDS
CURRENT_STEP="setup"
section() { CURRENT_STEP="$*"; printf '\n==== %s ====\n' "$*"; }
step_done() { printf -- '---- %s: ok (%ss)\n' "$1" "$((SECONDS - $2))"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup, with the rustfmt and clippy components) and open a new shell"

# shellcheck source=tests/services.sh
. "$ROOT/tests/services.sh"
TEST_LOG="" PY_LOG=""
on_exit() {
    local rc=$?
    services_down
    rm -f "$TEST_LOG" "$PY_LOG"
    if ((rc != 0)); then
        printf '\nrun.sh: FAILED in step "%s" (exit code %d)\n' "$CURRENT_STEP" "$rc" >&2
    fi
    return "$rc"
}
trap on_exit EXIT

section "system packages"
t=$SECONDS
services_install
# The browser stories drive Debian's Chromium (Playwright never downloads a browser here).
if [[ ! -x /usr/bin/chromium ]]; then
    printf 'installing: chromium\n'
    svc_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    svc_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
step_done "system packages" "$t"

section "Redis and PostgreSQL (throwaway, 127.0.0.1)"
t=$SECONDS
services_up
step_done "services" "$t"

section "Python virtualenv (.venv)"
t=$SECONDS
SDK_DIR="$ROOT/tests/sdk"
if [[ ! -x $ROOT/.venv/bin/python ]]; then
    rm -rf "$ROOT/.venv"
    python3 -m venv "$ROOT/.venv"
fi
SDK_TESTS=()
if [[ -d $SDK_DIR ]]; then
    mapfile -t SDK_TESTS < <(find "$SDK_DIR" -type f \( -name 'test_*.py' -o -name '*_test.py' \) | sort)
fi
if [[ -f $SDK_DIR/requirements.txt ]]; then
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$SDK_DIR/requirements.txt"
fi
UI_DIR="$ROOT/tests/ui"
UI_TESTS=()
if [[ -d $UI_DIR ]]; then
    mapfile -t UI_TESTS < <(find "$UI_DIR" -type f -name 'test_*.py' | sort)
fi
if [[ -f $UI_DIR/requirements.txt ]]; then
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -r "$UI_DIR/requirements.txt"
fi
if ((${#SDK_TESTS[@]} + ${#UI_TESTS[@]} > 0)) && ! "$ROOT/.venv/bin/python" -c 'import pytest' 2>/dev/null; then
    "$ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check pytest
fi
step_done "virtualenv" "$t"

section "cargo fmt --check"
t=$SECONDS
cargo fmt --all -- --check
step_done "fmt" "$t"

section "cargo clippy (-D warnings)"
t=$SECONDS
cargo clippy --workspace --all-targets -- -D warnings
step_done "clippy" "$t"

section "cargo build"
t=$SECONDS
cargo build --workspace --bins
step_done "build" "$t"

section "cargo test"
t=$SECONDS
TEST_LOG="$(mktemp "${TMPDIR:-/tmp}/relaybox-cargo-test.XXXXXX")"
cargo test --workspace 2>&1 | tee "$TEST_LOG"
passed=0 failed=0 ignored=0
while read -r line; do
    [[ $line =~ ([0-9]+)\ passed\;\ ([0-9]+)\ failed\;\ ([0-9]+)\ ignored ]] || continue
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    ignored=$((ignored + BASH_REMATCH[3]))
done < <(grep -E '^test result:' "$TEST_LOG")
printf '\ncargo test summary:\n'
awk '/^ *Running / {
         target = $0; sub(/^ *Running /, "", target); sub(/ \(.*$/, "", target)
         crate = $0; sub(/.*\(/, "", crate); sub(/\).*/, "", crate)
         n = split(crate, parts, "/"); crate = parts[n]; sub(/-[0-9a-f]+$/, "", crate)
         target = crate ": " target }
     /^ *Doc-tests / { target = "doc-tests " $2 }
     /^test result:/ { sub(/^test result: /, ""); sub(/; [0-9]+ measured.*/, ""); printf "  %-60s %s\n", target, $0 }' "$TEST_LOG"
rm -f "$TEST_LOG"
step_done "cargo test" "$t"

py_passed=0 py_skipped=0
section "pytest tests/sdk"
if ((${#SDK_TESTS[@]} > 0)); then
    t=$SECONDS
    PY_LOG="$(mktemp "${TMPDIR:-/tmp}/relaybox-pytest.XXXXXX")"
    # Exit code 5 ("no tests collected") is a failure here: test files exist.
    "$ROOT/.venv/bin/python" -m pytest -q "$SDK_DIR" 2>&1 | tee "$PY_LOG"
    summary="$(tail -n 1 "$PY_LOG")"
    [[ $summary =~ ([0-9]+)\ passed ]] && py_passed=${BASH_REMATCH[1]}
    [[ $summary =~ ([0-9]+)\ skipped ]] && py_skipped=${BASH_REMATCH[1]}
    rm -f "$PY_LOG"
    step_done "pytest" "$t"
else
    printf 'no test files in tests/sdk; skipped\n'
fi

section "pytest tests/ui (browser stories)"
if ((${#UI_TESTS[@]} > 0)); then
    t=$SECONDS
    if [[ -z ${UI_SCREENSHOTS:-} ]]; then
        # The default folder holds this run's pictures only (a folder of the caller's is kept).
        export UI_SCREENSHOTS="$ROOT/target/ui-screenshots"
        rm -rf "$UI_SCREENSHOTS"
    fi
    PY_LOG="$(mktemp "${TMPDIR:-/tmp}/relaybox-pytest-ui.XXXXXX")"
    "$ROOT/.venv/bin/python" -m pytest -q "$UI_DIR" 2>&1 | tee "$PY_LOG"
    summary="$(tail -n 1 "$PY_LOG")"
    [[ $summary =~ ([0-9]+)\ passed ]] && py_passed=$((py_passed + BASH_REMATCH[1]))
    [[ $summary =~ ([0-9]+)\ skipped ]] && py_skipped=$((py_skipped + BASH_REMATCH[1]))
    rm -f "$PY_LOG"
    printf 'screenshots: %s\n' "$UI_SCREENSHOTS"
    step_done "pytest ui" "$t"
else
    printf 'no test files in tests/ui; skipped\n'
fi

section "coding agents (tests/agents.sh)"
t=$SECONDS
# Claude Code and Codex CLI through converted channels, offline; skipped (exit 0, "SKIPPED")
# when npm cannot install them.
bash "$ROOT/tests/agents.sh"
step_done "agents" "$t"

section "container image (tests/container.sh)"
t=$SECONDS
# podman runs rootful and the test chowns its folders: root, or sudo as for apt-get above.
if ((EUID == 0)); then bash "$ROOT/tests/container.sh"; else sudo bash "$ROOT/tests/container.sh"; fi
step_done "container" "$t"

services_down
section "done in $((SECONDS - RUN_STARTED))s"
printf 'cargo test: %d passed, %d failed, %d ignored; pytest: %d passed, %d skipped\n' \
    "$passed" "$failed" "$ignored" "$py_passed" "$py_skipped"
printf 'total: %d passed, %d failed, %d skipped\n' \
    "$((passed + py_passed))" "$failed" "$((ignored + py_skipped))"
