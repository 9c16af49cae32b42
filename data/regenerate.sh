#!/usr/bin/env bash
# Re-record the traces in data/ with the poolviz command line (see data/README.md).
# Needs MariaDB/MySQL and PostgreSQL: POOLVIZ_MYSQL_URL and POOLVIZ_PG_URL, or the local defaults.
# Timing differs from run to run, so the new files will not be byte-identical to the old ones.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
MYSQL_URL=${POOLVIZ_MYSQL_URL:-mysql+pool://root@127.0.0.1:3306/test}
PG_URL=${POOLVIZ_PG_URL:-postgresql+pool://postgres@127.0.0.1:5432/test}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# record NAME ARGS...: one `poolviz run` in a scratch folder (so a SQLite URL stays relative),
# then keep its events.csv and events.meta.json as data/NAME.csv and data/NAME.meta.json.
record() {
    local name=$1
    shift
    echo "recording $name" >&2
    (cd "$work" && "$PYTHON" -m poolviz run --quiet --out "$name" "$@")
    cp "$work/$name/events.csv" "$repo/data/$name.csv"
    cp "$work/$name/events.meta.json" "$repo/data/$name.meta.json"
}

record mariadb_pool4_w16 --url "$MYSQL_URL" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --seed 1
record postgresql_pool4_w16 --url "$PG_URL" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --seed 1
record postgresql_pool4_w16_exp_think --url "$PG_URL" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --think-ms 20 --distribution exp --seed 1
record mariadb_pool2_timeouts --url "$MYSQL_URL" \
    --max-connections 2 --workers 16 --requests 10 --hold-ms 20 --timeout 0.1 --seed 1
record sqlite_pool4_w16 --url "sqlite+pool:///poolviz.db" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --seed 1
# asyncio: 16 tasks instead of 16 threads, through peewee's asyncio databases (asyncpg, aiomysql).
record mariadb_asyncio_pool4_t16 --url "${MYSQL_URL/+pool:/+asyncpool:}" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --seed 1
record postgresql_asyncio_pool4_t16 --url "${PG_URL/+pool:/+asyncpool:}" \
    --max-connections 4 --workers 16 --requests 25 --hold-ms 20 --seed 1
