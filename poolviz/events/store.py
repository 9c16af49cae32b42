"""How an :class:`~poolviz.events.EventLog` holds its events: lean records in chunks, full Events when read.

A pool records holding its lock, so a record is built to be cheap, not to be
read. It keeps only what nobody can work out later:

``(now, kind, conn, thread, in_use, idle, waiting, extra)``

* ``now`` is the caller's own ``perf_counter()`` reading (``t`` is ``now - t0``,
  worked out when read);
* ``seq`` is not stored: the held events are gap-free, so an event's ``seq`` is
  the seq of the first held one plus its position;
* ``thread`` is the caller's thread name, which the pools read once per thread
  and keep (so a record holds a reference to a string that already exists);
* the counts are the small integers the pool keeps anyway (CPython shares them:
  storing one allocates nothing);
* ``extra`` is the payload (``wait_s, duration_s, reused, reason, message``):
  ``None`` for none, a float ``since`` for an event whose only payload is a
  duration up to now (a check-in stores the checkout's clock reading, which the
  pool already holds, and ``duration_s`` is ``now - since``), or the 5-tuple.

The records sit in lists of :data:`CHUNK` records (appending to a list is the
cheapest growth there is); chunks older than the newest ``capacity`` records
are dropped whole, so the log holds between ``capacity`` and
``capacity + CHUNK`` records and reads skip the surplus.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from .vocabulary import Event

#: Records per chunk.
CHUNK = 1024
#: The payload of most events: no wait, no duration, not reused, no reason, no message.
NO_PAYLOAD: tuple[float, float, bool, str, str] = (0.0, 0.0, False, "", "")
#: The payload of a checkout of an idle connection that did not wait.
REUSED: tuple[float, float, bool, str, str] = (0.0, 0.0, True, "", "")

Record = tuple[float, str, int, str, int, int, int, Any]
_new_event = tuple.__new__  # _new_event(Event, fields): Event._make without its checks


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


def rows(first_seq: int, records: list[Record], t0: float) -> list[tuple[Any, ...]]:
    """The records as tuples of the 13 :class:`Event` fields, the first one numbered ``first_seq``."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    seq = first_seq
    for now, kind, conn, thread, in_use, idle, waiting, extra in records:
        if extra is None:
            append((seq, now - t0, kind, conn, thread, 0.0, 0.0, False, "", "", in_use, idle, waiting))
        elif extra.__class__ is float:
            append((seq, now - t0, kind, conn, thread, 0.0, now - extra, False, "", "", in_use, idle, waiting))
        else:
            append((seq, now - t0, kind, conn, thread, *extra, in_use, idle, waiting))
        seq += 1
    return out


def events(first_seq: int, records: list[Record], t0: float) -> list[Event]:
    """The records as :class:`Event` s, the first one numbered ``first_seq``."""
    return [_new_event(Event, row) for row in rows(first_seq, records, t0)]


class Store:
    """Bounded storage of records with gap-free seqs; not thread-safe (the log's lock guards it).

    ``write`` (made by :meth:`make_writer`) is the one way records get in.
    """

    __slots__ = ("_reset", "base", "capacity", "chunks", "cleared", "write")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        #: The chunks, oldest first; every chunk but the last holds exactly CHUNK records.
        self.chunks: list[list[Record]] = [[]]
        #: The seq of the first record of ``chunks[0]``.
        self.base = 0
        #: The seq the log was last cleared at (0 if never): what was dropped since is counted from here.
        self.cleared = 0
        self.write: Callable[..., None] = _never
        self._reset: Callable[[], None] = _never

    def make_writer(self, log: Any) -> Callable[..., None]:
        """Build :attr:`write`: ``write(now, kind, conn, thread, in_use, idle, waiting, extra=None)``.

        While ``log._listeners`` is not empty each record also goes to
        ``log._hold(record)`` for delivery; ``log._discard(first_seq, chunk)``
        is told of each chunk dropped for good.
        """
        # The hot path: a closure keeps its state in cells, cheaper to reach than attributes.
        chunks = self.chunks
        tail = chunks[-1]
        store = self
        capacity = self.capacity

        def write(
            now: float, kind: str, conn: int, thread: str, in_use: int, idle: int, waiting: int, extra: Any = None
        ) -> None:
            record = (now, kind, conn, thread, in_use, idle, waiting, extra)
            tail.append(record)
            if len(tail) == CHUNK:
                roll()
            if log._listeners:
                log._hold(record)

        def roll() -> None:
            nonlocal tail
            tail = []
            chunks.append(tail)
            # The oldest chunk goes once every record in it is older than the newest `capacity`.
            while (len(chunks) - 2) * CHUNK >= capacity:
                log._discard(store.base, chunks.pop(0))
                store.base += CHUNK

        def reset() -> None:
            nonlocal tail
            store.base = store.cleared = store.next_seq()
            tail = []
            chunks[:] = [tail]

        self._reset = reset
        self.write = write
        return write

    def next_seq(self) -> int:
        """The seq the next record will get."""
        chunks = self.chunks
        return self.base + (len(chunks) - 1) * CHUNK + len(chunks[-1])

    def first_seq(self) -> int:
        """The seq of the oldest record held (``next_seq()`` when none is)."""
        return max(self.base, self.next_seq() - self.capacity)

    def __len__(self) -> int:
        return self.next_seq() - self.first_seq()

    @property
    def dropped(self) -> int:
        """Records lost to the capacity since the last :meth:`clear`."""
        return self.first_seq() - self.cleared

    def last(self) -> Record | None:
        """The newest record, if any is held."""
        chunks = self.chunks
        if chunks[-1]:
            return chunks[-1][-1]
        return chunks[-2][-1] if len(chunks) > 1 else None

    def slice(self, start: int, stop: int) -> list[Record]:
        """The records with ``start <= seq < stop`` (both within what is held)."""
        if stop <= start:
            return []
        chunks = self.chunks
        first, offset = divmod(start - self.base, CHUNK)
        last, end = divmod(stop - self.base, CHUNK)
        if first == last:
            return chunks[first][offset:end]
        parts = [chunks[first][offset:], *chunks[first + 1 : last]]
        if end:
            parts.append(chunks[last][:end])
        return list(itertools.chain.from_iterable(parts))

    def all_from(self, seq: int) -> list[Record]:
        """Every held record from ``seq`` on, counted ones included (``seq`` no older than :attr:`base`)."""
        return self.slice(seq, self.next_seq())

    def clear(self) -> None:
        """Forget every record; seqs carry on from where they were."""
        self._reset()


def _never(*args: Any) -> None:
    raise RuntimeError("Store.make_writer() was not called")
