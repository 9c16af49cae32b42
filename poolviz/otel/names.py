"""What the metrics are called, and what a pool is called in them.

The names, instrument types and units are OpenTelemetry's semantic conventions
for database client connection pools (``db.client.connection.*``, the names
the conventions use since v1.26, as ``opentelemetry-semantic-conventions``
0.66b0 spells them; SQLAlchemy's own instrumentation still emits the older
``db.client.connections.*``). The newest conventions (schema 1.44, the Java
and JavaScript libraries) rename :data:`MAX` ``db.client.connection.limit``.
Every point carries the attribute :data:`POOL_NAME`; the connection count
also :data:`STATE`.

A pool's default name is the one the conventions suggest when the pool has
none: ``server.address:server.port/db.namespace`` (``127.0.0.1:5432/test``);
an SQLite pool is named by its database file (``/srv/app.db``). The name is
built from the host, port and database only, so no user name or password can
reach it.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlparse

from ..backends import DEFAULT_PORTS, backend_of, backend_of_url
from ..credentials import mask_text
from ..events import EventLog

POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"
USED, IDLE = "used", "idle"

COUNT = "db.client.connection.count"
MAX = "db.client.connection.max"
IDLE_MAX = "db.client.connection.idle.max"
IDLE_MIN = "db.client.connection.idle.min"
PENDING_REQUESTS = "db.client.connection.pending_requests"
TIMEOUTS = "db.client.connection.timeouts"
CREATE_TIME = "db.client.connection.create_time"
WAIT_TIME = "db.client.connection.wait_time"
USE_TIME = "db.client.connection.use_time"

#: ``name: (unit, description)`` for every metric, as the conventions give them.
METRICS: dict[str, tuple[str, str]] = {
    COUNT: (
        "{connection}",
        "The number of connections that are currently in state described by the `state` attribute.",
    ),
    MAX: ("{connection}", "The maximum number of open connections allowed."),
    IDLE_MAX: ("{connection}", "The maximum number of idle open connections allowed."),
    IDLE_MIN: ("{connection}", "The minimum number of idle open connections allowed."),
    PENDING_REQUESTS: ("{request}", "The number of current pending requests for an open connection."),
    TIMEOUTS: (
        "{timeout}",
        "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
    ),
    CREATE_TIME: ("s", "The time it took to create a new connection."),
    WAIT_TIME: ("s", "The time it took to obtain an open connection from the pool."),
    USE_TIME: ("s", "The time between borrowing a connection and returning it to the pool."),
}

#: Histogram bucket bounds in seconds (an advisory: a View overrides them). The SDK's default
#: bounds (0 to 10 000) suit milliseconds; a pool's waits and holds run from microseconds to
#: its timeout, so the bounds start at 100 µs and end at a minute.
BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

_LIBPQ_DEFAULTS = (("host", "PGHOST", "localhost"), ("port", "PGPORT", "5432"), ("dbname", "PGDATABASE", ""))


def checked_pool_name(pool_name: Any) -> str:
    """``pool_name`` as given, checked: a non-empty string (any password in it masked)."""
    if not isinstance(pool_name, str):
        raise TypeError(f"pool_name must be a string such as 'orders-db' or None (the default name), got {pool_name!r}")
    if not pool_name.strip():
        raise ValueError(f"pool_name must be a non-empty string or None (the default name), got {pool_name!r}")
    return mask_text(pool_name)


def default_pool_name(target: Any, log: EventLog) -> str:
    """``server.address:server.port/db.namespace`` for ``target``'s server (an SQLite pool: its file).

    Read from the pool's own settings (peewee's database and connect
    parameters, psycopg_pool's conninfo) or else from the masked URL its
    event log records (SQLAlchemy engines, logs built by ``poolviz.connect``).
    Raises ``ValueError`` when neither says (a bare SQLAlchemy ``Pool``).
    """
    if hasattr(target, "connect_params") and hasattr(target, "database"):
        return _peewee_name(target)
    if "psycopg_pool" in sys.modules and type(target).__module__.startswith("psycopg"):
        return _psycopg_name(target)
    url = log.meta.get("url")
    if isinstance(url, str) and "://" in url:
        return _url_name(url)
    raise ValueError(
        f"cannot tell which server this {type(target).__name__} connects to (its log records no URL): "
        "pass pool_name='...' to name it"
    )


def _address(host: Any, port: Any, database: Any) -> str:
    return f"{host}:{port}/{database}"


def _peewee_name(db: Any) -> str:
    backend = backend_of(db)
    if backend == "sqlite" or backend not in DEFAULT_PORTS:
        return str(db.database)
    params = db.connect_params
    return _address(params.get("host") or "localhost", params.get("port") or DEFAULT_PORTS[backend], db.database)


def _psycopg_name(pool: Any) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    kwargs = pool.kwargs if isinstance(pool.kwargs, dict) else {}
    params = conninfo_to_dict(make_conninfo(pool.conninfo, **{k: v for k, v in kwargs.items() if k != "password"}))
    host, port, database = (
        str(params.get(key) or os.environ.get(env) or default) for key, env, default in _LIBPQ_DEFAULTS
    )
    return _address(host, port, database or params.get("user") or os.environ.get("PGUSER", ""))


def _url_name(url: str) -> str:
    parsed = urlparse(url)
    backend = backend_of_url(url)
    database = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if backend == "sqlite" or not parsed.hostname:
        return database or parsed.netloc
    return _address(parsed.hostname, parsed.port or DEFAULT_PORTS.get(backend, ""), database)
