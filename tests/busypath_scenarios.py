"""One scripted run per pool library, printed as JSON: tests/test_busypath.py runs each twice, compiled and Python.

    python tests/busypath_scenarios.py sqlalchemy|sqlalchemy-async|psycopg|psycopg-async URL

Every step is made in one thread or task, so both runs make the same calls in
the same order: first checkouts and reused ones, two call sites, a timeout, a
listener arriving and leaving, a connection invalidated, a check-in of a
connection taken before ``instrument()``. What is printed is each event
without its times: kind, conn, thread, counts, reused, reason, and message
(a checkout's site, a close's reason, an error's text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import poolviz
from poolviz.pools.busypath import compiled
from poolviz.testing import wait_until_async


def described(log: Any) -> list[list[Any]]:
    return [
        [e.kind, e.conn, e.thread, e.in_use, e.idle, e.waiting, e.reused, e.reason, e.message, e.wait_s > 0]
        for e in log.snapshot()
    ]


def sqlalchemy(url: str) -> list[list[Any]]:
    from sqlalchemy import create_engine, exc, text
    from sqlalchemy.pool import QueuePool

    engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=0, pool_timeout=0.05)
    before = engine.raw_connection()  # out when instrumented: adopted, its serial given when it comes back
    poolviz.instrument(engine)
    log = poolviz.events_of(engine)
    for _ in range(3):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    held = engine.pool.connect()  # the second site
    with contextlib.suppress(exc.TimeoutError):
        engine.pool.connect()
    before.close()
    with log.subscribe(lambda event: None), engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    held.invalidate()
    held.close()
    for _ in range(2):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    engine.dispose()
    return described(log)


def sqlalchemy_async(url: str) -> list[list[Any]]:
    from sqlalchemy import exc, text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> list[list[Any]]:
        engine = create_async_engine(url, pool_size=2, max_overflow=0, pool_timeout=0.05)
        poolviz.instrument(engine)
        log = poolviz.events_of(engine)
        for _ in range(3):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        held = await asyncio.create_task(engine.connect().start(), name="holder")
        other = await engine.connect().start()
        with contextlib.suppress(exc.TimeoutError):
            await engine.connect().start()
        await other.close()
        with log.subscribe(lambda event: None):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        await held.close()
        for _ in range(2):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        await engine.dispose()
        return described(log)

    return asyncio.run(run())


def psycopg(url: str) -> list[list[Any]]:
    from psycopg_pool import ConnectionPool, PoolTimeout

    pool = ConnectionPool(url, min_size=2, max_size=2, open=True, timeout=0.05)
    pool.wait()
    before = pool.getconn()
    poolviz.instrument(pool)
    log = poolviz.events_of(pool)
    for _ in range(3):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    held = pool.getconn()  # the second site
    with contextlib.suppress(PoolTimeout):
        pool.getconn()
    pool.putconn(before)
    with log.subscribe(lambda event: None), pool.connection() as conn:
        conn.execute("SELECT 1")
    held.close()  # broken: psycopg_pool replaces it in the background
    pool.putconn(held)
    pool.wait()
    for _ in range(2):
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    pool.close()
    return described(log)


def psycopg_async(url: str) -> list[list[Any]]:
    from psycopg_pool import AsyncConnectionPool, PoolTimeout

    async def run() -> list[list[Any]]:
        pool = AsyncConnectionPool(url, min_size=2, max_size=2, open=False, timeout=0.05)
        await pool.open()
        await pool.wait()
        before = await pool.getconn()
        poolviz.instrument(pool)
        log = poolviz.events_of(pool)
        for _ in range(3):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        held = await asyncio.create_task(pool.getconn(), name="taker")
        with contextlib.suppress(PoolTimeout):
            await asyncio.wait_for(pool.getconn(), 5)
        waiter = asyncio.create_task(pool.getconn(timeout=5), name="cancelled")
        await wait_until_async(lambda: pool.get_stats().get("requests_waiting") == 2, what="the waiter queued")
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        await pool.putconn(before)
        with log.subscribe(lambda event: None):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        await held.close()
        await pool.putconn(held)
        await pool.wait()
        for _ in range(2):
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        await pool.close()
        return described(log)

    return asyncio.run(run())


SCENARIOS = {
    "sqlalchemy": sqlalchemy,
    "sqlalchemy-async": sqlalchemy_async,
    "psycopg": psycopg,
    "psycopg-async": psycopg_async,
}

if __name__ == "__main__":
    name, url = sys.argv[1], sys.argv[2]
    print(json.dumps({"compiled": compiled is not None, "events": SCENARIOS[name](url)}))
