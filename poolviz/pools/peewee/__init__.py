"""Instrumented peewee pools: the same pools, with an event for every transition.

``instrumented`` (the mixin and its set-up), ``hooks`` (peewee's hooks,
overridden to record), ``operations`` (the public close, resize and leak
methods around them), ``tracker`` (per-connection state and the one rule for
a close's reason), ``delivery`` (listeners called only outside the locks),
``poolviz.pools.leaks`` (the leak watchdog, shared with asyncio), ``resize`` (changing a live pool's limit) and
``classes`` (the public pools and :func:`instrument`).
"""

from __future__ import annotations

from ...backends import backend_of
from ..leaks import Leak
from .classes import (
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
    instrument,
    is_instrumented,
)
from .instrumented import Instrumented, instrumented_class

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
