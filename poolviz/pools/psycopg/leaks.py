"""``leak_threshold`` for psycopg_pool's pools: the watchdog of :mod:`poolviz.pools.leaks`, pointed at them.

The watchdog's policy (how often to look, what a look records, when to stop)
is the one peewee's pools use. It asks a pool for ``leak_threshold``,
``_pv_conns``, ``_pv_leak_event`` and a lock (``_pool_lock`` on a thread, the
log's lock and ``flush`` on the event loop); :class:`LeakView` answers for a
psycopg_pool pool, so nothing is added to the pool's public face, and holds it
weakly, so a pool dropped without ``close()`` does not live on.
"""

from __future__ import annotations

import weakref
from typing import Any

from .. import leaks


class LeakView:
    """What the leak watchdog reads of one instrumented psycopg_pool pool."""

    def __init__(self, pool: Any) -> None:
        self._pool = weakref.ref(pool)
        self.events = pool._poolviz_events
        # ThreadWatchdog looks holding this: the threaded pool's lock, which is also the log's.
        self._pool_lock = self.events.lock

    def _target(self) -> Any:
        pool = self._pool()
        if pool is None:
            raise ReferenceError("the pool is gone")
        return pool

    @property
    def leak_threshold(self) -> float | None:
        pool = self._pool()
        return None if pool is None else pool._pv_leak_threshold  # type: ignore[no-any-return]

    @property
    def _pv_conns(self) -> dict[int, Any]:
        return self._target()._pv_conns  # type: ignore[no-any-return]

    def _pv_leak_event(self, kind: str, info: Any, now: float, reason: str, since: float) -> None:
        self._target()._pv_leak_event(kind, info, now, reason, since)


def deliver(view: LeakView) -> None:
    """After a look on the watchdog's thread (which holds no pool lock then): deliver what it recorded."""
    view.events.flush()


def watchdog_for(pool: Any, asyncio_pool: bool) -> leaks.Watchdog:
    """The watchdog for ``pool``, run on a thread or on the event loop like the pool itself."""
    view = pool._pv_leak_view = LeakView(pool)
    return leaks.LoopWatchdog(view) if asyncio_pool else leaks.ThreadWatchdog(view, deliver)
