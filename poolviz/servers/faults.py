"""Server-side faults on purpose: kill a pool's connections the way a server or DBA would.

Used by the tests and the "when the server goes away" notebook. Each kill goes
through a separate admin connection (``KILL`` on MariaDB/MySQL,
``pg_terminate_backend`` on PostgreSQL); on SQLite, which has no server, idle
connections are closed under the pool's feet and running statements interrupted.
"""

from __future__ import annotations

from typing import Any

from ..pools.peewee import backend_of


def server_id(db: Any, conn: Any) -> int | None:
    """The server's id for a driver connection (MySQL thread id, PostgreSQL backend pid)."""
    backend = backend_of(db)
    if backend == "mysql":
        return int(conn.thread_id())
    if backend == "postgresql":
        info = getattr(conn, "info", None)
        pid = getattr(info, "backend_pid", None)  # psycopg 3, and psycopg2 >= 2.8
        return int(pid if pid is not None else conn.get_backend_pid())
    return None


def pooled_connections(db: Any) -> list[Any]:
    """Every driver connection the pool holds now, idle and in use."""
    with db._pool_lock:
        idle = [conn for _ts, _counter, conn in db._connections]
        in_use = [pool_conn.connection for pool_conn in db._in_use.values()]
    return idle + in_use


def kill_connections(db: Any, conns: list[Any] | None = None) -> int:
    """Kill ``conns`` (default: all the pool holds) from the server side; returns how many.

    The pool is not told: it finds out the way it would in production, at the
    next checkout (peewee's liveness check) or when a query fails.
    """
    targets = pooled_connections(db) if conns is None else list(conns)
    backend = backend_of(db)
    if backend == "sqlite":
        return _break_sqlite(db, targets)
    ids = [server_id(db, conn) for conn in targets]
    admin = _admin_connection(db)
    try:
        cursor = admin.cursor()
        for ident in ids:
            if backend == "mysql":
                try:
                    cursor.execute(f"KILL {int(ident)}")  # type: ignore[arg-type]
                except Exception as exc:  # already gone: "Unknown thread id"
                    if "Unknown thread" not in str(exc):
                        raise
            else:
                cursor.execute("SELECT pg_terminate_backend(%s)", (ident,))
    finally:
        admin.close()
    return len(targets)


def _break_sqlite(db: Any, targets: list[Any]) -> int:
    # SQLite has no server to kill from. Closing a sqlite3 connection while
    # another thread runs a statement on it crashes CPython, so only idle ones
    # are closed (under the pool lock, so none is handed out meanwhile); the
    # statement of one in use is interrupted, which is what its caller would see.
    with db._pool_lock:
        idle = {id(conn) for _ts, _counter, conn in db._connections}
        for conn in targets:
            if id(conn) in idle:
                conn.close()
            else:
                conn.interrupt()
    return len(targets)


def _admin_connection(db: Any) -> Any:
    # A fresh driver connection outside the pool, with the pool's own settings.
    # peewee's Database._connect is what the pool calls to open one.
    base = type(db).__mro__
    from peewee import MySQLDatabase, PostgresqlDatabase

    for klass in (MySQLDatabase, PostgresqlDatabase):
        if klass in base:
            conn = klass._connect(db)  # type: ignore[union-attr]
            if klass is PostgresqlDatabase:
                conn.autocommit = True
            return conn
    raise TypeError(f"no server to kill connections on for {type(db).__name__}")
