"""Leak detection: connections held longer than ``leak_threshold`` (HikariCP's leakDetectionThreshold is the model).

A pool with a threshold notes who checked each connection out and where
(capturing a stack costs microseconds, so only then), and a watchdog thread
reports a ``leak`` event at about the threshold while the connection is
still held, even if nobody else touches the pool. The watchdog runs only
while the pool has connections checked out, and stops on ``close_all`` and
``dispose``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from time import perf_counter
from typing import Any, NamedTuple

import peewee
import playhouse

from ...events.store import payload
from .tracker import Tracked

_POOLS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # poolviz/pools/
_SKIPPED_FILES = {
    os.path.abspath(peewee.__file__),
    os.path.abspath(threading.__file__),
    os.path.abspath(contextlib.__file__),
}
_SKIPPED_DIRS = (os.path.dirname(os.path.abspath(playhouse.__file__)) + os.sep, _POOLS)

# The watchdog looks ten times per threshold, within these bounds (seconds).
_MIN_INTERVAL, _MAX_INTERVAL = 0.005, 0.5
# It exits after this long with nothing checked out; the next checkout starts it again.
_IDLE_EXIT_S = 0.5


class Leak(NamedTuple):
    """A connection held longer than the pool's ``leak_threshold``."""

    conn: int
    thread: str
    thread_alive: bool
    held_s: float
    origin: str


def origin_summary(limit: int = 3) -> str:
    """The innermost ``limit`` caller frames outside peewee and poolviz's pools: ``file:line in func < ...``."""
    frame = sys._getframe(1)
    parts: list[str] = []
    while frame is not None and len(parts) < limit:
        filename = os.path.abspath(frame.f_code.co_filename)
        if filename not in _SKIPPED_FILES and not filename.startswith(_SKIPPED_DIRS):
            parts.append(f"{os.path.basename(filename)}:{frame.f_lineno} in {frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return " < ".join(parts)


def note_holder(info: Tracked) -> None:
    """At checkout, with leak detection on: remember the holding thread and where it asked."""
    info.holder = threading.current_thread()
    info.origin = origin_summary()


def scan(pool: Any, now: float) -> bool:
    """Record a ``leak`` event for each connection newly held past the threshold; True if any is checked out.

    Call with the pool lock held. A walk over the tracked connections: cheap
    for pools of tens of connections, and only run with a threshold set.
    """
    threshold = pool.leak_threshold
    busy = False
    for info in pool._pv_conns.values():
        if info.checked_out is None:
            continue
        busy = True
        if not info.leaked and now - info.checked_out > threshold:
            info.leaked = True
            alive = info.holder is None or info.holder.is_alive()
            record(pool, "leak", info, now, "held" if alive else "thread_exited")
    return busy


def record(pool: Any, kind: str, info: Tracked, now: float, reason: str, since: float | None = None) -> None:
    """Record ``leak`` or ``unleak`` for ``info`` (held since ``since``, default its checkout).

    These name the holder, not the thread that noticed. Hold the pool lock.
    """
    held = now - (info.checked_out if since is None else since)  # type: ignore[operator]
    extra = payload(duration_s=held, reason=reason, message=info.origin)
    pool._pv_event(kind, info.serial, extra, now, thread=info.holder.name if info.holder else "?")


def report(pool: Any) -> list[Leak]:
    """The connections now held past the threshold. Call with the pool lock held."""
    now = perf_counter()
    scan(pool, now)
    return [
        Leak(
            info.serial,
            info.holder.name if info.holder else "?",
            bool(info.holder and info.holder.is_alive()),
            now - info.checked_out,  # type: ignore[operator]
            info.origin,
        )
        for info in pool._pv_conns.values()
        if info.leaked
    ]


class LeakWatchdog:
    """One daemon thread per pool that scans for leaks while connections are checked out.

    It holds the pool through a weak reference, so a pool that is dropped
    without ``close_all`` does not live on, and the thread ends with it.
    """

    def __init__(self, pool: Any) -> None:
        self.name = f"poolviz-leak-watchdog-{id(pool):x}"
        self._pool = weakref.ref(pool)
        self._lock = pool._pool_lock
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def interval(self, threshold: float) -> float:
        """How often to look: a tenth of the threshold, bounded."""
        return min(max(threshold / 10.0, _MIN_INTERVAL), _MAX_INTERVAL)

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
        from .delivery import deliver

        idle_since: float | None = None
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
                now = perf_counter()
                if scan(pool, now):
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since > _IDLE_EXIT_S:
                    # Under the pool lock, so a checkout either sees this thread
                    # gone and starts another, or happened before and was scanned.
                    self._thread = None
                    return
            deliver(pool)
            del pool
