"""Instrumented peewee pools: the same pools, with an event for every transition.

``_Instrumented`` only overrides peewee's own hooks (``_connect``, ``_close``,
``_close_raw``, ``_is_closed``, ``_is_stale``, ``_can_reuse``) and the public
methods around them, calls peewee's code for the real work and records what it
did. No pool decision is made here, so reuse order, exceptions, stale handling
and rollback on check-in stay peewee's.

The counts on each event (``in_use``, ``idle``, ``waiting``) are kept by the
mixin itself, changed exactly when an event is recorded, so they always agree
with the event stream; when the pool is quiet they equal peewee's own
``len(_in_use)`` and ``len(_connections)``.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from time import perf_counter
from typing import Any

from peewee import MySQLDatabase, PostgresqlDatabase, SqliteDatabase
from playhouse.pool import (
    MaxConnectionsExceeded,
    PooledDatabase,
    PooledMySQLDatabase,
    PooledPostgresqlDatabase,
    PooledSqliteDatabase,
)

from .credentials import mask_text, secrets_of
from .events import DEFAULT_CAPACITY, NO_CONN, EventLog

_current_thread = threading.current_thread


def check_pool_args(max_connections: Any, stale_timeout: Any, timeout: Any) -> None:
    """Refuse pool settings that peewee would take silently but that do not mean what they say.

    peewee reads ``max_connections=0`` as "no limit", a trap for a slider that
    reaches zero, so only ``None`` means unlimited here.
    """
    if max_connections is not None and not _is_positive_int(max_connections):
        raise ValueError(
            "max_connections must be a positive integer (or None for no limit), "
            f"got {max_connections!r}"
        )
    for name, value in (("stale_timeout", stale_timeout), ("timeout", timeout)):
        if value is None:
            continue
        number = _as_number(value)
        if number is None or number < 0 or math.isnan(number):
            raise ValueError(f"{name} must be None or a number of seconds >= 0, got {value!r}")


def _is_positive_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return value.strip().isdigit() and int(value) > 0
    if isinstance(value, float):
        return value.is_integer() and value > 0
    return isinstance(value, int) and value > 0


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def backend_of(db: object) -> str:
    """``'sqlite'``, ``'mysql'`` (MySQL and MariaDB), ``'postgresql'`` or ``'other'``."""
    for base, name in ((SqliteDatabase, "sqlite"), (MySQLDatabase, "mysql"), (PostgresqlDatabase, "postgresql")):
        if isinstance(db, base):
            return name
    return "other"


class _ConnInfo:
    """What poolviz knows of one driver connection, keyed in the pool by ``id(conn)``."""

    __slots__ = ("serial", "opened", "checked_out")

    def __init__(self, serial: int, opened: float, checked_out: float | None) -> None:
        self.serial = serial
        self.opened = opened
        self.checked_out = checked_out


class _Local(threading.local):
    """Per-thread scratch state; the class attributes are each thread's starting values."""

    wait_start: float | None = None
    mark: float = 0.0
    reason: str | None = None
    scope: str | None = None


class _Instrumented:
    """Hook-only mixin that records an event for every transition of a peewee pool."""

    # poolviz's own classes refuse settings that mislead (see check_pool_args);
    # pools passed through instrument() keep whatever peewee accepted.
    _pv_validates = False

    events: EventLog
    _pool_lock: threading.RLock
    _in_use: dict[int, Any]
    _connections: list[Any]
    _max_connections: int | None
    _stale_timeout: float | None
    _wait_timeout: float | None
    connect_params: dict[str, Any]

    def __init__(
        self,
        database: Any,
        max_connections: int | None = 20,
        stale_timeout: float | None = None,
        timeout: float | None = None,
        *,
        event_capacity: int = DEFAULT_CAPACITY,
        **kwargs: Any,
    ) -> None:
        check_pool_args(max_connections, stale_timeout, timeout)
        self._pv_setup(EventLog(event_capacity))
        super().__init__(  # type: ignore[call-arg]
            database,
            max_connections=max_connections,
            stale_timeout=stale_timeout,
            timeout=timeout,
            **kwargs,
        )
        self._pv_describe()

    def init(
        self,
        database: Any,
        max_connections: int | None = None,
        stale_timeout: float | None = None,
        timeout: float | None = None,
        **connect_kwargs: Any,
    ) -> None:
        if self._pv_validates:
            check_pool_args(max_connections, stale_timeout, timeout)
        super().init(  # type: ignore[misc]
            database,
            max_connections=max_connections,
            stale_timeout=stale_timeout,
            timeout=timeout,
            **connect_kwargs,
        )
        if hasattr(self, "events"):
            self._pv_describe()

    def _pv_setup(self, events: EventLog) -> None:
        self.events = events
        self._pv_local = _Local()
        self._pv_conns: dict[int, _ConnInfo] = {}
        self._pv_serial = itertools.count(1)
        self._pv_in_use = 0
        self._pv_idle = 0
        self._pv_waiting = 0

    def _pv_describe(self) -> None:
        self.events.meta.update(
            pool=type(self).__name__,
            backend=backend_of(self),
            max_connections=self._max_connections,
            stale_timeout=self._stale_timeout,
            timeout=self._wait_timeout,
        )

    @property
    def max_connections(self) -> int | None:
        """The pool's limit (``None`` or 0: unlimited, as peewee reads it)."""
        return self._max_connections

    def _pv_record(self, kind: str, serial: int = NO_CONN, **payload: Any) -> None:
        # Called with the pool lock held, so seq follows the pool's own order.
        self.events.record(
            kind,
            serial,
            _current_thread().name,
            self._pv_in_use,
            self._pv_idle,
            self._pv_waiting,
            **payload,
        )

    def _pv_notify(self) -> None:
        # Listeners run only once this thread holds no pool lock (close_all
        # calls close_idle with the lock held: its events wait for close_all).
        if self.events._listeners and not self._pool_lock._is_owned():  # type: ignore[attr-defined]
            self.events.flush()

    def connect(self, reuse_if_open: bool = False) -> bool:
        local = self._pv_local
        local.wait_start = None
        try:
            return super().connect(reuse_if_open)  # type: ignore[misc,no-any-return]
        except MaxConnectionsExceeded:
            if local.wait_start is not None:
                with self._pool_lock:
                    waited = perf_counter() - local.wait_start
                    local.wait_start = None
                    self._pv_waiting -= 1
                    self._pv_record("timeout", wait_s=waited)
            raise
        finally:
            if local.wait_start is not None:
                # Left the wait some other way (a driver error, an interrupt).
                with self._pool_lock:
                    local.wait_start = None
                    self._pv_waiting -= 1
            self._pv_notify()

    def _connect(self) -> Any:
        local = self._pv_local
        with self._pool_lock:
            local.mark = perf_counter()
            try:
                conn = super()._connect()  # type: ignore[misc]
            except MaxConnectionsExceeded:
                if not self._wait_timeout:
                    self._pv_record("timeout")
                elif local.wait_start is None:
                    local.wait_start = perf_counter()
                    self._pv_waiting += 1
                    self._pv_record("wait")
                raise
            except Exception as exc:
                message = mask_text(str(exc), secrets_of(self.connect_params))
                self._pv_record("error", reason=type(exc).__name__, message=message)
                raise
            now = perf_counter()
            info = self._pv_conns.get(id(conn))
            if info is None:
                info = self._pv_conns[id(conn)] = _ConnInfo(next(self._pv_serial), now, now)
                self._pv_record("connect", info.serial, duration_s=now - local.mark)
                reused = False
            else:
                info.checked_out = now
                self._pv_idle -= 1
                reused = True
            self._pv_in_use += 1
            waited = 0.0
            if local.wait_start is not None:
                waited = now - local.wait_start
                local.wait_start = None
                self._pv_waiting -= 1
            self._pv_record("checkout", info.serial, wait_s=waited, reused=reused)
        return conn

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        local = self._pv_local
        with self._pool_lock:
            key = id(conn)
            was_in_use = key in self._in_use
            outer_scope = local.scope
            if close_conn:
                local.scope = "manual"
            try:
                super()._close(conn, close_conn)  # type: ignore[misc]
            finally:
                local.scope = outer_scope
                local.reason = None
            info = self._pv_conns.get(key)
            if was_in_use and info is not None and key not in self._in_use:
                # Was in use, still tracked (not closed): it went back to the heap.
                now = perf_counter()
                held = now - info.checked_out
                info.checked_out = None
                self._pv_in_use -= 1
                self._pv_idle += 1
                self._pv_record("checkin", info.serial, duration_s=held)
        self._pv_notify()

    def _close_raw(self, conn: Any) -> None:
        local = self._pv_local
        reason = local.reason or local.scope or "manual"
        local.reason = None
        # manual_close() calls this without the pool lock: the driver close
        # stays outside it, as in peewee; only the bookkeeping takes the lock.
        super()._close_raw(conn)  # type: ignore[misc]
        with self._pool_lock:
            self._pv_forget(conn, reason)
            local.mark = perf_counter()
        self._pv_notify()

    def _pv_forget(self, conn: Any, reason: str) -> None:
        info = self._pv_conns.pop(id(conn), None)
        if info is None:
            return
        if info.checked_out is None:
            self._pv_idle -= 1
        else:
            self._pv_in_use -= 1
        self._pv_record("close", info.serial, reason=reason, duration_s=perf_counter() - info.opened)

    def _is_closed(self, conn: Any) -> bool:
        closed: bool = super()._is_closed(conn)  # type: ignore[misc]
        if closed:
            # peewee discards it without closing it; record the discard all the same.
            self._pv_forget(conn, "broken")
        self._pv_local.mark = perf_counter()
        return closed

    def _is_stale(self, timestamp: float) -> bool:
        stale: bool = super()._is_stale(timestamp)  # type: ignore[misc]
        if stale:
            self._pv_local.reason = "stale"
        return stale

    def _can_reuse(self, conn: Any) -> bool:
        reusable: bool = super()._can_reuse(conn)  # type: ignore[misc]
        if not reusable:
            self._pv_local.reason = "not_reusable"
        return reusable

    def _pv_scoped(self, scope: str, method: Any, *args: Any) -> Any:
        local = self._pv_local
        outer_scope = local.scope
        local.scope = scope
        try:
            return method(*args)
        finally:
            local.scope = outer_scope
            self._pv_notify()

    def manual_close(self) -> Any:
        return self._pv_scoped("manual", super().manual_close)  # type: ignore[misc]

    def close_idle(self) -> None:
        scope = "all" if self._pv_local.scope == "all" else "idle"
        self._pv_scoped(scope, super().close_idle)  # type: ignore[misc]

    def close_stale(self, age: float = 600) -> int:
        return self._pv_scoped("stale_in_use", super().close_stale, age)  # type: ignore[misc,no-any-return]

    def close_all(self) -> None:
        self._pv_scoped("all", super().close_all)  # type: ignore[misc]

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        with self._pool_lock:
            self._pv_conns.clear()
            self._pv_in_use = self._pv_idle = 0

    def _pv_adopt(self) -> None:
        # instrument() on a pool already in use: give its connections serials, silently.
        now = perf_counter()
        for _ts, _counter, conn in self._connections:
            self._pv_conns[id(conn)] = _ConnInfo(next(self._pv_serial), now, None)
            self._pv_idle += 1
        for pool_conn in self._in_use.values():
            self._pv_conns[id(pool_conn.connection)] = _ConnInfo(next(self._pv_serial), now, now)
            self._pv_in_use += 1


class InstrumentedPooledSqliteDatabase(_Instrumented, PooledSqliteDatabase):
    """peewee's ``PooledSqliteDatabase`` with events, shareable between threads by default.

    The pool hands a connection opened in one thread to whichever thread asks
    next; ``sqlite3`` refuses that unless ``check_same_thread=False``. Each
    connection is still used by one thread at a time, which is what that check
    exists to protect, so it is the default here (pass ``True`` to restore it).
    """

    _pv_validates = True

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("check_same_thread", False)
        super().__init__(database, *args, **kwargs)


class InstrumentedPooledMySQLDatabase(_Instrumented, PooledMySQLDatabase):
    """peewee's ``PooledMySQLDatabase`` (MySQL and MariaDB) with events.

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connect_timeout", 5)
        super().__init__(database, *args, **kwargs)


class InstrumentedPooledPostgresqlDatabase(_Instrumented, PooledPostgresqlDatabase):
    """peewee's ``PooledPostgresqlDatabase`` with events (psycopg2, or psycopg 3 with ``prefer_psycopg3=True``).

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connect_timeout", 5)
        super().__init__(database, *args, **kwargs)


@functools.cache
def _instrumented_class(cls: type) -> type:
    return type(f"Instrumented{cls.__name__}", (_Instrumented, cls), {"__module__": cls.__module__})


def instrument(db: PooledDatabase, *, event_capacity: int = DEFAULT_CAPACITY) -> PooledDatabase:
    """Instrument an existing peewee pool in place and return it.

    Works on any ``playhouse.pool.PooledDatabase`` instance, your own
    subclasses included, and accepts whatever configuration peewee accepted:
    it only observes. Connections the pool already holds get serials without
    events. Instrumenting twice is harmless.
    """
    if not isinstance(db, PooledDatabase):
        raise TypeError(
            "instrument() needs a playhouse.pool.PooledDatabase (e.g. PooledSqliteDatabase), "
            f"got {type(db).__module__}.{type(db).__qualname__}"
        )
    if isinstance(db, _Instrumented):
        return db
    with db._pool_lock:
        db.__class__ = _instrumented_class(type(db))
        instrumented: Any = db
        instrumented._pv_setup(EventLog(event_capacity))
        instrumented._pv_adopt()
        instrumented._pv_describe()
    return db


def is_instrumented(db: object) -> bool:
    """True for poolviz's pools and for pools passed through :func:`instrument`."""
    return isinstance(db, _Instrumented)
