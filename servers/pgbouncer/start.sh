#!/usr/bin/env bash
# Start pgbouncer for poolviz on 127.0.0.1:6432 (POOLVIZ_PGBOUNCER_PORT), in front of the local
# PostgreSQL, in transaction-pooling mode. Safe to run again: it does nothing if one is answering.
#   servers/pgbouncer/start.sh            start it (pgbouncer must be installed)
#   servers/pgbouncer/start.sh --install  install the Debian package first (apt-get, needs root)
#   servers/pgbouncer/start.sh --stop     stop the one this script started
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${POOLVIZ_PGBOUNCER_PORT:-6432}"
run_dir="${POOLVIZ_PGBOUNCER_DIR:-${TMPDIR:-/tmp}/poolviz-pgbouncer-$port}"
bin="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"

if [ "${1:-}" = "--stop" ]; then
  [ -f "$run_dir/pgbouncer.pid" ] && kill "$(cat "$run_dir/pgbouncer.pid")" && echo "pgbouncer stopped"
  exit 0
fi
if [ "${1:-}" = "--install" ] && [ ! -x "$bin" ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  # The package starts its own service on 6432 with its own config: ours replaces it.
  if command -v service >/dev/null; then service pgbouncer stop >/dev/null 2>&1 || true; fi
  bin=/usr/sbin/pgbouncer
fi
if [ ! -x "$bin" ]; then
  echo "pgbouncer is not installed: apt-get install pgbouncer (Debian/Ubuntu), brew install pgbouncer (macOS)," \
       "or run $0 --install as root" >&2
  exit 1
fi

answering() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if answering; then
  echo "something already answers on 127.0.0.1:$port; leaving it (stop it first to use poolviz's config)"
  exit 0
fi

mkdir -p "$run_dir"
sed -e "s|@RUN_DIR@|$run_dir|g" -e "s|@PORT@|$port|g" "$here/pgbouncer.ini" >"$run_dir/pgbouncer.ini"
cp "$here/userlist.txt" "$run_dir/userlist.txt"
if [ "$(id -u)" = 0 ]; then
  # pgbouncer refuses to run as root: run it as the postgres system user.
  chown -R postgres "$run_dir"
  "$bin" -d -u postgres "$run_dir/pgbouncer.ini"
else
  "$bin" -d "$run_dir/pgbouncer.ini"
fi
for _ in $(seq 50); do answering && break; sleep 0.1; done
answering || { echo "pgbouncer did not start; its log: $run_dir/pgbouncer.log" >&2; tail -n 20 "$run_dir/pgbouncer.log" >&2; exit 1; }
echo "pgbouncer answers on 127.0.0.1:$port (transaction pooling; config and log in $run_dir)"
