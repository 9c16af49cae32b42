"""Dedicated database roles for multi-process runs, and the server's "too many connections" errors.

Two roles, made by :func:`ensure_role` through an admin URL (idempotent, so
the test suite, the notebooks and ``.ci/run`` can all call it):

* :data:`APP_ROLE` (``poolviz_app``): no limit of its own. Runs that compare
  the server's count with the pools' use it, so nobody else's sessions on the
  same server are counted.
* :data:`LIMITED_ROLE` (``poolviz_limited``): a per-user connection limit
  (MariaDB ``MAX_USER_CONNECTIONS``, PostgreSQL ``CONNECTION LIMIT``), so the
  server's limit can be hit on purpose without touching the global
  ``max_connections`` that every other client shares.

Their password is the role's name: these are local teaching roles with rights
on the ``test`` database only, and every URL shown goes through ``mask_url``.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple
from urllib.parse import urlparse, urlunparse

from .. import checks
from ..backends import SERVER_BACKENDS, backend_of_url, limits_sql, role_sql
from ..credentials import mask_url

APP_ROLE = "poolviz_app"
LIMITED_ROLE = "poolviz_limited"
ROLES = (APP_ROLE, LIMITED_ROLE)


class LimitError(NamedTuple):
    """A connection refused because a server limit was reached: the server's code and what it means."""

    code: str
    server: str
    meaning: str


# What each server says when it refuses a connection for a limit, with its code
# (psycopg does not carry the SQLSTATE of an error raised while connecting, so
# PostgreSQL's is known from its text).
_LIMIT_ERRORS = (
    (re.compile(r"\b1226\b.*max_user_connections"), LimitError("1226", "mariadb", "the user's MAX_USER_CONNECTIONS")),
    (re.compile(r"\b1203\b"), LimitError("1203", "mariadb", "the server's max_user_connections per user")),
    (re.compile(r"\b1040\b|Too many connections"), LimitError("1040", "mariadb", "the server's max_connections")),
    (re.compile(r"too many connections for role"), LimitError("53300", "postgresql", "the role's CONNECTION LIMIT")),
    (re.compile(r"too many connections for database"), LimitError("53300", "postgresql", "the database's limit")),
    (re.compile(r"sorry, too many clients already"), LimitError("53300", "postgresql", "the server's max_connections")),
    (re.compile(r"no more connections allowed"), LimitError("08P01", "pgbouncer", "its max_client_conn")),
)


def limit_error(message: str) -> LimitError | None:
    """The limit an ``error`` event's message reports, or None when it is another error."""
    for pattern, error in _LIMIT_ERRORS:
        if pattern.search(message):
            return error
    return None


def role_url(url: str, role: str) -> str:
    """``url`` with ``role`` (and its password) as the user: ``mysql+pool://poolviz_app:***@host/test``."""
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    netloc = f"{role}:{role}@{host}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def _backend(url: str) -> str:
    backend = backend_of_url(url)
    if backend in SERVER_BACKENDS:
        return backend
    raise ValueError(f"roles need a MariaDB/MySQL or PostgreSQL URL, got {mask_url(url)!r}")


def ensure_role(admin_url: str, role: str = APP_ROLE, connection_limit: int | None = None) -> str:
    """Create ``role`` on ``admin_url``'s server if missing, give it the run's tables, set its limit; return its URL.

    ``connection_limit`` is the role's own limit on sessions (None: no limit
    of its own). The ``User`` table is created first, so the role can use it.
    """
    from peewee import SchemaManager

    from ..models import User
    from ..urls import connect

    role = checks.choice("role", role, ROLES)
    limit = checks.count("connection_limit", connection_limit, none_means="no limit of its own")
    backend = _backend(admin_url)
    database = urlparse(admin_url).path.lstrip("/") or "test"
    if not re.fullmatch(r"\w+", database):
        raise ValueError(f"database name must be letters, digits and _, got {database!r}")
    admin = connect(admin_url, max_connections=1)
    try:
        with admin.connection_context():
            SchemaManager(User, admin).create_table(safe=True)
            for sql in role_sql(backend, role, database, limit, User._meta.table_name):
                admin.execute_sql(sql)
    finally:
        admin.close_all()
    return role_url(admin_url, role)


def server_limit(admin_url: str) -> dict[str, Any]:
    """The server's global ``max_connections`` and the reserved slots, read through ``admin_url``."""
    from ..urls import connect

    backend = _backend(admin_url)
    admin = connect(admin_url, max_connections=1)
    try:
        with admin.connection_context():
            return {name: int(admin.execute_sql(sql).fetchone()[0]) for name, sql in limits_sql(backend).items()}
    finally:
        admin.close_all()
