"""Where the database servers are, and whether they answer.

URLs come from ``POOLVIZ_MYSQL_URL`` and ``POOLVIZ_PG_URL``, with defaults that
work on a machine with local servers (MariaDB's ``root`` with no password,
PostgreSQL's ``postgres`` with trust authentication, both on database ``test``).
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

from ..backends import DEFAULT_PORTS, SERVER_BACKENDS, backend_of_url
from ..credentials import mask_url

DEFAULT_MYSQL_URL = "mysql+pool://root@127.0.0.1:3306/test"
DEFAULT_PG_URL = "postgresql+pool://postgres@127.0.0.1:5432/test"
#: pgbouncer (servers/pgbouncer/start.sh) in front of the local PostgreSQL: see poolviz.servers.pgbouncer.
DEFAULT_PGBOUNCER_URL = "postgresql+pool://postgres@127.0.0.1:6432/test"


def mysql_url() -> str:
    """The MariaDB/MySQL server's URL (``POOLVIZ_MYSQL_URL`` or the local default)."""
    return os.environ.get("POOLVIZ_MYSQL_URL") or DEFAULT_MYSQL_URL


def postgres_url() -> str:
    """The PostgreSQL server's URL (``POOLVIZ_PG_URL`` or the local default)."""
    return os.environ.get("POOLVIZ_PG_URL") or DEFAULT_PG_URL


def pgbouncer_url() -> str:
    """pgbouncer's URL (``POOLVIZ_PGBOUNCER_URL`` or the local default, port 6432)."""
    return os.environ.get("POOLVIZ_PGBOUNCER_URL") or DEFAULT_PGBOUNCER_URL


def servers_required() -> bool:
    """True when a missing server must fail tests rather than skip them (.ci/run and CI=true set this)."""
    return any(
        os.environ.get(name, "").lower() not in ("", "0", "false", "no") for name in ("POOLVIZ_REQUIRE_SERVERS", "CI")
    )


def reachable(url: str, timeout: float = 2.0) -> str | None:
    """None when ``url``'s server accepts a connection and a query, else a one-line reason."""
    from ..urls import connect

    parsed = urlparse(url)
    backend = backend_of_url(url)
    if backend == "sqlite":
        return None
    host = parsed.hostname or "127.0.0.1"
    try:
        port = parsed.port or DEFAULT_PORTS.get(backend, 0)
    except ValueError:
        return f"{mask_url(url)}: the port is not a number"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return f"no server at {host}:{port} ({exc.strerror or exc})"
    # Asking the server is the same for an asyncio URL: the threaded pool of that scheme asks it.
    try:
        db = connect(
            url.replace("+asyncpool://", "+pool://", 1), max_connections=1, connect_timeout=max(2, int(timeout))
        )
        try:
            with db.connection_context():
                db.execute_sql("SELECT 1")
        finally:
            db.close_all()
    except Exception as exc:  # any driver error means "not usable", with its reason
        return f"{mask_url(url)} refused: {type(exc).__name__}: {db_error_text(exc)}"
    return None


def db_error_text(exc: BaseException) -> str:
    """An exception's message on one line, credentials masked."""
    from ..credentials import mask_text

    return mask_text(" ".join(str(exc).split()))


class Choice(NamedTuple):
    """The database a notebook section will use, and a line saying why."""

    url: str
    backend: str
    note: str


def choose(backend: str, sqlite_path: str | os.PathLike[str] | None = None) -> Choice:
    """The server for ``backend`` ('mysql' or 'postgresql') when reachable, else SQLite with a note.

    Lets a notebook run its server sections on a machine with nothing
    installed: the note is one visible line saying what was used instead.
    """
    if backend not in SERVER_BACKENDS:
        raise ValueError(f"backend must be 'mysql' or 'postgresql', got {backend!r}")
    url = mysql_url() if backend == "mysql" else postgres_url()
    reason = reachable(url)
    if reason is None:
        return Choice(url, backend, f"Using {backend} at {mask_url(url)}")
    path = Path(sqlite_path) if sqlite_path else Path(tempfile.gettempdir()) / f"poolviz-{backend}-fallback.db"
    return Choice(
        f"sqlite+pool:///{path}",
        "sqlite",
        f"{backend} is not reachable ({reason}); this section runs on SQLite instead.",
    )
