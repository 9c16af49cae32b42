"""psycopg_pool's asyncio pools, instrumented: the close reasons and the ways a waiting task leaves."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool, PoolClosed

from poolviz.events import Event
from poolviz.pools.psycopg import instrument_psycopg
from poolviz.pools.psycopg.testing import libpq_url, sequence_problems, stats_at_each_event
from poolviz.testing import kinds, wait_until_async


@pytest.fixture
def dsn(pg_url: str) -> str:
    """The test server as a libpq URL."""
    return libpq_url(pg_url)


def events(pool: Any) -> list[Event]:
    return pool._poolviz_events.snapshot()


async def kill(dsn: str, pid: int) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", [pid])

        # pg_terminate_backend only signals the backend: poll until the server no longer lists it.
        deadline = asyncio.get_running_loop().time() + 10
        listed = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        while await (await admin.execute(listed, [pid])).fetchone() != (0,):
            assert asyncio.get_running_loop().time() < deadline, f"backend {pid} still listed after 10 s"
            await asyncio.sleep(0.005)


def test_asyncio_close_reasons(dsn: str) -> None:
    """broken (dead at return, failing check()), stale, all (drain, close): as the threaded pools say them."""

    async def main() -> Any:
        pool = AsyncConnectionPool(dsn, min_size=2, open=False)
        await pool.open(wait=True)
        instrument_psycopg(pool)
        seen = stats_at_each_event(pool)

        def closes() -> list[str]:
            return [e.reason for e in events(pool) if e.kind == "close"]

        def whole() -> bool:
            return pool.get_stats()["pool_available"] == 2

        conn = await pool.getconn()
        await kill(dsn, conn.info.backend_pid)
        with pytest.raises(psycopg.OperationalError):
            await conn.execute("SELECT 1")
        await pool.putconn(conn)
        await wait_until_async(lambda: closes() == ["broken"] and whole(), what="broken at return, replaced")
        conn = await pool.getconn()
        pid = conn.info.backend_pid
        await pool.putconn(conn)
        await kill(dsn, pid)
        await pool.check()
        await wait_until_async(lambda: closes() == ["broken"] * 2 and whole(), what="check() dropped the dead one")
        conn = await pool.getconn()
        conn._expire_at = 0.0  # as if max_lifetime had passed, without waiting for it
        await pool.putconn(conn)
        await wait_until_async(lambda: closes()[2:] == ["stale"] and whole(), what="stale at return")
        await pool.drain()
        await wait_until_async(lambda: closes()[3:] == ["all", "all"] and whole(), what="drained")
        await pool.close()
        return pool, seen

    pool, seen = asyncio.run(main())
    rows = events(pool)
    assert [e.reason for e in rows if e.kind == "close"][5:] == ["all", "all"]
    assert [(e.in_use, e.idle, e.waiting) for e in rows] == seen
    assert sequence_problems(rows, adopted=2) == []


def test_a_waiting_task_cancelled_or_closed_on_leaves_a_timeout(dsn: str) -> None:
    """A waiter cancelled: timeout 'cancelled'; a waiter failed by close(): timeout 'closed'. Every wait ends."""

    async def main() -> Any:
        pool = AsyncConnectionPool(dsn, min_size=1, open=False, timeout=10)
        await pool.open(wait=True)
        instrument_psycopg(pool)
        held = await pool.getconn()
        first = asyncio.create_task(pool.getconn(), name="cancelled-one")
        await wait_until_async(lambda: pool.get_stats().get("requests_waiting") == 1, what="first waiter queued")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(pool.getconn(), name="closed-on")
        await wait_until_async(lambda: kinds(events(pool)).count("wait") == 2, what="second waiter queued")
        await pool.putconn(held)
        await wait_until_async(lambda: second.done(), what="the second waiter served")
        await pool.putconn(second.result())
        third_holder = await pool.getconn()
        third = asyncio.create_task(pool.getconn(), name="third")
        await wait_until_async(lambda: kinds(events(pool)).count("wait") == 3, what="third waiter queued")
        await pool.close()
        with pytest.raises(PoolClosed):
            await third
        await pool.putconn(third_holder)
        return pool

    pool = asyncio.run(main())
    rows = events(pool)
    assert [(e.thread, e.reason) for e in rows if e.kind == "timeout"] == [
        ("cancelled-one", "cancelled"),
        ("third", "closed"),
    ]
    assert [e.thread for e in rows if e.kind == "checkout"][1] == "closed-on"
    assert sequence_problems(rows, adopted=1) == []
