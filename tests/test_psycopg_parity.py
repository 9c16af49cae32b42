"""Instrumenting a psycopg_pool pool changes none of its behaviour: same connections, errors, order, stats, callbacks.

Each scenario runs on a plain pool and on an instrumented one built the same
way; what a caller can observe (which connection each ``getconn()`` returns,
by order of first appearance; exceptions and their messages; query results;
psycopg_pool's own counters; how often the user's callbacks ran) must match.
A hypothesis state machine then drives both pools through random sequences.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from psycopg_pool import AsyncConnectionPool, ConnectionPool, NullConnectionPool, PoolTimeout

from poolviz import servers
from poolviz.pools.psycopg import instrument_psycopg
from poolviz.pools.psycopg.testing import libpq_url, sequence_problems, stats_at_each_event
from poolviz.testing import join_threads, wait_until

# psycopg_pool's counters that do not depend on timing.
COUNTERS = (
    "requests_num",
    "requests_queued",
    "requests_errors",
    "returns_bad",
    "connections_num",
    "connections_errors",
    "connections_lost",
    "pool_min",
    "pool_max",
    "pool_size",
    "pool_available",
    "requests_waiting",
)


@pytest.fixture
def dsn(pg_url: str) -> str:
    """The test server as a libpq URL."""
    return libpq_url(pg_url)


def counters(pool: Any) -> dict[str, int]:
    stats = pool.get_stats()
    return {key: stats.get(key, 0) for key in COUNTERS}


class Observer:
    """What a caller sees of one pool: connections labelled by first appearance, outcomes, callback calls."""

    def __init__(self) -> None:
        self.labels: dict[int, int] = {}
        self.kept: list[Any] = []
        self.seen: list[Any] = []
        # A reset callback is left out: with one, psycopg_pool returns connections in its
        # workers, so their order back in the pool is not the caller's (test_psycopg_events checks reset).
        self.calls = {"configure": 0, "check": 0}

    def label(self, conn: Any) -> int:
        if id(conn) not in self.labels:
            self.kept.append(conn)  # so no later connection gets its id()
            self.labels[id(conn)] = len(self.labels) + 1
        return self.labels[id(conn)]

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        def counted(name: str) -> Callable[[Any], None]:
            def callback(conn: Any) -> None:
                self.calls[name] += 1

            return callback

        return {name: counted(name) for name in self.calls}

    def attempt(self, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except Exception as exc:
            # Messages name connections by address: the two pools' differ.
            self.seen.append(("raised", type(exc).__name__, re.sub(r"0x[0-9a-f]+", "0x?", str(exc))))
            return None


def threaded_script(pool: Any, seen: Observer, dsn: str) -> list[Any]:
    """Every operation of a ConnectionPool of 2, one thread; returns what the caller saw."""
    out = seen.seen
    a = pool.getconn()
    b = pool.getconn()
    out.append(("got", seen.label(a), seen.label(b)))
    seen.attempt(lambda: pool.getconn(timeout=0.05))  # full: PoolTimeout
    pool.putconn(b)
    pool.putconn(a)
    c = pool.getconn()
    out.append(("fifo", seen.label(c), c.execute("SELECT 1").fetchone()))  # in a transaction now
    pool.putconn(c)  # rolled back at its return
    out.append(("counters", counters(pool)))
    dead = pool.getconn()
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [dead.info.backend_pid])
    seen.attempt(lambda: dead.execute("SELECT 1"))
    pool.putconn(dead)  # dead at its return: replaced in the background
    wait_until(lambda: pool.get_stats()["pool_available"] == 2, what="the replacement")
    out.append(("after a dead return", counters(pool)))
    pool.drain()
    wait_until(lambda: pool.get_stats()["pool_available"] == 2, what="the refill after drain")
    pool.check()
    wait_until(lambda: pool.get_stats()["pool_available"] == 2, what="the pool after check")
    with pool.connection() as conn:
        out.append(("after drain", seen.label(conn), conn.execute("SELECT 2").fetchone()))
    seen.attempt(lambda: pool.putconn(conn))  # returned twice
    pool.close()
    seen.attempt(pool.getconn)
    out.append(("closed", counters(pool), dict(seen.calls)))
    return out


def test_threaded_pool_script_observes_the_same(dsn: str) -> None:
    """Timeouts, FIFO reuse, rollback, a dead return, drain, check, close: the same on both pools."""
    runs = []
    for instrumented in (False, True):
        seen = Observer()
        pool = ConnectionPool(dsn, min_size=2, open=False, name="parity", timeout=1.0, **seen.callbacks())
        pool.open(wait=True)
        if instrumented:
            instrument_psycopg(pool)
            stamps = stats_at_each_event(pool)
        runs.append(threaded_script(pool, seen, dsn))
    assert runs[0] == runs[1]
    rows = pool._poolviz_events.snapshot()
    assert [(e.in_use, e.idle, e.waiting) for e in rows] == stamps
    assert sequence_problems(rows, adopted=2) == []


def test_null_pool_script_observes_the_same(dsn: str) -> None:
    """A null pool: a connection per caller, closed on return; the same on both pools."""
    runs = []
    for instrumented in (False, True):
        seen = Observer()
        pool = NullConnectionPool(dsn, max_size=2, open=True, name="parity", timeout=0.05, **seen.callbacks())
        if instrumented:
            instrument_psycopg(pool)
        a, b = pool.getconn(), pool.getconn()
        seen.attempt(pool.getconn)
        seen.seen.append(("got", seen.label(a), seen.label(b), counters(pool)))
        pool.putconn(a)
        with pool.connection() as conn:
            seen.seen.append(("new", seen.label(conn), conn.execute("SELECT 1").fetchone()))
        pool.putconn(b)
        pool.close()
        seen.seen.append(("closed", counters(pool), dict(seen.calls)))
        runs.append(seen.seen)
    assert runs[0] == runs[1]
    assert [e.kind for e in pool._poolviz_events.snapshot()].count("close") == 3


def test_asyncio_pool_script_observes_the_same(dsn: str) -> None:
    """AsyncConnectionPool: a timeout, FIFO reuse, rollback, drain, close: the same on both pools."""

    async def script(instrumented: bool) -> list[Any]:
        seen = Observer()
        pool = AsyncConnectionPool(dsn, min_size=2, open=False, name="parity", timeout=0.05)
        await pool.open(wait=True)
        if instrumented:
            instrument_psycopg(pool)
        a, b = await pool.getconn(), await pool.getconn()
        try:
            await pool.getconn()
        except PoolTimeout as exc:
            seen.seen.append(("raised", str(exc)))
        await pool.putconn(b)
        await pool.putconn(a)
        c = await pool.getconn()
        await c.execute("SELECT 1")
        seen.seen.append(("fifo", seen.label(a), seen.label(b), seen.label(c)))
        await pool.putconn(c)
        await pool.drain()
        await pool.wait()
        seen.seen.append(("drained", counters(pool)))
        await pool.close()
        seen.seen.append(("closed", counters(pool)))
        return seen.seen

    assert asyncio.run(script(False)) == asyncio.run(script(True))


@pytest.mark.parametrize("instrumented", [False, True], ids=["plain", "instrumented"])
def test_waiters_served_in_order_and_refused_alike(dsn: str, instrumented: bool) -> None:
    """FIFO service and max_waiting's refusal, on a plain pool and an instrumented one (same expectations)."""
    pool = ConnectionPool(dsn, min_size=1, max_waiting=3, open=True, name="order")
    if instrumented:
        instrument_psycopg(pool)
    try:
        pool.wait()
        held = pool.getconn()
        served: list[str] = []

        def worker() -> None:
            with pool.connection(timeout=10):
                served.append(threading.current_thread().name)

        threads = []
        for i in range(3):
            threads.append(threading.Thread(target=worker, name=f"w{i}"))
            threads[-1].start()
            wait_until(lambda n=i + 1: pool.get_stats().get("requests_waiting") == n, what="queued in order")
        with pytest.raises(psycopg.OperationalError, match="has already 3 requests waiting"):
            pool.getconn()
        pool.putconn(held)
        join_threads(threads)
        assert served == ["w0", "w1", "w2"]
        assert counters(pool)["requests_errors"] == 1
    finally:
        pool.close()


class PoolPairs(RuleBasedStateMachine):
    """A plain ConnectionPool and an instrumented one, driven through the same random steps."""

    SIZE = 3

    def __init__(self) -> None:
        super().__init__()
        dsn = libpq_url(servers.postgres_url())
        self.observers = (Observer(), Observer())
        self.pools = []
        for seen in self.observers:
            pool = ConnectionPool(dsn, min_size=self.SIZE, open=False, name="pair", timeout=0.02, **seen.callbacks())
            pool.open(wait=True)
            self.pools.append(pool)
        instrument_psycopg(self.pools[1])
        self.stamps = stats_at_each_event(self.pools[1])
        # Connections checked out, as (plain's, instrumented's) pairs.
        self.held: list[tuple[Any, Any]] = []

    def teardown(self) -> None:
        for pool in self.pools:
            pool.close()
        for pair in self.held:
            for conn in pair:
                conn.close()

    def both(self, action: Callable[[Any, Observer], Any]) -> list[Any]:
        """Run ``action`` on both pools; what a caller saw must be the same."""
        results = [self.observers[i].attempt(lambda i=i: action(self.pools[i], self.observers[i])) for i in (0, 1)]
        assert self.observers[0].seen == self.observers[1].seen
        return results

    def settled(self) -> None:
        # Replacements open in psycopg_pool's workers: wait until both pools are whole again
        # (what a caller sees next must not depend on how fast a worker was).
        for pool in self.pools:
            wait_until(lambda p=pool: p.get_stats()["pool_available"] + len(self.held) == self.SIZE, what="refill")

    @rule()
    def getconn(self) -> None:
        def get(pool: Any, seen: Observer) -> Any:
            conn = pool.getconn()
            seen.seen.append(("got", seen.label(conn)))
            return conn

        got = self.both(get)
        if got[0] is not None:
            self.held.append((got[0], got[1]))

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8), mid_transaction=st.booleans())
    def putconn(self, index: int, mid_transaction: bool) -> None:
        pair = self.held.pop(index % len(self.held))

        def put(pool: Any, seen: Observer) -> None:
            conn = pair[self.pools.index(pool)]
            if mid_transaction:
                seen.seen.append(("query", conn.execute("SELECT 1").fetchone()))
            pool.putconn(conn)

        self.both(put)
        self.settled()  # a connection returned past drain() is replaced in the background

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 8))
    def return_closed(self, index: int) -> None:
        pair = self.held.pop(index % len(self.held))

        def put(pool: Any, seen: Observer) -> None:
            conn = pair[self.pools.index(pool)]
            conn.close()  # psycopg_pool replaces a connection returned closed
            pool.putconn(conn)

        self.both(put)
        self.settled()

    @rule()
    def drain(self) -> None:
        self.both(lambda pool, seen: pool.drain())
        self.settled()

    @rule()
    def check(self) -> None:
        self.both(lambda pool, seen: pool.check())
        self.settled()

    @invariant()
    def counters_are_the_same(self) -> None:
        assert counters(self.pools[0]) == counters(self.pools[1])
        assert self.observers[0].calls == self.observers[1].calls

    @invariant()
    def events_agree_with_psycopg_pool(self) -> None:
        pool = self.pools[1]
        rows = pool._poolviz_events.snapshot()
        assert [(e.in_use, e.idle, e.waiting) for e in rows] == self.stamps
        assert sequence_problems(rows, adopted=self.SIZE) == []
        stats = pool.get_stats()
        if rows:
            # Quiet between steps: the last event says what psycopg_pool says now.
            assert (rows[-1].in_use, rows[-1].idle) == (
                stats["pool_size"] - stats["pool_available"],
                stats["pool_available"],
            )


PoolPairs.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.fixture
def server(pg_url: str) -> Iterator[str]:
    """The state machine reads the server's URL itself; this only skips (or fails in CI) without a server."""
    yield pg_url


@pytest.mark.slow
@pytest.mark.usefixtures("server")
class TestPoolPairs(PoolPairs.TestCase):  # type: ignore[name-defined,misc]
    """Random getconn/putconn/closed returns/drain/check sequences: the instrumented pool is indistinguishable."""
