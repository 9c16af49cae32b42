"""peewee's asyncio pools: the leak watchdog and resize(), on SQLite and on both servers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playhouse.pwasyncio import AsyncSqliteDatabase

import poolviz
from poolviz.testing import wait_until_async

pytestmark = pytest.mark.timeout(60)


SERVER = pytest.mark.server
BACKENDS = ["sqlite", pytest.param("mysql", marks=SERVER), pytest.param("postgresql", marks=SERVER)]


@pytest.fixture(params=BACKENDS)
def aio_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An ``+asyncpool`` URL on SQLite, MariaDB and PostgreSQL in turn."""
    if request.param == "sqlite":
        return f"sqlite+asyncpool:///{tmp_path}/aio.db"
    url: str = request.getfixturevalue("mysql_url" if request.param == "mysql" else "pg_url")
    return url.replace("+pool://", "+asyncpool://", 1)


def open_db(url: str, size: int, **kwargs: Any) -> Any:
    """An instrumented asyncio database of ``size`` connections (servers open them on demand)."""
    return poolviz.connect(url, pool_size=size, pool_min_size=0 if "sqlite" not in url else 1, **kwargs)


def total(db: Any) -> int:
    """Connections the driver's pool holds now, in use or idle."""
    in_use, idle = db.driver_counts()
    return int(in_use + idle)


class Holders:
    """Tasks that each check out a connection and keep it until told to give it back."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.release = asyncio.Event()
        self.holding = 0
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, count: int, prefix: str = "holder") -> None:
        """Start ``count`` more holders, named ``prefix-<n>`` by their order among all started."""
        for _ in range(count):
            self.tasks.append(asyncio.create_task(self._hold(), name=f"{prefix}-{len(self.tasks)}"))

    async def _hold(self) -> None:
        await self.db.aconnect()
        self.holding += 1
        await self.release.wait()
        await self.db.aclose()
        self.holding -= 1

    async def finish(self) -> None:
        self.release.set()
        await asyncio.gather(*self.tasks)


def test_a_connection_held_past_the_threshold_is_reported_while_held(aio_url: str) -> None:
    """The watchdog records a leak for the holding task while nobody touches the pool, and unleak on return."""
    db = open_db(aio_url, 2, leak_threshold=0.05)

    async def main() -> list[Any]:
        holders = Holders(db)
        holders.start(1)
        await wait_until_async(lambda: any(e.kind == "leak" for e in db.events.snapshot()), what="a leak event")
        found = db.leaks()
        await holders.finish()
        await db.close_pool()
        return list(found)

    (leak,) = asyncio.run(main())
    assert leak.thread == "holder-0" and leak.thread_alive and leak.held_s > 0.05
    assert "test_aio_leaks_resize.py" in leak.origin
    steps = [(e.kind, e.thread, e.reason) for e in db.events.snapshot() if e.conn == leak.conn]
    assert ("leak", "holder-0", "held") in steps and ("unleak", "holder-0", "") in steps
    assert steps.index(("unleak", "holder-0", "")) > steps.index(("leak", "holder-0", "held"))
    (event,) = (e for e in db.events.snapshot() if e.kind == "leak")
    assert event.duration_s > 0.05 and event.message == leak.origin


def test_a_short_hold_is_no_leak(tmp_path: Path) -> None:
    """Connections given back before the threshold leave no leak event, and leaks() finds none."""
    db = open_db(f"sqlite+asyncpool:///{tmp_path}/aio.db", 2, leak_threshold=30)

    async def main() -> list[Any]:
        for _ in range(3):
            await db.aconnect()
            await db.aclose()
        found = db.leaks()
        await db.close_pool()
        return list(found)

    assert asyncio.run(main()) == []
    assert [e.kind for e in db.events.snapshot() if e.kind in ("leak", "unleak")] == []


def test_leaks_needs_a_threshold(tmp_path: Path) -> None:
    """leaks() on a database built without leak_threshold says how to turn detection on."""
    db = open_db(f"sqlite+asyncpool:///{tmp_path}/aio.db", 1)
    with pytest.raises(ValueError, match="leak detection is off: build the database with leak_threshold"):
        db.leaks()


def test_instrument_passes_leak_threshold_to_an_asyncio_database(tmp_path: Path) -> None:
    """poolviz.instrument() on a peewee asyncio database keeps leak_threshold (and checks it)."""
    with pytest.raises(ValueError, match="leak_threshold"):
        poolviz.instrument(AsyncSqliteDatabase(str(tmp_path / "bad.db")), leak_threshold=-1)
    db = poolviz.instrument(AsyncSqliteDatabase(str(tmp_path / "aio.db"), pool_size=1), leak_threshold=0.05)
    assert db.leak_threshold == 0.05

    async def main() -> None:
        holders = Holders(db)
        holders.start(1)
        await wait_until_async(lambda: any(e.kind == "leak" for e in db.events.snapshot()), what="a leak event")
        await holders.finish()
        await db.close_pool()

    asyncio.run(main())


def test_growing_serves_a_waiting_task_at_once(aio_url: str) -> None:
    """resize() up while a task waits for a connection: the task is served without anyone giving one back."""
    db = open_db(aio_url, 1, acquire_timeout=20)

    async def main() -> int:
        holders = Holders(db)
        holders.start(1)
        await wait_until_async(lambda: holders.holding == 1, what="the first holder")
        holders.start(1, "late")
        await wait_until_async(lambda: any(e.kind == "wait" for e in db.events.snapshot()), what="a wait")
        over = await db.resize(2)
        await wait_until_async(lambda: holders.holding == 2, what="the waiting task served")
        await holders.finish()
        await db.close_pool()
        return int(over)

    assert asyncio.run(main()) == 0
    assert db.max_connections == 2 and db.events.meta["max_connections"] == 2
    (served,) = (e for e in db.events.snapshot() if e.kind == "checkout" and e.thread == "late-1")
    assert served.in_use == 2 and served.wait_s > 0


def test_shrinking_closes_the_idle_surplus_at_once(aio_url: str) -> None:
    """resize() down on an idle pool closes the connections over the new limit now, with reason idle."""
    db = open_db(aio_url, 3)

    async def main() -> int:
        holders = Holders(db)
        holders.start(3)
        await wait_until_async(lambda: holders.holding == 3, what="three holders")
        await holders.finish()
        assert total(db) == 3
        over = await db.resize(1)
        assert total(db) == 1
        await db.aconnect()  # the one left still serves
        await db.aclose()
        await db.close_pool()
        return int(over)

    assert asyncio.run(main()) == 0
    closes = [e.reason for e in db.events.snapshot() if e.kind == "close" and e.reason != "all"]
    assert closes == ["idle", "idle"]


def test_shrinking_below_the_connections_in_use_closes_each_as_it_comes_back(aio_url: str) -> None:
    """resize() down while all are in use: it reports how many are over, and each returned one over goes."""
    db = open_db(aio_url, 3, acquire_timeout=20)

    async def main() -> int:
        holders = Holders(db)
        holders.start(3)
        await wait_until_async(lambda: holders.holding == 3, what="three holders")
        over = await db.resize(1)
        await holders.finish()
        assert total(db) == 1
        extra = Holders(db)
        extra.start(2, "after")
        await wait_until_async(lambda: extra.holding == 1, what="one served")
        await extra.finish()
        await db.close_pool()
        return int(over)

    assert asyncio.run(main()) == 2
    events = db.events.snapshot()
    assert [e.reason for e in events if e.kind == "close" and e.reason != "all"] == ["idle", "idle"]
    assert max(e.in_use for e in events if e.kind == "checkout" and e.thread.startswith("after")) == 1


def test_resize_before_the_pool_exists_sets_the_size_it_is_created_with(tmp_path: Path) -> None:
    """resize() before the first connection only changes the size peewee will create the pool with."""
    db = open_db(f"sqlite+asyncpool:///{tmp_path}/aio.db", 2)

    async def main() -> int:
        over = await db.resize(4)
        await db.aconnect()
        await db.aclose()
        count = total(db)
        await db.close_pool()
        assert over == 0
        return count

    assert asyncio.run(main()) == 4  # peewee's SQLite pool opens all of its connections at once


def test_resize_refuses_a_limit_that_is_not_a_positive_integer(tmp_path: Path) -> None:
    """resize(0) names the bad value and what is allowed."""
    db = open_db(f"sqlite+asyncpool:///{tmp_path}/aio.db", 2)
    with pytest.raises(ValueError, match="max_connections must be a positive integer, got 0"):
        asyncio.run(db.resize(0))


@pytest.mark.server
def test_an_idle_aiomysql_connection_the_server_killed_is_broken_not_stale(mysql_url: str) -> None:
    """With pool_recycle set, a young idle connection the server killed is still a close with reason broken."""
    import pymysql

    db = poolviz.connect(mysql_url.replace("+pool://", "+asyncpool://", 1), pool_size=2, pool_recycle=3600)

    async def main() -> None:
        await db.aconnect()
        await db.aclose()
        (raw,) = list(db.pool._free)
        admin = pymysql.connect(**_pymysql_args(mysql_url))
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"KILL {raw.server_thread_id[0]}")
        finally:
            admin.close()
        await wait_until_async(lambda: raw._reader.at_eof(), what="the killed connection's end of stream")
        await db.aconnect()
        await db.aclose()
        await db.close_pool()

    asyncio.run(main())
    assert [e.reason for e in db.events.snapshot() if e.kind == "close" and e.reason != "all"] == ["broken"]


def _pymysql_args(url: str) -> dict[str, Any]:
    from urllib.parse import urlparse

    parts = urlparse(url)
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": parts.username,
        "password": parts.password or "",
        "database": parts.path.lstrip("/"),
    }
