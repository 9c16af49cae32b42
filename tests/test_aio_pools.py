"""poolviz.pools.peewee_asyncio on SQLite (aiosqlite, peewee's AsyncSqlitePool): events, counts, names, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import peewee
import pytest
from playhouse.pwasyncio import AsyncSqliteDatabase

import poolviz
from poolviz.data import analysis
from poolviz.data.traces import load_events, save_events
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase, instrument_async, is_async_instrumented
from poolviz.testing import kind_reasons, kinds, wait_until_async

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def db(tmp_path: Path) -> InstrumentedAsyncSqliteDatabase:
    return InstrumentedAsyncSqliteDatabase(str(tmp_path / "app.db"), pool_size=2, acquire_timeout=0.2)


def recorded(db: Any, kind: str, thread: str | None = None) -> int:
    """How many ``kind`` events ``db`` has recorded (by ``thread`` only, when given)."""
    return sum(1 for e in db.events.snapshot() if e.kind == kind and thread in (None, e.thread))


class Holders:
    """Tasks that each take a connection of ``db`` and hold it until :meth:`release`."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.released = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def hold(self) -> None:
        await self.db.aconnect()
        await self.released.wait()
        await self.db.aclose()

    def start(self, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self.hold(), name=name)
        self.tasks.append(task)
        return task

    async def take_all(self, count: int = 2) -> None:
        """Start ``count`` holders and return once each holds its connection."""
        for i in range(count):
            self.start(f"holder-{i}")
        await wait_until_async(lambda: recorded(self.db, "checkout") == count, what=f"{count} connections held")

    async def release(self) -> None:
        """Let every holder give its connection back, and wait for them to finish."""
        self.released.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def test_one_task_records_connects_checkout_checkin_and_close_all(db: Any) -> None:
    """A task's aconnect/aclose gives the pool's connects, one checkout, one checkin; close_pool closes each."""

    async def main() -> None:
        await db.aconnect()
        await db.aexecute_sql("SELECT 1")
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert kind_reasons(db) == [
        ("connect", ""),
        ("connect", ""),
        ("checkout", ""),
        ("checkin", ""),
        ("close", "all"),
        ("close", "all"),
    ]
    checkout = db.events.snapshot()[2]
    assert (checkout.in_use, checkout.idle, checkout.reused) == (1, 1, False)
    assert db.events.last.in_use == db.events.last.idle == 0


def test_sqlite_pool_opens_pool_size_connections_and_ignores_pool_min_size(tmp_path: Path) -> None:
    """peewee's AsyncSqlitePool opens all pool_size connections at creation, whatever pool_min_size says."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "a.db"), pool_size=3, pool_min_size=1)

    async def main() -> tuple[int, int]:
        await db.aconnect()
        counts = db.driver_counts()
        await db.aclose()
        await db.close_pool()
        return counts

    assert asyncio.run(main()) == (1, 2)
    assert kinds(db)[:4] == ["connect", "connect", "connect", "checkout"]


def test_memory_database_gets_a_pool_of_one() -> None:
    """':memory:' gives a pool of one connection whatever pool_size is (each would be its own database)."""
    db = InstrumentedAsyncSqliteDatabase(":memory:", pool_size=5)

    async def main() -> None:
        await db.aconnect()
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert kinds(db).count("connect") == 1


def test_thread_column_names_the_task_and_checkin_names_the_holder(db: Any) -> None:
    """Events carry the asyncio task's name; a connection returned after its task ends is credited to it."""

    async def forgetful() -> None:
        await db.aconnect()  # never closed: peewee releases it when the task ends

    async def main() -> None:
        await asyncio.create_task(forgetful(), name="forgetful")
        await wait_until_async(lambda: recorded(db, "checkin"), what="the ended task's connection given back")
        await db.close_pool()

    asyncio.run(main())
    events = db.events.snapshot()
    checkout = next(e for e in events if e.kind == "checkout")
    checkin = next(e for e in events if e.kind == "checkin")
    assert checkout.thread == checkin.thread == "forgetful"
    assert checkin.conn == checkout.conn


def test_exhausted_pool_records_wait_then_checkout_with_the_wait(db: Any) -> None:
    """A task finding every connection taken records `wait`, then `checkout` with how long it waited."""

    async def main() -> None:
        holders = Holders(db)
        for i in range(3):
            holders.start(f"task-{i}")
        await wait_until_async(lambda: recorded(db, "wait"), what="the third task waiting")
        await holders.release()
        await db.close_pool()

    asyncio.run(main())
    events = db.events.snapshot()
    wait = next(e for e in events if e.kind == "wait")
    assert wait.waiting == 1 and wait.in_use == 2
    late = [e for e in events if e.kind == "checkout" and e.thread == wait.thread]
    assert len(late) == 1 and late[0].wait_s > 0 and late[0].reused


def test_acquire_timeout_raises_peeweess_operational_error_and_records_timeout(db: Any) -> None:
    """acquire_timeout expiring raises peewee.OperationalError (not MaxConnectionsExceeded); a timeout is recorded."""

    async def main() -> None:
        holders = Holders(db)
        await holders.take_all()
        with pytest.raises(
            peewee.OperationalError, match=r"Timed out acquiring connection from pool \(acquire_timeout=0.2\)"
        ):
            await db.aconnect()
        await holders.release()
        await db.close_pool()

    asyncio.run(main())
    timeout = next(e for e in db.events.snapshot() if e.kind == "timeout")
    assert timeout.reason == "" and timeout.wait_s > 0.15 and timeout.waiting == 0


def test_cancelled_waiter_records_timeout_cancelled_and_takes_nothing(db: Any) -> None:
    """A task cancelled while waiting leaves a `timeout` with reason `cancelled` and no connection taken."""

    async def main() -> None:
        holders = Holders(db)
        await holders.take_all()
        waiter = holders.start("waiter")
        await wait_until_async(lambda: recorded(db, "wait", "waiter"), what="the waiter waiting")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert db.driver_counts() == (2, 0)
        await holders.release()
        await db.close_pool()

    asyncio.run(main())
    mine = [(e.kind, e.reason, e.waiting) for e in db.events.snapshot() if e.thread == "waiter"]
    assert mine == [("wait", "", 1), ("timeout", "cancelled", 0)]


def test_counts_are_the_driver_queue_at_every_event(db: Any) -> None:
    """Every event's idle equals the pool queue's length and in_use + idle the connections open, when recorded."""
    seen: list[tuple[int, int, int, int]] = []

    def listener(event: Any) -> None:
        pool = db.pool
        if pool is not None and event.kind != "close":
            seen.append((event.idle, pool._queue.qsize(), event.in_use + event.idle, 2))

    db.events.subscribe(listener)

    async def hold(i: int) -> None:
        await db.aconnect()
        await asyncio.sleep(0)  # let the other tasks run while this one holds
        await db.aclose()

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(hold(i)) for i in range(30)))
        await db.close_pool()

    asyncio.run(main())
    assert len(seen) > 60
    assert all(idle == qsize and total == opened for idle, qsize, total, opened in seen)


def test_listeners_run_outside_the_log_lock(db: Any) -> None:
    """A listener is called after the event log's lock is released."""
    held: list[bool] = []
    db.events.subscribe(lambda e: held.append(db.events.lock._is_owned()))

    async def main() -> None:
        await db.aconnect()
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert held and not any(held)


def test_instrument_async_instruments_a_plain_database_in_place_once(tmp_path: Path) -> None:
    """instrument_async() turns peewee's AsyncSqliteDatabase into an instrumented one; twice is harmless."""
    plain = AsyncSqliteDatabase(str(tmp_path / "p.db"), pool_size=2)
    db = instrument_async(plain)
    assert db is plain and is_async_instrumented(db) and instrument_async(db) is db

    async def main() -> None:
        await db.aconnect()
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert kinds(db) == ["connect", "connect", "checkout", "checkin", "close", "close"]


def test_instrument_async_refuses_a_sync_database() -> None:
    """instrument_async() names what it needs when given a threaded database."""
    with pytest.raises(TypeError, match="needs a playhouse.pwasyncio database.*got peewee.SqliteDatabase"):
        instrument_async(peewee.SqliteDatabase(":memory:"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool_size": 0}, "pool_size must be a positive integer, got 0"),
        ({"pool_size": 2.5}, "pool_size must be a positive integer, got 2.5"),
        ({"pool_min_size": -1}, "pool_min_size must be a positive integer, got -1"),
        ({"pool_size": 2, "pool_min_size": 3}, r"pool_min_size must be at most pool_size \(2\), got 3"),
        ({"acquire_timeout": -1}, "acquire_timeout must be None or a number of seconds > 0, got -1"),
        ({"event_capacity": 0}, "event_capacity must be a positive integer, got 0"),
    ],
)
def test_bad_pool_arguments_are_refused_with_what_is_allowed(kwargs: dict[str, Any], message: str) -> None:
    """Bad pool_size, pool_min_size, acquire_timeout or event_capacity raise ValueError naming the value."""
    with pytest.raises(ValueError, match=message):
        InstrumentedAsyncSqliteDatabase(":memory:", **kwargs)


def test_connect_understands_asyncpool_urls(tmp_path: Path) -> None:
    """poolviz.connect('sqlite+asyncpool://...') builds the instrumented asyncio database with URL settings."""
    db = poolviz.connect(f"sqlite+asyncpool:///{tmp_path}/u.db?pool_size=3&acquire_timeout=1.5")
    assert isinstance(db, InstrumentedAsyncSqliteDatabase)
    assert (db.max_connections, db._acquire_timeout) == (3, 1.5)
    assert db.events.meta["url"].startswith("sqlite+asyncpool://")


def test_unknown_scheme_lists_the_asyncpool_schemes_too() -> None:
    """The unknown-scheme error names the +asyncpool schemes beside the +pool ones."""
    with pytest.raises(ValueError, match=r"postgresql\+pool://, sqlite\+asyncpool://.*postgresql\+asyncpool://$"):
        poolviz.connect("oracle+pool://scott@db/orcl")


def test_analysis_and_traces_read_an_asyncio_log_unchanged(db: Any, tmp_path: Path) -> None:
    """An asyncio log goes through to_frame, the analysis and a saved trace exactly as a threaded one."""
    pair = asyncio.Barrier(2)  # holders leave two by two, so both connections are in use at once

    async def hold() -> None:
        await db.aconnect()
        await pair.wait()
        await db.aclose()

    async def main() -> None:
        await asyncio.gather(*(asyncio.create_task(hold(), name=f"task-{i}") for i in range(6)))
        await db.close_pool()

    asyncio.run(main())
    frame = db.events.to_frame()
    holds = analysis.hold_intervals(frame)
    assert len(holds) == 6 and set(holds["thread"]) == {f"task-{i}" for i in range(6)}
    assert analysis.summarize(frame, 2)["timeouts"] == 0
    assert analysis.occupancy(frame)["in_use"].max() == 2
    back = load_events(save_events(frame, tmp_path / "trace.csv"))
    assert list(back["kind"]) == list(frame["kind"])


def test_pool_creation_lock_binds_to_the_first_loop_that_contends_for_it(tmp_path: Path) -> None:
    """peewee's pool-creation asyncio.Lock, once contended in one loop, raises RuntimeError in the next one."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "l.db"), pool_size=2)

    async def contend() -> None:
        async def use() -> None:
            await db.aconnect()
            await db.aclose()

        await asyncio.gather(use(), use(), use())
        await db.close_pool()

    asyncio.run(contend())

    async def again() -> None:
        async def use() -> None:
            await db.aconnect()
            await db.aclose()

        # The first task takes the free lock and creates a pool; the others fail on the lock.
        outcomes = await asyncio.gather(use(), use(), use(), return_exceptions=True)
        await db.close_pool()
        raise next(o for o in outcomes if isinstance(o, Exception))

    with pytest.raises(RuntimeError, match="is bound to a different event loop"):
        asyncio.run(again())


def test_poolviz_instrument_accepts_an_asyncio_database(tmp_path: Path) -> None:
    """poolviz.instrument() hands a playhouse.pwasyncio database to instrument_async()."""
    db = poolviz.instrument(AsyncSqliteDatabase(str(tmp_path / "i.db"), pool_size=1))
    assert is_async_instrumented(db) and db.events.meta["driver"] == "aiosqlite"
