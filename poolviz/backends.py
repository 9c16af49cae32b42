"""The database backends poolviz knows, and the one place that tells which one a database or URL is.

A backend is named ``"sqlite"``, ``"mysql"`` (MySQL and MariaDB: one name for
both) or ``"postgresql"``; anything else is ``"other"``. The SQL each backend
speaks for the lab (sleeping while holding a connection, a session's id, the
server's own connection counts, killing a session) sits beside the name, in
:data:`SQL`, so a module never spells out a backend's dialect itself.
"""

from __future__ import annotations

from urllib.parse import urlparse

from peewee import MySQLDatabase, PostgresqlDatabase, SqliteDatabase

SERVER_BACKENDS = ("mysql", "postgresql")
BACKEND_LABELS = {"sqlite": "SQLite", "mysql": "MariaDB", "postgresql": "PostgreSQL"}
_CLASSES = ((SqliteDatabase, "sqlite"), (MySQLDatabase, "mysql"), (PostgresqlDatabase, "postgresql"))
_SCHEMES = {
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
}


def backend_of(db: object) -> str:
    """``'sqlite'``, ``'mysql'`` or ``'postgresql'`` for a peewee database (threaded or asyncio), else ``'other'``."""
    for base, name in _CLASSES:
        if isinstance(db, base):
            return name
    return "other"


def backend_of_url(url: str) -> str:
    """The backend a database URL names by its scheme (``postgresql+pool://`` is ``'postgresql'``), else ``'other'``."""
    return _SCHEMES.get(urlparse(url).scheme.split("+")[0].lower(), "other")
