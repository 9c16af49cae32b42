"""Leak detection for every pool library, threaded and asyncio: connections held longer than ``leak_threshold``.

HikariCP's leakDetectionThreshold is the model. A pool with a threshold notes
who checked each connection out (a thread, or an asyncio task) and where
(its stack: capturing one costs microseconds, so only then; its first entry is
the checkout's site, :mod:`poolviz.pools.sites`), and a watchdog reports
a ``leak`` event at about the threshold while the connection is still held,
even if nobody else touches the pool. The watchdog runs only while the pool
has connections checked out, and stops on ``close_all``/``close_pool`` and
``dispose``.

One policy serves both kinds of pool (:class:`Watchdog`: how often to look,
what a look records, when to stop); a threaded pool runs it on a daemon
thread (:class:`ThreadWatchdog`), an asyncio pool on its event loop's timer
(:class:`LoopWatchdog`), so the asyncio pool's bookkeeping is only ever
touched from the loop. A pool offers what the policy needs: ``leak_threshold``,
``_pv_conns`` (connections with ``serial``, ``checked_out``, ``holder``,
``origin``, ``leaked``) and ``_pv_leak_event(kind, info, now, reason, since)``.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from time import perf_counter
from typing import Any, NamedTuple

from . import sites

#: How many application frames a leak's stack shows.
STACK_DEPTH = 5
# The watchdog looks ten times per threshold, within these bounds (seconds).
_MIN_INTERVAL, _MAX_INTERVAL = 0.005, 0.5
# It stops after this long with nothing checked out; the next checkout starts it again.
_IDLE_EXIT_S = 0.5


class Leak(NamedTuple):
    """A connection held longer than the pool's ``leak_threshold``."""

    conn: int
    thread: str
    thread_alive: bool
    held_s: float
    origin: str


def origin_summary(limit: int = STACK_DEPTH) -> str:
    """Where the caller asked: its innermost ``limit`` application frames, ``file:line in f < ...``.

    Library frames are looked past as for a checkout's site (:mod:`poolviz.pools.sites`, one definition
    of library code), so the first entry is the checkout's site.
    """
    return sites.stack(limit, depth=2)


def holder_name(holder: Any) -> str:
    """The name of a holding thread or task (``?`` when unknown)."""
    if holder is None:
        return "?"
    if isinstance(holder, threading.Thread):
        return holder.name
    return holder.get_name()  # type: ignore[no-any-return]


def holder_alive(holder: Any) -> bool:
    """Whether a holding thread is alive, or a holding task not done (unknown holders count as alive)."""
    if holder is None:
        return True
    if isinstance(holder, threading.Thread):
        return holder.is_alive()
    return not holder.done()


def note_holder(info: Any, holder: Any, origin: str | None = None) -> None:
    """At checkout, with leak detection on: remember the holder (thread or task) and where it asked."""
    info.holder = holder
    info.origin = origin_summary() if origin is None else origin


def scan(pool: Any, now: float) -> bool:
    """Record a ``leak`` event for each connection newly held past the threshold; True if any is checked out.

    A walk over the tracked connections: cheap for pools of tens of
    connections, and only run with a threshold set. A threaded pool calls it
    holding its pool lock, an asyncio pool from its loop.
    """
    threshold = pool.leak_threshold
    busy = False
    for info in list(pool._pv_conns.values()):
        if info.checked_out is None:
            continue
        busy = True
        if not info.leaked and now - info.checked_out > threshold:
            info.leaked = True
            reason = "held" if holder_alive(info.holder) else "thread_exited"
            pool._pv_leak_event("leak", info, now, reason, info.checked_out)
    return busy


def report(pool: Any) -> list[Leak]:
    """The connections now held past the threshold (recording ``leak`` events for new ones), as :class:`Leak` s."""
    now = perf_counter()
    scan(pool, now)
    return [
        Leak(info.serial, holder_name(info.holder), holder_alive(info.holder), now - info.checked_out, info.origin)
        for info in pool._pv_conns.values()
        if info.leaked and info.checked_out is not None
    ]


class Watchdog:
    """The watchdog's policy: look every tenth of the threshold, record new leaks, stop once idle a while."""

    def __init__(self, pool: Any) -> None:
        self.name = f"poolviz-leak-watchdog-{id(pool):x}"
        # A weak reference, so a pool dropped without close_all does not live on.
        self._pool = weakref.ref(pool)
        self._idle_since: float | None = None

    def interval(self, threshold: float) -> float:
        """How often to look: a tenth of the threshold, bounded."""
        return min(max(threshold / 10.0, _MIN_INTERVAL), _MAX_INTERVAL)

    def look(self, pool: Any) -> bool:
        """One look at ``pool``: record new leaks; False once nothing has been checked out for a while."""
        now = perf_counter()
        if scan(pool, now):
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        elif now - self._idle_since > _IDLE_EXIT_S:
            self._idle_since = None
            return False
        return True


class ThreadWatchdog(Watchdog):
    """A daemon thread per threaded pool; each look holds the pool lock, and events are delivered after it."""

    def __init__(self, pool: Any, deliver: Callable[[Any], None]) -> None:
        super().__init__(pool)
        self._lock = pool._pool_lock
        self._deliver = deliver
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def ensure_running(self) -> None:
        """Start the thread unless it runs. Call with the pool lock held (the thread's exit takes it too)."""
        if self._thread is None:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it. Call without the pool lock: the thread takes it."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self, stop: threading.Event) -> None:
        while True:
            pool = self._pool()
            if pool is None or pool.leak_threshold is None:
                return
            interval = self.interval(pool.leak_threshold)
            del pool  # no strong reference while sleeping
            if stop.wait(interval):
                return
            pool = self._pool()
            if pool is None:
                return
            with self._lock:
                if stop.is_set():
                    return
                if not self.look(pool):
                    # Under the pool lock, so a checkout either sees this thread
                    # gone and starts another, or happened before and was seen.
                    self._thread = None
                    return
            self._deliver(pool)
            del pool


class LoopWatchdog(Watchdog):
    """A timer on the asyncio pool's event loop: each look runs on the loop, between the pool's own steps."""

    def __init__(self, pool: Any) -> None:
        super().__init__(pool)
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        """Schedule the next look unless one is scheduled on this loop. Call from the loop."""
        loop = asyncio.get_running_loop()
        if self._handle is not None and self._loop is loop and not loop.is_closed():
            return
        self._loop = loop
        self._schedule()

    def _schedule(self) -> None:
        pool = self._pool()
        if pool is None or pool.leak_threshold is None or self._loop is None:
            self._handle = None
            return
        self._handle = self._loop.call_later(self.interval(pool.leak_threshold), self._tick)

    def _tick(self) -> None:
        pool = self._pool()
        if pool is None:
            self._handle = None
            return
        with pool.events.lock:
            going = self.look(pool)
        pool.events.flush()
        if going:
            self._schedule()
        else:
            self._handle = None

    def stop(self) -> None:
        """Cancel the next look."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
