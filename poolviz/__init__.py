"""poolviz: see and learn database connection pooling with instrumented pools (peewee, SQLAlchemy, psycopg_pool)."""

from __future__ import annotations

from playhouse.pool import MaxConnectionsExceeded

from .credentials import mask_url
from .data.holders import holders
from .data.recordings import load_recording
from .data.traces import load_events, save_events
from .events import CLOSE_REASONS, FIELDS, KINDS, Event, EventLog, Subscription
from .pools import events_of, instrument
from .pools.peewee import (
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
    Leak,
    is_instrumented,
)
from .recording import record
from .urls import connect
from .workload import Distribution, WorkloadResult, run_closed_loop, run_open_loop, sweep

__all__ = [
    "CLOSE_REASONS",
    "Distribution",
    "Event",
    "EventLog",
    "FIELDS",
    "InstrumentedPooledMySQLDatabase",
    "InstrumentedPooledPostgresqlDatabase",
    "InstrumentedPooledSqliteDatabase",
    "KINDS",
    "Leak",
    "MaxConnectionsExceeded",
    "Subscription",
    "WorkloadResult",
    "connect",
    "events_of",
    "holders",
    "instrument",
    "is_instrumented",
    "load_events",
    "load_recording",
    "mask_url",
    "record",
    "run_closed_loop",
    "run_open_loop",
    "save_events",
    "sweep",
]
__version__ = "0.1.0"

# The asyncio databases need the "asyncio" extra (greenlet and the async
# drivers): they load on first use, so `import poolviz` works without it.
_ASYNC_NAMES = (
    "InstrumentedAsyncMySQLDatabase",
    "InstrumentedAsyncPostgresqlDatabase",
    "InstrumentedAsyncSqliteDatabase",
)


def __getattr__(name: str) -> object:
    if name in _ASYNC_NAMES:
        from .pools import peewee_asyncio as aio

        return getattr(aio, name)
    raise AttributeError(f"module 'poolviz' has no attribute {name!r}")
