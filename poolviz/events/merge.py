"""One event log for many pools: events from worker processes merged in time order on one clock.

Each worker process has its own instrumented pool and its own
:class:`~poolviz.events.EventLog`. It ships batches of raw events with the
``time.perf_counter()`` reading its log's ``t == 0`` stands for; that clock is
system-wide (``CLOCK_MONOTONIC`` on Linux, ``mach_absolute_time`` on macOS),
so an event's absolute time means the same in every process on the machine.

A :class:`MergedEventLog` is an ordinary ``EventLog`` (the analysis, plots,
traces and the live view read it unchanged) in which:

* ``conn`` is a serial unique across processes (numbered as first seen);
* ``thread`` is prefixed with the process, ``p1:worker-0``, so threads of
  different processes never share a name;
* ``in_use``, ``idle`` and ``waiting`` are the sums over every process's pool
  right after the event: what all the pools hold open against the server;
* :meth:`MergedEventLog.to_frame` adds the columns in :data:`PROCESS_COLUMNS`:
  the process number and the event as its own pool recorded it.

Batches from different processes arrive out of step, so events are held until
every live process has shipped past them (its *watermark*) and then released
in time order. A process that ends (or dies) stops holding the others back.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .log import EventLog
from .store import payload
from .vocabulary import DEFAULT_CAPACITY, NO_CONN

if TYPE_CHECKING:
    import pandas as pd

#: The columns :meth:`MergedEventLog.to_frame` adds to the event columns.
PROCESS_COLUMNS = ("process", "process_seq", "process_conn", "process_in_use", "process_idle", "process_waiting")
#: How far back of a worker's reading its watermark is set: an event's clock
#: reading may be taken just before the pool lock, and so land in the log just
#: after a read that started later.
WATERMARK_MARGIN_S = 0.02


def thread_label(process: int, thread: str) -> str:
    """The merged log's name for a worker process's thread: ``p1:worker-0``."""
    return f"p{process}:{thread}"


class MergedEventLog(EventLog):
    """An :class:`~poolviz.events.EventLog` fed with the events of several pools, one per process.

    Call :meth:`add` with each batch a process ships, :meth:`end` when a
    process has shipped its last one; events are recorded once no live
    process can still send an earlier one. Raw events are the tuples of
    :class:`~poolviz.events.Event` fields.
    """

    def __init__(self, processes: Iterable[int], capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__(capacity)
        self._extra: deque[tuple[int, int, int, int, int, int]] = deque(maxlen=capacity)
        self._inbox: dict[int, deque[tuple[float, int, tuple[Any, ...]]]] = {}
        self._watermark: dict[int, float] = {}
        self._counts: dict[int, tuple[int, int, int]] = {}
        self._serials: dict[tuple[int, int], int] = {}
        self._released_t = -math.inf
        self.received: dict[int, int] = {}
        for process in processes:
            self._open(process)

    def _open(self, process: int) -> None:
        self._inbox[process] = deque()
        self._watermark[process] = -math.inf
        self._counts[process] = (0, 0, 0)
        self.received[process] = 0

    def start_clock_at(self, t0: float) -> None:
        """Make ``t == 0`` the ``perf_counter()`` reading ``t0`` (the earliest process's start, say).

        Only before the first record."""
        with self.lock:
            if self._store.next_seq() != 0:
                raise RuntimeError("start_clock_at() must come before the first record")
            self._t0 = t0

    @property
    def processes(self) -> tuple[int, ...]:
        """The processes this log merges."""
        return tuple(self._inbox)

    def add(self, process: int, t0: float, events: Sequence[tuple[Any, ...]], watermark: float | None) -> int:
        """Take one batch from ``process`` and record whatever is now safe to; returns how many were recorded.

        ``t0`` is the ``perf_counter()`` reading of the process log's
        ``t == 0``; ``watermark`` a ``perf_counter()`` reading before which the
        process will send no more events (None: unchanged).
        """
        with self.lock:
            if process not in self._inbox:
                self._open(process)
            queue = self._inbox[process]
            last = queue[-1][0] if queue else -math.inf
            for raw in events:
                # Keep each process's own order: its clock readings may be a hair out of seq order.
                last = max(t0 + raw[1], last)
                queue.append((last, raw[0], raw))
            self.received[process] += len(events)
            if watermark is not None:
                self._watermark[process] = max(self._watermark[process], watermark - WATERMARK_MARGIN_S)
            return self._release()

    def end(self, process: int) -> int:
        """``process`` will send nothing more (it finished or died): record what it sent."""
        with self.lock:
            if process not in self._inbox:
                self._open(process)
            self._watermark[process] = math.inf
            return self._release()

    def _release(self) -> int:
        limit = min(self._watermark.values(), default=math.inf)
        ready = []
        for process, queue in self._inbox.items():
            taken = []
            while queue and queue[0][0] <= limit:
                t, pseq, raw = queue.popleft()
                taken.append((t, process, pseq, raw))
            if taken:
                ready.append(taken)
        count = 0
        for t, process, _pseq, raw in heapq.merge(*ready):
            self._record_one(max(t, self._released_t), process, raw)
            count += 1
        return count

    def _record_one(self, t: float, process: int, raw: tuple[Any, ...]) -> None:
        seq, _t, kind, conn, thread, wait_s, duration_s, reused, reason, message, in_use, idle, waiting = raw
        self._released_t = t
        self._counts[process] = (in_use, idle, waiting)
        totals = [sum(c[i] for c in self._counts.values()) for i in range(3)]
        serial = NO_CONN
        if conn != NO_CONN:
            serial = self._serials.setdefault((process, conn), len(self._serials) + 1)
        self.write(
            t,
            kind,
            serial,
            thread_label(process, thread),
            *totals,
            payload(wait_s, duration_s, reused, reason, message),
        )
        self._extra.append((process, seq, conn, in_use, idle, waiting))

    def counts(self, process: int) -> tuple[int, int, int]:
        """``(in_use, idle, waiting)`` of ``process``'s pool after its last recorded event."""
        with self.lock:
            return self._counts[process]

    def clear(self) -> None:
        """Forget the held events (see :meth:`EventLog.clear`) and their process columns."""
        with self.lock:
            super().clear()
            self._extra.clear()

    def to_frame(self) -> pd.DataFrame:
        """The merged events as a DataFrame: the event columns plus :data:`PROCESS_COLUMNS`.

        ``frame.attrs["processes"]`` lists the processes merged.
        """
        # The log's lock is reentrant: both copies are taken under it, so they line up row for row.
        with self.lock:
            frame = super().to_frame()
            extra = list(self._extra)
        for index, name in enumerate(PROCESS_COLUMNS):
            frame[name] = [row[index] for row in extra]
            frame[name] = frame[name].astype("int64")
        frame.attrs["processes"] = list(self.processes)
        return frame
