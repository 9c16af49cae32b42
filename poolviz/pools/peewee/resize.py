"""Changing a live pool's limit: peewee has no resize, so the surplus is closed as it becomes idle."""

from __future__ import annotations

import heapq
from typing import Any


def set_limit(pool: Any, limit: int | None) -> int:
    """Set ``max_connections`` to ``limit`` now; returns how many in use are over it.

    Growing wakes waiting callers at once; shrinking closes idle connections
    over the new limit now, and :func:`trim` closes each one over it as it is
    checked in. Takes the pool lock; the caller delivers events afterwards.
    """
    with pool._pool_lock:
        pool._max_connections = limit
        pool.events.meta["max_connections"] = limit
        trim(pool)
        over = pool._pv_counts()[0] - limit if limit and pool._pv_over_limit else 0
        pool._pool_available.notify_all()
    return over


def trim(pool: Any) -> None:
    """Close the oldest idle connections (the ones peewee would hand out next) while the pool is over its limit.

    Call with the pool lock held. Each close is recorded with reason ``idle``.
    """
    limit = pool._max_connections
    in_use, idle, _waiting = pool._pv_counts()
    excess = in_use + idle - limit if limit else 0
    close = pool._pv_close
    outer, close.scope = close.scope, "idle"
    try:
        while excess > 0 and pool._connections:
            _ts, _counter, conn = heapq.heappop(pool._connections)
            pool._close_raw(conn)
            excess -= 1
    finally:
        close.scope = outer
    pool._pv_over_limit = excess > 0
    pool._pv_replan()
