#!/usr/bin/env bash
# Request-log shipping into a local PostgreSQL (cluster mode): rows per second from a filled
# logs.sqlite, through the real shipper loop (examples/log_shipping_bench.rs). Target: ≥ 50,000.
#
#   bench/log_shipping.sh [ROWS [BATCH]]        # default 500000 rows, 5000 per statement
#
# Starts a PostgreSQL of its own (Debian's server binaries, highest version; as root it runs as
# the postgres user) on a free loopback port in a scratch dir, with the durability a real
# deployment has (fsync and synchronous_commit on), and removes it afterwards. Set
# RELAYBOX_BENCH_PG_URL to use a server you run instead (the bench makes a database of its own
# there and drops it).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT="$(dirname "$BENCH_DIR")"

pg_bindir() {
  local candidate dir=""
  for candidate in /usr/lib/postgresql/*/bin; do
    [[ -x $candidate/postgres && -x $candidate/initdb ]] || continue
    if [[ -z $dir ]] || [[ $(printf '%s\n%s\n' "$dir" "$candidate" | sort -V | tail -n 1) == "$candidate" ]]; then
      dir=$candidate
    fi
  done
  [[ -n $dir ]] && printf '%s\n' "$dir"
}

# A PostgreSQL tool as the cluster's owner: postgres when we are root (initdb refuses root).
as_pg_owner() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

stop_postgres() {
  if [[ -n ${PG_DATA:-} && -f $PG_DATA/postmaster.pid ]]; then
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  remove_scratch_dir
}

use_scratch_dir log-shipping
trap stop_postgres EXIT

(cd "$ROOT" && cargo build --release -q --example log_shipping_bench)
TARGET_DIR="$(cargo_target_dir "$ROOT")"

if [[ -z ${RELAYBOX_BENCH_PG_URL:-} ]]; then
  PG_BIN="$(pg_bindir)" || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)" >&2; exit 1; }
  chmod 755 "$WORK"
  mkdir "$WORK/pg"
  [[ $EUID -eq 0 ]] && chown postgres: "$WORK/pg"
  PG_DATA="$WORK/pg/data"
  port="$(free_port)"
  as_pg_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
    >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; exit 1; }
  as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w -t 30 start -o \
    "-p $port -c listen_addresses=127.0.0.1 -k $WORK/pg -c shared_buffers=256MB -c max_wal_size=2GB" \
    >/dev/null || { cat "$WORK/pg/postgres.log" >&2; exit 1; }
  export RELAYBOX_BENCH_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync on, synchronous_commit on)"
fi

"$TARGET_DIR/release/examples/log_shipping_bench" "$@"
