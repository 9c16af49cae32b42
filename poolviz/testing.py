"""Helpers for tests: a pool with fake connections, and a canary listener.

The fake pool runs peewee's real pool code over connections that are plain
objects, so pool logic can be tested without a database (as peewee's own pool
tests do): ``break_`` a connection to make the next checkout discard it,
``poison`` it to make check-in refuse it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peewee import Database
from playhouse.pool import PooledDatabase

from .events import Event, EventLog
from .pools import _Instrumented


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


class InstrumentedFakePooledDatabase(_Instrumented, FakePooledDatabase):
    """:class:`FakePooledDatabase` with poolviz's events."""

    _pv_validates = True


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
