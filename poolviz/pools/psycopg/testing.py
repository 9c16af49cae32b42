"""Helpers for testing instrumented psycopg_pool pools: the stats at each event, and an event stream's sanity.

:func:`stats_at_each_event` reads psycopg_pool's own ``get_stats()`` at the
moment each event is recorded, so a test can compare the counts the events
carry with the library's; :func:`sequence_problems` replays an event stream
and lists what no pool could have done. :func:`libpq_url` turns a poolviz URL
(``postgresql+pool://...``) into one psycopg accepts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

from ...events import CLOSE_REASONS, Event

#: Close reasons issue 19 adds (poolviz.events gains them at integration).
REASONS = frozenset(CLOSE_REASONS)

_RLOCK = type(threading.RLock())


def libpq_url(url: str) -> str:
    """``postgresql+pool://u@h/db`` → ``postgresql://u@h/db``: the URL psycopg connects with."""
    return re.sub(r"^[a-z]+(\+[a-z0-9]+)?://", "postgresql://", url)


def stats_at_each_event(pool: Any) -> list[tuple[int, int, int]]:
    """From now on, psycopg_pool's ``get_stats()`` read as each event is recorded: ``(in use, available, waiting)``.

    In use is ``pool_size - pool_available``. A threaded pool must record
    holding its lock (psycopg_pool changes its counts only under it): a
    recording without it fails the pool operation with ``AssertionError``.
    Compare the list with ``(e.in_use, e.idle, e.waiting)`` of the events.
    """
    seen: list[tuple[int, int, int]] = []
    record, write = pool._pv_record, pool._pv_write
    lock = getattr(pool, "_lock", None)

    def note(kind: str) -> None:
        if isinstance(lock, _RLOCK):
            assert lock._is_owned(), f"{kind} recorded without the pool lock"  # type: ignore[attr-defined]
        stats = pool.get_stats()
        seen.append((stats["pool_size"] - stats["pool_available"], stats["pool_available"], stats["requests_waiting"]))

    def checked_record(*args: Any, **kwargs: Any) -> None:
        note(args[0])
        record(*args, **kwargs)

    def checked_write(*args: Any) -> None:  # the hot path: (now, kind, ...)
        note(args[1])
        write(*args)

    append = pool._pv_append

    def checked_append(record: tuple[Any, ...]) -> None:  # the hot path's own append: (now, kind, ...)
        note(record[1])
        append(record)

    pool._pv_record, pool._pv_write, pool._pv_append = checked_record, checked_write, checked_append
    fast = getattr(pool, "_pv_fast", None)
    if fast is not None:  # the compiled busy path appends to the tail itself: it asks first
        fast.check = note
    return seen


def sequence_problems(events: Iterable[Event], adopted: int = 0) -> list[str]:
    """Replay ``events``: every impossible step (an empty list when all hold).

    Each connection opened once, used only while open, checked out by one
    caller at a time and checked in only when out, every close with a known
    reason, every caller's wait ended by its checkout or timeout.
    ``adopted``: serials 1 to ``adopted`` were idle when the pool was instrumented.
    """
    problems = []
    state: dict[int, str] = dict.fromkeys(range(1, adopted + 1), "idle")
    waiting: set[str] = set()
    for e in events:
        now = state.get(e.conn)
        if e.kind == "connect":
            if now is not None:
                problems.append(f"seq {e.seq}: conn {e.conn} opened twice")
            state[e.conn] = "idle"
        elif e.kind == "checkout":
            if now != "idle":
                problems.append(f"seq {e.seq}: checkout of conn {e.conn} that is {now}")
            state[e.conn] = "out"
            waiting.discard(e.thread)
        elif e.kind == "checkin":
            if now != "out":
                problems.append(f"seq {e.seq}: checkin of conn {e.conn} that is {now}")
            state[e.conn] = "idle"
        elif e.kind == "close":
            if now not in ("idle", "out"):
                problems.append(f"seq {e.seq}: close of conn {e.conn} that is {now}")
            if e.reason not in REASONS:
                problems.append(f"seq {e.seq}: unknown close reason {e.reason!r}")
            state[e.conn] = "closed"
        elif e.kind == "wait":
            if e.thread in waiting:
                problems.append(f"seq {e.seq}: {e.thread} waits twice")
            waiting.add(e.thread)
        elif e.kind == "timeout":
            waiting.discard(e.thread)
    if waiting:
        problems.append(f"waits never ended: {sorted(waiting)}")
    return problems
