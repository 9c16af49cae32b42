"""Listeners are user code: one that raises or blocks must not stop the pool, and none runs under its lock."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any

import pytest
from peewee import OperationalError

from poolviz import CLOSE_REASONS, KINDS, InstrumentedPooledSqliteDatabase, MaxConnectionsExceeded
from poolviz.testing import (
    Canary,
    FakeClock,
    FakeDatabase,
    InstrumentedFakePooledDatabase,
    check_invariants,
    join_threads,
    run_threads,
)

OTHERS, EACH = 4, 50


class SlowListener:
    """Blocks the first ``kind`` event of thread ``victim`` until released (never longer than 30 s)."""

    def __init__(self, victim: str, kind: str) -> None:
        self.victim, self.kind = victim, kind
        self.entered, self.released = threading.Event(), threading.Event()
        self.timed_out = False

    def __call__(self, event: Any) -> None:
        if event.kind == self.kind and event.thread == self.victim and not self.entered.is_set():
            self.entered.set()
            self.timed_out = not self.released.wait(30)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("kind", "pool_size"),
    [("checkin", 1), ("checkout", 2)],
    ids=["blocked-after-checkin-pool-of-1", "blocked-holding-a-connection-pool-of-2"],
)
def test_slow_listener_does_not_hold_up_other_callers(
    tmp_path: Any, kind: str, pool_size: int, no_new_threads: None
) -> None:
    """While a listener blocks one thread, 4 other threads complete 50 requests each through the pool.

    Blocked on its own check-in, the slow thread has already returned its
    connection: even a pool of one serves everyone else. Blocked on its
    checkout, it holds one connection and the others share the second.
    """
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "slow.db"), max_connections=pool_size, timeout=30)
    slow = SlowListener("slow", kind)
    db.events.subscribe(slow)
    canary = Canary(db)
    db.events.subscribe(canary)
    crashes: list[BaseException] = []

    def requests(count: int) -> None:
        try:
            for _ in range(count):
                with db.connection_context():
                    db.execute_sql("SELECT 1").fetchone()
        except BaseException as exc:
            crashes.append(exc)

    blocked = threading.Thread(target=requests, args=(1,), name="slow")
    others = [threading.Thread(target=requests, args=(EACH,), name=f"other-{i}") for i in range(OTHERS)]
    blocked.start()
    try:
        assert slow.entered.wait(30), "the slow listener was never called"
        for t in others:
            t.start()
        join_threads(others, 10)  # fails naming any that could not finish while one listener was blocked
        assert blocked.is_alive() and not slow.released.is_set()
    finally:
        slow.released.set()
        for t in [blocked, *others]:
            t.join(30)
    assert not blocked.is_alive() and not slow.timed_out
    assert crashes == []
    events = db.events.snapshot()
    assert Counter(e.kind for e in events if e.kind in ("checkout", "checkin")) == {
        "checkout": 1 + OTHERS * EACH,
        "checkin": 1 + OTHERS * EACH,
    }
    assert check_invariants(events, pool_size, allow_open=False) == []
    assert sorted(canary.events, key=lambda e: e.seq) == events, "every event reached the listeners once"
    assert canary.calls_under_lock == 0
    db.close_all()


def test_listeners_are_not_called_under_peewee_s_database_lock(tmp_path: Any) -> None:
    """Regression: listeners ran inside peewee's Database.connect()/close(), which hold the database's own lock.

    That lock (``db._lock``, a plain ``threading.Lock``) serialises every
    thread's ``connect()`` and ``close()``, so a slow listener stalls the whole
    pool (see test_slow_listener_does_not_hold_up_other_callers), and a
    listener that touches the database from its own thread deadlocks.
    """
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "lock.db"), max_connections=2)
    heard: list[tuple[str, bool]] = []
    db.events.subscribe(lambda e: heard.append((e.kind, db._lock.locked())))
    with db.connection_context():
        db.execute_sql("SELECT 1")
    assert heard == [("connect", False), ("checkout", False), ("checkin", False)]


@pytest.mark.timeout(30)
def test_listener_that_queries_the_database_does_not_deadlock(tmp_path: Any) -> None:
    """Regression: a check-in listener that ran a query through the same pool deadlocked its thread.

    The listener runs inside ``Database.close()`` holding ``db._lock``; the
    query's autoconnect calls ``connect()``, which takes that non-reentrant
    lock again. (If this fails, a daemon thread stays blocked until exit.)
    """
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "audit.db"), max_connections=2)
    audited = threading.Event()

    def audit(event: Any) -> None:
        if event.kind == "checkin" and event.thread == "auditor" and not audited.is_set():
            audited.set()
            db.execute_sql("SELECT 1")
            db.close()

    db.events.subscribe(audit)

    def request() -> None:
        with db.connection_context():
            db.execute_sql("SELECT 1")

    auditor = threading.Thread(target=request, name="auditor", daemon=True)
    auditor.start()
    auditor.join(5)
    assert audited.is_set()
    assert not auditor.is_alive(), "the listener's query deadlocked on db._lock"


@pytest.mark.timeout(60)
def test_raising_listener_is_counted_once_per_event(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A listener that always raises costs one listener_errors count and one log record per event; nothing else."""
    db = InstrumentedPooledSqliteDatabase(str(tmp_path / "raise.db"), max_connections=2, timeout=30)

    def broken(event: Any) -> None:
        raise RuntimeError(f"listener bug on {event.kind}")

    db.events.subscribe(broken)
    canary = Canary(db)
    db.events.subscribe(canary)
    crashes: list[BaseException] = []

    def requests() -> None:
        try:
            for _ in range(EACH):
                with db.connection_context():
                    db.execute_sql("SELECT 1").fetchone()
        except BaseException as exc:
            crashes.append(exc)

    with caplog.at_level(logging.ERROR, logger="poolviz"):
        run_threads([threading.Thread(target=requests, name=f"user-{i}") for i in range(8)])
    assert crashes == [], "the listener's error never reaches the pool's callers"
    events = db.events.snapshot()
    assert sum(e.kind == "checkout" for e in events) == 8 * EACH
    assert db.events.listener_errors == len(events) == db.events.get_stats()["listener_errors"]
    assert sorted(canary.events, key=lambda e: e.seq) == events, "a later listener still hears every event"
    failures = [r for r in caplog.records if "raised; the pool carries on" in r.getMessage()]
    assert len(failures) == len(events) and all(r.exc_info for r in failures)
    assert check_invariants(events, 2, allow_open=False) == []
    db.close_all()


@pytest.mark.timeout(60)
def test_no_listener_runs_under_the_pool_lock(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """Every kind and every close reason: the Canary never finds the pool lock held when it is called.

    Covers checkouts, check-ins, waits and both kinds of timeout, driver
    errors, leaks and unleaks, ``reclaim_dead_threads``, and closes from
    ``close_all``, ``close_idle``, ``close_stale``, ``manual_close``, stale,
    broken and refused connections.
    """
    # Any hold is a leak at this threshold, so leaks appear without waiting.
    db = InstrumentedFakePooledDatabase(max_connections=3, stale_timeout=10, timeout=0.01, leak_threshold=1e-9)
    at_once = InstrumentedFakePooledDatabase(max_connections=1)
    canaries = [Canary(db), Canary(at_once)]
    db.events.subscribe(canaries[0])
    at_once.events.subscribe(canaries[1])

    a, b, _c = db._connect(), db._connect(), db._connect()
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()  # waits 10 ms for a free slot, then times out
    at_once._connect()
    with pytest.raises(MaxConnectionsExceeded):
        at_once._connect()  # timeout=None: fails at once
    db.leaks()
    db._close(a)
    db._close(b)
    db.close_idle()
    d = db._connect()
    d.poison()
    db._close(d)  # refused at check-in: not_reusable
    clock.now += 1
    assert db.close_stale(age=0) == 1  # _c, checked out before the clock moved
    db._close(db._connect())
    clock.now += 11
    db._close(db._connect())  # the checkout finds the idle one stale
    e = db._connect()
    db._close(e)
    e.break_()
    db.connect()  # the checkout finds e dead: broken
    db.manual_close()
    forgetful = threading.Thread(target=db._connect, name="forgetful")
    run_threads([forgetful])
    assert db.reclaim_dead_threads() == 1
    db._connect()
    db.close_all()

    def refuse(self: Any) -> None:
        raise OperationalError("server said no")

    db._connect()
    db.dispose()

    monkeypatch.setattr(FakeDatabase, "_connect", refuse)
    with pytest.raises(OperationalError):
        db._connect()

    assert [canary.calls_under_lock for canary in canaries] == [0, 0]
    heard = canaries[0].events + canaries[1].events
    assert {e.kind for e in heard} == set(KINDS)
    # Every reason peewee's pool can give; the others are SQLAlchemy's and psycopg_pool's transitions.
    assert {e.reason for e in heard if e.kind == "close"} == set(CLOSE_REASONS) - {
        "overflow",
        "invalidated",
        "detached",
    }
    assert canaries[0].events == db.events.snapshot()
    assert check_invariants(db.events, 3) == []


@pytest.mark.timeout(60)
def test_no_listener_runs_under_the_pool_lock_while_threads_race(no_new_threads: None) -> None:
    """4 threads check out and in while a fifth keeps closing idle, stale, its own and all connections."""
    db = InstrumentedFakePooledDatabase(max_connections=3)
    canary = Canary(db)
    db.events.subscribe(canary)
    user_checked_out, stop = threading.Event(), threading.Event()

    def on_user_checkout(event: Any) -> None:
        if event.kind == "checkout" and event.thread.startswith("user"):
            user_checked_out.set()

    db.events.subscribe(on_user_checkout)
    timeouts: list[str] = []
    crashes: list[BaseException] = []

    def user() -> None:
        try:
            while not stop.is_set():
                try:
                    with db.connection_context():
                        pass
                except MaxConnectionsExceeded:
                    timeouts.append(threading.current_thread().name)
        except BaseException as exc:
            crashes.append(exc)

    def closer() -> None:
        try:
            for _ in range(200):
                # Each round starts after some user got a connection, so the closes meet real traffic.
                assert user_checked_out.wait(10)
                user_checked_out.clear()
                db.close_idle()
                db.close_stale(age=0)
                try:
                    db.connect(reuse_if_open=True)
                    db.manual_close()
                except MaxConnectionsExceeded:
                    timeouts.append("closer")
                db.close_all()
        except BaseException as exc:
            crashes.append(exc)
        finally:
            stop.set()

    threads = [threading.Thread(target=user, name=f"user-{i}") for i in range(4)]
    run_threads([*threads, threading.Thread(target=closer, name="closer")])
    assert crashes == []
    assert canary.calls_under_lock == 0
    reasons = Counter(e.reason for e in canary.events if e.kind == "close")
    assert {"idle", "stale_in_use", "manual", "all"} <= set(reasons), reasons
    assert timeouts, "the pool of 3 was full for some callers"
    # The replay is not checked here: manual_close() racing with checkouts breaks it
    # (test_stress.py::test_manual_close_never_shows_more_connections_in_use_than_the_limit).
