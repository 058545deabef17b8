# shellcheck shell=bash
# Throwaway Redis and PostgreSQL for the test suite, on 127.0.0.1 only.
#
# Sourced by tests/run.sh:   . tests/services.sh; services_install; services_up; trap services_down EXIT
# Run on its own it checks itself: starts both, pings them, stops them.
#   bash tests/services.sh
#
# Exports, once up:
#   RELAYBOX_TEST_REDIS_URL=redis://127.0.0.1:$RELAYBOX_TEST_REDIS_PORT/   (default port 16379)
#   RELAYBOX_TEST_PG_URL=postgres://postgres@127.0.0.1:$RELAYBOX_TEST_PG_PORT/postgres (default 15432)
# Everything lives in one temp dir that services_down removes. A run that was killed leaves a
# state file behind; the next run stops what it left before starting again.

RELAYBOX_TEST_REDIS_PORT="${RELAYBOX_TEST_REDIS_PORT:-16379}"
RELAYBOX_TEST_PG_PORT="${RELAYBOX_TEST_PG_PORT:-15432}"
SERVICES_STATE="${TMPDIR:-/tmp}/relaybox-test-services.${RELAYBOX_TEST_REDIS_PORT}.${RELAYBOX_TEST_PG_PORT}"
SERVICES_DIR=""

svc_log() { printf '[services] %s\n' "$*"; }
svc_die() { printf '[services] error: %s\n' "$*" >&2; return 1; }

# Run as root: directly when we are root, through sudo otherwise.
svc_as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        svc_die "need root for: $* (run as root, or install sudo)"
    fi
}

svc_pg_bindir() {
    local candidate dir=""
    for candidate in /usr/lib/postgresql/*/bin; do # glob order; pick the highest version
        [[ -x $candidate/postgres && -x $candidate/initdb ]] || continue
        if [[ -z $dir ]] || [[ $(printf '%s\n%s\n' "$dir" "$candidate" | sort -V | tail -n 1) == "$candidate" ]]; then
            dir=$candidate
        fi
    done
    [[ -n $dir ]] && printf '%s\n' "$dir"
}

svc_have_venv() {
    command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1
}

# Install what is missing (Debian 12 package names); nothing when all is there.
services_install() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 \
        || missing+=(redis-server)
    svc_pg_bindir >/dev/null || missing+=(postgresql)
    command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
    svc_have_venv || missing+=(python3-venv)
    # openssl: the relay tests make a throwaway TLS certificate with it.
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
    if ((${#missing[@]} == 0)); then
        svc_log "redis-server, postgresql, python3-venv and cc are installed"
        return 0
    fi
    svc_log "installing: ${missing[*]}"
    svc_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    svc_as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

svc_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Run a PostgreSQL tool as the cluster's owner: `postgres` when we are root (initdb refuses
# root), ourselves otherwise.
svc_pg() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

svc_stop_dir() {
    local dir=$1 bindir
    [[ -n $dir && -d $dir ]] || return 0
    if [[ -f $dir/redis/redis.pid ]]; then
        redis-cli -h 127.0.0.1 -p "$RELAYBOX_TEST_REDIS_PORT" shutdown nosave >/dev/null 2>&1 \
            || kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
    fi
    if [[ -f $dir/pg/data/postmaster.pid ]] && bindir="$(svc_pg_bindir)"; then
        svc_pg "$bindir/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

services_down() {
    if [[ -n $SERVICES_DIR ]]; then
        svc_log "stopping Redis and PostgreSQL"
        svc_stop_dir "$SERVICES_DIR"
        SERVICES_DIR=""
        rm -f "$SERVICES_STATE"
    fi
}

svc_start_redis() {
    local dir=$SERVICES_DIR/redis port=$RELAYBOX_TEST_REDIS_PORT
    mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --daemonize yes --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
        || { cat "$dir/redis.log" >&2 2>/dev/null; svc_die "redis-server did not start"; }
    local i
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]] && return 0
        sleep 0.05
    done
    cat "$dir/redis.log" >&2 2>/dev/null
    svc_die "Redis on 127.0.0.1:$port does not answer"
}

svc_start_postgres() {
    local dir=$SERVICES_DIR/pg port=$RELAYBOX_TEST_PG_PORT bindir
    bindir="$(svc_pg_bindir)" || svc_die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    mkdir -p "$dir"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || svc_die "user postgres is missing (reinstall the postgresql package)"
        chown postgres: "$dir"
    fi
    svc_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C --no-sync >"$SERVICES_DIR/initdb.log" 2>&1 \
        || { cat "$SERVICES_DIR/initdb.log" >&2; svc_die "initdb failed"; }
    # Throwaway cluster: durability off for speed; TCP on loopback, socket in the temp dir.
    svc_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start -o \
        "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        >/dev/null || { cat "$dir/postgres.log" >&2; svc_die "PostgreSQL did not start"; }
}

# Start both and export their URLs. Call services_down when done (run.sh traps EXIT).
services_up() {
    local started=$SECONDS
    if [[ -f $SERVICES_STATE ]]; then
        svc_log "stopping services left by an earlier run ($(cat "$SERVICES_STATE"))"
        svc_stop_dir "$(cat "$SERVICES_STATE")"
        rm -f "$SERVICES_STATE"
    fi
    local port
    for port in "$RELAYBOX_TEST_REDIS_PORT" "$RELAYBOX_TEST_PG_PORT"; do
        if svc_port_open "$port"; then
            svc_die "port 127.0.0.1:$port is already in use; set RELAYBOX_TEST_REDIS_PORT / RELAYBOX_TEST_PG_PORT to free ports"
        fi
    done
    SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/relaybox-test.XXXXXX")"
    chmod 755 "$SERVICES_DIR" # the postgres user must reach its data dir inside
    printf '%s\n' "$SERVICES_DIR" >"$SERVICES_STATE"
    svc_start_redis
    svc_start_postgres
    export RELAYBOX_TEST_REDIS_URL="redis://127.0.0.1:$RELAYBOX_TEST_REDIS_PORT/"
    export RELAYBOX_TEST_PG_URL="postgres://postgres@127.0.0.1:$RELAYBOX_TEST_PG_PORT/postgres"
    svc_log "Redis $RELAYBOX_TEST_REDIS_URL and PostgreSQL $RELAYBOX_TEST_PG_URL up in $((SECONDS - started))s (files in $SERVICES_DIR)"
}

# Self-check when run directly: bash tests/services.sh
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    services_install
    trap services_down EXIT
    services_up
    [[ $(redis-cli -u "$RELAYBOX_TEST_REDIS_URL" ping) == PONG ]] || svc_die "redis ping failed"
    [[ $(psql "$RELAYBOX_TEST_PG_URL" -XAtqc 'select 1') == 1 ]] || svc_die "psql select 1 failed"
    svc_log "ok: redis-cli ping = PONG, psql select 1 = 1"
fi
