"""The hook-only mixin: peewee's pool does the work, and every transition it makes is recorded.

``Instrumented`` overrides only peewee's own hooks (``_connect``, ``_close``,
``_close_raw``, ``_is_stale``) and the public methods around them, calls
peewee's code for the real work and records what it did. No pool decision is
made here, so reuse order, exceptions, stale handling and rollback on
check-in stay peewee's.

The counts on each event (``in_use``, ``idle``, ``waiting``) are kept by the
mixin itself, changed exactly when an event is recorded, so they always agree
with the event stream; when the pool is quiet they equal peewee's own
``len(_in_use)`` and ``len(_connections)``.

Events are recorded under the pool lock and delivered to listeners after it
is released (see ``delivery``). Attributes the mixin adds to peewee's object
start with ``_pv_`` so they never collide with peewee's own.
"""

from __future__ import annotations

import functools
import itertools
import threading
from threading import get_ident
from time import perf_counter
from typing import Any, ClassVar

from playhouse.pool import MaxConnectionsExceeded, PooledDatabase

from .. import checks
from ..credentials import mask_text, secrets_of
from ..events import DEFAULT_CAPACITY, NO_CONN, EventLog
from . import leaks, resize
from .delivery import deliver, wrap_database_lock
from .tracker import CloseContext, Tracked

_current_thread = threading.current_thread


class _ThreadName(threading.local):
    """Each thread's name, read once: events carry it and ``Thread.name`` is a property."""

    name: str | None = None


def _next_impl(cls: type, name: str) -> Any:
    """The implementation of ``name`` that the mixin overrides in ``cls`` (what ``super()`` finds).

    Looked up once per class so the hot path calls it without building a
    ``super()`` object. For peewee's own ``@locked`` methods it is the body
    without the lock: the mixin already holds the pool lock around those
    calls, so taking the reentrant lock a second time would only cost time.
    """
    mro = cls.__mro__
    for klass in mro[mro.index(Instrumented) + 1 :]:
        if name in klass.__dict__:
            impl = klass.__dict__[name]
            if klass is PooledDatabase and name in ("_connect", "_close"):
                impl = getattr(impl, "__wrapped__", None) or impl
            return impl
    raise AttributeError(name)


class Instrumented:
    """Hook-only mixin that records an event for every transition of a peewee pool.

    Put it first among the bases of a ``PooledDatabase`` subclass, as the
    public classes do, or let :func:`poolviz.instrument` do it for an
    existing pool.
    """

    # poolviz's own classes refuse settings that mislead (see checks.pool_args);
    # pools passed through instrument() keep whatever peewee accepted.
    _pv_validates = False
    # Driver keyword arguments whose default differs from peewee's (see each class).
    _pv_driver_defaults: ClassVar[dict[str, Any]] = {}
    _pv_next_open: Any
    _pv_next_connect: Any
    _pv_next_close: Any
    _pv_next_is_stale: Any

    events: EventLog
    leak_threshold: float | None
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
        max_connections, stale_timeout, timeout = checks.pool_args(max_connections, stale_timeout, timeout)
        leak_threshold = checks.leak_threshold(leak_threshold)
        event_capacity = checks.count("event_capacity", event_capacity)
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
            max_connections, stale_timeout, timeout = checks.pool_args(max_connections, stale_timeout, timeout)
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
        self.events.on_listening = self._pv_on_listening
        self._pv_record = self.events.record_at
        self._pv_listening = False
        self.leak_threshold = leak_threshold
        self._pv_watchdog: leaks.LeakWatchdog | None = None
        self._pv_name = _ThreadName()
        self._pv_close = CloseContext()
        self._pv_conns: dict[int, Tracked] = {}
        self._pv_serial = itertools.count(1)
        self._pv_in_use = 0
        self._pv_idle = 0
        self._pv_waiting = 0
        # Callers now waiting for a free slot: thread ident -> when they began.
        self._pv_waiters: dict[int, float] = {}
        # id() of the connection being checked in (see CloseContext.reason).
        self._pv_checking_in: int | None = None
        # Set by resize() while connections in use are over a lowered limit.
        self._pv_over_limit = False
        self._pv_describe()

    def _pv_describe(self) -> None:
        from .classes import backend_of

        self.events.meta.update(
            pool=type(self).__name__,
            backend=backend_of(self),
            max_connections=self._max_connections,
            stale_timeout=self._stale_timeout,
            timeout=self._wait_timeout,
        )

    def _pv_on_listening(self, listening: bool) -> None:
        # Called by the event log, under the pool lock, when its first listener
        # arrives or its last one leaves.
        self._pv_listening = listening
        wrap_database_lock(self, listening)

    @property
    def max_connections(self) -> int | None:
        """The pool's limit (``None`` or 0: unlimited, as peewee reads it)."""
        return self._max_connections

    def _pv_thread_name(self) -> str:
        local = self._pv_name
        name = local.name
        if name is None:
            name = local.name = _current_thread().name
        return name

    def _pv_event(
        self, kind: str, serial: int = NO_CONN, wait_s: float = 0.0, duration_s: float = 0.0, reason: str = ""
    ) -> None:
        """Record an event off the hot path, stamped now, with this thread's name. Hold the pool lock."""
        self._pv_record(
            perf_counter(),
            kind,
            serial,
            self._pv_thread_name(),
            self._pv_in_use,
            self._pv_idle,
            self._pv_waiting,
            wait_s,
            duration_s,
            False,
            reason,
        )

    def connect(self, reuse_if_open: bool = False) -> bool:
        # _connect() records checkouts; this level only sees a waiting caller
        # leave without one: by timing out, or by a driver error or an interrupt.
        try:
            return self._pv_next_open(self, reuse_if_open)  # type: ignore[no-any-return]
        except BaseException as exc:
            if self._pv_waiters and get_ident() in self._pv_waiters:
                self._pv_stop_waiting(timed_out=isinstance(exc, MaxConnectionsExceeded))
            raise

    def _pv_stop_waiting(self, timed_out: bool) -> None:
        with self._pool_lock:
            started = self._pv_waiters.pop(get_ident(), None)
            if started is not None:
                self._pv_waiting -= 1
                if timed_out:
                    self._pv_event("timeout", NO_CONN, perf_counter() - started)
        deliver(self)

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
                    self._pv_record(
                        perf_counter(), "error", NO_CONN, self._pv_thread_name(),
                        self._pv_in_use, self._pv_idle, self._pv_waiting, 0.0, 0.0, False, type(exc).__name__, message,
                    )  # fmt: skip
                    raise
                now = perf_counter()
                key = id(conn)
                info = self._pv_conns.get(key)
                if self._pv_idle - (info is not None) != len(self._connections):
                    self._pv_reconcile(conn)
                name = self._pv_name.name or self._pv_thread_name()
                if info is None:
                    info = self._pv_conns[key] = Tracked(conn, next(self._pv_serial), now, now)
                    self._pv_record(
                        now, "connect", info.serial, name, self._pv_in_use, self._pv_idle, self._pv_waiting,
                        0.0, now - start,
                    )  # fmt: skip
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
                self._pv_record(
                    now,
                    "checkout",
                    info.serial,
                    name,
                    self._pv_in_use,
                    self._pv_idle,
                    self._pv_waiting,
                    waited,
                    0.0,
                    reused,
                )
                if self.leak_threshold is not None:
                    self._pv_watch(info)
                return conn
        finally:
            # Also after a wait, a timeout or an error: those are events too.
            if self._pv_listening:
                deliver(self)

    def _pv_watch(self, info: Tracked) -> None:
        leaks.note_holder(info)
        watchdog = self._pv_watchdog
        if watchdog is None:
            watchdog = self._pv_watchdog = leaks.LeakWatchdog(self)
        watchdog.ensure_running()

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
            self._pv_event("timeout")
        elif get_ident() not in self._pv_waiters:
            self._pv_waiters[get_ident()] = perf_counter()
            self._pv_waiting += 1
            self._pv_event("wait")

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        key = id(conn)
        with self._pool_lock:
            in_use = self._in_use
            was_in_use = key in in_use
            if close_conn:
                self._pv_scoped("manual", self._pv_next_close, self, conn, True)
            else:
                self._pv_checking_in = key
                try:
                    self._pv_next_close(self, conn, False)
                finally:
                    self._pv_checking_in = None
            if was_in_use and key not in in_use:
                info = self._pv_conns.get(key)
                if info is not None:
                    # Was in use, still tracked (so not closed): it went back to the heap.
                    now = perf_counter()
                    if info.leaked:
                        self._pv_unleak(info, now)
                    held = now - info.checked_out  # type: ignore[operator]
                    info.checked_out = None
                    self._pv_in_use -= 1
                    self._pv_idle += 1
                    self._pv_record(
                        now, "checkin", info.serial, self._pv_name.name or self._pv_thread_name(),
                        self._pv_in_use, self._pv_idle, self._pv_waiting, 0.0, held,
                    )  # fmt: skip
            if self._pv_over_limit:
                resize.trim(self)
        if self._pv_listening:
            deliver(self)

    def _close_raw(self, conn: Any) -> None:
        reason = self._pv_close.reason(conn, self._pv_checking_in)
        # manual_close() calls this without the pool lock: the driver close
        # stays outside it, as in peewee; only the bookkeeping takes the lock.
        super()._close_raw(conn)  # type: ignore[misc]
        with self._pool_lock:
            self._pv_forget(conn, reason)
        # No delivery here: every caller is inside a pool operation that delivers when it ends.

    def _pv_forget(self, conn: Any, reason: str) -> None:
        info = self._pv_conns.pop(id(conn), None)
        if info is None:
            return
        now = perf_counter()
        if info.checked_out is None:
            self._pv_idle -= 1
        else:
            if info.leaked:
                self._pv_unleak(info, now)
            self._pv_in_use -= 1
        self._pv_event("close", info.serial, 0.0, now - info.opened, reason)

    def _pv_unleak(self, info: Tracked, now: float) -> None:
        info.leaked = False
        leaks.record(self, "unleak", info, now, "")

    def _is_stale(self, timestamp: float) -> bool:
        stale: bool = self._pv_next_is_stale(self, timestamp)
        if stale:
            self._pv_close.stale = True
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
        limit = checks.count("max_connections", max_connections, none_means="no limit")
        over = resize.set_limit(self, limit)
        deliver(self)
        return over

    def leaks(self) -> list[leaks.Leak]:
        """Connections now held longer than ``leak_threshold`` (recording ``leak`` events for new ones)."""
        if self.leak_threshold is None:
            raise ValueError("leak detection is off: build the pool with leak_threshold=<seconds>")
        with self._pool_lock:
            found = leaks.report(self)
        deliver(self)
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
        # A dead thread returns nothing, so the list stays true once the lock is released.
        self._pv_scoped("manual", self._pv_close_each, dead)
        return len(dead)

    def _pv_close_each(self, conns: list[Any]) -> None:
        for conn in conns:
            self._close(conn, close_conn=True)

    def _pv_scoped(self, scope: str, method: Any, *args: Any) -> Any:
        # Runs ``method`` as a deliberate close of kind ``scope`` (an outer
        # scope wins: close_all's close_idle closes for "all"); events are
        # delivered when the outermost scope ends.
        close = self._pv_close
        outer = close.scope
        close.scope = outer or scope
        try:
            return method(*args)
        finally:
            close.scope = outer
            deliver(self)

    def manual_close(self) -> Any:
        if not self.is_closed():  # type: ignore[attr-defined]
            # peewee frees the slot under the pool lock but closes the driver
            # connection after releasing it: record the close with the slot, so
            # a checkout in between never shows more in use than the limit.
            with self._pool_lock:
                self._pv_forget(self._state.conn, "manual")  # type: ignore[attr-defined]
        return self._pv_scoped("manual", super().manual_close)  # type: ignore[misc]

    def close_idle(self) -> None:
        self._pv_scoped("idle", super().close_idle)  # type: ignore[misc]

    def close_stale(self, age: float = 600) -> int:
        return self._pv_scoped("stale_in_use", super().close_stale, age)  # type: ignore[misc,no-any-return]

    def close_all(self) -> None:
        self._pv_stop_watchdog()
        self._pv_scoped("all", super().close_all)  # type: ignore[misc]

    def dispose(self) -> None:
        self._pv_stop_watchdog()
        super().dispose()  # type: ignore[misc]
        with self._pool_lock:
            self._pv_conns.clear()
            self._pv_in_use = self._pv_idle = 0
            self._pv_event("dispose")
        deliver(self)

    def _pv_stop_watchdog(self) -> None:
        if self._pv_watchdog is not None:
            self._pv_watchdog.stop()

    def _pv_adopt(self) -> None:
        # instrument() on a pool already in use: give its connections serials, silently.
        now = perf_counter()
        for _ts, _counter, conn in self._connections:
            self._pv_conns[id(conn)] = Tracked(conn, next(self._pv_serial), now, None)
            self._pv_idle += 1
        for pool_conn in self._in_use.values():
            conn = pool_conn.connection
            self._pv_conns[id(conn)] = Tracked(conn, next(self._pv_serial), now, now)
            self._pv_in_use += 1


@functools.cache
def instrumented_class(cls: type) -> type:
    """The instrumented subclass of a ``PooledDatabase`` class (made once per class)."""
    return type(f"Instrumented{cls.__name__}", (Instrumented, cls), {"__module__": cls.__module__})
