"""``leak_threshold`` for SQLAlchemy's pools: the watchdog of :mod:`poolviz.pools.leaks`, pointed at one.

A :class:`LeakWatch` is what the watchdog reads (``leak_threshold``, the
connections held now in ``_pv_conns``, ``_pv_leak_event``, a lock), and what
the observer tells of each checkout and return, holding the log's lock. A
threaded pool's watchdog is a daemon thread; an ``AsyncEngine``'s pool is
watched from its event loop, as the asyncio pools of the other libraries are,
so its listeners are called on the loop. The watchdog holds the watch weakly:
a pool dropped does not live on.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ...events import EventLog
from ...events.store import payload
from .. import leaks


class Held:
    """One connection checked out while the pool watches for leaks."""

    __slots__ = ("checked_out", "holder", "leaked", "origin", "serial")

    def __init__(self, serial: int, checked_out: float, holder: Any) -> None:
        self.serial = serial
        self.checked_out: float | None = checked_out
        self.holder = holder
        self.origin = ""
        self.leaked = False


class LeakWatch:
    """The connections one SQLAlchemy pool has handed out, as the leak watchdog reads them."""

    def __init__(self, events: EventLog, threshold: float, counts: list[int], asyncio_pool: bool) -> None:
        self.events = events
        #: ThreadWatchdog looks holding this lock, the log's, which the observer records under.
        self._pool_lock = events.lock
        self.leak_threshold: float | None = threshold
        self._pv_conns: dict[int, Held] = {}
        self._counts = counts  # the observer's (in_use, idle, waiting), read when a leak is recorded
        self._asyncio = asyncio_pool
        self._watchdog: leaks.ThreadWatchdog | leaks.LoopWatchdog | None = None

    def checked_out(self, serial: int, now: float, origin: str) -> None:
        """A caller took connection ``serial`` at ``origin`` (its stack): note who, make sure a look is due.

        Hold the log's lock; take the stack before (``leaks.origin_summary()``), it costs microseconds.
        """
        holder: Any = None
        if self._asyncio and asyncio._get_running_loop() is not None:
            holder = asyncio.current_task()
        info = self._pv_conns[serial] = Held(serial, now, holder or threading.current_thread())
        leaks.note_holder(info, info.holder, origin)
        self._ensure_watchdog()

    def returned(self, serial: int, now: float) -> None:
        """Connection ``serial`` came back (or closed while out): ``unleak`` if it was reported. Hold the log's lock."""
        info = self._pv_conns.pop(serial, None)
        if info is not None and info.leaked and info.checked_out is not None:
            info.leaked = False
            self._pv_leak_event("unleak", info, now, "", info.checked_out)

    def _pv_leak_event(self, kind: str, info: Held, now: float, reason: str, since: float) -> None:
        # leak and unleak name the holder, not the thread that noticed; message: the checkout's stack.
        in_use, idle, waiting = self._counts
        extra = payload(duration_s=now - since, reason=reason, message=info.origin)
        self.events.write(now, kind, info.serial, leaks.holder_name(info.holder), in_use, idle, waiting, extra)

    def _ensure_watchdog(self) -> None:
        watchdog = self._watchdog
        if watchdog is None:
            running = self._asyncio and asyncio._get_running_loop() is not None
            watchdog = self._watchdog = leaks.LoopWatchdog(self) if running else leaks.ThreadWatchdog(self, _deliver)
        watchdog.ensure_running()

    def report(self) -> list[leaks.Leak]:
        """The connections now held past the threshold (recording ``leak`` events for new ones)."""
        with self.events.lock:
            found = leaks.report(self)
        self.events.flush()
        return found

    def stop(self) -> None:
        """Stop the watchdog (a thread is joined). Call without the log's lock."""
        if self._watchdog is not None:
            self._watchdog.stop()


def _deliver(watch: LeakWatch) -> None:
    # After a look on the watchdog's thread, which holds no lock then: deliver what it recorded.
    watch.events.flush()
