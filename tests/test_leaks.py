"""Leak detection: connections held past leak_threshold, and connections of threads that died."""

from __future__ import annotations

import threading
import time

import pytest

from poolviz import InstrumentedPooledSqliteDatabase
from poolviz.testing import (
    Canary,
    InstrumentedFakePooledDatabase,
    check_invariants,
    kind_reasons,
    kinds,
    wait_until,
)


def hold_past(threshold: float) -> None:
    """Let a held connection age past ``threshold``: a wait for time itself, ordering no thread.

    Only for a test whose point is what happens once a leak is old enough
    (another caller's checkout finding it); a test that needs the leak
    reported waits until it is (``wait_until(db.leaks)``).
    """
    time.sleep(threshold * 1.5)


def test_held_connection_is_reported_once_then_unleaked() -> None:
    """A connection held past the threshold gets one leak event (holder, origin), and unleak on return."""
    db = InstrumentedFakePooledDatabase(max_connections=2, leak_threshold=0.02)
    conn = db._connect()
    leaks = wait_until(db.leaks, what="the held connection reported as a leak")
    db.leaks()
    assert [(leak.conn, leak.thread, leak.thread_alive) for leak in leaks] == [(1, "MainThread", True)]
    assert "test_leaks.py" in leaks[0].origin
    db._close(conn)
    assert kind_reasons(db) == [("connect", ""), ("checkout", ""), ("leak", "held"), ("unleak", ""), ("checkin", "")]
    assert db.leaks() == []
    assert check_invariants(db.events, 2, allow_open=False) == []


def test_leaks_are_found_by_other_callers_too() -> None:
    """Another caller's checkout notices a leak without anyone asking."""
    db = InstrumentedFakePooledDatabase(max_connections=3, leak_threshold=0.02)
    db._connect()
    hold_past(0.02)
    db._close(db._connect())
    assert "leak" in kinds(db)


def test_thread_that_died_holding_a_connection_is_reported_and_reclaimed(tmp_path) -> None:
    """A thread that exits without closing keeps its slot; leaks() says so and reclaim frees it."""
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "leak.db"), max_connections=1, leak_threshold=0.02)
    worker = threading.Thread(target=lambda: db.execute_sql("SELECT 1"), name="forgetful")
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    (leak,) = wait_until(db.leaks, what="the dead thread's connection reported as a leak")
    assert (leak.thread, leak.thread_alive) == ("forgetful", False)
    assert db.reclaim_dead_threads() == 1
    with db.connection_context():
        db.execute_sql("SELECT 1")
    steps = [(e.kind, e.conn, e.reason) for e in db.events.snapshot()]
    assert ("leak", 1, "thread_exited") in steps and ("close", 1, "manual") in steps
    assert steps[-2:] == [("checkout", 2, ""), ("checkin", 2, "")]


def test_leak_detection_is_off_by_default() -> None:
    """Without leak_threshold, leaks() says how to turn it on."""
    with pytest.raises(ValueError, match="leak_threshold=<seconds>"):
        InstrumentedFakePooledDatabase().leaks()


@pytest.mark.parametrize("value", [0, -1, "1s", True])
def test_bad_leak_threshold_is_refused(value: object) -> None:
    """leak_threshold must be a positive number of seconds, and the error names the value."""
    with pytest.raises(ValueError, match=rf"leak_threshold must be None or a number of seconds > 0, got {value!r}"):
        InstrumentedFakePooledDatabase(leak_threshold=value)


def watchdogs(db: object) -> list[threading.Thread]:
    """The leak watchdog threads running for ``db``."""
    return [t for t in threading.enumerate() if t.name == f"poolviz-leak-watchdog-{id(db):x}" and t.is_alive()]


def test_leak_is_reported_at_the_threshold_while_held_with_no_other_traffic() -> None:
    """With nobody else touching the pool, the watchdog records the leak at about the threshold, still held."""
    db = InstrumentedFakePooledDatabase(max_connections=2, leak_threshold=0.05)
    canary = Canary(db)
    reported = threading.Event()
    db.events.subscribe(canary)
    db.events.subscribe(lambda e: reported.set() if e.kind == "leak" else None)
    conn = db._connect()
    assert reported.wait(5), "no leak event while the connection was held"
    checkout, leak = (e for e in canary.events if e.kind in ("checkout", "leak"))
    assert leak.in_use == 1 and leak.thread == "MainThread" and leak.reason == "held"
    assert leak.t - checkout.t >= 0.05
    assert leak.duration_s >= 0.05
    assert canary.calls_under_lock == 0
    db._close(conn)
    db.close_all()
    assert canary.kinds()[-3:] == ["unleak", "checkin", "close"]


def test_watchdog_starts_only_with_a_threshold_and_stops_on_close_all_and_dispose() -> None:
    """No threshold, no thread; with one, a checkout starts it and close_all or dispose joins it."""
    plain = InstrumentedFakePooledDatabase(max_connections=2)
    plain._close(plain._connect())
    assert not [t for t in threading.enumerate() if t.name.startswith(f"poolviz-leak-watchdog-{id(plain):x}")]
    for end in ("close_all", "dispose"):
        db = InstrumentedFakePooledDatabase(max_connections=2, leak_threshold=10)
        db._connect()
        assert len(watchdogs(db)) == 1
        getattr(db, end)()
        assert watchdogs(db) == [], f"{end} left the watchdog running"


def test_watchdog_exits_once_nothing_is_checked_out_and_restarts_at_the_next_checkout() -> None:
    """An idle pool costs no thread: the watchdog leaves, and the next checkout brings it back."""
    db = InstrumentedFakePooledDatabase(max_connections=2, leak_threshold=0.01)
    db._close(db._connect())
    wait_until(lambda: not watchdogs(db), what="the watchdog leaving")
    conn = db._connect()
    assert len(watchdogs(db)) == 1
    db._close(conn)
    db.close_all()
    assert watchdogs(db) == []
