"""The public instrumented pools, and instrumenting a pool that already exists."""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from playhouse.pool import PooledDatabase, PooledMySQLDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase

from ...events import DEFAULT_CAPACITY
from ..adoption import Adoptable, instrument_in_place
from .instrumented import Instrumented, instrumented_class


class InstrumentedPooledSqliteDatabase(Instrumented, PooledSqliteDatabase):
    """peewee's ``PooledSqliteDatabase`` with events, shareable between threads by default.

    The pool hands a connection opened in one thread to whichever thread asks
    next; ``sqlite3`` refuses that unless ``check_same_thread=False``. Each
    connection is still used by one thread at a time, which is what that check
    exists to protect, so it is the default here (pass ``True`` to restore it).
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"check_same_thread": False}


class InstrumentedPooledMySQLDatabase(Instrumented, PooledMySQLDatabase):
    """peewee's ``PooledMySQLDatabase`` (MySQL and MariaDB) with events.

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"connect_timeout": 5}


class InstrumentedPooledPostgresqlDatabase(Instrumented, PooledPostgresqlDatabase):
    """peewee's ``PooledPostgresqlDatabase`` with events (psycopg2, or psycopg 3 with ``prefer_psycopg3=True``).

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"connect_timeout": 5}


_PEEWEE_POOL = Adoptable(
    PooledDatabase, "instrument() needs a playhouse.pool.PooledDatabase (e.g. PooledSqliteDatabase)",
    Instrumented, instrumented_class, locked=True,
)  # fmt: skip


def instrument(
    db: PooledDatabase,
    *,
    event_capacity: int = DEFAULT_CAPACITY,
    leak_threshold: float | None = None,
    sites: bool = True,
) -> PooledDatabase:
    """Instrument an existing peewee pool in place and return it.

    Works on any ``playhouse.pool.PooledDatabase`` instance, your own
    subclasses included, and accepts whatever configuration peewee accepted
    (a ``playhouse.pwasyncio`` database goes to :func:`poolviz.aio.instrument_async`):
    it only observes. Connections the pool already holds get serials without
    events. Instrumenting twice is harmless. Each checkout records its site
    (:mod:`poolviz.pools.sites`) unless ``sites=False``.
    """
    pwasyncio = sys.modules.get("playhouse.pwasyncio")
    if pwasyncio is not None and isinstance(db, pwasyncio.AsyncDatabaseMixin):
        # peewee's asyncio databases keep their pool in the driver: poolviz.aio instruments those.
        from ..peewee_asyncio import instrument_async

        return instrument_async(  # type: ignore[no-any-return]
            db, event_capacity=event_capacity, leak_threshold=leak_threshold, sites=sites
        )
    return instrument_in_place(db, _PEEWEE_POOL, event_capacity, leak_threshold, sites)  # type: ignore[no-any-return]


def is_instrumented(db: object) -> bool:
    """True for poolviz's pools and for pools passed through :func:`instrument`."""
    return isinstance(db, Instrumented)
