"""peewee's pool hooks, overridden: peewee does the work, and every transition it makes is recorded.

``PoolHooks`` overrides only peewee's own hooks (``connect``, ``_connect``,
``_close``, ``_close_raw``, ``_is_stale``), calls peewee's code for the real
work and records what it did. No pool decision is made here, so reuse order,
exceptions, stale handling and rollback on check-in stay peewee's.

No counts are kept on the hot path: each event records the change it makes
to ``in_use``, ``idle`` and ``waiting`` (a check-in: one fewer in use, one
more idle), and the log works the counts out when read, so they agree with
the event stream by construction; when the pool is quiet they equal peewee's
own ``len(_in_use)`` and ``len(_connections)``. The usual checkout and
check-in (*plain*: no leak watch, no resize under way) append their record to
the log themselves; everything else goes through ``_pv_event``
(:mod:`poolviz.pools.recording`), which the asyncio pools share.

Events are recorded under the pool lock and delivered to listeners after it
is released (see ``delivery``). Attributes added to peewee's object start
with ``_pv_`` so they never collide with peewee's own.
"""

from __future__ import annotations

import threading
from threading import get_ident
from time import monotonic, perf_counter
from typing import Any

from playhouse.pool import MaxConnectionsExceeded

from ...credentials import mask_text, secrets_of
from ...events import NO_CONN, EventLog
from ...events.store import (
    BACK,
    CHUNK,
    CLOSED_IDLE,
    CLOSED_IN_USE,
    OPENED_OUT,
    REUSED,
    REUSED_OUT,
    REUSED_OUT_WAITED,
    STOPS_WAITING,
    WAITS,
    payload,
)
from .. import leaks
from ..callers import ThreadNameCache
from ..recording import EventRecorder
from ..sites import checkout_payload, reused_payload
from . import resize
from .delivery import deliver
from .tracker import CloseContext, Tracked

_current_thread = threading.current_thread


class PoolHooks(EventRecorder):
    """The overrides of peewee's pool hooks; :class:`~poolviz.pool.instrumented.Instrumented` sets up their state."""

    _pv_next_open: Any
    _pv_base_open: Any
    _pv_next_connect: Any
    _pv_next_close: Any
    _pv_next_is_stale: Any
    _pv_name: ThreadNameCache
    _pv_close: CloseContext
    _pv_append: Any
    _pv_tail: list[Any]
    _pv_listening: bool
    _pv_plain: bool
    _pv_sites: bool
    _pv_resync: bool
    _pv_conns: dict[int, Tracked]
    _pv_serial: Any
    _pv_waiters: dict[int, float]
    _pv_over_limit: bool
    _pv_watchdog: leaks.ThreadWatchdog | None
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

    def _pv_thread_name(self) -> str:
        local = self._pv_name
        name = local.name
        if name is None:
            name = local.name = _current_thread().name
        return name

    def _pv_replan(self) -> None:
        """Decide whether checkouts and check-ins may take the plain path. Hold the pool lock.

        Plain means no leak watch, no resize in progress and the counts need
        no resync: then an event is appended to the log with the change it
        makes to the counts (and held for the listeners, if any). (Callers waiting do
        not count: only their own checkout differs, and it checks for itself,
        so a busy pool's other checkouts and check-ins stay plain.)
        """
        self._pv_plain = not (self.leak_threshold is not None or self._pv_over_limit or self._pv_resync)

    def _pv_counts(self) -> tuple[int, int, int]:
        """``(in_use, idle, waiting)`` by poolviz's tracking. Hold the pool lock; off the hot path only."""
        in_use = sum(info.checked_out is not None for info in self._pv_conns.values())
        return in_use, len(self._pv_conns) - in_use, len(self._pv_waiters)

    def _pv_full_counts(self) -> tuple[int, int, int] | None:
        # Full counts only after a change no event showed (a waiting caller who
        # left without a connection, or dispose()); otherwise each event's change.
        if not self._pv_resync:
            return None
        self._pv_resync = False
        self._pv_replan()
        return self._pv_counts()

    def _pv_caller_name(self) -> str:
        return self._pv_thread_name()

    def connect(self, reuse_if_open: bool = False) -> bool:
        # _connect() records checkouts; this level only sees a waiting caller
        # leave without one: by timing out, or by a driver error or an interrupt.
        base_open = self._pv_base_open
        if base_open is None:  # a subclass has its own connect(): call it and watch
            try:
                return self._pv_next_open(self, reuse_if_open)  # type: ignore[no-any-return]
            except BaseException as exc:
                if self._pv_waiters and get_ident() in self._pv_waiters:
                    self._pv_stop_waiting(timed_out=isinstance(exc, MaxConnectionsExceeded))
                raise
        # peewee's own PooledDatabase.connect, line for line, so that watching
        # for a caller who gives up costs no extra call on every checkout.
        if not self._wait_timeout:
            return base_open(self, reuse_if_open)  # type: ignore[no-any-return]
        deadline = monotonic() + self._wait_timeout
        while True:
            try:
                try:
                    return base_open(self, reuse_if_open)  # type: ignore[no-any-return]
                except MaxConnectionsExceeded:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        # Chained to the last refusal, exactly as peewee raises it.
                        raise MaxConnectionsExceeded("Max connections exceeded, timed out attempting to connect.")  # noqa: B904
                with self._pool_available:
                    self._pool_available.wait(timeout=min(remaining, 1.0))
            except BaseException as exc:
                if self._pv_waiters and get_ident() in self._pv_waiters:
                    self._pv_stop_waiting(timed_out=isinstance(exc, MaxConnectionsExceeded))
                raise

    def _pv_stop_waiting(self, timed_out: bool) -> None:
        with self._pool_lock:
            started = self._pv_waiters.pop(get_ident(), None)
            if started is not None:
                if timed_out:
                    now = perf_counter()
                    extra = payload(wait_s=now - started)
                    self._pv_event("timeout", NO_CONN, extra, now, change=STOPS_WAITING)
                else:
                    # It leaves without an event: the next one carries the full counts.
                    self._pv_resync = True
                    self._pv_plain = False
        deliver(self)

    def _connect(self) -> Any:
        # Whatever can be done before taking the pool lock is: every other caller waits while it is held.
        name = self._pv_name.name or self._pv_thread_name()
        # Where the application asked: a cached payload per call site (poolviz.pools.sites),
        # looked for from this method's caller on (depth 2: this frame is known to be the pool's).
        site = reused_payload(2) if self._pv_sites else REUSED
        try:
            with self._pool_lock:
                # One clock reading serves the usual checkout: taken holding the
                # lock, it stamps the checkout no earlier than any event before it.
                start = perf_counter()
                connections = self._connections
                idle = len(connections)
                try:
                    conn = self._pv_next_connect(self)
                except MaxConnectionsExceeded:
                    if idle:  # peewee found idle connections dead before giving up
                        self._pv_reconcile(None)
                    self._pv_full()
                    raise
                except Exception as exc:
                    self._pv_failed(exc)
                    raise
                info = self._pv_conns.get(id(conn))
                if (
                    info is not None
                    and self._pv_plain
                    and len(connections) == idle - 1
                    and not (self._pv_waiters and get_ident() in self._pv_waiters)
                ):
                    # The usual checkout: an idle connection handed out at once, nothing to watch.
                    info.checked_out = start
                    record = (start, "checkout", info.serial, name, REUSED_OUT, site)
                    self._pv_append(record)
                    if self._pv_listening:
                        self.events.hold(record)
                else:
                    self._pv_checkout(conn, info, start, idle - (info is not None) != len(connections), site)
                return conn
        finally:
            # Also after a wait, a timeout or an error: those are events too.
            if self._pv_listening:
                deliver(self)

    def _pv_checkout(self, conn: Any, info: Tracked | None, start: float, dropped: bool, site: Any) -> None:
        # Every other checkout: a new connection, idle ones peewee dropped (`dropped`),
        # a caller who waited, a leak watch, listeners. `site`: reused_payload()'s answer.
        now = perf_counter()
        if dropped:
            self._pv_reconcile(conn)
        if info is None:
            info = Tracked(conn, next(self._pv_serial), now, now)
            # Tracked only after its connect event, whose counts are those before the checkout.
            self._pv_event("connect", info.serial, payload(duration_s=now - start), now)
            self._pv_conns[id(conn)] = info
            reused = False
        else:
            info.checked_out = now
            reused = True
        change = REUSED_OUT if reused else OPENED_OUT
        waited = 0.0
        if self._pv_waiters:
            started = self._pv_waiters.pop(get_ident(), None)
            if started is not None:
                waited = now - started
                change += REUSED_OUT_WAITED - REUSED_OUT
        self._pv_event("checkout", info.serial, checkout_payload(site, reused, waited), now, change=change)
        if self.leak_threshold is not None:
            self._pv_watch(info)

    def _pv_failed(self, exc: Exception) -> None:
        # Opening a driver connection failed: an error event, its message without credentials.
        self._pv_reconcile(None)
        message = mask_text(str(exc), secrets_of(self.connect_params))
        self._pv_event("error", NO_CONN, payload(reason=type(exc).__name__, message=message))

    def _pv_watch(self, info: Tracked) -> None:
        leaks.note_holder(info, _current_thread())
        watchdog = self._pv_watchdog
        if watchdog is None:
            watchdog = self._pv_watchdog = leaks.ThreadWatchdog(self, deliver)
        watchdog.ensure_running()

    def _pv_reconcile(self, returned: Any) -> None:
        # peewee pops idle connections it finds dead (``_is_closed``) and drops
        # them without closing; any idle connection we track that is no longer
        # in the heap, and is not the one being handed out, went that way.
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
            self._pv_waiters[get_ident()] = now = perf_counter()
            self._pv_event("wait", NO_CONN, None, now, change=WAITS)

    def _close(self, conn: Any, close_conn: bool = False) -> None:
        name = self._pv_name.name or self._pv_thread_name()  # before the lock, as in _connect
        with self._pool_lock:
            info = self._pv_conns.get(id(conn))
            if close_conn:
                self._pv_scoped("manual", self._pv_next_close, self, conn, True)
            else:
                self._pv_next_close(self, conn, False)
            # Checked out until now, and peewee took it back without closing it (a
            # close forgets it, see _pv_forget; peewee ignores a connection it has not
            # handed out, and so does poolviz): it went back to the heap.
            since = info.checked_out if info is not None else None
            if info is not None and since is not None:
                now = perf_counter()
                info.checked_out = None
                if self._pv_plain:
                    # The checkout's clock reading: duration_s = now - since, worked out when read.
                    record = (now, "checkin", info.serial, name, BACK, since)
                    self._pv_append(record)
                    if len(self._pv_tail) >= CHUNK:
                        self.events.roll()
                    if not self._pv_listening:
                        return  # plain: no resize to finish, nobody to tell
                    self.events.hold(record)
                else:
                    if info.leaked:
                        self._pv_unleak(info, now, since)
                    self._pv_event("checkin", info.serial, since, now, change=BACK)
            if self._pv_over_limit:
                resize.trim(self)
        if self._pv_listening:
            deliver(self)

    def _close_raw(self, conn: Any) -> None:
        # In use by poolviz's count, yet no longer in peewee's: peewee is checking it in (or a scope closes it).
        info = self._pv_conns.get(id(conn))
        checking_in = info is not None and info.checked_out is not None and id(conn) not in self._in_use
        reason = self._pv_close.reason(checking_in)
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
            change = CLOSED_IDLE
        else:
            if info.leaked:
                self._pv_unleak(info, now, info.checked_out)
            change = CLOSED_IN_USE
            info.checked_out = None  # so a check-in that closed it records no checkin
        extra = payload(duration_s=now - info.opened, reason=reason)
        self._pv_event("close", info.serial, extra, now, change=change)

    def _pv_unleak(self, info: Tracked, now: float, since: float) -> None:
        info.leaked = False
        self._pv_leak_event("unleak", info, now, "", since)

    def _pv_leak_event(self, kind: str, info: Tracked, now: float, reason: str, since: float) -> None:
        # leak and unleak name the holder, not the thread that noticed. Hold the pool lock.
        extra = payload(duration_s=now - since, reason=reason, message=info.origin)
        self._pv_event(kind, info.serial, extra, now, thread=leaks.holder_name(info.holder))

    def _is_stale(self, timestamp: float) -> bool:
        stale: bool = self._pv_next_is_stale(self, timestamp)
        if stale:
            self._pv_close.stale = True
        return stale

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
