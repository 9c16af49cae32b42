"""EventLog: bounded with exact drop counts, listeners, counters that count every event, frames."""

from __future__ import annotations

import pytest

from poolviz import FIELDS, KINDS, Event, EventLog
from poolviz.testing import InstrumentedFakePooledDatabase


def fill(log: EventLog, n: int, kind: str = "checkout") -> None:
    with log.lock:
        for i in range(n):
            log.record(kind, i + 1, "t", 1, 0, 0, 0.5)


def test_capacity_keeps_the_newest_and_counts_the_dropped() -> None:
    """A full log drops its oldest events, counts each drop, and keeps seq gap-free."""
    log = EventLog(capacity=10)
    fill(log, 25)
    events = log.snapshot()
    assert len(events) == 10 and log.dropped == 15
    assert [e.seq for e in events] == list(range(15, 25))


def test_counters_count_dropped_events_too() -> None:
    """get_stats() counts every event recorded, including those the capacity dropped."""
    log = EventLog(capacity=10)
    fill(log, 25)
    stats = log.get_stats()
    assert stats["requests_num"] == 25 and stats["requests_wait_ms"] == 25 * 500.0
    assert stats["events_dropped"] == 15


def test_pop_stats_resets_counters_only() -> None:
    """pop_stats() returns the counters and zeroes them; the held events stay."""
    log = EventLog()
    fill(log, 3)
    assert log.pop_stats()["requests_num"] == 3
    fill(log, 2)
    assert log.get_stats()["requests_num"] == 2 and len(log) == 5


def test_clear_forgets_events_but_not_seq_or_counters() -> None:
    """clear() empties the log; seq keeps counting and the counters keep what they counted."""
    log = EventLog(capacity=4)
    fill(log, 6)
    log.clear()
    assert len(log) == 0 and log.dropped == 0 and log.last is not None
    fill(log, 1)
    assert log.snapshot()[0].seq == 6 and log.get_stats()["requests_num"] == 7


def test_since_returns_only_newer_events() -> None:
    """since(seq) gives the held events from seq on, even after drops."""
    log = EventLog(capacity=5)
    fill(log, 12)
    assert [e.seq for e in log.since(9)] == [9, 10, 11]
    assert [e.seq for e in log.since(0)] == [7, 8, 9, 10, 11]
    assert log.since(12) == []


def test_to_frame_has_every_field_and_the_metadata() -> None:
    """to_frame() has one column per field, typed, with dropped/capacity/meta in attrs."""
    db = InstrumentedFakePooledDatabase(max_connections=3, event_capacity=3)
    for _ in range(2):
        db._close(db._connect())
    frame = db.events.to_frame()
    assert tuple(frame.columns) == FIELDS
    assert list(frame["kind"]) == ["checkin", "checkout", "checkin"]
    assert set(frame["kind"].cat.categories) == set(KINDS)
    assert frame.attrs["dropped"] == 2 and frame.attrs["capacity"] == 3
    assert frame.attrs["max_connections"] == 3 and frame.attrs["pool"] == "InstrumentedFakePooledDatabase"


def test_empty_frame_keeps_its_columns() -> None:
    """An empty log still gives a frame with every column."""
    assert tuple(EventLog().to_frame().columns) == FIELDS


def test_listeners_get_event_records() -> None:
    """Listeners receive Event named tuples after flush, in recording order."""
    log = EventLog()
    got: list[Event] = []
    log.subscribe(got.append)
    fill(log, 2)
    assert got == []
    log.flush()
    assert [(e.seq, e.kind, e.conn) for e in got] == [(0, "checkout", 1), (1, "checkout", 2)]


def test_subscribe_needs_a_callable() -> None:
    """subscribe() refuses what it cannot call, naming it."""
    with pytest.raises(TypeError, match="listener must be callable, got 3"):
        EventLog().subscribe(3)  # type: ignore[arg-type]
