"""Exact event sequences for each pool transition, on peewee's pool over fake connections."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from peewee import OperationalError

from poolviz import MaxConnectionsExceeded
from poolviz.testing import (
    Canary,
    FakeClock,
    FakeDatabase,
    InstrumentedFakePooledDatabase,
    capture_events,
    check_invariants,
    wait_until,
)


def make(**kwargs: Any) -> tuple[InstrumentedFakePooledDatabase, Canary]:
    db = InstrumentedFakePooledDatabase(**kwargs)
    canary = Canary(db)
    db.events.subscribe(canary)
    return db, canary


def test_new_connection_then_reuse() -> None:
    """A first checkout opens a connection; after check-in the next checkout reuses it."""
    db, canary = make(max_connections=2)
    conn = db._connect()
    db._close(conn)
    assert db._connect() is conn
    assert canary.steps() == [
        ("connect", 1, ""),
        ("checkout", 1, ""),
        ("checkin", 1, ""),
        ("checkout", 1, ""),
    ]
    assert [e.reused for e in canary.events if e.kind == "checkout"] == [False, True]
    assert [(e.in_use, e.idle) for e in canary.events] == [(0, 0), (1, 0), (0, 1), (1, 0)]


def test_second_caller_gets_a_second_connection() -> None:
    """Two connections in use at once get two serials and in_use reaches 2."""
    db, canary = make(max_connections=2)
    db._connect()
    db._connect()
    assert canary.steps() == [
        ("connect", 1, ""),
        ("checkout", 1, ""),
        ("connect", 2, ""),
        ("checkout", 2, ""),
    ]
    assert canary.events[-1].in_use == 2


def test_serials_are_never_reused_even_when_ids_are() -> None:
    """A connection opened after another closed gets a fresh serial, whatever its id()."""
    db, canary = make(max_connections=1)
    for _ in range(3):
        conn = db._connect()
        db._close(conn, close_conn=True)
    assert [e.conn for e in canary.events if e.kind == "connect"] == [1, 2, 3]


def test_stale_connection_is_closed_at_checkout(clock: FakeClock) -> None:
    """A connection older than stale_timeout is closed when next checked out, and a new one opened."""
    db, canary = make(max_connections=2, stale_timeout=10)
    db._close(db._connect())
    clock.now += 11
    db._connect()
    assert canary.steps()[3:] == [("close", 1, "stale"), ("connect", 2, ""), ("checkout", 2, "")]
    assert canary.events[3].idle == 0


def test_stale_connection_is_closed_at_checkin(clock: FakeClock) -> None:
    """A connection that outlived stale_timeout while in use is closed at check-in, not returned."""
    db, canary = make(max_connections=2, stale_timeout=10)
    conn = db._connect()
    clock.now += 11
    db._close(conn)
    assert canary.steps()[2:] == [("close", 1, "stale")]
    assert conn.closed and db._connections == []


def test_stale_timeout_counts_age_not_idle_time(clock: FakeClock) -> None:
    """Age since opening decides staleness: a connection used constantly still goes stale."""
    db, canary = make(max_connections=1, stale_timeout=10)
    for _ in range(5):
        db._close(db._connect())
        clock.now += 3
    assert ("close", 1, "stale") in canary.steps()


def test_broken_connection_is_discarded_at_checkout() -> None:
    """A connection found dead at checkout is recorded as a broken close and replaced."""
    db, canary = make(max_connections=2)
    conn = db._connect()
    db._close(conn)
    conn.break_()
    db._connect()
    assert canary.steps()[3:] == [("close", 1, "broken"), ("connect", 2, ""), ("checkout", 2, "")]
    assert conn.close_calls == 0, "peewee discards a dead connection without closing it"


def test_connection_refused_at_checkin_is_closed_as_not_reusable() -> None:
    """A connection the driver cannot reuse is closed at check-in with reason not_reusable."""
    db, canary = make(max_connections=2)
    conn = db._connect()
    conn.poison()
    db._close(conn)
    assert canary.steps()[2:] == [("close", 1, "not_reusable")]


def test_full_pool_without_timeout_fails_at_once() -> None:
    """With timeout=None a full pool raises MaxConnectionsExceeded at once: one timeout event, no wait."""
    db, canary = make(max_connections=1)
    db._connect()
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()
    assert canary.kinds() == ["connect", "checkout", "timeout"]
    assert canary.events[-1].wait_s == 0.0 and canary.events[-1].waiting == 0


def test_full_pool_with_timeout_waits_then_times_out() -> None:
    """With timeout=N a caller records a wait, then a timeout carrying how long it waited."""
    db, canary = make(max_connections=1, timeout=0.05)
    db._connect()
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()
    assert canary.kinds() == ["connect", "checkout", "wait", "timeout"]
    wait, timeout = canary.events[2:]
    assert wait.waiting == 1 and timeout.waiting == 0
    assert timeout.wait_s >= 0.05


def test_waiting_caller_gets_the_returned_connection() -> None:
    """A waiter is woken by a check-in and its checkout carries the time it waited."""
    db, canary = make(max_connections=1, timeout=5)
    conn = db._connect()
    waiting = threading.Event()
    db.events.subscribe(lambda e: e.kind == "wait" and waiting.set())
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(db.connection()), name="waiter")
    worker.start()
    assert waiting.wait(5)
    db._close(conn)
    worker.join(5)
    assert not worker.is_alive()
    assert got == [conn]
    assert canary.kinds() == ["connect", "checkout", "wait", "checkin", "checkout"]
    last = canary.events[-1]
    assert last.thread == "waiter" and last.reused and last.wait_s > 0 and last.waiting == 0


def test_close_idle_closes_only_idle_connections() -> None:
    """close_idle() closes each idle connection (reason idle) and leaves the one in use."""
    db, canary = make(max_connections=3)
    a, b, c = db._connect(), db._connect(), db._connect()
    db._close(a)
    db._close(b)
    db.close_idle()
    closes = [s for s in canary.steps() if s[0] == "close"]
    assert closes == [("close", 1, "idle"), ("close", 2, "idle")]
    assert (canary.events[-1].in_use, canary.events[-1].idle) == (1, 0)
    assert not c.closed


def test_close_stale_closes_connections_held_too_long(clock: FakeClock) -> None:
    """close_stale(age) closes connections checked out longer than age, even in use."""
    db, canary = make(max_connections=2)
    db._connect()
    clock.now += 700
    db._connect()
    assert db.close_stale(age=600) == 1
    assert [s for s in canary.steps() if s[0] == "close"] == [("close", 1, "stale_in_use")]
    assert canary.events[-1].in_use == 1


def test_close_all_closes_idle_and_in_use(clock: FakeClock) -> None:
    """close_all() returns the caller's own connection, then closes idle and in-use ones (reason all)."""
    db, canary = make(max_connections=3)
    db.connect()
    clock.now += 1
    other = db._connect()
    clock.now += 1
    db._close(db._connect())
    db.close_all()
    assert canary.steps()[-4:] == [
        ("checkin", 1, ""),
        ("close", 1, "all"),
        ("close", 3, "all"),
        ("close", 2, "all"),
    ]
    assert other.closed and (canary.events[-1].in_use, canary.events[-1].idle) == (0, 0)


def test_manual_close_closes_instead_of_returning() -> None:
    """manual_close() closes the caller's connection (reason manual) rather than pooling it."""
    db, canary = make(max_connections=2)
    db.connect()
    db.manual_close()
    assert canary.steps() == [("connect", 1, ""), ("checkout", 1, ""), ("close", 1, "manual")]
    assert db.is_closed() and db._connections == []


def test_close_with_close_conn_is_a_manual_close() -> None:
    """peewee's _close(conn, close_conn=True) is recorded as a manual close."""
    db, canary = make(max_connections=2)
    db._close(db._connect(), close_conn=True)
    assert canary.steps()[-1] == ("close", 1, "manual")


def test_dispose_forgets_without_close_events() -> None:
    """dispose() forgets connections without closing them: one dispose event, counts back to zero."""
    db, canary = make(max_connections=2)
    db.connect()
    db.dispose()
    assert canary.kinds() == ["connect", "checkout", "dispose"]
    assert (canary.events[-1].in_use, canary.events[-1].idle) == (0, 0)
    assert not db.opened[0].closed
    db.connect()
    assert canary.events[-1].in_use == 1 and canary.events[-1].conn == 2
    assert check_invariants(db.events, 2) == []


def test_driver_error_is_recorded_with_credentials_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed open records an error event with the exception type and a masked message."""

    def refuse(self: Any) -> None:
        raise OperationalError("cannot reach mysql://app:hunter2-secret@db:3306/x password=hunter2-secret")

    db, canary = make(max_connections=2, password="hunter2-secret")
    monkeypatch.setattr(FakeDatabase, "_connect", refuse)
    with pytest.raises(OperationalError):
        db.connect()
    (event,) = canary.events
    assert event.kind == "error" and event.reason == "OperationalError"
    assert "hunter2" not in event.message and "***" in event.message
    assert event.in_use == 0


def test_listener_never_runs_under_the_pool_lock() -> None:
    """Listeners run after the pool lock is released, even inside close_all()."""
    db, canary = make(max_connections=3, timeout=1)
    with pytest.raises(MaxConnectionsExceeded):
        for _ in range(4):
            db._connect()
    db.close_all()
    assert canary.events and canary.calls_under_lock == 0


def test_raising_listener_is_counted_and_the_pool_carries_on() -> None:
    """A listener that raises is isolated: later listeners still run, the error is counted."""
    db, _ = make(max_connections=2)
    db.events.subscribe(lambda e: 1 / 0)
    second = Canary(db)
    db.events.subscribe(second)
    db._close(db._connect())
    assert db.events.listener_errors == 3
    assert second.kinds() == ["connect", "checkout", "checkin"]


def test_unsubscribe_stops_delivery() -> None:
    """Calling the subscription (or leaving its with-block) stops further calls."""
    db = InstrumentedFakePooledDatabase(max_connections=2)
    with capture_events(db) as canary:
        db._connect()
    db._connect()
    assert canary.kinds() == ["connect", "checkout"]


def test_counters_follow_the_events(clock: FakeClock) -> None:
    """get_stats() counts requests, waits, timeouts and connections as the events say; pop resets."""
    db, _ = make(max_connections=1, stale_timeout=10)
    db._close(db._connect())
    clock.now += 11
    conn = db._connect()
    with pytest.raises(MaxConnectionsExceeded):
        db.connect()
    db._close(conn)
    stats = db.events.pop_stats()
    assert stats["requests_num"] == 3 and stats["requests_errors"] == 1
    assert stats["connections_num"] == 2 and stats["connections_closed"] == 1
    assert stats["pool_max"] == 1 and stats["pool_available"] == 1
    assert db.events.get_stats()["requests_num"] == 0
    assert check_invariants(db.events, 1) == []


def test_instrument_adopts_a_pool_already_in_use() -> None:
    """instrument() on a busy plain pool gives its connections serials and records from then on."""
    from poolviz import instrument
    from poolviz.testing import FakePooledDatabase

    db = FakePooledDatabase("fake", max_connections=0)  # peewee reads 0 as unlimited: accepted
    held = db._connect()
    db._close(db._connect())
    assert instrument(db) is db and instrument(db) is db
    with capture_events(db) as canary:
        db._close(held)
    assert [(e.kind, e.in_use, e.idle) for e in canary.events] == [("checkin", 0, 2)]


def test_resize_shrinks_idle_at_once_and_in_use_at_checkin(clock: FakeClock) -> None:
    """resize() closes the oldest idle connections over the new limit now, and in-use ones as they return."""
    db, canary = make(max_connections=4)
    conns = []
    for _ in range(4):
        conns.append(db._connect())
        clock.now += 1
    db._close(conns[0])
    db._close(conns[1])
    assert db.resize(1) == 1
    assert [s for s in canary.steps() if s[0] == "close"] == [("close", 1, "idle"), ("close", 2, "idle")]
    db._close(conns[2])
    assert canary.steps()[-2:] == [("checkin", 3, ""), ("close", 3, "idle")]
    db._close(conns[3])
    assert canary.steps()[-1] == ("checkin", 4, "")
    assert (db.events.last.in_use, db.events.last.idle) == (0, 1)
    assert check_invariants(db.events, 4) == []


def test_resize_refuses_a_bad_limit() -> None:
    """resize() checks the new limit like the constructor does."""
    with pytest.raises(ValueError, match="max_connections must be a positive integer.*got 0"):
        InstrumentedFakePooledDatabase().resize(0)


def test_waiter_leaving_on_a_driver_error_is_not_counted_as_waiting() -> None:
    """A caller that gives up waiting because the driver failed leaves no event; the next event's counts drop it."""
    opened = FakeDatabase._connect

    class Failing(InstrumentedFakePooledDatabase):
        fail = False

    def driver(self: Any) -> Any:
        if getattr(self, "fail", False):
            raise RuntimeError("server gone")
        return opened(self)

    db = Failing(max_connections=1, timeout=10)
    original = FakeDatabase._connect
    FakeDatabase._connect = driver  # type: ignore[method-assign]
    try:
        db.connect()
        held = db._state.conn
        errors: list[BaseException] = []

        def wait_then_fail() -> None:
            try:
                db.connect()
            except RuntimeError as exc:
                errors.append(exc)

        waiter = threading.Thread(target=wait_then_fail, name="waiter")
        waiter.start()
        wait_until(lambda: any(e.kind == "wait" for e in db.events.snapshot()), timeout=10)
        db.fail = True
        held.broken = True  # the waiter finds it dead in the heap and must open another: which fails
        db.close()
        waiter.join(timeout=10)
        assert not waiter.is_alive() and len(errors) == 1
        db.fail = False
        db.connect()
    finally:
        FakeDatabase._connect = original  # type: ignore[method-assign]
    kinds = [(e.kind, e.thread, e.waiting) for e in db.events.snapshot()]
    assert ("wait", "waiter", 1) in kinds and ("error", "waiter", 1) in kinds
    last = db.events.snapshot()[-1]
    assert (last.kind, last.in_use, last.idle, last.waiting) == ("checkout", 1, 0, 0)
    assert db.events.get_stats()["requests_waiting"] == 0
