"""Instrumented peewee pools: the same pools, with an event for every transition.

``hooks`` (the mixin over peewee's hooks), ``tracker`` (per-connection state
and the one rule for a close's reason), ``delivery`` (listeners called only
outside the locks), ``leaks`` (the leak watchdog), ``resize`` (changing a live
pool's limit) and ``classes`` (the public pools and :func:`instrument`).
"""

from __future__ import annotations

from .classes import (
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
    backend_of,
    instrument,
    is_instrumented,
)
from .hooks import Instrumented, instrumented_class
from .leaks import Leak

__all__ = [
    "Instrumented",
    "InstrumentedPooledMySQLDatabase",
    "InstrumentedPooledPostgresqlDatabase",
    "InstrumentedPooledSqliteDatabase",
    "Leak",
    "backend_of",
    "instrument",
    "instrumented_class",
    "is_instrumented",
]
