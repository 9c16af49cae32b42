"""The log that holds a pool's events: bounded, thread-safe, with listeners, counters and cursors.

The vocabulary (kinds, close reasons, the :class:`Event` record) is in
:mod:`poolviz.events.vocabulary`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import checks
from . import store
from .store import CHUNK, Record, Store
from .vocabulary import DEFAULT_CAPACITY, Event

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("poolviz.events")

Listener = Callable[[Event], Any]
_new_event = tuple.__new__  # _new_event(Event, fields): Event._make without its checks


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

    def read_rows(self, limit: int | None = None) -> tuple[list[tuple[Any, ...]], int]:
        """Like :meth:`read`, as plain tuples of the 13 :class:`Event` fields: cheaper for a
        reader that only writes them out (a recording's flusher, in the application's process)."""
        return self._take(limit, store.rows)

    def read(self, limit: int | None = None) -> tuple[list[Event], int]:
        """``(events, lost)``: the events recorded since the last read (at most ``limit``, oldest
        first) and how many this cursor will never see because the log no longer held them
        (dropped by its capacity, or forgotten by :meth:`EventLog.clear`) since the last read.
        """
        return self._take(limit, store.events)

    def _take(self, limit: int | None, build: Callable[..., list[Any]]) -> tuple[list[Any], int]:
        # `build(first_seq, records, counts, t0)` turns the copied records into what the reader wants.
        limit = checks.count("limit", limit, none_means="no limit")
        with self._lock:
            log = self._log
            start, records, counts, first = log._copy(self.next_seq, limit)
            taken = build(start, records, counts, log.t0)
            lost = max(0, first - self.next_seq)
            self.next_seq = max(self.next_seq, first) + len(taken)
            self.lost += lost
        return taken, lost


class EventLog:
    """A bounded record of pool events, with listeners and counters.

    The log keeps the newest ``capacity`` events; older ones are dropped and
    counted in :attr:`dropped`. Counters (:meth:`get_stats`) count every event,
    dropped or not. Listeners are called by the pool after it releases its
    lock, in the thread that caused the event; a listener that raises is
    counted in :attr:`listener_errors` and logged, and the pool carries on.

    Writers call :meth:`write` (or :meth:`record`) holding :attr:`lock` (a pool
    passes its own pool lock, so recording costs no second lock and ``seq``
    follows the pool's order). Events are stored lean (see
    :mod:`poolviz.events.store`) and become :class:`Event` s when read; readers
    take the lock only to copy the records they read.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, lock: Any = None) -> None:
        self.capacity: int = checks.count("capacity", capacity)
        self.lock = lock if lock is not None else threading.RLock()
        self.meta: dict[str, Any] = {}
        self._store = Store(self.capacity, self._discard)
        # The counts after the newest record, kept up to date only while anyone listens.
        self._live: tuple[int, int, int] | None = None
        self._listeners: tuple[Listener, ...] = ()
        #: ``[True]`` while anyone listens, else ``[False]``: one list, read by the compiled busy path.
        self.listening: list[bool] = [False]
        # Told (under the lock) when the first listener arrives and the last leaves.
        self.on_listening: Callable[[bool], None] | None = None
        self._pending = threading.local()
        self._t0 = time.perf_counter()
        self.listener_errors = 0
        self._counters: dict[str, float] = dict.fromkeys(_COUNTERS, 0)
        self._counted = 0  # seq of the first event not yet in the counters
        self._last: Event | None = None
        #: ``write(now, kind, conn, thread, in_use, idle, waiting, extra=None)``: the one
        #: way events get in, for every pool. ``now`` is the caller's ``time.perf_counter()``
        #: reading, the counts are the pool's right after the event, ``extra`` the payload
        #: (``None``, a float ``since`` for ``duration_s = now - since``, or
        #: :func:`poolviz.events.store.payload`'s 5-tuple). Hold :attr:`lock`.
        self.write = self._make_writer()
        held = self._store
        #: The hot path of a pool that keeps no counts (peewee's threaded pools): while nobody
        #: listens it may ``append((now, kind, conn, thread, change, extra))`` itself, ``change``
        #: an index into :data:`poolviz.events.store.DELTAS`, holding :attr:`lock`, and must call
        #: :meth:`roll` once ``len(tail) >= store.CHUNK``. Both lists keep their identity.
        self.tail = held.tail
        self.append = held.tail.append
        self.roll = held.roll

    def _make_writer(self) -> Callable[..., None]:
        # A closure keeps its state in cells, cheaper to reach than attributes.
        held = self._store
        tail = held.tail
        append = tail.append
        roll = held.roll
        log = self

        def write(
            now: float,
            kind: str,
            conn: int,
            thread: str,
            in_use: int,
            idle: int,
            waiting: int,
            extra: Any = None,
        ) -> None:
            record = (now, kind, conn, thread, in_use, idle, waiting, extra)
            append(record)
            if len(tail) >= CHUNK:
                roll()
            if log._listeners:
                log.hold(record)

        def write_change(now: float, kind: str, conn: int, thread: str, change: int, extra: Any = None) -> None:
            record = (now, kind, conn, thread, change, extra)
            append(record)
            if len(tail) >= CHUNK:
                roll()
            if log._listeners:
                log.hold(record)

        #: ``write_change(now, kind, conn, thread, change, extra=None)``: :attr:`write` for a
        #: pool that keeps no counts: ``change`` is what the event did to them, an index into
        #: :data:`poolviz.events.store.DELTAS`. Hold :attr:`lock`.
        self.write_change = write_change
        return write

    def assume_counts(self, in_use: int, idle: int, waiting: int = 0) -> None:
        """The pool's counts before its first event (a pool instrumented while in use). Hold :attr:`lock`."""
        self._store.assume((in_use, idle, waiting))

    @property
    def t0(self) -> float:
        """The ``time.perf_counter()`` reading that ``t == 0`` stands for."""
        return self._t0

    def now(self) -> float:
        """Seconds since this log started, on the clock events use."""
        return time.perf_counter() - self._t0

    @property
    def dropped(self) -> int:
        """Events lost to the capacity since creation or the last :meth:`clear`."""
        return self._store.dropped

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
        *,
        now: float | None = None,
    ) -> None:
        """Append one event stamped ``now`` (a ``time.perf_counter()`` reading; default: now). Hold :attr:`lock`.

        The readable form of :attr:`write`, one field an argument.
        """
        self.write(
            time.perf_counter() if now is None else now,
            kind,
            conn,
            thread,
            in_use,
            idle,
            waiting,
            store.payload(wait_s, duration_s, reused, reason, message),
        )

    def hold(self, record: Record) -> None:
        """Keep the record just appended for this thread's :meth:`flush` (write() does it while anyone listens).

        A pool that appends to :attr:`tail` itself calls it while anyone listens. Hold :attr:`lock`.
        """
        held = self._store
        if len(record) != store.SHORT:
            live = record[4:7]
        elif self._live is None:
            live = held.counts_now() or (0, 0, 0)  # the first since listening began: this record included
        else:
            in_use, idle, waiting = self._live
            d_in_use, d_idle, d_waiting = store.DELTAS[record[4]]
            live = (in_use + d_in_use, idle + d_idle, waiting + d_waiting)
        self._live = live
        item = (held.tail_start + len(held.tail) - 1, record, live)
        try:
            self._pending.events.append(item)
        except AttributeError:
            self._pending.events = [item]

    @property
    def has_listeners(self) -> bool:
        """Whether anyone is subscribed: callers skip delivery work when nobody listens."""
        return bool(self._listeners)

    def _discard(self, first_seq: int, chunk: list[Record]) -> None:
        # The store drops a chunk for good: count what the counters have not seen.
        if first_seq + len(chunk) > self._counted:
            self._count(chunk[max(0, self._counted - first_seq) :])
            self._counted = first_seq + len(chunk)

    def _count(self, records: list[Record]) -> None:
        c = self._counters
        expand = store.expand
        for record in records:
            now, kind, extra = record[0], record[1], record[-1]
            if kind == "checkout":
                c["requests_num"] += 1
                if extra is not None:
                    c["requests_wait_ms"] += expand(now, extra)[0] * 1000.0
            elif kind == "checkin":
                c["usage_ms"] += expand(now, extra)[1] * 1000.0
            elif kind == "wait":
                c["requests_queued"] += 1
            elif kind == "timeout":
                c["requests_num"] += 1
                c["requests_errors"] += 1
                c["requests_wait_ms"] += expand(now, extra)[0] * 1000.0
            elif kind == "connect":
                c["connections_num"] += 1
                c["connections_ms"] += expand(now, extra)[1] * 1000.0
            elif kind == "close":
                c["connections_closed"] += 1
                reason = expand(now, extra)[3]
                if reason == "broken":
                    c["connections_lost"] += 1
                elif reason == "not_reusable":
                    c["returns_bad"] += 1
            elif kind == "error":
                c["connections_errors"] += 1

    def _catch_up(self) -> None:
        # Counters are brought up to date when read, not on the hot path.
        held = self._store
        start = max(self._counted, held.base())
        if start < held.next_seq():
            self._count(held.slice(start, held.next_seq())[0])
            self._counted = held.next_seq()

    def flush(self) -> None:
        """Deliver this thread's recorded events to the listeners. Never call it holding a pool lock."""
        pending = getattr(self._pending, "events", None)
        if not pending:
            return
        self._pending.events = []
        listeners = self._listeners
        t0 = self._t0
        expand = store.expand
        for seq, record, counts in pending:
            now, kind, conn, thread = record[:4]
            event = _new_event(Event, (seq, now - t0, kind, conn, thread, *expand(now, record[-1]), *counts))
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
            self.listening[0] = True
            if len(self._listeners) == 1 and self.on_listening is not None:
                self.on_listening(True)
        return Subscription(self, listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        with self.lock:
            had = bool(self._listeners)
            self._listeners = tuple(f for f in self._listeners if f is not listener)
            self.listening[0] = bool(self._listeners)
            if had and not self._listeners:
                self._live = None
                if self.on_listening is not None:
                    self.on_listening(False)

    def _copy(self, seq: int = 0, limit: int | None = None) -> tuple[int, list[Record], store.Counts, int]:
        # Under the lock: (seq of the first record copied, the records held from seq on
        # (at most limit), the counts before the first, the oldest seq still held or,
        # when none is, the next to come).
        with self.lock:
            held = self._store
            first = held.first_seq()
            start = max(seq, first)
            stop = held.next_seq()
            if limit is not None:
                stop = min(stop, start + limit)
            records, counts = held.slice(start, stop)
            return start, records, counts, first

    def snapshot(self) -> list[Event]:
        """The events currently held, oldest first."""
        start, records, counts, _first = self._copy()
        return store.events(start, records, counts, self._t0)

    def since(self, seq: int) -> list[Event]:
        """Held events with ``seq >= seq``, oldest first (cheap for a poller that keeps its place)."""
        start, records, counts, _first = self._copy(seq)
        return store.events(start, records, counts, self._t0)

    def cursor(self, start_seq: int | None = None) -> Cursor:
        """A :class:`Cursor` that reads events from ``seq == start_seq`` on.

        ``None`` (the default) starts from now: the first read returns only
        events recorded after this call. ``start_seq=0`` starts from the first
        event ever recorded: the first read returns every event still held and
        counts as lost those the log no longer holds.
        """
        if start_seq is None:
            with self.lock:
                start = self._store.next_seq()
        else:
            start = checks.integer("start_seq", start_seq)
            if start < 0:
                raise ValueError(f"start_seq must be None or an integer >= 0, got {start_seq!r}")
        return Cursor(self, start)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self._store)

    @property
    def last(self) -> Event | None:
        """The most recent event, kept even when the log has been cleared."""
        with self.lock:
            return self._last_event()

    def _last_event(self) -> Event | None:
        held = self._store
        if held.next_seq() == held.tail_start and not held.chunks:
            return self._last
        seq = held.next_seq() - 1
        records, counts = held.slice(seq, seq + 1)
        return store.events(seq, records, counts, self._t0)[0]

    def clear(self) -> None:
        """Forget the held events and the drop count. ``seq`` keeps counting and so do the counters."""
        with self.lock:
            self._catch_up()
            self._last = self._last_event()
            self._store.clear()

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
        last = self._last_event()
        in_use, idle, waiting = (last.in_use, last.idle, last.waiting) if last else (0, 0, 0)
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
            start, records, counts, _first = self._copy()
            attrs = {"dropped": self.dropped, "capacity": self.capacity, **self.meta}
        return events_to_frame(store.rows(start, records, counts, self._t0), attrs)
