"""A ``ConnectionPool``'s or ``AsyncConnectionPool``'s busy path in C, when :mod:`poolviz.pools.busypath` was built.

:class:`~poolviz.pools._busypath.PsycopgBusyPath`'s four methods become the
pool instance's ``getconn``, ``_get_ready_connection``, ``putconn`` and
``_add_to_pool`` (an instance attribute is found before the class's method).
Each calls psycopg_pool's own method, records the usual checkout or check-in
as the Python hooks do, and hands anything else to the same hook and
Recorder methods on the pool. An asyncio pool's methods return a ``Step``:
psycopg_pool's coroutine, run as ``await`` runs it and recorded as it ends,
in the same turn of the event loop (:class:`~.hooks_async.AsyncHooks`
records right after the ``await``). Not for null pools or a
``leak_threshold`` (their Python hooks do more on every checkout).
"""

from __future__ import annotations

import functools
from typing import Any

from psycopg.pq import TransactionStatus

from ...events.store import CHUNK, REUSED
from ..busypath import compiled
from ..callers import thread_name
from ..sites import _library, _lines, reused_payload

#: The methods the compiled busy path takes over on the pool instance.
TAKEN_OVER = ("getconn", "_get_ready_connection", "putconn", "_add_to_pool")


def install_busy_path(pool: Any, asyncio: bool = False) -> None:
    """Give an instrumented ``ConnectionPool`` or ``AsyncConnectionPool`` the compiled busy path (if built)."""
    if compiled is None:
        return
    log = pool._poolviz_events

    def roll() -> None:  # the asyncio pools' log has a lock of its own, which the loop's writers take too
        with log.lock:
            if len(log.tail) >= CHUNK:
                log.roll()

    fast = compiled.PsycopgBusyPath(
        pool=pool,
        next_getconn=pool._pv_next_getconn,
        next_get_ready=pool._pv_next__get_ready_connection,
        next_putconn=pool._pv_next_putconn,
        next_add_to_pool=pool._pv_next__add_to_pool,
        conns=pool._pv_conns,
        idle_deque=pool._pool,
        waiting_deque=pool._waiting,
        waiters=pool._pv_waiters,
        tail=log.tail,
        roll=roll if asyncio else log.roll,
        hold=log.hold,
        listening=log.listening,
        lock=log.lock,
        thread_name=thread_name,
        library=_library,
        lines=_lines,
        reused_payload=reused_payload,
        reused=REUSED,
        unknown=TransactionStatus.UNKNOWN,
        chunk=CHUNK,
        has_check=pool._check is not None,
        sites=pool._pv_sites,
        asyncio=asyncio,
    )
    pool._pv_fast = fast
    for name in TAKEN_OVER:
        setattr(pool, name, getattr(fast, f"a{name}" if asyncio else name))
    # The Python paths walk for the site themselves (the compiled getconn notes none beforehand).
    pool._pv_site = functools.partial(reused_payload, 1)
