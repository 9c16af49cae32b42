"""Instrumented peewee pools: the same pools, with an event for every transition.

``_Instrumented`` only overrides peewee's own hooks (``_connect``, ``_close``,
``_close_raw``, ``_is_stale``) and the public
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
import heapq
import itertools
import math
import threading
from threading import get_ident
from time import perf_counter
from typing import Any, ClassVar

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
from .leaks import Leak, check_leak_threshold, origin_summary

_current_thread = threading.current_thread


def check_pool_args(max_connections: Any, stale_timeout: Any, timeout: Any) -> None:
    """Refuse pool settings that peewee would take silently but that do not mean what they say.

    peewee reads ``max_connections=0`` as "no limit", a trap for a slider that
    reaches zero, so only ``None`` means unlimited here.
    """
    if max_connections is not None and not _is_positive_int(max_connections):
        raise ValueError(f"max_connections must be a positive integer (or None for no limit), got {max_connections!r}")
    for name, value in (("stale_timeout", stale_timeout), ("timeout", timeout)):
        if value is None:
            continue
        number = _as_number(value)
        if number is None or number < 0 or math.isnan(number):
            raise ValueError(f"{name} must be None or a number of seconds >= 0, got {value!r}")


def check_event_capacity(value: Any) -> None:
    """``event_capacity`` (how many events a pool's log keeps) is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"event_capacity must be a positive integer, got {value!r}")


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

    # Holding the connection keeps its id() from being reused while it is tracked,
    # even after peewee has dropped it (a dead connection discarded at checkout).
    __slots__ = ("checked_out", "conn", "holder", "leaked", "opened", "origin", "serial")

    def __init__(self, conn: Any, serial: int, opened: float, checked_out: float | None) -> None:
        self.conn = conn
        self.serial = serial
        self.opened = opened
        self.checked_out = checked_out
        # Filled in only when leak detection is on.
        self.holder: threading.Thread | None = None
        self.origin = ""
        self.leaked = False


class _Local(threading.local):
    """Per-thread scratch state; the class attributes are each thread's starting values."""

    name: str | None = None
    reason: str | None = None
    scope: str | None = None


def _next_impl(cls: type, name: str) -> Any:
    """The implementation of ``name`` that the mixin overrides in ``cls`` (what ``super()`` finds).

    Looked up once per class so the hot path calls it without building a
    ``super()`` object. For peewee's own ``@locked`` methods it is the body
    without the lock: the mixin already holds the pool lock around those
    calls, so taking the reentrant lock a second time would only cost time.
    """
    mro = cls.__mro__
    for klass in mro[mro.index(_Instrumented) + 1 :]:
        if name in klass.__dict__:
            impl = klass.__dict__[name]
            if klass is PooledDatabase and name in ("_connect", "_close"):
                impl = getattr(impl, "__wrapped__", None) or impl
            return impl
    raise AttributeError(name)


class _DeliveringLock:
    """peewee's database lock, wrapped while anyone listens: events recorded inside are delivered on release.

    peewee holds this lock (not reentrant) around ``_connect`` and ``_close``;
    a listener called inside it would stall every other caller's connect and
    close, and one that queried the database would deadlock.
    """

    __slots__ = ("_db", "lock", "owner")

    def __init__(self, lock: Any, db: _Instrumented) -> None:
        self.lock = lock
        self.owner: int | None = None
        self._db = db

    def __enter__(self) -> _DeliveringLock:
        self.lock.__enter__()
        self.owner = get_ident()
        return self

    def __exit__(self, *exc: object) -> None:
        self.owner = None
        self.lock.__exit__(*exc)
        # peewee never takes this lock while holding the pool lock.
        self._db.events.flush()

    def locked(self) -> bool:
        """Whether the wrapped lock is held, like ``threading.Lock.locked()``."""
        return bool(self.lock.locked())


class _Instrumented:
    """Hook-only mixin that records an event for every transition of a peewee pool."""

    # poolviz's own classes refuse settings that mislead (see check_pool_args);
    # pools passed through instrument() keep whatever peewee accepted.
    _pv_validates = False
    # Driver keyword arguments whose default differs from peewee's (see each class).
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {}
    _pv_next_open: Any
    _pv_next_connect: Any
    _pv_next_close: Any
    _pv_next_is_stale: Any

    events: EventLog
    _pool_lock: threading.RLock
    _pool_available: threading.Condition
    _lock: Any
    _in_use: dict[int, Any]
    _connections: list[Any]
    _max_connections: int | None
    _stale_timeout: float | None
    _wait_timeout: float | None
    connect_params: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Stored as staticmethods and called as impl(self, ...).
        cls._pv_next_open = staticmethod(_next_impl(cls, "connect"))
        cls._pv_next_connect = staticmethod(_next_impl(cls, "_connect"))
        cls._pv_next_close = staticmethod(_next_impl(cls, "_close"))
        cls._pv_next_is_stale = staticmethod(_next_impl(cls, "_is_stale"))

    def __init__(
        self,
        database: Any,
        max_connections: int | None = 20,
        stale_timeout: float | None = None,
        timeout: float | None = None,
        *,
        event_capacity: int = DEFAULT_CAPACITY,
        leak_threshold: float | None = None,
        **kwargs: Any,
    ) -> None:
        check_pool_args(max_connections, stale_timeout, timeout)
        check_leak_threshold(leak_threshold)
        check_event_capacity(event_capacity)
        kwargs = {**self._pv_driver_defaults, **kwargs}
        super().__init__(  # type: ignore[call-arg]
            database,
            max_connections=max_connections,
            stale_timeout=stale_timeout,
            timeout=timeout,
            **kwargs,
        )
        self._pv_setup(event_capacity, leak_threshold)

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

    def _pv_setup(self, event_capacity: int, leak_threshold: float | None) -> None:
        self.events = EventLog(event_capacity, lock=self._pool_lock)
        self.events.on_listening = self._pv_listening
        self.leak_threshold = leak_threshold
        self._pv_local = _Local()
        self._pv_conns: dict[int, _ConnInfo] = {}
        self._pv_serial = itertools.count(1)
        self._pv_in_use = 0
        self._pv_idle = 0
        self._pv_waiting = 0
        # Callers now waiting for a free slot: thread ident -> when they began.
        self._pv_waiters: dict[int, float] = {}
        # id() of the connection being checked in: if peewee closes it there and
        # it is not stale, the driver refused it (_can_reuse returned False).
        self._pv_checkin_key: int | None = None
        # Set by resize() while connections in use are over a lowered limit.
        self._pv_over_limit = False
        self._pv_describe()

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

    def _pv_record(
        self,
        kind: str,
        serial: int = NO_CONN,
        wait_s: float = 0.0,
        duration_s: float = 0.0,
        reused: bool = False,
        reason: str = "",
        message: str = "",
    ) -> None:
        # Called with the pool lock held, so seq follows the pool's own order.
        self.events.record(
            kind,
            serial,
            self._pv_thread_name(),
            self._pv_in_use,
            self._pv_idle,
            self._pv_waiting,
            wait_s,
            duration_s,
            reused,
            reason,
            message,
        )

    def _pv_thread_name(self) -> str:
        local = self._pv_local
        name = local.name
        if name is None:
            name = local.name = _current_thread().name
        return name

    def _pv_notify(self) -> None:
        # Listeners run only once this thread holds no pool lock (close_all
        # calls close_idle with the lock held: its events wait for close_all)
        # and is not inside peewee's database lock (connect() and close() take
        # it around _connect and _close: its release delivers them instead).
        if (
            self.events._listeners
            and getattr(self._lock, "owner", None) != get_ident()
            and not self._pool_lock._is_owned()  # type: ignore[attr-defined]
        ):
            self.events.flush()

    def _pv_listening(self, listening: bool) -> None:
        # Called by the event log, under the pool lock, when its first listener
        # arrives or its last one leaves. Only then is peewee's database lock
        # wrapped, so a pool nobody listens to pays nothing for it. The wrapper
        # shares the same underlying lock, so swapping it is safe mid-use.
        lock = self._lock
        if listening and not isinstance(lock, _DeliveringLock):
            self._lock = _DeliveringLock(lock, self)
        elif not listening and isinstance(lock, _DeliveringLock):
            self._lock = lock.lock

    def connect(self, reuse_if_open: bool = False) -> bool:
        # _connect() records and notifies; this level only sees a waiting
        # caller leave: by timing out, or by a driver error or an interrupt.
        try:
            return self._pv_next_open(self, reuse_if_open)  # type: ignore[no-any-return]
        except MaxConnectionsExceeded:
            if self._pv_waiters:
                self._pv_stop_waiting(timed_out=True)
            raise
        finally:
            if self._pv_waiters and get_ident() in self._pv_waiters:
                self._pv_stop_waiting(timed_out=False)

    def _pv_stop_waiting(self, timed_out: bool) -> None:
        with self._pool_lock:
            started = self._pv_waiters.pop(get_ident(), None)
            if started is not None:
                self._pv_waiting -= 1
                if timed_out:
                    self._pv_record("timeout", NO_CONN, perf_counter() - started)
        self._pv_notify()

    def _connect(self) -> Any:
        try:
            with self._pool_lock:
                start = perf_counter()
                try:
                    conn = self._pv_next_connect(self)
                except MaxConnectionsExceeded:
                    self._pv_reconcile(None)
                    self._pv_full()
                    raise
                except Exception as exc:
                    self._pv_reconcile(None)
                    message = mask_text(str(exc), secrets_of(self.connect_params))
                    self._pv_record("error", NO_CONN, 0.0, 0.0, False, type(exc).__name__, message)
                    raise
                now = perf_counter()
                conns = self._pv_conns
                info = conns.get(id(conn))
                if self._pv_idle - (info is not None) != len(self._connections):
                    self._pv_reconcile(conn)
                if info is None:
                    info = conns[id(conn)] = _ConnInfo(conn, next(self._pv_serial), now, now)
                    self._pv_record("connect", info.serial, 0.0, now - start)
                    reused = False
                else:
                    info.checked_out = now
                    self._pv_idle -= 1
                    reused = True
                self._pv_in_use += 1
                waited = 0.0
                if self._pv_waiters:
                    started = self._pv_waiters.pop(get_ident(), None)
                    if started is not None:
                        waited = now - started
                        self._pv_waiting -= 1
                self.events.record(
                    "checkout",
                    info.serial,
                    self._pv_local.name or self._pv_thread_name(),
                    self._pv_in_use,
                    self._pv_idle,
                    self._pv_waiting,
                    waited,
                    0.0,
                    reused,
                )
                if self.leak_threshold is not None:
                    info.holder = _current_thread()
                    info.origin = origin_summary()
                    self._pv_scan_leaks(now)
                return conn
        finally:
            if self.events._listeners:
                self._pv_notify()

    def _pv_reconcile(self, returned: Any) -> None:
        # peewee pops idle connections it finds dead (``_is_closed``) and drops
        # them without closing; any idle connection we track that is no longer
        # in the heap, and is not the one being handed out, went that way.
        if self._pv_idle - (returned is not None and id(returned) in self._pv_conns) == len(self._connections):
            return
        in_heap = {id(conn) for _ts, _counter, conn in self._connections}
        if returned is not None:
            in_heap.add(id(returned))
        for info in [i for i in self._pv_conns.values() if i.checked_out is None]:
            if id(info.conn) not in in_heap:
                self._pv_forget(info.conn, "broken")

    def _pv_full(self) -> None:
        # The pool is full. Without a timeout peewee raises to the caller now;
        # with one, connect() waits and retries, and only the first try says so.
        if not self._wait_timeout:
            self._pv_record("timeout")
        elif get_ident() not in self._pv_waiters:
            self._pv_waiters[get_ident()] = perf_counter()
            self._pv_waiting += 1
            self._pv_record("wait")

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        key = id(conn)
        events = self.events
        with self._pool_lock:
            in_use = self._in_use
            was_in_use = key in in_use
            if close_conn:
                self._pv_scoped("manual", self._pv_next_close, self, conn, True)
            else:
                self._pv_checkin_key = key
                try:
                    self._pv_next_close(self, conn, False)
                finally:
                    self._pv_checkin_key = None
            if was_in_use and key not in in_use:
                info = self._pv_conns.get(key)
                if info is not None:
                    # Was in use, still tracked (so not closed): it went back to the heap.
                    if info.leaked:
                        self._pv_unleak(info)
                    held = perf_counter() - info.checked_out  # type: ignore[operator]
                    info.checked_out = None
                    self._pv_in_use -= 1
                    self._pv_idle += 1
                    events.record(
                        "checkin",
                        info.serial,
                        self._pv_local.name or self._pv_thread_name(),
                        self._pv_in_use,
                        self._pv_idle,
                        self._pv_waiting,
                        0.0,
                        held,
                    )
            if self._pv_over_limit:
                self._pv_trim()
            if self.leak_threshold is not None:
                self._pv_scan_leaks(perf_counter())
        if events._listeners:
            self._pv_notify()

    def _close_raw(self, conn: Any) -> None:
        local = self._pv_local
        reason = local.reason
        local.reason = None
        if reason is None:
            # Closed while being checked in and not stale: the driver refused it.
            reason = "not_reusable" if id(conn) == self._pv_checkin_key else local.scope or "manual"
        # manual_close() calls this without the pool lock: the driver close
        # stays outside it, as in peewee; only the bookkeeping takes the lock.
        super()._close_raw(conn)  # type: ignore[misc]
        with self._pool_lock:
            self._pv_forget(conn, reason)
        self._pv_notify()

    def _pv_forget(self, conn: Any, reason: str) -> None:
        info = self._pv_conns.pop(id(conn), None)
        if info is None:
            return
        if info.checked_out is None:
            self._pv_idle -= 1
        else:
            if info.leaked:
                self._pv_unleak(info)
            self._pv_in_use -= 1
        self._pv_record("close", info.serial, 0.0, perf_counter() - info.opened, False, reason)

    def _is_stale(self, timestamp: float) -> bool:
        stale: bool = self._pv_next_is_stale(self, timestamp)
        if stale:
            self._pv_local.reason = "stale"
        return stale

    def resize(self, max_connections: int | None) -> int:
        """Change ``max_connections`` of a pool in use; returns how many in use are over the new limit.

        peewee has no resize: its limit only stops new connections being
        opened, and it keeps handing out idle ones whatever their number. So
        growing wakes waiting callers at once, and shrinking closes idle
        connections over the new limit now and each one over it as it is
        checked in (``close`` events with reason ``idle``), until the pool
        fits. ``None`` removes the limit.
        """
        check_pool_args(max_connections, None, None)
        with self._pool_lock:
            self._max_connections = max_connections
            self.events.meta["max_connections"] = max_connections
            self._pv_trim()
            over = self._pv_in_use - max_connections if max_connections and self._pv_over_limit else 0
            self._pool_available.notify_all()
        self._pv_notify()
        return over

    def _pv_trim(self) -> None:
        # With the pool lock held: close the oldest idle connections (the ones
        # peewee would hand out next) while the pool holds more than its limit.
        limit = self._max_connections
        excess = self._pv_in_use + self._pv_idle - limit if limit else 0
        local = self._pv_local
        outer_scope, local.scope = local.scope, "idle"
        try:
            while excess > 0 and self._connections:
                _ts, _counter, conn = heapq.heappop(self._connections)
                self._close_raw(conn)
                excess -= 1
        finally:
            local.scope = outer_scope
        self._pv_over_limit = excess > 0

    def _pv_scan_leaks(self, now: float) -> None:
        # With the pool lock held. Cheap enough for pools of tens of connections,
        # and only run when a leak_threshold is set.
        threshold = self.leak_threshold
        assert threshold is not None
        for info in self._pv_conns.values():
            if info.checked_out is not None and not info.leaked and now - info.checked_out > threshold:
                info.leaked = True
                alive = info.holder is None or info.holder.is_alive()
                self._pv_record_leak("leak", info, now, "held" if alive else "thread_exited")

    def _pv_unleak(self, info: _ConnInfo) -> None:
        info.leaked = False
        self._pv_record_leak("unleak", info, perf_counter(), "")

    def _pv_record_leak(self, kind: str, info: _ConnInfo, now: float, reason: str) -> None:
        # Leak events name the holder, not the thread that noticed.
        self.events.record(
            kind,
            info.serial,
            info.holder.name if info.holder else "?",
            self._pv_in_use,
            self._pv_idle,
            self._pv_waiting,
            0.0,
            now - info.checked_out,  # type: ignore[operator]
            False,
            reason,
            info.origin,
        )

    def leaks(self) -> list[Leak]:
        """Connections now held longer than ``leak_threshold`` (recording ``leak`` events for new ones)."""
        if self.leak_threshold is None:
            raise ValueError("leak detection is off: build the pool with leak_threshold=<seconds>")
        with self._pool_lock:
            now = perf_counter()
            self._pv_scan_leaks(now)
            found = [
                Leak(
                    info.serial,
                    info.holder.name if info.holder else "?",
                    bool(info.holder and info.holder.is_alive()),
                    now - info.checked_out,  # type: ignore[operator]
                    info.origin,
                )
                for info in self._pv_conns.values()
                if info.leaked
            ]
        self._pv_notify()
        return found

    def reclaim_dead_threads(self) -> int:
        """Close the connections checked out by threads that have exited; returns how many.

        A thread that dies holding a connection never returns it, and peewee
        cannot tell: the slot stays taken for good. Its transaction state is
        unknown, so the connection is closed (reason ``manual``), not reused.
        """
        with self._pool_lock:
            dead = [
                info.conn
                for info in self._pv_conns.values()
                if info.checked_out is not None and info.holder is not None and not info.holder.is_alive()
            ]
            for conn in dead:
                self._close(conn, close_conn=True)
        self._pv_notify()
        return len(dead)

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
        if not self.is_closed():  # type: ignore[attr-defined]
            # peewee frees the slot under the pool lock but closes the driver
            # connection after releasing it: record the close with the slot, so
            # a checkout in between never shows more in use than the limit.
            with self._pool_lock:
                self._pv_forget(self._state.conn, "manual")  # type: ignore[attr-defined]
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
            self._pv_record("dispose")
        self._pv_notify()

    def _pv_adopt(self) -> None:
        # instrument() on a pool already in use: give its connections serials, silently.
        now = perf_counter()
        for _ts, _counter, conn in self._connections:
            self._pv_conns[id(conn)] = _ConnInfo(conn, next(self._pv_serial), now, None)
            self._pv_idle += 1
        for pool_conn in self._in_use.values():
            conn = pool_conn.connection
            self._pv_conns[id(conn)] = _ConnInfo(conn, next(self._pv_serial), now, now)
            self._pv_in_use += 1


class InstrumentedPooledSqliteDatabase(_Instrumented, PooledSqliteDatabase):
    """peewee's ``PooledSqliteDatabase`` with events, shareable between threads by default.

    The pool hands a connection opened in one thread to whichever thread asks
    next; ``sqlite3`` refuses that unless ``check_same_thread=False``. Each
    connection is still used by one thread at a time, which is what that check
    exists to protect, so it is the default here (pass ``True`` to restore it).
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"check_same_thread": False}


class InstrumentedPooledMySQLDatabase(_Instrumented, PooledMySQLDatabase):
    """peewee's ``PooledMySQLDatabase`` (MySQL and MariaDB) with events.

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"connect_timeout": 5}


class InstrumentedPooledPostgresqlDatabase(_Instrumented, PooledPostgresqlDatabase):
    """peewee's ``PooledPostgresqlDatabase`` with events (psycopg2, or psycopg 3 with ``prefer_psycopg3=True``).

    ``connect_timeout`` defaults to 5 seconds so an unreachable server fails fast.
    """

    _pv_validates = True
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {"connect_timeout": 5}


@functools.cache
def _instrumented_class(cls: type) -> type:
    return type(f"Instrumented{cls.__name__}", (_Instrumented, cls), {"__module__": cls.__module__})


def instrument(
    db: PooledDatabase, *, event_capacity: int = DEFAULT_CAPACITY, leak_threshold: float | None = None
) -> PooledDatabase:
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
    check_leak_threshold(leak_threshold)
    check_event_capacity(event_capacity)
    with db._pool_lock:
        db.__class__ = _instrumented_class(type(db))  # type: ignore[arg-type]
        instrumented: Any = db
        instrumented._pv_setup(event_capacity, leak_threshold)
        instrumented._pv_adopt()
    return db


def is_instrumented(db: object) -> bool:
    """True for poolviz's pools and for pools passed through :func:`instrument`."""
    return isinstance(db, _Instrumented)
