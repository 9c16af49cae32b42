"""Server-side faults on purpose: kill a pool's connections the way a server or DBA would.

Used by the tests and the "when the server goes away" notebook. Each kill goes
through a separate admin connection (``KILL`` on MariaDB/MySQL,
``pg_terminate_backend`` on PostgreSQL); on SQLite, which has no server, idle
connections are closed under the pool's feet and running statements interrupted.
"""

from __future__ import annotations

from typing import Any

from ..backends import (
    KILL_SQL,
    MYSQL_UNKNOWN_THREAD,
    PLAIN_CLASSES,
    SERVER_BACKENDS,
    SESSION_LISTED_SQL,
    SESSION_RUNNING_SQL,
    backend_of,
    driver_session_id,
)


def server_id(db: Any, conn: Any) -> int | None:
    """The server's id for a driver connection (MySQL thread id, PostgreSQL backend pid)."""
    return driver_session_id(backend_of(db), conn)


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
            try:
                cursor.execute(KILL_SQL[backend], (ident,))
            except Exception as exc:  # MariaDB's "Unknown thread id": already gone, as asked
                if MYSQL_UNKNOWN_THREAD not in str(exc):
                    raise
    finally:
        admin.close()
    return len(targets)


def sessions_listed(observer: Any, ids: list[int | None]) -> list[int]:
    """The ids among ``ids`` the server still lists, asked through ``observer`` (a pool on the same server).

    A kill is asynchronous on PostgreSQL: poll this until it is empty to know
    the sessions are gone (``None`` ids, SQLite's, are left out).
    """
    sql = SESSION_LISTED_SQL[backend_of(observer)]
    with observer.connection_context():
        return [i for i in ids if i is not None and observer.execute_sql(sql, (i,)).fetchone()[0]]


def running_statement(observer: Any, ident: int) -> bool:
    """Whether the server says session ``ident`` is running a statement now, asked through ``observer``."""
    with observer.connection_context():
        return bool(observer.execute_sql(SESSION_RUNNING_SQL[backend_of(observer)], (ident,)).fetchone()[0])


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
    # A fresh driver connection outside the pool, with the pool's own settings:
    # peewee's Database._connect (what the pool calls to open one) of the plain class.
    backend = backend_of(db)
    if backend not in SERVER_BACKENDS:
        raise TypeError(f"no server to kill connections on for {type(db).__name__}")
    conn = PLAIN_CLASSES[backend]._connect(db)
    if backend == "postgresql":
        conn.autocommit = True
    return conn
