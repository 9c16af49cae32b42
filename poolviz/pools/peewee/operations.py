"""The public pool operations around the hooks: closing on purpose, resizing, leak reports, dispose.

Each one says why it closes connections (``CloseContext.scope``) before
peewee's own method runs, and delivers its events once it is done.
"""

from __future__ import annotations

from typing import Any

from ... import checks
from .. import leaks
from . import resize
from .delivery import deliver
from .hooks import PoolHooks


class PoolOperations(PoolHooks):
    """peewee's ``close_*``, ``manual_close`` and ``dispose``, recorded; plus ``resize``, ``leaks`` and reclaiming."""

    def resize(self, max_connections: int | None) -> int:
        """Change ``max_connections`` of a pool in use; returns how many in use are over the new limit.

        peewee has no resize: its limit only stops new connections being
        opened, and it keeps handing out idle ones whatever their number. So
        growing wakes waiting callers at once, and shrinking closes idle
        connections over the new limit now and each one over it as it is
        checked in (``close`` events with reason ``idle``), until the pool
        fits. ``None`` removes the limit.
        """
        limit = checks.count("max_connections", max_connections, none_means="no limit")
        over = resize.set_limit(self, limit)
        deliver(self)
        return over

    def leaks(self) -> list[leaks.Leak]:
        """Connections now held longer than ``leak_threshold`` (recording ``leak`` events for new ones)."""
        if self.leak_threshold is None:
            raise ValueError("leak detection is off: build the pool with leak_threshold=<seconds>")
        with self._pool_lock:
            found = leaks.report(self)
        deliver(self)
        return found

    def reclaim_dead_threads(self) -> int:
        """Close the connections checked out by threads that have exited; returns how many.

        A thread that dies holding a connection never returns it, and peewee
        cannot tell: the slot stays taken for good. Its transaction state is
        unknown, so the connection is closed (reason ``manual``), not reused.
        """
        with self._pool_lock:
            dead = [
                info.conn
                for info in self._pv_conns.values()
                if info.checked_out is not None and info.holder is not None and not info.holder.is_alive()
            ]
        # A dead thread returns nothing, so the list stays true once the lock is released.
        self._pv_scoped("manual", self._pv_close_each, dead)
        return len(dead)

    def _pv_close_each(self, conns: list[Any]) -> None:
        for conn in conns:
            self._close(conn, close_conn=True)

    def manual_close(self) -> Any:
        if not self.is_closed():  # type: ignore[attr-defined]
            # peewee frees the slot under the pool lock but closes the driver
            # connection after releasing it: record the close with the slot, so
            # a checkout in between never shows more in use than the limit.
            with self._pool_lock:
                self._pv_forget(self._state.conn, "manual")  # type: ignore[attr-defined]
        return self._pv_scoped("manual", super().manual_close)  # type: ignore[misc]

    def close_idle(self) -> None:
        self._pv_scoped("idle", super().close_idle)  # type: ignore[misc]

    def close_stale(self, age: float = 600) -> int:
        return self._pv_scoped("stale_in_use", super().close_stale, age)  # type: ignore[misc,no-any-return]

    def close_all(self) -> None:
        self._pv_stop_watchdog()
        self._pv_scoped("all", super().close_all)  # type: ignore[misc]

    def dispose(self) -> None:
        self._pv_stop_watchdog()
        super().dispose()  # type: ignore[misc]
        with self._pool_lock:
            self._pv_conns.clear()
            self._pv_resync = True  # the counts drop to zero: the event carries them in full
            self._pv_event("dispose")
        deliver(self)

    def _pv_stop_watchdog(self) -> None:
        if self._pv_watchdog is not None:
            self._pv_watchdog.stop()
