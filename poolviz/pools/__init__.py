"""The instrumented pools, one package per pool library, and the two calls that work on all of them.

- :mod:`.peewee`: peewee's threaded pools (``playhouse.pool``);
- :mod:`.peewee_asyncio`: peewee's asyncio databases (``playhouse.pwasyncio``);
- :mod:`.sqlalchemy`: SQLAlchemy's pools, through an ``Engine``, ``AsyncEngine`` or ``Pool``;
- :mod:`.psycopg`: psycopg_pool's ``ConnectionPool``, ``AsyncConnectionPool`` and null pools.

Each records the same event vocabulary (:mod:`poolviz.events`) and only
observes: the pool behaves as it would without poolviz. :func:`instrument`
picks the package by the object's type and :func:`events_of` finds the log
again. SQLAlchemy and psycopg_pool are optional: they are only imported when
the object handed in comes from them (so it is already loaded).
"""

from __future__ import annotations

import sys
from typing import Any

from .. import checks
from ..events import DEFAULT_CAPACITY, EventLog
from .peewee import instrument as instrument_peewee
from .peewee import is_instrumented
from .sites import check_sites

ACCEPTED = (
    "a peewee pool (playhouse.pool.PooledDatabase) or asyncio database (playhouse.pwasyncio), "
    "a SQLAlchemy Engine, AsyncEngine or Pool, or a psycopg_pool ConnectionPool, AsyncConnectionPool, "
    "NullConnectionPool or AsyncNullConnectionPool"
)


def instrument(
    target: Any, *, event_capacity: int = DEFAULT_CAPACITY, leak_threshold: float | None = None, sites: bool = True
) -> Any:
    """Instrument ``target`` in place and return it: any pool :data:`ACCEPTED` names, built and possibly in use.

    Connections the pool already holds are adopted (serials, no events).
    Instrumenting twice is harmless; anything else raises ``TypeError``.
    ``leak_threshold`` (seconds) turns on leak detection; each checkout records
    where the application asked (its site, :mod:`.sites`) unless ``sites=False``.
    """
    # Checked here, so a pool instrumented already (where the settings are not used again) refuses them too.
    checks.count("event_capacity", event_capacity)
    checks.leak_threshold(leak_threshold)
    check_sites(sites)
    settings: dict[str, Any] = {"event_capacity": event_capacity, "leak_threshold": leak_threshold, "sites": sites}
    if "sqlalchemy" in sys.modules:
        from .sqlalchemy import instrument_sqlalchemy, is_sqlalchemy_target

        if is_sqlalchemy_target(target):
            return instrument_sqlalchemy(target, **settings)
    if "psycopg_pool" in sys.modules:
        from .psycopg import instrument_psycopg, is_psycopg_pool

        if is_psycopg_pool(target):
            return instrument_psycopg(target, **settings)
    if _is_peewee_pool(target):
        return instrument_peewee(target, **settings)
    raise TypeError(f"instrument() takes {ACCEPTED}; got {type(target).__module__}.{type(target).__qualname__}")


def events_of(target: Any) -> EventLog:
    """The :class:`~poolviz.events.EventLog` of an instrumented pool, database or engine of any library."""
    events = getattr(target, "_poolviz_events", None)
    if isinstance(events, EventLog):
        return events
    if "sqlalchemy" in sys.modules:
        from .sqlalchemy import is_sqlalchemy_target, sqlalchemy_events

        if is_sqlalchemy_target(target):
            found = sqlalchemy_events(target)
            if found is not None:
                return found
    peewee_events = getattr(target, "events", None)
    if isinstance(peewee_events, EventLog) and _is_peewee_pool(target):
        return peewee_events
    if _is_peewee_pool(target) or _accepted(target):
        raise ValueError(f"this {type(target).__name__} is not instrumented: call poolviz.instrument() on it first")
    raise TypeError(f"events_of() takes {ACCEPTED}; got {type(target).__module__}.{type(target).__qualname__}")


def _is_peewee_pool(target: Any) -> bool:
    from playhouse.pool import PooledDatabase

    pwasyncio = sys.modules.get("playhouse.pwasyncio")
    return isinstance(target, PooledDatabase) or (
        pwasyncio is not None and isinstance(target, pwasyncio.AsyncDatabaseMixin)
    )


def _accepted(target: Any) -> bool:
    if "sqlalchemy" in sys.modules:
        from .sqlalchemy import is_sqlalchemy_target

        if is_sqlalchemy_target(target):
            return True
    if "psycopg_pool" in sys.modules:
        from .psycopg import is_psycopg_pool

        return bool(is_psycopg_pool(target))
    return False


__all__ = ["ACCEPTED", "events_of", "instrument", "instrument_peewee", "is_instrumented"]
