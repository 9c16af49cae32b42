"""Leaks carry where the connection was taken: the stack, whose first entry is the checkout's site, in every library.

SQLAlchemy's pools get ``leak_threshold`` here too: the watchdog thread for
threaded pools, the event loop for an ``AsyncEngine``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine
from test_sites import here

import poolviz
from poolviz.events import Event, EventLog
from poolviz.pools.peewee_asyncio import InstrumentedAsyncSqliteDatabase
from poolviz.pools.psycopg.testing import libpq_url
from poolviz.testing import join_threads, kinds, wait_until, wait_until_async
from poolviz.urls import sqlalchemy_url

pytestmark = pytest.mark.timeout(60)
THRESHOLD = 0.1


def of_kind(log: EventLog, *wanted: str) -> list[Event]:
    """The events of ``log`` whose kind is one of ``wanted``, in order."""
    return [e for e in log.snapshot() if e.kind in wanted]


def assert_leak_names_its_site(log: EventLog, site: str, holder: str) -> None:
    """One leak and one unleak, both by ``holder``, whose stack starts at ``site``; the frame's site column agrees."""
    leak, unleak = of_kind(log, "leak", "unleak")
    assert (leak.kind, unleak.kind) == ("leak", "unleak")
    assert leak.message.split(" < ")[0] == site and unleak.message == leak.message
    assert (leak.thread, unleak.thread) == (holder, holder)
    assert unleak.duration_s >= leak.duration_s > THRESHOLD
    frame = log.to_frame()
    mine = frame.loc[frame["conn"] == leak.conn]
    checkout = mine.loc[(mine["kind"] == "checkout") & (mine["seq"] < leak.seq)].iloc[-1]
    assert checkout["message"] == site
    assert list(mine.loc[mine["kind"].isin(["leak", "unleak"]), "site"]) == [site, site]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL on SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return sqlalchemy_url(request.getfixturevalue("pg_url"))


def test_sqlalchemy_reports_a_leak_while_held_and_unleak_when_back(engine_url: str) -> None:
    """A connection held past the threshold: leak (held, its stack from the site) while held; unleak, then checkin."""
    engine = poolviz.instrument(create_engine(engine_url, pool_size=2), leak_threshold=THRESHOLD)
    log = poolviz.events_of(engine)
    engine.connect().close()  # a short hold: nothing to report
    conn, site = engine.connect(), here()
    (leak,) = wait_until(lambda: of_kind(log, "leak"), what="the leak event")
    assert leak.reason == "held" and "test_sites_leaks.py" in leak.message
    conn.close()
    assert kinds(log.snapshot())[-2:] == ["unleak", "checkin"]
    assert_leak_names_its_site(log, site, "MainThread")
    assert log.meta["leak_threshold"] == THRESHOLD
    engine.dispose()


def test_sqlalchemy_reports_a_holder_that_exited(tmp_path: Path) -> None:
    """A thread that ended holding a connection: leak with reason thread_exited, named after it."""
    engine = poolviz.instrument(create_engine(f"sqlite:///{tmp_path / 'app.db'}"), leak_threshold=THRESHOLD)
    log = poolviz.events_of(engine)
    taken: list[Any] = []
    sites: list[str] = []

    def forgetful() -> None:
        conn, site = engine.connect(), here()
        taken.append(conn)
        sites.append(site)

    thread = threading.Thread(target=forgetful, name="forgetful")
    thread.start()
    join_threads([thread])
    (leak,) = wait_until(lambda: of_kind(log, "leak"), what="the leak event")
    assert (leak.thread, leak.reason) == ("forgetful", "thread_exited")
    taken[0].close()
    assert_leak_names_its_site(log, sites[0], "forgetful")
    engine.dispose()


def test_sqlalchemy_closing_a_leaked_connection_is_its_unleak(tmp_path: Path) -> None:
    """A leaked connection invalidated while out: unleak, then its close."""
    engine = poolviz.instrument(create_engine(f"sqlite:///{tmp_path / 'app.db'}"), leak_threshold=THRESHOLD)
    log = poolviz.events_of(engine)
    conn = engine.connect()
    wait_until(lambda: of_kind(log, "leak"), what="the leak event")
    conn.invalidate()
    assert kinds(log.snapshot())[-2:] == ["unleak", "close"]
    conn.close()
    engine.dispose()


def test_sqlalchemy_watchdog_thread_leaves_once_the_pool_is_idle(tmp_path: Path) -> None:
    """The watchdog thread runs only while connections are out: it leaves once all are back."""
    engine = poolviz.instrument(create_engine(f"sqlite:///{tmp_path / 'app.db'}"), leak_threshold=THRESHOLD)

    def watchdogs() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("poolviz-leak-watchdog")]

    conn = engine.connect()
    assert watchdogs()
    conn.close()
    wait_until(lambda: not watchdogs(), what="the watchdog thread to leave")
    engine.dispose()


def test_sqlalchemy_async_engine_is_watched_on_its_event_loop(tmp_path: Path) -> None:
    """An AsyncEngine's leak is found by a look on the event loop (no thread), named after the holding task."""
    engine = poolviz.instrument(
        create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"), leak_threshold=THRESHOLD
    )
    log = poolviz.events_of(engine)
    sites: list[str] = []

    async def holder() -> None:
        async with engine.connect():
            sites.append(here(-1))
            await wait_until_async(lambda: of_kind(log, "leak"), what="the leak event")
            assert not [t for t in threading.enumerate() if t.name.startswith("poolviz-leak-watchdog")]

    async def main() -> None:
        await asyncio.create_task(holder(), name="holder")
        await engine.dispose()

    asyncio.run(main())
    assert_leak_names_its_site(log, sites[0], "holder")


# -- the other libraries: the same shape ------------------------------------------------------------


def test_peewee_leaks_name_the_checkout_site(tmp_path: Path) -> None:
    """A peewee pool's leak stack starts at the checkout's site; unleak when it comes back."""
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'app.db'}", max_connections=2, leak_threshold=THRESHOLD)
    _, site = db.connect(), here()
    wait_until(lambda: of_kind(db.events, "leak"), what="the leak event")
    db.close()
    assert_leak_names_its_site(db.events, site, "MainThread")
    db.close_all()


def test_peewee_asyncio_leaks_name_the_checkout_site(tmp_path: Path) -> None:
    """A peewee asyncio database's leak stack starts at the task's checkout site."""
    db = InstrumentedAsyncSqliteDatabase(str(tmp_path / "app.db"), pool_size=2, leak_threshold=THRESHOLD)
    sites: list[str] = []

    async def holder() -> None:
        _, site = await db.aconnect(), here()
        sites.append(site)
        await wait_until_async(lambda: of_kind(db.events, "leak"), what="the leak event")
        await db.aclose()

    async def main() -> None:
        await asyncio.create_task(holder(), name="holder")
        await db.close_pool()

    asyncio.run(main())
    assert_leak_names_its_site(db.events, sites[0], "holder")


def test_psycopg_pool_leaks_name_the_checkout_site(pg_url: str) -> None:
    """A psycopg_pool pool's leak stack starts at the checkout's site."""
    pool = poolviz.instrument(
        ConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, open=False), leak_threshold=THRESHOLD
    )
    pool.open(wait=True)
    log = poolviz.events_of(pool)
    conn, site = pool.getconn(), here()
    wait_until(lambda: of_kind(log, "leak"), what="the leak event")
    pool.putconn(conn)
    pool.close()
    assert_leak_names_its_site(log, site, "MainThread")
