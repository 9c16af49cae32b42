"""psycopg_pool's asyncio pools, overridden to record: the same overrides as :mod:`.hooks`, awaited.

psycopg_pool writes its asyncio pool first and generates the threaded one from
it; here both sets of overrides are thin shells around :class:`~.recorder.Recorder`,
which decides every event. Everything between two ``await``\\ s runs without
interruption on the event loop, so an event recorded right after psycopg_pool's
code returns sees its state as that code left it. The event log's own lock
(a threading lock) is taken only so readers in other threads (the live view)
copy a consistent log. Events carry the asyncio task's name; listeners are
called in the task that caused the event, and one that blocks blocks the loop.
"""

from __future__ import annotations

from asyncio import current_task
from time import perf_counter
from typing import Any

from ..callers import task_or_thread_name
from .recorder import OUT, Recorder, Scope, current_scope, in_check


class AsyncHooks(Recorder):
    """The overrides for ``AsyncConnectionPool``."""

    def _pv_name(self) -> str:
        return task_or_thread_name()

    def _pv_holder(self) -> Any:
        return current_task()

    def _pv_key(self) -> int:
        try:
            return id(current_task())
        except RuntimeError:
            return id(None)

    def _pv_deliver(self) -> None:
        if self._pv_listening:
            self._poolviz_events.flush()

    async def getconn(self, timeout: float | None = None) -> Any:
        started = perf_counter()
        try:
            conn = await self._pv_next_getconn(self, timeout)
        except BaseException as exc:
            self._pv_getconn_failed(started, exc)
            raise
        info = self._pv_conns.get(id(conn))
        if info is None or info.state != OUT:
            self._pv_getconn_late(conn, started)
        if self._pv_listening:
            self._pv_deliver()
        return conn

    # The steps after psycopg_pool's coroutine returned or raised: the compiled busy path (.fast) calls them too.

    def _pv_getconn_failed(self, started: float, exc: BaseException) -> None:
        with self._poolviz_events.lock:
            self._pv_left(started, exc)
        self._pv_deliver()

    def _pv_getconn_late(self, conn: Any, started: float) -> None:
        # Not recorded when taken: it came from the queue, or passed the check callback.
        with self._poolviz_events.lock:
            self._pv_checkout(conn, started)

    def _pv_got_ready(self, conn: Any) -> None:
        lock = self._poolviz_events.lock
        lock.acquire()  # (acquire() and release() cost half what a with block does)
        try:
            if self._check is None:
                self._pv_checkout(conn)  # handed over as it is: checked out now
            else:
                self._pv_take(conn)
        finally:
            lock.release()

    def _pv_landed_locked(self, conn: Any) -> None:
        lock = self._poolviz_events.lock
        lock.acquire()
        try:
            self._pv_landed(conn)
        finally:
            lock.release()

    async def putconn(self, conn: Any) -> None:
        self._pv_returning(conn)
        try:
            await self._pv_next_putconn(self, conn)
        finally:
            if self._pv_listening:
                self._pv_deliver()

    async def _get_ready_connection(self, timeout: float | None) -> Any:
        conn = await self._pv_next__get_ready_connection(self, timeout)
        if conn is not None:
            self._pv_got_ready(conn)
        return conn

    async def _check_connection(self, conn: Any) -> None:
        try:
            await self._pv_next__check_connection(self, conn)
        except Exception:
            with self._poolviz_events.lock:
                self._pv_check_failed(conn)
            raise

    def _maybe_grow_pool(self) -> None:
        # Not a coroutine in psycopg_pool's asyncio pool either.
        self._pv_next__maybe_grow_pool(self)
        if self._waiting:
            with self._poolviz_events.lock:
                self._pv_wait()

    async def _connect(self, timeout: float | None = None) -> Any:
        started = perf_counter()
        try:
            conn = await self._pv_next__connect(self, timeout)
        except Exception as exc:
            with self._poolviz_events.lock:
                self._pv_connect_failed(exc)
            self._pv_deliver()
            raise
        with self._poolviz_events.lock:
            self._pv_opened(conn, started)
        return conn

    async def _add_to_pool(self, conn: Any) -> None:
        await self._pv_next__add_to_pool(self, conn)
        self._pv_landed_locked(conn)
        if self._pv_listening:
            self._pv_deliver()

    async def _close_connection(self, conn: Any) -> None:
        lock = self._poolviz_events.lock
        with lock:
            info, reason = self._pv_closing(conn)
        try:
            await self._pv_next__close_connection(self, conn)
        finally:
            if info is not None:
                with lock:
                    self._pv_closed(info, reason)
                self._pv_deliver()

    async def _pv_scoped(self, scope: Scope, method: Any, *args: Any) -> Any:
        token = current_scope.set(scope)
        try:
            return await method(*args)
        finally:
            current_scope.reset(token)
            with self._poolviz_events.lock:
                self._pv_flush_scope(scope)
            self._pv_deliver()

    async def _shrink_pool(self) -> None:
        await self._pv_scoped(Scope("idle"), self._pv_next__shrink_pool, self)

    async def drain(self) -> None:
        await self._pv_scoped(Scope("all"), self._pv_next_drain, self)

    async def close(self, timeout: float = 5.0) -> None:
        await self._pv_scoped(Scope("all"), self._pv_next_close, self, timeout)
        if self._pv_watchdog is not None:
            self._pv_watchdog.stop()

    async def check(self) -> None:
        lock = self._poolviz_events.lock
        with lock:
            checking = self._pv_checking()
        token = in_check.set(True)
        try:
            await self._pv_next_check(self)
        finally:
            in_check.reset(token)
            with lock:
                self._pv_checked(checking)
            self._pv_deliver()


class AsyncNullHooks(AsyncHooks):
    """``AsyncNullConnectionPool`` closes returned connections nobody waits for: ``overflow``."""

    async def _maybe_close_connection(self, conn: Any) -> bool:
        scope = Scope("overflow", defer=True)
        return await self._pv_scoped(scope, self._pv_next__maybe_close_connection, self, conn)  # type: ignore[no-any-return]

    async def _add_to_pool(self, conn: Any) -> None:
        await self._pv_scoped(Scope("overflow", defer=True), AsyncHooks._add_to_pool, self, conn)
