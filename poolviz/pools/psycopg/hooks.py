"""psycopg_pool's threaded pools, overridden to record: each override runs psycopg_pool's code and reports what it did.

``Hooks`` overrides ``getconn``, ``putconn``, ``_get_ready_connection``,
``_maybe_grow_pool``, ``_connect``, ``_add_to_pool``, ``_reset_connection``,
``_close_connection``, ``_shrink_pool``, ``check``, ``drain`` and ``close``;
``NullHooks`` adds ``_maybe_close_connection`` for the null pool. No pool
decision is made here: which caller gets which connection, when a caller
waits or times out, what is closed, all stay psycopg_pool's.

The pool's lock is psycopg_pool's ``RLock`` and the event log's lock: an
override takes it again only around the bookkeeping (never around I/O that
psycopg_pool does without it), so an event sees psycopg_pool's state as it is.
Listeners are called once this thread holds the pool lock no more.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from psycopg.pq import TransactionStatus

from .recorder import Recorder, Request, Scope, current_request, current_scope

IDLE_STATUS = TransactionStatus.IDLE


class Hooks(Recorder):
    """The overrides for ``ConnectionPool``, first in the MRO of the class ``instrument_psycopg`` swaps in."""

    _lock: Any
    _reset: Any

    def _pv_deliver(self) -> None:
        # Listeners are user code: never while this thread holds the pool lock.
        log = self._poolviz_events
        if log.has_listeners and not self._lock._is_owned():
            log.flush()

    def getconn(self, timeout: float | None = None) -> Any:
        request = Request(self._pv_name())
        token = current_request.set(request)
        try:
            conn = self._pv_next_getconn(self, timeout)
        except BaseException as exc:
            with self._lock:
                self._pv_left(request, exc)
            self._pv_deliver()
            raise
        finally:
            current_request.reset(token)
        with self._lock:
            self._pv_checkout(conn, request)
        self._pv_deliver()
        return conn

    def putconn(self, conn: Any) -> None:
        if getattr(conn, "_pool", None) is self:
            self._pv_returning(conn)
        try:
            self._pv_next_putconn(self, conn)
        finally:
            self._pv_deliver()

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # Called with the pool lock held.
        conn = self._pv_next__get_ready_connection(self, timeout)
        if conn is not None:
            with self._lock:
                self._pv_ready(conn)
        return conn

    def _maybe_grow_pool(self) -> None:
        # Called with the pool lock held, right after a caller joined the queue (or from check()).
        self._pv_next__maybe_grow_pool(self)
        if current_request.get() is not None:
            with self._lock:
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
        self._pv_add_to_pool(conn)

    def _pv_add_to_pool(self, conn: Any) -> None:
        # Held around psycopg_pool's own critical section (the lock is reentrant)
        # so the connection is seen where psycopg_pool put it.
        with self._lock:
            self._pv_next__add_to_pool(self, conn)
            self._pv_landed(conn)
        self._pv_deliver()

    def _reset_connection(self, conn: Any) -> None:
        if self._reset is None and conn.pgconn.transaction_status == IDLE_STATUS:
            # Nothing to reset: psycopg_pool closes nothing.
            self._pv_next__reset_connection(self, conn)
            return
        token = current_scope.set(Scope("not_reusable"))
        try:
            self._pv_next__reset_connection(self, conn)
        finally:
            current_scope.reset(token)
        if conn.pgconn.transaction_status == TransactionStatus.UNKNOWN:
            # Dead at its return: psycopg_pool drops it without closing it.
            with self._lock:
                self._pv_dropped(conn)

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

    def check(self) -> None:
        with self._lock:
            checking = self._pv_checking()
        try:
            self._pv_next_check(self)
        finally:
            with self._lock:
                self._pv_checked(checking)
            self._pv_deliver()


class NullHooks(Hooks):
    """``NullConnectionPool`` closes returned connections nobody waits for: ``overflow`` (its steady size is 0)."""

    def _maybe_close_connection(self, conn: Any) -> bool:
        return self._pv_scoped(Scope("overflow", defer=True), self._pv_next__maybe_close_connection, self, conn)  # type: ignore[no-any-return]

    def _add_to_pool(self, conn: Any) -> None:
        self._pv_scoped(Scope("overflow", defer=True), self._pv_add_to_pool, conn)
