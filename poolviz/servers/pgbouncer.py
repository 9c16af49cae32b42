"""pgbouncer, the server-side pooler: where it is, whether it answers, and what it holds.

``servers/pgbouncer/start.sh`` starts one on 127.0.0.1:6432 in transaction
pooling mode in front of the local PostgreSQL (``.ci/run`` installs and starts
it). Clients connect to it as to PostgreSQL; it hands each *transaction* a
server connection from a pool of at most ``default_pool_size`` (10) per
database and role, so any number of client connections share a bounded
number of server ones. Session state (``SET``, ``PREPARE``, temporary tables)
stays on the server connection, not with the client: the next transaction
may run elsewhere, and another client may find it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from ..backends import pgbouncer_show_sql
from ..credentials import mask_url
from .reachability import Choice, pgbouncer_url, reachable

START_SCRIPT = "servers/pgbouncer/start.sh"
#: The database name in pgbouncer's config that reaches ``test`` through one server connection.
ONE_CONNECTION_DB = "test_one"


def check(url: str | None = None) -> str:
    """``url`` (default :func:`poolviz.servers.pgbouncer_url`) if pgbouncer answers there, else a clear error."""
    url = url or pgbouncer_url()
    reason = reachable(url)
    if reason is not None:
        raise ConnectionError(
            f"pgbouncer at {mask_url(url)!r} is not usable: {reason}; start it with {START_SCRIPT} "
            "(or set POOLVIZ_PGBOUNCER_URL)"
        )
    return url


def choose() -> Choice:
    """pgbouncer's URL when it answers; otherwise an empty URL and a note saying the pgbouncer part is skipped."""
    url = pgbouncer_url()
    reason = reachable(url)
    if reason is None:
        return Choice(url, "pgbouncer", f"Using pgbouncer at {mask_url(url)}")
    return Choice("", "", f"pgbouncer is not reachable ({reason}); start it with {START_SCRIPT}. Skipped here.")


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database name (pgbouncer's ``test_one``, or its admin ``pgbouncer``)."""
    return urlparse(url)._replace(path="/" + database).geturl()


def show(url: str, what: str = "POOLS") -> list[dict[str, Any]]:
    """pgbouncer's ``SHOW POOLS`` (or ``STATS``, ``SERVERS``…) as dicts, through its admin console."""
    import psycopg2

    sql = pgbouncer_show_sql(what)
    parsed = urlparse(url)
    conn = psycopg2.connect(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 6432,
        user="postgres",
        dbname="pgbouncer",
        connect_timeout=5,
    )
    conn.autocommit = True  # the admin console takes no transactions
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            names = [c.name for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()
