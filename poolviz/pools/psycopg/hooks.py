"""psycopg_pool's threaded pools, overridden to record: each override runs psycopg_pool's code and reports what it did.

``Hooks`` overrides ``getconn``, ``putconn``, ``_get_ready_connection``,
``_check_connection``, ``_maybe_grow_pool``, ``_connect``, ``_add_to_pool``,
``_close_connection``, ``_shrink_pool``, ``check``, ``drain`` and ``close``;
``NullHooks`` adds ``_maybe_close_connection`` for the null pool. Each calls
the pool class's own method (``_pv_next_<name>``, see
:func:`~poolviz.pools.psycopg.instrument.instrumented_class`). No pool
decision is made here: which caller gets which connection, when a caller
waits or times out, what is closed, all stay psycopg_pool's.

The pool's lock is psycopg_pool's ``RLock`` and the event log's lock: an
override takes it again only around the bookkeeping (never around I/O that
psycopg_pool does without it), so an event sees psycopg_pool's state as it is.
Listeners are called once this thread holds the pool lock no more.
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import Any

from ...events.store import CHUNK, REUSED
from ..callers import _cache as _thread_names
from ..callers import thread_name
from ..sites import reused_payload
from .recorder import IDLE, NEW, OUT, UNKNOWN, Recorder, Scope, current_scope, in_check


class Hooks(Recorder):
    """The overrides for ``ConnectionPool``, copied into the class ``instrument_psycopg`` swaps in."""

    _lock: Any
    _pv_local: threading.local

    def _pv_site(self) -> Any:
        # Noted by getconn() before psycopg_pool takes its lock: the walk stays out of it.
        return getattr(self._pv_local, "site", REUSED)

    def _pv_deliver(self) -> None:
        # Listeners are user code: never while this thread holds the pool lock.
        if self._pv_listening and not self._lock._is_owned():
            self._poolviz_events.flush()

    def getconn(self, timeout: float | None = None) -> Any:
        started = perf_counter()
        if self._pv_sites:
            self._pv_local.site = reused_payload(2)  # from getconn()'s caller on
        try:
            conn = self._pv_next_getconn(self, timeout)
        except BaseException as exc:
            self._pv_getconn_failed(started, exc)
            raise
        info = self._pv_conns.get(id(conn))
        if info is None or info.state != OUT:
            self._pv_getconn_late(conn, started)
        if self._pv_listening:
            self._pv_deliver()
        return conn

    def _pv_getconn_failed(self, started: float, exc: BaseException) -> None:
        # getconn() raises exc (a timeout, a refusal, ...): recorded, then it goes up to the caller.
        with self._lock:
            self._pv_left(started, exc)
        self._pv_deliver()

    def _pv_getconn_late(self, conn: Any, started: float) -> None:
        # Not recorded when taken: it came from the queue, or passed the check callback.
        with self._lock:
            self._pv_checkout(conn, started)

    def putconn(self, conn: Any) -> None:
        # _pv_returning() inlined for a connection checked out and alive (only its holder touches its record).
        info = self._pv_conns.get(id(conn))
        if info is not None and info.state == OUT and conn.pgconn.transaction_status != UNKNOWN:
            info.returned = perf_counter()
        else:
            self._pv_returning(conn)
        try:
            self._pv_next_putconn(self, conn)
        finally:
            if self._pv_listening:
                self._pv_deliver()

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # Called with the pool lock held.
        conn = self._pv_next__get_ready_connection(self, timeout)
        if conn is None:
            return None
        if self._check is not None:
            self._pv_take(conn)
            return conn
        info = self._pv_conns.get(id(conn))
        if info is None or info.state == NEW or self._pv_waiters or self._pv_leak_threshold is not None:
            self._pv_checkout(conn)  # handed over as it is: checked out now
            return conn
        # _pv_checkout() inlined for the common case: an idle connection, nobody queued, no leak watch.
        now = perf_counter()
        name = _thread_names.name or thread_name()
        info.state = OUT
        info.checked_out = now
        info.returned = None
        info.held_by = name
        checkouts = info.checkouts = info.checkouts + 1
        site = getattr(self._pv_local, "site", REUSED) if self._pv_sites else REUSED
        if checkouts > 1:
            extra: Any = site
        else:
            extra = (0.0, 0.0, False, "", site[4]) if site[4] else None
        idle = len(self._pool)
        record = (now, "checkout", info.serial, name, self._nconns - idle, idle, len(self._waiting), extra)
        self._pv_append(record)
        if len(self._pv_tail) >= CHUNK:
            self._poolviz_events.roll()
        if self._pv_listening:
            self._poolviz_events.hold(record)
        return conn

    def _check_connection(self, conn: Any) -> None:
        try:
            self._pv_next__check_connection(self, conn)
        except Exception:
            with self._lock:
                self._pv_check_failed(conn)
            raise

    def _maybe_grow_pool(self) -> None:
        # Called with the pool lock held, right after a caller joined the queue (or from check()).
        self._pv_next__maybe_grow_pool(self)
        self._pv_wait()

    def _connect(self, timeout: float | None = None) -> Any:
        started = perf_counter()
        try:
            conn = self._pv_next__connect(self, timeout)
        except Exception as exc:
            with self._lock:
                self._pv_connect_failed(exc)
            self._pv_deliver()
            raise
        with self._lock:
            self._pv_opened(conn, started)
        return conn

    def _add_to_pool(self, conn: Any) -> None:
        # Held around psycopg_pool's own critical section (the lock is reentrant)
        # so the connection is seen where psycopg_pool put it.
        lock = self._lock
        lock.acquire()  # (acquire() and release() cost half what a with block does)
        try:
            self._pv_next__add_to_pool(self, conn)
            info = self._pv_conns.get(id(conn))
            pool = self._pool
            if info is None or info.checked_out is None or info.leaked or not pool or pool[-1] is not conn:
                self._pv_landed(conn)
            else:
                # _pv_landed() inlined for the common case: a checked-out connection back idle in the pool.
                checked_out = info.checked_out
                info.checked_out = None
                info.state = IDLE
                idle = len(pool)
                now = perf_counter()
                held = now - ((info.returned or now) - checked_out)  # since: duration_s = now - since (events.store)
                waiting = len(self._waiting)
                record = (now, "checkin", info.serial, info.held_by, self._nconns - idle, idle, waiting, held)
                self._pv_append(record)
                if len(self._pv_tail) >= CHUNK:
                    self._poolviz_events.roll()
                if self._pv_listening:
                    self._poolviz_events.hold(record)
        finally:
            lock.release()
        if self._pv_listening:
            self._pv_deliver()

    def _close_connection(self, conn: Any) -> None:
        with self._lock:
            info, reason = self._pv_closing(conn)
        try:
            self._pv_next__close_connection(self, conn)
        finally:
            if info is not None:
                with self._lock:
                    self._pv_closed(info, reason)
                self._pv_deliver()

    def _pv_scoped(self, scope: Scope, method: Any, *args: Any) -> Any:
        token = current_scope.set(scope)
        try:
            return method(*args)
        finally:
            current_scope.reset(token)
            with self._lock:
                self._pv_flush_scope(scope)
            self._pv_deliver()

    def _shrink_pool(self) -> None:
        self._pv_scoped(Scope("idle"), self._pv_next__shrink_pool, self)

    def drain(self) -> None:
        self._pv_scoped(Scope("all"), self._pv_next_drain, self)

    def close(self, timeout: float = 5.0) -> None:
        self._pv_scoped(Scope("all"), self._pv_next_close, self, timeout)
        if self._pv_watchdog is not None:
            self._pv_watchdog.stop()

    def check(self) -> None:
        with self._lock:
            checking = self._pv_checking()
        token = in_check.set(True)
        try:
            self._pv_next_check(self)
        finally:
            in_check.reset(token)
            with self._lock:
                self._pv_checked(checking)
            self._pv_deliver()


class NullHooks(Hooks):
    """``NullConnectionPool`` closes returned connections nobody waits for: ``overflow`` (its steady size is 0)."""

    def _maybe_close_connection(self, conn: Any) -> bool:
        scope = Scope("overflow", defer=True)
        return self._pv_scoped(scope, self._pv_next__maybe_close_connection, self, conn)  # type: ignore[no-any-return]

    def _add_to_pool(self, conn: Any) -> None:
        self._pv_scoped(Scope("overflow", defer=True), Hooks._add_to_pool, self, conn)
