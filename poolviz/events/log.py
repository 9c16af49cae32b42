"""The log that holds a pool's events: bounded, thread-safe, with listeners, counters and cursors.

The vocabulary (kinds, close reasons, the :class:`Event` record) is in
:mod:`poolviz.events.vocabulary`.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import checks
from .vocabulary import DEFAULT_CAPACITY, Event

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("poolviz.events")

Listener = Callable[[Event], Any]
_make_event = Event._make
_new_event = tuple.__new__  # _new_event(Event, raw): Event._make without its checks


class Subscription:
    """What :meth:`EventLog.subscribe` returns: call it (or leave its ``with`` block) to unsubscribe."""

    __slots__ = ("_listener", "_log")

    def __init__(self, log: EventLog, listener: Listener) -> None:
        self._log = log
        self._listener = listener

    def __call__(self) -> None:
        self._log.unsubscribe(self._listener)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self()


_COUNTERS = (
    "requests_num",
    "requests_queued",
    "requests_wait_ms",
    "requests_errors",
    "usage_ms",
    "returns_bad",
    "connections_num",
    "connections_ms",
    "connections_errors",
    "connections_lost",
    "connections_closed",
)


class Cursor:
    """A reader's place in an :class:`EventLog`: each :meth:`read` returns what is new since the last.

    Made by :meth:`EventLog.cursor`. One cursor serves one reader; reads through
    the same cursor from several threads are serialised, so no event is returned
    twice or skipped.
    """

    __slots__ = ("_lock", "_log", "lost", "next_seq")

    def __init__(self, log: EventLog, next_seq: int) -> None:
        self._log = log
        self._lock = threading.Lock()
        #: The ``seq`` of the next event this cursor will return.
        self.next_seq = next_seq
        #: Events lost in all, over every read so far.
        self.lost = 0

    def read(self, limit: int | None = None) -> tuple[list[Event], int]:
        """``(events, lost)``: the events recorded since the last read (at most ``limit``, oldest
        first) and how many this cursor will never see because the log no longer held them
        (dropped by its capacity, or forgotten by :meth:`EventLog.clear`) since the last read.
        """
        limit = checks.count("limit", limit, none_means="no limit")
        with self._lock:
            raw, first = self._log._raw_from(self.next_seq, limit)
            lost = max(0, first - self.next_seq)
            self.next_seq = max(self.next_seq, first) + len(raw)
            self.lost += lost
        return list(map(_make_event, raw)), lost


class EventLog:
    """A bounded record of pool events, with listeners and counters.

    The log keeps the newest ``capacity`` events; older ones are dropped and
    counted in :attr:`dropped`. Counters (:meth:`get_stats`) count every event,
    dropped or not. Listeners are called by the pool after it releases its
    lock, in the thread that caused the event; a listener that raises is
    counted in :attr:`listener_errors` and logged, and the pool carries on.

    Writers call :meth:`record` holding :attr:`lock` (a pool passes its own
    pool lock, so recording costs no second lock and ``seq`` follows the pool's
    order). Readers take the lock only to copy, so a reader holds the pool
    for as long as a copy takes: :meth:`since` copies only what is new.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, lock: Any = None) -> None:
        self.capacity: int = checks.count("capacity", capacity)
        self.lock = lock if lock is not None else threading.RLock()
        self.meta: dict[str, Any] = {}
        self._events: deque[tuple[Any, ...]] = deque(maxlen=capacity)
        self._seq = itertools.count()
        self._listeners: tuple[Listener, ...] = ()
        # Told (under the lock) when the first listener arrives and the last leaves.
        self.on_listening: Callable[[bool], None] | None = None
        self._pending = threading.local()
        self._t0 = time.perf_counter()
        self.dropped = 0
        self.listener_errors = 0
        self._counters: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
        self._counted = 0  # seq of the first event not yet in the counters
        self._last: tuple[Any, ...] | None = None
        #: ``record_at(now, kind, conn, thread, in_use, idle, waiting, wait_s=0.0,
        #: duration_s=0.0, reused=False, reason="", message="")``: :meth:`record`
        #: with the caller's ``time.perf_counter()`` reading. Hold :attr:`lock`.
        self.record_at = self._make_record_at()

    @property
    def t0(self) -> float:
        """The ``time.perf_counter()`` reading that ``t == 0`` stands for."""
        return self._t0

    def now(self) -> float:
        """Seconds since this log started, on the clock events use."""
        return time.perf_counter() - self._t0

    def record(
        self,
        kind: str,
        conn: int,
        thread: str,
        in_use: int,
        idle: int,
        waiting: int,
        wait_s: float = 0.0,
        duration_s: float = 0.0,
        reused: bool = False,
        reason: str = "",
        message: str = "",
    ) -> None:
        """Append one event stamped now. Call it holding :attr:`lock`."""
        self.record_at(
            time.perf_counter(), kind, conn, thread, in_use, idle, waiting, wait_s, duration_s, reused, reason, message
        )

    def _make_record_at(self) -> Callable[..., None]:
        # The pools' hot path: a closure reads its state from cells, which is
        # cheaper than attribute lookups on self, and the caller passes the
        # perf_counter() reading it already took, so an event costs one clock
        # read. clear() empties the same deque, so the cells stay valid.
        events = self._events
        append = events.append
        next_seq = self._seq.__next__
        t0 = self._t0
        capacity = self.capacity
        drop_oldest = self._drop_oldest
        log = self

        def record_at(
            now: float,
            kind: str,
            conn: int,
            thread: str,
            in_use: int,
            idle: int,
            waiting: int,
            wait_s: float = 0.0,
            duration_s: float = 0.0,
            reused: bool = False,
            reason: str = "",
            message: str = "",
        ) -> None:
            if len(events) == capacity:
                drop_oldest()
            event = (
                next_seq(),
                now - t0,
                kind,
                conn,
                thread,
                wait_s,
                duration_s,
                reused,
                reason,
                message,
                in_use,
                idle,
                waiting,
            )
            append(event)
            if log._listeners:
                log._hold_for_delivery(event)

        return record_at

    def _hold_for_delivery(self, event: tuple[Any, ...]) -> None:
        try:
            self._pending.events.append(event)
        except AttributeError:
            self._pending.events = [event]

    @property
    def has_listeners(self) -> bool:
        """Whether anyone is subscribed: callers skip delivery work when nobody listens."""
        return bool(self._listeners)

    def _drop_oldest(self) -> None:
        oldest = self._events[0]
        if oldest[0] >= self._counted:
            self._count(oldest)
            self._counted = oldest[0] + 1
        self.dropped += 1

    def _count(self, event: tuple[Any, ...]) -> None:
        c = self._counters
        kind = event[2]
        if kind == "checkout":
            c["requests_num"] += 1
            c["requests_wait_ms"] += event[5] * 1000.0
        elif kind == "checkin":
            c["usage_ms"] += event[6] * 1000.0
        elif kind == "wait":
            c["requests_queued"] += 1
        elif kind == "timeout":
            c["requests_num"] += 1
            c["requests_errors"] += 1
            c["requests_wait_ms"] += event[5] * 1000.0
        elif kind == "connect":
            c["connections_num"] += 1
            c["connections_ms"] += event[6] * 1000.0
        elif kind == "close":
            c["connections_closed"] += 1
            if event[8] == "broken":
                c["connections_lost"] += 1
            elif event[8] == "not_reusable":
                c["returns_bad"] += 1
        elif kind == "error":
            c["connections_errors"] += 1

    def _catch_up(self) -> None:
        # Counters are brought up to date when read, not on the hot path.
        events = self._events
        if not events or events[-1][0] < self._counted:
            return
        start = max(0, self._counted - events[0][0])
        for event in itertools.islice(events, start, None):
            self._count(event)
        self._counted = events[-1][0] + 1

    def flush(self) -> None:
        """Deliver this thread's recorded events to the listeners. Never call it holding a pool lock."""
        pending = getattr(self._pending, "events", None)
        if not pending:
            return
        self._pending.events = []
        listeners = self._listeners
        for raw in pending:
            event = _new_event(Event, raw)
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    with self.lock:
                        self.listener_errors += 1
                    logger.exception("poolviz listener %r raised; the pool carries on", listener)

    def subscribe(self, listener: Listener) -> Subscription:
        """Call ``listener(event)`` for every later event; returns a :class:`Subscription` to undo it."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        with self.lock:
            self._listeners = (*self._listeners, listener)
            if len(self._listeners) == 1 and self.on_listening is not None:
                self.on_listening(True)
        return Subscription(self, listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        with self.lock:
            had = bool(self._listeners)
            self._listeners = tuple(f for f in self._listeners if f is not listener)
            if had and not self._listeners and self.on_listening is not None:
                self.on_listening(False)

    def snapshot(self) -> list[Event]:
        """The events currently held, oldest first."""
        with self.lock:
            raw = list(self._events)
        return list(map(_make_event, raw))

    def since(self, seq: int) -> list[Event]:
        """Held events with ``seq >= seq``, oldest first (cheap for a poller that keeps its place)."""
        with self.lock:
            events = self._events
            if not events or events[-1][0] < seq:
                return []
            first = events[0][0]
            if seq <= first:
                raw = list(events)
            else:
                # Walk from the newer end: a poller usually asks for a few recent events.
                count = events[-1][0] - seq + 1
                raw = list(itertools.islice(reversed(events), count))[::-1]
        return list(map(_make_event, raw))

    def cursor(self, start_seq: int | None = None) -> Cursor:
        """A :class:`Cursor` that reads events from ``seq == start_seq`` on.

        ``None`` (the default) starts from now: the first read returns only
        events recorded after this call. ``start_seq=0`` starts from the first
        event ever recorded: the first read returns every event still held and
        counts as lost those the log no longer holds.
        """
        if start_seq is None:
            with self.lock:
                start = self._next_seq()
        else:
            start = checks.integer("start_seq", start_seq)
            if start < 0:
                raise ValueError(f"start_seq must be None or an integer >= 0, got {start_seq!r}")
        return Cursor(self, start)

    def _next_seq(self) -> int:
        # The seq the next recorded event will get. Hold the lock.
        last = self._events[-1] if self._events else self._last
        return last[0] + 1 if last is not None else 0

    def _raw_from(self, seq: int, limit: int | None) -> tuple[list[tuple[Any, ...]], int]:
        # (held raw events with seq >= seq, at most limit of them; the first seq still available,
        # i.e. the oldest held or, when none is held, the next to be recorded).
        with self.lock:
            events = self._events
            first = events[0][0] if events else self._next_seq()
            start = max(seq, first)
            count = (events[-1][0] - start + 1) if events else 0
            if count <= 0:
                return [], first
            n = count if limit is None else min(count, limit)
            offset = start - first
            if offset <= len(events) // 2:
                raw = list(itertools.islice(events, offset, offset + n))
            else:  # nearer the newer end, where a poller usually reads: walk from there
                raw = list(itertools.islice(reversed(events), count))[::-1][:n]
        return raw, first

    def __iter__(self) -> Iterator[Event]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._events)

    @property
    def last(self) -> Event | None:
        """The most recent event, kept even when the log has been cleared."""
        with self.lock:
            raw = self._events[-1] if self._events else self._last
        return _make_event(raw) if raw is not None else None

    def clear(self) -> None:
        """Forget the held events and the drop count. ``seq`` keeps counting and so do the counters."""
        with self.lock:
            self._catch_up()
            if self._events:
                self._last = self._events[-1]
            self._events.clear()
            self.dropped = 0

    def get_stats(self) -> dict[str, float]:
        """Counters since creation or the last :meth:`pop_stats`, plus the pool's current counts."""
        with self.lock:
            return self._stats()

    def pop_stats(self) -> dict[str, float]:
        """Like :meth:`get_stats`, then reset the counters to zero (the counts are gauges and stay)."""
        with self.lock:
            stats = self._stats()
            self._counters = dict.fromkeys(_COUNTERS, 0)
        return stats

    def _stats(self) -> dict[str, float]:
        self._catch_up()
        stats: dict[str, float] = dict(self._counters)
        last = self._events[-1] if self._events else self._last
        in_use, idle, waiting = last[10:13] if last else (0, 0, 0)
        stats["pool_size"] = in_use + idle
        stats["pool_available"] = idle
        stats["requests_waiting"] = waiting
        stats["events_dropped"] = self.dropped
        stats["listener_errors"] = self.listener_errors
        if "max_connections" in self.meta:
            stats["pool_max"] = self.meta["max_connections"]
        return stats

    def to_frame(self) -> pd.DataFrame:
        """The held events as a pandas DataFrame, one column per :data:`FIELDS`.

        ``frame.attrs`` carries ``dropped`` (events lost to the capacity),
        ``capacity`` and the log's ``meta`` (pool class, ``max_connections``,
        masked URL), so a saved trace says what it came from.
        """
        from ..data.frames import events_to_frame

        with self.lock:
            raw = list(self._events)
            attrs = {"dropped": self.dropped, "capacity": self.capacity, **self.meta}
        return events_to_frame(raw, attrs)
