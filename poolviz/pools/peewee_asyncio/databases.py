"""The public asyncio classes: peewee's three asyncio databases with events, and ``instrument_async``."""

from __future__ import annotations

import functools
from time import perf_counter
from typing import Any, ClassVar

from playhouse.pwasyncio import (
    AsyncDatabaseMixin,
    AsyncMySQLDatabase,
    AsyncPostgresqlDatabase,
    AsyncSqliteDatabase,
)

from ...events import DEFAULT_CAPACITY
from ..adoption import Adoptable, instrument_in_place
from .hooks import _AsyncInstrumented


class InstrumentedAsyncSqliteDatabase(_AsyncInstrumented, AsyncSqliteDatabase):
    """peewee's ``AsyncSqliteDatabase`` (aiosqlite, peewee's own ``AsyncSqlitePool``) with events.

    peewee's SQLite pool opens all ``pool_size`` connections when it is
    created (``pool_min_size`` is not used), and a ``:memory:`` database gets
    a pool of one, since each in-memory connection would be its own database.
    """


class _AiomysqlHooks:
    """aiomysql opens connections one at a time under its pool's lock: time each by the refill that opened it."""

    _pv_open_times: dict[int, float]
    _pv_error: Any

    async def _create_pool_async(self) -> Any:
        pool = await super()._create_pool_async()  # type: ignore[misc]
        fill = pool._fill_free_pool

        async def timed_fill(override_min: bool) -> None:
            before = set(map(id, pool._free))
            started = perf_counter()
            try:
                await fill(override_min)
            except Exception as exc:
                self._pv_error(exc)
                raise
            # Usually nothing was opened; a set difference finds that without a Python loop.
            fresh = set(map(id, pool._free)).difference(before)
            for key in fresh:
                self._pv_open_times[key] = (perf_counter() - started) / len(fresh)

        # The refill runs inside acquire() with the pool's condition held; timing it changes nothing there.
        pool._fill_free_pool = timed_fill
        return pool


class _AsyncpgHooks:
    """asyncpg's ``create_pool(connect=...)`` lets poolviz time every connection it opens (yours still runs)."""

    connect_params: dict[str, Any]
    _pv_open_times: dict[int, float]
    _pv_error: Any

    async def _create_pool_async(self) -> Any:
        params = self.connect_params
        own_connect = params.get("connect")
        self.connect_params = {**params, "connect": functools.partial(self._pv_timed_connect, own_connect)}
        try:
            return await super()._create_pool_async()  # type: ignore[misc]
        finally:
            self.connect_params = params

    async def _pv_timed_connect(self, own_connect: Any, *args: Any, **kwargs: Any) -> Any:
        import asyncpg

        started = perf_counter()
        try:
            con = await (own_connect or asyncpg.connect)(*args, **kwargs)
        except Exception as exc:
            self._pv_error(exc)
            raise
        self._pv_open_times[id(con)] = perf_counter() - started
        return con


class InstrumentedAsyncMySQLDatabase(_AiomysqlHooks, _AsyncInstrumented, AsyncMySQLDatabase):
    """peewee's ``AsyncMySQLDatabase`` (aiomysql's pool; MySQL and MariaDB) with events.

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"connect_timeout": 5}


class InstrumentedAsyncPostgresqlDatabase(_AsyncpgHooks, _AsyncInstrumented, AsyncPostgresqlDatabase):
    """peewee's ``AsyncPostgresqlDatabase`` (asyncpg's pool) with events."""


_DRIVER_HOOKS: tuple[tuple[type, tuple[type, ...]], ...] = (
    (AsyncMySQLDatabase, (_AiomysqlHooks,)),
    (AsyncPostgresqlDatabase, (_AsyncpgHooks,)),
)


@functools.cache
def _instrumented_class(cls: type) -> type:
    hooks = next((h for base, h in _DRIVER_HOOKS if issubclass(cls, base)), ())
    return type(f"Instrumented{cls.__name__}", (*hooks, _AsyncInstrumented, cls), {"__module__": cls.__module__})


_ASYNC_DATABASE = Adoptable(
    AsyncDatabaseMixin, "instrument_async() needs a playhouse.pwasyncio database (e.g. AsyncPostgresqlDatabase)",
    _AsyncInstrumented, _instrumented_class, locked=False,
)  # fmt: skip


def instrument_async(
    db: Any, *, event_capacity: int = DEFAULT_CAPACITY, leak_threshold: float | None = None, sites: bool = True
) -> Any:
    """Instrument an existing peewee asyncio database in place and return it.

    Works on any ``playhouse.pwasyncio`` database, your subclasses included;
    connections its pool already holds get serials without events.
    ``leak_threshold`` turns on the leak watchdog, as for the threaded pools;
    ``sites=False`` leaves out each checkout's site. Instrumenting twice is harmless.
    """
    return instrument_in_place(db, _ASYNC_DATABASE, event_capacity, leak_threshold, sites)


def is_async_instrumented(db: object) -> bool:
    """True for poolviz's asyncio databases and for those passed through :func:`instrument_async`."""
    return isinstance(db, _AsyncInstrumented)
