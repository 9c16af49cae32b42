"""The database backends poolviz knows: which one a database or URL is, and the SQL each one speaks.

A backend is named ``"sqlite"``, ``"mysql"`` (MySQL and MariaDB: one name for
both) or ``"postgresql"``; anything else is ``"other"``. The SQL each server
backend speaks for the lab sits here, keyed by that name, so no other module
spells out a backend's dialect: sleeping while holding a connection
(:data:`HOLD_SQL`), a session's id (:data:`SESSION_SQL`, :func:`driver_session_id`),
killing a session (:data:`KILL_SQL`) and seeing it gone or busy
(:data:`SESSION_LISTED_SQL`, :data:`SESSION_RUNNING_SQL`), the server's own connection counts
(:data:`PG_ACTIVITY_SQL`, :data:`MYSQL_PROCESSLIST_SQL`, :data:`MYSQL_STATUS_SQL`),
its connection limits (:func:`limits_sql`), dedicated roles (:func:`role_sql`)
and pgbouncer's admin console (:func:`pgbouncer_show_sql`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from peewee import MySQLDatabase, PostgresqlDatabase, SqliteDatabase

SERVER_BACKENDS = ("mysql", "postgresql")
BACKEND_LABELS = {"sqlite": "SQLite", "mysql": "MariaDB", "postgresql": "PostgreSQL"}
#: peewee's plain (unpooled) database class for each backend.
PLAIN_CLASSES: dict[str, type[Any]] = {
    "sqlite": SqliteDatabase,
    "mysql": MySQLDatabase,
    "postgresql": PostgresqlDatabase,
}
#: The port each server backend listens on unless its URL says otherwise.
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}
_SCHEMES = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}

#: Hold the connection for ``%s`` seconds on the server (the workloads' "hold").
HOLD_SQL = {"mysql": "SELECT SLEEP(%s)", "postgresql": "SELECT pg_sleep(%s)"}
#: The server's id for the session running the statement: MariaDB's thread id, PostgreSQL's backend pid.
SESSION_SQL = {"mysql": "SELECT CONNECTION_ID()", "postgresql": "SELECT pg_backend_pid()"}
#: End the session whose id is ``%s``, run from another (admin) session.
KILL_SQL = {"mysql": "KILL %s", "postgresql": "SELECT pg_terminate_backend(%s)"}
#: Whether the server still lists the session whose id is ``%s`` (a kill is asynchronous on PostgreSQL).
SESSION_LISTED_SQL = {
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
    "postgresql": "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s",
}
#: Whether the session whose id is ``%s`` is running a statement right now.
SESSION_RUNNING_SQL = {
    "mysql": "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND COMMAND = 'Query'",
    "postgresql": "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
}
#: MariaDB's answer to a KILL of a session that is already gone (not an error for us).
MYSQL_UNKNOWN_THREAD = "Unknown thread"

#: PostgreSQL sessions of a user on a database by state, pgbouncer's (``application_name`` %s) apart, self excluded.
PG_ACTIVITY_SQL = (
    "SELECT state, application_name = %s, count(*) FROM pg_stat_activity WHERE usename = %s AND datname = %s "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1, 2"
)
#: MariaDB sessions of a user on a database by command (``Sleep`` is idle), self excluded.
MYSQL_PROCESSLIST_SQL = (
    "SELECT COMMAND, count(*) FROM information_schema.PROCESSLIST WHERE USER = %s AND DB <=> %s "
    "AND ID <> CONNECTION_ID() GROUP BY COMMAND"
)
#: MariaDB's server-wide connection counters.
MYSQL_STATUS_SQL = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN "
    "('Threads_connected', 'Max_used_connections', 'Connection_errors_max_connections')"
)
#: The commands pgbouncer's admin console answers that :func:`pgbouncer_show_sql` allows.
PGBOUNCER_SHOW = ("POOLS", "STATS", "SERVERS", "CLIENTS", "DATABASES", "CONFIG")


def backend_of(db: object) -> str:
    """``'sqlite'``, ``'mysql'`` or ``'postgresql'`` for a peewee database (threaded or asyncio), else ``'other'``."""
    for name, base in PLAIN_CLASSES.items():
        if isinstance(db, base):
            return name
    return "other"


def backend_of_url(url: str) -> str:
    """The backend a database URL names by its scheme (``postgresql+pool://`` is ``'postgresql'``), else ``'other'``."""
    return _SCHEMES.get(urlparse(url).scheme.split("+")[0].lower(), "other")


def driver_session_id(backend: str, conn: Any) -> int | None:
    """The server's id for a driver connection (MariaDB thread id, PostgreSQL backend pid); None on SQLite."""
    if backend == "mysql":
        return int(conn.thread_id())
    if backend == "postgresql":
        info = getattr(conn, "info", None)
        pid = getattr(info, "backend_pid", None)  # psycopg 3, and psycopg2 >= 2.8
        return int(pid if pid is not None else conn.get_backend_pid())
    return None


def limits_sql(backend: str) -> dict[str, str]:
    """One-value statements reading the server's ``max_connections`` and the slots it keeps for superusers."""
    if backend == "mysql":
        # MariaDB lets one connection past max_connections, for a user with SUPER (CONNECTION ADMIN).
        return {"max_connections": "SELECT @@max_connections", "reserved": "SELECT 1"}
    return {"max_connections": "SHOW max_connections", "reserved": "SHOW superuser_reserved_connections"}


def role_sql(backend: str, role: str, database: str, limit: int | None, table: str) -> list[str]:
    """Statements that create ``role`` if missing, give it ``database`` and ``table``, and set its session limit.

    ``limit`` None (or 0) means no limit of its own. The names must already be
    checked (letters, digits and ``_``): they are spelt into the statements.
    """
    if backend == "mysql":
        account = f"'{role}'@'%%'"  # '%' (any host), doubled: the driver formats the statement
        return [
            f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{role}'",
            f"GRANT ALL ON `{database}`.* TO {account}",
            f"ALTER USER {account} WITH MAX_USER_CONNECTIONS {limit or 0}",
        ]
    return [
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
        f"THEN CREATE ROLE {role} LOGIN PASSWORD '{role}'; END IF; END$$",
        f"ALTER ROLE {role} LOGIN CONNECTION LIMIT {limit if limit else -1}",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        f"GRANT USAGE, CREATE ON SCHEMA public TO {role}",
        f'GRANT ALL ON TABLE "{table}" TO {role}',
        f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ]


def pgbouncer_show_sql(what: str) -> str:
    """``SHOW POOLS`` (or ``STATS``, ``SERVERS``…) for pgbouncer's admin console; other words are refused."""
    if what.upper() not in PGBOUNCER_SHOW:
        raise ValueError(f"what must be one of {', '.join(PGBOUNCER_SHOW)}, got {what!r}")
    return f"SHOW {what.upper()}"
