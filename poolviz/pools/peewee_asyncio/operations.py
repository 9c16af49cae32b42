"""The public operations of an instrumented asyncio database beyond peewee's: ``resize()`` and ``leaks()``.

They mirror the threaded pools' (:mod:`poolviz.pools.peewee.operations`):
the leak watchdog is the same policy (:mod:`poolviz.pools.leaks`) run on the
event loop, and ``resize`` changes the limit of a pool in use, closing idle
connections over a lowered limit now and each one over it as it comes back
(``close`` events with reason ``idle``). What differs per driver (growing
asyncpg's holders, aiomysql's free deque, peewee's SQLite queue) is in
:mod:`.drivers`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ... import checks
from ...events import EventLog
from ...events.store import payload
from .. import leaks
from ..recording import EventRecorder


class AsyncOperations(EventRecorder):
    """``resize``, ``leaks`` and the leak watch, for :class:`~poolviz.pools.peewee_asyncio.hooks._AsyncInstrumented`."""

    events: EventLog
    leak_threshold: float | None
    _pool_size: int
    _pool_min_size: int
    _pv_pool: Any
    _pv_view: Any
    _pv_conns: dict[int, Any]
    _pv_closing: str | None
    _pv_retiring: int
    _pv_watchdog: leaks.LoopWatchdog | None

    async def resize(self, max_connections: int) -> int:
        """Change the pool's limit (peewee's ``pool_size``) while in use; returns how many in use are over it.

        Growing makes room at once (tasks waiting are served); shrinking
        closes idle connections over the new limit now and each one over it
        as it is released, until the pool fits (reason ``idle``). Before the
        pool exists it only sets the size it will be created with.
        """
        limit = checks.count("max_connections", max_connections)
        self._pool_size = limit
        self._pool_min_size = min(self._pool_min_size, limit)
        self.events.meta.update(max_connections=limit, pool_min_size=self._pool_min_size)
        if self._pv_pool is not None:
            await self._pv_fit()
        in_use, _idle = self._pv_view.counts(self._pv_pool, len(self._pv_conns))
        return max(0, in_use - limit)

    def _pv_over_limit(self) -> bool:
        """Whether the pool holds more connections than its limit (after a resize down), those being
        retired aside (releases run side by side: each must see the others' retirements)."""
        return self._pv_pool is not None and len(self._pv_conns) - self._pv_retiring > self._pool_size

    async def _pv_fit(self) -> None:
        # Bring the driver's pool to the limit (growing it, or closing idle surplus), then record what changed.
        pool = self._pv_pool
        outer, self._pv_closing = self._pv_closing, self._pv_closing or "idle"
        try:
            await self._pv_view.resize(pool, self._pool_size, len(self._pv_conns))
        finally:
            with self.events.lock:
                self._pv_sweep(pool)  # type: ignore[attr-defined]
                self._pv_closing = outer
            self.events.flush()

    def leaks(self) -> list[leaks.Leak]:
        """Connections now held longer than ``leak_threshold`` (recording ``leak`` events for new ones)."""
        if self.leak_threshold is None:
            raise ValueError("leak detection is off: build the database with leak_threshold=<seconds>")
        with self.events.lock:
            found = leaks.report(self)
        self.events.flush()
        return found

    def _pv_watch(self, info: Any, caller: Any) -> None:
        # At checkout, with a threshold: note the holding task and where it asked; make sure a look is due.
        leaks.note_holder(info, caller.task or asyncio.current_task(), caller.origin)
        watchdog = self._pv_watchdog
        if watchdog is None:
            watchdog = self._pv_watchdog = leaks.LoopWatchdog(self)
        watchdog.ensure_running()

    def _pv_unleak(self, info: Any, now: float) -> None:
        info.leaked = False
        self._pv_leak_event("unleak", info, now, "", info.checked_out)

    def _pv_leak_event(self, kind: str, info: Any, now: float, reason: str, since: float) -> None:
        # leak and unleak name the holder. Hold the log's lock.
        extra = payload(duration_s=now - since, reason=reason, message=info.origin)
        self._pv_event(kind, info.serial, extra, now, info.name)

    def _pv_stop_watchdog(self) -> None:
        if self._pv_watchdog is not None:
            self._pv_watchdog.stop()
