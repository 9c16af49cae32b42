"""poolviz.data.holders: who holds every connection right now, where they took it, for how long, longest first."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from sqlalchemy import create_engine
from test_sites import here

import poolviz
from poolviz.data import HOLDER_COLUMNS, holders
from poolviz.data.frames import events_to_frame
from poolviz.data.traces import load_events, save_events
from poolviz.events import Event
from poolviz.events.merge import MergedEventLog
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
from poolviz.pools.psycopg.testing import libpq_url
from poolviz.testing import join_threads

pytestmark = pytest.mark.timeout(60)


def ev(seq: int, t: float, kind: str, conn: int, thread: str = "w", message: str = "") -> Event:
    """A hand-made event (counts do not matter here)."""
    return Event(seq, t, kind, conn, thread, 0.0, 0.0, False, "", message, 0, 0, 0)


TRACE = [
    ev(0, 0.0, "connect", 1),
    ev(1, 1.0, "checkout", 1, "A", "a.py:1 in f"),
    ev(2, 2.0, "connect", 2),
    ev(3, 2.0, "checkout", 2, "B", "b.py:2 in g"),
    ev(4, 3.0, "checkin", 1, "A"),
    ev(5, 4.0, "checkout", 1, "C", "c.py:3 in h"),
    ev(6, 5.0, "connect", 3),
    ev(7, 5.0, "checkout", 3, "D", "d.py:4 in k"),
    ev(8, 6.0, "close", 3),
]


def test_holders_lists_every_connection_held_longest_first() -> None:
    """Connections checked out and not yet back, with holder, site and time held; returned or closed ones are not."""
    table = holders(events_to_frame(TRACE), now=10.0)
    assert list(table.columns) == list(HOLDER_COLUMNS) == ["conn", "thread", "site", "held_s"]
    assert table.to_dict("records") == [
        {"conn": 2, "thread": "B", "site": "b.py:2 in g", "held_s": 8.0},
        {"conn": 1, "thread": "C", "site": "c.py:3 in h", "held_s": 6.0},
    ]
    assert table.attrs["now"] == 10.0


def test_holders_at_an_earlier_moment_and_by_default_at_the_last_event() -> None:
    """``now`` looks back in time (later events do not count); a frame's default is its last event's t."""
    frame = events_to_frame(TRACE)
    assert holders(frame, now=2.5)[["conn", "thread", "held_s"]].values.tolist() == [[1, "A", 1.5], [2, "B", 0.5]]
    at_last = holders(frame)
    assert at_last.attrs["now"] == 6.0 and list(at_last["conn"]) == [2, 1]


def test_dispose_means_nobody_holds_a_connection_from_before_it() -> None:
    """After dispose() the pool forgets its connections: only checkouts after it are held."""
    frame = events_to_frame([*TRACE, ev(9, 7.0, "dispose", 0), ev(10, 8.0, "checkout", 4, "E", "e.py:5 in m")])
    assert holders(frame, now=9.0)[["conn", "thread"]].values.tolist() == [[4, "E"]]


def test_a_merged_trace_adds_the_process_and_tells_connections_apart_by_it() -> None:
    """In a merged multi-process trace each process's connection 1 is its own, and the process is named."""
    log = MergedEventLog([7, 8])
    log.add(7, 0.0, [ev(0, 0.1, "checkout", 1, "w", "seven.py:1 in f")], None)
    log.add(8, 0.0, [ev(0, 0.2, "checkout", 1, "w", "eight.py:1 in f"), ev(1, 0.3, "checkin", 1)], None)
    for process in (7, 8):
        log.end(process)
    table = holders(log.to_frame(), now=1.0)
    assert list(table.columns) == [*HOLDER_COLUMNS, "process"]
    assert table[["process", "thread", "site"]].values.tolist() == [[7, "p7:w", "seven.py:1 in f"]]


def test_a_live_pool_shows_each_holding_thread_and_where_it_took_the_connection(tmp_path: Path) -> None:
    """Two threads holding connections of a live pool, one caller gone: the holders, the longest first."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'app.db'}", max_connections=3)
    taken, release = threading.Barrier(3, timeout=10), threading.Event()
    lines: dict[str, str] = {}

    def hold() -> None:
        _, lines[threading.current_thread().name] = db.connect(), here()
        taken.wait()
        release.wait(timeout=10)
        db.close()

    threads = [threading.Thread(target=hold, name=f"holder-{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    taken.wait()
    db.connect()
    db.close()  # the main thread's hold is over: not listed
    table = holders(db)
    release.set()
    join_threads(threads)
    assert sorted(table["thread"]) == ["holder-0", "holder-1"]
    assert dict(zip(table["thread"], table["site"], strict=True)) == lines
    assert table["held_s"].is_monotonic_decreasing and (table["held_s"] > 0).all()
    assert holders(db).empty
    db.close_all()


def test_every_library_and_source_is_accepted(tmp_path: Path, pg_url: str) -> None:
    """A SQLAlchemy engine, a psycopg_pool pool, an asyncio database, a log and a saved trace all answer."""
    engine = poolviz.instrument(create_engine(f"sqlite:///{tmp_path / 'a.db'}"))
    conn, engine_site = engine.connect(), here()
    pool = poolviz.instrument(ConnectionPool(libpq_url(pg_url), min_size=1, open=False))
    pool.open(wait=True)
    held, pool_site = pool.getconn(), here()
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "b.db"), pool_size=1)
    aio_sites: list[Any] = []

    async def main() -> None:
        _, line = await db.aconnect(), here()
        aio_sites.append((line, holders(db)))
        await db.aclose()
        await db.close_pool()

    asyncio.run(asyncio.wait_for(main(), 30))
    try:
        assert list(holders(engine)["site"]) == [engine_site]
        assert list(holders(poolviz.events_of(pool))["site"]) == [pool_site]
        assert list(holders(pool)["site"]) == [pool_site]
        ((line, table),) = aio_sites
        assert list(table["site"]) == [line]
        trace = save_events(poolviz.events_of(engine), tmp_path / "trace.csv")
        assert list(holders(load_events(trace))["site"]) == [engine_site]
        assert list(holders(str(trace))["site"]) == [engine_site]
    finally:
        conn.close()
        engine.dispose()
        pool.putconn(held)
        pool.close()


def test_no_events_no_holders() -> None:
    """An empty log has no holders, and keeps the columns."""
    table = holders(poolviz.EventLog())
    assert table.empty and list(table.columns) == list(HOLDER_COLUMNS)


def test_bad_input_names_the_value(tmp_path: Path) -> None:
    """A now that is no number, an engine never instrumented and a stranger are refused, saying why."""
    with pytest.raises(TypeError, match="now must be a number of seconds on the events' clock"):
        holders(events_to_frame(TRACE), now="soon")
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(ValueError, match="not instrumented"):
        holders(engine)
    with pytest.raises(TypeError, match="events must be a DataFrame of events, an EventLog, an instrumented pool"):
        holders(object())
