"""Helpers for tests: a pool with fake connections, a canary listener, and the small tools every test file needs.

The fake pool runs peewee's real pool code over connections that are plain
objects, so pool logic can be tested without a database (as peewee's own pool
tests do): ``break_`` a connection to make the next checkout discard it,
``poison`` it to make check-in refuse it.

Beside it: threads started and joined with a deadline (:func:`run_threads`),
waiting on a condition instead of sleeping (:func:`wait_until`,
:func:`wait_until_async`), a free TCP port (:func:`free_port`), the command
line in a subprocess (:func:`poolviz_cli`), what a pool recorded
(:func:`kinds`, :func:`kind_reasons`), raw event rows as a process ships them
(:func:`raw`) and a log filled fast (:func:`fill`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import playhouse.pool
from peewee import Database
from playhouse.pool import PooledDatabase, PooledSqliteDatabase

from .events import CLOSE_REASONS, FIELDS, Event, EventLog
from .pools.peewee import Instrumented


class FakeConnection:
    """A stand-in driver connection that knows whether it is open, broken or reusable."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.closed = False
        self.broken = False
        self.reusable = True
        self.close_calls = 0

    def close(self) -> None:
        self.close_calls += 1
        self.closed = True

    def break_(self) -> None:
        """Make the pool find this connection dead at its next checkout."""
        self.broken = True

    def poison(self) -> None:
        """Make the pool refuse this connection at its next check-in."""
        self.reusable = False

    def __repr__(self) -> str:
        return f"<FakeConnection {self.id}{' closed' if self.closed else ''}>"


class FakeDatabase(Database):
    """A peewee ``Database`` whose driver hands out :class:`FakeConnection` objects."""

    def __init__(self, database: Any = "fake", **kwargs: Any) -> None:
        self.opened: list[FakeConnection] = []
        super().__init__(database, **kwargs)

    def _connect(self) -> FakeConnection:
        conn = FakeConnection()
        self.opened.append(conn)
        return conn

    def _set_server_version(self, conn: Any) -> None:
        self.server_version = (0, 0, 0)


class _FakePool(PooledDatabase):
    def _is_closed(self, conn: FakeConnection) -> bool:
        return conn.closed or conn.broken

    def _can_reuse(self, conn: FakeConnection) -> bool:
        return conn.reusable


class FakePooledDatabase(_FakePool, FakeDatabase):
    """peewee's pool over fake connections (plain, not instrumented)."""

    def __init__(self, database: Any = "fake", **kwargs: Any) -> None:
        super().__init__(database, **kwargs)


class InstrumentedFakePooledDatabase(Instrumented, FakePooledDatabase):
    """:class:`FakePooledDatabase` with poolviz's events."""

    _pv_validates = True

    def __init__(self, database: Any = "fake", **kwargs: Any) -> None:
        super().__init__(database, **kwargs)


class FakeClock:
    """peewee's wall clock, moved by hand, so connection ages need no sleeping.

    peewee's pool reads ``time.time()`` for ages and ``time.monotonic()`` for
    wait deadlines; :meth:`patch` swaps the first for this clock in
    ``playhouse.pool`` only (waits keep real time) until :meth:`restore`.
    """

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self._real: Any = None

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds

    def patch(self) -> FakeClock:
        """Make peewee's pool read this clock."""
        self._real = playhouse.pool.time
        playhouse.pool.time = types.SimpleNamespace(time=self.time, monotonic=time.monotonic)  # type: ignore[assignment]
        return self

    def restore(self) -> None:
        """Give peewee's pool the real clock back."""
        if self._real is not None:
            playhouse.pool.time = self._real
            self._real = None


def plain_sqlite_pool(path: str | os.PathLike[str], **kwargs: Any) -> PooledSqliteDatabase:
    """peewee's own pooled SQLite (no poolviz events) on ``path``, usable from any thread."""
    return PooledSqliteDatabase(str(path), check_same_thread=False, **kwargs)


def run_threads(threads: list[threading.Thread], timeout: float = 60.0) -> None:
    """Start every thread, then :func:`join_threads` them."""
    for thread in threads:
        thread.start()
    join_threads(threads, timeout)


def join_threads(threads: list[threading.Thread], timeout: float = 60.0) -> None:
    """Join every thread within ``timeout`` seconds in all; fail naming any still running (a deadlock?)."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, f"threads still running after {timeout:g} s (a deadlock?): {stuck}"


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.005, what: str = "") -> Any:
    """The first truthy value of ``condition()``, polled every ``every`` s; fail after ``timeout`` s naming ``what``.

    For tests that must see a state (a caller waiting, a number rising) before going on:
    a wait on a condition with a deadline, never a fixed sleep.
    """
    deadline = time.monotonic() + timeout
    while not (value := _poll(condition, deadline, timeout, what)):
        time.sleep(every)
    return value


async def wait_until_async(
    condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.001, what: str = ""
) -> Any:
    """:func:`wait_until` for a coroutine: polls ``condition()`` between turns of the event loop, so tasks run."""
    deadline = time.monotonic() + timeout
    while not (value := _poll(condition, deadline, timeout, what)):
        await asyncio.sleep(every)
    return value


def _poll(condition: Callable[[], Any], deadline: float, timeout: float, what: str) -> Any:
    # condition()'s value; a falsy one past the deadline fails the test.
    value = condition()
    assert value or time.monotonic() < deadline, f"not seen within {timeout:g} s: {what or condition}"
    return value


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it), for a server a test starts."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


#: The folder holding the ``poolviz`` package, put on ``PYTHONPATH`` for :func:`poolviz_cli`.
SOURCE_ROOT = Path(__file__).resolve().parent.parent


def poolviz_cli(
    *args: str, cwd: str | os.PathLike[str], timeout: float = 180.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m poolviz ARGS`` in ``cwd``, output captured as text with carriage returns kept.

    ``env`` adds to (or overrides) this process's environment; stdin is empty,
    so a command that would prompt fails instead of hanging.
    """
    done = subprocess.run(
        [sys.executable, "-m", "poolviz", *args],
        capture_output=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(SOURCE_ROOT), **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def kinds(source: Any) -> list[str]:
    """The kinds of the events of a pool, an :class:`EventLog`, a list of events or a frame, in order."""
    return [e.kind for e in _events_of(source)]


def kind_reasons(source: Any) -> list[tuple[str, str]]:
    """``(kind, reason)`` for each event of ``source`` (as :func:`kinds`): closes say why."""
    return [(e.kind, e.reason) for e in _events_of(source)]


def raw(
    seq: int,
    t: float,
    kind: str,
    conn: int,
    in_use: int,
    idle: int,
    *,
    waiting: int = 0,
    wait_s: float = 0.0,
    thread: str = "worker-0",
    message: str = "",
) -> tuple[Any, ...]:
    """One event as a plain tuple of the 13 fields, as a worker process ships it to a merged log."""
    return tuple(Event(seq, t, kind, conn, thread, wait_s, 0.0, False, "", message, in_use, idle, waiting))


def fill(log: EventLog, count: int, kind: str = "checkout", thread: str = "worker", wait_s: float = 0.0) -> None:
    """Record ``count`` events of ``kind`` on connections 1, 2, 3…, holding the log's lock as a pool does."""
    record = log.record
    with log.lock:
        for i in range(count):
            record(kind, i + 1, thread, 1, 0, 0, wait_s)


class Canary:
    """A listener that records every event it is given, and checks the pool lock is free."""

    def __init__(self, pool: Any = None) -> None:
        self.events: list[Event] = []
        self.calls_under_lock = 0
        self._pool_lock = getattr(pool, "_pool_lock", None)
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if self._pool_lock is not None and self._pool_lock._is_owned():
            self.calls_under_lock += 1
        with self._lock:
            self.events.append(event)

    def kinds(self) -> list[str]:
        """The recorded kinds, in order."""
        return [e.kind for e in self.events]

    def steps(self) -> list[tuple[str, int, str]]:
        """``(kind, conn, reason)`` for each recorded event: a sequence to compare exactly."""
        return [(e.kind, e.conn, e.reason) for e in self.events]


@contextmanager
def capture_events(source: Any) -> Iterator[Canary]:
    """Record the events of a pool (or :class:`EventLog`) for the ``with`` block."""
    log: EventLog = source if isinstance(source, EventLog) else source.events
    canary = Canary(None if isinstance(source, EventLog) else source)
    with log.subscribe(canary):
        yield canary


def check_invariants(events: Any, max_connections: int | None = None, *, allow_open: bool = True) -> list[str]:
    """Replay an event stream and return every broken invariant (an empty list when all hold).

    Checked: ``seq`` gap-free; each connection opened once and never used after
    its close; a connection checked out by one caller at a time, each checkout
    ended by a ``checkin`` or ``close`` of the same ``conn``; ``in_use`` never
    above ``max_connections``; and the counts on every event equal the replay's.
    ``events`` is an :class:`EventLog`, a list of :class:`Event` or a DataFrame.
    A log that does not start at ``seq`` 0 (cleared, or events dropped) is
    only checked for gaps, limits and reasons: its earlier history is unknown.
    """
    rows = _as_events(events)
    if rows and rows[0].seq != 0:
        return _check_partial(rows, max_connections)
    problems: list[str] = []
    state: dict[int, str] = {}  # conn -> 'new' | 'in_use' | 'idle' | 'closed'
    in_use = idle = waiting = 0
    waiting_threads: set[str] = set()
    for i, e in enumerate(rows):
        if i and e.seq != rows[i - 1].seq + 1:
            problems.append(f"seq gap: {rows[i - 1].seq} then {e.seq}")
        current = state.get(e.conn)
        if e.kind == "connect":
            if current is not None:
                problems.append(f"seq {e.seq}: conn {e.conn} opened twice")
            state[e.conn] = "new"
        elif e.kind == "checkout":
            if current == "idle":
                idle -= 1
            elif current != "new":
                problems.append(f"seq {e.seq}: checkout of conn {e.conn} that is {current or 'unknown'}")
            state[e.conn] = "in_use"
            in_use += 1
            if e.thread in waiting_threads:
                waiting_threads.discard(e.thread)
                waiting -= 1
        elif e.kind == "checkin":
            if current != "in_use":
                problems.append(f"seq {e.seq}: checkin of conn {e.conn} that is {current or 'unknown'}")
            else:
                in_use -= 1
            state[e.conn] = "idle"
            idle += 1
        elif e.kind == "close":
            if current == "in_use":
                in_use -= 1
            elif current == "idle":
                idle -= 1
            elif current != "new":
                problems.append(f"seq {e.seq}: close of conn {e.conn} that is {current or 'unknown'}")
            if e.reason not in CLOSE_REASONS:
                problems.append(f"seq {e.seq}: unknown close reason {e.reason!r}")
            state[e.conn] = "closed"
        elif e.kind == "wait":
            waiting_threads.add(e.thread)
            waiting += 1
        elif e.kind == "timeout":
            if e.thread in waiting_threads:
                waiting_threads.discard(e.thread)
                waiting -= 1
        elif e.kind == "dispose":
            state = {conn: "forgotten" for conn in state}
            in_use = idle = 0
        elif e.kind in ("leak", "unleak"):
            if current != "in_use":
                problems.append(f"seq {e.seq}: {e.kind} of conn {e.conn} that is {current or 'unknown'}")
        elif e.kind != "error":
            problems.append(f"seq {e.seq}: unknown kind {e.kind!r}")
        if (e.in_use, e.idle, e.waiting) != (in_use, idle, waiting):
            problems.append(
                f"seq {e.seq} ({e.kind}): counts in_use/idle/waiting "
                f"{e.in_use}/{e.idle}/{e.waiting}, replay gives {in_use}/{idle}/{waiting}"
            )
        if max_connections and e.in_use > max_connections:
            problems.append(f"seq {e.seq}: in_use {e.in_use} above max_connections {max_connections}")
        if e.kind == "error" and e.thread in waiting_threads:
            # The caller leaves its wait after the error is recorded.
            waiting_threads.discard(e.thread)
            waiting -= 1
    if not allow_open:
        still = sorted(c for c, s in state.items() if s == "in_use")
        if still:
            problems.append(f"connections still checked out at the end: {still}")
    return problems


def _check_partial(rows: list[Event], max_connections: int | None) -> list[str]:
    problems = []
    for previous, e in itertools.pairwise(rows):
        if e.seq != previous.seq + 1:
            problems.append(f"seq gap: {previous.seq} then {e.seq}")
    for e in rows:
        if max_connections and e.in_use > max_connections:
            problems.append(f"seq {e.seq}: in_use {e.in_use} above max_connections {max_connections}")
        if e.kind == "close" and e.reason not in CLOSE_REASONS:
            problems.append(f"seq {e.seq}: unknown close reason {e.reason!r}")
    return problems


def _events_of(source: Any) -> list[Event]:
    # A pool or a Canary carries its events in .events; a log, a list or a frame is them.
    if isinstance(source, EventLog | list) or hasattr(source, "itertuples"):
        return _as_events(source)
    return _as_events(source.events)


def _as_events(events: Any) -> list[Event]:
    if isinstance(events, EventLog):
        return events.snapshot()
    if hasattr(events, "itertuples"):
        return [Event(*row) for row in events[list(FIELDS)].itertuples(index=False, name=None)]
    return list(events)
