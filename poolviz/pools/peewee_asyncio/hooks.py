"""The hook-only mixin that records events for peewee's asyncio databases.

peewee's ``AsyncDatabaseMixin`` reaches its pool through four coroutines:
``_create_pool_async``, ``_pool_acquire``, ``_pool_release`` and
``_pool_close`` (called by ``close_pool``). :class:`_AsyncInstrumented`
overrides exactly those, awaits peewee's code for the real work, and records
what happened. No pool decision is made here.

The driver (asyncpg, aiomysql, or peewee's own SQLite queue) opens and closes
connections inside those calls and on its own timers, so after each one the
mixin compares the connections it knows with the driver's (a *sweep*): a new
one is a ``connect``, a missing one a ``close``. The counts on every event
are read from the driver at that moment (see :mod:`poolviz.aio.drivers`), and
``waiting`` counts the tasks that found the pool exhausted and have not yet
left ``_pool_acquire``. A waiting task that is cancelled leaves a ``timeout``
event with reason ``cancelled`` (``acquire_timeout`` expiring leaves one with
no reason), so every ``wait`` ends in a ``checkout`` or a ``timeout``.

Everything between two ``await``\\ s runs without interruption on the event
loop, so the bookkeeping needs no asyncio lock; the event log's lock is taken
only so readers in other threads (the live view) copy a consistent log.
Listeners are called after that lock is released, in the task that caused the
event; a listener that blocks blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import threading
from time import perf_counter
from typing import Any, ClassVar

from ... import checks
from ...credentials import mask_text, secrets_of
from ...events import DEFAULT_CAPACITY, NO_CONN, EventLog
from ...events.store import REUSED, payload
from .. import leaks
from ..callers import task_or_thread_name
from ..sites import check_sites, checkout_payload, reused_payload
from .drivers import DriverView, Known, view_for
from .operations import AsyncOperations

# The name of the task that asked the pool for a connection. Set around the
# driver calls, so a connection the driver opens for that task (on 3.11 inside
# a child task of asyncio.wait_for) is recorded under the caller's name.
_caller: contextvars.ContextVar[_Caller | None] = contextvars.ContextVar("poolviz_aio_caller", default=None)


class _Caller:
    """The task a driver call works for; ``errored`` once a connect error has been recorded for it.

    Also where it asked (its site), and with leak detection on the task itself
    and its stack: read in the asking task, as the driver may run in a child
    task of ``wait_for``.
    """

    __slots__ = ("errored", "name", "origin", "site", "task")

    def __init__(self, name: str, site: Any = REUSED) -> None:
        self.name = name
        #: Where the task asked (poolviz.pools.sites.reused_payload's answer; REUSED: no site).
        self.site = site
        self.errored = False
        self.task: asyncio.Task[Any] | None = None
        self.origin: str | None = None


def task_name() -> str:
    """The current asyncio task's name (the thread's name outside a task)."""
    caller = _caller.get()
    return caller.name if caller is not None else task_or_thread_name()


class _AioConn:
    """What poolviz knows of one driver connection."""

    # Holding the raw connection keeps its id() from being reused while tracked.
    __slots__ = (
        "checked_out",
        "checkouts",
        "holder",
        "idle_since",
        "leaked",
        "name",
        "opened",
        "origin",
        "raw",
        "serial",
    )

    def __init__(self, raw: Any, serial: int, opened: float) -> None:
        self.raw = raw
        self.serial = serial
        self.opened = opened
        self.checked_out: float | None = None
        self.idle_since: float | None = opened
        #: The holding task's name (what its checkin and close events carry).
        self.name = ""
        self.checkouts = 0
        # Filled in only when leak detection is on (see poolviz.pools.leaks).
        self.holder: Any = None
        self.origin = ""
        self.leaked = False


class _AsyncInstrumented(AsyncOperations):
    """Hook-only mixin recording an event for every transition of a peewee asyncio pool."""

    _pv_driver_defaults: ClassVar[dict[str, Any]] = {}

    events: EventLog
    _pool: Any
    _pool_size: int
    _pool_min_size: int
    _acquire_timeout: float | None
    connect_params: dict[str, Any]

    def __init__(
        self,
        database: Any,
        *,
        event_capacity: int = DEFAULT_CAPACITY,
        leak_threshold: float | None = None,
        sites: bool = True,
        **kwargs: Any,
    ) -> None:
        check_async_pool_args(kwargs)
        checks.count("event_capacity", event_capacity)
        leak_threshold = checks.leak_threshold(leak_threshold)
        sites = check_sites(sites)
        kwargs = {**self._pv_driver_defaults, **kwargs}
        super().__init__(database, **kwargs)  # type: ignore[call-arg]
        self._pv_setup(event_capacity, leak_threshold, sites)

    def _pv_setup(self, event_capacity: int, leak_threshold: float | None = None, sites: bool = True) -> None:
        self.events = EventLog(event_capacity, lock=threading.RLock())
        self.leak_threshold = leak_threshold
        # Whether each checkout records its site (poolviz.pools.sites).
        self._pv_sites = sites
        self._pv_watchdog: leaks.LoopWatchdog | None = None
        self._pv_view: DriverView = view_for(self)
        self._pv_conns: dict[int, _AioConn] = {}
        self._pv_serial = itertools.count(1)
        self._pv_waiters: dict[int, float] = {}
        # Seconds each driver connection took to open, when the driver lets poolviz time it.
        self._pv_open_times: dict[int, float] = {}
        # Connections inside a release now: the release records what becomes of them.
        self._pv_releasing: set[int] = set()
        # Set while poolviz closes connections on purpose: "all" (close_pool) or "idle" (resize).
        self._pv_closing: str | None = None
        # Releases now closing their connection because a resize left the pool over its limit.
        self._pv_retiring = 0
        # The driver's pool, from its creation (peewee sets _pool only once creation returns) to its close.
        self._pv_pool: Any = getattr(self, "_pool", None)
        self._pv_describe()

    def _pv_settings(self) -> dict[str, Any]:
        return {
            "driver": self._pv_view.name,
            "max_connections": self._pool_size,
            "pool_min_size": self._pool_min_size,
            "timeout": self._acquire_timeout,
            "stale_timeout": None,
        }

    @property
    def max_connections(self) -> int:
        """The pool's limit (peewee's ``pool_size``), under the name the threaded pools use."""
        return self._pool_size

    @property
    def pool(self) -> Any:
        """The driver's pool (``None`` before the first connection is asked for and after ``close_pool()``)."""
        return self._pool

    def driver_counts(self) -> tuple[int, int]:
        """``(in_use, idle)`` as the driver counts them now: what every event's counts are read from."""
        return self._pv_view.counts(self._pv_pool, len(self._pv_conns))

    def sweep(self) -> None:
        """Record what the driver did on its own since the last event (a timer closing an idle connection)."""
        with self.events.lock:
            self._pv_sweep(self._pv_pool)
        self.events.flush()

    def _pv_full_counts(self) -> tuple[int, int, int]:
        # Every event carries the driver's counts at that moment.
        in_use, idle = self._pv_view.counts(self._pv_pool, len(self._pv_conns))
        return in_use, idle, len(self._pv_waiters)

    def _pv_caller_name(self) -> str:
        return task_name()

    def _pv_sweep(self, pool: Any, handed: Any = None, known: Known | None = None) -> None:
        # With the log's lock held: a driver connection not seen before is a
        # connect, a tracked one the driver no longer has is a close. `handed`
        # (being checked out now) and connections inside a release are left
        # to the hook handling them. `known`: the driver's connections, when
        # the caller has just read them (nothing awaited since).
        view = self._pv_view
        if known is None:
            known = view.known(pool)
        conns = self._pv_conns
        # The usual case, compared as sets in C: the driver has exactly the connections poolviz tracks.
        if known.keys() == conns.keys():
            return
        releasing = self._pv_releasing
        gone = [
            (key, info)
            for key, info in conns.items()
            if key not in known
            and info.raw is not handed
            and key not in releasing
            # peewee's SQLite queue forgets the connections it hands out: only a closed one is gone.
            and (view.tracks_in_use or view.is_closed(info.raw))
        ]
        reasons = [self._pv_closing or view.gone_reason(pool, info.raw, info.idle_since) for _key, info in gone]
        # Forgotten together, so each close carries the counts of the pool as it now is.
        for key, _info in gone:
            del conns[key]
        for (key, info), reason in zip(gone, reasons, strict=True):
            self._pv_closed(key, info, reason)
        for key, (raw, _idle) in known.items():
            if key not in conns and raw is not handed:
                self._pv_track(raw)

    def _pv_track(self, raw: Any, record: bool = True) -> _AioConn:
        info = self._pv_conns[id(raw)] = _AioConn(raw, next(self._pv_serial), perf_counter())
        took = self._pv_open_times.pop(id(raw), 0.0)
        if record:
            self._pv_event("connect", info.serial, payload(duration_s=took))
        return info

    def _pv_forget(self, key: int, reason: str) -> None:
        self._pv_closed(key, self._pv_conns.pop(key), reason)

    def _pv_closed(self, key: int, info: _AioConn, reason: str) -> None:
        # Record the close of a connection no longer tracked.
        self._pv_open_times.pop(key, None)
        now = perf_counter()
        holder = info.name if info.checked_out is not None else None
        if info.leaked and info.checked_out is not None:
            self._pv_unleak(info, now)
        self._pv_event("close", info.serial, payload(duration_s=now - info.opened, reason=reason), now, holder)

    def _pv_error(self, exc: BaseException) -> None:
        caller = _caller.get()
        if caller is not None:
            if caller.errored:
                return
            caller.errored = True
        message = mask_text(str(exc), secrets_of(self.connect_params))
        with self.events.lock:
            self._pv_event("error", NO_CONN, payload(reason=type(exc).__name__, message=message))
        self.events.flush()

    async def _acquire_conn_async(self) -> Any:
        # peewee creates the pool on first use inside asyncio.wait_for (a child
        # task on Python 3.11): name what happens there after the asking task.
        caller = _Caller(task_name(), reused_payload(2) if self._pv_sites else REUSED)
        if self.leak_threshold is not None:
            caller.task = asyncio.current_task()
            caller.origin = leaks.origin_summary()
        token = _caller.set(caller)
        try:
            return await super()._acquire_conn_async()  # type: ignore[misc]
        finally:
            _caller.reset(token)

    async def _create_pool_async(self) -> Any:
        started = perf_counter()
        try:
            pool = await super()._create_pool_async()  # type: ignore[misc]
        except Exception as exc:
            self._pv_error(exc)
            raise
        self._pv_pool = pool
        self._pv_view.watch_waits(pool, self._pv_waits)
        # Drivers that poolviz cannot time per connection opened these one after another: share the time out.
        fresh = [
            key for key in self._pv_view.known(pool) if key not in self._pv_conns and key not in self._pv_open_times
        ]
        for key in fresh:
            self._pv_open_times[key] = (perf_counter() - started) / len(fresh)
        with self.events.lock:
            self._pv_sweep(pool)
        self.events.flush()
        return pool

    def _pv_waits(self) -> None:
        # Called by the driver's pool (see DriverView.watch_waits) as a caller
        # is about to block, possibly in a child task of asyncio.wait_for.
        caller = _caller.get()
        if caller is None or self._pv_closing == "all" or id(caller) in self._pv_waiters:
            return
        with self.events.lock:
            self._pv_waiters[id(caller)] = perf_counter()
            self._pv_event("wait", thread=caller.name)
        self.events.flush()

    async def _pool_acquire(self, pool: Any) -> Any:
        caller = _caller.get()
        # Set by _acquire_conn_async on peewee's path; set here only for a direct call.
        token = None
        if caller is None:
            caller = _Caller(task_name(), reused_payload(2) if self._pv_sites else REUSED)
            token = _caller.set(caller)
        name = caller.name
        key = id(caller)
        started = perf_counter()
        try:
            conn = await super()._pool_acquire(pool)  # type: ignore[misc]
        except asyncio.TimeoutError:
            with self.events.lock:
                self._pv_waiters.pop(key, None)
                self._pv_sweep(pool)
                self._pv_event("timeout", NO_CONN, payload(wait_s=perf_counter() - started), thread=name)
            self.events.flush()
            raise
        except BaseException as exc:
            # A task cancelled while waiting leaves without a connection: a
            # timeout with reason "cancelled". A driver failure is an error event.
            with self.events.lock:
                waited_since = self._pv_waiters.pop(key, None)
                self._pv_sweep(pool)
                if waited_since is not None and isinstance(exc, asyncio.CancelledError):
                    gave_up = payload(wait_s=perf_counter() - started, reason="cancelled")
                    self._pv_event("timeout", NO_CONN, gave_up, thread=name)
            self.events.flush()
            if isinstance(exc, Exception):
                self._pv_error(exc)
            raise
        finally:
            if token is not None:
                _caller.reset(token)
        raw = self._pv_view.raw(conn)
        now = perf_counter()
        with self.events.lock:
            waited_since = self._pv_waiters.pop(key, None)
            self._pv_sweep(pool, raw)
            info = self._pv_conns.get(id(raw))
            if info is None:
                info = self._pv_track(raw)
            reused = info.checkouts > 0
            info.checkouts += 1
            info.checked_out = now
            info.idle_since = None
            info.name = name
            waited = now - waited_since if waited_since is not None else 0.0
            self._pv_event("checkout", info.serial, checkout_payload(caller.site, reused, waited), now, name)
            if self.leak_threshold is not None:
                self._pv_watch(info, caller)
        self.events.flush()
        return conn

    async def _pool_release(self, conn: Any) -> None:
        view = self._pv_view
        raw = view.raw(conn) if conn is not None else None
        key = id(raw)
        info = self._pv_conns.get(key) if raw is not None else None
        if info is None:
            await super()._pool_release(conn)  # type: ignore[misc]
            return
        # Dead before the release (the server killed it): broken; closed by it: the driver refused it;
        # closed because a resize left the pool over its limit: idle.
        reason = "broken" if view.is_closed(raw) else "not_reusable"
        over = reason != "broken" and self._pv_over_limit()
        if over:
            reason = "idle"
            self._pv_retiring += 1
        self._pv_releasing.add(key)
        try:
            if not (over and await view.retire(self._pool, conn, raw)):
                await super()._pool_release(conn)  # type: ignore[misc]
        finally:
            self._pv_releasing.discard(key)
            self._pv_retiring -= over
            pool = self._pool
            with self.events.lock:
                # Read the driver's connections once for the check and the sweep after it.
                known = view.known(pool)
                if self._pv_conns.get(key) is info:
                    if view.is_closed(raw) or (view.tracks_in_use and key not in known):
                        self._pv_forget(key, self._pv_closing or reason)
                    elif info.checked_out is not None:
                        now = perf_counter()
                        since = info.checked_out
                        if info.leaked:
                            self._pv_unleak(info, now)
                        info.checked_out = None
                        info.idle_since = now
                        self._pv_event("checkin", info.serial, since, now, info.name)
                self._pv_sweep(pool, known=known)
            self.events.flush()
        if over and self._pv_over_limit():
            await self._pv_fit()  # asyncpg kept it idle: close the idle surplus

    async def _pool_close(self) -> None:
        self._pv_stop_watchdog()
        self._pv_closing = "all"
        try:
            await super()._pool_close()  # type: ignore[misc]
        finally:
            with self.events.lock:
                # The driver's pool is closed: whatever poolviz still tracks went with it.
                for key in list(self._pv_conns):
                    self._pv_forget(key, "all")
                self._pv_closing = None
                self._pv_pool = None
            self.events.flush()

    def _pv_adopt(self) -> None:
        # instrument() on a database whose pool is open: serials without events.
        if self._pv_pool is not None:
            self._pv_view.watch_waits(self._pv_pool, self._pv_waits)
        for raw, idle in self._pv_view.known(self._pool).values():
            info = self._pv_track(raw, record=False)
            if not idle:
                info.checked_out = info.opened
                info.checkouts = 1
                info.name = "?"


def check_async_pool_args(kwargs: dict[str, Any]) -> None:
    """Check (and put in canonical form, in place) peewee's ``pool_size``, ``pool_min_size``, ``acquire_timeout``."""
    from ... import checks

    if "pool_size" in kwargs:
        kwargs["pool_size"] = checks.count("pool_size", kwargs["pool_size"])
    if "pool_min_size" in kwargs:
        value = kwargs["pool_min_size"]
        kwargs["pool_min_size"] = (
            0 if value in (0, "0") and not isinstance(value, bool) else checks.count("pool_min_size", value)
        )
    if "acquire_timeout" in kwargs:
        kwargs["acquire_timeout"] = checks.seconds(
            "acquire_timeout", kwargs["acquire_timeout"], positive=True, none_allowed=True
        )
    size, low = kwargs.get("pool_size", 10), kwargs.get("pool_min_size", 1)
    if low > size:
        raise ValueError(f"pool_min_size must be at most pool_size ({size}), got {low}")
