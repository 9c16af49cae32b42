"""What poolviz knows of one SQLAlchemy pool: its connections, its counts, and how each transition is recorded.

:mod:`.wiring` calls :class:`PoolObserver`'s methods from SQLAlchemy's own
pool events (``connect``, ``invalidate``, ``soft_invalidate``, ``close``,
``detach``) and from the entry points it wraps (a checkout, a checkin, a
caller that blocks, a timeout, a connect that failed, why a connection
closed). Either way the pool does exactly what it would do without poolviz.

Counts follow poolviz's vocabulary: ``in_use`` is connections handed to
callers, ``idle`` open connections waiting in the pool, ``waiting`` callers
blocked for one. SQLAlchemy's ``checkedin()`` also counts a record whose
connection was invalidated and is not yet reopened; poolviz's ``idle`` does
not (no connection is open), so ``idle == checkedin()`` minus those records.
"""

from __future__ import annotations

import contextvars
import itertools
import sys
import time
from collections.abc import Callable
from time import perf_counter
from typing import Any

from sqlalchemy import exc as sa_exc

from ...credentials import mask_text
from ...events import EventLog
from ...events.store import CHUNK, REUSED
from ..busypath import compiled
from ..callers import _cache as _thread_names
from ..callers import task_or_thread_name, thread_name
from ..leaks import origin_summary
from ..sites import _library as _library_codes
from ..sites import _lines as _app_lines
from ..sites import reused_payload
from .leaks import LeakWatch

# Per caller (thread, task or greenlet: each has its own context), while it waits.
_wait_started: contextvars.ContextVar[float | None] = contextvars.ContextVar("poolviz_sqla_wait", default=None)
_waited: contextvars.ContextVar[float] = contextvars.ContextVar("poolviz_sqla_waited", default=0.0)
# Why connections close while one of the pool's own methods runs (dispose, a return that overflows).
_closing_because: contextvars.ContextVar[str | None] = contextvars.ContextVar("poolviz_sqla_closing", default=None)


class Section:
    """The log's lock, counting its holders in ``busy``: the compiled busy path records only while nobody holds it.

    The compiled checkout and check-in (:mod:`poolviz.pools.busypath`) take no
    lock: each runs whole between two bytecodes of any other thread. Python
    code that moves the counts runs many bytecodes, holding the lock; ``busy``
    tells the compiled path to leave it to the Python, which then waits for
    the lock as before.
    """

    __slots__ = ("_lock", "busy")

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self.busy = [0]

    def __enter__(self) -> None:
        self._lock.acquire()
        self.busy[0] += 1

    def __exit__(self, *exc: object) -> None:
        self.busy[0] -= 1
        self._lock.release()


class PoolObserver:
    """Records one SQLAlchemy pool's transitions into its :class:`~poolviz.events.EventLog`."""

    def __init__(self, pool: Any, events: EventLog, *, sites: bool = True, leak_threshold: float | None = None) -> None:
        self.pool = pool
        self.events = events
        #: Whether each checkout records its site (poolviz.pools.sites).
        self.sites = sites
        self.name_of_caller = task_or_thread_name if pool._is_asyncio else thread_name
        self._serials = itertools.count(1)
        self.serial_of: dict[int, int] = {}  # id(driver connection) -> poolviz serial
        self._opened_at: dict[int, float] = {}  # serial -> perf_counter() when opened
        self._held_since: dict[int, float] = {}  # serial -> perf_counter() at checkout
        self._fresh: set[int] = set()  # opened and not yet handed out
        self._close_reason: dict[int, str] = {}  # serial -> reason decided before SQLAlchemy closes it
        self.counts = [0, 0, 0]  # in_use, idle, waiting: one list, shared with the hot path's closures
        #: Hold it to move the counts or record (the log's lock, see Section).
        self.section = Section(events.lock)
        self._waited = [0]  # callers whose wait is over and not yet on their checkout (see wait_over)
        #: With ``leak_threshold``: the connections held now, as the leak watchdog reads them.
        self.leak_watch: LeakWatch | None = None
        if leak_threshold is not None:
            self.leak_watch = LeakWatch(events, leak_threshold, self.counts, pool._is_asyncio)

    # -- adopting what the pool already holds --------------------------------------------------

    def adopt(self, idle_records: list[Any], checked_out: int) -> None:
        """Count what the pool held before it was instrumented, without events.

        Idle connections get serials now; the ``checked_out`` ones (SQLAlchemy
        keeps no list of them) are counted as in use and get theirs when they
        come back.
        """
        now = perf_counter()
        with self.section:
            for record in idle_records:
                conn = record.dbapi_connection
                if conn is None or id(conn) in self.serial_of:
                    continue
                serial = next(self._serials)
                self.serial_of[id(conn)] = serial
                self._opened_at[serial] = now
                self.counts[1] += 1
            self.counts[0] += checked_out

    # -- recording -----------------------------------------------------------------------------

    def _record(self, now: float, kind: str, conn: int, **payload: Any) -> None:
        # Callers hold self.section, so the counts and the event agree. ``now`` is the
        # reading the caller's durations were taken from; the log stamps its own.
        in_use, idle, waiting = self.counts
        self.events.record(kind, conn, self.name_of_caller(), in_use, idle, waiting, **payload)

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
        with self.section:
            self.serial_of[id(dbapi_connection)] = serial
            self._opened_at[serial] = now
            self._fresh.add(serial)
            self.counts[1] += 1
            self._record(now, "connect", serial, duration_s=opened_for)
        self.deliver()

    def busy_path(
        self, original_connect: Callable[..., Any], original_return: Callable[[Any], None], depth: int = 2
    ) -> tuple[Callable[..., Any], Callable[[Any], None]]:
        """``pool.connect`` and ``pool._return_conn`` wrapped: each calls the original and records its event.

        Every checkout and checkin calls them. The usual ones are recorded in C when
        :mod:`poolviz.pools.busypath` was built; the rest, or all without it, by one flat
        function each with its state in closure cells, appending a lean record
        (:mod:`poolviz.events.store`) to the log's tail under the log's lock, the payload
        compact (``None``, a reused checkout's cached payload with its site, or a check-in's
        checkout time). A checkout reads its wait only when one was noted. ``depth``: where
        the site's walk starts (2: the wrapper's caller). Given a fairy, ``connect`` records
        its checkout without calling the original (SingletonThreadPool).
        """
        fast = self._compiled_busy_path(depth)
        fast_checkout = fast.checkout if fast is not None else None
        fast_checkin = fast.checkin if fast is not None else None
        connect = self._checkout_hook(original_connect, depth, fast_checkout)
        return connect, self._checkin_hook(original_return, fast_checkin)

    def _checkout_hook(
        self, original_connect: Callable[..., Any], depth: int, fast_checkout: Callable[[Any], bool] | None
    ) -> Callable[..., Any]:
        """``pool.connect`` wrapped (see :meth:`busy_path`); ``fast_checkout``: the compiled usual case, if any."""
        events = self.events
        lock, tail, roll, hold, flush = events.lock, events.tail, events.roll, events.hold, events.flush
        append = tail.append
        held_since, fresh, counts, waited = self._held_since, self._fresh, self.counts, self._waited
        section, busy = self.section, self.section.busy
        sites, watch, timed_out = self.sites, self.leak_watch, self.timed_out
        get_serial, listening, names = self.serial_of.get, events.__dict__, _thread_names
        asyncio_pool = bool(self.pool._is_asyncio)

        # What only this caller touches (its connection's serial and hold, where it asked) is
        # worked out outside the lock; the counts and the event, which other callers move too, inside it.
        def connect(given: Any = None) -> Any:
            if given is None:
                try:
                    fairy = original_connect()
                except sa_exc.TimeoutError as error:
                    timed_out(error)
                    raise
            else:  # SingletonThreadPool's wrapper got it, and it is a checkout
                fairy = given
            if fast_checkout is not None and fast_checkout(fairy.dbapi_connection):
                return fairy
            now = perf_counter()
            extra: Any = reused_payload(depth) if sites else REUSED
            serial = get_serial(id(fairy.dbapi_connection), 0)
            held_since[serial] = now
            if serial in fresh:  # its first checkout
                fresh.discard(serial)
                extra = (0.0, 0.0, False, "", extra[4]) if extra[4] else None
            if waited[0]:  # someone's wait is over: was it this caller's?
                wait_s = _waited.get()
                if wait_s:
                    _waited.set(0.0)
                    site = extra[4] if extra is not None else ""
                    extra = (wait_s, 0.0, extra is not None and extra[2], "", site)
                    with section:
                        waited[0] -= 1
            name = task_or_thread_name() if asyncio_pool else names.name or thread_name()
            origin = origin_summary() if watch is not None else None  # the stack walked outside the lock
            lock.acquire()  # (acquire() and release() cost half what a with block does)
            busy[0] += 1
            try:
                counts[0] += 1
                counts[1] -= 1
                record = (now, "checkout", serial, name, counts[0], counts[1], counts[2], extra)
                append(record)
                if len(tail) >= CHUNK:
                    roll()
                if origin is not None:
                    watch.checked_out(serial, now, origin)  # type: ignore[union-attr]
                deliver = listening["_listeners"]
                if deliver:
                    hold(record)
            finally:
                busy[0] -= 1
                lock.release()
            if deliver:
                flush()
            return fairy

        return connect

    def _checkin_hook(
        self, original_return: Callable[[Any], None], fast_checkin: Callable[[Any], bool] | None
    ) -> Callable[[Any], None]:
        """``pool._return_conn`` wrapped (see :meth:`busy_path`); ``fast_checkin``: the compiled usual case, if any."""
        events = self.events
        lock, tail, roll, hold, flush = events.lock, events.tail, events.roll, events.hold, events.flush
        append = tail.append
        serial_of, held_since, counts = self.serial_of, self._held_since, self.counts
        section, busy = self.section, self.section.busy
        serials, watch = self._serials, self.leak_watch
        get_serial, listening, names = serial_of.get, events.__dict__, _thread_names
        asyncio_pool = bool(self.pool._is_asyncio)

        def return_conn(record: Any) -> None:
            dbapi_connection = record.dbapi_connection
            if dbapi_connection is None or (fast_checkin is not None and fast_checkin(dbapi_connection)):
                pass  # None: invalidated while out, its close was recorded then
            else:
                now = perf_counter()
                serial = get_serial(id(dbapi_connection), 0)
                if not serial:  # out since before instrument(): it gets its serial now
                    with section:
                        serial = serial_of[id(dbapi_connection)] = next(serials)
                        self._opened_at[serial] = now
                since = held_since.pop(serial, now)
                name = task_or_thread_name() if asyncio_pool else names.name or thread_name()
                lock.acquire()
                busy[0] += 1
                try:
                    if watch is not None:
                        watch.returned(serial, now)
                    counts[0] -= 1
                    counts[1] += 1
                    event = (now, "checkin", serial, name, counts[0], counts[1], counts[2], since)
                    append(event)
                    if len(tail) >= CHUNK:
                        roll()
                    deliver = listening["_listeners"]
                    if deliver:
                        hold(event)
                finally:
                    busy[0] -= 1
                    lock.release()
                if deliver:
                    flush()
            original_return(record)  # a connection the pool does not keep is closed in here: reason "overflow"

        return return_conn

    def _compiled_busy_path(self, depth: int) -> Any:
        """The usual checkout and check-in in C (:mod:`poolviz.pools.busypath`): the same records, or "not mine".

        None when not built, or with a leak watch (whose every checkout the Python records).
        """
        if compiled is None or self.leak_watch is not None:
            return None
        events, section = self.events, self.section
        tail, roll = events.tail, events.roll

        def roll_when_full() -> None:
            with section:
                if len(tail) >= CHUNK:
                    roll()

        return compiled.SQLAlchemyBusyPath(
            tail=tail, serial_of=self.serial_of, held_since=self._held_since, fresh=self._fresh, waited=self._waited,
            counts=self.counts, busy=section.busy, listening=events.listening, thread_name=thread_name,
            library=_library_codes, lines=_app_lines, reused=REUSED, reused_payload=reused_payload,
            roll=roll_when_full, chunk=CHUNK, depth=depth - 1, sites=self.sites, asyncio=bool(self.pool._is_asyncio),
        )  # fmt: skip

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
        with self.section:
            serial = self.serial_of.pop(id(dbapi_connection), 0)
            if not serial:
                return
            if self._held_since.pop(serial, None) is not None:
                if self.leak_watch is not None:
                    self.leak_watch.returned(serial, now)
                self.counts[0] -= 1
            else:
                self.counts[1] -= 1
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
        if _inside(self.pool, "_do_return_conn"):  # a check-in the pool did not keep (queue full, NullPool)
            return "overflow"
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
        with self.section:
            self.counts[2] += 1
            self._record(now, "wait", 0)

    def wait_over(self) -> None:
        """The blocked caller got a record (or room to open one): its checkout follows."""
        started = _wait_started.get()
        if started is None:
            return
        now = perf_counter()
        _wait_started.set(None)
        _waited.set(now - started)
        with self.section:
            self.counts[2] -= 1
            self._waited[0] += 1

    def timed_out(self, error: BaseException) -> None:
        now = perf_counter()
        started = _wait_started.get()
        waited = _waited.get()
        _wait_started.set(None)
        _waited.set(0.0)
        with self.section:
            if waited:
                self._waited[0] -= 1
            if started is not None:
                self.counts[2] -= 1
                waited = now - started
            elif not waited:
                # Found the pool full and gave up without blocking (a timeout of 0: the threaded
                # queue's get never waits on its condition then): its wait, as it began and ended.
                self.counts[2] += 1
                self._record(now, "wait", 0)
                self.counts[2] -= 1
            self._record(now, "timeout", 0, wait_s=waited, message=mask_text(str(error)))
        self.deliver()

    def connect_failed(self, error: BaseException) -> None:
        now = perf_counter()
        with self.section:
            self._record(now, "error", 0, reason=type(error).__name__, message=mask_text(str(error)))
        self.deliver()

    def closing(self, reason: str) -> contextvars.Token[str | None]:
        return _closing_because.set(reason)

    @staticmethod
    def closed(token: contextvars.Token[str | None]) -> None:
        _closing_because.reset(token)


def _inside(pool: Any, method: str) -> bool:
    """Whether ``pool.<method>`` is running in this thread (read off the stack: closes are rare)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == method and frame.f_locals.get("self") is pool:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False
