"""What poolviz knows of one SQLAlchemy pool: its connections, its counts, and how each transition is recorded.

SQLAlchemy announces most transitions itself, through its pool events
(``connect``, ``checkout``, ``checkin``, ``invalidate``, ``soft_invalidate``,
``close``, ``detach``); :mod:`.wiring` subscribes :class:`PoolObserver`'s
methods to them. What it does not announce (a caller waiting for a
connection, a timeout, a connect that failed, why a connection closed) is
read from the places :mod:`.wiring` wraps. Either way the pool does exactly
what it would do without poolviz.

Counts follow poolviz's vocabulary: ``in_use`` is connections handed to
callers, ``idle`` open connections waiting in the pool, ``waiting`` callers
blocked for one. SQLAlchemy's ``checkedin()`` also counts a record whose
connection was invalidated and is not yet reopened; poolviz's ``idle`` does
not (no connection is open), so ``idle == checkedin()`` minus those records.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
import time
from time import perf_counter
from typing import Any

from ...credentials import mask_text
from ...events import EventLog

# Per caller (thread, task or greenlet: each has its own context), while it waits.
_wait_started: contextvars.ContextVar[float | None] = contextvars.ContextVar("poolviz_sqla_wait", default=None)
_waited: contextvars.ContextVar[float] = contextvars.ContextVar("poolviz_sqla_waited", default=0.0)
# Why connections close while one of the pool's own methods runs (dispose, a return that overflows).
_closing_because: contextvars.ContextVar[str | None] = contextvars.ContextVar("poolviz_sqla_closing", default=None)


def caller_name() -> str:
    """The asyncio task's name inside a task, else the thread's name."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task.get_name() if task is not None else threading.current_thread().name


def thread_name() -> str:
    return threading.current_thread().name


class PoolObserver:
    """Records one SQLAlchemy pool's transitions into its :class:`~poolviz.events.EventLog`."""

    def __init__(self, pool: Any, events: EventLog) -> None:
        self.pool = pool
        self.events = events
        self.name_of_caller = caller_name if pool._is_asyncio else thread_name
        self._serials = itertools.count(1)
        self.serial_of: dict[int, int] = {}  # id(driver connection) -> poolviz serial
        self._opened_at: dict[int, float] = {}  # serial -> perf_counter() when opened
        self._held_since: dict[int, float] = {}  # serial -> perf_counter() at checkout
        self._fresh: set[int] = set()  # opened and not yet handed out
        self._close_reason: dict[int, str] = {}  # serial -> reason decided before SQLAlchemy closes it
        self.in_use = 0
        self.idle = 0
        self.waiting = 0

    # -- adopting what the pool already holds --------------------------------------------------

    def adopt(self, idle_records: list[Any], checked_out: int) -> None:
        """Count what the pool held before it was instrumented, without events.

        Idle connections get serials now; the ``checked_out`` ones (SQLAlchemy
        keeps no list of them) are counted as in use and get theirs when they
        come back.
        """
        now = perf_counter()
        with self.events.lock:
            for record in idle_records:
                conn = record.dbapi_connection
                if conn is None or id(conn) in self.serial_of:
                    continue
                serial = next(self._serials)
                self.serial_of[id(conn)] = serial
                self._opened_at[serial] = now
                self.idle += 1
            self.in_use += checked_out

    # -- recording -----------------------------------------------------------------------------

    def _record(self, now: float, kind: str, conn: int, **payload: Any) -> None:
        # Callers hold self.events.lock, so the counts and the event agree. ``now`` is the
        # reading the caller's durations were taken from; the log stamps its own.
        self.events.record(kind, conn, self.name_of_caller(), self.in_use, self.idle, self.waiting, **payload)

    def deliver(self) -> None:
        """Hand this caller's recorded events to listeners (never called inside a pool lock)."""
        if self.events.has_listeners:
            self.events.flush()

    # -- SQLAlchemy's pool events ---------------------------------------------------------------

    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        now = perf_counter()
        serial = next(self._serials)
        started = getattr(record, "starttime", None)
        opened_for = max(0.0, time.time() - started) if started else 0.0
        with self.events.lock:
            self.serial_of[id(dbapi_connection)] = serial
            self._opened_at[serial] = now
            self._fresh.add(serial)
            self.idle += 1
            self._record(now, "connect", serial, duration_s=opened_for)
        self.deliver()

    def on_checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        now = perf_counter()
        waited = _waited.get()
        if waited:
            _waited.set(0.0)
        with self.events.lock:
            serial = self.serial_of.get(id(dbapi_connection), 0)
            reused = serial not in self._fresh
            self._fresh.discard(serial)
            self._held_since[serial] = now
            self.idle -= 1
            self.in_use += 1
            self._record(now, "checkout", serial, wait_s=waited, reused=reused)
        self.deliver()

    def on_checkin(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is None:  # invalidated while out: its close was recorded then
            return
        now = perf_counter()
        with self.events.lock:
            serial = self.serial_of.get(id(dbapi_connection), 0)
            if not serial:  # out since before instrument(): it gets its serial now
                serial = self.serial_of[id(dbapi_connection)] = next(self._serials)
                self._opened_at[serial] = now
            held_since = self._held_since.pop(serial, now)
            self.in_use -= 1
            self.idle += 1
            self._record(now, "checkin", serial, duration_s=now - held_since)
        self.deliver()

    def on_invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        # A disconnect (pre-ping failing, a dead connection) comes with its exception; invalidate() by hand without.
        serial = self.serial_of.get(id(dbapi_connection), 0) if dbapi_connection is not None else 0
        if serial:
            self._close_reason[serial] = "broken" if exception is not None else "invalidated"

    def on_soft_invalidate(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        serial = self.serial_of.get(id(dbapi_connection), 0) if dbapi_connection is not None else 0
        if serial:
            self._close_reason[serial] = "invalidated"

    def on_close(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is None:
            return
        self._forget(dbapi_connection, self._reason_for(record))

    def on_detach(self, dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            self._forget(dbapi_connection, "detached")

    def _forget(self, dbapi_connection: Any, reason: str) -> None:
        now = perf_counter()
        with self.events.lock:
            serial = self.serial_of.pop(id(dbapi_connection), 0)
            if not serial:
                return
            if self._held_since.pop(serial, None) is not None:
                self.in_use -= 1
            else:
                self.idle -= 1
            self._fresh.discard(serial)
            reason = self._close_reason.pop(serial, "") or reason
            opened = self._opened_at.pop(serial, now)
            self._record(now, "close", serial, duration_s=now - opened, reason=reason)
        self.deliver()

    def _reason_for(self, record: Any) -> str:
        """Why SQLAlchemy is closing ``record``'s connection, when nobody said so beforehand."""
        because = _closing_because.get()
        if because:
            return because
        pool = self.pool
        started = getattr(record, "starttime", 0.0)
        if pool._recycle > -1 and time.time() - started > pool._recycle:
            return "stale"
        if pool._invalidate_time > started or getattr(record, "_soft_invalidate_time", 0) > started:
            return "invalidated"
        return "manual"

    # -- what the wrappers in .wiring report ------------------------------------------------------

    def waits(self) -> None:
        """The caller found no idle connection and no room to open one: it blocks from now."""
        now = perf_counter()
        _wait_started.set(now)
        with self.events.lock:
            self.waiting += 1
            self._record(now, "wait", 0)

    def wait_over(self) -> None:
        """The blocked caller got a record (or room to open one): its checkout follows."""
        started = _wait_started.get()
        if started is None:
            return
        now = perf_counter()
        _wait_started.set(None)
        _waited.set(now - started)
        with self.events.lock:
            self.waiting -= 1

    def timed_out(self, error: BaseException) -> None:
        now = perf_counter()
        started = _wait_started.get()
        waited = _waited.get()
        _wait_started.set(None)
        _waited.set(0.0)
        with self.events.lock:
            if started is not None:
                self.waiting -= 1
                waited = now - started
            self._record(now, "timeout", 0, wait_s=waited, message=mask_text(str(error)))
        self.deliver()

    def connect_failed(self, error: BaseException) -> None:
        now = perf_counter()
        with self.events.lock:
            self._record(now, "error", 0, reason=type(error).__name__, message=mask_text(str(error)))
        self.deliver()

    def closing(self, reason: str) -> contextvars.Token[str | None]:
        return _closing_because.set(reason)

    @staticmethod
    def closed(token: contextvars.Token[str | None]) -> None:
        _closing_because.reset(token)
