"""poolviz: see and learn database connection pooling with instrumented peewee pools."""

from __future__ import annotations

from playhouse.pool import MaxConnectionsExceeded

from .credentials import mask_url
from .events import CLOSE_REASONS, FIELDS, KINDS, Event, EventLog, Subscription
from .pools import (
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
    check_pool_args,
    instrument,
    is_instrumented,
)
from .urls import connect

__all__ = [
    "CLOSE_REASONS",
    "Event",
    "EventLog",
    "FIELDS",
    "InstrumentedPooledMySQLDatabase",
    "InstrumentedPooledPostgresqlDatabase",
    "InstrumentedPooledSqliteDatabase",
    "KINDS",
    "MaxConnectionsExceeded",
    "Subscription",
    "check_pool_args",
    "connect",
    "instrument",
    "is_instrumented",
    "mask_url",
]
__version__ = "0.1.0"
