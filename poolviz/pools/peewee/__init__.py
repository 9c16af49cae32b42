"""Instrumented peewee pools: the same pools, with an event for every transition.

``instrumented`` (the mixin and its set-up), ``hooks`` (peewee's hooks,
overridden to record), ``operations`` (the public close, resize and leak
methods around them), ``tracker`` (per-connection state and the one rule for
a close's reason), ``delivery`` (listeners called only outside the locks),
``leaks`` (the leak watchdog), ``resize`` (changing a live pool's limit) and
``classes`` (the public pools and :func:`instrument`).
"""

from __future__ import annotations

from ...backends import backend_of
from .classes import (
    InstrumentedPooledMySQLDatabase,
    InstrumentedPooledPostgresqlDatabase,
    InstrumentedPooledSqliteDatabase,
    instrument,
    is_instrumented,
)
from .instrumented import Instrumented, instrumented_class
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
