"""How an :class:`~poolviz.events.EventLog` holds its events: lean records, full Events when read.

A pool records holding its lock, so a record is built to be cheap, not to be
read. It keeps only what nobody can work out later:

``(now, kind, conn, thread, in_use, idle, waiting, extra)``, or, from a pool
that keeps no counts of its own on its hot path, ``(now, kind, conn, thread,
change, extra)``

* ``now`` is the caller's own ``perf_counter()`` reading (``t`` is ``now - t0``,
  worked out when read);
* ``seq`` is not stored: the held events are gap-free, so an event's ``seq`` is
  the seq of the first held one plus its position;
* ``thread`` is the caller's thread name, which the pools read once per thread
  and keep (a record holds a reference to a string that already exists);
* ``in_use, idle, waiting`` are the pool's counts right after the event; or,
  in the shorter form, ``change`` is a small integer naming how the event
  changed them (an index into :data:`DELTAS`: a check-in is one fewer in use
  and one more idle). Such counts are worked out when read, from the newest
  full counts before the event; the store keeps the counts at the start of
  each chunk (worked out once, when first needed), so a read never goes back
  further than one chunk, and a chunk dropped for good hands them on;
* ``extra`` is the payload (``wait_s, duration_s, reused, reason, message``):
  ``None`` for none, a float ``since`` for an event whose only payload is a
  duration up to now (a check-in stores the checkout's clock reading, which the
  pool holds anyway, and ``duration_s`` is ``now - since``), or the 5-tuple.

Records are appended to one list, the *tail*, which never changes identity
(so a pool may keep its bound ``append``); every :data:`CHUNK` or so records
the tail's contents move into a chunk of their own. Chunks older than the
newest ``capacity`` records are dropped whole, so the store holds between
``capacity`` and about ``capacity + CHUNK`` records and reads skip the surplus.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from operator import itemgetter
from typing import Any

from .vocabulary import Event

#: Records per chunk (a chunk may hold one more: a pool checks the length once per checkout and check-in).
CHUNK = 1024
#: The payload of most events: no wait, no duration, not reused, no reason, no message.
NO_PAYLOAD: tuple[float, float, bool, str, str] = (0.0, 0.0, False, "", "")
#: The payload of a checkout of an idle connection that did not wait.
REUSED: tuple[float, float, bool, str, str] = (0.0, 0.0, True, "", "")

#: How an event changes ``(in_use, idle, waiting)``, by the small integer a record stores instead of counts.
DELTAS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),  # SAME
    (1, 0, 0),  # OPENED_OUT: a new connection checked out
    (1, -1, 0),  # REUSED_OUT: an idle connection checked out
    (1, 0, -1),  # OPENED_OUT_WAITED
    (1, -1, -1),  # REUSED_OUT_WAITED
    (-1, 1, 0),  # BACK: checked in
    (-1, 0, 0),  # CLOSED_IN_USE
    (0, -1, 0),  # CLOSED_IDLE
    (0, 0, 1),  # WAITS
    (0, 0, -1),  # STOPS_WAITING
)
SAME, OPENED_OUT, REUSED_OUT, OPENED_OUT_WAITED, REUSED_OUT_WAITED, BACK, CLOSED_IN_USE, CLOSED_IDLE = range(8)
WAITS, STOPS_WAITING = 8, 9

Counts = tuple[int, int, int]
Record = tuple[Any, ...]
#: The length of a record that carries a change code rather than the counts.
SHORT = 6
_new_event = tuple.__new__  # _new_event(Event, fields): Event._make without its checks
_change_of = itemgetter(4)


def payload(
    wait_s: float = 0.0, duration_s: float = 0.0, reused: bool = False, reason: str = "", message: str = ""
) -> tuple[float, float, bool, str, str] | None:
    """The ``extra`` of a record with this payload (``None`` when it is all defaults)."""
    if not (wait_s or duration_s or reused or reason or message):
        return None
    return (float(wait_s), float(duration_s), bool(reused), reason, message)


def expand(now: float, extra: Any) -> tuple[float, float, bool, str, str]:
    """A record's ``extra`` as the five payload fields."""
    if extra is None:
        return NO_PAYLOAD
    if extra.__class__ is float:
        return (0.0, now - extra, False, "", "")
    return extra  # type: ignore[no-any-return]


def advance(counts: Counts, records: list[Record]) -> Counts:
    """The counts after ``records``, starting from ``counts`` before them."""
    # From the newest full counts on, the changes add up: count them in C.
    start = 0
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        if len(record) != SHORT:
            counts, start = record[4:7], index + 1
            break
    in_use, idle, waiting = counts
    for code, times in Counter(map(_change_of, records[start:])).items():
        d_in_use, d_idle, d_waiting = DELTAS[code]
        in_use += d_in_use * times
        idle += d_idle * times
        waiting += d_waiting * times
    return (in_use, idle, waiting)


def rows(first_seq: int, records: list[Record], counts: Counts, t0: float) -> list[tuple[Any, ...]]:
    """The records as tuples of the 13 :class:`Event` fields: the first numbered ``first_seq``, ``counts`` before it."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    seq = first_seq
    deltas = DELTAS
    in_use, idle, waiting = counts
    for record in records:
        if len(record) == SHORT:
            now, kind, conn, thread, change, extra = record
            d_in_use, d_idle, d_waiting = deltas[change]
            in_use += d_in_use
            idle += d_idle
            waiting += d_waiting
        else:
            now, kind, conn, thread, in_use, idle, waiting, extra = record
        if extra is None:
            append((seq, now - t0, kind, conn, thread, 0.0, 0.0, False, "", "", in_use, idle, waiting))
        elif extra.__class__ is float:
            append((seq, now - t0, kind, conn, thread, 0.0, now - extra, False, "", "", in_use, idle, waiting))
        else:
            append((seq, now - t0, kind, conn, thread, *extra, in_use, idle, waiting))
        seq += 1
    return out


def events(first_seq: int, records: list[Record], counts: Counts, t0: float) -> list[Event]:
    """Like :func:`rows`, as :class:`Event` s."""
    return [_new_event(Event, row) for row in rows(first_seq, records, counts, t0)]


class Store:
    """Bounded storage of records with gap-free seqs; not thread-safe (the log's lock guards it)."""

    __slots__ = ("capacity", "chunks", "cleared", "marks", "on_discard", "starts", "tail", "tail_mark", "tail_start")

    def __init__(self, capacity: int, on_discard: Any) -> None:
        self.capacity = capacity
        #: ``on_discard(first_seq, chunk)`` is told of each chunk dropped for good.
        self.on_discard = on_discard
        #: Where records are appended; the same list object for the store's whole life.
        self.tail: list[Record] = []
        #: The seq of ``tail[0]``, and the counts before it (None: not worked out yet).
        self.tail_start = 0
        self.tail_mark: Counts | None = (0, 0, 0)
        #: Older records, in chunks, oldest first; the seq of each chunk's first record; the counts before it.
        self.chunks: list[list[Record]] = []
        self.starts: list[int] = []
        self.marks: list[Counts | None] = []
        #: The seq the store was last cleared at (0 if never): drops are counted from here.
        self.cleared = 0

    def roll(self) -> None:
        """Move the tail's records into a chunk of their own, and drop the chunks now wholly too old."""
        tail = self.tail
        self.chunks.append(tail[:])
        self.starts.append(self.tail_start)
        self.marks.append(self.tail_mark)
        self.tail_start += len(tail)
        self.tail_mark = None
        del tail[:]
        starts = self.starts
        # The oldest chunk goes once the records after it are at least `capacity`.
        while len(starts) > 1 and self.tail_start - starts[1] >= self.capacity:
            self._mark(1)
            self.on_discard(starts.pop(0), self.chunks.pop(0))
            self.marks.pop(0)

    def _mark(self, index: int) -> Counts:
        # The counts before chunk `index` (len(chunks): the tail), worked out from the nearest known one.
        marks = self.marks
        known = index
        while (marks[known] if known < len(marks) else self.tail_mark) is None:
            known -= 1
        counts: Counts = marks[known] if known < len(marks) else self.tail_mark  # type: ignore[assignment]
        for i in range(known, index):
            counts = advance(counts, self.chunks[i])
            if i + 1 < len(marks):
                marks[i + 1] = counts
            else:
                self.tail_mark = counts
        return counts

    def next_seq(self) -> int:
        """The seq the next record will get."""
        return self.tail_start + len(self.tail)

    def base(self) -> int:
        """The seq of the oldest record still in memory (some may be past the capacity)."""
        return self.starts[0] if self.starts else self.tail_start

    def first_seq(self) -> int:
        """The seq of the oldest record held (``next_seq()`` when none is)."""
        return max(self.base(), self.next_seq() - self.capacity)

    def __len__(self) -> int:
        return self.next_seq() - self.first_seq()

    @property
    def dropped(self) -> int:
        """Records lost to the capacity since the last :meth:`clear`."""
        return self.first_seq() - self.cleared

    def slice(self, start: int, stop: int) -> tuple[list[Record], Counts]:
        """The records with ``start <= seq < stop`` (no older than :meth:`base`), and the counts before ``start``."""
        chunks = self.chunks
        index = len(chunks) if start >= self.tail_start else bisect.bisect_right(self.starts, start) - 1
        counts = self._mark(index)
        position = self.starts[index] if index < len(chunks) else self.tail_start
        out: list[Record] = []
        for chunk in itertools.chain(itertools.islice(chunks, index, None), (self.tail,)):
            if position >= stop:
                break
            low = start - position
            if low > 0:
                counts = advance(counts, chunk[:low])
            out += chunk[max(low, 0) : stop - position]
            position += len(chunk)
        return out, counts

    def counts_now(self, tail_records: int | None = None) -> Counts | None:
        """The counts after the newest record, or after the first ``tail_records`` of the tail (None: none ever)."""
        tail = self.tail if tail_records is None else self.tail[:tail_records]
        if self.tail_start + len(tail) == 0:
            return None
        return advance(self._mark(len(self.chunks)), tail)

    def assume(self, counts: Counts) -> None:
        """Take ``counts`` as the counts before the first record (a pool adopted in use). Before any record only."""
        if self.next_seq() != 0:
            raise RuntimeError("assume() must come before the first record")
        self.tail_mark = counts

    def clear(self) -> None:
        """Forget every record; seqs carry on, and so do the counts."""
        # A compiled writer (poolviz.pools.busypath) may append between two of these lines, without the
        # lock: what it appends after `held` was taken stays, as the first record after the clear.
        held = len(self.tail)
        counts = self.counts_now(held) or (0, 0, 0)
        self.tail_start = self.cleared = self.tail_start + held
        self.tail_mark = counts
        del self.tail[:held]
        self.chunks.clear()
        self.starts.clear()
        self.marks.clear()
