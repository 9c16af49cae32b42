"""peewee's asyncio databases (``playhouse.pwasyncio``), instrumented: the same events, from tasks.

A task that holds a connection appears in the events' ``thread`` column under
its task name (``asyncio.Task.get_name()``), so the analysis, plots, traces
and live view read an asyncio log exactly as a threaded one. This package is
part of the core: it imports only the standard library, peewee and (through
peewee) the asyncio drivers.
"""

from __future__ import annotations

from .databases import (
    InstrumentedAsyncMySQLDatabase,
    InstrumentedAsyncPostgresqlDatabase,
    InstrumentedAsyncSqliteDatabase,
    instrument_async,
    is_async_instrumented,
)
from .hooks import check_async_pool_args, task_name

__all__ = [
    "InstrumentedAsyncMySQLDatabase",
    "InstrumentedAsyncPostgresqlDatabase",
    "InstrumentedAsyncSqliteDatabase",
    "check_async_pool_args",
    "instrument_async",
    "is_async_instrumented",
    "task_name",
]
