"""What notebook 10 says about peewee's asyncio pools (asyncpg, aiomysql), pinned on the real servers."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import peewee
import pytest

import poolviz
from poolviz.backends import HOLD_SQL, SESSION_SQL
from poolviz.servers.faults import running_statement
from poolviz.testing import kinds, wait_until_async
from poolviz.workload.asyncio_loops import run_async_closed_loop

pytestmark = [pytest.mark.server, pytest.mark.timeout(60)]


@pytest.fixture(params=["mysql", "postgresql"])
def aio_url(request: pytest.FixtureRequest) -> str:
    """The server's URL with the +asyncpool scheme."""
    url: str = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    return url.replace("+pool://", "+asyncpool://", 1)


def driver_counters(db: Any) -> tuple[int, int]:
    """(in use, idle) from the driver's own public counters."""
    pool = db.pool
    if db.events.meta["backend"] == "postgresql":
        return pool.get_size() - pool.get_idle_size(), pool.get_idle_size()
    return pool.size - pool.freesize, pool.freesize


def mine(db: Any, name: str) -> list[tuple[str, str]]:
    """The events of the task ``name``, leaving out the connects of a pool it happened to create."""
    return [(e.kind, e.reason) for e in db.events.snapshot() if e.thread == name and e.kind != "connect"]


def count(db: Any, kind: str, prefix: str = "") -> int:
    """How many ``kind`` events ``db`` recorded for tasks whose name starts with ``prefix``."""
    return sum(e.kind == kind and e.thread.startswith(prefix) for e in db.events.snapshot())


def test_pool_min_size_connections_open_when_the_pool_is_created(aio_url: str) -> None:
    """The first aconnect() creates the pool: pool_min_size connections open before the first checkout."""
    db = poolviz.connect(aio_url, pool_size=4, pool_min_size=3)

    async def main() -> tuple[int, int]:
        await db.aconnect()
        counts = driver_counters(db)
        await db.aclose()
        await db.close_pool()
        return counts

    assert asyncio.run(main()) == (1, 2)
    assert kinds(db)[:4] == ["connect", "connect", "connect", "checkout"]


def test_counts_equal_the_driver_counters_at_every_event(aio_url: str) -> None:
    """in_use and idle on every event equal asyncpg's get_size/get_idle_size, aiomysql's size/freesize, then."""
    db = poolviz.connect(aio_url, pool_size=4, pool_min_size=1)
    pairs: list[tuple[tuple[int, int], tuple[int, int]]] = []
    db.events.subscribe(lambda e: pairs.append(((e.in_use, e.idle), driver_counters(db))) if db.pool else None)

    async def work(i: int) -> None:
        await db.aconnect()
        await db.aexecute_sql("SELECT 1")
        # Holds of 0, 2 and 4 ms so check-ins land among checkouts and waits; no task waits for another.
        await asyncio.sleep(0.002 * (i % 3))
        await db.aclose()

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(work(i), name=f"task-{i}") for i in range(40)))
        await db.close_pool()

    asyncio.run(main())
    assert len(pairs) > 80
    assert [p for p in pairs if p[0] != p[1]] == []
    seen = kinds(db)
    assert seen.count("wait") > 0 and seen.count("checkout") == seen.count("checkin") == 40


def test_acquire_timeout_raises_operational_error_not_max_connections_exceeded(aio_url: str) -> None:
    """acquire_timeout expiring raises peewee.OperationalError naming it, recorded as wait then timeout."""
    db = poolviz.connect(aio_url, pool_size=1, pool_min_size=1, acquire_timeout=0.3)

    async def main() -> None:
        await db.aconnect()

        async def late() -> None:
            await db.aconnect()

        with pytest.raises(
            peewee.OperationalError, match=r"^Timed out acquiring connection from pool \(acquire_timeout=0.3\)\.$"
        ):
            await asyncio.create_task(late(), name="late")
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert mine(db, "late") == [("wait", ""), ("timeout", "")]
    timeout = next(e for e in db.events.snapshot() if e.kind == "timeout")
    assert 0.25 < timeout.wait_s < 1.0


def test_task_cancelled_while_waiting_gets_nothing_and_the_next_waiter_is_served(aio_url: str) -> None:
    """Cancelling a waiting task raises CancelledError in it; the pool's counts do not move; others go on."""
    db = poolviz.connect(aio_url, pool_size=1, pool_min_size=1)

    async def main() -> None:
        await db.aconnect()

        async def use() -> None:
            await db.aconnect()
            await db.aclose()

        waiter = asyncio.create_task(use(), name="cancelled")
        other = asyncio.create_task(use(), name="served")
        await wait_until_async(lambda: count(db, "wait") == 2, what="both tasks waiting")
        before = driver_counters(db)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert driver_counters(db) == before == (1, 0)
        await db.aclose()
        await asyncio.wait_for(other, 5)
        await db.close_pool()

    asyncio.run(main())
    assert mine(db, "cancelled") == [("wait", ""), ("timeout", "cancelled")]
    assert [k for k, _ in mine(db, "served")] == ["wait", "checkout", "checkin"]


def test_task_cancelled_while_holding_an_idle_connection_returns_it(aio_url: str) -> None:
    """peewee returns a cancelled task's connection when the task ends: a checkin named after the task."""
    db = poolviz.connect(aio_url, pool_size=2, pool_min_size=1)

    async def main() -> tuple[tuple[int, int], tuple[int, int]]:
        checked_out = asyncio.Event()

        async def holder() -> None:
            await db.aconnect()
            checked_out.set()
            await asyncio.sleep(30)

        task = asyncio.create_task(holder(), name="holder")
        await asyncio.wait_for(checked_out.wait(), 10)
        holding = driver_counters(db)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # peewee's task-done callback returns the connection after the task ends: wait for its checkin.
        await wait_until_async(lambda: count(db, "checkin", "holder") == 1, what="the cancelled holder's checkin")
        after = driver_counters(db)
        await db.close_pool()
        return holding, after

    holding, after = asyncio.run(main())
    assert holding[0] == 1 and after[0] == 0
    assert mine(db, "holder") == [("checkout", ""), ("checkin", "")]


def test_cancelled_mid_query_asyncpg_returns_the_connection_aiomysql_closes_it(aio_url: str) -> None:
    """Cancelled inside a query: asyncpg cancels it and the connection goes back; aiomysql's is closed."""
    db = poolviz.connect(aio_url, pool_size=2, pool_min_size=1)
    backend = db.events.meta["backend"]

    observer = poolviz.connect(aio_url.replace("+asyncpool://", "+pool://", 1), max_connections=1)
    session: list[int] = []

    async def main() -> list[Any]:
        async def query() -> None:
            await db.aconnect()
            session.extend(row[0] for row in await db.aexecute_sql(SESSION_SQL[backend]))
            await db.aexecute_sql(HOLD_SQL[backend], (5,))

        task = asyncio.create_task(query(), name="querier")
        await wait_until_async(
            lambda: session and running_statement(observer, session[0]), what="the server running the query"
        )
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The connection goes back (asyncpg, after cancelling the query) or is closed (aiomysql) once the task ends.
        await wait_until_async(
            lambda: len(mine(db, "querier")) == 2, what="the querier's connection returned or closed"
        )
        await db.aconnect()
        rows = list(await db.aexecute_sql("SELECT 1"))
        await db.aclose()
        assert time.perf_counter() - started < 3, "the next query did not wait for the cancelled one"
        await db.close_pool()
        return rows

    try:
        assert len(asyncio.run(main())) == 1
    finally:
        observer.close_all()
    if backend == "postgresql":
        assert mine(db, "querier") == [("checkout", ""), ("checkin", "")]
    else:
        assert mine(db, "querier") == [("checkout", ""), ("close", "broken")]


def test_a_blocking_call_in_one_task_freezes_every_task(aio_url: str) -> None:
    """time.sleep in a task stops the loop: no event for its length, and the other holders' holds stretch."""
    db = poolviz.connect(aio_url, pool_size=3, pool_min_size=3, acquire_timeout=5)

    async def main() -> None:
        async def polite() -> None:
            await db.aconnect()
            await asyncio.sleep(0.05)
            await db.aclose()

        async def blocker() -> None:
            await db.aconnect()
            # Both polite tasks hold their connection (for 50 ms) when the loop is blocked.
            await wait_until_async(lambda: count(db, "checkout", "polite") == 2, what="both polite tasks holding")
            time.sleep(0.4)  # the blocking call under test, not an ordering
            await db.aclose()

        await db.aconnect()
        await db.aclose()
        await asyncio.gather(
            asyncio.create_task(polite(), name="polite-0"),
            asyncio.create_task(blocker(), name="blocker"),
            asyncio.create_task(polite(), name="polite-1"),
        )
        await db.close_pool()

    asyncio.run(main())
    events = db.events.snapshot()
    gaps = [b.t - a.t for a, b in itertools.pairwise(events)]
    assert max(gaps) >= 0.39
    holds = {e.thread: e.duration_s for e in events if e.kind == "checkin" and e.thread.startswith("polite")}
    assert holds and all(held >= 0.35 for held in holds.values())


def test_task_that_never_closes_gets_its_connection_returned_when_it_ends(aio_url: str) -> None:
    """A task that ends without aclose() still gives its connection back (peewee's task-done callback)."""
    db = poolviz.connect(aio_url, pool_size=1, pool_min_size=1)

    async def main() -> tuple[int, int]:
        async def forgetful() -> None:
            await db.aconnect()
            await db.aexecute_sql("SELECT 1")

        await asyncio.create_task(forgetful(), name="forgetful")
        # peewee's task-done callback returns the connection after the task ends: wait for its checkin.
        await wait_until_async(lambda: count(db, "checkin", "forgetful") == 1, what="the forgetful task's checkin")
        counts = driver_counters(db)
        await db.close_pool()
        return counts

    assert asyncio.run(main()) == (0, 1)
    assert mine(db, "forgetful") == [("checkout", ""), ("checkin", "")]


def test_asyncio_closed_loop_runs_on_the_server_within_the_pool_size(aio_url: str) -> None:
    """200 tasks through a pool of 5: every request succeeds and in_use never exceeds 5."""
    db = poolviz.connect(aio_url, pool_size=5, pool_min_size=1)
    result = run_async_closed_loop(db, tasks=200, requests=1, hold=0.002)
    assert (result.requests_ok, result.requests_failed) == (200, 0)
    assert result.events["in_use"].max() <= 5
    assert (result.events["kind"] == "checkout").sum() == 200
    assert set(result.requests_frame()["thread"]) == {f"task-{i}" for i in range(200)}


def test_waiting_tasks_are_served_in_arrival_order(aio_url: str) -> None:
    """asyncpg's and aiomysql's pools hand a freed connection to the task that has waited longest."""
    db = poolviz.connect(aio_url, pool_size=1, pool_min_size=1, acquire_timeout=10)

    async def main() -> None:
        await db.aconnect()

        async def use() -> None:
            await db.aconnect()
            await asyncio.sleep(0.005)
            await db.aclose()

        waiters = []
        for i in range(5):
            waiters.append(asyncio.create_task(use(), name=f"waiter-{i}"))
            # waiter-i queues in the driver before waiter-(i+1) is created: the arrival order is known.
            await wait_until_async(lambda i=i: count(db, "wait", "waiter") == i + 1, what=f"waiter-{i} waiting")
        await db.aclose()
        await asyncio.gather(*waiters)
        await db.close_pool()

    asyncio.run(main())
    served = [e.thread for e in db.events.snapshot() if e.kind == "checkout" and e.thread.startswith("waiter")]
    assert served == [f"waiter-{i}" for i in range(5)]


def drop_idle_connection(aio_url: str) -> tuple[Any, list[tuple[int, int]]]:
    """Run a pool whose driver drops an idle connection itself (asyncpg's timer, aiomysql's pool_recycle)."""
    postgres = aio_url.startswith("postgresql")
    limit = {"max_inactive_connection_lifetime": 0.2} if postgres else {"pool_recycle": 0.2}
    # pool_min_size=0: asyncpg never drops a connection the pool needs for its minimum.
    db = poolviz.connect(aio_url, pool_size=2, pool_min_size=0, **limit)

    async def main() -> list[tuple[int, int]]:
        await db.aconnect()
        await db.aclose()
        if postgres:
            # asyncpg's timer closes the connection after 0.2 s idle: wait until its pool holds none.
            await wait_until_async(lambda: driver_counters(db) == (0, 0), what="asyncpg closing the idle connection")
        else:
            await asyncio.sleep(0.45)  # let the idle connection age past pool_recycle (time itself, no ordering)
        db.sweep()  # asyncpg's timer has fired; aiomysql drops the connection at the next acquire
        await db.aconnect()
        counts = [driver_counters(db)]
        await db.aclose()
        counts.append(driver_counters(db))
        await db.close_pool()
        return counts

    return db, asyncio.run(main())


def test_an_idle_connection_the_driver_drops_on_its_own_is_recorded_as_a_close(aio_url: str) -> None:
    """A connection the driver closes between two events is a close at the next sweep; its successor is new."""
    db, counts = drop_idle_connection(aio_url)
    assert counts == [(1, 0), (0, 1)]
    events = db.events.snapshot()
    closes = [e for e in events if e.kind == "close" and e.reason != "all"]
    first, second = (e for e in events if e.kind == "checkout")
    assert [e.conn for e in closes] == [first.conn]
    assert second.conn != first.conn and not second.reused
    if aio_url.startswith("postgresql"):
        assert closes[0].reason == "idle"
    assert [(e.in_use, e.idle) for e in events if e.kind in ("checkout", "checkin")][-2:] == [(1, 0), (0, 1)]


def test_aiomysql_recycled_connection_closes_with_reason_stale(mysql_url: str) -> None:
    """A connection aiomysql drops for pool_recycle is a close with reason stale, not broken."""
    db, _counts = drop_idle_connection(mysql_url.replace("+pool://", "+asyncpool://", 1))
    assert [e.reason for e in db.events.snapshot() if e.kind == "close" and e.reason != "all"] == ["stale"]
