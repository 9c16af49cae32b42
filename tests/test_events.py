"""EventLog: bounded with exact drop counts, listeners, counters that count every event, frames."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from poolviz import FIELDS, KINDS, Event, EventLog
from poolviz.testing import InstrumentedFakePooledDatabase, fill, join_threads


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
    fill(log, 25, wait_s=0.5)
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
    assert tuple(frame.columns) == (*FIELDS, "site")
    assert list(frame["kind"]) == ["checkin", "checkout", "checkin"]
    assert set(frame["kind"].cat.categories) == set(KINDS)
    assert frame.attrs["dropped"] == 2 and frame.attrs["capacity"] == 3
    assert frame.attrs["max_connections"] == 3 and frame.attrs["pool"] == "InstrumentedFakePooledDatabase"


def test_empty_frame_keeps_its_columns() -> None:
    """An empty log still gives a frame with every column."""
    assert tuple(EventLog().to_frame().columns) == (*FIELDS, "site")


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


def test_cursor_from_now_reads_only_later_events() -> None:
    """cursor() with no start_seq skips what was recorded before it and returns each event once."""
    log = EventLog()
    fill(log, 3)
    cursor = log.cursor()
    assert cursor.read() == ([], 0)
    fill(log, 2)
    events, lost = cursor.read()
    assert [e.seq for e in events] == [3, 4] and lost == 0
    assert all(type(e) is Event for e in events)
    assert cursor.read() == ([], 0)


def test_cursor_from_zero_reads_every_held_event() -> None:
    """cursor(start_seq=0) starts at the first event ever recorded."""
    log = EventLog()
    fill(log, 3)
    events, lost = log.cursor(start_seq=0).read()
    assert [e.seq for e in events] == [0, 1, 2] and lost == 0


def test_cursor_counts_events_lost_to_the_capacity_between_reads() -> None:
    """Events dropped by the capacity before a read are counted as lost, once, by that read."""
    log = EventLog(capacity=5)
    cursor = log.cursor(start_seq=0)
    fill(log, 3)
    assert [e.seq for e in cursor.read()[0]] == [0, 1, 2]
    fill(log, 9)  # seqs 3..11; the log keeps 7..11, so 3..6 are gone
    events, lost = cursor.read()
    assert [e.seq for e in events] == [7, 8, 9, 10, 11] and lost == 4
    fill(log, 1)
    events, lost = cursor.read()
    assert [e.seq for e in events] == [12] and lost == 0
    assert cursor.lost == 4


def test_cursor_from_zero_counts_what_was_dropped_before_it() -> None:
    """A cursor from seq 0 on a log that already dropped events reports them lost on its first read."""
    log = EventLog(capacity=4)
    fill(log, 10)
    events, lost = log.cursor(start_seq=0).read()
    assert [e.seq for e in events] == [6, 7, 8, 9] and lost == 6


def test_cursor_counts_cleared_events_as_lost() -> None:
    """Events forgotten by clear() before a cursor read them count as lost, and seq carries on."""
    log = EventLog()
    cursor = log.cursor()
    fill(log, 3)
    log.clear()
    assert cursor.read() == ([], 3)
    fill(log, 1)
    events, lost = cursor.read()
    assert [e.seq for e in events] == [3] and lost == 0


def test_cursor_limit_pages_through_without_gaps() -> None:
    """read(limit) returns at most limit events; the next read continues where it stopped."""
    log = EventLog(capacity=10)
    fill(log, 14)  # holds 4..13
    cursor = log.cursor(start_seq=0)
    pages = [cursor.read(limit=3) for _ in range(5)]
    assert [[e.seq for e in events] for events, _ in pages] == [[4, 5, 6], [7, 8, 9], [10, 11, 12], [13], []]
    assert [lost for _, lost in pages] == [4, 0, 0, 0, 0]
    cursor = log.cursor(start_seq=11)
    assert [e.seq for e in cursor.read(limit=2)[0]] == [11, 12]


def test_cursor_refuses_bad_arguments() -> None:
    """cursor() and read() name the bad value and what is allowed."""
    log = EventLog()
    with pytest.raises(ValueError, match="start_seq must be None or an integer >= 0, got -1"):
        log.cursor(start_seq=-1)
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        log.cursor().read(limit=0)


def test_cursor_reads_writes_from_several_threads_once_each() -> None:
    """While threads record, a cursor's reads return every event exactly once, in seq order, or count it lost."""
    log = EventLog(capacity=50)
    cursor = log.cursor(start_seq=0)
    writers, per_writer = 4, 500
    start = threading.Barrier(writers + 1, timeout=10)
    done = threading.Event()

    def write(n: int) -> None:
        start.wait()
        for i in range(per_writer):
            with log.lock:
                log.record("checkout", n * per_writer + i + 1, f"w{n}", 1, 0, 0)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    seen: list[int] = []
    lost = 0
    start.wait()
    while not done.is_set():
        if not any(thread.is_alive() for thread in threads):
            done.set()  # one more read after the writers finished picks up the rest
        events, gone = cursor.read(limit=7)
        seen.extend(e.seq for e in events)
        lost += gone
    join_threads(threads, 10)
    events, gone = cursor.read()
    seen.extend(e.seq for e in events)
    lost += gone
    assert seen == sorted(set(seen))
    assert len(seen) + lost == writers * per_writer
    assert lost == cursor.lost


def test_counts_survive_dropped_chunks() -> None:
    """A pool's counts, worked out when read, are right even after the capacity dropped whole chunks."""
    from poolviz.events.store import CHUNK

    small = InstrumentedFakePooledDatabase(max_connections=4, event_capacity=50)
    large = InstrumentedFakePooledDatabase(max_connections=4, event_capacity=10 * CHUNK)
    for db in (small, large):
        held: list[Any] = []
        for i in range(3 * CHUNK):
            # Hold up to three connections at once, so in_use and idle both move.
            if len(held) < 3 and i % 5 != 4:
                held.append(db._connect())
            else:
                db._close(held.pop(0))
    assert small.events.dropped > 2 * CHUNK
    fields = [(e.seq, e.kind, e.conn, e.in_use, e.idle, e.waiting) for e in small.events.snapshot()]
    expected = [(e.seq, e.kind, e.conn, e.in_use, e.idle, e.waiting) for e in large.events.snapshot()]
    assert fields == expected[-50:]
    assert small.events.get_stats()["pool_size"] == large.events.get_stats()["pool_size"] == 3
    cursor = small.events.cursor(start_seq=small.events.snapshot()[10].seq)
    assert [e[:13] for e in cursor.read(limit=5)[0]] == [tuple(e) for e in small.events.snapshot()[10:15]]


def test_a_cursor_reads_plain_rows_as_read_gives_events() -> None:
    """Cursor.read_rows returns the 13 Event fields as tuples, keeps its place and counts the lost like read()."""
    log = EventLog(capacity=2)
    rows_cursor, events_cursor = log.cursor(0), log.cursor(0)
    for conn in (1, 2, 3):
        log.record("connect", conn, "t", 0, conn, 0)
    rows, lost = rows_cursor.read_rows()
    events, lost_too = events_cursor.read()
    assert [tuple(e) for e in events] == rows and lost == lost_too == 1
    log.record("close", 3, "t", 0, 2, 0, reason="idle")
    assert [row[2] for row in rows_cursor.read_rows()[0]] == ["close"]


def test_a_merged_log_can_start_its_clock_before_its_first_record_only() -> None:
    """start_clock_at moves t == 0 of a fresh merged log, and refuses once anything is recorded."""
    from poolviz.events.merge import MergedEventLog

    log = MergedEventLog([1])
    log.start_clock_at(100.0)
    log.add(1, 100.0, [(0, 0.5, "connect", 1, "t", 0.0, 0.1, False, "", "", 0, 1, 0)], None)
    log.end(1)
    assert log.snapshot()[0].t == pytest.approx(0.5)
    with pytest.raises(RuntimeError, match="before the first record"):
        log.start_clock_at(50.0)
