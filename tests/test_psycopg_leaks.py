"""leak_threshold on psycopg_pool's pools: a connection held too long is reported while held, and when it is back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from poolviz.events import Event
from poolviz.pools.psycopg import instrument_psycopg
from poolviz.pools.psycopg.testing import libpq_url, sequence_problems
from poolviz.testing import join_threads, kinds, wait_until, wait_until_async


@pytest.fixture
def pool(pg_url: str) -> Iterator[Any]:
    """A threaded pool of 2 with leak_threshold=0.1 s, closed afterwards."""
    made = instrument_psycopg(ConnectionPool(libpq_url(pg_url), min_size=2, open=False), leak_threshold=0.1)
    made.open(wait=True)
    yield made
    made.close()


def of_kind(pool: Any, *wanted: str) -> list[Event]:
    """The events of ``pool`` whose kind is one of ``wanted``, in order."""
    return [e for e in pool._poolviz_events.snapshot() if e.kind in wanted]


def test_a_connection_held_too_long_is_reported_while_held(pool: Any) -> None:
    """A leak event names the holder and where it asked, while held; unleak comes before its checkin."""
    pool.putconn(pool.getconn())  # a short hold: nothing to report
    conn = pool.getconn()
    (leak,) = wait_until(lambda: of_kind(pool, "leak"), what="the leak event")
    assert (leak.thread, leak.reason) == ("MainThread", "held")
    assert "test_psycopg_leaks.py" in leak.message and leak.duration_s > 0.1
    pool.putconn(conn)
    rows = pool._poolviz_events.snapshot()
    assert kinds(rows)[-2:] == ["unleak", "checkin"]
    assert [e.conn for e in of_kind(pool, "leak", "unleak")] == [leak.conn, leak.conn]
    assert pool._poolviz_events.meta["leak_threshold"] == 0.1
    assert sequence_problems(rows) == []


def test_a_holder_that_exited_is_reported_as_such(pool: Any) -> None:
    """A thread that ended holding a connection: leak reason 'thread_exited'."""
    taken: list[Any] = []
    thread = threading.Thread(target=lambda: taken.append(pool.getconn()), name="forgetful")
    thread.start()
    join_threads([thread])
    (leak,) = wait_until(lambda: of_kind(pool, "leak"), what="the leak event")
    assert (leak.thread, leak.reason) == ("forgetful", "thread_exited")
    pool.putconn(taken[0])
    assert [e.thread for e in of_kind(pool, "unleak")] == ["forgetful"]


def test_close_stops_the_watchdog(pg_url: str) -> None:
    """The watchdog thread ends with the pool's close()."""
    pool = instrument_psycopg(ConnectionPool(libpq_url(pg_url), min_size=1, open=True), leak_threshold=5)
    pool.putconn(pool.getconn())
    assert any(t.name.startswith("poolviz-leak-watchdog") for t in threading.enumerate())
    pool.close()
    wait_until(
        lambda: not any(t.name.startswith("poolviz-leak-watchdog") for t in threading.enumerate()),
        what="the watchdog gone",
    )


def test_asyncio_leaks_name_the_task(pg_url: str) -> None:
    """On an asyncio pool the watchdog runs on the loop: the leak names the holding task."""

    async def main() -> list[tuple[str, str, str]]:
        pool = AsyncConnectionPool(libpq_url(pg_url), min_size=1, open=False)
        await pool.open(wait=True)
        instrument_psycopg(pool, leak_threshold=0.05)
        got = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with pool.connection():
                got.set()
                await release.wait()

        task = asyncio.create_task(holder(), name="slow-holder")
        await got.wait()
        await wait_until_async(lambda: of_kind(pool, "leak"), what="the leak event")
        release.set()
        await task
        await pool.close()
        return [(e.kind, e.thread, e.reason) for e in of_kind(pool, "leak", "unleak")]

    assert asyncio.run(main()) == [("leak", "slow-holder", "held"), ("unleak", "slow-holder", "")]
